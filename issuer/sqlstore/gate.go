package sqlstore

import "context"

// writeGate queues a SQLite store's writers in this process on a Go
// channel, so each is woken the moment the one before is done. SQLite's
// own wait (which stays, for other processes) sleeps and retries on a
// schedule of 1, 2, 5, 10, 15, 20, 25 ms … 100 ms, which turned a 30 ms
// hold into a 53 ms wait, and two holders in a row into 78-103 ms. It
// is held for a write transaction (begin to Commit or Rollback) and for
// an autocommit write; a write inside a transaction goes through the
// transaction, never through the gate again.
//
// Rules that keep it from deadlocking: never enter it twice on one
// goroutine (inside a transaction use execIn/rowIn with the tx); take the
// store's maintenance mutex before it, never after; and do not wait for
// it while holding a connection that a gate holder may need (the writer's
// connection, Store.w, is used inside the gate, and outside it only to
// prepare a statement, which waits for nothing else).
// A writer's backstop checkpoint (past walLimit, after its commit) now
// holds the gate too, so this process's writers wait it out together.
type writeGate chan struct{}

func newWriteGate() writeGate { return make(writeGate, 1) }

// enter waits for the gate (or ctx) and returns what leaves it; a nil
// gate (PostgreSQL: row locks) lets everyone in.
func (g writeGate) enter(ctx context.Context) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g <- struct{}{}:
		return func() { <-g }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
