package issuer

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// signinCost makes a failed sign-in take as long whether or not the name
// exists, whatever mix of hashes the principals hold (CWE-208).
//
// Each kind of account ("user", "client", "table:<name>") has a reference
// hash class: the costliest of the class new hashes get and the classes of
// the principals the configuration declares. A stored or table principal
// found with a costlier class raises it; nothing lowers it, so no request
// can choose what the next one costs. An unknown name is checked against a
// dummy hash of the reference class; a known name whose check took less
// (an older, cheaper hash; a keyed hash beside slow ones) waits out the
// difference after a failure, measured against recent checks of the
// reference class. Successes are not delayed: they tell nothing new.
type signinCost struct {
	mu    sync.Mutex
	ref   map[PrincipalKind]string // kind -> reference class
	dummy map[string]string        // class -> dummy hash
	took  map[string]time.Duration // class -> recent time of one check (moving average)
	now   func() time.Time
	// sleep waits d or until ctx ends; tests replace it.
	sleep func(ctx context.Context, d time.Duration)
}

// maxCostClasses bounds the classes tracked; classes come only from the
// configuration and stored hashes, never from a request.
const maxCostClasses = 16

// hmacClass marks generated secrets checked with the keyed hash.
const hmacClass = "hmac"

// dummySecretHash is shaped like a keyed hash (64 hex digits) but matches
// no secret.
const dummySecretHash = "0000000000000000000000000000000000000000000000000000000000000000"

func newSigninCost(now func() time.Time) *signinCost {
	return &signinCost{ref: map[PrincipalKind]string{}, dummy: map[string]string{}, took: map[string]time.Duration{},
		now: now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// classOf is the class of a stored hash: HashClass, hmacClass for a keyed
// hash, "" for neither.
func classOf(hash string) string {
	if c := HashClass(hash); c != "" {
		return c
	}
	if len(hash) == len(dummySecretHash) && strings.Trim(hash, "0123456789abcdef") == "" {
		return hmacClass
	}
	return ""
}

// classCost estimates what checking a hash of class costs, in units of
// one argon2id m=19 MiB, t=2, p=1 check, to pick the costliest class:
// argon2id's memory times passes over its lanes, bcrypt's 2^cost (bcrypt
// 10 measured about 2.5 such units in Go), a keyed hash almost nothing.
func classCost(class string) float64 {
	var m, t, p, salt, key int
	if _, err := fmt.Sscanf(class, "$argon2id$v=19$m=%d,t=%d,p=%d$%d$%d", &m, &t, &p, &salt, &key); err == nil {
		return float64(m) * float64(t) / float64(max(p, 1)) / (19 * 1024 * 2)
	}
	var cost int
	if len(class) == 7 && strings.HasPrefix(class, "$2") {
		if _, err := fmt.Sscanf(class[4:], "%02d$", &cost); err == nil {
			return 2.5 * math.Exp2(float64(cost-10))
		}
	}
	return 0
}

// raise makes class kind's reference if it costs more than the current one
// (or kind has none yet).
func (s *signinCost) raise(kind PrincipalKind, class string) {
	if class == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Kinds come from the configuration only (users, clients, its tables):
	// no cap is needed.
	if cur, ok := s.ref[kind]; !ok || classCost(class) > classCost(cur) {
		s.ref[kind] = class
	}
}

// reference returns kind's reference class.
func (s *signinCost) reference(kind PrincipalKind) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ref[kind]
}

// costliest returns the kind of kinds whose reference class costs most.
func (s *signinCost) costliest(kinds []PrincipalKind) PrincipalKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := kinds[0]
	for _, k := range kinds[1:] {
		if classCost(s.ref[k]) > classCost(s.ref[best]) {
			best = k
		}
	}
	return best
}

// observe records that a check of class took d.
func (s *signinCost) observe(class string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.took[class]
	switch {
	case !ok && len(s.took) >= maxCostClasses:
		clear(s.took)
		fallthrough
	case !ok:
		s.took[class] = d
	default:
		s.took[class] = prev + (d-prev)/4
	}
}

// expected returns the recent time of one check of class.
func (s *signinCost) expected(class string) (time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.took[class]
	return d, ok
}

// dummyHash returns the dummy hash of class, making it on first use.
func (s *signinCost) dummyHash(class string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.dummy[class]; ok {
		return h, nil
	}
	h, err := DummyHash(class)
	if err != nil {
		return "", err
	}
	if len(s.dummy) >= maxCostClasses {
		clear(s.dummy)
	}
	s.dummy[class] = h
	return h, nil
}

// timedPassword checks password against an argon2id or bcrypt hash and
// reports how long the hash took (not the wait for the hashing budget),
// recording it for the hash's class.
func (i *Issuer) timedPassword(ctx context.Context, hash, password string) (bool, time.Duration, error) {
	var took time.Duration
	ok, err := i.core.checkPasswordTimed(ctx, hash, password, i.cost.now, &took)
	if err == nil {
		i.cost.observe(classOf(hash), took)
	}
	return ok, took, err
}

// dummyCheck spends on secret what checking a principal of kind's
// reference class does, for a name that does not exist.
func (i *Issuer) dummyCheck(ctx context.Context, kind PrincipalKind, secret string) error {
	class := i.cost.reference(kind)
	if class == hmacClass || class == "" {
		i.core.checkSecret(dummySecretHash, secret)
		return nil
	}
	h, err := i.cost.dummyHash(class)
	if err != nil {
		return fmt.Errorf("making a dummy hash: %w", err)
	}
	_, _, err = i.timedPassword(ctx, h, secret)
	return err
}

// padFailure, after a known principal of kind failed a check of a hash of
// class that took took, waits until a check of kind's reference class would
// have ended; when no such check has been timed yet, it runs one. A keyed
// hash (microseconds) is padded by the whole reference time.
func (i *Issuer) padFailure(ctx context.Context, kind PrincipalKind, class string, took time.Duration) error {
	ref := i.cost.reference(kind)
	if class == ref || ref == hmacClass {
		return nil
	}
	want, ok := i.cost.expected(ref)
	if !ok {
		return i.dummyCheck(ctx, kind, "")
	}
	if want > took {
		i.cost.sleep(ctx, want-took)
	}
	return nil
}
