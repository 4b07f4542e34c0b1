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
	// write is the query prepared on the writer (Store.w), for writes and
	// transactions: stmt itself where the writer is the pool. On a SQLite
	// file it is prepared at Open (the hot queries) or the first time it
	// runs inside the gate, where w's one connection is free; a
	// transaction runs a query without it unprepared.
	write atomic.Pointer[sql.Stmt]
	query string // as the driver runs it
	op    string // opName(query), for the observer
}

// use says where a query is about to run, which decides what lookup may
// prepare for it.
type use int

const (
	read  use = iota // outside a transaction, on the pool
	write            // outside a transaction, on the writer, inside the gate
	inTx             // in a transaction: prepare nothing (see lookup)
)

// stmtCache maps a query (as written, with ? placeholders) to its
// *prepared.
type stmtCache struct {
	m sync.Map
	n atomic.Int32
}

// prepare returns query ready to run, preparing and caching it on first
// use, and preparing it on the writer the first time it is for a write.
func (s *Store) prepare(ctx context.Context, query string, u use) (*prepared, error) {
	v, ok := s.stmts.m.Load(query)
	if !ok {
		p := &prepared{query: s.q(query), op: opName(query)}
		if s.stmts.n.Load() >= maxStmts {
			return p, nil // run unprepared
		}
		if !s.postgres {
			st, err := s.db.PrepareContext(ctx, p.query)
			if err != nil {
				return nil, errorf("preparing %s: %w", p.op, err)
			}
			p.stmt = st
			if s.w == s.db {
				p.write.Store(st)
			}
		}
		if v, ok = s.stmts.m.LoadOrStore(query, p); ok {
			p.close()
		} else {
			s.stmts.n.Add(1)
			v = p
		}
	}
	p := v.(*prepared)
	if u == write && p.stmt != nil && p.write.Load() == nil {
		st, err := s.w.PrepareContext(ctx, p.query)
		if err != nil {
			return nil, errorf("preparing %s: %w", p.op, err)
		}
		if !p.write.CompareAndSwap(nil, st) {
			st.Close()
		}
	}
	return p, nil
}

// lookup returns query ready to run, never failing: a query that cannot
// be prepared now (the store is unreachable, say) runs unprepared, which
// fails the same way or succeeds once the store is back. In a transaction
// a query not prepared yet runs unprepared: preparing it would need a
// second connection while the transaction holds one (a deadlock on a
// one-connection pool, which the writer is).
func (s *Store) lookup(ctx context.Context, query string, u use) *prepared {
	if u == inTx {
		if p, ok := s.stmts.m.Load(query); ok {
			return p.(*prepared)
		}
	} else if p, err := s.prepare(ctx, query, u); err == nil {
		return p
	}
	return &prepared{query: s.q(query), op: opName(query)}
}

// close closes p's statements.
func (p *prepared) close() {
	if w := p.write.Load(); w != nil && w != p.stmt {
		w.Close()
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
	u := write
	if tx != nil {
		u = inTx
	}
	p := s.lookup(ctx, query, u)
	st := p.write.Load()
	var res sql.Result
	var err error
	switch {
	case st == nil && tx != nil:
		res, err = tx.ExecContext(ctx, p.query, args...)
	case st == nil:
		res, err = s.w.ExecContext(ctx, p.query, args...)
	case tx != nil:
		res, err = tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	default:
		res, err = st.ExecContext(ctx, args...)
	}
	s.observed(p.op, start, err)
	return res, err
}

// rowIn runs one-row query, in tx unless tx is nil, observed.
func (s *Store) rowIn(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	start := time.Now()
	var r *sql.Row
	if tx != nil {
		p := s.lookup(ctx, query, inTx)
		if st := p.write.Load(); st != nil {
			r = tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
		} else {
			r = tx.QueryRowContext(ctx, p.query, args...)
		}
		s.observed(p.op, start, r.Err())
		return r
	}
	p := s.lookup(ctx, query, read)
	if p.stmt != nil {
		r = p.stmt.QueryRowContext(ctx, args...)
	} else {
		r = s.db.QueryRowContext(ctx, p.query, args...)
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
