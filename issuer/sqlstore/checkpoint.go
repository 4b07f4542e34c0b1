package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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
// A PASSIVE checkpoint copies the WAL, but the WAL starts over from its
// beginning only when a write transaction begins with all of it copied,
// and beside a steady stream of writes that never happens by itself: a
// commit always lands during the pass (its fsyncs take 10-40 ms here), and
// the WAL grew without end (436 MB in six minutes of benchstore prune).
// So once the WAL holds restartAt, the checkpointer makes it start over
// (restart): it passes until little arrives during a pass, writes the
// file system's dirty pages out, takes the write lock with an empty
// immediate transaction on its second connection, copies what arrived
// since its last pass on the first, and lets go; the next writer then
// starts the WAL over. Writers wait meanwhile for one short pass: the
// tail's pages and two fsyncs (6-13 ms median, 29 ms at most, in benchstore
// prune on a 2-core VM), the least a WAL that starts over under steady
// writes can cost. The pool's connections checkpoint only as a backstop, at walLimit,
// if the checkpointer cannot get the lock: that pass runs inside a
// request, after its commit (100-130 ms measured, the whole WAL's fsyncs).
// A reader that holds an old snapshot keeps the WAL from starting over
// until it ends, either way.
const (
	// checkpointEvery: at ~1000 refresh grants/s the WAL grows by ~25 MB/s;
	// ten passes a second copy a few MB each.
	checkpointEvery = 100 * time.Millisecond
	// restartAt is the WAL size at which the checkpointer makes it start
	// over: at ~50 MB/s of WAL (pruning beside 1000 writes/s) about once
	// a second.
	restartAt = 32 << 20
	// restartWait bounds the checkpointer's wait for the write lock (the
	// busy timeout it sets for it); a writer holds it for a few ms, and a
	// missed restart is tried again on the next pass.
	restartWait = 50 * time.Millisecond
	// restartSettle is how long after a restart the pruner waits before
	// its next batch.
	restartSettle = 20 * time.Millisecond
	// restartTail is the most pages the pass before a restart may have
	// seen arrive (so about the most the locked pass copies), and
	// restartTries how many passes may try to get there.
	restartTail  = 128
	restartTries = 16
	// walLimit is where the pool's connections checkpoint themselves
	// (wal_autocheckpoint, in pages) and the journal_size_limit: what the
	// WAL file is cut back to when it starts over after a burst.
	walLimit = 64 << 20
)

// restartOp names a restart to the store's observer.
const restartOp = "CHECKPOINT restart"

// checkpointResult is one pass of the checkpointer: the WAL's size in
// pages before it and how many of them are in the database file after it.
type checkpointResult struct {
	walPages, copied int64
	// busy: another connection was checkpointing (the pages are then -1).
	busy bool
	// restarted: the pass held the write lock and copied the whole WAL,
	// so the next writer can start it over.
	restarted bool
	err       error
}

// checkpointer runs the checkpoints of a file-backed SQLite store.
type checkpointer struct {
	path string // the database file
	// maintenance is the store's: held from the flush to the end of a
	// restart, so the pruner holds no write lock while they write out.
	maintenance *sync.Mutex
	// gate is the store's: held from BEGIN to ROLLBACK, so this process's
	// writers wait for the restart on it, not on SQLite's busy schedule.
	gate  writeGate
	db    *sql.DB // two connections, beside the pool: one locks, one copies
	every time.Duration
	// restartPages: the WAL size, in pages, at which a pass makes it
	// start over; 0: never. restartedAt is the WAL's size at the last
	// restart (only the checkpointer's goroutine touches it).
	restartPages, restartedAt int64
	logf                      func(format string, args ...any)
	// observed is the store's: each restart, done or found busy, is
	// reported as the operation restartOp, lasting as long as it held the
	// gate (this process's writers waited that long).
	observed func(op string, start time.Time, err error)
	// passed, when not nil, is told every pass (tests wait on it).
	passed func(checkpointResult)
	cancel context.CancelFunc
	done   chan struct{}
}

