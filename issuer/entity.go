package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNoSecretsKey says readable entity secrets cannot be sealed or opened.
var ErrNoSecretsKey = errors.New("no key to seal entity secrets with")

func secretLabel(entityID string) string { return "tokengate entity secret " + entityID }

// LookupEntity returns an entity declared in configuration or stored.
func (i *Issuer) LookupEntity(ctx context.Context, id string) (Entity, error) {
	if e, ok := i.entities[id]; ok {
		return e, nil
	}
	if id == "" {
		return Entity{}, ErrNotFound
	}
	e, err := i.entityStore.GetEntity(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Entity{}, fmt.Errorf("looking up entity: %w", err)
	}
	if err == nil && CheckName("entity", e.ID) != nil {
		return Entity{}, ErrNotFound
	}
	return e, err
}

// SecretInfo is an entity secret as the Token Service returns it.
type SecretInfo struct {
	EntityID  string
	Secret    string
	ExpiresAt time.Time
}

// ReadSecret returns the entity's current secret, creating one (valid for
// ttl) if it has none or its secret has expired.
func (i *Issuer) ReadSecret(ctx context.Context, entityID string, ttl time.Duration) (SecretInfo, error) {
	if _, err := i.LookupEntity(ctx, entityID); err != nil {
		return SecretInfo{}, err
	}
	for range 3 { // a concurrent reader may create it first; then read theirs
		now := i.core.now()
		cur, err := i.secretStore.CurrentSecret(ctx, entityID)
		switch {
		case err == nil && now.Before(cur.ExpiresAt):
			return i.openSecret(cur)
		case err == nil: // expired: replace it, no grace
			return i.newSecret(ctx, entityID, ttl, true, now)
		case !errors.Is(err, ErrNotFound):
			return SecretInfo{}, fmt.Errorf("reading secret: %w", err)
		}
		info, err := i.newSecret(ctx, entityID, ttl, false, time.Time{})
		if !errors.Is(err, ErrConflict) {
			return info, err
		}
	}
	return SecretInfo{}, errors.New("reading secret: too much contention")
}

// ResetSecret replaces the entity's secret. The old one stops yielding
// tokens now, or after the configured grace period.
func (i *Issuer) ResetSecret(ctx context.Context, entityID string, ttl time.Duration) (SecretInfo, error) {
	if _, err := i.LookupEntity(ctx, entityID); err != nil {
		return SecretInfo{}, err
	}
	info, err := i.newSecret(ctx, entityID, ttl, true, i.core.now().Add(i.cfg.SecretGrace))
	if err == nil {
		i.core.Emit(ctx, Event{Kind: EventSecretReset, NameKind: "entity", Name: entityID, ExpiresAt: info.ExpiresAt})
	}
	return info, err
}

func (i *Issuer) newSecret(ctx context.Context, entityID string, ttl time.Duration, replace bool, oldUsableUntil time.Time) (SecretInfo, error) {
	if i.core.mk == nil {
		return SecretInfo{}, ErrNoSecretsKey
	}
	secret, err := NewSecret("tge_")
	if err != nil {
		return SecretInfo{}, err
	}
	sealed, err := i.core.mk.Seal(secretLabel(entityID), []byte(secret))
	if err != nil {
		return SecretInfo{}, fmt.Errorf("sealing secret: %w", err)
	}
	now := i.core.now()
	rec := EntitySecret{EntityID: entityID, Hash: i.core.hasher.Hash(secret), Sealed: sealed, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := i.secretStore.AddSecret(ctx, rec, replace, oldUsableUntil); err != nil {
		return SecretInfo{}, err
	}
	return SecretInfo{EntityID: entityID, Secret: secret, ExpiresAt: rec.ExpiresAt}, nil
}

func (i *Issuer) openSecret(rec EntitySecret) (SecretInfo, error) {
	if i.core.mk == nil {
		return SecretInfo{}, ErrNoSecretsKey
	}
	pt, err := i.core.mk.Open(secretLabel(rec.EntityID), rec.Sealed)
	if err != nil {
		return SecretInfo{}, fmt.Errorf("opening secret of entity %s: %w", rec.EntityID, err)
	}
	return SecretInfo{EntityID: rec.EntityID, Secret: string(pt), ExpiresAt: rec.ExpiresAt}, nil
}

// AuthenticateEntity checks an entity's secret against every secret that
// may still yield tokens (the current one, and a superseded one in grace),
// throttled like AuthenticateUser. An unknown id costs the same store
// round trip and keyed hash as a known one.
func (i *Issuer) AuthenticateEntity(ctx context.Context, id, secret string) (Entity, error) {
	account := clientAccount(id) // entities also sign in on the client route
	if err := i.allow(ctx, account); err != nil {
		return Entity{}, err
	}
	e, found, err := i.authenticateEntity(ctx, id, secret)
	if !found && err == nil {
		i.core.checkSecret(dummySecretHash, secret)
		err = ErrInvalidCredentials
	}
	if errors.Is(err, ErrInvalidCredentials) {
		i.core.Emit(ctx, Event{Kind: EventLoginFailed, NameKind: "entity", Name: id})
	}
	i.settle(ctx, account, err)
	return e, err
}

// authenticateEntity reports found false, with no error and no hash
// computed, when there is no such entity; it still reads the (empty)
// secrets, so the unknown id costs the same round trip.
func (i *Issuer) authenticateEntity(ctx context.Context, id, secret string) (Entity, bool, error) {
	e, err := i.LookupEntity(ctx, id)
	found := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Entity{}, false, err
	}
	usable, err := i.secretStore.UsableSecrets(ctx, id, i.core.now())
	if err != nil {
		return Entity{}, found, fmt.Errorf("reading secrets of entity %s: %w", id, err)
	}
	if !found {
		return Entity{}, false, nil
	}
	ok := false
	for _, s := range usable { // compare with all: no early exit to time
		if i.core.checkSecret(s.Hash, secret) {
			ok = true
		}
	}
	if len(usable) == 0 {
		i.core.checkSecret(dummySecretHash, secret)
	}
	if !ok {
		return Entity{}, true, ErrInvalidCredentials
	}
	return e, true, nil
}

// EntityPrincipal is the principal of an entity's tokens.
func EntityPrincipal(e Entity) Principal {
	return Principal{Kind: KindEntity, Name: e.ID, Subject: e.ID, Roles: e.Roles}
}
