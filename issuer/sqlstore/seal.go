package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tokengate/caddy-tokengate/issuer"
)

var _ issuer.SealedStore = (*Store)(nil)

// sealedRow is a sealed value and where it lives.
type sealedRow struct {
	v     issuer.SealedValue
	table string
	key   any // primary key of the row
}

func (s *Store) sealedRows(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]sealedRow, error) {
	var out []sealedRow
	rows, err := q.QueryContext(ctx, `SELECT kid, private FROM tg_keys ORDER BY kid`)
	if err != nil {
		return nil, fmt.Errorf("listing sealed keys: %w", err)
	}
	for rows.Next() {
		r := sealedRow{table: "key", v: issuer.SealedValue{Kind: issuer.SealedKey}}
		if err := rows.Scan(&r.v.Owner, &r.v.Sealed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scanning sealed key: %w", err)
		}
		r.key = r.v.Owner
		out = append(out, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	rows, err = q.QueryContext(ctx, `SELECT id, entity_id, sealed FROM tg_entity_secrets ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing sealed secrets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		r := sealedRow{table: "secret", v: issuer.SealedValue{Kind: issuer.SealedSecret}}
		if err := rows.Scan(&id, &r.v.Owner, &r.v.Sealed); err != nil {
			return nil, fmt.Errorf("scanning sealed secret: %w", err)
		}
		r.key = id
		out = append(out, r)
	}
	return out, rows.Err()
}

// EachSealed implements issuer.SealedStore.
func (s *Store) EachSealed(ctx context.Context, f func(issuer.SealedValue) error) error {
	rows, err := s.sealedRows(ctx, s.db)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := f(r.v); err != nil {
			return err
		}
	}
	return nil
}

// Reseal implements issuer.SealedStore. The transaction holds the write
// lock (SQLite: immediate transactions; PostgreSQL: table locks), so a key
// or secret written meanwhile waits and cannot escape the move.
func (s *Store) Reseal(ctx context.Context, fingerprint string, f func(issuer.SealedValue) (string, error)) error {
	tx, leave, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("resealing: %w", err)
	}
	defer leave() // after the Rollback below
	defer tx.Rollback()
	if s.postgres {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7361626)`); err != nil {
			return fmt.Errorf("locking for reseal: %w", err)
		}
		// Keys or secrets added while we work must not escape the move.
		if _, err := tx.ExecContext(ctx, `LOCK TABLE tg_keys, tg_entity_secrets IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("locking for reseal: %w", err)
		}
	}
	rows, err := s.sealedRows(ctx, tx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		nv, err := f(r.v)
		if err != nil {
			return err
		}
		query := `UPDATE tg_keys SET private = ? WHERE kid = ?`
		if r.table == "secret" {
			query = `UPDATE tg_entity_secrets SET sealed = ? WHERE id = ?`
		}
		if _, err := tx.ExecContext(ctx, s.q(query), nv, r.key); err != nil {
			return fmt.Errorf("storing resealed %s %s: %w", r.v.Kind, r.v.Owner, err)
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO tg_settings (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`), issuer.FingerprintSetting, fingerprint); err != nil {
		return fmt.Errorf("recording master key fingerprint: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing reseal: %w", err)
	}
	return nil
}