// startCheckpointer opens the checkpointer's connection to the SQLite file
// at path and starts its goroutine; close stops it.
func startCheckpointer(ctx context.Context, path string, every time.Duration, restartAt int64, maintenance *sync.Mutex, gate writeGate, logf func(string, ...any),
	observed func(string, time.Time, error), passed func(checkpointResult)) (*checkpointer, error) {
	// The pool's settings, with no backstop: these connections never
	// write.
	db, err := sql.Open("sqlite", sqliteDSN(path, sqliteBusy, 0))
	if err != nil {
		return nil, errorf("opening sqlite checkpointer: %w", err)
	}
	keepConns(db, 2)
	c := &checkpointer{path: path, maintenance: maintenance, gate: gate, db: db, every: every, restartPages: restartAt / sqlitePage, logf: logf, observed: observed, passed: passed, done: make(chan struct{})}
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

// pass runs one PASSIVE checkpoint, and restarts the WAL when it has all
// been copied and holds restartPages or more, unless nothing was written
// since the last restart (the next writer starts it over; restarting
// again would flush the file system for nothing on an idle store).
func (c *checkpointer) pass(ctx context.Context) checkpointResult {
	r := c.passive(ctx)
	if c.restartPages <= 0 || r.err != nil || r.busy || r.walPages < c.restartPages || r.copied < r.walPages ||
		r.walPages == c.restartedAt {
		return r
	}
	// What the locked pass copies and fsyncs is what arrived during the
	// pass before it: more passes while that tail shrinks, until it is
	// short; when writes come faster than that, a restart with a longer
	// tail (the only way the WAL starts over under many concurrent
	// writers).
	lastTail := r.walPages
	for range restartTries {
		prev := r.walPages
		if r = c.passive(ctx); r.err != nil || r.busy || r.copied < r.walPages || r.walPages < prev {
			return r // failed, busy, a reader in the way, or started over
		}
		tail := r.walPages - prev
		if tail <= restartTail || tail >= lastTail { // short, or no longer shrinking
			break
		}
		lastTail = tail
	}
	r = c.restart(ctx, r)
	if r.restarted {
		c.restartedAt = r.walPages
	}
	return r
}

// restart copies the frames written since the last pass while holding the
// write lock, so the WAL is wholly copied when the next writer begins,
// which then starts it over (unless a reader still holds a snapshot from
// before: then it goes on appending, and a later pass tries again). It
// returns last when the lock is not to be had within restartWait.
func (c *checkpointer) restart(ctx context.Context, last checkpointResult) checkpointResult {
	// SQLite fsyncs the database file only in a pass that copies the
	// whole WAL, this one: all it wrote since the WAL last started over
	// (an fsync of 55-110 ms under the lock, measured). Written out
	// beforehand, off the lock, what is left is the tail's (6-13 ms median,
	// 29 ms at most, instead). syncfs writes out the other files of the
	// file system too: at most once per restartAt of WAL.
	c.maintenance.Lock()
	defer c.maintenance.Unlock()
	if err := flushFileSystem(c.path); err != nil {
		return checkpointResult{walPages: last.walPages, copied: last.copied, err: fmt.Errorf("flushing before a restart: %w", err)}
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return last
	}
	defer conn.Close()
	// The longest the restart waits for the write lock (a passive
	// checkpoint never waits, so the connection may keep it).
	if err := setBusyTimeout(ctx, conn, restartWait); err != nil {
		return last
	}
	// The gate too may be held for long (a writer waiting on another
	// process): the next pass tries again.
	gateCtx, cancel := context.WithTimeout(ctx, restartWait)
	leave, err := c.gate.enter(gateCtx)
	cancel()
	if err != nil {
		return last
	}
	held := time.Now()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		leave()
		c.observed(restartOp, held, nil)
		return last // busy: the next pass tries again
	}
	r := c.passive(ctx) // on the other connection
	r.restarted = r.err == nil && !r.busy && r.walPages >= 0 && r.copied == r.walPages
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); err != nil {
		discard(conn) // never back in the pool holding the write lock
		if r.err == nil {
			r.err = fmt.Errorf("ending the restart's transaction: %w", err)
		}
	}
	leave()
	c.observed(restartOp, held, r.err)
	// Writers of other processes that waited are asleep on SQLite's busy
	// schedule; the pruner, which waited on maintenance, would take the
	// lock first.
	settle := time.NewTimer(restartSettle)
	defer settle.Stop()
	select {
	case <-ctx.Done():
	case <-settle.C:
	}
	return r
}

// passive runs one PASSIVE checkpoint.
func (c *checkpointer) passive(ctx context.Context) checkpointResult {
	var r checkpointResult
	var busy int
	if err := c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &r.walPages, &r.copied); err != nil {
		r.err = fmt.Errorf("running a passive checkpoint: %w", err)
	}
	r.busy = busy != 0
	return r
}

// close stops the checkpointer, waits for it and closes its connection.
func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
