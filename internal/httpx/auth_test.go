package httpx_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/internal/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

func basicHdr(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func TestClientCredentials(t *testing.T) {
	both := httpx.FromBasic | httpx.FromBody
	body := map[string]string{"client_id": "web", "client_secret": "s"}
	for _, tc := range []struct {
		name   string
		auth   []string
		params map[string]string
		from   httpx.ClientFrom
		want   httpx.ClientCreds
		status int // 0: no error
	}{
		{"none", nil, nil, both, httpx.ClientCreds{}, 0},
		{"body", nil, body, both, httpx.ClientCreds{ID: "web", Secret: "s", Present: true}, 0},
		{"body id only (public client)", nil, map[string]string{"client_id": "web"}, both, httpx.ClientCreds{ID: "web", Present: true}, 0},
		{"basic", []string{basicHdr("web", "s")}, nil, both, httpx.ClientCreds{ID: "web", Secret: "s", Basic: true, Present: true}, 0},
		{"basic is form-decoded", []string{basicHdr("a%3Ab", "x+y")}, nil, both, httpx.ClientCreds{ID: "a:b", Secret: "x y", Basic: true, Present: true}, 0},
		{"empty basic", []string{basicHdr("", "")}, nil, both, httpx.ClientCreds{Basic: true}, 0},
		{"basic and the same body id", []string{basicHdr("web", "s")}, map[string]string{"client_id": "web"}, both, httpx.ClientCreds{ID: "web", Secret: "s", Basic: true, Present: true}, 0},
		{"basic and a body secret", []string{basicHdr("web", "s")}, body, both, httpx.ClientCreds{}, 400},
		{"basic and another body id", []string{basicHdr("web", "s")}, map[string]string{"client_id": "app"}, both, httpx.ClientCreds{}, 400},
		{"malformed basic", []string{"Basic !!!"}, nil, both, httpx.ClientCreds{}, 401},
		{"basic without colon", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("web"))}, nil, both, httpx.ClientCreds{}, 401},
		{"repeated authorization", []string{basicHdr("a", "b"), basicHdr("a", "b")}, nil, both, httpx.ClientCreds{}, 400},
		{"bearer is not client auth", []string{"Bearer x"}, body, both, httpx.ClientCreds{ID: "web", Secret: "s", Present: true}, 0},
		{"basic only ignores the body", nil, body, httpx.FromBasic, httpx.ClientCreds{}, 0},
		{"basic only, both sent", []string{basicHdr("web", "s")}, body, httpx.FromBasic, httpx.ClientCreds{ID: "web", Secret: "s", Basic: true, Present: true}, 0},
		{"body only ignores basic", []string{"Basic !!!"}, body, httpx.FromBody, httpx.ClientCreds{ID: "web", Secret: "s", Present: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			got, err := httpx.ClientCredentials(r, tc.params, tc.from)
			if tc.status != 0 {
				if err == nil || httpx.Status(err) != tc.status {
					t.Fatalf("err %v (status %d), want status %d", err, httpx.Status(err), tc.status)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestBearerWithRole(t *testing.T) {
	const iss = "https://gw.example"
	is := issuertest.New(t, issuer.Config{})
	mint := func(name string) string {
		u, err := is.AuthenticateUser(context.Background(), name, issuertest.Password)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.UserPrincipal(u), Issuer: iss})
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	admin, plain := mint("alice"), mint("bob")
	users := []string{issuer.KindUser}
	for _, tc := range []struct {
		name         string
		auth         []string
		iss          string
		roles, kinds []string
		status       int // 0: allowed
		is           error
	}{
		{"admin token", []string{"Bearer " + admin}, iss, []string{"viewer", "admin"}, users, 0, nil},
		{"scheme case-insensitive", []string{"bearer " + admin}, iss, []string{"admin"}, users, 0, nil},
		{"any kind", []string{"Bearer " + admin}, iss, []string{"admin"}, []string{httpx.AnyKind}, 0, nil},
		{"kind among several", []string{"Bearer " + admin}, iss, []string{"admin"}, []string{issuer.KindClient, issuer.KindUser}, 0, nil},
		{"no header", nil, iss, []string{"admin"}, users, 401, httpx.ErrNoCredentials},
		{"basic, not bearer", []string{basicHdr("a", "b")}, iss, []string{"admin"}, users, 401, httpx.ErrNoCredentials},
		{"empty bearer", []string{"Bearer "}, iss, []string{"admin"}, users, 400, nil},
		{"repeated header", []string{"Bearer " + admin, "Bearer " + admin}, iss, []string{"admin"}, users, 400, nil},
		{"garbage token", []string{"Bearer a.b.c"}, iss, []string{"admin"}, users, 401, issuer.ErrTokenMalformed},
		{"other issuer", []string{"Bearer " + admin}, "https://other.example", []string{"admin"}, users, 401, issuer.ErrTokenIssuer},
		{"lacks the role", []string{"Bearer " + plain}, iss, []string{"admin"}, users, 403, httpx.ErrLacksRole},
		{"no roles configured", []string{"Bearer " + admin}, iss, nil, users, 403, httpx.ErrLacksRole},
		{"role on another kind", []string{"Bearer " + admin}, iss, []string{"admin"}, []string{issuer.KindClient, "table:app"}, 403, httpx.ErrLacksRole},
		{"no kinds configured", []string{"Bearer " + admin}, iss, []string{"admin"}, nil, 403, httpx.ErrLacksRole},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/x", nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			claims, err := httpx.BearerWithRole(r, is, tc.iss, tc.roles, tc.kinds)
			if tc.status == 0 {
				if err != nil || claims == nil || claims.Subject != "alice" {
					t.Fatalf("got %+v, %v", claims, err)
				}
				return
			}
			var be *httpx.BearerError
			if !errors.As(err, &be) || be.Status != tc.status || claims != nil {
				t.Fatalf("got %v (%T), want status %d", err, err, tc.status)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v is not %v", err, tc.is)
			}
		})
	}
}
