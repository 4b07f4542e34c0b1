package issuer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// verifyErrors are the only errors Verify may return: each is safe to show
// a caller.
var verifyErrors = []error{issuer.ErrTokenMalformed, issuer.ErrTokenKey, issuer.ErrTokenSignature,
	issuer.ErrTokenExpired, issuer.ErrTokenNotYet, issuer.ErrTokenIssuer, issuer.ErrTokenAudience,
	issuer.ErrTokenType, issuer.ErrTokenRevoked, issuer.ErrTokenCrit}

// FuzzVerify: whatever the bytes, Verify refuses with one of its declared
// errors or accepts exactly what the gateway signed: a token it accepts
// carries the claims of the token it was mutated from, never others.
func FuzzVerify(f *testing.F) {
	is := issuertest.New(f, issuer.Config{Issuer: "https://gw.example"})
	toks, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Kind: issuer.KindUser, Name: "alice", Subject: "alice", Roles: []string{"admin"}}})
	if err != nil {
		f.Fatal(err)
	}
	valid := toks.AccessToken
	f.Add(valid)
	parts := strings.Split(valid, ".")
	f.Add(parts[0] + "." + parts[1] + ".")                             // no signature
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + parts[1] + ".") // alg none
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := is.Verify(token)
		if err != nil {
			for _, e := range verifyErrors {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("undeclared error %v", err)
		}
		if claims.Subject != "alice" || claims.ID != toks.Claims.ID || claims.Issuer != "https://gw.example" || claims.Kind != issuer.KindUser {
			t.Fatalf("accepted %q with claims %+v", token, claims)
		}
	})
}
