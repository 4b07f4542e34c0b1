package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"
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

// TestUpgradeToUnusedSubjectIndex opens a SQLite store left by schema 5
// (with tokens and a session cut-off): migration 6 swaps the subject index
// for one of unused tokens, and the tokens and the cut-off stay.
func TestUpgradeToUnusedSubjectIndex(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE tg_schema (version INTEGER NOT NULL)`, `INSERT INTO tg_schema (version) VALUES (5)`}
	for v := range 5 {
		stmts = append(stmts, migrationStatements(migrations[v], false)...)
	}
	stmts = append(stmts,
		`INSERT INTO tg_refresh (hash, family, subject, kind, principal, client_id, scope, issuer, expires_at, used_at, auth_time, replaced_by)
			VALUES ('h1', 'f1', 'kim', 'user', 'kim', '', '', 'iss', 9000000000000000000, 5, 1, 'h2'),
			('h2', 'f1', 'kim', 'user', 'kim', '', '', 'iss', 9000000000000000000, 0, 1, '')`,
		`INSERT INTO tg_refresh_cutoffs (subject, at, keep_family) VALUES ('kim', 10, '')`)
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(ctx, "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var indexes []string
	rows, err := s.db.QueryContext(ctx, `SELECT name || ': ' || sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tg_refresh' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ix string
		if err := rows.Scan(&ix); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, ix)
	}
	rows.Close()
	got := strings.Join(indexes, "\n")
	if strings.Contains(got, "tg_refresh_subject:") || !strings.Contains(got, "tg_refresh_subject_unused: CREATE INDEX tg_refresh_subject_unused ON tg_refresh (subject, auth_time) WHERE used_at = 0") {
		t.Fatalf("indexes after the upgrade:\n%s", got)
	}
	var tokens, cutoffs, unusedIndexed int
	if err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM tg_refresh), (SELECT COUNT(*) FROM tg_refresh_cutoffs),
		(SELECT COUNT(*) FROM tg_refresh INDEXED BY tg_refresh_subject_unused WHERE subject = 'kim' AND used_at = 0)`).Scan(&tokens, &cutoffs, &unusedIndexed); err != nil {
		t.Fatal(err)
	}
	if tokens != 2 || cutoffs != 1 || unusedIndexed != 1 {
		t.Fatalf("after the upgrade: %d tokens, %d cut-offs, %d unused tokens in the index", tokens, cutoffs, unusedIndexed)
	}
	// h2, unused, keeps kim's cut-off.
	if err := s.PurgeExpired(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tg_refresh_cutoffs`).Scan(&cutoffs); err != nil || cutoffs != 1 {
		t.Fatalf("%d cut-offs after a purge (%v), want kim's", cutoffs, err)
	}
}
