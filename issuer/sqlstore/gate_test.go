package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func TestWriteGate(t *testing.T) {
	ctx := context.Background()
	g := newWriteGate()
	leave, err := g.enter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Held: another enter waits until its context ends.
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := g.enter(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("entering a held gate: %v, want the context's deadline", err)
	}
	entered := make(chan struct{})
	go func() {
		l, err := g.enter(ctx)
		if err == nil {
			l()
		}
		close(entered)
	}()
	leave()
	<-entered // the waiter got in once the gate was left
	// A nil gate (PostgreSQL) lets everyone in at once.
	var none writeGate
	l1, err1 := none.enter(ctx)
	l2, err2 := none.enter(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	l1()
	l2()
}

// TestWritersQueueOnTheGate: while a write transaction is open, an
// autocommit write of the same store waits on the gate (its context ends
// it), not on SQLite's busy handler (whose error would be SQLITE_BUSY
// after the 10 s busy timeout), and goes through once the transaction
// ends.
func TestWritersQueueOnTheGate(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, leave, err := s.begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The statement never ran: it waited before SQLite, on the gate.
	var ran atomic.Int64
	s.SetObserver(func(op string, _ time.Duration, _ error) {
		if op == "INSERT tg_refresh" {
			ran.Add(1)
		}
	})
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.CreateRefresh(short, randomRefresh(), false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a write beside an open transaction: %v, want the context's deadline", err)
	}
	if ran.Load() != 0 {
		t.Fatal("the write reached SQLite (and its busy wait) while the gate was held")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	leave()
	if err := s.CreateRefresh(ctx, randomRefresh(), false); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 1 {
		t.Fatalf("%d INSERTs observed after the transaction ended, want 1", ran.Load())
	}
}

// TestMemoryStorePrunesBesideWriters: a :memory: store has one
// connection; pruning must not hold it while it waits for the gate that a
// writer holds while it waits for the connection.
func TestMemoryStorePrunesBesideWriters(t *testing.T) {
	ctx := context.Background()
	s := storeWithExpired(t, ":memory:", 200)
	done := make(chan error, 2)
	go func() { done <- s.PurgeExpired(ctx, time.Now()) }()
	go func() {
		for range 200 { // exclusive: a write transaction, through the gate
			if err := s.CreateRefresh(ctx, randomRefresh(), true); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("pruning and writing on a :memory: store did not finish in 30 s")
		}
	}
}

// TestWritesShareOneConnection: every write and transaction (pruning
// too) runs on the writer's connection, so its page cache is
// never dropped for another connection's commit: PRAGMA data_version on
// that connection changes only when another connection has committed.
func TestWritesShareOneConnection(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	version := func() int64 {
		t.Helper()
		conn, err := s.w.Conn(ctx) // its only connection
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	now := time.Now()
	rec := func(hash, family string) issuer.RefreshRecord {
		return issuer.RefreshRecord{Hash: hash, Family: family, Subject: "sub-" + family, Kind: "user", Issuer: "http://t",
			ExpiresAt: now.Add(time.Hour), AuthTime: now}
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"user", func() error { return s.PutUser(ctx, issuer.User{Name: "alice", PasswordHash: "x"}) }},
		{"refresh", func() error { return s.CreateRefresh(ctx, rec("h1", "f1"), false) }},
		{"exclusive refresh", func() error { return s.CreateRefresh(ctx, rec("h2", "f2"), true) }},
		{"rotation", func() error { _, err := s.RotateRefresh(ctx, "h2", rec("h3", "f2"), now, time.Minute); return err }},
		{"reuse", func() error {
			_, err := s.RotateRefresh(ctx, "h1", rec("h4", "f1"), now, 0)
			if err != nil {
				return err
			}
			if _, err = s.RotateRefresh(ctx, "h1", rec("h5", "f1"), now, 0); !errors.Is(err, issuer.ErrRefreshReused) {
				return fmt.Errorf("second use: %v, want ErrRefreshReused", err)
			}
			return nil
		}},
		{"end sessions", func() error { return s.EndSessions(ctx, "sub-f2", now, "") }},
		{"revocation", func() error {
			return s.AddRevocation(ctx, issuer.Revocation{Kind: "jti", Key: "j1", At: now, ExpiresAt: now.Add(time.Hour)})
		}},
		{"entity", func() error { return s.PutEntity(ctx, issuer.Entity{ID: "e1"}) }},
		{"secret", func() error {
			return s.AddSecret(ctx, issuer.EntitySecret{EntityID: "e1", Hash: "h", Sealed: "s", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, true, now)
		}},
		{"delete entity", func() error { return s.DeleteEntity(ctx, "e1") }},
		{"pruning", func() error { return s.PurgeExpired(ctx, now.Add(2*time.Hour)) }},
	}
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if v := version(); v != before {
			t.Fatalf("after %s: data_version %d, was %d: a write ran on another connection", st.name, v, before)
		}
	}
	// And the check can fail: a commit on a pool connection changes it.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM tg_users`); err != nil {
		t.Fatal(err)
	}
	if v := version(); v == before {
		t.Fatal("data_version unchanged after a commit on another connection")
	}
}
