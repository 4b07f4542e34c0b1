// Package dpop verifies OAuth 2.0 DPoP proofs (RFC 9449): the JWTs a
// client signs with its own key for each request, so that a token bound to
// that key is useless to anyone who only holds the token. It has no Caddy
// imports; JWS parsing, JWKs and RFC 7638 thumbprints come from go-jose.
package dpop

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Error codes of RFC 9449 §5, §7.1, §8 and §9.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Error is a refused proof: Code is CodeInvalidProof or CodeUseNonce and
// Description is safe to show the caller.
type Error struct {
	Code        string
	Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: fmt.Sprintf(format, args...)}
}

// ErrNoProof says the request carries no DPoP header.
var ErrNoProof = errors.New("no DPoP proof")

// Proof algorithms: asymmetric only; `none` and HMAC can never be
// configured. Ed25519 is RFC 9864's fully-specified name for EdDSA over
// Ed25519, which clients such as oauth4webapi send. Constants, as strings,
// so that no caller can change them.
const (
	// DefaultAlgs are accepted when Config.Algs is empty.
	DefaultAlgs = "ES256 ES384 EdDSA Ed25519 RS256 PS256"
	// SupportedAlgs is everything Config.Algs may name.
	SupportedAlgs = DefaultAlgs + " ES512 RS384 RS512 PS384 PS512"
)

// DefaultWindow is how far a proof's iat may be from the server's clock.
const DefaultWindow = 60 * time.Second

// maxProofLen bounds the work a forged proof can cause; an RSA-4096 jwk
// and its signature fit well within it.
const maxProofLen = 8 << 10

// minRSABits refuses proof keys too weak to prove anything.
const minRSABits = 2048

// ReplayFunc records proof id until expires and reports false when it was
// already recorded and has not expired (a replay). Implementations shared
// by several instances make a proof used on one refused on all.
type ReplayFunc func(ctx context.Context, id string, expires time.Time) (fresh bool, err error)

