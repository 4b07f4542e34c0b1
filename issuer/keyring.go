package issuer

import (
	"sort"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keyring is an immutable snapshot of the signing keys; the Core swaps in a
// new one whenever keys change, so the guard reads it without locks.
type keyring struct {
	byKID map[string]*SigningKey
	byAlg map[string][]*SigningKey // ascending Seq
	// retention is the least time a superseded key keeps verifying; each
	// key keeps verifying for its own MaxTTL plus Leeway if that is longer.
	retention time.Duration
}

func newKeyring(keys []*SigningKey, retention time.Duration) *keyring {
	kr := &keyring{byKID: map[string]*SigningKey{}, byAlg: map[string][]*SigningKey{}, retention: retention}
	for _, k := range keys {
		kr.byKID[k.KID] = k
		kr.byAlg[k.Alg] = append(kr.byAlg[k.Alg], k)
	}
	for _, ks := range kr.byAlg {
		sort.Slice(ks, func(i, j int) bool { return ks[i].Seq < ks[j].Seq })
	}
	return kr
}

// signer returns the key that signs for alg at now: the newest one already
// active. Newer keys that are not yet active are only published.
func (kr *keyring) signer(alg string, now time.Time) *SigningKey {
	ks := kr.byAlg[alg]
	for i := len(ks) - 1; i >= 0; i-- {
		if !ks[i].ActivateAt.After(now) {
			return ks[i]
		}
	}
	return nil
}

// currentAlg is the algorithm sites that do not pin one sign with: that
// of the most recently activated signing key ("" when there is none), so
// `keys rotate --alg ES256` switches them to ES256 once the key activates.
func (kr *keyring) currentAlg(now time.Time) string {
	alg, at := "", time.Time{}
	for _, a := range []string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256} {
		if k := kr.signer(a, now); k != nil && (alg == "" || k.ActivateAt.After(at)) {
			alg, at = a, k.ActivateAt
		}
	}
	return alg
}

// supersededAt returns when k stopped signing (its successor's activation),
// or the zero time if k is still the newest active key of its algorithm.
func (kr *keyring) supersededAt(k *SigningKey, now time.Time) time.Time {
	ks := kr.byAlg[k.Alg]
	for _, n := range ks {
		if n.Seq > k.Seq && !n.ActivateAt.After(now) {
			return n.ActivateAt
		}
	}
	return time.Time{}
}

// live reports whether k may still verify a token at now: it is the signer,
// a successor not yet active, or superseded less than retention ago.
func (kr *keyring) live(k *SigningKey, now time.Time) bool {
	at := kr.supersededAt(k, now)
	return at.IsZero() || now.Before(at.Add(kr.keep(k)))
}

// keep is how long k verifies after it stopped signing.
func (kr *keyring) keep(k *SigningKey) time.Duration {
	return max(kr.retention, k.MaxTTL+Leeway)
}

// maxLifetime is the longest lifetime a live token can have: the largest
// MaxTTL of the keys that may still verify one.
func (kr *keyring) maxLifetime(now time.Time) time.Duration {
	var d time.Duration
	for _, k := range kr.byKID {
		if kr.live(k, now) {
			d = max(d, k.MaxTTL)
		}
	}
	return d
}

// verifier returns the key with kid if it may verify at now.
func (kr *keyring) verifier(kid string, now time.Time) *SigningKey {
	k := kr.byKID[kid]
	if k == nil || !kr.live(k, now) {
		return nil
	}
	return k
}

// published lists the public JWKs of every live asymmetric key.
func (kr *keyring) published(now time.Time) []jose.JSONWebKey {
	out := []jose.JSONWebKey{} // never nil: an empty set is {"keys":[]}
	for _, alg := range []string{AlgEdDSA, AlgES256, AlgRS256} {
		for _, k := range kr.byAlg[alg] {
			if k.jwk != nil && kr.live(k, now) {
				out = append(out, *k.jwk)
			}
		}
	}
	return out
}

// expired lists keys that no token can need any more.
func (kr *keyring) expired(now time.Time) []*SigningKey {
	var out []*SigningKey
	for _, k := range kr.byKID {
		if !kr.live(k, now) {
			out = append(out, k)
		}
	}
	return out
}
