package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// maxStmts bounds the statements kept prepared. Queries are this
// package's constants, so the bound is never reached; it keeps a future
// query built at run time from growing the cache without end.
const maxStmts = 256

// prepared is a query prepared once for the whole pool (database/sql
// prepares it on each connection the first time it runs there): SQLite
// then compiles no SQL per call, and PostgreSQL's placeholders are
// rewritten once.
type prepared struct {
	stmt *sql.Stmt
	op   string // opName(query), for the observer
}

// stmtCache maps a query (as written, with ? placeholders) to its
// *prepared.
type stmtCache struct {
	m sync.Map
	n atomic.Int32
}

// prepared returns query prepared, preparing it on first use. On an error
// (the store unreachable, say) the caller runs the query unprepared, which
// fails the same way or succeeds once the store is back.
func (s *Store) prepared(ctx context.Context, query string) (*prepared, error) {
	if p, ok := s.stmts.m.Load(query); ok {
		return p.(*prepared), nil
	}
	if s.stmts.n.Load() >= maxStmts {
		return nil, errorf("statement cache full")
	}
	st, err := s.db.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, errorf("preparing %s: %w", opName(query), err)
	}
	p := &prepared{stmt: st, op: opName(query)}
	if old, loaded := s.stmts.m.LoadOrStore(query, p); loaded {
		st.Close()
		return old.(*prepared), nil
	}
	s.stmts.n.Add(1)
	return p, nil
}

// closeStmts closes every prepared statement.
func (s *Store) closeStmts() {
	s.stmts.m.Range(func(k, v any) bool {
		v.(*prepared).stmt.Close()
		s.stmts.m.Delete(k)
		return true
	})
}

// execIn runs query through its prepared statement, in tx unless tx is
// nil, observed.
func (s *Store) execIn(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	start := time.Now()
	var res sql.Result
	p, err := s.prepared(ctx, query)
	switch {
	case err != nil && tx != nil:
		res, err = tx.ExecContext(ctx, s.q(query), args...)
	case err != nil:
		res, err = s.db.ExecContext(ctx, s.q(query), args...)
	case tx != nil:
		res, err = tx.StmtContext(ctx, p.stmt).ExecContext(ctx, args...)
	default:
		res, err = p.stmt.ExecContext(ctx, args...)
	}
	s.observed(opOf(p, query), start, err)
	return res, err
}

// rowIn runs one-row query through its prepared statement, in tx unless
// tx is nil, observed.
func (s *Store) rowIn(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	start := time.Now()
	var r *sql.Row
	p, err := s.prepared(ctx, query)
	switch {
	case err != nil && tx != nil:
		r = tx.QueryRowContext(ctx, s.q(query), args...)
	case err != nil:
		r = s.db.QueryRowContext(ctx, s.q(query), args...)
	case tx != nil:
		r = tx.StmtContext(ctx, p.stmt).QueryRowContext(ctx, args...)
	default:
		r = p.stmt.QueryRowContext(ctx, args...)
	}
	s.observed(opOf(p, query), start, r.Err())
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

// opOf is p's operation name, or query's when it could not be prepared.
func opOf(p *prepared, query string) string {
	if p != nil {
		return p.op
	}
	return opName(query)
}
