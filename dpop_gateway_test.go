package tokengate_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
)

// tokenHTU is the token endpoint's URL (base is set by TestMain).
func tokenHTU() string { return base + "/token" }

// dpopGet sends a guarded GET with the DPoP scheme and, when not "", a proof.
func (g *gateway) dpopGet(path, token, proof string) response {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "DPoP "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return g.do(req)
}

// dpopClientToken gets a client_credentials token bound to key.
func (g *gateway) dpopClientToken(key *dpoptest.Key) response {
	g.t.Helper()
	return g.form("/token", url.Values{"grant_type": {"client_credentials"}},
		"Authorization", basic("billing", clientSecret), "DPoP", key.Proof("POST", tokenHTU(), ""))
}

// jwtClaims decodes a JWT's payload without checking it.
func jwtClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantDPoPChallenge checks a guard refusal with a DPoP challenge.
func wantDPoPChallenge(t *testing.T, r response, code string) {
	t.Helper()
	ch := r.header.Get("WWW-Authenticate")
	if r.status != 401 || r.json["error"] != code || !strings.HasPrefix(ch, "DPoP ") ||
		!strings.Contains(ch, `error="`+code+`"`) || !strings.Contains(ch, `algs="ES256 ES384 EdDSA Ed25519 RS256 PS256"`) {
		t.Fatalf("got %d %s %q; want 401 %s with a DPoP challenge", r.status, r.body, ch, code)
	}
}

