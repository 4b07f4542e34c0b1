package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// maxStmts bounds the statements kept. Queries are this package's
// constants, so the bound is never reached; it keeps a future query built
// at run time from growing the cache without end.
const maxStmts = 256

// prepared is a query ready to run. On SQLite it is prepared once for the
// whole pool (database/sql prepares it on each connection the first time
// it runs there), so SQLite compiles no SQL per call. On PostgreSQL it is
// only the query with $n placeholders: pgx already prepares and caches
// statements per connection, and drops one the server stops accepting
// (after a migration by a newer instance), which a database/sql Stmt
// would keep failing with.
type prepared struct {
	stmt *sql.Stmt // nil on PostgreSQL, or when it could not be prepared
	// write is stmt prepared on the store's writer (Store.w), for writes
	// and transactions; stmt itself where the writer is the pool.
	write *sql.Stmt
	query string // as the driver runs it
	op    string // opName(query), for the observer
}

// stmtCache maps a query (as written, with ? placeholders) to its
// *prepared.
type stmtCache struct {
	m sync.Map
	n atomic.Int32
}

// prepare returns query ready to run, preparing and caching it on first
// use.
func (s *Store) prepare(ctx context.Context, query string) (*prepared, error) {
	if p, ok := s.stmts.m.Load(query); ok {
		return p.(*prepared), nil
	}
	p := &prepared{query: s.q(query), op: opName(query)}
	if s.stmts.n.Load() >= maxStmts {
		return p, nil // run unprepared
	}
	if !s.postgres {
		st, err := s.db.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, errorf("preparing %s: %w", p.op, err)
		}
		p.stmt, p.write = st, st
		if s.w != s.db {
			if p.write, err = s.w.PrepareContext(ctx, p.query); err != nil {
				st.Close()
				return nil, errorf("preparing %s: %w", p.op, err)
			}
		}
	}
	if old, loaded := s.stmts.m.LoadOrStore(query, p); loaded {
		p.close()
		return old.(*prepared), nil
	}
	s.stmts.n.Add(1)
	return p, nil
}

// lookup returns query ready to run, never failing: a query that cannot
// be prepared now (the store is unreachable, say) runs unprepared, which
// fails the same way or succeeds once the store is back. In a transaction
// a query not prepared yet runs unprepared: preparing it would need a
// second connection while the transaction holds one (a deadlock on a
// one-connection pool).
func (s *Store) lookup(ctx context.Context, query string, inTx bool) *prepared {
	if p, ok := s.stmts.m.Load(query); ok {
		return p.(*prepared)
	}
	if !inTx {
		if p, err := s.prepare(ctx, query); err == nil {
			return p
		}
	}
	return &prepared{query: s.q(query), op: opName(query)}
}

// close closes p's statements.
func (p *prepared) close() {
	if p.write != nil && p.write != p.stmt {
		p.write.Close()
	}
	if p.stmt != nil {
		p.stmt.Close()
	}
}

// closeStmts closes every prepared statement and empties the cache.
func (s *Store) closeStmts() {
	s.stmts.m.Range(func(k, v any) bool {
		v.(*prepared).close()
		s.stmts.m.Delete(k)
		s.stmts.n.Add(-1)
		return true
	})
}

// execIn runs query, in tx unless tx is nil, observed.
func (s *Store) execIn(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	start := time.Now() // the wait at the gate counts
	if tx == nil {      // an autocommit write: through the gate
		leave, err := s.gate.enter(ctx)
		if err != nil {
			return nil, err
		}
		defer leave()
	}
	p := s.lookup(ctx, query, tx != nil)
	var res sql.Result
	var err error
	switch {
	case p.write == nil && tx != nil:
		res, err = tx.ExecContext(ctx, p.query, args...)
	case p.write == nil:
		res, err = s.w.ExecContext(ctx, p.query, args...)
	case tx != nil:
		res, err = tx.StmtContext(ctx, p.write).ExecContext(ctx, args...)
	default:
		res, err = p.write.ExecContext(ctx, args...)
	}
	s.observed(p.op, start, err)
	return res, err
}

// rowIn runs one-row query, in tx unless tx is nil, observed.
func (s *Store) rowIn(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	start := time.Now()
	p := s.lookup(ctx, query, tx != nil)
	var r *sql.Row
	switch {
	case p.stmt == nil && tx != nil:
		r = tx.QueryRowContext(ctx, p.query, args...)
	case p.stmt == nil:
		r = s.db.QueryRowContext(ctx, p.query, args...)
	case tx != nil:
		r = tx.StmtContext(ctx, p.write).QueryRowContext(ctx, args...)
	default:
		r = p.stmt.QueryRowContext(ctx, args...)
	}
	s.observed(p.op, start, r.Err())
	return r
}

// exec runs query, observed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.execIn(ctx, nil, query, args...)
}

// row runs a one-row query, observed.
func (s *Store) row(ctx context.Context, query string, args ...any) *sql.Row {
	return s.rowIn(ctx, nil, query, args...)
}
