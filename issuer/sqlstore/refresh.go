package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// PruneBatch is the most expired refresh tokens one pruning transaction
// deletes, so pruning never holds the write lock for long.
const PruneBatch = 1000

// The request-path queries on tg_refresh; TestQueryPlans checks that each
// is served by an index on both databases.
const (
	// refreshByHash reads a token with its subject's session cut-off and
	// its family's DPoP binding (all primary-key lookups), so a refresh
	// needs no second read to check either.
	refreshByHash = `SELECT r.hash, r.family, r.subject, r.kind, r.principal, r.client_id, r.scope, r.issuer,
		r.expires_at, r.used_at, r.revoked, r.auth_time, r.replaced_by, COALESCE(c.at, -1), COALESCE(c.keep_family, ''),
		COALESCE(d.jkt, '')
		FROM tg_refresh r LEFT JOIN tg_refresh_cutoffs c ON c.subject = r.subject
		LEFT JOIN tg_dpop_families d ON d.family = r.family WHERE r.hash = ?`
	insertRefresh = `INSERT INTO tg_refresh (hash, family, subject, kind, principal, client_id, scope, issuer,
		expires_at, used_at, auth_time, replaced_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, '')`
	useRefresh       = `UPDATE tg_refresh SET used_at = ?, replaced_by = ? WHERE hash = ?`
	supersedeRefresh = `UPDATE tg_refresh SET used_at = ? WHERE hash = ? AND used_at = 0 AND revoked = 0`
	replaceRefresh   = `UPDATE tg_refresh SET replaced_by = ? WHERE hash = ?`
	revokeFamily     = `UPDATE tg_refresh SET revoked = 1 WHERE family = ? AND revoked = 0`
	// The latest cut-off wins; an older one arriving late changes nothing.
	endSessions = `INSERT INTO tg_refresh_cutoffs (subject, at, keep_family) VALUES (?, ?, ?)
		ON CONFLICT (subject) DO UPDATE SET at = excluded.at, keep_family = excluded.keep_family
		WHERE tg_refresh_cutoffs.at < excluded.at`
	pruneRefresh = `DELETE FROM tg_refresh WHERE hash IN (SELECT hash FROM tg_refresh WHERE expires_at < ? LIMIT ?)`
	// A cut-off is needed while a family it ends still has an unused
	// token. Its used tokens need it no longer: a used token is exchanged
	// again (a retry within the grace) only by superseding its successor,
	// which must still be there unused (see rotateInTx), and that successor,
	// of the same subject and auth_time, keeps the cut-off; without one,
	// presenting a used token is a reuse, refused either way.
	pruneCutoffs = `DELETE FROM tg_refresh_cutoffs WHERE NOT EXISTS (SELECT 1 FROM tg_refresh r
		WHERE r.subject = tg_refresh_cutoffs.subject AND r.auth_time <= tg_refresh_cutoffs.at AND r.used_at = 0)`
)

// byHashLocked is refreshByHash locking the row it reads: FOR UPDATE on
// PostgreSQL; SQLite transactions take the write lock at BEGIN.
func (s *Store) byHashLocked() string {
	if s.postgres {
		return refreshByHashLocked
	}
	return refreshByHash
}

const refreshByHashLocked = refreshByHash + ` FOR UPDATE OF r`

// rotateFresh is the common rotation, the first use of a live token, in
// one autocommit statement on PostgreSQL (one round trip instead of five):
// the UPDATE marks the token used only when refreshRow.dead would pass it
// and it is unused, and the successor is inserted only from the row it
// returns. No row back means another case (retry, reuse, dead, unknown)
// for the transaction to decide. A concurrent exchange of the same token
// waits on the row lock, then finds used_at set and falls back too.
// Parameters: now, next hash, old hash, then next's family, subject, kind,
// principal, client_id, scope, issuer, expires_at, auth_time.
const rotateFresh = `WITH used AS (
		UPDATE tg_refresh r SET used_at = $1, replaced_by = $2
		WHERE r.hash = $3 AND r.used_at = 0 AND r.revoked = 0 AND r.expires_at > $1
		AND NOT EXISTS (SELECT 1 FROM tg_refresh_cutoffs c
			WHERE c.subject = r.subject AND c.at >= r.auth_time AND c.keep_family <> r.family)
		RETURNING r.hash, r.family, r.subject, r.kind, r.principal, r.client_id, r.scope, r.issuer,
			r.expires_at, r.auth_time
	), succ AS (
		INSERT INTO tg_refresh (hash, family, subject, kind, principal, client_id, scope, issuer,
			expires_at, used_at, auth_time, replaced_by)
		SELECT $2, $4, $5, $6, $7, $8, $9, $10, $11::bigint, 0, $12::bigint, '' FROM used
	)
	SELECT u.hash, u.family, u.subject, u.kind, u.principal, u.client_id, u.scope, u.issuer,
		u.expires_at, u.auth_time, COALESCE(d.jkt, '')
	FROM used u LEFT JOIN tg_dpop_families d ON d.family = u.family`