func TestDPoPTokenEndpointAndGuard(t *testing.T) {
	g := startGateway(t, "")
	key := dpoptest.NewKey("ES256")
	tr := g.dpopClientToken(key)
	if tr.status != 200 || tr.json["token_type"] != "DPoP" {
		t.Fatalf("token: %d %s", tr.status, tr.body)
	}
	tok := tr.json["access_token"].(string)
	if cnf, _ := jwtClaims(t, tok)["cnf"].(map[string]any); cnf["jkt"] != key.JKT() {
		t.Fatalf("cnf %v, want jkt %s", cnf, key.JKT())
	}
	other := g.clientToken() // a bearer token of the same client

	t.Run("valid proof passes", func(t *testing.T) {
		for _, p := range []string{"/orders/1", "/orders/1?page=2"} {
			r := g.dpopGet(p, tok, key.Proof("GET", base+"/orders/1", tok))
			if r.status != 200 || !strings.Contains(r.body, "sub=billing") {
				t.Fatalf("%s: %d %s", p, r.status, r.body)
			}
		}
	})
	for _, tc := range []struct {
		name, path, token, proof, code string
	}{
		{"bearer downgrade", "", "", "", "invalid_token"},
		{"no proof", "/orders/1", tok, "", "invalid_dpop_proof"},
		{"wrong htm", "/orders/1", tok, key.Proof("POST", base+"/orders/1", tok), "htm"},
		{"wrong htu", "/orders/1", tok, key.Proof("GET", base+"/orders/2", tok), "htu"},
		{"wrong htu host", "/orders/1", tok, key.Proof("GET", "http://evil.example/orders/1", tok), "htu"},
		{"stale iat", "/orders/1", tok, key.Proof("GET", base+"/orders/1", tok, func(_ dpoptest.Header, c dpoptest.Claims) {
			c["iat"] = time.Now().Add(-5 * time.Minute).Unix()
		}), "iat"},
		{"wrong key", "/orders/1", tok, dpoptest.NewKey("ES256").Proof("GET", base+"/orders/1", tok), "another key"},
		{"proof for another token", "/orders/1", tok, key.Proof("GET", base+"/orders/1", other), "ath is not"},
		{"no ath", "/orders/1", tok, key.Proof("GET", base+"/orders/1", ""), "invalid_dpop_proof"},
		{"alg none", "/orders/1", tok, dpoptest.Unsigned(dpoptest.Header{"typ": "dpop+jwt", "jwk": key.JWK},
			dpoptest.Claims{"jti": "x1", "htm": "GET", "htu": base + "/orders/1", "iat": time.Now().Unix(), "ath": athOf(tok)}), "invalid_dpop_proof"},
		{"HS256", "/orders/1", tok, dpoptest.HMAC([]byte("secret"), dpoptest.Header{"typ": "dpop+jwt", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}},
			dpoptest.Claims{"jti": "x2", "htm": "GET", "htu": base + "/orders/1", "iat": time.Now().Unix(), "ath": athOf(tok)}), "invalid_dpop_proof"},
		{"private jwk", "/orders/1", tok, key.Proof("GET", base+"/orders/1", tok, func(h dpoptest.Header, _ dpoptest.Claims) {
			h["jwk"] = key.PrivateJWK()
		}), "invalid_dpop_proof"},
		{"unbound token with the DPoP scheme", "/orders/1", other, key.Proof("GET", base+"/orders/1", other), "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if tc.path == "" {
				r = g.get("/orders/1", tok)
			} else {
				r = g.dpopGet(tc.path, tc.token, tc.proof)
			}
			code, reason, _ := strings.Cut(tc.code, ":")
			if !strings.Contains(code, "_") { // a reason: invalid_dpop_proof for that reason
				code, reason = "invalid_dpop_proof", tc.code
			}
			wantDPoPChallenge(t, r, code)
			if !strings.Contains(r.body, reason) {
				t.Fatalf("refused for another reason: %s", r.body)
			}
		})
	}
	t.Run("replayed jti", func(t *testing.T) {
		p := key.Proof("GET", base+"/orders/1", tok)
		if r := g.dpopGet("/orders/1", tok, p); r.status != 200 {
			t.Fatalf("first use: %d %s", r.status, r.body)
		}
		r := g.dpopGet("/orders/1", tok, p)
		wantDPoPChallenge(t, r, "invalid_dpop_proof")
		if !strings.Contains(r.body, "already used") {
			t.Fatalf("replay refused for another reason: %s", r.body)
		}
	})
	t.Run("two DPoP headers", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"/orders/1", nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Add("DPoP", key.Proof("GET", base+"/orders/1", tok))
		req.Header.Add("DPoP", key.Proof("GET", base+"/orders/1", tok))
		wantDPoPChallenge(t, g.do(req), "invalid_dpop_proof")
	})
	t.Run("no token offers both schemes", func(t *testing.T) {
		r := g.get("/orders/1", "")
		ch := r.header.Values("WWW-Authenticate")
		if r.status != 401 || len(ch) != 2 || !strings.HasPrefix(ch[0], "Bearer ") || !strings.HasPrefix(ch[1], "DPoP ") || !strings.Contains(ch[1], "algs=") {
			t.Fatalf("%d %q", r.status, ch)
		}
	})
	t.Run("introspection returns cnf", func(t *testing.T) {
		r := g.form("/token/introspect", url.Values{"token": {tok}}, "Authorization", basic("billing", clientSecret))
		cnf, _ := r.json["cnf"].(map[string]any)
		if r.status != 200 || r.json["active"] != true || r.json["token_type"] != "DPoP" || cnf["jkt"] != key.JKT() {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = g.form("/token/introspect", url.Values{"token": {other}}, "Authorization", basic("billing", clientSecret))
		if r.json["cnf"] != nil || r.json["token_type"] != "Bearer" {
			t.Fatalf("bearer token introspected as %s", r.body)
		}
	})
	t.Run("metadata advertises the algorithms", func(t *testing.T) {
		r := g.get("/.well-known/oauth-authorization-server", "")
		algs, _ := r.json["dpop_signing_alg_values_supported"].([]any)
		if len(algs) != 6 || algs[0] != "ES256" {
			t.Fatalf("%s", r.body)
		}
	})
}

func athOf(tok string) string { return dpop.TokenHash(tok) }

