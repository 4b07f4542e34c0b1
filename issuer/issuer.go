package issuer

import (
	"cmp"
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
)

// Config is one site's issuing policy over a shared Core.
type Config struct {
	// Issuer is the `iss` of every token and the only one accepted:
	// required, decided when the site loads.
	Issuer string
	// Audience is the `aud` of access tokens; when empty, the issuer.
	Audience string
	// Alg is the signing algorithm; "" follows the store (Core.SigningAlg,
	// EdDSA while there is no key).
	Alg        string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	// RefreshGrace is how long after its exchange a refresh token may be
	// presented again and get a new pair (see Refresh): 0 means
	// DefaultRefreshGrace, a negative value none.
	RefreshGrace time.Duration
	// SingleSession makes every grant end the subject's other sessions.
	SingleSession bool
	// Users and Clients declared in configuration; they take precedence
	// over the store's.
	Users    []User
	Clients  []Client
	Entities []Entity
	// SecretGrace is how long a reset entity secret keeps working.
	SecretGrace time.Duration
	// Directories are external user tables by name; their users get
	// principals of kind "table:<name>" and subjects "<name>:<id>".
	Directories map[string]UserDirectory
	// Throttle limits failed sign-ins per client IP and account; zero
	// fields take throttle's defaults. NoThrottle turns it off.
	Throttle   throttle.Config
	NoThrottle bool
	// SessionTTL is the idle lifetime of a sign-in session (it slides with
	// use), SessionMaxTTL its absolute one; 0 takes DefaultSessionTTL and
	// DefaultSessionMaxTTL.
	SessionTTL    time.Duration
	SessionMaxTTL time.Duration
	// HashParams are the argon2id parameters of new hashes: those a stored
	// user's older hash is moved onto when it signs in, and the least a
	// failed sign-in costs (signinCost). Default: DefaultHashParams.
	HashParams *HashParams
}

// PrincipalKind says what kind of account a principal is. It is carried
// in tokens (the kind claim) and stored with refresh tokens.
type PrincipalKind string

// Principal kinds; a user table's users have TableKind(name).
const (
	KindUser   PrincipalKind = "user"
	KindClient PrincipalKind = "client"
	KindEntity PrincipalKind = "entity"
)

const kindTablePrefix = "table:"

// TableKind is the kind of the users of user table name.
func TableKind(name string) PrincipalKind { return PrincipalKind(kindTablePrefix + name) }

// ParsePrincipalKind reads a kind as configuration spells it: user,
// client, entity or table:<name>.
func ParsePrincipalKind(s string) (PrincipalKind, error) {
	switch k := PrincipalKind(s); k {
	case KindUser, KindClient, KindEntity:
		return k, nil
	}
	if name, ok := PrincipalKind(s).Table(); ok && name != "" {
		return PrincipalKind(s), nil
	}
	return "", fmt.Errorf("principal kind %q: want user, client, entity or table:<name>", s)
}

// Table returns the user table a kind's users come from, if it is a table kind.
func (k PrincipalKind) Table() (name string, ok bool) {
	return strings.CutPrefix(string(k), kindTablePrefix)
}

// SubjectSeparator separates a table's name from its user's id in the
// subject of a table user ("app:42"). Gateway users, clients and entities
// may not have it in their names or subjects, so no gateway principal ever
// shares a subject with a table user, and no two tables share one.
const SubjectSeparator = ":"

// CheckName refuses a gateway user name or id, client id, entity id or
// table name that could be mistaken for a table user's subject.
func CheckName(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", what)
	}
	if strings.Contains(name, SubjectSeparator) {
		return fmt.Errorf("%s %q: names may not contain %q (it separates a user_table's name from its users' ids in subjects)", what, name, SubjectSeparator)
	}
	return nil
}

// UserDirectory is an external source of users, such as an application's
// own user table.
type UserDirectory interface {
	LookupUser(ctx context.Context, username string) (User, error)
}

