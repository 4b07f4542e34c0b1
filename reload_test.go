package tokengate_test

import (
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedStoreAndReload: two sites naming one store share an issuer (a
// token from one passes the other's guard), and keys and revocations
// survive a config reload.
func TestSharedStoreAndReload(t *testing.T) {
	_, clientHash := hashes()
	store := filepath.Join(t.TempDir(), "shared.db")
	config := func(body string) string {
		return fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		issuer http://gw.example
		store sqlite %[1]s
		client billing %[2]s
	}
	respond "A {http.auth.user.id}"
}
{$TOKENGATE_TEST_SITE2} {
	tokengate {
		issuer http://gw.example
		store sqlite %[1]s
		issuing off
	}
	respond "%[3]s {http.auth.user.id}"
}`, store, clientHash, body)
	}
	tc := newTester(t)
	tc.InitServer(config("B"), "caddyfile")
	g := &gateway{t: t, tc: tc}
	tok := func() string {
		r := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret))
		if r.status != 200 {
			t.Fatalf("token: %d %s", r.status, r.body)
		}
		return r.json["access_token"].(string)
	}
	atB := func(token string) response {
		req, _ := http.NewRequest(http.MethodGet, base2+"/x", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		return g.do(req)
	}
	keep, revoked := tok(), tok()
	if r := atB(keep); r.status != 200 || r.body != "B billing" {
		t.Fatalf("token from site A at site B: %d %q", r.status, r.body)
	}
	if r := g.form("/token/revoke", url.Values{"token": {revoked}}); r.status != 200 {
		t.Fatalf("revoke: %d", r.status)
	}
	// Site B shares the in-memory revocation set: refused at once.
	if r := atB(revoked); r.status != 401 {
		t.Fatalf("revoked token at site B: %d", r.status)
	}
	// Site B does not issue.
	req, _ := http.NewRequest(http.MethodPost, base2+"/token", strings.NewReader("grant_type=client_credentials"))
	if r := g.do(req); r.status != 401 {
		t.Fatalf("POST /token on a validate-only site: %d %s", r.status, r.body)
	}

	tc.InitServer(config("B2"), "caddyfile") // caddy reload
	if r := atB(keep); r.status != 200 || r.body != "B2 billing" {
		t.Fatalf("token after reload: %d %q", r.status, r.body)
	}
	if r := atB(revoked); r.status != 401 {
		t.Fatalf("revoked token after reload: %d", r.status)
	}
	if r := g.get("/x", tok()); r.status != 200 {
		t.Fatalf("new token after reload: %d", r.status)
	}
}
