// Package throttle slows down password guessing: it counts failed sign-ins
// per client IP, per account and client IP, and per account from anywhere,
// and answers with an exponentially growing wait once a key has used its
// free failures. State lives in fixed-size set-associative tables, so an
// attacker cycling through addresses or names evicts old entries instead of
// growing memory.
//
// An attempt is charged when it is allowed, before any hash is computed, so
// that concurrent guesses cannot slip through together; a success refunds
// the charge and forgets the account's failures from that client IP, and an
// attempt that was never decided (the server was busy) is refunded.
//
// A user cannot be locked out from everywhere: the per-account limit counts
// only failures from client IPs the account never signed in from, its wait
// is capped by AccountMax, and an IP the account recently signed in from
// skips it altogether.
package throttle

import (
	"hash/maphash"
	"sync"
	"time"
)

// Config sets the limits. Zero fields take the defaults below.
type Config struct {
	// Failures one client IP may make, over all accounts, before it waits.
	PerIP int
	// Failures one client IP may make against one account before it waits.
	PerAccountIP int
	// Failures an account may collect from IPs it never signed in from
	// before every such IP waits (at most AccountMax).
	PerAccount int
	// The first wait; each further failure doubles it, up to Max.
	Base time.Duration
	// The longest wait for a client IP, or an account from one IP.
	Max time.Duration
	// The longest wait the per-account limit imposes.
	AccountMax time.Duration
	// Failures are forgotten after this long without a new one.
	Forget time.Duration
	// How long a successful sign-in lets its IP skip the per-account limit.
	Trust time.Duration
	// Entries per table (three tables: IP, account+IP, account; 32 bytes
	// an entry). Rounded up to a multiple of 8 * shards.
	Entries int
}

// Defaults.
const (
	DefaultPerIP        = 30
	DefaultPerAccountIP = 5
	DefaultPerAccount   = 20
	DefaultBase         = time.Second
	DefaultMax          = 15 * time.Minute
	DefaultAccountMax   = time.Minute
	DefaultForget       = 15 * time.Minute
	DefaultTrust        = 30 * 24 * time.Hour
	DefaultEntries      = 1 << 16
)

// WithDefaults fills in zero fields.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.PerIP, DefaultPerIP)
	def(&c.PerAccountIP, DefaultPerAccountIP)
	def(&c.PerAccount, DefaultPerAccount)
	def(&c.Entries, DefaultEntries)
	defd(&c.Base, DefaultBase)
	defd(&c.Max, DefaultMax)
	defd(&c.AccountMax, DefaultAccountMax)
	defd(&c.Forget, DefaultForget)
	defd(&c.Trust, DefaultTrust)
	return c
}

// Limiter is safe for concurrent use.
type Limiter struct {
	cfg     Config
	now     func() time.Time
	seed    maphash.Seed
	ip      table
	pair    table // account and client IP
	account table
}

// New returns a Limiter; clock is time.Now when nil.
func New(cfg Config, clock func() time.Time) *Limiter {
	cfg = cfg.WithDefaults()
	if clock == nil {
		clock = time.Now
	}
	return &Limiter{cfg: cfg, now: clock, seed: maphash.MakeSeed(),
		ip: newTable(cfg.Entries), pair: newTable(cfg.Entries), account: newTable(cfg.Entries)}
}

// Config returns the limits in force, defaults filled in.
func (l *Limiter) Config() Config { return l.cfg }

func (l *Limiter) keys(ip, account string) (kIP, kPair, kAcct uint64) {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(ip)
	kIP = h.Sum64()
	h.WriteByte(0)
	h.WriteString(account)
	kPair = h.Sum64()
	h.Reset()
	h.WriteByte(1)
	h.WriteString(account)
	kAcct = h.Sum64()
	return
}

// Allow decides whether ip may try account now. When it may, the attempt
// is charged as a failure until Success or Cancel says otherwise; when it
// may not, Allow reports how long to wait and charges nothing.
func (l *Limiter) Allow(ip, account string) (time.Duration, bool) {
	now := l.now().UnixNano()
	kIP, kPair, kAcct := l.keys(ip, account)
	wait := max(l.ip.wait(kIP, now, l.cfg.PerIP, l.cfg.Base, l.cfg.Max, l.cfg.Forget),
		l.pair.wait(kPair, now, l.cfg.PerAccountIP, l.cfg.Base, l.cfg.Max, l.cfg.Forget))
	trusted := l.pair.trusted(kPair, now, l.cfg.Trust)
	if !trusted {
		wait = max(wait, l.account.wait(kAcct, now, l.cfg.PerAccount, l.cfg.Base, l.cfg.AccountMax, l.cfg.Forget))
	}
	if wait > 0 {
		return time.Duration(wait), false
	}
	l.ip.charge(kIP, now, 1, l.cfg.Forget)
	l.pair.charge(kPair, now, 1, l.cfg.Forget)
	if !trusted {
		l.account.charge(kAcct, now, 1, l.cfg.Forget)
	}
	return 0, true
}

