package tokengate_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestInteropNodeClients drives the gateway with openid-client (discovery
// from RFC 8414 metadata, client_credentials, introspection, revocation)
// and verifies its tokens with jose, for each asymmetric algorithm.
func TestInteropNodeClients(t *testing.T) {
	needNodeModule(t, "jose")
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

// nodeGrant is what interop/node/dpop.mjs reports for one grant.
type nodeGrant struct {
	TokenType string `json:"token_type"`
	Rotated   bool   `json:"rotated"`
	Guarded   struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	} `json:"guarded"`
	OtherKey struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	} `json:"other_key"`
}

// TestInteropNodeDPoP drives DPoP with oauth4webapi, a client library
// written by others against RFC 9449: DPoP-bound tokens from every grant,
// guarded requests with its proofs, refresh-token binding for a public
// client, a proof from another key refused; with and without server nonces.
func TestInteropNodeDPoP(t *testing.T) {
	needNodeModule(t, "oauth4webapi")
	for _, tc := range []struct{ name, extra, alg string }{
		{"ES256", "", "ES256"},
		{"Ed25519 with nonces", "dpop {\n\t\t\tnonce\n\t\t}", "Ed25519"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			startGateway(t, tc.extra)
			out, err := exec.Command("node", "interop/node/dpop.mjs", base, "billing", "narrow", clientSecret, "alice", userPassword, tc.alg).CombinedOutput()
			if err != nil {
				t.Fatalf("node client: %v\n%s", err, out)
			}
			var got struct {
				Thumbprint     string    `json:"thumbprint"`
				Algs           []string  `json:"algs"`
				CC             nodeGrant `json:"client_credentials"`
				Password       nodeGrant `json:"password"`
				Refresh        nodeGrant `json:"refresh"`
				PublicRefresh  nodeGrant `json:"public_refresh"`
				PublicOtherKey string    `json:"public_refresh_other_key"`
				PublicNoProof  string    `json:"public_refresh_no_proof"`
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("node client printed %q", out)
			}
			for name, g := range map[string]nodeGrant{"client_credentials": got.CC, "password": got.Password,
				"refresh": got.Refresh, "public refresh": got.PublicRefresh} {
				if g.TokenType != "dpop" || g.Guarded.Status != 200 {
					t.Errorf("%s: token_type %q, guarded %d %q", name, g.TokenType, g.Guarded.Status, g.Guarded.Body)
				}
			}
			if !strings.Contains(got.CC.Guarded.Body, "client=billing") || !strings.Contains(got.PublicRefresh.Guarded.Body, "sub=alice") {
				t.Errorf("upstream saw the wrong caller: %s", out)
			}
			if got.CC.OtherKey.Status != 401 || got.CC.OtherKey.Error != "invalid_dpop_proof" {
				t.Errorf("a proof from another key: %+v", got.CC.OtherKey)
			}
			if !got.Refresh.Rotated {
				t.Error("refresh token not rotated")
			}
			if got.PublicOtherKey != "invalid_grant" || got.PublicNoProof != "invalid_grant" {
				t.Errorf("public client's bound refresh token with another key: %q, without a proof: %q", got.PublicOtherKey, got.PublicNoProof)
			}
			if len(got.Thumbprint) != 43 || !slices.Contains(got.Algs, tc.alg) {
				t.Errorf("thumbprint %q, algs %v", got.Thumbprint, got.Algs)
			}
		})
	}
}

// needNodeModule skips a Node interop test when test.sh could not install
// the Node clients (it says why in TOKENGATE_NODE_SKIP) or, outside CI,
// when they were never installed; under CI a missing module is a failure.
func needNodeModule(t *testing.T, module string) {
	t.Helper()
	if why := os.Getenv("TOKENGATE_NODE_SKIP"); why != "" {
		t.Skip("Node interop skipped: " + why)
	}
	if _, err := os.Stat("interop/node/node_modules/" + module); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("interop/node has no node_modules: test.sh installs them")
		}
		t.Skip("run `npm ci --prefix interop/node` (test.sh does) to run the Node interop tests")
	}
}
