package issuer

import (
	"sync"
	"time"
)

// revocationSet holds every revocation that still matters, in memory, so the
// guard never asks the store whether a token was revoked.
type revocationSet struct {
	mu     sync.RWMutex
	jti    map[string]time.Time // -> forget after
	sid    map[string]time.Time
	sub    map[string]Revocation
	cursor int64 // the store's cursor after the last sync
}

func newRevocationSet() *revocationSet {
	return &revocationSet{jti: map[string]time.Time{}, sid: map[string]time.Time{}, sub: map[string]Revocation{}}
}

// apply adds revocations; applying one twice, or an older one after a
// newer one, changes nothing.
func (s *revocationSet) apply(rs ...Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		switch r.Kind {
		case RevokeJTI:
			s.jti[r.Key] = later(s.jti[r.Key], r.ExpiresAt)
		case RevokeSession:
			s.sid[r.Key] = later(s.sid[r.Key], r.ExpiresAt)
		case RevokeSubject:
			// Keep the latest cut-off; a replayed older entry must not undo
			// it, and the entry lives as long as the longest of them.
			cur, ok := s.sub[r.Key]
			if !ok || r.At.After(cur.At) {
				r.ExpiresAt = later(cur.ExpiresAt, r.ExpiresAt)
				s.sub[r.Key] = r
			} else {
				cur.ExpiresAt = later(cur.ExpiresAt, r.ExpiresAt)
				s.sub[r.Key] = cur
			}
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// synced records the store cursor after applying what it returned.
func (s *revocationSet) synced(cursor int64) {
	s.mu.Lock()
	s.cursor = cursor
	s.mu.Unlock()
}

func (s *revocationSet) since() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cursor
}

// revoked reports whether an access token with these claims was revoked.
func (s *revocationSet) revoked(c *AccessClaims) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.jti[c.ID]; ok {
		return true
	}
	if c.SID != "" {
		if _, ok := s.sid[c.SID]; ok {
			return true
		}
	}
	if r, ok := s.sub[c.Subject]; ok && c.ID != r.Keep && !issuedAfter(c, r.At) {
		return true
	}
	return false
}

// issuedAfter reports whether the token was issued after cut-off at. Tokens
// carry their issue time in microseconds (iat_us), strictly increasing in
// each process, so a revocation cuts between two tokens of one millisecond;
// a token without it (older tokengate) counts as issued at the end of its
// iat second's predecessor, the old, stricter rule.
func issuedAfter(c *AccessClaims, at time.Time) bool {
	if c.IssuedAtMicro != 0 {
		return c.IssuedAtMicro > at.UnixMicro()
	}
	return c.IssuedAt != nil && c.IssuedAt.After(at)
}

// forget drops entries whose tokens have all expired.
func (s *revocationSet) forget(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.jti {
		if now.After(exp) {
			delete(s.jti, k)
		}
	}
	for k, exp := range s.sid {
		if now.After(exp) {
			delete(s.sid, k)
		}
	}
	for k, r := range s.sub {
		if now.After(r.ExpiresAt) {
			delete(s.sub, k)
		}
	}
}

// subjectCutAt reports whether a subject revocation of sub cuts off what
// began at at (a sign-in session), as it cuts off tokens issued then.
func (s *revocationSet) subjectCutAt(sub string, at time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.sub[sub]
	return ok && !at.After(r.At)
}