// prepareHot prepares the queries of the request path up front, so the
// first requests parse no SQL (and no request prepares one inside a
// transaction), and a statement the database refuses fails the open (on
// PostgreSQL it is prepared once to check it, then left to pgx's cache).
func (s *Store) prepareHot(ctx context.Context) error {
	hot := []string{refreshByHash, s.byHashLocked(), insertRefresh, useRefresh, supersedeRefresh,
		replaceRefresh, revokeFamily, endSessions}
	if s.postgres {
		hot = append(hot, rotateFresh)
	}
	for _, q := range hot {
		if s.postgres {
			st, err := s.db.PrepareContext(ctx, s.q(q))
			if err != nil {
				return errorf("preparing %s: %w", opName(q), err)
			}
			st.Close()
		}
		if _, err := s.prepare(ctx, q, write); err != nil {
			return err
		}
	}
	return nil
}

// refreshRow is a token as read, with what decides whether it still counts.
type refreshRow struct {
	issuer.RefreshRecord
	revoked    bool
	replacedBy string
	cutoff     int64 // -1: the subject's sessions were never ended
	keepFamily string
}

// dead reports whether the token can no longer be exchanged at now.
func (r refreshRow) dead(now time.Time) bool {
	ended := r.cutoff >= 0 && ns(r.AuthTime) <= r.cutoff && r.Family != r.keepFamily
	return r.revoked || ended || !now.Before(r.ExpiresAt)
}

func scanRefresh(row *sql.Row) (refreshRow, error) {
	var r refreshRow
	var exp, used, auth int64
	var revoked int
	err := row.Scan(&r.Hash, &r.Family, &r.Subject, &r.Kind, &r.Principal, &r.ClientID, &r.Scope, &r.Issuer,
		&exp, &used, &revoked, &auth, &r.replacedBy, &r.cutoff, &r.keepFamily, &r.JKT)
	if err != nil {
		return r, notFound(err, "refresh token")
	}
	r.ExpiresAt, r.UsedAt, r.AuthTime, r.revoked = fromNS(exp), fromNS(used), fromNS(auth), revoked != 0
	return r, nil
}

// insertRefresh stores r, in tx when it is not nil.
func (s *Store) insertRefresh(ctx context.Context, tx *sql.Tx, r issuer.RefreshRecord) error {
	_, err := s.execIn(ctx, tx, insertRefresh, r.Hash, r.Family, r.Subject, r.Kind, r.Principal, r.ClientID,
		r.Scope, r.Issuer, ns(r.ExpiresAt), ns(r.AuthTime))
	if err != nil {
		return errorf("storing refresh token: %w", err)
	}
	return nil
}

// CreateRefresh implements issuer.Store.
func (s *Store) CreateRefresh(ctx context.Context, r issuer.RefreshRecord, exclusive bool) error {
	if !exclusive {
		return s.insertRefresh(ctx, nil, r)
	}
	tx, leave, err := s.begin(ctx)
	if err != nil {
		return errorf("storing refresh token: %w", err)
	}
	defer leave() // after the Rollback below
	defer tx.Rollback()
	if err := s.insertRefresh(ctx, tx, r); err != nil {
		return err
	}
	if _, err := s.execIn(ctx, tx, endSessions, r.Subject, ns(r.AuthTime), r.Family); err != nil {
		return errorf("ending other sessions of %s: %w", r.Subject, err)
	}
	if err := tx.Commit(); err != nil {
		return errorf("storing refresh token: %w", err)
	}
	return nil
}

