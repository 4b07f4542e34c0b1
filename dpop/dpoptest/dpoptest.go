// Package dpoptest builds DPoP proofs for tests, well-formed or broken on
// purpose (any header, any claims, any signature), which no client library
// will produce.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tokengate/caddy-tokengate/dpop"
)

// Key is a client's proof key.
type Key struct {
	Alg  string
	priv crypto.Signer
	// JWK is the public key as the proof's jwk header carries it.
	JWK map[string]any
}

// NewKey generates a key for alg: ES256, EdDSA, Ed25519, RS256 or PS256.
func NewKey(alg string) *Key {
	k := &Key{Alg: alg}
	var err error
	switch alg {
	case "ES256":
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA", "Ed25519":
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		panic("dpoptest: unsupported alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: k.priv.Public()})
	if err != nil {
		panic(err)
	}
	if err := json.Unmarshal(b, &k.JWK); err != nil {
		panic(err)
	}
	return k
}

// PrivateJWK is the key with its private members, which a proof must never carry.
func (k *Key) PrivateJWK() map[string]any {
	b, err := json.Marshal(jose.JSONWebKey{Key: k.priv})
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// JKT is the key's RFC 7638 thumbprint.
func (k *Key) JKT() string {
	t, err := (&jose.JSONWebKey{Key: k.priv.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(t)
}

// Header and Claims are a proof's parts, changed freely by Proof's edits.
type (
	Header = map[string]any
	Claims = map[string]any
)

// Proof returns a valid proof for method and url (and token, whose ath it
// carries when not ""), after applying edits to its header and claims.
func (k *Key) Proof(method, url, token string, edits ...func(Header, Claims)) string {
	h := Header{"typ": "dpop+jwt", "alg": k.Alg, "jwk": k.JWK}
	c := Claims{"jti": rand.Text(), "htm": method, "htu": url, "iat": time.Now().Unix()}
	if token != "" {
		c["ath"] = dpop.TokenHash(token)
	}
	for _, e := range edits {
		e(h, c)
	}
	return k.Sign(h, c)
}

// Sign signs header and claims with the key's algorithm, whatever the
// header's alg says.
func (k *Key) Sign(h Header, c Claims) string {
	input := encode(h) + "." + encode(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.sign([]byte(input)))
}

func (k *Key) sign(input []byte) []byte {
	sum := sha256.Sum256(input)
	var sig []byte
	var err error
	switch p := k.priv.(type) {
	case *ecdsa.PrivateKey:
		var r, s *big.Int
		if r, s, err = ecdsa.Sign(rand.Reader, p, sum[:]); err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	case ed25519.PrivateKey:
		sig = ed25519.Sign(p, input)
	case *rsa.PrivateKey:
		if k.Alg == "PS256" {
			sig, err = rsa.SignPSS(rand.Reader, p, crypto.SHA256, sum[:], nil)
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, sum[:])
		}
	}
	if err != nil {
		panic(err)
	}
	return sig
}

// Unsigned is a proof with alg none and an empty signature.
func Unsigned(h Header, c Claims) string {
	h["alg"] = "none"
	return encode(h) + "." + encode(c) + "."
}

// HMAC is a proof signed HS256 with secret.
func HMAC(secret []byte, h Header, c Claims) string {
	h["alg"] = "HS256"
	input := encode(h) + "." + encode(c)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
