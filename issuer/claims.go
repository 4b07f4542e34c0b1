package issuer

import (
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
)

// ClaimNames are the claims Rendered renders, in its order. kind is the
// principal's kind (user, client, entity, table:<name>), so that an
// upstream can tell a user from a client of the same name.
func ClaimNames() []string {
	return []string{"sub", "iss", "aud", "exp", "iat", "jti", "client_id", "scope", "roles", "sid", "kind"}
}

// numClaims is len(ClaimNames()).
const numClaims = 11

// RenderedClaims are a token's claims as header and placeholder values:
// lists comma-separated, times in Unix seconds. Values holds the same
// strings already boxed, so that storing them in an `any` allocates nothing.
type RenderedClaims struct {
	Strings [numClaims]string
	Values  [numClaims]any
}

// renderedCache is embedded in AccessClaims: computed once per token and
// shared read-only, so a token served from the verified cache is rendered
// once, not on every request.
type renderedCache struct {
	p atomic.Pointer[RenderedClaims]
}

// Rendered returns the claims rendered in ClaimNames order.
func (c *AccessClaims) Rendered() *RenderedClaims {
	if r := c.rendered.p.Load(); r != nil {
		return r
	}
	r := &RenderedClaims{Strings: [numClaims]string{
		c.Subject, c.Issuer, strings.Join(c.Audience, ","), unix(c.ExpiresAt), unix(c.IssuedAt),
		c.ID, c.ClientID, c.Scope, strings.Join(c.Roles, ","), c.SID, string(c.Kind),
	}}
	for i, s := range r.Strings {
		r.Values[i] = s
	}
	c.rendered.p.Store(r) // a racing render stores an equal value
	return r
}

func unix(d *jwt.NumericDate) string {
	if d == nil {
		return ""
	}
	return strconv.FormatInt(d.Unix(), 10)
}
