package tokenauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

const (
	iss = "https://gw.example"
	url = iss + "/x"
)

func mint(t *testing.T, is *issuer.Issuer, name, jkt string) string {
	t.Helper()
	u, err := is.AuthenticateUser(context.Background(), name, issuertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.UserPrincipal(u), JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// TestWithRole: every way a token can be presented, to the check every
// route that takes a token shares; a DPoP-bound token counts only with a
// proof of its key (RFC 9449 §7.1), also where a role is all a route asks.
func TestWithRole(t *testing.T) {
	is := issuertest.New(t, issuer.Config{Issuer: iss})
	key := dpoptest.NewKey("ES256")
	admin, plain, bound := mint(t, is, "alice", ""), mint(t, is, "bob", ""), mint(t, is, "alice", key.JKT())
	users := []issuer.PrincipalKind{issuer.KindUser}
	admins := []string{"admin"}
	for _, tc := range []struct {
		name         string
		auth         []string
		proof        string
		roles        []string
		kinds        []issuer.PrincipalKind
		requireDPoP  bool
		status       int // 0: allowed
		scheme, code string
		is           error
	}{
		{"admin token", []string{"Bearer " + admin}, "", []string{"viewer", "admin"}, users, false, 0, "", "", nil},
		{"scheme case-insensitive", []string{"bearer " + admin}, "", admins, users, false, 0, "", "", nil},
		{"any kind", []string{"Bearer " + admin}, "", admins, []issuer.PrincipalKind{tokenauth.AnyKind}, false, 0, "", "", nil},
		{"kind among several", []string{"Bearer " + admin}, "", admins, []issuer.PrincipalKind{issuer.KindClient, issuer.KindUser}, false, 0, "", "", nil},
		{"no header", nil, "", admins, users, false, 401, "Bearer", "", httpx.ErrNoCredentials},
		{"basic, not bearer", []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("a:b"))}, "", admins, users, false, 401, "Bearer", "", httpx.ErrNoCredentials},
		{"empty bearer", []string{"Bearer "}, "", admins, users, false, 400, "Bearer", "invalid_request", nil},
		{"repeated header", []string{"Bearer " + admin, "Bearer " + admin}, "", admins, users, false, 400, "Bearer", "invalid_request", nil},
		{"garbage token", []string{"Bearer a.b.c"}, "", admins, users, false, 401, "Bearer", "invalid_token", issuer.ErrTokenMalformed},
		{"lacks the role", []string{"Bearer " + plain}, "", admins, users, false, 403, "Bearer", "insufficient_scope", tokenauth.ErrLacksRole},
		{"no roles configured", []string{"Bearer " + admin}, "", nil, users, false, 403, "Bearer", "insufficient_scope", tokenauth.ErrLacksRole},
		{"role on another kind", []string{"Bearer " + admin}, "", admins, []issuer.PrincipalKind{issuer.KindClient, issuer.TableKind("app")}, false, 403, "Bearer", "insufficient_scope", tokenauth.ErrLacksRole},
		{"no kinds configured", []string{"Bearer " + admin}, "", admins, nil, false, 403, "Bearer", "insufficient_scope", tokenauth.ErrLacksRole},
		{"bound token as bearer", []string{"Bearer " + bound}, "", admins, users, false, 401, "DPoP", "invalid_token", nil},
		{"bound token as bearer, with a proof", []string{"Bearer " + bound}, key.Proof("POST", url, bound), admins, users, false, 401, "DPoP", "invalid_token", nil},
		{"bound token, DPoP scheme, no proof", []string{"DPoP " + bound}, "", admins, users, false, 401, "DPoP", "invalid_dpop_proof", dpop.ErrNoProof},
		{"bound token, proof of another key", []string{"DPoP " + bound}, dpoptest.NewKey("ES256").Proof("POST", url, bound), admins, users, false, 401, "DPoP", "invalid_dpop_proof", nil},
		{"bound token, proof for another URL", []string{"DPoP " + bound}, key.Proof("POST", iss+"/y", bound), admins, users, false, 401, "DPoP", "invalid_dpop_proof", nil},
		{"bound token with its proof", []string{"DPoP " + bound}, key.Proof("POST", url, bound), admins, users, false, 0, "", "", nil},
		{"unbound token, DPoP scheme", []string{"DPoP " + admin}, key.Proof("POST", url, admin), admins, users, false, 401, "DPoP", "invalid_token", nil},
		{"bearer where DPoP is required", []string{"Bearer " + admin}, "", admins, users, true, 401, "DPoP", "invalid_token", nil},
		{"bound token with its proof where DPoP is required", []string{"DPoP " + bound}, key.Proof("POST", url, bound), admins, users, true, 0, "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := issuertest.Checker(t, is)
			c.RequireDPoP = tc.requireDPoP
			r := httptest.NewRequest(http.MethodPost, url, nil)
			for _, a := range tc.auth {
				r.Header.Add("Authorization", a)
			}
			if tc.proof != "" {
				r.Header.Set("DPoP", tc.proof)
			}
			claims, rf := c.WithRole(r, tc.roles, tc.kinds)
			if tc.status == 0 {
				if rf != nil || claims == nil || claims.Subject != "alice" {
					t.Fatalf("got %+v, %v", claims, rf)
				}
				return
			}
			if rf == nil || rf.Status != tc.status || rf.Scheme != tc.scheme || rf.Code() != tc.code || claims != nil {
				t.Fatalf("got %+v, want status %d scheme %s code %q", rf, tc.status, tc.scheme, tc.code)
			}
			if tc.is != nil && !errors.Is(rf, tc.is) {
				t.Fatalf("error %v is not %v", rf.Err, tc.is)
			}
			h := http.Header{}
			c.Challenge(h, rf)
			ch := h.Values("WWW-Authenticate")
			if len(ch) == 0 || !strings.HasPrefix(ch[0], tc.scheme+" ") || (tc.code != "" && !strings.Contains(ch[0], `error="`+tc.code+`"`)) {
				t.Fatalf("challenge %q, want scheme %s with error %q", ch, tc.scheme, tc.code)
			}
			if rf.NoToken() && (len(ch) != 2 || !strings.HasPrefix(ch[1], "DPoP ")) {
				t.Fatalf("no token: challenges %q, want Bearer and DPoP offered", ch)
			}
		})
	}
}

// TestOtherIssuer: a token of another issuer on the same store is refused.
func TestOtherIssuer(t *testing.T) {
	is := issuertest.New(t, issuer.Config{Issuer: iss})
	other, err := issuer.New(is.Core(), issuer.Config{Issuer: "https://other.example", Users: []issuer.User{{Name: "alice", PasswordHash: issuertest.Hash(t, issuertest.Password)}}})
	if err != nil {
		t.Fatal(err)
	}
	c := issuertest.Checker(t, is)
	r := httptest.NewRequest(http.MethodPost, url, nil)
	r.Header.Set("Authorization", "Bearer "+mint(t, other, "alice", ""))
	if _, _, rf := c.Check(r); rf == nil || rf.Status != 401 || !errors.Is(rf, issuer.ErrTokenIssuer) {
		t.Fatalf("got %+v, want 401 for another issuer", rf)
	}
}
