package sqlstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/storetest"
)

func openSQLiteStore(t *testing.T) issuer.Store {
	s, err := Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteStore(t *testing.T) { storetest.Run(t, openSQLiteStore) }

func TestSQLiteFileIsPrivateAndMigrationIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tg.db")
	for range 2 {
		s, err := Open(context.Background(), "sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := s.db.QueryRow(`SELECT version FROM tg_schema`).Scan(&v); err != nil || v != SchemaVersion() {
			t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion())
		}
		s.Close()
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenRejectsUnknownDriver(t *testing.T) {
	if _, err := Open(context.Background(), "mysql", "x"); err == nil {
		t.Fatal("want error for unknown driver")
	}
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) issuer.Store {
		s, err := Open(context.Background(), "postgres", pgtest.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
