package issuer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// NewSecret returns a random 256-bit secret, base64url-encoded, with a short
// prefix so leaked secrets are recognisable by scanners.
func NewSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random secret: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// SecretHasher computes keyed hashes of generated secrets. Generated secrets
// carry 256 bits of entropy, so a keyed HMAC-SHA256 is as strong as a slow
// password hash and fast enough for client_credentials on every call.
type SecretHasher struct{ key []byte }

// NewSecretHasher returns a hasher keyed with key (at least 32 bytes).
func NewSecretHasher(key []byte) (*SecretHasher, error) {
	if len(key) < 32 {
		return nil, errors.New("secret hashing key must be at least 32 bytes")
	}
	return &SecretHasher{key: key}, nil
}

// Hash returns the hex HMAC-SHA256 of secret.
func (h *SecretHasher) Hash(secret string) string {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte(secret))
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports, in constant time, whether secret hashes to stored.
func (h *SecretHasher) Verify(stored, secret string) bool {
	return hmac.Equal([]byte(h.Hash(secret)), []byte(stored))
}

// MasterKey encrypts private keys and readable secrets at rest (AES-256-GCM).
type MasterKey struct {
	aead cipher.AEAD
	fp   string
}

// ParseMasterKey reads 32 bytes written as 64 hex digits or as base64.
func ParseMasterKey(s string) (*MasterKey, error) {
	s = strings.TrimSpace(s)
	var raw []byte
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		raw = b
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
				raw = b
				break
			}
		}
	}
	if raw == nil {
		return nil, errors.New("master key must be 32 bytes written as 64 hex digits or base64")
	}
	return newMasterKey(raw)
}

// NewMasterKeyString returns a fresh master key as 64 hex digits.
func NewMasterKeyString() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random master key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func newMasterKey(raw []byte) (*MasterKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	sum := sha256.Sum256(append([]byte("tokengate master key fingerprint\x00"), raw...))
	return &MasterKey{aead: aead, fp: "sha256:" + hex.EncodeToString(sum[:8])}, nil
}

// Fingerprint names the key without revealing it: a hash of a domain
// separator and the key, safe to log and to store next to what it seals.
// A nil key (plain text) has the fingerprint "none".
func (k *MasterKey) Fingerprint() string {
	if k == nil {
		return "none"
	}
	return k.fp
}

// sealedPrefix marks a value encrypted under the master key; plainPrefix one
// stored in the clear because no master key was configured.
const (
	sealedPrefix = "gcm1:"
	plainPrefix  = "plain:"
)

// Seal encrypts plaintext, binding it to label (what the value is) so a
// ciphertext cannot be moved to another row. A nil MasterKey stores plaintext.
func (k *MasterKey) Seal(label string, plaintext []byte) (string, error) {
	if k == nil {
		return plainPrefix + base64.RawStdEncoding.EncodeToString(plaintext), nil
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reading nonce: %w", err)
	}
	ct := k.aead.Seal(nonce, nonce, plaintext, []byte(label))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(ct), nil
}

// ErrNoMasterKey says a value is encrypted but no master key is configured.
var ErrNoMasterKey = errors.New("value is encrypted under a master key, but no master_key is configured")

// Open reverses Seal.
func (k *MasterKey) Open(label, sealed string) ([]byte, error) {
	switch {
	case strings.HasPrefix(sealed, plainPrefix):
		return base64.RawStdEncoding.DecodeString(sealed[len(plainPrefix):])
	case strings.HasPrefix(sealed, sealedPrefix):
		if k == nil {
			return nil, ErrNoMasterKey
		}
		ct, err := base64.RawStdEncoding.DecodeString(sealed[len(sealedPrefix):])
		if err != nil || len(ct) < k.aead.NonceSize() {
			return nil, errors.New("malformed sealed value")
		}
		pt, err := k.aead.Open(nil, ct[:k.aead.NonceSize()], ct[k.aead.NonceSize():], []byte(label))
		if err != nil {
			return nil, errors.New("cannot decrypt sealed value: wrong master_key?")
		}
		return pt, nil
	}
	return nil, errors.New("unknown sealed value format")
}

// newJTI returns a token id: 12 random bytes and a 6-byte tag keyed with
// the store's hashing key, so that `revoke --jti` can tell an id this store
// issued from a typo without keeping every id.
func (c *Core) newJTI() (string, error) {
	b := make([]byte, 12, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(append(b, c.jtiTag(b)...)), nil
}

func (c *Core) jtiTag(random []byte) []byte {
	m := hmac.New(sha256.New, c.hasher.key)
	m.Write([]byte("tokengate jti\x00"))
	m.Write(random)
	return m.Sum(nil)[:6]
}

// IssuedJTI reports whether jti is a token id this store issued. Ids
// from before tags (16 random bytes) cannot be told apart and count as issued.
func (c *Core) IssuedJTI(jti string) bool {
	b, err := base64.RawURLEncoding.DecodeString(jti)
	if err == nil && len(b) == 16 {
		return true
	}
	if err != nil || len(b) != 18 {
		return false
	}
	return hmac.Equal(c.jtiTag(b[:12]), b[12:])
}