// DirectoryPrincipal is the principal of a user from directory name. Its
// subject is "<name>:<id>", so it is never a gateway user's subject (for
// revocation, rules and the identity headers alike).
func DirectoryPrincipal(name string, u User) Principal {
	p := UserPrincipal(u)
	p.Kind = TableKind(name)
	p.Subject = name + SubjectSeparator + u.Subject()
	return p
}

// Issuer mints and checks tokens for one site.
type Issuer struct {
	core *Core
	// The roles of the Core's store that issuing uses.
	userStore    UserStore
	clientStore  ClientStore
	entityStore  EntityStore
	secretStore  SecretStore
	refreshStore RefreshStore
	proofStore   DPoPStore
	codeStore    AuthCodeStore
	sessionStore SessionStore
	consentStore ConsentStore
	cfg          Config
	tableNames   []string // cfg.Directories' names, sorted
	users        map[string]User
	clients      map[string]Client
	entities     map[string]Entity
	// clientOK caches the keyed hash of configured clients' secrets once a
	// slow argon2id/bcrypt check has passed, so client_credentials stays fast.
	clientOK sync.Map // client id -> verifiedSecret
	// cost makes a failed sign-in cost the same for an unknown name and a
	// known one.
	cost *signinCost
	// params and defaultClass are the argon2id parameters of new hashes,
	// and their class.
	params       HashParams
	defaultClass string
	throttle     *throttle.Limiter // nil: off
}

// New returns an Issuer for cfg over core.
func New(core *Core, cfg Config) (*Issuer, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("issuer: Config.Issuer is required")
	}
	if cfg.Alg != "" && !ValidAlg(cfg.Alg) {
		return nil, fmt.Errorf("unsupported signing algorithm %q", cfg.Alg)
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 15 * time.Minute
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	st := core.store
	i := &Issuer{core: core, userStore: st, clientStore: st, entityStore: st, secretStore: st, refreshStore: st, proofStore: st,
		codeStore: st, sessionStore: st, consentStore: st, cfg: cfg, users: map[string]User{}, clients: map[string]Client{}, entities: map[string]Entity{},
		cost: newSigninCost(core.now)}
	if tc := throttleConfig(cfg); tc != nil {
		i.throttle = core.Throttle(*tc)
	}
	params := DefaultHashParams()
	if cfg.HashParams != nil {
		params = *cfg.HashParams
	}
	if err := params.Check(); err != nil {
		return nil, err
	}
	i.params = params
	i.defaultClass = fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%d$%d", params.Memory, params.Time, params.Threads, argonSaltLen, argonKeyLen)
	i.cost.raise(KindUser, i.defaultClass)
	i.cost.raise(KindClient, hmacClass) // generated secrets
	for name := range cfg.Directories {
		if err := CheckName("user_table", name); err != nil {
			return nil, err
		}
		i.cost.raise(TableKind(name), i.defaultClass)
		i.tableNames = append(i.tableNames, name)
	}
	slices.Sort(i.tableNames)
	for _, e := range cfg.Entities {
		if err := CheckName("entity", e.ID); err != nil {
			return nil, err
		}
		i.entities[e.ID] = e
	}
	for _, u := range cfg.Users {
		if err := errors.Join(CheckName("user", u.Name), CheckName("user id", u.Subject())); err != nil {
			return nil, err
		}
		if err := CheckHashFormat(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("user %s: %w", u.Name, err)
		}
		i.users[u.Name] = u
		i.cost.raise(KindUser, HashClass(u.PasswordHash))
	}
	for _, c := range cfg.Clients {
		if err := CheckName("client", c.ID); err != nil {
			return nil, err
		}
		switch {
		case c.Public && c.SecretHash != "":
			return nil, fmt.Errorf("client %s: a public client has no secret", c.ID)
		case !c.Public:
			if err := CheckHashFormat(c.SecretHash); err != nil {
				return nil, fmt.Errorf("client %s: %w", c.ID, err)
			}
		}
		i.clients[c.ID] = c
		i.cost.raise(KindClient, HashClass(c.SecretHash))
	}
	// Make the dummies now, not on an attacker's first request.
	for _, kind := range []PrincipalKind{KindUser, KindClient} {
		if class := i.cost.reference(kind); class != hmacClass {
			if _, err := i.cost.dummyHash(class); err != nil {
				return nil, err
			}
		}
	}
	return i, nil
}

