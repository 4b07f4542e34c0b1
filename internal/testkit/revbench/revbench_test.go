package revbench

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
)

// TestRevocationAcrossProcesses runs two real Caddy processes on one store
// (SQLite, then PostgreSQL): every revocation made over HTTP at A is
// enforced by A at once and reaches B (Run fails otherwise, after 10s).
// The delays are logged, not asserted: scripts/bench-revocation.sh
// measures them.
func TestRevocationAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Caddy")
	}
	bin := filepath.Join(t.TempDir(), "caddy")
	build := exec.Command("go", "build", "-o", bin, "../../../cmd/caddy")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building caddy: %v", err)
	}
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			dsn := ""
			if driver == "postgres" {
				dsn = pgtest.Schema(t) // skips without a server; Run makes its own schema in it
			}
			res, err := Run(bin, driver, dsn, 10)
			if err != nil {
				t.Fatal(err)
			}
			t.Log(res)
		})
	}
}
