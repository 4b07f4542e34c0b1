package sqlstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"testing/fstest"
)

// TestMigrationsUnchanged pins what every released migration runs on each
// dialect: a released migration must never change (add a new file instead).
// The hashes are of the statements as run, joined by NUL; they were taken
// from the migrations as they stood in Go source before moving to files.
func TestMigrationsUnchanged(t *testing.T) {
	want := map[bool][]string{
		false: {"c67cb23401b38ad6", "45942130fea3641b", "99c6a77896a9c5db", "03ce7b0a1df16586", "a2917ea845f58266", "92058b7fa8b5a8d6"},
		true:  {"c7d1b1ddfb15aaeb", "32d446e47e1b88bc", "99c6a77896a9c5db", "03ce7b0a1df16586", "1400a32ec0c04489", "e3b0c44298fc1c14"},
	}
	for postgres, hashes := range want {
		if len(migrations) < len(hashes) {
			t.Fatalf("%d migrations, %d released", len(migrations), len(hashes))
		}
		for i, h := range hashes {
			sum := sha256.Sum256([]byte(strings.Join(migrationStatements(migrations[i], postgres), "\x00")))
			if got := hex.EncodeToString(sum[:])[:16]; got != h {
				t.Errorf("migration %d (postgres %v) changed: %s, want %s", i+1, postgres, got, h)
			}
		}
	}
}

func TestMigrationStatements(t *testing.T) {
	m := "-- a comment; with a semicolon\nCREATE TABLE a (id {{serial}});\n  -- indented comment\n\t{{postgres}} CREATE INDEX i ON a (id);\n\nCREATE TABLE b (x TEXT);\n{{sqlite}} CREATE INDEX j ON b (x)\n"
	for postgres, want := range map[bool][]string{
		false: {"CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT)", "CREATE TABLE b (x TEXT)", " CREATE INDEX j ON b (x)"},
		true:  {"CREATE TABLE a (id BIGSERIAL PRIMARY KEY)", " CREATE INDEX i ON a (id)", "CREATE TABLE b (x TEXT)"},
	} {
		if got := migrationStatements(m, postgres); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("postgres %v: %q, want %q", postgres, got, want)
		}
	}
}

func TestLoadMigrationsNeedsContiguousNumbers(t *testing.T) {
	for name, files := range map[string][]string{
		"gap":       {"migrations/0001_a.sql", "migrations/0003_c.sql"},
		"no prefix": {"migrations/init.sql"},
		"from two":  {"migrations/0002_b.sql"},
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range files {
				fsys[f] = &fstest.MapFile{Data: []byte("SELECT 1")}
			}
			defer func() {
				if recover() == nil {
					t.Fatal("loaded misnumbered migrations")
				}
			}()
			mustLoadMigrations(fsys)
		})
	}
	if got := mustLoadMigrations(fstest.MapFS{"migrations/0001_a.sql": {Data: []byte("A")}, "migrations/0002_b.sql": {Data: []byte("B")}}); strings.Join(got, "") != "AB" {
		t.Fatalf("%q", got)
	}
}
