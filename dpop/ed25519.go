package dpop

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// peekAlg returns the alg of a compact JWS's header, "" when unreadable.
func peekAlg(proof string) string {
	head, _, ok := strings.Cut(proof, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// verifyEd25519 checks a proof signed with alg "Ed25519", RFC 9864's
// fully-specified name for EdDSA over Ed25519, which go-jose v4 does not
// accept yet. The rules are those of verifyJWS: typ dpop+jwt, a public
// Ed25519 jwk (parsed by go-jose), no crit, a valid signature.
func verifyEd25519(proof string) (*jose.JSONWebKey, []byte, error) {
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return nil, nil, invalid("the proof is not a compact JWS")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	payload, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, nil, invalid("the proof is not base64url")
	}
	var h struct {
		Typ  string            `json:"typ"`
		JWK  *jose.JSONWebKey  `json:"jwk"`
		Crit []json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		// go-jose refuses a jwk with private members here.
		return nil, nil, invalid("the proof's header is invalid: %s", strings.TrimPrefix(err.Error(), "go-jose/go-jose: "))
	}
	if h.Typ != "dpop+jwt" {
		return nil, nil, invalid(`the proof's typ must be "dpop+jwt"`)
	}
	if h.Crit != nil {
		return nil, nil, invalid("the proof has critical headers this server does not support")
	}
	if h.JWK == nil {
		return nil, nil, invalid("the proof has no jwk header")
	}
	if !h.JWK.IsPublic() {
		return nil, nil, invalid("the proof's jwk must be a public key, without private members")
	}
	pub, ok := h.JWK.Key.(ed25519.PublicKey)
	if !ok || !h.JWK.Valid() {
		return nil, nil, invalid("the proof's jwk must be a public Ed25519 key")
	}
	if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return nil, nil, invalid("the proof's signature does not verify with its jwk")
	}
	return h.JWK, payload, nil
}