func TestDPoPTokenEndpointRefusals(t *testing.T) {
	g := startGateway(t, "")
	key := dpoptest.NewKey("EdDSA")
	cc := url.Values{"grant_type": {"client_credentials"}}
	auth := basic("billing", clientSecret)
	for _, tc := range []struct{ name, proof string }{
		{"wrong htm", key.Proof("GET", tokenHTU(), "")},
		{"wrong htu", key.Proof("POST", base+"/token/introspect", "")},
		{"ath at the token endpoint", key.Proof("POST", tokenHTU(), "some-token")},
		{"stale iat", key.Proof("POST", tokenHTU(), "", func(_ dpoptest.Header, c dpoptest.Claims) { c["iat"] = time.Now().Add(-time.Hour).Unix() })},
		{"typ JWT", key.Proof("POST", tokenHTU(), "", func(h dpoptest.Header, _ dpoptest.Claims) { h["typ"] = "JWT" })},
		{"alg none", dpoptest.Unsigned(dpoptest.Header{"typ": "dpop+jwt", "jwk": key.JWK},
			dpoptest.Claims{"jti": "n1", "htm": "POST", "htu": tokenHTU(), "iat": time.Now().Unix()})},
		{"HS256", dpoptest.HMAC([]byte("secret"), dpoptest.Header{"typ": "dpop+jwt", "jwk": map[string]any{"kty": "oct", "k": "c2VjcmV0"}},
			dpoptest.Claims{"jti": "h1", "htm": "POST", "htu": tokenHTU(), "iat": time.Now().Unix()})},
		{"not a JWT", "not-a-jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantOAuthError(t, g.form("/token", cc, "Authorization", auth, "DPoP", tc.proof), 400, "invalid_dpop_proof")
		})
	}
	t.Run("replayed jti", func(t *testing.T) {
		p := key.Proof("POST", tokenHTU(), "")
		if r := g.form("/token", cc, "Authorization", auth, "DPoP", p); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		wantOAuthError(t, g.form("/token", cc, "Authorization", auth, "DPoP", p), 400, "invalid_dpop_proof")
	})
}

func TestDPoPRefreshBinding(t *testing.T) {
	g := startGateway(t, "")
	key := dpoptest.NewKey("ES256")
	pw := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}
	// A public client (no client authentication): the refresh token is bound.
	r := g.form("/token", pw, "DPoP", key.Proof("POST", tokenHTU(), ""))
	if r.status != 200 || r.json["token_type"] != "DPoP" {
		t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	rt := r.json["refresh_token"].(string)
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
	wantOAuthError(t, g.form("/token", refresh), 400, "invalid_grant")
	wantOAuthError(t, g.form("/token", refresh, "DPoP", dpoptest.NewKey("ES256").Proof("POST", tokenHTU(), "")), 400, "invalid_grant")
	// Those refusals did not use the token up: the owner still can.
	r = g.form("/token", refresh, "DPoP", key.Proof("POST", tokenHTU(), ""))
	if r.status != 200 || r.json["token_type"] != "DPoP" {
		t.Fatalf("refresh with the bound key: %d %s", r.status, r.body)
	}
	if cnf, _ := jwtClaims(t, r.json["access_token"].(string))["cnf"].(map[string]any); cnf["jkt"] != key.JKT() {
		t.Fatalf("refreshed token cnf %v", cnf)
	}
	// The rotated token stays bound.
	refresh.Set("refresh_token", r.json["refresh_token"].(string))
	wantOAuthError(t, g.form("/token", refresh), 400, "invalid_grant")

	// A confidential client's refresh token is not bound: client
	// authentication protects it (RFC 9449 §5).
	r = g.form("/token", pw, "Authorization", basic("narrow", clientSecret), "DPoP", key.Proof("POST", tokenHTU(), ""))
	if r.status != 200 || r.json["token_type"] != "DPoP" {
		t.Fatalf("confidential password grant: %d %s", r.status, r.body)
	}
	r = g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.json["refresh_token"].(string)}},
		"Authorization", basic("narrow", clientSecret))
	if r.status != 200 || r.json["token_type"] != "Bearer" {
		t.Fatalf("confidential refresh without a proof: %d %s", r.status, r.body)
	}
}

