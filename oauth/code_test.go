package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/oauth"
)

const (
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
	spaCB    = "https://app.example/cb"
)

// codeServer is an oauth.Server with browser sign-in on, a public client
// spa, a confidential client web and one limited to other grants; code
// mints a code for alice as the login page would.
func codeServer(t *testing.T, dp *oauth.DPoP) (*server, func(client, challenge string) string, *issuer.Issuer) {
	t.Helper()
	is := issuertest.New(t, issuer.Config{Issuer: gw, Clients: []issuer.Client{
		{ID: "spa", Public: true, RedirectURIs: []string{spaCB}},
		{ID: "web", SecretHash: issuertest.Hash(t, "web-secret"), RedirectURIs: []string{spaCB}},
		{ID: "svc", SecretHash: issuertest.Hash(t, "svc-secret"), Grants: []string{"client_credentials"}, RedirectURIs: []string{spaCB}},
	}})
	s := &oauth.Server{Issuer: is, Log: zap.NewNop(), AuthorizePath: "/authorize", DPoP: dp}
	routes := map[string]func(http.ResponseWriter, *http.Request){}
	for path, rt := range s.Routes() {
		routes[path] = rt.Handler
	}
	ctx := context.Background()
	p, err := is.SignIn(ctx, "alice", issuertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	_, sess, err := is.StartSession(ctx, p, []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	code := func(client, challenge string) string {
		c, err := is.LookupClient(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		code, err := is.IssueCode(ctx, issuer.CodeRequest{Client: c, RedirectURI: spaCB, Challenge: challenge, Scope: "read", Session: sess})
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	return &server{t: t, routes: routes}, code, is
}

func TestAuthorizationCodeGrant(t *testing.T) {
	s, code, is := codeServer(t, nil)
	redeem := func(code string, extra url.Values, headers ...string) reply {
		v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {spaCB}, "code_verifier": {verifier}}
		for k, vs := range extra {
			v[k] = vs
		}
		return s.form(oauth.PathToken, v, headers...)
	}
	spa := url.Values{"client_id": {"spa"}}
	challenge := issuer.S256(verifier)

	t.Run("a public client redeems once; a replay is invalid_grant and revokes the first tokens", func(t *testing.T) {
		c := code("spa", challenge)
		r := redeem(c, spa)
		if r.status != 200 || r.json["access_token"] == nil || r.json["refresh_token"] == nil || r.json["scope"] != "read" ||
			r.json["token_type"] != "Bearer" || r.json["expires_in"] == nil || r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("redeem: %d %v", r.status, r.json)
		}
		claims, err := is.Verify(r.json["access_token"].(string))
		if err != nil || claims.Subject != "alice" || claims.ClientID != "spa" {
			t.Fatalf("access token: %+v %v", claims, err)
		}
		again := redeem(c, spa)
		if again.status != 400 || again.json["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %v", again.status, again.json)
		}
		if _, err := is.Verify(r.json["access_token"].(string)); !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("the first redemption's access token after a replay: %v", err)
		}
		rf := s.form(oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.json["refresh_token"].(string)}, "client_id": {"spa"}})
		if rf.status != 400 || rf.json["error"] != "invalid_grant" {
			t.Fatalf("the first redemption's refresh token after a replay: %d %v", rf.status, rf.json)
		}
	})
	t.Run("a confidential client authenticates", func(t *testing.T) {
		if r := redeem(code("web", challenge), nil, "Authorization", basic("web", "web-secret")); r.status != 200 {
			t.Fatalf("redeem: %d %v", r.status, r.json)
		}
	})
	for _, tc := range []struct {
		name, client, challenge string
		extra                   url.Values
		headers                 []string
		status                  int
		code                    string
	}{
		{"wrong verifier", "spa", challenge, url.Values{"client_id": {"spa"}, "code_verifier": {strings.Repeat("a", 43)}}, nil, 400, "invalid_grant"},
		{"missing verifier", "spa", challenge, url.Values{"client_id": {"spa"}, "code_verifier": nil}, nil, 400, "invalid_grant"},
		{"verifier without a challenge", "web", "", nil, []string{"Authorization", basic("web", "web-secret")}, 400, "invalid_grant"},
		{"another client's code", "web", challenge, spa, nil, 400, "invalid_grant"},
		{"another redirect URI", "spa", challenge, url.Values{"client_id": {"spa"}, "redirect_uri": {spaCB + "/"}}, nil, 400, "invalid_grant"},
		{"no code", "spa", challenge, url.Values{"client_id": {"spa"}, "code": {""}}, nil, 400, "invalid_request"},
		{"no client", "spa", challenge, nil, nil, 401, "invalid_client"},
		{"a public client with a secret", "spa", challenge, nil, []string{"Authorization", basic("spa", "anything")}, 401, "invalid_client"},
		{"a confidential client without its secret", "web", challenge, url.Values{"client_id": {"web"}}, nil, 401, "invalid_client"},
		{"an unknown client", "spa", challenge, url.Values{"client_id": {"nobody"}}, nil, 401, "invalid_client"},
		{"a client without the grant", "svc", challenge, nil, []string{"Authorization", basic("svc", "svc-secret")}, 400, "unauthorized_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := redeem(code(tc.client, tc.challenge), tc.extra, tc.headers...)
			if r.status != tc.status || r.json["error"] != tc.code || r.json["error_description"] == "" {
				t.Fatalf("got %d %v, want %d %s", r.status, r.json, tc.status, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 without a Basic challenge: %v", r.header)
			}
		})
	}
	t.Run("the metadata names the authorization endpoint", func(t *testing.T) {
		m := s.call(http.MethodGet, oauth.PathMetadata, "", "")
		grants, _ := m.json["grant_types_supported"].([]any)
		if m.json["authorization_endpoint"] != gw+"/authorize" || m.json["authorization_response_iss_parameter_supported"] != true ||
			len(grants) != 4 || grants[3] != "authorization_code" {
			t.Fatalf("metadata: %v", m.json)
		}
		methods, _ := m.json["code_challenge_methods_supported"].([]any)
		types, _ := m.json["response_types_supported"].([]any)
		modes, _ := m.json["response_modes_supported"].([]any)
		if len(methods) != 1 || methods[0] != "S256" || len(types) != 1 || types[0] != "code" ||
			len(modes) != 2 || modes[0] != "query" || modes[1] != "form_post" {
			t.Fatalf("metadata: %v", m.json)
		}
	})
}