// Success records that an allowed attempt signed in: the account's
// failures from ip are forgotten and ip may skip the per-account limit
// for Trust; the attempt's charge on ip and the account is refunded.
func (l *Limiter) Success(ip, account string) {
	now := l.now().UnixNano()
	kIP, kPair, kAcct := l.keys(ip, account)
	trusted := l.pair.trusted(kPair, now, l.cfg.Trust)
	l.ip.charge(kIP, now, -1, l.cfg.Forget)
	if !trusted {
		l.account.charge(kAcct, now, -1, l.cfg.Forget)
	}
	l.pair.trust(kPair, now)
}

// Cancel refunds an allowed attempt whose credentials were never checked.
func (l *Limiter) Cancel(ip, account string) {
	now := l.now().UnixNano()
	kIP, kPair, kAcct := l.keys(ip, account)
	if !l.pair.trusted(kPair, now, l.cfg.Trust) {
		l.account.charge(kAcct, now, -1, l.cfg.Forget)
	}
	l.ip.charge(kIP, now, -1, l.cfg.Forget)
	l.pair.charge(kPair, now, -1, l.cfg.Forget)
}

// table is a set-associative cache of counters: a key lives in one set of
// ways entries, and a new key replaces the set's least recently used one.
type table struct {
	shards []shard
	mask   uint64
}

const (
	ways   = 8
	shards = 64
)

type shard struct {
	mu   sync.Mutex
	sets [][ways]entry
	_    [40]byte // keep shards on separate cache lines
}

type entry struct {
	key      uint64
	last     int64 // unix ns of the last failure or success
	trusted  int64 // unix ns of the last success (pair table)
	failures int32
}

func newTable(entries int) table {
	perShard := max(1, (entries+shards*ways-1)/(shards*ways))
	// A power of two sets per shard keeps the index a mask.
	n := 1
	for n < perShard {
		n <<= 1
	}
	t := table{shards: make([]shard, shards), mask: uint64(n - 1)}
	for i := range t.shards {
		t.shards[i].sets = make([][ways]entry, n)
	}
	return t
}

// find returns the key's entry, or nil; the caller holds the shard lock.
func (t *table) set(key uint64) (*shard, *[ways]entry) {
	s := &t.shards[key%shards]
	return s, &s.sets[(key/shards)&t.mask]
}

func lookup(set *[ways]entry, key uint64) *entry {
	for i := range set {
		if set[i].key == key && (set[i].last != 0 || set[i].trusted != 0) {
			return &set[i]
		}
	}
	return nil
}

// slot returns the key's entry, claiming the least recently used one.
func slot(set *[ways]entry, key uint64) *entry {
	if e := lookup(set, key); e != nil {
		return e
	}
	victim := &set[0]
	for i := range set {
		if max(set[i].last, set[i].trusted) < max(victim.last, victim.trusted) {
			victim = &set[i]
		}
	}
	*victim = entry{key: key}
	return victim
}

// wait returns how long (ns) the key must still wait at now.
func (t *table) wait(key uint64, now int64, free int, base, maxWait, forget time.Duration) int64 {
	s, set := t.set(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := lookup(set, key)
	if e == nil || e.failures < int32(free) || now-e.last > int64(forget) {
		return 0
	}
	return max(0, e.last+backoff(int(e.failures)-free, base, maxWait)-now)
}

// backoff is base * 2^n, at most maxWait.
func backoff(n int, base, maxWait time.Duration) int64 {
	d := base
	for range n {
		if d >= maxWait/2 {
			return int64(maxWait)
		}
		d *= 2
	}
	return int64(min(d, maxWait))
}

// charge adds delta failures (a refund when negative).
func (t *table) charge(key uint64, now int64, delta int32, forget time.Duration) {
	s, set := t.set(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *entry
	if delta > 0 {
		e = slot(set, key)
	} else if e = lookup(set, key); e == nil {
		return
	}
	if e.last != 0 && now-e.last > int64(forget) {
		e.failures = 0
	}
	e.failures = max(0, e.failures+delta)
	if delta > 0 {
		e.last = now
	}
}

// trust forgets the key's failures and marks it trusted from now.
func (t *table) trust(key uint64, now int64) {
	s, set := t.set(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := slot(set, key)
	e.failures, e.trusted = 0, now
	e.last = now
}

func (t *table) trusted(key uint64, now int64, trust time.Duration) bool {
	s, set := t.set(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := lookup(set, key)
	return e != nil && e.trusted != 0 && now-e.trusted <= int64(trust)
}
