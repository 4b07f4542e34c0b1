package issuer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// CoreOptions configure a Core.
type CoreOptions struct {
	// MasterKey seals private keys; nil stores them in the clear.
	MasterKey *MasterKey
	// Clock returns the current time; time.Now by default. Tests move it.
	Clock func() time.Time
	// SyncInterval is how often keys and revocations written by other
	// processes sharing the store are picked up. Default 5s; <0 disables.
	SyncInterval time.Duration
	// Retention is how long a superseded key keeps verifying; it must cover
	// the longest access-token lifetime. Default 24h.
	Retention time.Duration
	Logger    *zap.Logger
}

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// Core is the state every site naming one store shares: the store, the
// signing keys and the revocation set, all held in memory so that verifying
// a token touches no database.
type Core struct {
	store   Store
	mk      *MasterKey
	hasher  *SecretHasher
	now     func() time.Time
	log     *zap.Logger
	keys    atomic.Pointer[keyring]
	revoked *revocationSet
	// verified is shared by every site on this store: a token verified for
	// one site is re-checked against the other's issuer and audience.
	verified *verifiedCache

	retention atomic.Int64 // time.Duration; see CoreOptions.Retention
	keyMu     sync.Mutex   // serialises key reloads and rotations in this process
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// OpenCore loads keys and revocations from store and starts the background
// sync. The Core owns store from then on and closes it in Close.
func OpenCore(ctx context.Context, store Store, opts CoreOptions) (*Core, error) {
	c := &Core{store: store, mk: opts.MasterKey, now: opts.Clock, log: opts.Logger,
		revoked: newRevocationSet(), verified: newVerifiedCache(verifiedCacheSize), stop: make(chan struct{})}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if opts.Retention <= 0 {
		opts.Retention = 24 * time.Hour
	}
	c.retention.Store(int64(opts.Retention))
	hk, err := store.Setting(ctx, "secret_hash_key", func() (string, error) {
		s, err := NewMasterKeyString()
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("loading secret hashing key: %w", err)
	}
	raw, err := hex.DecodeString(hk)
	if err != nil {
		return nil, fmt.Errorf("decoding secret hashing key: %w", err)
	}
	if c.hasher, err = NewSecretHasher(raw); err != nil {
		return nil, err
	}
	if err := c.ReloadKeys(ctx); err != nil {
		return nil, err
	}
	if err := c.syncRevocations(ctx); err != nil {
		return nil, err
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = 5 * time.Second
	}
	if opts.SyncInterval > 0 {
		c.done.Add(1)
		go c.syncLoop(opts.SyncInterval)
	}
	return c, nil
}

// Store returns the underlying store.
func (c *Core) Store() Store { return c.store }

// Hasher returns the keyed hasher for generated secrets.
func (c *Core) Hasher() *SecretHasher { return c.hasher }

// Now returns the Core's current time.
func (c *Core) Now() time.Time { return c.now() }

// Close stops the background sync and closes the store.
func (c *Core) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.stop)
		c.done.Wait()
		err = c.store.Close()
	})
	return err
}

func (c *Core) syncLoop(every time.Duration) {
	defer c.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	purge := 0
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every+10*time.Second)
		if err := c.ReloadKeys(ctx); err != nil {
			c.log.Warn("reloading signing keys", zap.Error(err))
		}
		if err := c.syncRevocations(ctx); err != nil {
			c.log.Warn("reloading revocations", zap.Error(err))
		}
		if purge++; purge%60 == 0 {
			now := c.now()
			c.revoked.forget(now)
			if err := c.store.PurgeExpired(ctx, now); err != nil {
				c.log.Warn("purging expired tokens", zap.Error(err))
			}
		}
		cancel()
	}
}

func (c *Core) syncRevocations(ctx context.Context) error {
	rs, err := c.store.RevocationsSince(ctx, c.revoked.since())
	if err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	c.revoked.apply(rs...)
	return nil
}

// Revoke records r in the store and applies it here at once; other
// processes pick it up within SyncInterval.
func (c *Core) Revoke(ctx context.Context, r Revocation) error {
	if err := c.store.AddRevocation(ctx, r); err != nil {
		return fmt.Errorf("storing revocation: %w", err)
	}
	c.revoked.apply(r)
	return nil
}