// Core returns the shared core.
func (i *Issuer) Core() *Core { return i.core }

// ErrInvalidCredentials says a name or secret did not match; deliberately
// the same whether the account exists or not.
var ErrInvalidCredentials = errors.New("invalid credentials")

// AuthenticateUser checks a user's password. It fails with a
// *ThrottledError (before any hash is computed) after too many failures,
// with ErrBusy when the hashing budget is spent, and with
// ErrInvalidCredentials alike for an unknown user and a wrong password.
func (i *Issuer) AuthenticateUser(ctx context.Context, name, password string) (User, error) {
	account := userAccount(name)
	if err := i.allow(ctx, account); err != nil {
		return User{}, err
	}
	u, err := i.authenticateWith(ctx, KindUser, func() (User, error) { return i.lookupUser(ctx, name) }, password)
	if errors.Is(err, ErrInvalidCredentials) {
		i.core.Emit(ctx, Event{Kind: EventLoginFailed, NameKind: "user", Name: name})
	}
	if _, declared := i.users[name]; err == nil && !declared {
		i.rehash(ctx, u, password)
	}
	i.settle(ctx, account, err)
	return u, err
}

// LookupUser returns a configured or stored user without authenticating it.
func (i *Issuer) LookupUser(ctx context.Context, name string) (User, error) {
	return i.lookupUser(ctx, name)
}

func (i *Issuer) lookupUser(ctx context.Context, name string) (User, error) {
	if u, ok := i.users[name]; ok {
		return u, nil
	}
	if name == "" {
		return User{}, ErrNotFound
	}
	u, err := i.userStore.GetUser(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("looking up user: %w", err)
	}
	if err == nil && (CheckName("user", u.Name) != nil || CheckName("user", u.Subject()) != nil) {
		return User{}, ErrNotFound // stored before names were checked: it would pass for a table user
	}
	return u, err
}

// LookupClient returns a client by id without authenticating it.
func (i *Issuer) LookupClient(ctx context.Context, id string) (Client, error) {
	if c, ok := i.clients[id]; ok {
		return c, nil
	}
	if id == "" {
		return Client{}, ErrNotFound
	}
	c, err := i.clientStore.GetClient(ctx, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Client{}, fmt.Errorf("looking up client: %w", err)
	}
	if err == nil && CheckName("client", c.ID) != nil {
		return Client{}, ErrNotFound
	}
	return c, err
}

// AuthenticateClient checks a client's secret, throttled like
// AuthenticateUser. An unknown id costs a dummy check like the last client
// looked up.
func (i *Issuer) AuthenticateClient(ctx context.Context, id, secret string) (Client, error) {
	account := clientAccount(id)
	if err := i.allow(ctx, account); err != nil {
		return Client{}, err
	}
	c, err := i.authenticateClient(ctx, id, secret)
	i.settle(ctx, account, err)
	return c, err
}

