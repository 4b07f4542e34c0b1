package issuer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Verification errors, safe to show a caller as error_description.
var (
	ErrTokenMalformed = errors.New("token is malformed")
	ErrTokenKey       = errors.New("token is signed by an unknown key or with the wrong algorithm")
	ErrTokenSignature = errors.New("token signature is invalid")
	ErrTokenExpired   = errors.New("token has expired")
	ErrTokenNotYet    = errors.New("token is not valid yet")
	ErrTokenIssuer    = errors.New("token has the wrong issuer")
	ErrTokenAudience  = errors.New("token has the wrong audience")
	ErrTokenType      = errors.New("token is not an access token")
	ErrTokenRevoked   = errors.New("token has been revoked")
	ErrTokenCrit      = errors.New("token has a critical header extension this gateway does not understand")
)

// maxTokenLen bounds the work a forged token can cause.
const maxTokenLen = 8 << 10

// Verify checks an access token of this issuer and returns its claims. It
// uses only memory: keys and revocations are held by the Core.
func (i *Issuer) Verify(token string) (*AccessClaims, error) {
	if len(token) > maxTokenLen || strings.Count(token, ".") != 2 {
		return nil, ErrTokenMalformed
	}
	now := i.core.now()
	kr := i.core.keys.Load()
	iss, aud := i.cfg.Issuer, i.audience()
	if e, ok := i.core.verified.get(token); ok {
		if err := e.stillValid(now, kr, iss, aud); err != nil {
			return nil, err
		}
		if i.core.revoked.revoked(e.claims) {
			return nil, ErrTokenRevoked
		}
		return e.claims, nil
	}
	var key *SigningKey
	keyfunc := func(t *jwt.Token) (any, error) {
		// RFC 7515 §4.1.11: a recipient that does not understand every
		// extension crit names must refuse the JWS. This gateway
		// understands none, so any crit (even an empty one) is refused.
		if _, ok := t.Header["crit"]; ok {
			return nil, ErrTokenCrit
		}
		kid, _ := t.Header["kid"].(string)
		kr = i.core.keyringFor(kid)
		key = kr.verifier(kid, now)
		// The algorithm is pinned to the key: `none`, HMAC with a public
		// key, or any algorithm other than the key's own is refused.
		if key == nil || t.Method.Alg() != key.Alg {
			return nil, ErrTokenKey
		}
		return key.verify, nil
	}
	i.core.sigChecks.Add(1)
	claims := &AccessClaims{}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{AlgEdDSA, AlgES256, AlgRS256, AlgHS256}),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(i.core.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(iss),
		jwt.WithAudience(aud),
	)
	t, err := p.ParseWithClaims(token, claims, keyfunc)
	if err != nil {
		return nil, classify(err)
	}
	if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, ErrTokenType
	}
	if claims.Subject == "" || claims.ID == "" {
		return nil, ErrTokenMalformed
	}
	// Cache only fully valid tokens; the claims are shared read-only.
	i.core.verified.put(token, cachedToken{claims: claims, kid: key.KID})
	if i.core.revoked.revoked(claims) {
		return nil, ErrTokenRevoked
	}
	return claims, nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, ErrTokenCrit):
		return ErrTokenCrit
	case errors.Is(err, ErrTokenKey), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrTokenKey
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrTokenSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrTokenNotYet
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrTokenIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrTokenAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: a required claim is missing", ErrTokenMalformed)
	}
	return ErrTokenMalformed
}
