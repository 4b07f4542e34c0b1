package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestCheckpointerTakesCheckpointsOffWriters streams writes that stay
// below the pool's backstop: without the checkpointer nothing reaches the
// database file (so the pool's connections do not checkpoint at SQLite's
// 1000 pages); with it, a pass after the stream copies them all.
func TestCheckpointerTakesCheckpointsOffWriters(t *testing.T) {
	const writes = 300 // ~7 MB of WAL: past SQLite's 4 MB, below walLimit
	for _, tc := range []struct {
		name  string
		every time.Duration // 0: no checkpointer
	}{
		{"without checkpointer", 0},
		{"with checkpointer", time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "tg.db")
			var after atomic.Bool
			passed := make(chan checkpointResult, 1)
			opts := openOptions{checkpointEvery: tc.every, walLimit: walLimit, checkpointed: func(r checkpointResult) {
				if after.Load() {
					select {
					case passed <- r:
					default:
					}
				}
			}}
			s, err := open(ctx, "sqlite", path, false, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			before := fileSize(t, path)
			for range writes {
				if err := s.CreateRefresh(ctx, randomRefresh(), false); err != nil {
					t.Fatal(err)
				}
			}
			if tc.every == 0 {
				// (With the checkpointer the WAL may start over between
				// writes and never get this large.)
				if wal := fileSize(t, path+"-wal"); wal < 5<<20 {
					t.Fatalf("WAL of %d bytes after %d writes: the test needs more than SQLite's 4 MB", wal, writes)
				}
				if grown := fileSize(t, path); grown != before {
					t.Fatalf("database file grew from %d to %d bytes: a writer checkpointed", before, grown)
				}
				return
			}
			// Two passes that started after the last write: the second
			// finds nothing left to copy.
			after.Store(true)
			var r checkpointResult
			for range 2 {
				select {
				case r = <-passed:
				case <-time.After(30 * time.Second):
					t.Fatal("no checkpoint pass for 30 s")
				}
			}
			if r.err != nil || r.copied != r.walPages || fileSize(t, path) <= before {
				t.Fatalf("after the stream a pass copied %d of %d pages (%v), database file %d bytes (was %d)",
					r.copied, r.walPages, r.err, fileSize(t, path), before)
			}
		})
	}
}

