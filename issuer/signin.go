package issuer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/throttle"
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

// accountEvent is an event of kind about a throttle account: Kind2 is
// user, client or table, Name the name (a table user's as <table>:<name>).
func accountEvent(kind, account string) Event {
	k, name, _ := strings.Cut(account, "\x00")
	return Event{Kind: kind, Kind2: k, Name: strings.ReplaceAll(name, "\x00", ":")}
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

// dummies holds one dummy hash per hash class, and the class of the
// principals last seen, so that an unknown name is checked against a hash
// that costs what a known name's does.
type dummies struct {
	mu      sync.Mutex
	byClass map[string]string
	last    sync.Map // kind ("user", "client", "table:<name>") -> *atomic.Pointer[observed]
}

// maxDummyClasses bounds the dummies kept; classes come only from stored
// hashes, never from a request.
const maxDummyClasses = 16

// hmacClass marks generated secrets checked with the keyed hash.
const hmacClass = "hmac"

// observed is the last hash seen for a kind, and its class.
type observed struct{ hash, class string }

// observe records the class of a principal's hash just looked up. The
// same hash as last time (the usual case) costs a string compare.
func (d *dummies) observe(kind, hash string) {
	v, ok := d.last.Load(kind)
	if !ok {
		v, _ = d.last.LoadOrStore(kind, new(atomic.Pointer[observed]))
	}
	p := v.(*atomic.Pointer[observed])
	if cur := p.Load(); cur != nil && cur.hash == hash {
		return
	}
	class := HashClass(hash)
	if class == "" {
		if len(hash) != len(dummySecretHash) || strings.Trim(hash, "0123456789abcdef") != "" {
			return // no format we check: keep the last class
		}
		class = hmacClass
	}
	p.Store(&observed{hash: hash, class: class})
}

// class returns the class of kind's last principal, or def.
func (d *dummies) class(kind, def string) string {
	if v, ok := d.last.Load(kind); ok {
		if o := v.(*atomic.Pointer[observed]).Load(); o != nil {
			return o.class
		}
	}
	return def
}

// hash returns the dummy hash of class, making it on first use.
func (d *dummies) hash(class string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if h, ok := d.byClass[class]; ok {
		return h, nil
	}
	h, err := DummyHash(class)
	if err != nil {
		return "", err
	}
	if len(d.byClass) >= maxDummyClasses {
		clear(d.byClass)
	}
	d.byClass[class] = h
	return h, nil
}

// dummyCheck spends on password what checking a real principal of kind
// would: a slow hash of the same class, or a keyed hash.
func (i *Issuer) dummyCheck(ctx context.Context, kind, def, password string) error {
	class := i.dummies.class(kind, def)
	if class == hmacClass {
		i.core.checkSecret(dummySecretHash, password)
		return nil
	}
	h, err := i.dummies.hash(class)
	if err != nil {
		return fmt.Errorf("making a dummy hash: %w", err)
	}
	_, err = i.core.checkPassword(ctx, h, password)
	return err
}

// dummySecretHash is shaped like a keyed hash (64 hex digits) but matches
// no secret.
const dummySecretHash = "0000000000000000000000000000000000000000000000000000000000000000"

// AuthenticateDirectoryUser checks the password of a user of directory
// dir (registered as name), with the same throttling, hashing budget and
// equal cost for unknown names as AuthenticateUser.
func (i *Issuer) AuthenticateDirectoryUser(ctx context.Context, name string, dir UserDirectory, username, password string) (User, error) {
	account := dirAccount(name, username)
	if err := i.allow(ctx, account); err != nil {
		return User{}, err
	}
	u, err := i.authenticateWith(ctx, "table:"+name, func() (User, error) { return dir.LookupUser(ctx, username) }, password)
	i.settle(ctx, account, err)
	return u, err
}

// authenticateWith looks a user up and checks the password; an unknown
// user costs a dummy check of the class last seen for kind.
func (i *Issuer) authenticateWith(ctx context.Context, kind string, lookup func() (User, error), password string) (User, error) {
	u, err := lookup()
	if errors.Is(err, ErrNotFound) {
		if err := i.dummyCheck(ctx, kind, i.defaultClass, password); err != nil {
			return User{}, err
		}
		return User{}, ErrInvalidCredentials
	}
	if err != nil {
		return User{}, err
	}
	i.dummies.observe(kind, u.PasswordHash)
	ok, err := i.core.checkPassword(ctx, u.PasswordHash, password)
	if errors.Is(err, ErrBadHash) {
		return User{}, ErrInvalidCredentials // a row we cannot check never signs in
	}
	if err != nil {
		return User{}, fmt.Errorf("verifying password of user %s: %w", u.Name, err)
	}
	if !ok {
		return User{}, ErrInvalidCredentials
	}
	return u, nil
}
