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
// SQLite's automatic checkpoint (every 1000 WAL pages) runs on the
// connection that committed: it copies the WAL's pages into the database
// file and fsyncs it before that request's Exec returns. Measured with
// benchstore prune, that was the longest single-row write even before
// pruning started (132 ms), and pruning, whose deletes touch many index
// pages, made those checkpoints frequent. So the pool's connections never
// checkpoint (wal_autocheckpoint=0) and the store runs PASSIVE checkpoints
// from a goroutine of its own on a connection of its own: a PASSIVE
// checkpoint takes no lock a writer or reader waits for.
const (
	// checkpointEvery: at ~1000 refresh grants/s the WAL grows by ~30 MB/s;
	// ten passes a second keep each pass to a few MB, about what SQLite's
	// own automatic checkpoint copies at a time.
	checkpointEvery = 100 * time.Millisecond
	// walLimit bounds the WAL. A PASSIVE checkpoint cannot copy frames
	// newer than the snapshot of the oldest reader, and the WAL restarts
	// from its beginning only once all of it is copied; with a reader that
	// keeps an old snapshot for long, the WAL grows. Past walLimit the
	// checkpointer runs a TRUNCATE checkpoint: it waits for the readers and
	// blocks writers while it does, so it only runs then (a stuck reader)
	// and waits at most walBusy before giving up until the next pass. It
	// is also the journal_size_limit: the size a WAL file is cut back to
	// when it restarts after a burst.
	walLimit = 64 << 20
	// walBusy is the busy timeout of the checkpointer's connection, the
	// longest a TRUNCATE checkpoint waits for readers and the writer
	// (writers queue behind it meanwhile).
	walBusy = 50 * time.Millisecond
)

// checkpointResult is one pass of the checkpointer: the WAL's size in
// pages before it, how many of them are in the database file after it,
// and whether the pass had to truncate the WAL.
type checkpointResult struct {
	walPages, copied int64
	truncated        bool
	err              error
}

// checkpointer runs the checkpoints of a file-backed SQLite store.
type checkpointer struct {
	db       *sql.DB // one connection, beside the pool
	pageSize int64
	every    time.Duration
	logf     func(format string, args ...any)
	// passed, when not nil, is told every pass (tests wait on it).
	passed func(checkpointResult)
	cancel context.CancelFunc
	done   chan struct{}
}

// startCheckpointer opens the checkpointer's connection to the database at
// dsn (the pool's DSN) and starts its goroutine; close stops it.
func startCheckpointer(ctx context.Context, path string, every time.Duration, logf func(string, ...any), passed func(checkpointResult)) (*checkpointer, error) {
	db, err := sql.Open("sqlite", sqliteDSN(path, walBusy, true))
	if err != nil {
		return nil, errorf("opening sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	c := &checkpointer{db: db, every: every, logf: logf, passed: passed, done: make(chan struct{})}
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&c.pageSize); err != nil {
		db.Close()
		return nil, errorf("reading sqlite page size: %w", err)
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
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := c.pass(ctx)
		if r.err != nil && ctx.Err() == nil && c.logf != nil {
			c.logf("sqlite checkpoint: %v", r.err)
		}
		if c.passed != nil {
			c.passed(r)
		}
	}
}

// pass runs one PASSIVE checkpoint, and a TRUNCATE one when the WAL is
// still past walLimit after it.
func (c *checkpointer) pass(ctx context.Context) checkpointResult {
	var r checkpointResult
	var busy int
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &r.walPages, &r.copied); err != nil {
		r.err = fmt.Errorf("running a passive checkpoint: %w", err)
		return r
	}
	if r.walPages*c.pageSize <= walLimit || r.copied >= r.walPages {
		return r
	}
	// A reader holds an old snapshot and the WAL is past its bound.
	r.truncated = true
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &r.walPages, &r.copied); err != nil {
		r.err = fmt.Errorf("truncating a WAL of %d pages: %w", r.walPages, err)
		return r
	}
	if busy != 0 {
		r.err = fmt.Errorf("WAL past %d MiB: readers kept it from being truncated for %v, trying again next pass", walLimit>>20, walBusy)
	}
	return r
}

// close stops the checkpointer, waits for it and closes its connection.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
