package issuer

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
)

// FingerprintSetting is the store setting that records the fingerprint of
// the master key the store's private keys and entity secrets are sealed
// under. A Core refuses to open a store marked with another key.
const FingerprintSetting = "master_key_fingerprint"

// Kinds of SealedValue.
const (
	SealedKey    = "key"    // private half of a signing key; Owner is its kid
	SealedSecret = "secret" // readable copy of an entity secret; Owner is the entity id
)

// SealedValue is one value a store keeps sealed under the master key.
type SealedValue struct {
	Kind   string // SealedKey or SealedSecret
	Owner  string // the kid or entity id the value is bound to
	Sealed string
}

func (v SealedValue) label() string {
	if v.Kind == SealedKey {
		return keyLabel(v.Owner)
	}
	return secretLabel(v.Owner)
}

// Plain reports whether the value is stored in the clear.
func (v SealedValue) Plain() bool { return strings.HasPrefix(v.Sealed, plainPrefix) }

// SealedStore is implemented by stores whose sealed values can be checked
// and moved to another master key.
type SealedStore interface {
	// EachSealed calls f with every sealed value, stopping at its first error.
	EachSealed(ctx context.Context, f func(SealedValue) error) error
	// Reseal replaces every sealed value with f's result and records
	// fingerprint as FingerprintSetting, all in one transaction: on any
	// error nothing changes.
	Reseal(ctx context.Context, fingerprint string, f func(SealedValue) (string, error)) error
}

// SealMismatchError says the store is sealed under another master key.
type SealMismatchError struct {
	Stored     string // fingerprint recorded in the store ("" if unrecorded)
	Configured string // fingerprint of the key in use ("none": no key)
	Unopened   int    // values that do not open under the configured key
}

func (e *SealMismatchError) Error() string {
	const fix = "configure the master key it was sealed with, or move it to this key with `caddy tokengate reseal`"
	if e.Stored != "" {
		return fmt.Sprintf("the store is sealed under master key %s, but the configured master key is %s: %s",
			e.Stored, e.Configured, fix)
	}
	return fmt.Sprintf("%d value(s) in the store are sealed under a master key other than the configured one (%s): %s",
		e.Unopened, e.Configured, fix)
}

var errUnset = errors.New("unset")

// StoredFingerprint returns the fingerprint recorded in st, or "" if none
// is. It never writes.
func StoredFingerprint(ctx context.Context, st SettingStore) (string, error) {
	fp, err := st.Setting(ctx, FingerprintSetting, func() (string, error) { return "", errUnset })
	if errors.Is(err, errUnset) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading master key fingerprint: %w", err)
	}
	return fp, nil
}

// checkSeal makes sure every sealed value of the store opens under the
// Core's master key, and records the key's fingerprint on a store that has
// none yet, so a later start under another key fails here, at once, with
// both fingerprints rather than as a 500 on the first secret read.
func (c *Core) checkSeal(ctx context.Context) error {
	stored, err := StoredFingerprint(ctx, c.store)
	if err != nil {
		return err
	}
	mine := c.mk.Fingerprint()
	if stored != "" {
		if stored != mine {
			return &SealMismatchError{Stored: stored, Configured: mine}
		}
		return nil
	}
	ss, ok := c.store.(SealedStore)
	if !ok {
		return nil
	}
	plain, unopened := 0, 0
	err = ss.EachSealed(ctx, func(v SealedValue) error {
		switch {
		case v.Plain():
			plain++
		case c.mk == nil:
			unopened++
		default:
			if _, err := c.mk.Open(v.label(), v.Sealed); err != nil {
				unopened++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking sealed values: %w", err)
	}
	if unopened > 0 {
		return &SealMismatchError{Configured: mine, Unopened: unopened}
	}
	if c.mk == nil || c.readOnly {
		return nil
	}
	if plain > 0 {
		c.log.Warn("the store holds values in plain text; seal them with `caddy tokengate reseal`", zap.Int("values", plain))
	}
	got, err := c.store.Setting(ctx, FingerprintSetting, func() (string, error) { return mine, nil })
	if err != nil {
		return fmt.Errorf("recording master key fingerprint: %w", err)
	}
	if got != mine { // another instance marked it first, with another key
		return &SealMismatchError{Stored: got, Configured: mine}
	}
	return nil
}

// ResealStats counts what Reseal moved.
type ResealStats struct{ Keys, Secrets, WasPlain int }

// Reseal moves every sealed value of st from the old master key (nil:
// plain text, or values still plain) to next and records next's
// fingerprint, in one transaction. A value that opens under neither key
// aborts it with nothing changed. Running it twice is harmless.
func Reseal(ctx context.Context, st Store, old, next *MasterKey) (ResealStats, error) {
	var stats ResealStats
	ss, ok := st.(SealedStore)
	if !ok {
		return stats, errors.New("this store cannot be resealed")
	}
	if next == nil {
		return stats, errors.New("reseal needs a new master key")
	}
	err := ss.Reseal(ctx, next.Fingerprint(), func(v SealedValue) (string, error) {
		pt, err := old.Open(v.label(), v.Sealed)
		if err != nil {
			// Already under the new key: a repeated run.
			if pt2, err2 := next.Open(v.label(), v.Sealed); err2 == nil {
				pt, err = pt2, nil
			}
		}
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", v.Kind, v.Owner, err)
		}
		if v.Plain() {
			stats.WasPlain++
		}
		if v.Kind == SealedKey {
			stats.Keys++
		} else {
			stats.Secrets++
		}
		return next.Seal(v.label(), pt)
	})
	if err != nil {
		return ResealStats{}, err
	}
	return stats, nil
}

// OpenPrivateKey returns the DER private half of a stored key (plain, or
// sealed under k): for tools and tests that sign outside a Core.
func (k *MasterKey) OpenPrivateKey(rec KeyRecord) ([]byte, error) {
	return k.Open(keyLabel(rec.KID), rec.Private)
}
