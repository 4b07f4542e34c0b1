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

// TestInteropNodeAuthorizationCode runs the authorization code flow with
// PKCE through the login page with oauth4webapi and openid-client, each
// building its own authorization request from the metadata and checking
// the authorization response (state, iss) as it was written to: the code's
// tokens pass the guard, refresh rotates them, and a replayed code is
// invalid_grant and revokes what the first exchange issued.
func TestInteropNodeAuthorizationCode(t *testing.T) {
	needNodeModule(t, "oauth4webapi")
	needNodeModule(t, "openid-client")
	const callback = "http://127.0.0.1:9/cb"
	g := startGateway(t, "login\n\t\tclient spa public redirect_uri "+callback+" scopes orders:read")
	out, err := exec.Command("node", "interop/node/code.mjs", base, "spa", callback, "alice", userPassword).CombinedOutput()
	if err != nil {
		t.Fatalf("node client: %v\n%s", err, out)
	}
	type guarded struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	var got map[string]struct {
		ISSSupported   *bool    `json:"iss_supported"`
		PKCEMethods    []string `json:"pkce_methods"`
		ISS            string   `json:"iss"`
		Session        bool     `json:"session"`
		TokenType      string   `json:"token_type"`
		Scope          string   `json:"scope"`
		Guarded        guarded  `json:"guarded"`
		Rotated        bool     `json:"rotated"`
		RefreshGuarded guarded  `json:"refreshed_guarded"`
		Replay         string   `json:"replay"`
		Access         string   `json:"access_token"`
		RefreshAccess  string   `json:"refreshed_access_token"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node client printed %q", out)
	}
	if m := got["oauth4webapi"]; m.ISSSupported == nil || !*m.ISSSupported || !slices.Equal(m.PKCEMethods, []string{"S256"}) {
		t.Errorf("metadata as oauth4webapi read it: iss supported %v, PKCE methods %v", m.ISSSupported, m.PKCEMethods)
	}
	for _, lib := range []string{"oauth4webapi", "openid-client"} {
		r, ok := got[lib]
		if !ok {
			t.Errorf("%s: no result in %s", lib, out)
			continue
		}
		if r.ISS != base || !r.Session {
			t.Errorf("%s: authorization response iss %q, session cookie %v", lib, r.ISS, r.Session)
		}
		if r.TokenType != "bearer" || r.Scope != "orders:read" {
			t.Errorf("%s: token_type %q, scope %q", lib, r.TokenType, r.Scope)
		}
		for name, gr := range map[string]guarded{"code": r.Guarded, "refreshed": r.RefreshGuarded} {
			if gr.Status != 200 || !strings.Contains(gr.Body, "sub=alice") || !strings.Contains(gr.Body, "client=spa") {
				t.Errorf("%s: the guarded path with the %s token: %d %q", lib, name, gr.Status, gr.Body)
			}
		}
		if !r.Rotated {
			t.Errorf("%s: refresh token not rotated", lib)
		}
		if r.Replay != "invalid_grant" {
			t.Errorf("%s: a replayed code: %q", lib, r.Replay)
		}
		// The replay revoked what the code issued, refreshed tokens too.
		for name, tok := range map[string]string{"first exchange's": r.Access, "refreshed": r.RefreshAccess} {
			if tok == "" {
				t.Errorf("%s: no %s access token", lib, name)
			} else if res := g.get("/orders/1", tok); res.status != 401 {
				t.Errorf("%s: the %s access token after a replayed code: %d %s", lib, name, res.status, res.body)
			}
		}
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
