package issuer

import (
	"context"
	"fmt"
)

// EndSessions ends a subject's sessions: r (a RevokeSubject revocation)
// revokes its access tokens issued until r.At, and every refresh-token
// family that began by then, except keepFamily (""), stops refreshing. The
// families end in the store, which every refresh on every process sharing
// it reads in the transaction that rotates the token, so no process can
// refresh them afterwards.
func (c *Core) EndSessions(ctx context.Context, r Revocation, keepFamily string) error {
	if r.Kind != RevokeSubject || r.Key == "" {
		return fmt.Errorf("ending sessions needs a subject revocation, not %q of %q", r.Kind, r.Key)
	}
	// Refresh families first: once the access tokens are refused, nothing
	// may mint new ones.
	if err := c.store.EndSessions(ctx, r.Key, r.At, keepFamily); err != nil {
		return err
	}
	return c.Revoke(ctx, r)
}

// SignOut ends everything subject r.Key holds: its sign-in (SSO) sessions
// begun until r.At, then its refresh-token families and access tokens, as
// EndSessions does. It is what revoke --sub, a password change and a
// user's removal do. (A grant of a single-session site ends only the
// token sessions: the sign-in that led to it stays.)
func (c *Core) SignOut(ctx context.Context, r Revocation) error {
	if r.Kind != RevokeSubject || r.Key == "" {
		return fmt.Errorf("signing out needs a subject revocation, not %q of %q", r.Kind, r.Key)
	}
	if err := c.store.EndSubjectSessions(ctx, r.Key, r.At); err != nil {
		return err
	}
	return c.EndSessions(ctx, r, "")
}
