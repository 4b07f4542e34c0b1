package issuer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
)

type clientIPKey struct{}

// WithClientIP returns ctx carrying the caller's IP address (as the HTTP
// server determined it, trusted proxies considered), which sign-in
// throttling keys on.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the IP WithClientIP stored, "" when none.
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// ThrottledError says a sign-in was refused, before any hash was computed,
// because of earlier failures: answer 429 with Retry-After.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-ins; try again in %d s", RetryAfterSeconds(e.RetryAfter))
}

// Is makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// ErrThrottled matches every *ThrottledError.
var ErrThrottled = errors.New("too many failed sign-ins")

// RetryAfterSeconds rounds d up to whole seconds, at least 1, for Retry-After.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(1, int64(math.Ceil(d.Seconds())))
}

// BusyRetryAfter is the Retry-After sent with ErrBusy.
const BusyRetryAfter = time.Second

// allow charges an attempt on account by the context's client IP, or
// refuses it with a *ThrottledError.
func (i *Issuer) allow(ctx context.Context, account string) error {
	if i.throttle == nil {
		return nil
	}
	if wait, ok := i.throttle.Allow(ClientIP(ctx), account); !ok {
		i.core.Emit(ctx, accountEvent(EventThrottled, account))
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// settle tells the throttle how an allowed attempt ended: a success
// refunds it, a wrong credential keeps it charged, and anything else (a
// busy server, a store error) refunds it as undecided.
func (i *Issuer) settle(ctx context.Context, account string, err error) {
	if errors.Is(err, ErrBusy) {
		i.core.Emit(ctx, accountEvent(EventBudgetRefused, account))
	}
	switch {
	case i.throttle == nil || errors.Is(err, ErrInvalidCredentials):
	case err == nil:
		i.throttle.Success(ClientIP(ctx), account)
	default:
		i.throttle.Cancel(ClientIP(ctx), account)
	}
}

// accountEvent is an event of kind about a throttle account: NameKind is
// user, client or table, Name the name (a table user's as <table>:<name>).
func accountEvent(kind, account string) Event {
	k, name, _ := strings.Cut(account, "\x00")
	return Event{Kind: kind, NameKind: k, Name: strings.ReplaceAll(name, "\x00", ":")}
}

// Throttle accounts: users, clients and entities (which share the client
// route), and users of a directory.
func userAccount(name string) string     { return "user\x00" + name }
func clientAccount(id string) string     { return "client\x00" + id }
func dirAccount(dir, name string) string { return "table\x00" + dir + "\x00" + name }
func throttleConfig(cfg Config) *throttle.Config {
	if cfg.NoThrottle {
		return nil
	}
	t := cfg.Throttle
	return &t
}

// AuthenticateTableUser checks the password of a user of the user table
// (Config.Directories) name, with the same throttling, hashing budget and
// equal cost for unknown names as AuthenticateUser.
func (i *Issuer) AuthenticateTableUser(ctx context.Context, name, username, password string) (User, error) {
	dir, ok := i.cfg.Directories[name]
	if !ok {
		return User{}, fmt.Errorf("no user table %q is configured", name)
	}
	return i.authenticateTable(ctx, name, username, password, func() (User, error) { return dir.LookupUser(ctx, username) })
}

// authenticateTable is AuthenticateTableUser with the lookup given (SignIn
// has already found the user).
func (i *Issuer) authenticateTable(ctx context.Context, name, username, password string, lookup func() (User, error)) (User, error) {
	account := dirAccount(name, username)
	if err := i.allow(ctx, account); err != nil {
		return User{}, err
	}
	u, err := i.authenticateWith(ctx, TableKind(name), lookup, password)
	i.settle(ctx, account, err)
	return u, err
}

// authenticateWith looks a user up and checks the password; an unknown
// user, a row whose hash cannot be checked and a wrong password all cost
// what a check of kind's reference class does (signinCost).
func (i *Issuer) authenticateWith(ctx context.Context, kind PrincipalKind, lookup func() (User, error), password string) (User, error) {
	u, err := lookup()
	if errors.Is(err, ErrNotFound) {
		if err := i.dummyCheck(ctx, kind, password); err != nil {
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, err
	}
	class := HashClass(u.PasswordHash)
	i.cost.raise(kind, class) // a stored or table user of a costlier class
	ok, took, err := i.timedPassword(ctx, u.PasswordHash, password)
	if errors.Is(err, ErrBadHash) {
		// A row we cannot check never signs in, and costs what a check does.
		if err := i.padFailure(ctx, kind, "", 0); err != nil {
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, fmt.Errorf("verifying password of user %s: %w", u.Name, err)
	}
	if !ok {
		if err := i.padFailure(ctx, kind, class, took); err != nil {
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}

// rehash moves a stored user whose hash is cheaper than new hashes onto
// the current parameters, with the password just verified, so that a store
// converges on one hash class. A password changed meanwhile wins; a
// failure only leaves the old hash.
func (i *Issuer) rehash(ctx context.Context, u User, password string) {
	// Only onto stronger parameters: a hash made stronger on purpose stays.
	if class := HashClass(u.PasswordHash); class == i.defaultClass || classCost(class) >= classCost(i.defaultClass) {
		return
	}
	var h string
	var herr error
	if err := i.core.budget.Do(ctx, func() { h, herr = HashPasswordWith(i.params, password) }); err != nil || herr != nil {
		return // busy: the next sign-in tries again
	}
	if err := i.userStore.RehashUser(ctx, u.Name, u.PasswordHash, h); err != nil {
		i.core.log.Warn("rehashing a password with the current parameters", zap.String("user", u.Name), zap.Error(err))
	}
}
