package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// notifyChannel is the PostgreSQL channel on which every tokengate store
// announces new revocations ("<schema> rev") and key changes ("<schema> key").
// Stores in other schemas of the same database hear them and ignore them.
const notifyChannel = "tokengate"

// DataVersionPoll is how often a SQLite store checks whether another
// process wrote to it (PRAGMA data_version: a few microseconds each).
const DataVersionPoll = 150 * time.Millisecond

// WatchChanges implements issuer.ChangeWatcher: PostgreSQL LISTENs on a
// connection of its own; SQLite polls PRAGMA data_version on one.
func (s *Store) WatchChanges(ctx context.Context, changed func(keys bool)) {
	switch {
	case s.postgres:
		s.listen(ctx, changed)
	case !s.memory: // nothing else can write an in-memory database
		s.pollDataVersion(ctx, changed)
	}
}

// listen holds a LISTEN connection, reconnecting with backoff while the
// server is away; after every (re)connection it reports a change, since
// notices sent while it was away are lost.
func (s *Store) listen(ctx context.Context, changed func(keys bool)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, changed)
		if ctx.Err() != nil {
			return
		}
		s.logf("listening for store changes: %v", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, changed func(keys bool)) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return err
	}
	changed(true) // catch up on whatever happened while not listening
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Payload {
		case schema + " rev":
			changed(false)
		case schema + " key":
			changed(true)
		}
	}
}

// pollDataVersion reports a change whenever another connection committed
// to the database. It holds one connection of the pool for itself.
//
// PRAGMA data_version only says whether it moved since the previous
// reading on the same connection, so the first reading after (re)connecting
// is a baseline that says nothing about commits before it: those made
// between the caller's last load and the baseline (a revocation by another
// process while this one starts, or while the connection was lost) would
// be silently absorbed. So the baseline is taken at once and followed by
// changed(true), as after a PostgreSQL LISTEN: one catch-up sync covers them.
func (s *Store) pollDataVersion(ctx context.Context, changed func(keys bool)) {
	var conn *sql.Conn
	var last int64 = -1 // -1: no baseline on conn yet
	t := time.NewTicker(DataVersionPoll)
	defer t.Stop()
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	failing := false // log once per outage, not every poll
	fail := func(err error) {
		if !failing && ctx.Err() == nil {
			s.logf("watching store changes: %v", err)
		}
		failing = true
	}
	for {
		if conn == nil {
			var err error
			if conn, err = s.db.Conn(ctx); err != nil {
				fail(err)
			}
		}
		if conn != nil {
			v, err := DataVersion(ctx, conn)
			switch {
			case err != nil:
				fail(err)
				conn.Close()
				conn, last = nil, -1
			case last < 0:
				changed(true) // catch up on whatever committed before the baseline
			case v != last:
				changed(false)
			}
			if err == nil {
				last, failing = v, false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DataVersion returns PRAGMA data_version on conn: it moves when another
// connection commits. Exported for measuring its cost.
func DataVersion(ctx context.Context, conn *sql.Conn) (int64, error) {
	var v int64
	err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
	return v, err
}

// errorf is fmt.Errorf that marks errors saying the database could not
// be reached with issuer.ErrStoreUnavailable.
func errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if unavailable(err) {
		return unavailableError{err}
	}
	return err
}

type unavailableError struct{ error }

func (e unavailableError) Unwrap() []error { return []error{issuer.ErrStoreUnavailable, e.error} }

// unavailable classifies err by code: the database could not be reached,
// went away, is shutting down, or is locked by another writer beyond the
// busy timeout. Constraint violations, bad SQL and the like are not.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case len(pgErr.Code) == 5 && pgErr.Code[:2] == "08": // connection_exception
			return true
		case pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // admin/crash shutdown, cannot connect now
			pgErr.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	if code, ok := sqliteCode(err); ok {
		switch code & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_FULL, sqlite3.SQLITE_PROTOCOL:
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err)
}
