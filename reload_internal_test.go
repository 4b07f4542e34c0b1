package tokengate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// sharedCore returns the Core the pool shares for the SQLite store at path.
func sharedCore(t *testing.T, path string) *issuer.Core {
	t.Helper()
	var core *issuer.Core
	corePool.Range(func(key, value any) bool {
		if key == "sqlite:"+path {
			core = value.(*pooledCore).core
		}
		return core == nil
	})
	if core == nil {
		t.Fatalf("no shared core for %s", path)
	}
	return core
}

// TestReloadAppliesNewSchedulesAndLifetimes: the Core outlives a config
// reload (caddy.UsagePool), yet after the reload the new key rotation
// period, access_ttl and key retention apply, and the old configuration's
// registrations are gone, even where they were stricter.
func TestReloadAppliesNewSchedulesAndLifetimes(t *testing.T) {
	store := filepath.Join(t.TempDir(), "tg.db")
	config := func(rotation, ttl, endpointTTL string) string {
		return fmt.Sprintf(`{
	skip_install_trust
	admin localhost:{$TOKENGATE_TEST_ADMIN_PORT}
	http_port {$TOKENGATE_TEST_HTTP_PORT}
	https_port {$TOKENGATE_TEST_HTTPS_PORT}
	grace_period 1ns
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		key_rotation %s
		access_ttl %s
		endpoint owin {
			access_ttl %s
		}
	}
	respond "ok"
}`, store, rotation, ttl, endpointTTL)
	}
	// TestMain (package tokengate_test, same binary) picked free ports.
	adminPort, err := strconv.Atoi(os.Getenv("TOKENGATE_TEST_ADMIN_PORT"))
	if err != nil {
		t.Fatalf("TOKENGATE_TEST_ADMIN_PORT: %v", err)
	}
	tc := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort})
	tc.InitServer(config("2h", "15m", "1h"), "caddyfile")
	core := sharedCore(t, store)
	keyTTL := func() time.Duration {
		recs, err := core.Store().ListKeys(context.Background())
		if err != nil || len(recs) != 1 {
			t.Fatalf("keys: %+v %v", recs, err)
		}
		return recs[0].MaxTTL
	}
	if got := core.Rotation(issuer.AlgEdDSA); got != 2*time.Hour {
		t.Fatalf("rotation before reload: %v", got)
	}
	if got := keyTTL(); got != time.Hour {
		t.Fatalf("key lifetime before reload: %v, want the endpoint's 1h", got)
	}

	tc.InitServer(config("240h", "48h", "30m"), "caddyfile") // caddy reload
	if sharedCore(t, store) != core {
		t.Fatal("the reload opened a new core")
	}
	if got := core.Rotation(issuer.AlgEdDSA); got != 240*time.Hour {
		t.Fatalf("rotation after reload: %v, want the new 240h (not the old, shorter 2h)", got)
	}
	if got := keyTTL(); got != 48*time.Hour {
		t.Fatalf("key lifetime after reload: %v, want the new access_ttl 48h", got)
	}
	if got := core.MaxLifetime(); got != 48*time.Hour {
		t.Fatalf("revocations kept for %v, want 48h", got)
	}
	r, err := tc.Client.Get(os.Getenv("TOKENGATE_TEST_SITE") + "/.well-known/jwks.json")
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("jwks after reload: %v %v", r, err)
	}
	r.Body.Close()
}
