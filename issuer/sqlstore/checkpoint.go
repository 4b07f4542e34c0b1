package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SQLite WAL checkpointing off the request path.
//
// With journal_mode=WAL and synchronous=NORMAL a commit does not fsync, but
// SQLite's automatic checkpoint (every 1000 WAL pages, 4 MiB) runs on the
// connection that committed: it copies those pages into the database file
// and fsyncs it before that request's Exec returns, several times a second
// under refresh load, and more often while pruning (its deletes touch many
// index pages). So the store runs PASSIVE checkpoints from a goroutine of
// its own on a connection of its own, which takes no lock a writer or a
// reader waits for, and the pool's connections checkpoint only as a
// backstop, at walLimit.
//
// The backstop is needed: a PASSIVE checkpoint copies the WAL but the WAL
// starts over from its beginning only when a write transaction begins with
// all of it copied. A connection that checkpoints right after its own
// commit usually finds it so; a checkpointer beside a steady stream of
// writes never does (a commit always lands between its pass and the next
// transaction), and the WAL grew without end (436 MB in six minutes of
// benchstore prune with wal_autocheckpoint=0). A RESTART checkpoint from
// the checkpointer, which holds writers off until the WAL can start over,
// lost the write lock to busy writers every time (SQLite's busy wait is
// sleep-and-retry, not a queue). With the backstop, past walLimit the next
// commit checkpoints as SQLite always did, but finds nearly everything
// already copied (so its pass is short: the tail, and the fsync), and the
// WAL starts over; that happens once per walLimit of writes, not once per
// 4 MiB. A reader that holds an old snapshot still keeps the WAL from
// starting over until it ends, as without a checkpointer.
const (
	// checkpointEvery: at ~1000 refresh grants/s the WAL grows by ~25 MB/s;
	// ten passes a second copy a few MB each.
	checkpointEvery = 100 * time.Millisecond
	// walLimit is where the pool's connections checkpoint themselves
	// (wal_autocheckpoint, in pages) and the journal_size_limit: what the
	// WAL file is cut back to when it starts over after a burst.
	walLimit = 64 << 20
)

// checkpointResult is one pass of the checkpointer: the WAL's size in
// pages before it and how many of them are in the database file after it.
type checkpointResult struct {
	walPages, copied int64
	err              error
}

// checkpointer runs the checkpoints of a file-backed SQLite store.
type checkpointer struct {
	db    *sql.DB // one connection, beside the pool
	every time.Duration
	logf  func(format string, args ...any)
	// passed, when not nil, is told every pass (tests wait on it).
	passed func(checkpointResult)
	cancel context.CancelFunc
	done   chan struct{}
}

// startCheckpointer opens the checkpointer's connection to the SQLite file
// at path and starts its goroutine; close stops it.
func startCheckpointer(ctx context.Context, path string, every time.Duration, logf func(string, ...any), passed func(checkpointResult)) (*checkpointer, error) {
	// The pool's settings, with no backstop: this connection never writes.
	db, err := sql.Open("sqlite", sqliteDSN(path, sqliteBusy, 0))
	if err != nil {
		return nil, errorf("opening sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, every: every, logf: logf, passed: passed, done: make(chan struct{})}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, errorf("opening sqlite checkpointer: %w", err)
	}
	// Not ctx: that is Open's, and the checkpointer lives until close.
	run, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(run)
	return c, nil
}

func (c *checkpointer) run(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(c.every)
	defer t.Stop()
	var lastLogged time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := c.pass(ctx)
		if ctx.Err() != nil {
			return // closing: the pass was cut short
		}
		// A lasting failure (a full disk) is logged once a minute, not
		// on every pass.
		if r.err != nil && c.logf != nil && time.Since(lastLogged) >= time.Minute {
			c.logf("sqlite checkpoint: %v", r.err)
			lastLogged = time.Now()
		}
		if c.passed != nil {
			c.passed(r)
		}
	}
}

// pass runs one PASSIVE checkpoint.
func (c *checkpointer) pass(ctx context.Context) checkpointResult {
	var r checkpointResult
	var busy int
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &r.walPages, &r.copied); err != nil {
		r.err = fmt.Errorf("running a passive checkpoint: %w", err)
	}
	return r
}

// close stops the checkpointer, waits for it and closes its connection.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