func (i *Issuer) authenticateClient(ctx context.Context, id, secret string) (Client, error) {
	c, err := i.LookupClient(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// An entity may use client_credentials with its id and secret.
		e, found, err := i.authenticateEntity(ctx, id, secret)
		switch {
		case !found && err == nil:
			if err := i.dummyCheck(ctx, KindClient, secret); err != nil {
				return Client{}, err
			}
			err = ErrInvalidCredentials
		case errors.Is(err, ErrInvalidCredentials):
			// Keyed hashes: the whole reference time, as for an unknown id.
			if perr := i.padFailure(ctx, KindClient, hmacClass, 0); perr != nil {
				return Client{}, perr
			}
			i.core.Emit(ctx, Event{Kind: EventLoginFailed, NameKind: "entity", Name: id})
		}
		if err != nil {
			return Client{}, err
		}
		return Client{ID: e.ID, Roles: e.Roles, Grants: []string{"client_credentials"}, Entity: true}, nil
	}
	if err != nil {
		return Client{}, err
	}
	i.cost.raise(KindClient, classOf(c.SecretHash)) // a stored client of a costlier class
	if ok, took, err := i.verifyClientSecret(ctx, c, secret); err != nil {
		return Client{}, err
	} else if !ok {
		if err := i.padFailure(ctx, KindClient, classOf(c.SecretHash), took); err != nil {
			return Client{}, err
		}
		i.core.Emit(ctx, Event{Kind: EventLoginFailed, NameKind: "client", Name: id})
		return Client{}, ErrInvalidCredentials
	}
	return c, nil
}

// verifyClientSecret checks a client's secret and says how long the slow
// hash took (0 for a keyed hash or one verified before).
func (i *Issuer) verifyClientSecret(ctx context.Context, c Client, secret string) (bool, time.Duration, error) {
	if !strings.HasPrefix(c.SecretHash, "$") { // a generated secret's keyed hash
		// A public client has none: no secret authenticates it (checked
		// all the same, so it costs what a confidential client's does).
		return i.core.checkSecret(c.SecretHash, secret) && !c.Public, 0, nil
	}
	keyed := i.core.hasher.Hash(secret)
	if prev, ok := i.clientOK.Load(c.ID); ok {
		// Only for the hash it was verified against: a new hash (the
		// secret changed) forgets the old secret.
		if v := prev.(verifiedSecret); v.hash == c.SecretHash && hmac.Equal([]byte(v.keyed), []byte(keyed)) {
			return true, 0, nil
		}
	}
	ok, took, err := i.timedPassword(ctx, c.SecretHash, secret)
	if err != nil {
		return false, 0, fmt.Errorf("verifying secret of client %s: %w", c.ID, err)
	}
	if ok {
		i.clientOK.Store(c.ID, verifiedSecret{hash: c.SecretHash, keyed: keyed})
	}
	return ok, took, nil
}

// verifiedSecret is a client secret (as its keyed hash) that passed the
// slow check against the stored hash.
type verifiedSecret struct{ hash, keyed string }

// Principal is whoever a token is about.
type Principal struct {
	Kind    PrincipalKind
	Name    string // user name, client id or entity id, as looked up
	Subject string
	Roles   []string
	Scopes  []string // scopes it may be granted
}

// UserPrincipal and ClientPrincipal describe a principal for minting.
func UserPrincipal(u User) Principal {
	return Principal{Kind: KindUser, Name: u.Name, Subject: u.Subject(), Roles: u.Roles, Scopes: u.Scopes}
}

// ClientPrincipal is the principal of a client acting for itself.
func ClientPrincipal(c Client) Principal {
	if c.Entity {
		return EntityPrincipal(Entity{ID: c.ID, Roles: c.Roles})
	}
	return Principal{Kind: KindClient, Name: c.ID, Subject: c.ID, Roles: c.Roles, Scopes: c.Scopes}
}

// AccessClaims are the claims of an access token (RFC 9068).
type AccessClaims struct {
	jwt.RegisteredClaims
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// SID ties the token to its refresh-token family so that revoking the
	// family revokes it too.
	SID string `json:"sid,omitempty"`
	// Cnf binds the token to a DPoP key (RFC 9449 §6.1); nil for bearer tokens.
	Cnf *Confirmation `json:"cnf,omitempty"`
	// IssuedAtMicro is iat to the microsecond, strictly increasing per
	// process: a subject revocation orders exactly against it.
	IssuedAtMicro int64 `json:"iat_us,omitempty"`
	// Kind is the principal's kind, so that what a role grants can depend
	// on who holds it. Tokens minted before it existed have none.
	Kind PrincipalKind `json:"kind,omitempty"`

	rendered renderedCache
}

