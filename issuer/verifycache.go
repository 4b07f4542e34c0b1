package issuer

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// verifiedCache remembers tokens whose signature has been checked, so a
// client that presents the same token on every request pays for one
// signature check, not one per request. Only the exact token bytes hit, and
// every hit still checks time, issuer, audience, key liveness and revocation.
//
// It is bounded by an estimate of the memory its entries hold, split over
// shards, each evicting with S3-FIFO (Yang et al., SOSP 2023): new tokens
// enter a small FIFO and only those seen again move to the main FIFO, so a
// scan of one-off tokens (a flood of forged or rotating tokens) passes
// through the small queue without pushing the working set out. A hit is a
// seeded hash of the token bytes, a read-locked map lookup, a full token
// compare and an atomic counter bump: no allocation.
type verifiedCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

const cacheShards = 64

// DefaultVerifiedCacheBytes bounds the verified-token cache by default:
// about 40 000 typical tokens.
const DefaultVerifiedCacheBytes = 64 << 20

type cachedToken struct {
	claims *AccessClaims
	kid    string
}

type cacheEntry struct {
	token string
	val   cachedToken
	hash  uint64
	size  int64
	main  bool         // in the main FIFO, else in the small one
	freq  atomic.Int32 // hits since it was last considered for eviction, at most 3
}

type cacheShard struct {
	mu         sync.RWMutex
	m          map[uint64]*cacheEntry
	small      fifo
	main       fifo
	ghost      map[uint64]struct{} // hashes recently evicted from small
	ghostOrder fifoHash
	bytes      int64
	smallBytes int64
	maxBytes   int64
	_          [64]byte // keep shards' locks apart
}

// entryOverhead estimates an entry's bookkeeping beyond its strings.
const entryOverhead = 512

func newVerifiedCache(maxBytes int64) *verifiedCache {
	if maxBytes <= 0 {
		maxBytes = DefaultVerifiedCacheBytes
	}
	c := &verifiedCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i] = cacheShard{m: map[uint64]*cacheEntry{}, ghost: map[uint64]struct{}{},
			maxBytes: max(maxBytes/cacheShards, 4*entryOverhead)}
	}
	return c
}

func (c *verifiedCache) shard(h uint64) *cacheShard { return &c.shards[h%cacheShards] }

func (c *verifiedCache) get(token string) (cachedToken, bool) {
	h := maphash.String(c.seed, token)
	s := c.shard(h)
	s.mu.RLock()
	e := s.m[h]
	s.mu.RUnlock()
	if e == nil || e.token != token {
		return cachedToken{}, false
	}
	if e.freq.Load() < 3 { // read first: a hot token's line stays shared
		e.freq.Add(1)
	}
	return e.val, true
}

// entrySize estimates the memory an entry holds: the token, the claims
// decoded from it (no larger than the token), and bookkeeping.
func entrySize(token string) int64 { return 2*int64(len(token)) + entryOverhead }

func (c *verifiedCache) put(token string, v cachedToken) {
	h := maphash.String(c.seed, token)
	s := c.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.m[h]; e != nil {
		if e.token == token {
			return
		}
		// A hash collision: the newcomer takes over the entry.
		s.bytes += entrySize(token) - e.size
		if !e.main {
			s.smallBytes += entrySize(token) - e.size
		}
		e.token, e.val, e.size = token, v, entrySize(token)
		s.evict()
		return
	}
	e := &cacheEntry{token: token, val: v, hash: h, size: entrySize(token)}
	s.m[h] = e
	s.bytes += e.size
	if _, seen := s.ghost[h]; seen {
		delete(s.ghost, h)
		e.main = true
		s.main.push(e)
	} else {
		s.small.push(e)
		s.smallBytes += e.size
	}
	s.evict()
}

// evict drops entries until the shard fits its budget; the caller holds mu.
func (s *cacheShard) evict() {
	for s.bytes > s.maxBytes {
		if s.smallBytes > s.maxBytes/10 || s.main.len() == 0 {
			s.evictSmall()
		} else {
			s.evictMain()
		}
	}
}

func (s *cacheShard) evictSmall() {
	e := s.small.pop()
	if e == nil {
		return
	}
	s.smallBytes -= e.size
	if e.freq.Load() > 0 { // seen again while on probation: keep it
		e.freq.Store(0)
		e.main = true
		s.main.push(e)
		return
	}
	s.drop(e)
	s.ghost[e.hash] = struct{}{}
	s.ghostOrder.push(e.hash)
	for s.ghostOrder.len() > max(64, len(s.m)) {
		delete(s.ghost, s.ghostOrder.pop())
	}
}

func (s *cacheShard) evictMain() {
	for {
		e := s.main.pop()
		if e == nil {
			return
		}
		if f := e.freq.Load(); f > 0 {
			e.freq.Store(f - 1)
			s.main.push(e)
			continue
		}
		s.drop(e)
		return
	}
}

func (s *cacheShard) drop(e *cacheEntry) {
	if s.m[e.hash] == e {
		delete(s.m, e.hash)
	}
	s.bytes -= e.size
}

// fifo is a queue of entries on a slice.
type fifo struct {
	items []*cacheEntry
	head  int
}

func (q *fifo) len() int { return len(q.items) - q.head }

func (q *fifo) push(e *cacheEntry) { q.items = append(q.items, e) }

func (q *fifo) pop() *cacheEntry {
	if q.len() == 0 {
		return nil
	}
	e := q.items[q.head]
	q.items[q.head] = nil
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return e
}

// fifoHash is a queue of hashes on a slice.
type fifoHash struct {
	items []uint64
	head  int
}

func (q *fifoHash) len() int { return len(q.items) - q.head }

func (q *fifoHash) push(h uint64) { q.items = append(q.items, h) }

func (q *fifoHash) pop() uint64 {
	h := q.items[q.head]
	q.head++
	if q.head > 1024 && q.head*2 > len(q.items) {
		q.items = append(q.items[:0], q.items[q.head:]...)
		q.head = 0
	}
	return h
}

// stillValid re-checks what can change after the signature was verified.
func (e cachedToken) stillValid(now time.Time, kr *keyring, iss, aud string) error {
	c := e.claims
	if kr.verifier(e.kid, now) == nil {
		return ErrTokenKey
	}
	if !now.Before(c.ExpiresAt.Add(Leeway)) {
		return ErrTokenExpired
	}
	if c.IssuedAt != nil && now.Add(Leeway).Before(c.IssuedAt.Time) {
		return ErrTokenNotYet
	}
	if c.NotBefore != nil && now.Add(Leeway).Before(c.NotBefore.Time) {
		return ErrTokenNotYet
	}
	if c.Issuer != iss {
		return ErrTokenIssuer
	}
	if !slices.Contains(c.Audience, aud) {
		return ErrTokenAudience
	}
	return nil
}
