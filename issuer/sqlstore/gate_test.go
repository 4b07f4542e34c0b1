package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
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