// HasRole reports whether the token carries role.
func (c *AccessClaims) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// HasScope reports whether the token was granted scope.
func (c *AccessClaims) HasScope(scope string) bool {
	for s := range strings.FieldsSeq(c.Scope) {
		if s == scope {
			return true
		}
	}
	return false
}

// GrantScope returns the scope to grant: all allowed scopes when none is
// requested, else the request if it is a subset of allowed.
func GrantScope(requested string, allowed []string) (string, bool) {
	if strings.TrimSpace(requested) == "" {
		return strings.Join(allowed, " "), true
	}
	var granted []string
	for s := range strings.FieldsSeq(requested) {
		if !slices.Contains(allowed, s) {
			return "", false
		}
		if !slices.Contains(granted, s) {
			granted = append(granted, s)
		}
	}
	return strings.Join(granted, " "), true
}

// Grant is what to mint.
type Grant struct {
	Principal Principal
	ClientID  string // the client the token is for; "" when none authenticated
	Scope     string // already checked with GrantScope
	Refresh   bool   // also issue a refresh token, starting a new family
	AccessTTL time.Duration
	// Exclusive ends the subject's other sessions (access tokens and
	// refresh-token families), as Config.SingleSession does for every grant.
	Exclusive bool
	// JKT binds the access token to this DPoP key thumbprint ("": bearer).
	JKT string
	// BindRefresh binds a new refresh family to JKT too (public clients,
	// RFC 9449 §5).
	BindRefresh bool
}

// Tokens is what was minted.
type Tokens struct {
	AccessToken  string
	Claims       *AccessClaims
	ExpiresIn    int64 // seconds
	RefreshToken string
}

// Issue mints an access token (and a refresh token, starting a new
// session, when asked).
func (i *Issuer) Issue(ctx context.Context, g Grant) (Tokens, error) {
	now := i.core.Stamp() // µs, strictly increasing: revocations order exactly against it
	var family string
	if g.Refresh {
		var err error
		if family, err = newFamilyID(now); err != nil {
			return Tokens{}, err
		}
	}
	out, rec, err := i.mint(ctx, g, now, family, now)
	if err != nil {
		return Tokens{}, err
	}
	exclusive := i.cfg.SingleSession || g.Exclusive
	if rec != nil {
		// Bind before the token exists, so it is never usable unbound.
		if g.BindRefresh && g.JKT != "" {
			if err := i.proofStore.BindFamily(ctx, family, g.JKT, rec.ExpiresAt); err != nil {
				return Tokens{}, err
			}
		}
		// One live session: the new family ends the others in the same
		// transaction that stores it.
		if err := i.refreshStore.CreateRefresh(ctx, *rec, exclusive); err != nil {
			return Tokens{}, fmt.Errorf("storing refresh token: %w", err)
		}
	}
	if exclusive {
		if err := i.endOtherSessions(ctx, out.Claims, rec == nil, now); err != nil {
			return Tokens{}, err
		}
	}
	i.core.Emit(ctx, Event{Kind: EventIssued, Grant: grantOf(g), Subject: out.Claims.Subject, ClientID: out.Claims.ClientID,
		JTI: out.Claims.ID, Session: family, ExpiresAt: out.Claims.ExpiresAt.Time})
	return out, nil
}

// endOtherSessions revokes the subject's access tokens other than claims';
// with refreshToo, also its refresh-token families (a grant that started
// one has ended the others already).
func (i *Issuer) endOtherSessions(ctx context.Context, claims *AccessClaims, refreshToo bool, now time.Time) error {
	// Cut off just before this token: every older one goes, even one
	// issued in the same microsecond by a concurrent request; kept as long
	// as any key may verify a token issued until now.
	r := Revocation{Kind: RevokeSubject, Key: claims.Subject, Keep: claims.ID, At: now.Add(-time.Microsecond),
		ExpiresAt: i.core.RevocationExpiry(now)}
	if refreshToo {
		return i.core.EndSessions(ctx, r, "")
	}
	return i.core.Revoke(ctx, r)
}

