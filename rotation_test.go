package tokengate_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokengate/caddy-tokengate/cli"
	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
)

// kidOf returns a JWT's kid, "" if it has none (safe off the test goroutine).
func kidOf(token string) string {
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	var h struct{ Kid string }
	_ = json.Unmarshal(b, &h)
	return h.Kid
}

// TestKeysRotateUnderLoad runs `caddy tokengate keys rotate` (another
// process, as far as the gateway knows) on the store of a running gateway,
// publishing the key only 1s ahead, while a loop issues tokens and makes
// guarded requests: not one request may fail, and the new key takes over.
func TestKeysRotateUnderLoad(t *testing.T) {
	g := startGateway(t, "")
	before := kidOf(g.clientToken())
	var requests, failures atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	var lastKid, firstFailure atomic.Value
	fail := func(what string, r response) {
		failures.Add(1)
		firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s %v", what, r.status, r.body, r.header))
	}
	go func() {
		defer close(done)
		deadline := time.Now().Add(30 * time.Second) // bounded whatever happens
		for i := 0; time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret))
			requests.Add(1)
			if r.status != 200 {
				fail("token", r)
				continue
			}
			tok := r.json["access_token"].(string)
			lastKid.Store(kidOf(tok))
			for range 5 {
				requests.Add(1)
				if up := g.get("/orders/1", tok); up.status != 200 {
					fail("guard", up)
				}
			}
		}
	}()
	waitUntil(t, "traffic before the rotation", func() bool { return requests.Load() >= 20 })
	root := &cobra.Command{Use: "tokengate", SilenceUsage: true}
	cli.Command().CobraFunc(root)
	root.SetArgs([]string{"keys", "rotate", "--publish-ahead", "1s", "--store", "sqlite:" + g.store})
	root.SetOut(&strings.Builder{})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	// The gateway picks the key up within its 1s sync; it signs once active.
	waitUntil(t, "the rotated key signing", func() bool { k, _ := lastKid.Load().(string); return k != "" && k != before })
	onNew := requests.Load()
	waitUntil(t, "requests on the new key", func() bool { return requests.Load() >= onNew+30 })
	close(stop)
	<-done
	if k, _ := lastKid.Load().(string); k == before {
		t.Fatalf("the gateway never signed with the rotated key")
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during rotation; first: %v", failures.Load(), requests.Load(), firstFailure.Load())
	}
	keys := g.get("/.well-known/jwks.json", "").json["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("JWKS after rotation has %d keys, want the old and the new", len(keys))
	}
	t.Logf("%d requests, 0 failures, key %s -> %s", requests.Load(), before, lastKid.Load())
}

// waitUntil waits at most 15s for cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Until(t, what, 15*time.Second, 0, cond)
}
