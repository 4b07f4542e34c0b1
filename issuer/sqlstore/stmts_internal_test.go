package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestQueriesArePreparedOnce: the store's queries are prepared the first
// time they run and reused after, so a request compiles no SQL; Close
// closes them.
func TestQueriesArePreparedOnce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	work := func() {
		if err := s.PutClient(ctx, issuer.Client{ID: "svc", SecretHash: "h"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetClient(ctx, "svc"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetRefresh(ctx, "nope"); err == nil {
			t.Fatal("GetRefresh found a token never stored")
		}
		if err := s.PurgeExpired(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	work()
	n := s.stmts.n.Load()
	first, err := s.prepare(ctx, refreshByHash, write)
	if err != nil {
		t.Fatal(err)
	}
	work()
	if again := s.stmts.n.Load(); again != n {
		t.Errorf("prepared statements grew from %d to %d when the same queries ran again", n, again)
	}
	if p, _ := s.prepare(ctx, refreshByHash, write); p != first {
		t.Error("a query was prepared a second time")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.stmts.n.Load(); n != 0 {
		t.Errorf("%d statements left in the cache after Close", n)
	}
	// database/sql says which was closed: the statement, not only the pool.
	for name, st := range map[string]*sql.Stmt{"pool": first.stmt, "writer": first.write.Load()} {
		if st == nil {
			t.Errorf("refreshByHash was not prepared on the %s", name)
			continue
		}
		if _, err := st.ExecContext(ctx, "x"); err == nil || !strings.Contains(err.Error(), "statement is closed") {
			t.Errorf("a prepared statement on the %s after Close: %v, want it closed", name, err)
		}
	}
}
