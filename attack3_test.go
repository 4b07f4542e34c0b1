package tokengate_test

// End-to-end tests of what the third attack round found (each fails on
// b5f99fe): a DPoP-bound token is no bearer token on any route.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
)

// boundPasswordToken gets alice's access token bound to key.
func (g *gateway) boundPasswordToken(key *dpoptest.Key) string {
	g.t.Helper()
	r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}},
		"DPoP", key.Proof("POST", tokenHTU(), ""))
	if r.status != 200 || r.json["token_type"] != "DPoP" {
		g.t.Fatalf("password grant with a proof: %d %s", r.status, r.body)
	}
	return r.json["access_token"].(string)
}

// TestBoundTokenIsNoBearerTokenOnAnyRoute: RFC 9449 §7.1-7.2, on the
// routes that hand out secrets and on apimaker's require_role as in the
// guard: a bound token sent as Bearer, or with the DPoP scheme but without
// a proof of its key, is refused with a DPoP challenge; with its proof it
// passes.
func TestBoundTokenIsNoBearerTokenOnAnyRoute(t *testing.T) {
	g := startGateway(t, `entity aa-1 roles member
		endpoint apimaker {
			require_role admin
		}`)
	key := dpoptest.NewKey("ES256")
	tok := g.boundPasswordToken(key)
	amBody := `{"authTokenType":"AM","authTokenAM":{"u":"bob","p":"` + userPassword + `"}}`
	for _, rt := range []struct {
		name, path, body string
		ok               func(response) bool
	}{
		{"secret read", "/entity/secret/read", seedBody("aa-1", ""), func(r response) bool { return r.json["secret"] != nil }},
		{"secret reset", "/entity/secret/reset", seedBody("aa-1", ""), func(r response) bool { return r.json["secret"] != nil }},
		{"apimaker require_role", apimakerPath, amBody, func(r response) bool { return r.json["success"] == true }},
	} {
		t.Run(rt.name, func(t *testing.T) {
			send := func(scheme, proof string) response {
				h := []string{"Authorization", scheme + " " + tok}
				if proof != "" {
					h = append(h, "DPoP", proof)
				}
				return g.post(rt.path, "application/json", rt.body, h...)
			}
			htu := base + rt.path
			for _, tc := range []struct{ name, scheme, proof string }{
				{"as Bearer", "Bearer", ""},
				{"as Bearer with a proof", "Bearer", key.Proof("POST", htu, tok)},
				{"DPoP scheme without a proof", "DPoP", ""},
				{"DPoP scheme, proof of another key", "DPoP", dpoptest.NewKey("ES256").Proof("POST", htu, tok)},
				{"DPoP scheme, proof for another route", "DPoP", key.Proof("POST", base+"/orders/1", tok)},
			} {
				r := send(tc.scheme, tc.proof)
				if r.status != http.StatusUnauthorized || rt.ok(r) || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "DPoP ") {
					t.Fatalf("%s: %d %s %q; want 401 with a DPoP challenge and nothing handed out", tc.name, r.status, r.body, r.header.Get("WWW-Authenticate"))
				}
			}
			if r := send("DPoP", key.Proof("POST", htu, tok)); r.status != http.StatusOK || !rt.ok(r) {
				t.Fatalf("with its proof: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("the guard", func(t *testing.T) {
		if r := g.get("/admin/x", tok); r.status != 401 {
			t.Fatalf("guard, as Bearer: %d %s", r.status, r.body)
		}
		if r := g.dpopGet("/admin/x", tok, key.Proof("GET", base+"/admin/x", tok)); r.status != 200 {
			t.Fatalf("guard, with its proof: %d %s", r.status, r.body)
		}
	})
}
