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
	lastID int64 // highest store ID applied
}

func newRevocationSet() *revocationSet {
	return &revocationSet{jti: map[string]time.Time{}, sid: map[string]time.Time{}, sub: map[string]Revocation{}}
}

func (s *revocationSet) apply(rs ...Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		switch r.Kind {
		case RevokeJTI:
			s.jti[r.Key] = r.ExpiresAt
		case RevokeSession:
			s.sid[r.Key] = r.ExpiresAt
		case RevokeSubject:
			// Keep the latest cut-off; a replayed older entry must not undo it.
			if cur, ok := s.sub[r.Key]; !ok || !r.At.Before(cur.At) {
				s.sub[r.Key] = r
			}
		}
		if r.ID > s.lastID {
			s.lastID = r.ID
		}
	}
}

func (s *revocationSet) since() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lastID
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
	if r, ok := s.sub[c.Subject]; ok && c.ID != r.Keep && c.IssuedAt != nil && !c.IssuedAt.After(r.At) {
		return true
	}
	return false
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