// GetRefresh implements issuer.Store.
func (s *Store) GetRefresh(ctx context.Context, hash string) (issuer.RefreshRecord, error) {
	r, err := scanRefresh(s.row(ctx, refreshByHash, hash))
	if err != nil {
		return issuer.RefreshRecord{}, err
	}
	if r.dead(time.Time{}) { // expiry is the caller's to judge
		return r.RefreshRecord, errorf("refresh token revoked: %w", issuer.ErrNotFound)
	}
	return r.RefreshRecord, nil
}

// RotateRefresh implements issuer.Store. On PostgreSQL the common case is
// one statement (rotateFresh); every other case, and every case on SQLite
// (no network to save, and no data-modifying CTEs), is decided by
// rotateInTx.
func (s *Store) RotateRefresh(ctx context.Context, oldHash string, next issuer.RefreshRecord, now time.Time, grace time.Duration) (issuer.RefreshRecord, error) {
	if s.postgres {
		// Aborted (a server whose default isolation is stricter than READ
		// COMMITTED): the transaction below decides instead.
		old, ok, err := s.rotateFresh(ctx, oldHash, next, now)
		if err != nil && !retryable(err) || ok {
			return old, err
		}
	}
	return retryTx(func() (issuer.RefreshRecord, error) { return s.rotateInTx(ctx, oldHash, next, now, grace) })
}

// maxTxAttempts bounds the runs of a transaction that PostgreSQL aborted
// (see retryable). A reuse revokes its family after locking the reused
// token, while RevokeFamily locks the family's tokens from the first: each
// can hold a token the other waits for, and PostgreSQL then aborts one.
const maxTxAttempts = 3

// retryTx runs tx, again while PostgreSQL aborts it (see retryable), at
// most maxTxAttempts times in all.
func retryTx[T any](tx func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := tx()
		if err == nil || attempt == maxTxAttempts || !retryable(err) {
			return v, err
		}
	}
}

// retryTxErr is retryTx for a transaction with no result.
func retryTxErr(tx func() error) error {
	_, err := retryTx(func() (struct{}, error) { return struct{}{}, tx() })
	return err
}

// rotateFresh runs rotateFresh; ok is false when it changed nothing.
func (s *Store) rotateFresh(ctx context.Context, oldHash string, next issuer.RefreshRecord, now time.Time) (issuer.RefreshRecord, bool, error) {
	var old issuer.RefreshRecord
	var exp, auth int64
	err := s.row(ctx, rotateFresh, ns(now), next.Hash, oldHash, next.Family, next.Subject, next.Kind, next.Principal,
		next.ClientID, next.Scope, next.Issuer, ns(next.ExpiresAt), ns(next.AuthTime)).
		Scan(&old.Hash, &old.Family, &old.Subject, &old.Kind, &old.Principal, &old.ClientID, &old.Scope, &old.Issuer,
			&exp, &auth, &old.JKT)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return issuer.RefreshRecord{}, false, nil
	case err != nil:
		return issuer.RefreshRecord{}, false, errorf("rotating refresh token: %w", err)
	}
	// As it was before: unused (UsedAt zero), live.
	old.ExpiresAt, old.AuthTime = fromNS(exp), fromNS(auth)
	return old, true, nil
}

// rotateInTx decides every case of RotateRefresh in a transaction. The
// old row is locked first (FOR UPDATE on PostgreSQL; SQLite transactions
// take the write lock at BEGIN), so concurrent exchanges of one token are
// decided one after the other.
func (s *Store) rotateInTx(ctx context.Context, oldHash string, next issuer.RefreshRecord, now time.Time, grace time.Duration) (issuer.RefreshRecord, error) {
	tx, leave, err := s.begin(ctx)
	if err != nil {
		return issuer.RefreshRecord{}, errorf("rotating refresh token: %w", err)
	}
	defer leave() // after the Rollback below
	defer tx.Rollback()
	old, err := scanRefresh(s.rowIn(ctx, tx, s.byHashLocked(), oldHash))
	if err != nil {
		return issuer.RefreshRecord{}, err
	}
	if old.dead(now) {
		return old.RefreshRecord, errorf("refresh token revoked or expired: %w", issuer.ErrNotFound)
	}
	reused := false
	switch {
	case old.UsedAt.IsZero():
		_, err = s.execIn(ctx, tx, useRefresh, ns(now), next.Hash, oldHash)
	case old.replacedBy != "" && grace > 0 && now.Sub(old.UsedAt) <= grace:
		// A retry: the successor it got must still be unused, else the
		// chain went on without this token and this is a second holder.
		var res sql.Result
		if res, err = s.execIn(ctx, tx, supersedeRefresh, ns(now), old.replacedBy); err == nil {
			if n, _ := res.RowsAffected(); n == 1 {
				_, err = s.execIn(ctx, tx, replaceRefresh, next.Hash, oldHash)
			} else {
				reused = true
			}
		}
	default:
		reused = true
	}
	if err != nil {
		return issuer.RefreshRecord{}, errorf("rotating refresh token: %w", err)
	}
	if reused {
		if err := s.revokeFamilyIn(ctx, tx, old.Family); err != nil {
			return issuer.RefreshRecord{}, errorf("revoking refresh family: %w", err)
		}
	} else if err := s.insertRefresh(ctx, tx, next); err != nil {
		return issuer.RefreshRecord{}, err
	}
	if err := tx.Commit(); err != nil {
		return issuer.RefreshRecord{}, errorf("rotating refresh token: %w", err)
	}
	if reused {
		return old.RefreshRecord, issuer.ErrRefreshReused
	}
	return old.RefreshRecord, nil
}