// Config configures a Verifier.
type Config struct {
	// Algs are the accepted proof algorithms; default DefaultAlgs.
	Algs []string
	// Window is how far iat may lie from now, either way; a proof's jti is
	// remembered that long after its iat. Default DefaultWindow.
	Window time.Duration
	// NonceKey, when set, makes proofs carry a server nonce (RFC 9449 §8,
	// §9). Nonces are HMACs of a time step under this key, so every
	// instance holding the key accepts the others' nonces without state.
	NonceKey []byte
	// Replay is the shared replay record consulted after the in-memory
	// cache; nil keeps replay state in this process only.
	Replay ReplayFunc
	// MaxCached bounds the in-memory replay cache; default 65536 entries.
	MaxCached int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Verifier checks proofs. It is safe for concurrent use.
type Verifier struct {
	algs      []jose.SignatureAlgorithm
	algNames  string
	window    time.Duration
	nonceKey  []byte
	replay    ReplayFunc
	seen      *replayCache
	now       func() time.Time
	nonceStep time.Duration
	ed25519   bool // "Ed25519" is accepted
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) {
	v := &Verifier{window: cfg.Window, nonceKey: cfg.NonceKey, replay: cfg.Replay, now: cfg.Now}
	if v.window <= 0 {
		v.window = DefaultWindow
	}
	if v.now == nil {
		v.now = time.Now
	}
	algs := cfg.Algs
	if len(algs) == 0 {
		algs = strings.Fields(DefaultAlgs)
	}
	for _, a := range algs {
		if !slices.Contains(strings.Fields(SupportedAlgs), a) {
			return nil, fmt.Errorf("dpop: algorithm %q is not an accepted proof algorithm (want one of %s)", a, SupportedAlgs)
		}
		if a == "Ed25519" {
			v.ed25519 = true // go-jose does not know this name yet: see verifyEd25519
			continue
		}
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	v.algNames = strings.Join(algs, " ")
	max := cfg.MaxCached
	if max <= 0 {
		max = 1 << 16
	}
	v.seen = newReplayCache(max)
	v.nonceStep = v.window
	return v, nil
}

// Algs returns the accepted algorithms, space-separated (for the `algs`
// challenge parameter); AlgList returns them as a list (for metadata).
func (v *Verifier) Algs() string { return v.algNames }

// AlgList returns the accepted algorithms.
func (v *Verifier) AlgList() []string { return strings.Fields(v.algNames) }

// NoncesRequired reports whether proofs must carry a server nonce.
func (v *Verifier) NoncesRequired() bool { return len(v.nonceKey) > 0 }

// Proof is a verified proof.
type Proof struct {
	// JKT is the RFC 7638 SHA-256 thumbprint of the proof key, base64url.
	JKT string
	JTI string
	IAT time.Time
}

// Request is what a proof must match.
type Request struct {
	// Method is the HTTP method (htm).
	Method string
	// URL is the request's absolute URL, scheme://host/path; any query or
	// fragment is ignored (htu).
	URL string
	// AccessToken is the token the request presents; "" at the token
	// endpoint, where the proof must carry no ath.
	AccessToken string
}

// FromHeader returns the request's one DPoP proof: ErrNoProof when there is
// none, an *Error when there are several or it is empty.
func FromHeader(h http.Header) (string, error) {
	vals := h.Values("DPoP")
	switch {
	case len(vals) == 0:
		return "", ErrNoProof
	case len(vals) > 1:
		return "", invalid("more than one DPoP header")
	}
	p := strings.TrimSpace(vals[0])
	if p == "" {
		return "", invalid("the DPoP header is empty")
	}
	return p, nil
}

type claims struct {
	JTI   string   `json:"jti"`
	HTM   string   `json:"htm"`
	HTU   string   `json:"htu"`
	IAT   *float64 `json:"iat"`
	ATH   *string  `json:"ath"`
	Nonce *string  `json:"nonce"`
}

// Verify checks proof against req as RFC 9449 §4.3 lists, and records its
// jti. Failures are *Error values.
func (v *Verifier) Verify(ctx context.Context, proof string, req Request) (*Proof, error) {
	if len(proof) > maxProofLen {
		return nil, invalid("the proof is too large")
	}
	var jwk *jose.JSONWebKey
	var payload []byte
	var err error
	if v.ed25519 && peekAlg(proof) == "Ed25519" {
		jwk, payload, err = verifyEd25519(proof)
	} else {
		jwk, payload, err = v.verifyJWS(proof)
	}
	if err != nil {
		return nil, err
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("the proof's claims are not a JSON object")
	}
	if c.JTI == "" || c.HTM == "" || c.HTU == "" || c.IAT == nil {
		return nil, invalid("the proof lacks jti, htm, htu or iat")
	}
	if len(c.JTI) > 256 {
		return nil, invalid("the proof's jti is too long")
	}
	if c.HTM != req.Method {
		return nil, invalid("the proof's htm does not match the request method")
	}
	if !SameURL(c.HTU, req.URL) {
		return nil, invalid("the proof's htu does not match the request URL")
	}
	if err := v.checkATH(c.ATH, req.AccessToken); err != nil {
		return nil, err
	}
	now := v.now()
	iat := *c.IAT
	// Compared as float seconds: converting an absurd iat to a Duration
	// would overflow, and NaN fails every comparison.
	if skew := math.Abs(iat - float64(now.UnixNano())/1e9); !(skew <= v.window.Seconds()) {
		return nil, invalid("the proof's iat is not within %s of the server's time", v.window)
	}
	if v.NoncesRequired() {
		if c.Nonce == nil {
			return nil, &Error{Code: CodeUseNonce, Description: "the proof must carry the server's DPoP-Nonce"}
		}
		if !v.validNonce(*c.Nonce, now) {
			return nil, &Error{Code: CodeUseNonce, Description: "the proof's nonce is not current"}
		}
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, invalid("the proof's jwk has no thumbprint")
	}
	jkt := base64.RawURLEncoding.EncodeToString(thumb)
	// A jti is unique per key; hashing bounds what is stored.
	sum := sha256.Sum256([]byte(jkt + "\x00" + c.JTI))
	id := base64.RawURLEncoding.EncodeToString(sum[:])
	expires := time.Unix(0, int64(iat*float64(time.Second))).Add(v.window)
	fresh, err := v.use(ctx, id, expires, now)
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, invalid("the proof's jti was already used")
	}
	return &Proof{JKT: jkt, JTI: c.JTI, IAT: time.Unix(int64(iat), 0)}, nil
}

// verifyJWS checks the proof's JOSE header and signature with go-jose and
// returns its jwk and payload.
func (v *Verifier) verifyJWS(proof string) (*jose.JSONWebKey, []byte, error) {
	jws, err := jose.ParseSignedCompact(proof, v.algs)
	if err != nil {
		// go-jose names the problem (unknown alg, private or invalid jwk, …)
		// without echoing key material.
		return nil, nil, invalid("the proof is not a compact JWS with one of the algorithms %s and a public jwk: %s", v.algNames, strings.TrimPrefix(err.Error(), "go-jose/go-jose: "))
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, invalid("the proof must have exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return nil, nil, invalid(`the proof's typ must be "dpop+jwt"`)
	}
	jwk := h.JSONWebKey
	if jwk == nil {
		return nil, nil, invalid("the proof has no jwk header")
	}
	// ParseSignedCompact already refused private and symmetric jwks; check
	// again so that no future change there lets one through.
	if !jwk.IsPublic() || !jwk.Valid() {
		return nil, nil, invalid("the proof's jwk must be a public key")
	}
	if k, ok := jwk.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return nil, nil, invalid("the proof's RSA key is shorter than %d bits", minRSABits)
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, nil, invalid("the proof's signature does not verify with its jwk")
	}
	return jwk, payload, nil
}

func (v *Verifier) checkATH(ath *string, token string) error {
	if token == "" {
		if ath != nil {
			return invalid("a proof for the token endpoint must not carry ath")
		}
		return nil
	}
	if ath == nil {
		return invalid("the proof lacks ath, the hash of the access token")
	}
	if !hmac.Equal([]byte(*ath), []byte(TokenHash(token))) {
		return invalid("the proof's ath is not the hash of this access token")
	}
	return nil
}

// use records id in memory and, when configured, in the shared record.
// Memory answers replays without a store round-trip; the shared record
// stays the authority, so evicting from memory never admits a replay.
func (v *Verifier) use(ctx context.Context, id string, expires, now time.Time) (bool, error) {
	if !v.seen.add(id, expires, now) {
		return false, nil
	}
	if v.replay == nil {
		return true, nil
	}
	fresh, err := v.replay(ctx, id, expires)
	if err != nil {
		v.seen.remove(id) // not recorded: let a retry try again
		return false, fmt.Errorf("recording DPoP proof: %w", err)
	}
	return fresh, nil
}

// TokenHash is the ath of an access token: base64url(SHA-256(token)).
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Nonce returns the current server nonce ("" when nonces are off).
func (v *Verifier) Nonce() string {
	if !v.NoncesRequired() {
		return ""
	}
	return v.nonceAt(v.step(v.now()))
}

func (v *Verifier) step(t time.Time) int64 { return t.UnixNano() / int64(v.nonceStep) }

func (v *Verifier) nonceAt(step int64) string {
	m := hmac.New(sha256.New, v.nonceKey)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(step))
	m.Write([]byte("tokengate dpop nonce\x00"))
	m.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// validNonce accepts the nonce of the current and the previous time step,
// so a nonce handed out just before a step ends still works.
func (v *Verifier) validNonce(n string, now time.Time) bool {
	s := v.step(now)
	ok := hmac.Equal([]byte(n), []byte(v.nonceAt(s)))
	return hmac.Equal([]byte(n), []byte(v.nonceAt(s-1))) || ok
}