// TestAuthorizationCodeGrantOff: a site without browser sign-in takes no
// authorization_code grant and advertises none.
func TestAuthorizationCodeGrantOff(t *testing.T) {
	s := newServer(t)
	r := s.form(oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {"svc"}})
	if r.status != 400 || r.json["error"] != "unsupported_grant_type" {
		t.Fatalf("got %d %v", r.status, r.json)
	}
	if m := s.call(http.MethodGet, oauth.PathMetadata, "", ""); m.json["authorization_endpoint"] != nil {
		t.Fatalf("metadata without browser sign-in: %v", m.json)
	}
}

// TestAuthorizationCodeWithDPoP: a proof at redemption binds the tokens,
// and a public client's refresh token, to its key.
func TestAuthorizationCodeWithDPoP(t *testing.T) {
	dp := newDPoP(t)
	s, code, is := codeServer(t, dp)
	key := dpoptest.NewKey("ES256")
	r := s.form(oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code("spa", issuer.S256(verifier))},
		"redirect_uri": {spaCB}, "code_verifier": {verifier}, "client_id": {"spa"}}, "DPoP", key.Proof("POST", gw+oauth.PathToken, ""))
	if r.status != 200 || r.json["token_type"] != "DPoP" {
		t.Fatalf("redeem with a proof: %d %v", r.status, r.json)
	}
	claims, err := is.Verify(r.json["access_token"].(string))
	if err != nil || claims.BoundKey() != key.JKT() {
		t.Fatalf("access token not bound: %+v %v", claims, err)
	}
	rf := s.form(oauth.PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.json["refresh_token"].(string)}, "client_id": {"spa"}})
	if rf.status != 400 || rf.json["error"] != "invalid_grant" {
		t.Fatalf("refresh without the key: %d %v", rf.status, rf.json)
	}
}

// newDPoP is DPoP at /token with the default policy and an in-memory
// replay record.
func newDPoP(t *testing.T) *oauth.DPoP {
	t.Helper()
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &oauth.DPoP{Verifier: v, URL: func(r *http.Request) string { return gw + r.URL.Path }}
}
