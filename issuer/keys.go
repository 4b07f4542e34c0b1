package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Supported signing algorithms.
const (
	AlgEdDSA = "EdDSA"
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgHS256 = "HS256"
)

// ValidAlg reports whether alg is a signing algorithm tokengate supports.
func ValidAlg(alg string) bool {
	switch alg {
	case AlgEdDSA, AlgES256, AlgRS256, AlgHS256:
		return true
	}
	return false
}

// SigningKey is a usable key: private half for signing, public half (or the
// HMAC secret) for verifying, pinned to exactly one algorithm.
type SigningKey struct {
	KID        string
	Alg        string
	Seq        int64
	ActivateAt time.Time
	MaxTTL     time.Duration // see KeyRecord.MaxTTL
	method     jwt.SigningMethod
	private    crypto.PrivateKey // nil when the key could not be unsealed
	verify     any               // what jwt's Keyfunc returns for this key
	jwk        *jose.JSONWebKey  // nil for HMAC keys, which are never published
}

// GenerateKey makes a new key for alg and seals its private half.
func GenerateKey(alg string, seq int64, mk *MasterKey, now, activateAt time.Time, maxTTL time.Duration) (KeyRecord, error) {
	var priv any
	var err error
	switch alg {
	case AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case AlgHS256:
		b := make([]byte, 32)
		_, err = rand.Read(b)
		priv = b
	default:
		return KeyRecord{}, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return KeyRecord{}, fmt.Errorf("generating %s key: %w", alg, err)
	}
	var privDER, pubDER []byte
	if b, ok := priv.([]byte); ok {
		privDER = b
	} else {
		if privDER, err = x509.MarshalPKCS8PrivateKey(priv); err != nil {
			return KeyRecord{}, fmt.Errorf("encoding private key: %w", err)
		}
		if pubDER, err = x509.MarshalPKIXPublicKey(priv.(crypto.Signer).Public()); err != nil {
			return KeyRecord{}, fmt.Errorf("encoding public key: %w", err)
		}
	}
	kid := newKID(alg, privDER, pubDER)
	sealed, err := mk.Seal(keyLabel(kid), privDER)
	if err != nil {
		return KeyRecord{}, fmt.Errorf("sealing private key: %w", err)
	}
	rec := KeyRecord{KID: kid, Alg: alg, Seq: seq, Private: sealed, CreatedAt: now.UTC(), ActivateAt: activateAt.UTC(), MaxTTL: maxTTL}
	if pubDER != nil {
		rec.Public = base64.StdEncoding.EncodeToString(pubDER)
	}
	return rec, nil
}

func keyLabel(kid string) string { return "tokengate signing key " + kid }

// newKID derives a key id from key material (RFC 7638 in spirit: stable and
// collision-free) without revealing anything about an HMAC secret.
func newKID(alg string, privDER, pubDER []byte) string {
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	h := sha256.New()
	h.Write([]byte(alg))
	if pubDER != nil {
		h.Write(pubDER)
	}
	h.Write(nonce) // HMAC keys have no public half; never hash the secret
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
}

// loadKey turns a stored record into a SigningKey. With a nil or wrong master
// key a sealed private half stays nil: the key still verifies (asymmetric)
// but cannot sign.
func loadKey(rec KeyRecord, mk *MasterKey) (*SigningKey, error) {
	k := &SigningKey{KID: rec.KID, Alg: rec.Alg, Seq: rec.Seq, ActivateAt: rec.ActivateAt, MaxTTL: rec.MaxTTL}
	privDER, openErr := mk.Open(keyLabel(rec.KID), rec.Private)
	switch rec.Alg {
	case AlgHS256:
		k.method = jwt.SigningMethodHS256
		if openErr != nil {
			return nil, fmt.Errorf("HS256 key %s: %w", rec.KID, openErr)
		}
		k.private, k.verify = privDER, privDER
		return k, nil
	case AlgEdDSA:
		k.method = jwt.SigningMethodEdDSA
	case AlgES256:
		k.method = jwt.SigningMethodES256
	case AlgRS256:
		k.method = jwt.SigningMethodRS256
	default:
		return nil, fmt.Errorf("key %s: unsupported algorithm %q", rec.KID, rec.Alg)
	}
	pubDER, err := base64.StdEncoding.DecodeString(rec.Public)
	if err != nil {
		return nil, fmt.Errorf("key %s: decoding public key: %w", rec.KID, err)
	}
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	if err != nil {
		return nil, fmt.Errorf("key %s: parsing public key: %w", rec.KID, err)
	}
	// Pin the public key type to the algorithm so a record can never make an
	// RSA key verify EdDSA or the like.
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if rec.Alg != AlgEdDSA {
			return nil, fmt.Errorf("key %s: Ed25519 key stored as %s", rec.KID, rec.Alg)
		}
		k.verify = p
	case *ecdsa.PublicKey:
		if rec.Alg != AlgES256 || p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %s: ECDSA key stored as %s", rec.KID, rec.Alg)
		}
		k.verify = p
	case *rsa.PublicKey:
		if rec.Alg != AlgRS256 {
			return nil, fmt.Errorf("key %s: RSA key stored as %s", rec.KID, rec.Alg)
		}
		k.verify = p
	default:
		return nil, fmt.Errorf("key %s: unsupported public key type %T", rec.KID, pub)
	}
	// go-jose encodes the key members (RFC 7518 §6: fixed-width EC
	// coordinates, minimal RSA exponent); Valid rejects what it cannot.
	k.jwk = &jose.JSONWebKey{Key: k.verify, KeyID: rec.KID, Algorithm: rec.Alg, Use: "sig"}
	if !k.jwk.Valid() {
		return nil, fmt.Errorf("key %s: public key is not a valid JWK", rec.KID)
	}
	if openErr == nil {
		priv, err := x509.ParsePKCS8PrivateKey(privDER)
		if err != nil {
			return nil, fmt.Errorf("key %s: parsing private key: %w", rec.KID, err)
		}
		k.private = priv
	}
	return k, nil
}

// CanSign reports whether the private half is available.
func (k *SigningKey) CanSign() bool { return k.private != nil }