// ReloadKeys replaces the in-memory keyring with the store's keys.
func (c *Core) ReloadKeys(ctx context.Context) error {
	recs, err := c.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	keys := make([]*SigningKey, 0, len(recs))
	for _, rec := range recs {
		k, err := loadKey(rec, c.mk)
		if err != nil {
			c.log.Warn("skipping unusable signing key", zap.String("kid", rec.KID), zap.Error(err))
			continue
		}
		keys = append(keys, k)
	}
	c.keys.Store(newKeyring(keys, time.Duration(c.retention.Load())))
	return nil
}

// EnsureRetention makes superseded keys verify for at least d, as a site
// with a longer access-token lifetime needs.
func (c *Core) EnsureRetention(d time.Duration) {
	for {
		cur := c.retention.Load()
		if int64(d) <= cur {
			return
		}
		if c.retention.CompareAndSwap(cur, int64(d)) {
			kr := c.keys.Load()
			var keys []*SigningKey
			for _, k := range kr.byKID {
				keys = append(keys, k)
			}
			c.keys.Store(newKeyring(keys, d))
			return
		}
	}
}

// EnsureKey makes sure alg has a key that can sign, creating the first one.
func (c *Core) EnsureKey(ctx context.Context, alg string) error {
	if k := c.keys.Load().signer(alg, c.now()); k != nil {
		if !k.CanSign() {
			return fmt.Errorf("signing key %s cannot be decrypted: %w", k.KID, ErrNoMasterKey)
		}
		return nil
	}
	_, err := c.addKey(ctx, alg, 0)
	return err
}

// Rotate adds a new key for alg that is published at once and signs after
// publishAhead, so verifiers that cache the JWKS learn it first. When several
// processes rotate at once, exactly one key is added: the others get
// ErrConflict and pick the winner up.
func (c *Core) Rotate(ctx context.Context, alg string, publishAhead time.Duration) (KeyRecord, error) {
	return c.addKey(ctx, alg, publishAhead)
}

func (c *Core) addKey(ctx context.Context, alg string, publishAhead time.Duration) (KeyRecord, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if err := c.ReloadKeys(ctx); err != nil {
		return KeyRecord{}, err
	}
	var seq int64 = 1
	if ks := c.keys.Load().byAlg[alg]; len(ks) > 0 {
		seq = ks[len(ks)-1].Seq + 1
	}
	now := c.now()
	rec, err := GenerateKey(alg, seq, c.mk, now, now.Add(publishAhead))
	if err != nil {
		return KeyRecord{}, err
	}
	addErr := c.store.AddKey(ctx, rec)
	if err := c.ReloadKeys(ctx); err != nil {
		return KeyRecord{}, err
	}
	if addErr != nil {
		if errors.Is(addErr, ErrConflict) {
			return KeyRecord{}, fmt.Errorf("another process added %s key %d: %w", alg, seq, ErrConflict)
		}
		return KeyRecord{}, fmt.Errorf("storing signing key: %w", addErr)
	}
	c.log.Info("signing key added", zap.String("kid", rec.KID), zap.String("alg", alg), zap.Time("activates", rec.ActivateAt))
	return rec, nil
}

// DefaultPublishAhead is how long a rotated key is published before it
// signs: longer than a JWKS may be cached (5 min) plus the store sync.
const DefaultPublishAhead = 6 * time.Minute

// Superseded reports whether a newer key of k's algorithm already signs.
func (c *Core) Superseded(k *SigningKey) bool {
	return !c.keys.Load().supersededAt(k, c.now()).IsZero()
}

// NextRotation returns when alg's newest key becomes due for rotation.
func (c *Core) NextRotation(alg string, every time.Duration) time.Time {
	ks := c.keys.Load().byAlg[alg]
	if len(ks) == 0 {
		return c.now()
	}
	return ks[len(ks)-1].ActivateAt.Add(every)
}

// DeleteExpiredKeys removes keys that can no longer verify any token.
func (c *Core) DeleteExpiredKeys(ctx context.Context) error {
	for _, k := range c.keys.Load().expired(c.now()) {
		if err := c.store.DeleteKey(ctx, k.KID); err != nil {
			return fmt.Errorf("deleting expired key %s: %w", k.KID, err)
		}
	}
	return c.ReloadKeys(ctx)
}

// JWKS returns the JSON Web Key Set of every key that may verify a live token.
func (c *Core) JWKS() map[string]any {
	return map[string]any{"keys": c.keys.Load().published(c.now())}
}

// Keys lists the keys held in memory, oldest first, for inspection.
func (c *Core) Keys() []*SigningKey {
	kr := c.keys.Load()
	var out []*SigningKey
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256} {
		out = append(out, kr.byAlg[alg]...)
	}
	return out
}
