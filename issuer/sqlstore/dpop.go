package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// UseProofID implements issuer.DPoPStore. The primary key decides between
// concurrent instances; an expired record is taken over in place.
func (s *Store) UseProofID(ctx context.Context, id string, expires, now time.Time) (bool, error) {
	res, err := s.exec(ctx, `INSERT INTO tg_dpop_proofs (id, expires_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE tg_dpop_proofs.expires_at <= ?`,
		id, ns(expires), ns(now))
	if err != nil {
		return false, errorf("recording DPoP proof: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errorf("recording DPoP proof: %w", err)
	}
	return n == 1, nil
}

// BindFamily implements issuer.DPoPStore.
func (s *Store) BindFamily(ctx context.Context, family, jkt string, expires time.Time) error {
	if _, err := s.exec(ctx, `INSERT INTO tg_dpop_families (family, jkt, expires_at) VALUES (?, ?, ?)`,
		family, jkt, ns(expires)); err != nil {
		return errorf("binding refresh family to a DPoP key: %w", err)
	}
	return nil
}

// FamilyKey implements issuer.DPoPStore.
func (s *Store) FamilyKey(ctx context.Context, family string) (string, error) {
	var jkt string
	err := s.row(ctx, `SELECT jkt FROM tg_dpop_families WHERE family = ?`, family).Scan(&jkt)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", errorf("reading DPoP key of refresh family: %w", err)
	}
	return jkt, nil
}

// pruneBindings deletes the expired bindings of families with no token left.
const pruneBindings = `DELETE FROM tg_dpop_families WHERE expires_at < ?
	AND NOT EXISTS (SELECT 1 FROM tg_refresh r WHERE r.family = tg_dpop_families.family)`

// purgeDPoP drops proof ids and family bindings that can no longer matter.
// A binding expires with its family's first token, but rotation gives each
// new token a later expiry: dropping it while the family still has a token
// would let that token refresh without the key.
func (s *Store) purgeDPoP(ctx context.Context, now time.Time) error {
	if _, err := s.exec(ctx, `DELETE FROM tg_dpop_proofs WHERE expires_at < ?`, ns(now)); err != nil {
		return errorf("purging DPoP proofs: %w", err)
	}
	if _, err := s.exec(ctx, pruneBindings, ns(now)); err != nil {
		return errorf("purging DPoP bindings: %w", err)
	}
	return nil
}