// mint signs an access token for g and, when g.Refresh, makes a refresh
// token of family (begun at authTime) without storing it.
func (i *Issuer) mint(ctx context.Context, g Grant, now time.Time, family string, authTime time.Time) (Tokens, *RefreshRecord, error) {
	kr := i.core.keys.Load()
	alg := i.cfg.Alg
	if alg == "" {
		alg = cmp.Or(kr.currentAlg(now), AlgEdDSA)
	}
	key := kr.signer(alg, now)
	if key == nil || !key.CanSign() {
		return Tokens{}, nil, fmt.Errorf("no usable %s signing key", alg)
	}
	ttl := i.cfg.AccessTTL
	if g.AccessTTL > 0 {
		ttl = g.AccessTTL
	}
	// The key must keep verifying as long as the token lives, even after
	// it retires; sites register their lifetimes, so this rarely writes.
	if err := i.core.ensureLifetime(ctx, key, ttl); err != nil {
		return Tokens{}, nil, err
	}
	iss := i.cfg.Issuer
	jti, err := i.core.newJTI()
	if err != nil {
		return Tokens{}, nil, err
	}
	clientID := g.ClientID
	if clientID == "" {
		clientID = g.Principal.Name // RFC 9068 requires client_id; a principal acting alone is its own client
	}
	claims := &AccessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    iss,
			Subject:   g.Principal.Subject,
			Audience:  jwt.ClaimStrings{i.audience()},
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		ClientID:      clientID,
		Scope:         g.Scope,
		Roles:         g.Principal.Roles,
		SID:           family,
		IssuedAtMicro: now.UnixMicro(),
		Kind:          g.Principal.Kind,
	}
	if g.JKT != "" {
		claims.Cnf = &Confirmation{JKT: g.JKT}
	}
	tok := jwt.NewWithClaims(key.method, claims)
	tok.Header["typ"] = "at+jwt"
	tok.Header["kid"] = key.KID
	signed, err := tok.SignedString(key.private)
	if err != nil {
		return Tokens{}, nil, fmt.Errorf("signing access token: %w", err)
	}
	out := Tokens{AccessToken: signed, Claims: claims, ExpiresIn: int64(ttl / time.Second)}
	if !g.Refresh {
		return out, nil, nil
	}
	rt, err := NewRefreshToken(now)
	if err != nil {
		return Tokens{}, nil, err
	}
	out.RefreshToken = rt
	return out, &RefreshRecord{Hash: RefreshKey(rt), Family: family, Subject: g.Principal.Subject,
		Kind: g.Principal.Kind, Principal: g.Principal.Name, ClientID: g.ClientID, Scope: g.Scope,
		Issuer: iss, ExpiresAt: now.Add(i.cfg.RefreshTTL), AuthTime: authTime}, nil
}

// grantOf names the grant behind g (Issue: never a refresh), for metrics
// and the audit log.
func grantOf(g Grant) string {
	switch {
	case g.Principal.Kind == KindClient:
		return "client_credentials"
	case g.Principal.Kind == KindEntity:
		return "entity"
	}
	return "password" // users, and users of a user table
}

// Identifier is the issuer identifier: the `iss` of every token.
func (i *Issuer) Identifier() string { return i.cfg.Issuer }

// audience is the `aud` of access tokens: the configured one, else the issuer.
func (i *Issuer) audience() string { return cmp.Or(i.cfg.Audience, i.cfg.Issuer) }

// Refresh errors.
var (
	ErrRefreshInvalid = errors.New("refresh token is invalid, expired or revoked")
	ErrClientMismatch = errors.New("refresh token was issued to another client")
)

// RefreshRequest is a refresh-token grant (RFC 6749 §6).
type RefreshRequest struct {
	Token    string
	ClientID string // the authenticated client; "" if none
	Scope    string // "" keeps the grant's scope; else it may only narrow it
	// JKT is the thumbprint of the request's DPoP key ("" for none): the
	// new access token is bound to it, and a refresh token bound to a key
	// (RFC 9449 §5) is refused with ErrRefreshKey, unused, unless JKT is
	// that key.
	JKT string
}

