package tokengate_test

import (
	"fmt"
	"net/url"
	"testing"
)

// TestMemoryStore: `store sqlite :memory:` is one database on one
// connection: tokens, refresh tokens and revocations all work on it.
func TestMemoryStore(t *testing.T) {
	userHash, clientHash := hashes()
	tc := newTester(t)
	tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite :memory:
		user alice %s
		client billing %s
	}
	respond "sub={http.auth.user.id}"
}`, userHash, clientHash), "caddyfile")
	g := &gateway{t: t, tc: tc}
	login := g.passwordToken("alice")
	r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {login["refresh_token"].(string)}})
	if r.status != 200 {
		t.Fatalf("refresh on :memory:: %d %s", r.status, r.body)
	}
	at := r.json["access_token"].(string)
	if up := g.get("/api", at); up.status != 200 || up.body != "sub=alice" {
		t.Fatalf("guard: %d %s", up.status, up.body)
	}
	if r := g.form("/token/revoke", url.Values{"token": {at}}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if up := g.get("/api", at); up.status != 401 {
		t.Fatalf("revoked token: %d", up.status)
	}
	if up := g.get("/api", g.clientToken()); up.status != 200 {
		t.Fatalf("client token: %d", up.status)
	}
}
