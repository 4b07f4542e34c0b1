// Package pgtest gives tests a fresh PostgreSQL schema on the server that
// test.sh starts (TOKENGATE_TEST_POSTGRES_DSN). Without one, tests skip
// with a message, except under CI where a missing server is a failure.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// EnvDSN names the variable holding the server's DSN.
const EnvDSN = "TOKENGATE_TEST_POSTGRES_DSN"

// Schema creates an empty schema, dropped when the test ends, and returns
// a DSN whose search_path is that schema.
func Schema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: test.sh starts PostgreSQL for these tests", EnvDSN)
		}
		t.Skipf("no PostgreSQL: set %s (./test.sh starts a server) to run this test", EnvDSN)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "tg_test_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("creating schema: %v", err)
	}
	t.Cleanup(func() { _, _ = db.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
