package tokengate_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestAppNamedInConfig: a JSON config may name the tokengate app, which
// Caddy then provisions before or after the http app (in map order);
// either way the site starts on its Core. (Caddyfile-adapted configs never
// name it: their sites load it, as every other test shows.)
func TestAppNamedInConfig(t *testing.T) {
	_, clientHash := hashes()
	adapted, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		issuer http://gw.example
		store sqlite %s
		client billing %s
	}
	respond "ok {http.auth.user.id}"
}`, filepath.Join(t.TempDir(), "tg.db"), clientHash)), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(adapted, &cfg); err != nil {
		t.Fatal(err)
	}
	apps := cfg["apps"].(map[string]any)
	if _, ok := apps["tokengate"]; ok {
		t.Fatal("the Caddyfile adapter names the tokengate app; this test wants a config that does")
	}
	apps["tokengate"] = map[string]any{}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer(string(raw), "json")
	if r := g.get("/x", g.clientToken()); r.status != 200 || r.body != "ok billing" {
		t.Fatalf("with a token: %d %q", r.status, r.body)
	}
}
