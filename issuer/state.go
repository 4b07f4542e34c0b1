package issuer

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrStateInvalid says sealed state did not open: forged, altered, of
// another purpose or store, or expired.
var ErrStateInvalid = errors.New("the state is invalid or has expired")

// stateKey derives a key for purpose from the store's hashing key, which
// every instance sharing the store holds: state sealed by one opens on all.
func (i *Issuer) stateKey(purpose string) []byte {
	m := hmac.New(sha256.New, i.core.hasher.key)
	m.Write([]byte("tokengate state\x00" + purpose))
	return m.Sum(nil)
}

// SealState seals data for purpose until ttl from now (AES-256-GCM): what
// a browser carries between two requests (a pending authorization) and
// must neither read nor change.
func (i *Issuer) SealState(purpose string, data []byte, ttl time.Duration) (string, error) {
	aead, err := stateAEAD(i.stateKey(purpose))
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+8+len(data)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("reading random nonce: %w", err)
	}
	plain := binary.BigEndian.AppendUint64(nil, uint64(i.core.now().Add(ttl).Unix()))
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, append(plain, data...), []byte(purpose))), nil
}

// OpenState opens what SealState sealed for purpose; ErrStateInvalid when
// it does not open or has expired.
func (i *Issuer) OpenState(purpose, sealed string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil || len(sealed) > 16<<10 {
		return nil, ErrStateInvalid
	}
	aead, err := stateAEAD(i.stateKey(purpose))
	if err != nil {
		return nil, err
	}
	if len(raw) < aead.NonceSize()+8+aead.Overhead() {
		return nil, ErrStateInvalid
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, ErrStateInvalid
	}
	if exp := int64(binary.BigEndian.Uint64(plain[:8])); i.core.now().Unix() >= exp {
		return nil, ErrStateInvalid
	}
	return plain[8:], nil
}

// StateMAC is an HMAC of parts under purpose's key (a CSRF token binding a
// browser's cookie to one pending authorization); compare with hmac.Equal.
func (i *Issuer) StateMAC(purpose string, parts ...string) string {
	m := hmac.New(sha256.New, i.stateKey("mac\x00"+purpose))
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func stateAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
