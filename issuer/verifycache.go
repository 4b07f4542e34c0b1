package issuer

import (
	"slices"
	"sync"
	"time"
)

// verifiedCache remembers tokens whose signature has been checked, so a
// client that presents the same token on every request pays for one
// signature check, not one per request. Only the exact token bytes hit, and
// every hit still checks time, issuer, audience, key liveness and revocation.
type verifiedCache struct {
	mu      sync.RWMutex
	entries map[string]cachedToken
	max     int
}

type cachedToken struct {
	claims *AccessClaims
	kid    string
}

// verifiedCacheSize bounds memory: about 1 KiB per entry.
const verifiedCacheSize = 8192

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{entries: make(map[string]cachedToken, max), max: max}
}

func (c *verifiedCache) get(token string) (cachedToken, bool) {
	c.mu.RLock()
	e, ok := c.entries[token]
	c.mu.RUnlock()
	return e, ok
}

func (c *verifiedCache) put(token string, e cachedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Drop an arbitrary eighth (map order is random): cheap, and a
		// dropped token is only verified again.
		n := c.max / 8
		for k := range c.entries {
			delete(c.entries, k)
			if n--; n <= 0 {
				break
			}
		}
	}
	c.entries[token] = e
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
