package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// autoCheckpointBytes is what SQLite's own automatic checkpoint lets the
// WAL grow to (1000 pages of 4 KiB) before the committing connection
// copies it back.
const autoCheckpointBytes = 1000 * 4096

// TestCheckpointerBoundsTheWAL streams writes through a store whose pool
// never checkpoints: without the checkpointer the WAL grows with every
// write (so autocheckpoint is really off), with it the WAL stays within
// what SQLite's automatic checkpoint would keep.
func TestCheckpointerBoundsTheWAL(t *testing.T) {
	const rounds, perRound = 30, 60 // ~1.4 MB of WAL a round
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
			var passes atomic.Int64
			var failed atomic.Pointer[error]
			passed := make(chan struct{}, 1)
			opts := openOptions{checkpointEvery: tc.every, checkpointed: func(r checkpointResult) {
				if r.err != nil {
					failed.Store(&r.err)
				}
				passes.Add(1)
				select {
				case passed <- struct{}{}:
				default:
				}
			}}
			s, err := open(ctx, "sqlite", path, false, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var maxWAL int64
			for range rounds {
				for range perRound {
					if err := s.CreateRefresh(ctx, randomRefresh(), false); err != nil {
						t.Fatal(err)
					}
				}
				if tc.every > 0 {
					// Two passes from now: the second started after this
					// round's last commit.
					want := passes.Load() + 2
					deadline := time.After(30 * time.Second)
					for passes.Load() < want {
						select {
						case <-passed:
						case <-deadline:
							t.Fatalf("no checkpoint pass for 30 s (%d passes)", passes.Load())
						}
					}
				}
				fi, err := os.Stat(path + "-wal")
				if err != nil {
					t.Fatal(err)
				}
				maxWAL = max(maxWAL, fi.Size())
			}
			if e := failed.Load(); e != nil {
				t.Fatalf("checkpoint pass failed: %v", *e)
			}
			t.Logf("largest WAL %d KiB after %d writes", maxWAL>>10, rounds*perRound)
			if tc.every == 0 && maxWAL <= 3*autoCheckpointBytes {
				t.Fatalf("without a checkpointer the WAL stayed at %d bytes: something still checkpoints", maxWAL)
			}
			if tc.every > 0 && maxWAL > autoCheckpointBytes {
				t.Fatalf("WAL grew to %d bytes with the checkpointer, want ≤ %d", maxWAL, autoCheckpointBytes)
			}
		})
	}
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
		{"file", func() (*Store, error) { return Open(ctx, "sqlite", path) }, true, 0},
		{"read-only open", func() (*Store, error) { return OpenExisting(ctx, "sqlite", path) }, false, 1000},
		{"memory", func() (*Store, error) { return Open(ctx, "sqlite", ":memory:") }, false, -1},
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
			if tc.autoCheckpoint >= 0 {
				// Every connection of the pool, held at once.
				var conns []*sql.Conn
				for i := range sqlitePool {
					c, err := s.db.Conn(ctx)
					if err != nil {
						t.Fatal(err)
					}
					conns = append(conns, c)
					var auto, cache, mmap int64
					for q, v := range map[string]*int64{`PRAGMA wal_autocheckpoint`: &auto, `PRAGMA cache_size`: &cache, `PRAGMA mmap_size`: &mmap} {
						if err := c.QueryRowContext(ctx, q).Scan(v); err != nil {
							t.Fatalf("%s: %v", q, err)
						}
					}
					if auto != int64(tc.autoCheckpoint) || cache != -sqliteCache || mmap != sqliteMmap {
						t.Errorf("connection %d: wal_autocheckpoint %d, cache_size %d, mmap_size %d; want %d, %d, %d",
							i, auto, cache, mmap, tc.autoCheckpoint, -sqliteCache, sqliteMmap)
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
