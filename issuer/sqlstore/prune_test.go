package sqlstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
)

// TestPruningGivesWay holds SQLite's write lock from another pool (as
// another process would): a pruning batch does not wait its turn with the
// writers for up to the 10 s busy timeout but gives way (interrupted,
// rolled back) again and again, and once the lock is free pruning
// finishes with every expired row gone.
func TestPruningGivesWay(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	s := storeWithExpired(t, path, 300)
	var gaveWay atomic.Int64
	s.SetObserver(func(op string, _ time.Duration, err error) {
		if op == "DELETE tg_refresh" && err != nil {
			gaveWay.Add(1)
		}
	})

	release := holdWriteLock(t, path)
	done := make(chan error, 1)
	go func() { done <- s.PurgeExpired(ctx, time.Now()) }()
	waitfor.Until(t, "pruning batches giving way", 30*time.Second, 0, func() bool { return gaveWay.Load() >= 3 })
	select {
	case err := <-done:
		t.Fatalf("pruning ended while another connection held the write lock: %v", err)
	default:
	}
	release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("pruning did not finish within 30 s of the lock's release")
	}
	var left int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tg_refresh WHERE expires_at < ?`, ns(time.Now())).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d expired rows left", left)
	}
}

// TestPruningGivesUp: a write lock that never frees makes pruning fail
// with SQLite's busy error once it has given way for the store's busy
// timeout, as any write would, instead of yielding forever.
func TestPruningGivesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 10 s busy timeout")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	s := storeWithExpired(t, path, 1)
	defer holdWriteLock(t, path)()
	err := s.PurgeExpired(ctx, time.Now())
	if !isBusy(err) {
		t.Fatalf("pruning under a lock that never frees: %v, want SQLite's busy error", err)
	}
}

// holdWriteLock takes SQLite's write lock on the database at path from a
// pool of its own (as another process would) and returns what releases it.
func holdWriteLock(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	other, err := sql.Open("sqlite", sqliteDSN(path, sqliteBusy, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	holder, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Close() })
	if _, err := holder.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := holder.ExecContext(ctx, `ROLLBACK`); err != nil {
			t.Error(err)
		}
	}
}

// storeWithExpired opens a SQLite store at dsn (closed with the test)
// holding n expired refresh tokens.
func storeWithExpired(t *testing.T, dsn string, n int) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, "sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for range n {
		rec := randomRefresh()
		rec.ExpiresAt = time.Now().Add(-time.Hour)
		if err := s.CreateRefresh(ctx, rec, false); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
