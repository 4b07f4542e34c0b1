package issuer

import (
	"context"
	"errors"
	"time"
)

// DPoPStore keeps what DPoP (RFC 9449) needs shared between instances.
type DPoPStore interface {
	// UseProofID records a proof id until expires. It reports false when
	// the id is already recorded and not expired at now: a replay. The
	// database decides, so two instances never both accept one proof.
	UseProofID(ctx context.Context, id string, expires, now time.Time) (fresh bool, err error)
	// BindFamily binds a refresh family to a key thumbprint (jkt) until
	// expires; a family is bound once, when it starts.
	BindFamily(ctx context.Context, family, jkt string, expires time.Time) error
	// FamilyKey returns the jkt a family is bound to, "" when unbound. A
	// refresh reads it with the token instead (RefreshRecord.JKT).
	FamilyKey(ctx context.Context, family string) (string, error)
}

// Confirmation is the `cnf` claim (RFC 7800) of a sender-constrained token.
type Confirmation struct {
	// JKT is the RFC 7638 thumbprint of the DPoP key (RFC 9449 §6.1).
	JKT string `json:"jkt,omitempty"`
}

// BoundKey returns the DPoP key thumbprint the token is bound to, or "".
func (c *AccessClaims) BoundKey() string {
	if c.Cnf == nil {
		return ""
	}
	return c.Cnf.JKT
}

// ErrRefreshKey says a refresh token bound to a DPoP key was presented
// without a proof of that key.
var ErrRefreshKey = errors.New("refresh token is bound to another DPoP key")

// UseDPoPProof records a DPoP proof id in the shared store (see
// DPoPStore.UseProofID).
func (i *Issuer) UseDPoPProof(ctx context.Context, id string, expires time.Time) (bool, error) {
	return i.proofStore.UseProofID(ctx, id, expires, i.core.now())
}

// checkFamilyKey refuses a refresh of rec, whose family may be bound to a
// key (rec.JKT, read with the token), when jkt is not that key. The
// binding is written before the family's first token, so it is never
// read stale.
func checkFamilyKey(rec RefreshRecord, jkt string) error {
	if rec.JKT != "" && rec.JKT != jkt {
		return ErrRefreshKey
	}
	return nil
}
