package issuer

import (
	"context"
	"sync/atomic"
	"time"
)

// Kinds of Event.
const (
	EventIssued        = "issued"         // tokens for a grant other than refresh_token
	EventRefreshed     = "refreshed"      // a refresh token was exchanged
	EventRefreshReused = "refresh_reused" // a used refresh token came back: its family is revoked
	EventCodeReused    = "code_reused"    // a redeemed authorization code came back: what it issued is revoked
	EventSignedIn      = "signed_in"      // a sign-in session began at the login page
	EventRevoked       = "revoked"        // a token, session or subject was revoked
	EventSecretReset   = "secret_reset"   // an entity secret was replaced
	EventKeyAdded      = "key_added"      // a signing key was generated (first key or rotation)
	EventKeyRetired    = "key_retired"    // a signing key left the store
	EventLoginFailed   = "login_failed"   // a password, client or entity secret did not match
	EventThrottled     = "throttled"      // a request was refused for its rate
	EventBudgetRefused = "budget_refused" // a password check was refused: the hashing budget was spent
)

// Event is something the issuer did that operators count and audit. It
// never holds a secret, token or hash: only names and ids.
type Event struct {
	Kind  string
	Route string // the gateway route serving the request; "" outside one
	Grant string // issued/refreshed: password, client_credentials, entity, refresh_token, ...
	// NameKind says what Name names: the account kind (user, client,
	// entity, table) for sign-in events, the revocation kind (jti, sid,
	// sub) for revoked.
	NameKind  string
	Name      string // the user, client or entity name, or the revoked key
	Subject   string
	ClientID  string
	JTI       string
	Session   string // the refresh family (the tokens' sid)
	KID, Alg  string
	ExpiresAt time.Time
}

// EventSink receives events; it must be fast and never block.
type EventSink func(context.Context, Event)

type routeKey struct{}

// WithRoute marks ctx as serving route, so events name it.
func WithRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, routeKey{}, route)
}

func routeOf(ctx context.Context) string {
	r, _ := ctx.Value(routeKey{}).(string)
	return r
}

// sinkBox lets the sink be swapped atomically (a Core outlives configs).
type sinkBox struct{ f EventSink }

// SetEvents sends the Core's events to f (nil: nowhere). The latest call
// wins: a reloaded config takes over from the previous one.
func (c *Core) SetEvents(f EventSink) { c.events.Store(&sinkBox{f: f}) }

// Emit reports e; code outside the issuer (throttling, say) uses it too.
func (c *Core) Emit(ctx context.Context, e Event) {
	b := c.events.Load()
	if b == nil || b.f == nil {
		return
	}
	if e.Route == "" {
		e.Route = routeOf(ctx)
	}
	b.f(ctx, e)
}

// eventsField is embedded in Core.
type eventsField = atomic.Pointer[sinkBox]

// SyncLag is how long ago revocations were last read from the store.
func (c *Core) SyncLag() time.Duration {
	last := c.lastSync.Load()
	if last == 0 {
		return 0
	}
	return c.now().Sub(time.Unix(0, last))
}

// PasswordChecksInFlight is how many password hashes are being checked now.
func (c *Core) PasswordChecksInFlight() int { return c.budget.Running() }
