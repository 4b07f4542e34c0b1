package tokengate_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"testing"
)

// TestInteropNodeClients drives the gateway with openid-client (discovery
// from RFC 8414 metadata, client_credentials, introspection, revocation)
// and verifies its tokens with jose, for each asymmetric algorithm.
func TestInteropNodeClients(t *testing.T) {
	if _, err := os.Stat("interop/node/node_modules/jose"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("interop/node has no node_modules: test.sh installs them")
		}
		t.Skip("run `npm ci --prefix interop/node` (test.sh does) to run the Node interop test")
	}
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			g := startGateway(t, "signing_alg "+alg)
			out, err := exec.Command("node", "interop/node/client.mjs", base, "billing", clientSecret).CombinedOutput()
			if err != nil {
				t.Fatalf("node client: %v\n%s", err, out)
			}
			var got map[string]any
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("node client printed %q", out)
			}
			for k, want := range map[string]any{"alg": alg, "sub": "billing", "scope": "orders:read", "client_id": "billing",
				"token_type": "bearer", "active_before": true, "active_after": false} {
				if got[k] != want {
					t.Errorf("%s = %v, want %v", k, got[k], want)
				}
			}
			// Revoked through openid-client: the guard refuses it too.
			if r := g.get("/api", got["access_token"].(string)); r.status != 401 {
				t.Fatalf("token revoked by the Node client still passes the guard: %d", r.status)
			}
		})
	}
}
