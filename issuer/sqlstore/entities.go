package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// PutEntity implements issuer.Store.
func (s *Store) PutEntity(ctx context.Context, e issuer.Entity) error {
	_, err := s.exec(ctx, `INSERT INTO tg_entities (id, roles) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET roles = excluded.roles`,
		e.ID, joinList(e.Roles))
	if err != nil {
		return errorf("storing entity %s: %w", e.ID, err)
	}
	return nil
}

func scanEntity(row interface{ Scan(...any) error }) (issuer.Entity, error) {
	var e issuer.Entity
	var roles string
	err := row.Scan(&e.ID, &roles)
	e.Roles = splitList(roles)
	return e, err
}

// GetEntity implements issuer.Store.
func (s *Store) GetEntity(ctx context.Context, id string) (issuer.Entity, error) {
	e, err := scanEntity(s.row(ctx, `SELECT id, roles FROM tg_entities WHERE id = ?`, id))
	if err != nil {
		return issuer.Entity{}, notFound(err, "entity "+id)
	}
	return e, nil
}

// ListEntities implements issuer.Store.
func (s *Store) ListEntities(ctx context.Context) ([]issuer.Entity, error) {
	return list(ctx, s, `SELECT id, roles FROM tg_entities ORDER BY id`, scanEntity)
}

// DeleteEntity implements issuer.Store. It deletes the secrets oldest
// first while a reset (AddSecret) locks the current one, then drops the
// old ones: PostgreSQL may abort either, which then runs again.
func (s *Store) DeleteEntity(ctx context.Context, id string) error {
	return retryTxErr(func() error { return s.deleteEntityTx(ctx, id) })
}

func (s *Store) deleteEntityTx(ctx context.Context, id string) error {
	tx, leave, err := s.begin(ctx)
	if err != nil {
		return errorf("deleting entity %s: %w", id, err)
	}
	defer leave() // after the Rollback below
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM tg_entity_secrets WHERE entity_id = ?`), id); err != nil {
		return errorf("deleting secrets of entity %s: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM tg_entities WHERE id = ?`), id)
	if err := mustAffect(res, err, "entity "+id); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return errorf("deleting entity %s: %w", id, err)
	}
	return nil
}

const secretCols = `SELECT entity_id, hash, sealed, created_at, expires_at, usable_until, superseded FROM tg_entity_secrets`

func scanSecret(row interface{ Scan(...any) error }) (issuer.EntitySecret, error) {
	var e issuer.EntitySecret
	var created, expires, usable int64
	var superseded int
	err := row.Scan(&e.EntityID, &e.Hash, &e.Sealed, &created, &expires, &usable, &superseded)
	e.CreatedAt, e.ExpiresAt, e.UsableUntil, e.Superseded = fromNS(created), fromNS(expires), fromNS(usable), superseded != 0
	return e, err
}

// CurrentSecret implements issuer.Store.
func (s *Store) CurrentSecret(ctx context.Context, entityID string) (issuer.EntitySecret, error) {
	e, err := scanSecret(s.row(ctx, secretCols+` WHERE entity_id = ? AND superseded = 0`, entityID))
	if err != nil {
		return issuer.EntitySecret{}, notFound(err, "secret of entity "+entityID)
	}
	return e, nil
}

// AddSecret implements issuer.Store.
func (s *Store) AddSecret(ctx context.Context, sec issuer.EntitySecret, replace bool, usableUntil time.Time) error {
	return retryTxErr(func() error { return s.addSecretTx(ctx, sec, replace, usableUntil) })
}

func (s *Store) addSecretTx(ctx context.Context, sec issuer.EntitySecret, replace bool, usableUntil time.Time) error {
	tx, leave, err := s.begin(ctx)
	if err != nil {
		return errorf("storing secret: %w", err)
	}
	defer leave() // after the Rollback below
	defer tx.Rollback()
	if replace {
		// The old secret stays usable until the grace period ends, but
		// never past its own expiry.
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE tg_entity_secrets SET superseded = 1,
			usable_until = CASE WHEN usable_until < ? THEN usable_until ELSE ? END
			WHERE entity_id = ? AND superseded = 0`), ns(usableUntil), ns(usableUntil), sec.EntityID); err != nil {
			return errorf("superseding secret: %w", err)
		}
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO tg_entity_secrets (entity_id, hash, sealed, created_at, expires_at, usable_until, superseded)
		VALUES (?, ?, ?, ?, ?, ?, 0)`), sec.EntityID, sec.Hash, sec.Sealed, ns(sec.CreatedAt), ns(sec.ExpiresAt), ns(sec.ExpiresAt))
	if err != nil {
		if isUniqueViolation(err) {
			return errorf("entity %s already has a secret: %w", sec.EntityID, issuer.ErrConflict)
		}
		return errorf("storing secret: %w", err)
	}
	// Superseded secrets past their use are history; drop them here.
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM tg_entity_secrets WHERE entity_id = ? AND superseded = 1 AND usable_until < ?`),
		sec.EntityID, ns(sec.CreatedAt)); err != nil {
		return errorf("dropping old secrets: %w", err)
	}
	if err := tx.Commit(); err != nil {
		if isUniqueViolation(err) {
			return errorf("entity %s already has a secret: %w", sec.EntityID, issuer.ErrConflict)
		}
		return errorf("storing secret: %w", err)
	}
	return nil
}

// UsableSecrets implements issuer.Store.
func (s *Store) UsableSecrets(ctx context.Context, entityID string, now time.Time) ([]issuer.EntitySecret, error) {
	return list(ctx, s, secretCols+` WHERE entity_id = ? AND usable_until > ? ORDER BY superseded`, scanSecret, entityID, ns(now))
}

// isUniqueViolation recognises a unique-constraint error by its code:
// SQLSTATE 23505 from PostgreSQL, SQLITE_CONSTRAINT_UNIQUE/PRIMARYKEY from
// SQLite. Never by message text, which changes with versions and locales.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	if code, ok := sqliteCode(err); ok {
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// retryable recognises, by its SQLSTATE, a transaction PostgreSQL aborted
// to break a deadlock (40P01) or a serialization failure (40001): it took
// no effect, and running it again decides anew.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

// sqliteCode returns the SQLite result code (extended) that err carries.
func sqliteCode(err error) (int, bool) {
	var sqliteErr *sqlite.Error
	if errors.As(err, &sqliteErr) {
		return sqliteErr.Code(), true
	}
	return 0, false
}

// isBusy says err is SQLite's SQLITE_BUSY: a lock not to be had within the
// connection's busy timeout.
func isBusy(err error) bool {
	code, ok := sqliteCode(err)
	return ok && code&0xff == sqlite3.SQLITE_BUSY
}
