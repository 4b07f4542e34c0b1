package issuer

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
)

// CoreOptions configure a Core.
type CoreOptions struct {
	// MasterKey seals private keys and the readable copies of entity
	// secrets; nil stores keys in the clear and disables readable secrets.
	// The store records its fingerprint: OpenCore fails with a
	// *SealMismatchError on a store sealed under another key.
	MasterKey *MasterKey
	// Unsealed opens the Core for what touches nothing sealed (revoking):
	// the master key is not checked against the store, and private keys
	// that do not open under it are left closed.
	Unsealed bool
	// ReadOnly opens the Core for inspection: it records nothing in the
	// store (such as the master key's fingerprint).
	ReadOnly bool
	// Clock returns the current time; time.Now by default. Tests move it.
	Clock func() time.Time
	// SyncInterval is how often keys and revocations written by other
	// processes sharing the store are polled for, on top of the store's
	// own change notices (ChangeWatcher). Default DefaultSyncInterval; <0
	// disables both.
	SyncInterval time.Duration
	// Retention is the least time a superseded key keeps verifying; each
	// key keeps verifying for the MaxTTL it was given if that is longer.
	// Default 24h.
	Retention time.Duration
	Logger    *zap.Logger
	// VerifyPassword checks a password against an argon2id or bcrypt hash;
	// VerifyPassword by default. Tests count hashes with it.
	VerifyPassword func(hash, password string) (bool, error)
	// VerifiedCacheBytes bounds the memory of the verified-token cache.
	// Default DefaultVerifiedCacheBytes.
	VerifiedCacheBytes int64
}

// Leeway is the clock skew tolerated on exp, nbf and iat.
const Leeway = 30 * time.Second

// DefaultSyncInterval is how often a Core polls the store for keys and
// revocations by default; `keys rotate` refuses to publish a key for less.
const DefaultSyncInterval = time.Second

// DefaultKeyLifetime is the MaxTTL of a key created where no site says
// how long its tokens live (the CLI); sites raise it when they need more.
const DefaultKeyLifetime = 24 * time.Hour

// kidReloadEvery rate-limits the key reload a token with an unknown kid
// triggers, so forged kids cannot make the guard hammer the store.
const kidReloadEvery = time.Second

// Core is the state every site naming one store shares: the store, the
// signing keys and the revocation set, all held in memory so that verifying
// a token touches no database.
type Core struct {
	store      Store
	readOnly   bool
	mk         *MasterKey
	hasher     *SecretHasher
	budget     *HashBudget
	verifyPW   func(hash, password string) (bool, error)
	checks     atomic.Uint64 // credential checks computed (slow hashes and keyed hashes)
	sigChecks  atomic.Uint64 // token signatures checked (verified-cache misses)
	throttleMu sync.Mutex
	throttles  []*throttle.Limiter // shared by sites with equal limits, newest last
	now        func() time.Time
	log        *zap.Logger
	keys       atomic.Pointer[keyring]
	revoked    *revocationSet
	// verified is shared by every site on this store: a token verified for
	// one site is re-checked against the other's issuer and audience.
	verified *verifiedCache
	events   eventsField
	lastSync atomic.Int64 // unix ns of the last revocation sync
	// lastStamp is the last issue time handed out, in µs: stamps are
	// strictly increasing so a revocation orders against every token.
	lastStamp atomic.Int64

	retention time.Duration // see CoreOptions.Retention
	keyMu     sync.Mutex    // serialises keyring swaps and rotations in this process
	syncMu    sync.Mutex    // serialises revocation syncs
	// kidMu single-flights reloads for unknown kids; kidReloaded is when
	// the last one ran (monotonic clock: a stopped test clock must not
	// stop them).
	kidMu       sync.Mutex
	kidReloaded time.Time

	regMu     sync.Mutex // guards the registrations below
	regNext   int
	lifetimes map[int]time.Duration // registration -> longest token lifetime a site issues
	rotations map[int]rotation      // registration -> schedule

	wake      chan struct{} // a ChangeWatcher saw a change
	wakeKeys  atomic.Bool   // ... and it may have been to the keys
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
}

