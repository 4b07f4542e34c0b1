package sqlstore

import (
	"context"
	"database/sql"
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
	s := storeWithExpired(t, filepath.Join(t.TempDir(), "tg.db"), 0)
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
// too) runs on the writer's connection, so its page cache is never dropped
// for another connection's commit. PRAGMA data_version on a connection
// changes exactly when another connection has committed: after each step
// it must have changed on a pool connection (the step wrote) and not on
// the writer's.
func TestWritesShareOneConnection(t *testing.T) {
	ctx := context.Background()
	s := storeWithExpired(t, filepath.Join(t.TempDir(), "tg.db"), 0)
	poolConn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer poolConn.Close()
	version := func(conn *sql.Conn) int64 {
		t.Helper()
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	writerVersion := func() int64 {
		t.Helper()
		conn, err := s.w.Conn(ctx) // its only connection
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return version(conn)
	}
	now := time.Now()
	rec := func(hash, family string) issuer.RefreshRecord {
		return issuer.RefreshRecord{Hash: hash, Family: family, Subject: "sub-" + family, Kind: "user", Issuer: "http://t",
			ExpiresAt: now.Add(time.Hour), AuthTime: now}
	}
	rotate := func(old, next, family string, grace time.Duration) error {
		_, err := s.RotateRefresh(ctx, old, rec(next, family), now, grace)
		return err
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"user", func() error { return s.PutUser(ctx, issuer.User{Name: "alice", PasswordHash: "x"}) }},
		{"delete user", func() error { return s.DeleteUser(ctx, "alice") }},
		{"client", func() error { return s.PutClient(ctx, issuer.Client{ID: "c1", SecretHash: "x"}) }},
		{"delete client", func() error { return s.DeleteClient(ctx, "c1") }},
		{"key", func() error {
			return s.AddKey(ctx, issuer.KeyRecord{KID: "k1", Alg: "EdDSA", Seq: 1, Private: "p", CreatedAt: now, ActivateAt: now, MaxTTL: time.Hour})
		}},
		{"key lifetime", func() error { return s.RaiseKeyLifetime(ctx, "k1", 2*time.Hour) }},
		{"reseal", func() error {
			return s.Reseal(ctx, "fp", func(v issuer.SealedValue) (string, error) { return v.Sealed + "!", nil })
		}},
		{"delete key", func() error { return s.DeleteKey(ctx, "k1") }},
		{"setting", func() error {
			_, err := s.Setting(ctx, "s1", func() (string, error) { return "v", nil })
			return err
		}},
		{"refresh", func() error { return s.CreateRefresh(ctx, rec("h1", "f1"), false) }},
		{"exclusive refresh", func() error { return s.CreateRefresh(ctx, rec("h2", "f2"), true) }},
		{"rotation", func() error { return rotate("h2", "h3", "f2", time.Minute) }},
		{"retry within the grace", func() error { return rotate("h2", "h3b", "f2", time.Minute) }},
		{"reuse", func() error {
			if err := rotate("h1", "h4", "f1", 0); err != nil {
				return err
			}
			if err := rotate("h1", "h5", "f1", 0); !errors.Is(err, issuer.ErrRefreshReused) {
				return fmt.Errorf("second use: %v, want ErrRefreshReused", err)
			}
			return nil
		}},
		{"family revocation", func() error {
			if err := s.CreateRefresh(ctx, rec("h6", "f3"), false); err != nil {
				return err
			}
			return s.RevokeFamily(ctx, "f3")
		}},
		{"end sessions", func() error { return s.EndSessions(ctx, "sub-f2", now.Add(time.Second), "") }},
		{"revocations", func() error {
			for _, key := range []string{"j1", "j2"} { // pruning keeps the newest
				if err := s.AddRevocation(ctx, issuer.Revocation{Kind: "jti", Key: key, At: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"entity", func() error { return s.PutEntity(ctx, issuer.Entity{ID: "e1"}) }},
		{"secret", func() error {
			return s.AddSecret(ctx, issuer.EntitySecret{EntityID: "e1", Hash: "h", Sealed: "s", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, true, now)
		}},
		{"delete entity", func() error { return s.DeleteEntity(ctx, "e1") }},
		{"DPoP proof", func() error {
			fresh, err := s.UseProofID(ctx, "p1", now.Add(time.Minute), now)
			if err == nil && !fresh {
				err = errors.New("a new proof id was taken for a replay")
			}
			return err
		}},
		{"DPoP binding", func() error { return s.BindFamily(ctx, "f9", "jkt", now.Add(time.Minute)) }},
	}
	purges := []struct {
		name, query string
	}{
		{"refresh tokens", `SELECT COUNT(*) FROM tg_refresh`},
		{"revocations", `SELECT COUNT(*) FROM tg_revocations`},
		{"DPoP proofs", `SELECT COUNT(*) FROM tg_dpop_proofs`},
		{"DPoP bindings", `SELECT COUNT(*) FROM tg_dpop_families`},
	}
	steps = append(steps, struct {
		name string
		run  func() error
	}{"pruning", func() error {
		// Each purge must delete something, or it could run anywhere
		// unnoticed.
		before := make([]int64, len(purges))
		for i, p := range purges {
			if err := poolConn.QueryRowContext(ctx, p.query).Scan(&before[i]); err != nil {
				return err
			}
		}
		if err := s.PurgeExpired(ctx, now.Add(2*time.Hour)); err != nil {
			return err
		}
		for i, p := range purges {
			var n int64
			if err := poolConn.QueryRowContext(ctx, p.query).Scan(&n); err != nil {
				return err
			}
			if n >= before[i] {
				return fmt.Errorf("pruning left %d of %d %s", n, before[i], p.name)
			}
		}
		return nil
	}})
	w, pool := writerVersion(), version(poolConn)
	for _, st := range steps {
		if err := st.run(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if v := version(poolConn); v == pool {
			t.Fatalf("after %s: data_version of a pool connection unchanged: the step wrote nothing", st.name)
		} else {
			pool = v
		}
		if v := writerVersion(); v != w {
			t.Fatalf("after %s: data_version of the writer's connection %d, was %d: a write ran on another connection", st.name, v, w)
		}
	}
	// And the writer's would have seen one: a commit on a pool connection.
	if _, err := poolConn.ExecContext(ctx, `DELETE FROM tg_settings`); err != nil {
		t.Fatal(err)
	}
	if v := writerVersion(); v == w {
		t.Fatal("data_version of the writer's connection unchanged after a commit on a pool connection")
	}
}
