package tokengate_test

import (
	"strings"
	"testing"
)

// TestKeysRotateReachesTheJWKS: what `keys rotate` says is true: the key is
// stored at once and a running gateway lists it in its JWKS once it has
// synced with the store (within its 1 s interval), before it signs.
func TestKeysRotateReachesTheJWKS(t *testing.T) {
	g := startGateway(t, "")
	out, err := tgCLI(t, "", "keys", "rotate", "--store=sqlite:"+g.store)
	if err != nil || !strings.Contains(out, "in running gateways' JWKS within 1s") {
		t.Fatal(err, out)
	}
	kid := strings.Fields(out)[3]
	kid = strings.TrimSuffix(kid, ",")
	waitUntil(t, "the new key in the JWKS", func() bool {
		for _, k := range g.get("/.well-known/jwks.json", "").json["keys"].([]any) {
			if k.(map[string]any)["kid"] == kid {
				return true
			}
		}
		return false
	})
	if tok := g.clientToken(); kidOf(tok) == kid {
		t.Fatal("the new key signs before --publish-ahead")
	}
}