// OpenCore loads keys and revocations from store and starts the background
// sync. The Core owns store from then on and closes it in Close.
func OpenCore(ctx context.Context, store Store, opts CoreOptions) (*Core, error) {
	c := &Core{store: store, readOnly: opts.ReadOnly, mk: opts.MasterKey, now: opts.Clock, log: opts.Logger,
		budget: NewHashBudget(0, 0, 0), verifyPW: opts.VerifyPassword, revoked: newRevocationSet(),
		verified: newVerifiedCache(opts.VerifiedCacheBytes), lifetimes: map[int]time.Duration{}, rotations: map[int]rotation{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	if c.verifyPW == nil {
		c.verifyPW = VerifyPassword
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	c.retention = opts.Retention
	if c.retention <= 0 {
		c.retention = 24 * time.Hour
	}
	hk, err := store.Setting(ctx, "secret_hash_key", NewMasterKeyString)
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
	if !opts.Unsealed {
		if err := c.checkSeal(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.ReloadKeys(ctx); err != nil {
		return nil, err
	}
	if err := c.syncRevocations(ctx); err != nil {
		return nil, err
	}
	if opts.SyncInterval == 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.SyncInterval > 0 {
		if w, ok := store.(ChangeWatcher); ok {
			wctx, cancel := context.WithCancel(context.Background())
			c.done.Add(2)
			go func() { defer c.done.Done(); <-c.stop; cancel() }()
			go func() { defer c.done.Done(); w.WatchChanges(wctx, c.changed) }()
		}
		c.done.Add(1)
		go c.syncLoop(opts.SyncInterval)
	}
	return c, nil
}

// HashBudget returns the budget every password check of this Core runs in.
func (c *Core) HashBudget() *HashBudget { return c.budget }

// checkPasswordTimed checks password against an argon2id or bcrypt hash
// within the hashing budget, setting *took to how long the hash itself
// took, by now.
func (c *Core) checkPasswordTimed(ctx context.Context, hash, password string, now func() time.Time, took *time.Duration) (bool, error) {
	var ok bool
	var err error
	if berr := c.budget.Do(ctx, func() {
		c.checks.Add(1)
		start := now()
		ok, err = c.verifyPW(hash, password)
		*took = now().Sub(start)
	}); berr != nil {
		return false, berr
	}
	return ok, err
}

// checkSecret verifies a generated secret against its keyed hash.
func (c *Core) checkSecret(stored, secret string) bool {
	c.checks.Add(1)
	return c.hasher.Verify(stored, secret)
}

// maxThrottles bounds the limiters kept for sites with different limits.
const maxThrottles = 8

// Throttle returns the sign-in limiter for cfg, shared by every site on
// this Core with the same limits, so its counts survive config reloads.
func (c *Core) Throttle(cfg throttle.Config) *throttle.Limiter {
	c.throttleMu.Lock()
	defer c.throttleMu.Unlock()
	cfg = cfg.WithDefaults()
	for _, l := range c.throttles {
		if l.Config() == cfg {
			return l
		}
	}
	want := throttle.New(cfg, c.now)
	if len(c.throttles) == maxThrottles {
		c.throttles = c.throttles[1:]
	}
	c.throttles = append(c.throttles, want)
	return want
}

// changed is the ChangeWatcher's callback: it wakes the sync loop.
func (c *Core) changed(keys bool) {
	if keys {
		c.wakeKeys.Store(true)
	}
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
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
	ticks := 0
	for {
		full := false
		select {
		case <-c.stop:
			return
		case <-c.wake:
		case <-t.C:
			full = true
		}
		ctx, cancel := context.WithTimeout(context.Background(), every+10*time.Second)
		if full || c.wakeKeys.Swap(false) {
			if err := c.ReloadKeys(ctx); err != nil {
				c.log.Warn("reloading signing keys", zap.Error(err))
			}
		}
		if err := c.syncRevocations(ctx); err != nil {
			c.log.Warn("reloading revocations", zap.Error(err))
		}
		if full {
			ticks++
			if ticks%5 == 0 {
				c.rotateDue(ctx)
			}
			if ticks%60 == 0 {
				now := c.now()
				c.revoked.forget(now)
				if err := c.store.PurgeExpired(ctx, now); err != nil {
					c.log.Warn("purging expired tokens", zap.Error(err))
				}
			}
		}
		cancel()
	}
}

// SyncNow picks up keys and revocations other processes wrote, at once.
func (c *Core) SyncNow(ctx context.Context) error {
	if err := c.ReloadKeys(ctx); err != nil {
		return err
	}
	return c.syncRevocations(ctx)
}

func (c *Core) syncRevocations(ctx context.Context) error {
	c.syncMu.Lock() // one sync at a time, so the cursor only moves forward
	defer c.syncMu.Unlock()
	rs, next, err := c.store.RevocationsSince(ctx, c.revoked.since())
	if err != nil {
		return fmt.Errorf("loading revocations: %w", err)
	}
	c.revoked.apply(rs...)
	c.revoked.synced(next)
	c.lastSync.Store(c.now().UnixNano())
	return nil
}

// Revoke records r in the store and applies it here at once; other
// processes sharing the store pick it up as soon as it tells them
// (ChangeWatcher), or within SyncInterval.
func (c *Core) Revoke(ctx context.Context, r Revocation) error {
	if err := c.store.AddRevocation(ctx, r); err != nil {
		return fmt.Errorf("storing revocation: %w", err)
	}
	c.revoked.apply(r)
	c.Emit(ctx, Event{Kind: EventRevoked, NameKind: r.Kind, Name: r.Key, ExpiresAt: r.ExpiresAt})
	return nil
}

// RevocationExpiry is when a revocation of tokens issued until at may be
// forgotten: when the longest-lived of them has expired.
func (c *Core) RevocationExpiry(at time.Time) time.Time {
	return at.Add(c.MaxLifetime() + Leeway)
}

// Stamp returns the time to issue a token (or cut off a revocation) at:
// the clock, to the microsecond, but always after the previous stamp, so
// that "issued after a revocation" is exact within a process even if two
// happen in the same microsecond or the clock stands still.
func (c *Core) Stamp() time.Time {
	t := c.now()
	now := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		now++ // round up: never before the clock (a key activating now signs)
	}
	for {
		last := c.lastStamp.Load()
		us := max(now, last+1)
		if c.lastStamp.CompareAndSwap(last, us) {
			return time.UnixMicro(us)
		}
	}
}

// MaxLifetime is the longest lifetime any token that may still be live can
// have: the largest MaxTTL of a live key, or of a site's registration.
func (c *Core) MaxLifetime() time.Duration {
	return max(c.keys.Load().maxLifetime(c.now()), c.registeredLifetime())
}

// ReloadKeys replaces the in-memory keyring with the store's keys.
func (c *Core) ReloadKeys(ctx context.Context) error {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.reloadKeys(ctx)
}

// reloadKeys does ReloadKeys for a caller that holds keyMu. All keyring
// swaps happen under keyMu, so a slow reload can never put back an older
// keyring over a newer one. Keys that sign (or will) get the longest token
// lifetime a site here registered, before this process signs with them.
func (c *Core) reloadKeys(ctx context.Context) error {
	recs, err := c.store.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("loading signing keys: %w", err)
	}
	cur := c.keys.Load()
	keys := make([]*SigningKey, 0, len(recs))
	for _, rec := range recs {
		// Key material never changes: reuse what was parsed and unsealed.
		if k := curKey(cur, rec); k != nil {
			keys = append(keys, k)
			continue
		}
		k, err := loadKey(rec, c.mk)
		if err != nil {
			c.log.Warn("skipping unusable signing key", zap.String("kid", rec.KID), zap.Error(err))
			continue
		}
		keys = append(keys, k)
	}
	kr := newKeyring(keys, c.retention)
	if need := c.registeredLifetime(); need > 0 {
		now := c.now()
		raised := false
		for i, k := range keys {
			if k.MaxTTL >= need || !kr.supersededAt(k, now).IsZero() {
				continue
			}
			if err := c.store.RaiseKeyLifetime(ctx, k.KID, need); err != nil {
				return fmt.Errorf("raising lifetime of key %s: %w", k.KID, err)
			}
			cp := *k
			cp.MaxTTL = need
			keys[i], raised = &cp, true
		}
		if raised {
			kr = newKeyring(keys, c.retention)
		}
	}
	c.keys.Store(kr)
	return nil
}

func curKey(kr *keyring, rec KeyRecord) *SigningKey {
	if kr == nil {
		return nil
	}
	k := kr.byKID[rec.KID]
	if k == nil || k.MaxTTL != rec.MaxTTL || !k.ActivateAt.Equal(rec.ActivateAt) || k.Seq != rec.Seq {
		return nil
	}
	return k
}

// keyringFor returns a keyring that knows kid if the store has it: a token
// signed by a key another process just published reloads the keys once
// (single-flight, at most once per kidReloadEvery) before it is refused.
func (c *Core) keyringFor(kid string) *keyring {
	kr := c.keys.Load()
	if kid == "" || kr.byKID[kid] != nil {
		return kr
	}
	c.kidMu.Lock()
	defer c.kidMu.Unlock()
	if kr = c.keys.Load(); kr.byKID[kid] != nil || time.Since(c.kidReloaded) < kidReloadEvery {
		return kr // loaded while we waited, or reloaded too recently
	}
	c.kidReloaded = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), kidReloadEvery)
	defer cancel()
	if err := c.ReloadKeys(ctx); err != nil {
		c.log.Warn("reloading signing keys for an unknown kid", zap.Error(err))
	}
	return c.keys.Load()
}

// RegisterLifetime says a site issues tokens living up to d, until the
// returned function is called (when the site's configuration is replaced).
// Keys that sign, now or later, keep verifying that long after they retire.
func (c *Core) RegisterLifetime(ctx context.Context, d time.Duration) (func(), error) {
	c.regMu.Lock()
	id := c.regNext
	c.regNext++
	c.lifetimes[id] = d
	c.regMu.Unlock()
	unregister := func() {
		c.regMu.Lock()
		delete(c.lifetimes, id)
		c.regMu.Unlock()
	}
	if err := c.ReloadKeys(ctx); err != nil {
		unregister()
		return nil, err
	}
	return unregister, nil
}

func (c *Core) registeredLifetime() time.Duration {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	var d time.Duration
	for _, l := range c.lifetimes {
		d = max(d, l)
	}
	return d
}

// ensureLifetime makes key k keep verifying for ttl after it retires,
// before it signs a token that lives that long.
func (c *Core) ensureLifetime(ctx context.Context, k *SigningKey, ttl time.Duration) error {
	if k.MaxTTL >= ttl {
		return nil
	}
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if err := c.store.RaiseKeyLifetime(ctx, k.KID, ttl); err != nil {
		return fmt.Errorf("raising lifetime of key %s: %w", k.KID, err)
	}
	return c.reloadKeys(ctx)
}

// EnsureKey makes sure alg has a key that can sign, creating the first one.
func (c *Core) EnsureKey(ctx context.Context, alg string) error {
	if k := c.keys.Load().signer(alg, c.now()); k != nil {
		if !k.CanSign() {
			return fmt.Errorf("signing key %s cannot be decrypted: %w", k.KID, ErrNoMasterKey)
		}
		return nil
	}
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if err := c.reloadKeys(ctx); err != nil {
		return err
	}
	if c.keys.Load().signer(alg, c.now()) != nil {
		return nil
	}
	_, err := c.addKey(ctx, alg, c.newestSeq(alg)+1, 0)
	if errors.Is(err, ErrConflict) { // another process created it
		return c.reloadKeys(ctx)
	}
	return err
}

// Rotate adds a new key for alg that is published at once and signs after
// publishAhead, so verifiers that cache the JWKS learn it first.
func (c *Core) Rotate(ctx context.Context, alg string, publishAhead time.Duration) (KeyRecord, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if err := c.reloadKeys(ctx); err != nil {
		return KeyRecord{}, err
	}
	return c.addKey(ctx, alg, c.newestSeq(alg)+1, publishAhead)
}

// RotateIfDue rotates alg's key when its newest key has signed for every
// (counting the publishAhead it will be published before signing), then
// deletes keys no live token can need. When several processes share the
// store, they all try to add the same sequence number and exactly one
// succeeds. It reports whether this process added the key.
func (c *Core) RotateIfDue(ctx context.Context, alg string, every, publishAhead time.Duration) (bool, error) {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if err := c.reloadKeys(ctx); err != nil {
		return false, err
	}
	ks := c.keys.Load().byAlg[alg]
	rotated := false
	if len(ks) > 0 && !c.now().Before(ks[len(ks)-1].ActivateAt.Add(every-publishAhead)) {
		_, err := c.addKey(ctx, alg, ks[len(ks)-1].Seq+1, publishAhead)
		if err != nil && !errors.Is(err, ErrConflict) {
			return false, err
		}
		rotated = err == nil
	}
	return rotated, c.deleteExpiredKeys(ctx)
}

func (c *Core) newestSeq(alg string) int64 {
	ks := c.keys.Load().byAlg[alg]
	if len(ks) == 0 {
		return 0
	}
	return ks[len(ks)-1].Seq
}

// addKey stores key number seq of alg; the caller holds keyMu.
func (c *Core) addKey(ctx context.Context, alg string, seq int64, publishAhead time.Duration) (KeyRecord, error) {
	now := c.now()
	life := c.registeredLifetime()
	if life == 0 {
		life = DefaultKeyLifetime
	}
	rec, err := GenerateKey(alg, seq, c.mk, now, now.Add(publishAhead), life)
	if err != nil {
		return KeyRecord{}, err
	}
	addErr := c.store.AddKey(ctx, rec)
	if err := c.reloadKeys(ctx); err != nil {
		return KeyRecord{}, err
	}
	if addErr != nil {
		if errors.Is(addErr, ErrConflict) {
			return KeyRecord{}, fmt.Errorf("another process added %s key %d: %w", alg, seq, ErrConflict)
		}
		return KeyRecord{}, fmt.Errorf("storing signing key: %w", addErr)
	}
	c.log.Info("signing key added", zap.String("kid", rec.KID), zap.String("alg", alg), zap.Time("activates", rec.ActivateAt))
	c.Emit(ctx, Event{Kind: EventKeyAdded, KID: rec.KID, Alg: alg})
	return rec, nil
}

// deleteExpiredKeys removes keys that can no longer verify any token; the
// caller holds keyMu.
func (c *Core) deleteExpiredKeys(ctx context.Context) error {
	expired := c.keys.Load().expired(c.now())
	for _, k := range expired {
		if err := c.store.DeleteKey(ctx, k.KID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("deleting expired key %s: %w", k.KID, err)
		}
		c.log.Info("signing key retired", zap.String("kid", k.KID), zap.String("alg", k.Alg))
		c.Emit(ctx, Event{Kind: EventKeyRetired, KID: k.KID, Alg: k.Alg})
	}
	if len(expired) == 0 {
		return nil
	}
	return c.reloadKeys(ctx)
}

// ScheduleRotation makes the background loop rotate alg's key (for ""
// the key of SigningAlg) every period until the returned function is called (when the site's
// configuration is replaced). Several sites may ask; the shortest period wins.
func (c *Core) ScheduleRotation(alg string, every, publishAhead time.Duration) func() {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	id := c.regNext
	c.regNext++
	c.rotations[id] = rotation{alg: alg, every: every, publishAhead: publishAhead}
	return func() {
		c.regMu.Lock()
		delete(c.rotations, id)
		c.regMu.Unlock()
	}
}

type rotation struct {
	alg                 string
	every, publishAhead time.Duration
}

// Rotation returns alg's rotation period (0: none is scheduled).
func (c *Core) Rotation(alg string) time.Duration {
	return c.schedules()[alg].every
}

func (c *Core) schedules() map[string]rotation {
	c.regMu.Lock()
	defer c.regMu.Unlock()
	due := map[string]rotation{}
	current := c.keys.Load().currentAlg(c.now())
	for _, r := range c.rotations {
		if r.alg == "" { // a site that follows the store's algorithm
			if r.alg = current; r.alg == "" {
				continue
			}
		}
		if cur, ok := due[r.alg]; !ok || r.every < cur.every {
			due[r.alg] = r
		}
	}
	return due
}

func (c *Core) rotateDue(ctx context.Context) {
	for alg, r := range c.schedules() {
		if _, err := c.RotateIfDue(ctx, alg, r.every, r.publishAhead); err != nil {
			c.log.Warn("rotating signing key", zap.String("alg", alg), zap.Error(err))
		}
	}
}

// DefaultPublishAhead is how long a rotated key is published before it
// signs: longer than a JWKS may be cached (5 min) plus the store sync.
const DefaultPublishAhead = 6 * time.Minute

// SigningAlg is the algorithm sites without a signing_alg of their own
// sign with: that of the most recently activated key, "" when none signs.
func (c *Core) SigningAlg() string {
	return c.keys.Load().currentAlg(c.now())
}

// Superseded reports whether a newer key of k's algorithm already signs.
func (c *Core) Superseded(k *SigningKey) bool {
	return !c.keys.Load().supersededAt(k, c.now()).IsZero()
}

// JWKS returns the JSON Web Key Set of every key that may verify a live token.
// HMAC keys are never in it.
func (c *Core) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: c.keys.Load().published(c.now())}
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