// Refresh exchanges a refresh token for new tokens, rotating it in one
// store transaction. A token presented again within RefreshGrace of its
// exchange (a client that lost the response) gets a new pair, which
// supersedes the one it got first; any other reuse revokes the whole
// family.
func (i *Issuer) Refresh(ctx context.Context, req RefreshRequest) (Tokens, Principal, error) {
	token, clientID, scope, jkt := req.Token, req.ClientID, req.Scope, req.JKT
	now := i.core.Stamp() // the new access token's issue stamp
	hash := RefreshKey(token)
	// Read first to check the client and re-read the principal without
	// holding a lock; RotateRefresh re-decides everything that can change.
	rec, err := i.refreshStore.GetRefresh(ctx, hash)
	switch {
	case errors.Is(err, ErrNotFound):
		return Tokens{}, Principal{}, ErrRefreshInvalid
	case err != nil:
		return Tokens{}, Principal{}, fmt.Errorf("reading refresh token: %w", err)
	}
	// Before the token is used, so a thief without the key cannot burn
	// the owner's token.
	if err := checkFamilyKey(rec, jkt); err != nil {
		return Tokens{}, Principal{}, err
	}
	if !now.Before(rec.ExpiresAt) || rec.Issuer != i.cfg.Issuer {
		return Tokens{}, Principal{}, ErrRefreshInvalid
	}
	if rec.ClientID != clientID {
		// Another client holding this token means it leaked: end the grant.
		if err := i.revokeFamily(ctx, rec.Family, now); err != nil {
			return Tokens{}, Principal{}, err
		}
		return Tokens{}, Principal{}, ErrClientMismatch
	}
	p, err := i.refreshPrincipal(ctx, rec)
	if err != nil {
		return Tokens{}, Principal{}, err
	}
	granted := rec.Scope
	if strings.TrimSpace(scope) != "" { // RFC 6749 §6: may narrow, never widen
		var ok bool
		if granted, ok = GrantScope(scope, strings.Fields(rec.Scope)); !ok {
			return Tokens{}, p, ErrScopeWidened
		}
	}
	toks, next, err := i.mint(ctx, Grant{Principal: p, ClientID: rec.ClientID, Scope: granted, Refresh: true, JKT: jkt}, now, rec.Family, rec.AuthTime)
	if err != nil {
		return Tokens{}, p, err
	}
	// The new refresh token carries the grant, not this narrowing: a later
	// refresh may ask for anything the original grant had (RFC 6749 §6).
	next.Scope = rec.Scope
	_, err = i.refreshStore.RotateRefresh(ctx, hash, *next, now, i.refreshGrace())
	switch {
	case errors.Is(err, ErrRefreshReused):
		i.core.Emit(ctx, Event{Kind: EventRefreshReused, Subject: rec.Subject, ClientID: rec.ClientID, Session: rec.Family})
		// The store revoked the family's refresh tokens; now its access tokens.
		if rerr := i.core.Revoke(ctx, Revocation{Kind: RevokeSession, Key: rec.Family, ExpiresAt: i.core.RevocationExpiry(now)}); rerr != nil {
			return Tokens{}, p, rerr
		}
		return Tokens{}, p, err
	case errors.Is(err, ErrNotFound):
		return Tokens{}, p, ErrRefreshInvalid
	case err != nil:
		return Tokens{}, p, fmt.Errorf("rotating refresh token: %w", err)
	}
	if i.cfg.SingleSession {
		if err := i.endOtherSessions(ctx, toks.Claims, false, now); err != nil {
			return Tokens{}, p, err
		}
	}
	i.core.Emit(ctx, Event{Kind: EventRefreshed, Grant: "refresh_token", Subject: toks.Claims.Subject, ClientID: toks.Claims.ClientID,
		JTI: toks.Claims.ID, Session: rec.Family, ExpiresAt: toks.Claims.ExpiresAt.Time})
	return toks, p, nil
}

