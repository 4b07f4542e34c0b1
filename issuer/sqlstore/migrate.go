package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The migrations are the files migrations/NNNN_name.sql, applied in order
// of NNNN (1, 2, … with no gaps); each runs once, recorded in tg_schema.
// A file holds statements separated by ";" and full-line "--" comments
// (no ";" inside a statement or comment). {{serial}} becomes the dialect's
// auto-increment key type; a statement starting with {{postgres}} runs on
// PostgreSQL only, one starting with {{sqlite}} on SQLite only. Never edit
// a released migration (TestMigrationsUnchanged pins them): add a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations holds each migration's text, migrations[0] being version 1.
var migrations = mustLoadMigrations(migrationFiles)

// mustLoadMigrations reads the embedded files; a misnamed or missing file
// is a build mistake, caught by every test that opens a store.
func mustLoadMigrations(fsys fs.FS) []string {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		if n, err := strconv.Atoi(num); !ok || err != nil || n != i+1 {
			panic(fmt.Sprintf("sqlstore: migration file %s: want prefix %04d_", base, i+1))
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			panic(err)
		}
		out = append(out, string(b))
	}
	return out
}

// migrationStatements splits one migration into the statements to run on
// the dialect, in order.
func migrationStatements(migration string, postgres bool) []string {
	serial := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if postgres {
		serial = "BIGSERIAL PRIMARY KEY"
	}
	var lines []string
	for _, l := range strings.Split(migration, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	var out []string
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		stmt = strings.TrimSpace(stmt)
		if pg, ok := strings.CutPrefix(stmt, "{{postgres}}"); ok {
			if !postgres {
				continue
			}
			stmt = pg
		}
		if lite, ok := strings.CutPrefix(stmt, "{{sqlite}}"); ok {
			if postgres {
				continue
			}
			stmt = lite
		}
		if stmt == "" {
			continue
		}
		out = append(out, strings.ReplaceAll(stmt, "{{serial}}", serial))
	}
	return out
}

// SchemaVersion is the version Open migrates to.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating store: %w", err)
	}
	defer tx.Rollback()
	if s.postgres {
		// Serialise concurrent migrations from several instances.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7361626)`); err != nil {
			return fmt.Errorf("locking for migration: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS tg_schema (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema table: %w", err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM tg_schema`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO tg_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("initialising schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("store schema version %d is newer than this tokengate (%d): upgrade tokengate", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		for _, stmt := range migrationStatements(migrations[v], s.postgres) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("applying migration %d: %w", v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE tg_schema SET version = ?`), len(migrations)); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	return tx.Commit()
}
