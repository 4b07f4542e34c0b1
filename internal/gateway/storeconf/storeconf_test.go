package storeconf

import (
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/config"
)

func TestLocation(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("TG_STORE_TEST_DSN", "postgres://db/tg")
	defDriver, defDSN := Default()
	for _, tc := range []struct {
		name        string
		store       *config.Store
		driver, dsn string
	}{
		{"none", nil, defDriver, defDSN},
		{"no driver", &config.Store{DSN: "ignored.db"}, defDriver, defDSN},
		{"relative sqlite path", &config.Store{Driver: "sqlite", DSN: "rel.db"}, "sqlite", filepath.Join(dir, "rel.db")},
		{"absolute sqlite path", &config.Store{Driver: "sqlite", DSN: "/var/lib/tg.db"}, "sqlite", "/var/lib/tg.db"},
		{"sqlite in memory", &config.Store{Driver: "sqlite", DSN: ":memory:"}, "sqlite", ":memory:"},
		{"postgres placeholder", &config.Store{Driver: "postgres", DSN: "{env.TG_STORE_TEST_DSN}"}, "postgres", "postgres://db/tg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			driver, dsn := Location(tc.store, caddy.NewReplacer())
			if driver != tc.driver || dsn != tc.dsn {
				t.Fatalf("Location = %s %s, want %s %s", driver, dsn, tc.driver, tc.dsn)
			}
		})
	}
	if defDriver != "sqlite" || filepath.Base(defDSN) != "tokengate.db" {
		t.Fatalf("Default = %s %s", defDriver, defDSN)
	}
}