// refreshPrincipal re-reads the principal of a refresh token, so removed
// accounts and changed roles take effect.
func (i *Issuer) refreshPrincipal(ctx context.Context, rec RefreshRecord) (Principal, error) {
	var p Principal
	switch rec.Kind {
	case KindUser:
		u, err := i.lookupUser(ctx, rec.Principal)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %w", ErrRefreshInvalid, err)
		}
		p = UserPrincipal(u)
	case KindClient:
		c, err := i.LookupClient(ctx, rec.Principal)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %w", ErrRefreshInvalid, err)
		}
		p = ClientPrincipal(c)
	default:
		name, isTable := rec.Kind.Table()
		dir, ok := i.cfg.Directories[name]
		if !ok || !isTable {
			return Principal{}, ErrRefreshInvalid
		}
		u, err := dir.LookupUser(ctx, rec.Principal)
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %w", ErrRefreshInvalid, err)
		}
		p = DirectoryPrincipal(name, u)
	}
	if p.Subject != rec.Subject {
		return Principal{}, ErrRefreshInvalid
	}
	return p, nil
}

// DefaultRefreshGrace is how long a used refresh token may be retried.
const DefaultRefreshGrace = 30 * time.Second

func (i *Issuer) refreshGrace() time.Duration {
	switch {
	case i.cfg.RefreshGrace < 0:
		return 0
	case i.cfg.RefreshGrace == 0:
		return DefaultRefreshGrace
	}
	return i.cfg.RefreshGrace
}

// ErrScopeWidened says a refresh asked for a scope the grant did not have.
var ErrScopeWidened = errors.New("requested scope exceeds the original grant")

func (i *Issuer) revokeFamily(ctx context.Context, family string, now time.Time) error {
	if err := i.refreshStore.RevokeFamily(ctx, family); err != nil {
		return fmt.Errorf("revoking refresh family: %w", err)
	}
	return i.core.Revoke(ctx, Revocation{Kind: RevokeSession, Key: family, ExpiresAt: i.core.RevocationExpiry(now)})
}

// RevokeToken revokes an access or refresh token (RFC 7009). It reports
// false, nil for a token it does not know, which callers answer with 200
// all the same. clientID, when not "", must own the token.
func (i *Issuer) RevokeToken(ctx context.Context, token, clientID string) (bool, error) {
	now := i.core.now()
	if strings.HasPrefix(token, refreshPrefix) {
		rec, err := i.refreshStore.GetRefresh(ctx, RefreshKey(token))
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("looking up refresh token: %w", err)
		}
		if clientID != "" && rec.ClientID != clientID {
			return false, nil
		}
		return true, i.revokeFamily(ctx, rec.Family, now)
	}
	c, err := i.Verify(token)
	if err != nil {
		return false, nil
	}
	if clientID != "" && c.ClientID != clientID {
		return false, nil
	}
	return true, i.core.Revoke(ctx, Revocation{Kind: RevokeJTI, Key: c.ID, ExpiresAt: c.ExpiresAt.Add(Leeway)})
}

// RefreshInfo returns the record of a live (unused, unexpired, unrevoked)
// refresh token of this issuer, for introspection. An error means the
// store could not say.
func (i *Issuer) RefreshInfo(ctx context.Context, token string) (RefreshRecord, bool, error) {
	rec, err := i.refreshStore.GetRefresh(ctx, RefreshKey(token))
	if errors.Is(err, ErrNotFound) {
		return RefreshRecord{}, false, nil
	}
	if err != nil {
		return RefreshRecord{}, false, fmt.Errorf("looking up refresh token: %w", err)
	}
	if !rec.UsedAt.IsZero() || !i.core.now().Before(rec.ExpiresAt) || rec.Issuer != i.cfg.Issuer {
		return RefreshRecord{}, false, nil
	}
	return rec, true, nil
}