// RevokeFamily implements issuer.Store.
func (s *Store) RevokeFamily(ctx context.Context, family string) error {
	// A revocation finishes even if the caller goes away: stopping between
	// passes could leave a concurrent rotation's successor live.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	return retryTxErr(func() error { return s.revokeFamilyTx(ctx, family) })
}

// revokeFamilyTx revokes family in a transaction of its own.
func (s *Store) revokeFamilyTx(ctx context.Context, family string) error {
	tx, leave, err := s.begin(ctx)
	if err != nil {
		return errorf("revoking refresh family: %w", err)
	}
	defer leave() // after the Rollback below
	defer tx.Rollback()
	if err := s.revokeFamilyIn(ctx, tx, family); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return errorf("revoking refresh family: %w", err)
	}
	return nil
}

// revokeTimeout bounds a family revocation that outlives its request.
const revokeTimeout = 10 * time.Second

// begin starts a write transaction; the caller calls leave once it has
// committed or rolled back. The refresh paths rely on READ COMMITTED on
// PostgreSQL (each statement sees what committed before it), so it is
// asked for rather than taken from the server's default.
func (s *Store) begin(ctx context.Context) (tx *sql.Tx, leave func(), err error) {
	if s.postgres {
		tx, err = s.w.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
		return tx, func() {}, err
	}
	// A SQLite write transaction holds the gate until it ends: leave
	// after Commit or Rollback.
	if leave, err = s.gate.enter(ctx); err != nil {
		return nil, nil, err
	}
	if tx, err = s.w.BeginTx(ctx, nil); err != nil {
		leave()
		return nil, nil, err
	}
	return tx, leave, nil
}

// maxRevokePasses bounds revokeFamilyIn's passes; each one needs a
// rotation of the family to have committed during the one before.
const maxRevokePasses = 16