func TestDPoPPolicies(t *testing.T) {
	g := startGateway(t, `require /payments/* dpop
		dpop {
			client billing
			window 30s
			algs ES256 EdDSA
		}`)
	key := dpoptest.NewKey("EdDSA")
	t.Run("required for a client", func(t *testing.T) {
		r := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret))
		wantOAuthError(t, r, 400, "invalid_dpop_proof")
		if r := g.dpopClientToken(key); r.status != 200 || r.json["token_type"] != "DPoP" {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("algs", func(t *testing.T) {
		r := g.dpopClientToken(dpoptest.NewKey("RS256"))
		wantOAuthError(t, r, 400, "invalid_dpop_proof")
	})
	t.Run("window", func(t *testing.T) {
		p := key.Proof("POST", tokenHTU(), "", func(_ dpoptest.Header, c dpoptest.Claims) { c["iat"] = time.Now().Add(-45 * time.Second).Unix() })
		wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret), "DPoP", p), 400, "invalid_dpop_proof")
	})
	t.Run("required for a path", func(t *testing.T) {
		bearer := g.passwordToken("alice")["access_token"].(string)
		r := g.get("/payments/1", bearer)
		if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "DPoP ") {
			t.Fatalf("bearer token on a DPoP path: %d %s", r.status, r.body)
		}
		if r := g.get("/orders/1", bearer); r.status != 200 {
			t.Fatalf("bearer token elsewhere: %d %s", r.status, r.body)
		}
		pr := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, "DPoP", key.Proof("POST", tokenHTU(), ""))
		tok := pr.json["access_token"].(string)
		if r := g.dpopGet("/payments/1", tok, key.Proof("GET", base+"/payments/1", tok)); r.status != 200 {
			t.Fatalf("DPoP token on a DPoP path: %d %s", r.status, r.body)
		}
	})
}

func TestDPoPRequiredSiteAndNonces(t *testing.T) {
	g := startGateway(t, `dpop {
			required
			nonce
		}`)
	key := dpoptest.NewKey("ES256")
	cc := url.Values{"grant_type": {"client_credentials"}}
	auth := basic("billing", clientSecret)
	wantOAuthError(t, g.form("/token", cc, "Authorization", auth), 400, "invalid_dpop_proof")
	// A bearer token (as the compatibility routes issue) is refused by the guard.
	wantDPoPChallenge(t, g.get("/orders/1", mintWithClock(t, g.store, time.Now())), "invalid_token")
	r := g.form("/token", cc, "Authorization", auth, "DPoP", key.Proof("POST", tokenHTU(), ""))
	wantOAuthError(t, r, 400, "use_dpop_nonce")
	nonce := r.header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	withNonce := func(n string) func(dpoptest.Header, dpoptest.Claims) {
		return func(_ dpoptest.Header, c dpoptest.Claims) { c["nonce"] = n }
	}
	wantOAuthError(t, g.form("/token", cc, "Authorization", auth, "DPoP", key.Proof("POST", tokenHTU(), "", withNonce("made-up"))), 400, "use_dpop_nonce")
	r = g.form("/token", cc, "Authorization", auth, "DPoP", key.Proof("POST", tokenHTU(), "", withNonce(nonce)))
	if r.status != 200 {
		t.Fatalf("with the nonce: %d %s", r.status, r.body)
	}
	tok := r.json["access_token"].(string)
	r = g.dpopGet("/orders/1", tok, key.Proof("GET", base+"/orders/1", tok))
	wantDPoPChallenge(t, r, "use_dpop_nonce")
	if r.header.Get("DPoP-Nonce") == "" {
		t.Fatal("guard's use_dpop_nonce without a DPoP-Nonce header")
	}
	if r := g.dpopGet("/orders/1", tok, key.Proof("GET", base+"/orders/1", tok, withNonce(r.header.Get("DPoP-Nonce")))); r.status != 200 {
		t.Fatalf("guard with the nonce: %d %s", r.status, r.body)
	}
}