// TestCheckpointerBoundsTheWAL streams writes one after the other with no
// pause: a passive checkpoint copies the WAL but cannot make it start over
// (some transaction always follows its pass), so the checkpointer's
// restart does, or else the writers' backstop at walLimit. Without either
// the WAL grows with every write.
func TestCheckpointerBoundsTheWAL(t *testing.T) {
	const writes = 6000 // ~140 MB of WAL without checkpoints
	const limit = 1 << 20
	for _, tc := range []struct {
		name      string
		every     time.Duration // 0: no checkpointer
		limit     int64
		restartAt int64
		min, max  int64 // bounds of the largest WAL
		restarts  bool  // the checkpointer must have restarted the WAL
	}{
		// (Restarts alone: TestCheckpointerRestartsTheWAL.)
		// A writer's backstop checkpoint is skipped while the checkpointer
		// holds the checkpoint lock, so the WAL overshoots the limit
		// (measured 8 to 45 MB on a busy machine); below what it always
		// reaches without either (about 140 MB) still tells bounded from
		// growing, with room for a slower machine.
		{"checkpointer and backstop", 10 * time.Millisecond, limit, 0, 0, 90 << 20, false},
		// As Open sets it up: restarts, and the backstop behind them.
		{"checkpointer restarts, backstop", 10 * time.Millisecond, limit, limit / 2, 0, 90 << 20, false},
		{"neither", 0, 1 << 40, 0, 96 << 20, 1 << 40, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "tg.db")
			var passes, copied, restarts atomic.Int64
			opts := openOptions{checkpointEvery: tc.every, walLimit: tc.limit, restartAt: tc.restartAt, checkpointed: func(r checkpointResult) {
				passes.Add(1)
				copied.Add(r.copied)
				if r.restarted {
					restarts.Add(1)
				}
			}}
			s, err := open(ctx, "sqlite", path, false, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var maxWAL int64
			for i := range writes {
				if err := s.CreateRefresh(ctx, randomRefresh(), false); err != nil {
					t.Fatal(err)
				}
				if i%10 == 0 {
					maxWAL = max(maxWAL, fileSize(t, path+"-wal"))
				}
			}
			t.Logf("largest WAL %d KiB in %d writes; %d passes copied %d pages, %d restarts", maxWAL>>10, writes, passes.Load(), copied.Load(), restarts.Load())
			if maxWAL < tc.min || maxWAL > tc.max {
				t.Fatalf("WAL grew to %d bytes, want %d to %d", maxWAL, tc.min, tc.max)
			}
			if tc.restarts && restarts.Load() == 0 {
				t.Fatal("the checkpointer never restarted the WAL")
			}
		})
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func randomRefresh() issuer.RefreshRecord {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	now := time.Now()
	return issuer.RefreshRecord{Hash: hex.EncodeToString(b), Family: hex.EncodeToString(b[:8]), Subject: "u" + hex.EncodeToString(b[:2]),
		Kind: "user", Issuer: "http://test", ExpiresAt: now.Add(time.Hour), AuthTime: now}
}

// TestCheckpointerLifetime checks which opens run a checkpointer and that
// Close stops it before returning; and the settings each pool connection
// runs with.
func TestCheckpointerLifetime(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	for _, tc := range []struct {
		name           string
		open           func() (*Store, error)
		checkpointer   bool
		autoCheckpoint int
	}{
		{"file", func() (*Store, error) { return Open(ctx, "sqlite", path) }, true, walLimit / sqlitePage},
		{"read-only open", func() (*Store, error) { return OpenExisting(ctx, "sqlite", path) }, false, 1000},
		{"memory", func() (*Store, error) { return Open(ctx, "sqlite", ":memory:") }, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			if (s.ckpt != nil) != tc.checkpointer {
				s.Close()
				t.Fatalf("checkpointer running: %v, want %v", s.ckpt != nil, tc.checkpointer)
			}
			if tc.autoCheckpoint != 0 {
				// Every connection of the pool, held at once.
				var conns []*sql.Conn
				for i := range sqlitePool {
					c, err := s.db.Conn(ctx)
					if err != nil {
						t.Fatal(err)
					}
					conns = append(conns, c)
					var auto int
					if err := c.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil {
						t.Fatal(err)
					}
					if auto != tc.autoCheckpoint {
						t.Errorf("connection %d: wal_autocheckpoint %d, want %d", i, auto, tc.autoCheckpoint)
					}
				}
				for _, c := range conns {
					c.Close()
				}
			}
			var done chan struct{}
			if s.ckpt != nil {
				done = s.ckpt.done
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if done != nil {
				select {
				case <-done:
				default:
					t.Fatal("Close returned with the checkpointer still running")
				}
			}
		})
	}
}

// TestCheckpointerRestartsTheWAL streams writes one after the other with
// no backstop: only the checkpointer's restarts make the WAL start over,
// so the WAL file stops growing (with neither it grows ~24 KB a write,
// TestCheckpointerBoundsTheWAL) and later restarts find it short.
func TestCheckpointerRestartsTheWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	var restarts, passes atomic.Int64
	var afterFirst atomic.Int64 // the WAL's pages at restarts after the first
	opts := openOptions{checkpointEvery: 10 * time.Millisecond, walLimit: 1 << 40, restartAt: 1 << 20, checkpointed: func(r checkpointResult) {
		passes.Add(1)
		if r.restarted {
			if restarts.Add(1) > 1 {
				afterFirst.Store(max(afterFirst.Load(), r.walPages))
			}
		}
	}}
	s, err := open(ctx, "sqlite", path, false, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var reported atomic.Int64 // restarts the observer was told of
	s.SetObserver(func(op string, d time.Duration, err error) {
		if op == restartOp && err == nil && d > 0 {
			reported.Add(1)
		}
	})
	const most = 40000
	writes := 0
	for ; writes < most && restarts.Load() < 3; writes++ {
		if err := s.CreateRefresh(ctx, randomRefresh(), false); err != nil {
			t.Fatal(err)
		}
	}
	wal := fileSize(t, path+"-wal")
	t.Logf("%d restarts in %d writes; WAL file %d KiB; at most %d pages at a later restart", restarts.Load(), writes, wal>>10, afterFirst.Load())
	if restarts.Load() < 3 {
		t.Fatalf("%d restarts in %d writes", restarts.Load(), writes)
	}
	if reported.Load() < restarts.Load() {
		t.Fatalf("%d restarts, %d reported to the observer", restarts.Load(), reported.Load())
	}
	// Started over: the WAL's pages at a later restart are what arrived
	// since the one before, not everything since the first write.
	if int64(writes)*5 <= afterFirst.Load() {
		t.Fatalf("a later restart found %d pages after %d writes: the WAL did not start over", afterFirst.Load(), writes)
	}
	// Idle: the WAL is wholly copied and waits for a writer to start it
	// over; twenty passes restart it once at most (the stream's last).
	idleFrom, passed := restarts.Load(), passes.Load()
	waitfor.Until(t, "twenty idle passes", 30*time.Second, 0, func() bool { return passes.Load() >= passed+20 })
	if n := restarts.Load() - idleFrom; n > 1 {
		t.Fatalf("%d restarts in twenty passes with no writes", n)
	}
}

// TestFlushFileSystem: the flush before a restart works through the
// directory and reports a missing one.
func TestFlushFileSystem(t *testing.T) {
	dir := t.TempDir()
	if err := flushFileSystem(filepath.Join(dir, "tg.db")); err != nil {
		t.Fatal(err)
	}
	if err := flushFileSystem(filepath.Join(dir, "missing", "tg.db")); err == nil && runtime.GOOS == "linux" {
		t.Fatal("no error for a missing directory")
	}
}