// revokeFamilyIn revokes every token of family, in tx unless it is nil.
// On PostgreSQL an UPDATE that waited on a token a concurrent rotation had
// locked sees that token once the rotation commits, but not the successor
// the rotation inserted (it was not in the statement's snapshot): so the
// UPDATE runs again until it finds nothing left to revoke. (On SQLite the
// second pass finds nothing: writers take turns.)
func (s *Store) revokeFamilyIn(ctx context.Context, tx *sql.Tx, family string) error {
	for range maxRevokePasses {
		res, err := s.execIn(ctx, tx, revokeFamily, family)
		if err != nil {
			return errorf("revoking refresh family: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return nil
		}
	}
	return errorf("revoking refresh family: tokens still being rotated after %d passes", maxRevokePasses)
}

// EndSessions implements issuer.Store. One row per subject: it is read with
// the token on every exchange (a primary-key lookup), so ending the
// sessions costs one write however many tokens the subject holds, and a
// token rotated concurrently still carries its family's auth_time and is
// refused on its next use.
func (s *Store) EndSessions(ctx context.Context, subject string, at time.Time, keepFamily string) error {
	if _, err := s.exec(ctx, endSessions, subject, ns(at), keepFamily); err != nil {
		return errorf("ending sessions of %s: %w", subject, err)
	}
	return nil
}

// Pruning on SQLite: a batch should hold the write lock for about
// pruneTarget. The first batch is small (the table's pages may be cold: a
// first batch of 1000 rows held the lock 80-106 ms), and the size adapts.
// Between batches the lock is left free for pruneGap, or twice the last
// batch's time if that is longer: writers waiting on the lock (in this
// process or another) sleep and retry on SQLite's busy schedule, whose
// sleeps grow with the wait (1, 2, 5, 10, ... 100 ms), so after a long
// batch a short gap would pass while they sleep.
//
// A batch also gives way: its connection waits for the write lock
// pruneLockWait at most (its own busy_timeout), and a batch that did not
// get it is tried again after a gap. So the pruner never queues for the
// lock with request writers, which wait on the same busy schedule and lost
// to it by up to 80 ms behind a checkpoint. Giving way for longer than the
// store's busy timeout in a row fails, as any write would.
const (
	pruneFirstBatch = 50
	pruneMinBatch   = 20
	pruneTarget     = 4 * time.Millisecond
	pruneGap        = 20 * time.Millisecond
	pruneLockWait   = 10 * time.Millisecond
)

// purgeRefresh deletes expired refresh tokens in batches, each its own
// short transaction, then the cut-offs no token needs.
func (s *Store) purgeRefresh(ctx context.Context, now time.Time) error {
	// PostgreSQL: row locks, deleting blocks no writer. SQLite :memory:
	// has one connection and no other writer: pruneSQLite would hold that
	// connection between its batches, and a writer holding the gate would
	// wait for it while the pruner waits for the gate.
	if s.postgres || s.memory {
		for {
			res, err := s.exec(ctx, pruneRefresh, ns(now), PruneBatch)
			if err != nil {
				return errorf("purging refresh tokens: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil || n < PruneBatch {
				break
			}
		}
	} else if err := s.pruneSQLite(ctx, now); err != nil {
		return errorf("purging refresh tokens: %w", err)
	}
	if _, err := s.exec(ctx, pruneCutoffs); err != nil {
		return errorf("purging session cut-offs: %w", err)
	}
	return nil
}

// pruneSQLite deletes expired refresh tokens in batches that adapt to
// pruneTarget. Each batch runs on the writer's connection (Store.w) while
// holding the gate, so its commits do not drop the page cache of the
// connection every write uses, and it waits pruneLockWait at most for
// SQLite's write lock (another process's), its busy_timeout for the batch.
func (s *Store) pruneSQLite(ctx context.Context, now time.Time) error {
	batch := pruneFirstBatch
	var gaveWay time.Duration // in a row
	for {
		took, n, err := s.pruneBatch(ctx, now, batch)
		switch {
		case err != nil && isBusy(err) && ctx.Err() == nil:
			if gaveWay += took + pruneGap; gaveWay > sqliteBusy {
				return fmt.Errorf("gave way to other writers for %s: %w", gaveWay.Round(time.Millisecond), err)
			}
		case err != nil:
			return err
		case n < int64(batch):
			return nil
		default:
			gaveWay = 0
			switch {
			case took > 2*pruneTarget && batch > pruneMinBatch:
				batch = max(batch/2, pruneMinBatch)
			case took < pruneTarget/2 && batch < PruneBatch:
				batch = min(batch*2, PruneBatch)
			}
		}
		t := time.NewTimer(max(pruneGap, 2*took))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// pruneBatch deletes up to batch expired refresh tokens on the writer's
// connection and says how long the DELETE took and how many it deleted.
func (s *Store) pruneBatch(ctx context.Context, now time.Time, batch int) (took time.Duration, n int64, err error) {
	s.maintenance.Lock()
	defer s.maintenance.Unlock()
	leave, err := s.gate.enter(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer leave()
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close()
	// Set back first: the driver may report a cancelled ctx for a PRAGMA
	// that took effect, and this is every write's connection.
	defer func() {
		if err := setBusyTimeout(context.WithoutCancel(ctx), conn, sqliteBusy); err != nil {
			discard(conn) // never back in the pool with the short wait
		}
	}()
	if err := setBusyTimeout(ctx, conn, pruneLockWait); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	res, err := conn.ExecContext(ctx, pruneRefresh, ns(now), batch)
	took = time.Since(start)
	s.observed(opName(pruneRefresh), start, err)
	if err != nil {
		return took, 0, err
	}
	n, err = res.RowsAffected()
	return took, n, err
}

// discard makes database/sql close conn instead of pooling it.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}
