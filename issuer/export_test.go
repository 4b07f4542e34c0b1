package issuer

import (
	"context"
	"time"
)

// Test-only API: what the tests of package issuer_test need to see and
// no caller of the package does.

// SetSigninSleep replaces the wait that pads a failed sign-in.
func SetSigninSleep(i *Issuer, sleep func(context.Context, time.Duration)) { i.cost.sleep = sleep }

// CredentialChecks counts the password hashes and keyed secret hashes
// this Core has computed to check credentials.
func (c *Core) CredentialChecks() uint64 { return c.checks.Load() }

// SignatureChecks counts the access-token signatures checked: the
// verified-token cache's misses.
func (c *Core) SignatureChecks() uint64 { return c.sigChecks.Load() }

// RevokeSubject revokes every access token of sub issued until now; one
// issued a microsecond later is valid.
func (c *Core) RevokeSubject(ctx context.Context, sub string) error {
	at := c.Stamp()
	return c.Revoke(ctx, Revocation{Kind: RevokeSubject, Key: sub, At: at, ExpiresAt: c.RevocationExpiry(at)})
}
