package issuer

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Store errors that callers branch on.
var (
	// ErrStoreUnavailable says the store could not be reached (connection
	// refused or lost, database locked or shut down): the request may
	// succeed when retried, and says nothing about the caller's credentials.
	ErrStoreUnavailable = errors.New("the token store is unavailable")
	ErrNotFound         = errors.New("not found")
	ErrConflict         = errors.New("already exists")
	// ErrRefreshReused says a refresh token was presented after it had
	// already been exchanged: the sign of a stolen token.
	ErrRefreshReused = errors.New("refresh token already used")
)

// Store persists everything an issuer needs: one role interface per
// concern (as Ory Fosite splits its storage), so each part of the issuer
// and each tool names only what it uses. Implementations must be safe for
// concurrent use and for several processes sharing one database; every
// method that decides a race (RotateRefresh, AddKey, UseProofID) decides it
// in the database. The browser flows add their codes and sessions as roles
// of their own.
type Store interface {
	UserStore
	ClientStore
	EntityStore
	SecretStore
	KeyStore
	RefreshStore
	RevocationStore
	SettingStore
	DPoPStore
	AuthCodeStore
	SessionStore
	ConsentStore
	Close() error
}

// UserStore keeps the gateway's own users.
type UserStore interface {
	PutUser(ctx context.Context, u User) error // insert or replace
	// RehashUser replaces user name's password hash with newHash if it is
	// still oldHash (a rehash to the current parameters after a sign-in:
	// a password changed meanwhile wins); no such row is no error.
	RehashUser(ctx context.Context, name, oldHash, newHash string) error
	GetUser(ctx context.Context, name string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	DeleteUser(ctx context.Context, name string) error
}

// ClientStore keeps OAuth clients.
type ClientStore interface {
	PutClient(ctx context.Context, c Client) error // insert or replace
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// EntityStore keeps the Token Service's entities.
type EntityStore interface {
	PutEntity(ctx context.Context, e Entity) error // insert or replace
	GetEntity(ctx context.Context, id string) (Entity, error)
	ListEntities(ctx context.Context) ([]Entity, error)
	// DeleteEntity removes the entity and its secrets.
	DeleteEntity(ctx context.Context, id string) error
}

// SecretStore keeps entities' generated secrets.
type SecretStore interface {
	// CurrentSecret returns the entity's current (not superseded) secret.
	CurrentSecret(ctx context.Context, entityID string) (EntitySecret, error)
	// AddSecret stores s as the entity's current secret. With replace
	// false it fails with ErrConflict if the entity already has one; with
	// replace true the current one is superseded and stays usable until
	// usableUntil, in the same transaction: the entity always has exactly
	// the old or the new secret, never neither.
	AddSecret(ctx context.Context, s EntitySecret, replace bool, usableUntil time.Time) error
	// UsableSecrets lists the entity's secrets that may still yield tokens at now.
	UsableSecrets(ctx context.Context, entityID string, now time.Time) ([]EntitySecret, error)
}

// KeyStore keeps signing keys.
type KeyStore interface {
	// AddKey inserts a signing key; ErrConflict if (Alg, Seq) is taken,
	// which is how concurrent rotations elect exactly one winner.
	AddKey(ctx context.Context, k KeyRecord) error
	ListKeys(ctx context.Context) ([]KeyRecord, error)
	DeleteKey(ctx context.Context, kid string) error
	// RaiseKeyLifetime sets the key's MaxTTL to d unless it is already
	// longer: a site that signs longer-lived tokens with it needs that.
	RaiseKeyLifetime(ctx context.Context, kid string, d time.Duration) error
}

// RefreshStore keeps refresh tokens, by family (one family a grant).
type RefreshStore interface {
	// CreateRefresh stores a refresh token that starts a new family. With
	// exclusive, the same transaction ends every other session of the
	// subject, as EndSessions(r.Subject, r.AuthTime, r.Family) does.
	CreateRefresh(ctx context.Context, r RefreshRecord, exclusive bool) error
	// GetRefresh returns a token, used or not, with its family's DPoP
	// binding (JKT); ErrNotFound if it is unknown, revoked, or its session
	// was ended. (A store may forget a session's end once the session has
	// no unused token; a used token outliving that, which takes a lowered
	// refresh lifetime, is then returned as used, and presenting it is a
	// reuse.)
	GetRefresh(ctx context.Context, hash string) (RefreshRecord, error)
	// RotateRefresh exchanges the token oldHash for next (same family)
	// atomically (one transaction, or one statement) and returns the old
	// record as it was before:
	//   - unused, live: it becomes used and next is stored;
	//   - used less than grace ago and its successor is still unused: the
	//     successor is superseded (it now counts as used) and next replaces
	//     it, so a client whose response was lost can retry, and the family
	//     never has two live tokens;
	//   - used otherwise (or a superseded token): the whole family is
	//     revoked in the same transaction; ErrRefreshReused with the record;
	//   - unknown, expired at now, revoked or ended: ErrNotFound.
	RotateRefresh(ctx context.Context, oldHash string, next RefreshRecord, now time.Time, grace time.Duration) (RefreshRecord, error)
	RevokeFamily(ctx context.Context, family string) error
	// EndSessions ends every refresh-token family of subject that began at
	// or before at, except keepFamily (""): their tokens are refused from
	// then on by every process sharing the store.
	EndSessions(ctx context.Context, subject string, at time.Time, keepFamily string) error
}

// RevocationStore keeps the revocation list every process follows.
type RevocationStore interface {
	// AddRevocation records a revoked access token, session or subject.
	AddRevocation(ctx context.Context, r Revocation) error
	// RevocationsSince lists the revocations committed since cursor (0:
	// all) and the cursor for the next call. It may repeat revocations an
	// earlier call returned (applying one twice is harmless) but never
	// skips one, whatever order concurrent transactions commit in.
	RevocationsSince(ctx context.Context, cursor int64) (rs []Revocation, next int64, err error)
	// PurgeExpired drops refresh tokens and revocations that can no longer matter.
	PurgeExpired(ctx context.Context, now time.Time) error
}

// SettingStore keeps named values decided once per store.
type SettingStore interface {
	// Setting returns the named setting, storing create()'s value first if
	// there is none; concurrent callers all see the first value stored.
	Setting(ctx context.Context, name string, create func() (string, error)) (string, error)
}

// ChangeWatcher is implemented by stores that can tell, faster than
// polling every SyncInterval, that another process changed them.
type ChangeWatcher interface {
	// WatchChanges calls changed whenever revocations (and, when keys is
	// true, signing keys) may have changed, until ctx ends. changed must
	// not block. After losing and regaining its source of news it calls
	// changed(true), since it may have missed some; the first time it has
	// a source of news counts too, so a change committed between the
	// caller's last load and the watch starting is reported.
	WatchChanges(ctx context.Context, changed func(keys bool))
}

// IsUnavailable reports whether err says the store could not be reached.
func IsUnavailable(err error) bool { return errors.Is(err, ErrStoreUnavailable) }

// User is a person who signs in with a password.
type User struct {
	Name         string
	ID           string // stable subject; defaults to Name
	PasswordHash string // argon2id PHC or bcrypt
	Roles        []string
	Scopes       []string // scopes the user may be granted
	Email        string   // set by the operator, so verified
	DisplayName  string   // the OpenID Connect name claim
}

// Subject is the `sub` of a user's tokens.
func (u User) Subject() string {
	if u.ID != "" {
		return u.ID
	}
	return u.Name
}

// Client is an OAuth 2.0 confidential client.
type Client struct {
	ID string
	// SecretHash is a SecretHasher hash for generated secrets, or an
	// argon2id/bcrypt hash for secrets declared in configuration.
	SecretHash string
	Roles      []string
	Scopes     []string
	// Grants limits the grant types the client may use; empty allows all.
	Grants []string
	// Entity marks an entity authenticated through the client route; never stored.
	Entity bool

	// Public marks a client without a secret (a browser or native app):
	// it authenticates with PKCE alone.
	Public bool
	// RedirectURIs are where /authorize may send the user back, matched
	// exactly (a loopback URI on any port, RFC 8252 §7.3).
	RedirectURIs []string
	// PostLogoutRedirectURIs are where logout may send the user.
	PostLogoutRedirectURIs []string
	// PKCEOptional lets a confidential client leave PKCE out.
	PKCEOptional bool
	// Consent asks the user's consent before the client gets a code.
	Consent bool
}

// AllowsGrant reports whether the client may use grant type g.
func (c Client) AllowsGrant(g string) bool {
	return len(c.Grants) == 0 || slices.Contains(c.Grants, g)
}

// Entity is a machine identity whose secret the Token Service routes manage.
type Entity struct {
	ID    string
	Roles []string
}

// EntitySecret is one generated secret of an entity.
type EntitySecret struct {
	EntityID    string
	Hash        string // SecretHasher hash
	Sealed      string // the secret, sealed under the secrets key, so read can return it
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsableUntil time.Time // ExpiresAt, or the end of the grace period once superseded
	Superseded  bool
}

// KeyRecord is a signing key as stored.
type KeyRecord struct {
	KID        string
	Alg        string
	Seq        int64  // per algorithm; the highest active one signs
	Private    string // sealed under the master key (or marked plain)
	Public     string // base64 DER (PKIX); empty for HMAC keys
	CreatedAt  time.Time
	ActivateAt time.Time // signs from then on; published in JWKS before
	// MaxTTL bounds the lifetime of every token the key signs, so a
	// retired key verifies until the last of them expires.
	MaxTTL time.Duration
}

// RefreshRecord is a refresh token as stored: only its key is kept, the
// token's issue time and part of its SHA-256 (see refreshPrefix).
type RefreshRecord struct {
	Hash      string
	Family    string // every token rotated from one grant shares it
	Subject   string
	Kind      PrincipalKind
	Principal string // user name or client id, to re-read roles on refresh
	ClientID  string // client the token was issued to, "" for none
	Scope     string
	Issuer    string // the `iss` it was issued under; only redeemable there
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
	// AuthTime is when the family began (the sign-in); every token rotated
	// from it keeps it, so ending a subject's sessions at some time ends
	// the families that began before, whatever token they are at.
	AuthTime time.Time
	// JKT is the DPoP key thumbprint the family is bound to ("" when
	// unbound), read with the token so a refresh checks the binding
	// without another query. Only reads fill it; BindFamily sets it.
	JKT string
}

// Revocation kinds.
const (
	RevokeJTI     = "jti" // one access token
	RevokeSession = "sid" // every access token of a refresh family
	RevokeSubject = "sub" // every token of Key issued at or before At (µs), except Keep
)

// Revocation says some access tokens must no longer be accepted.
type Revocation struct {
	ID        int64
	Kind      string
	Key       string
	Keep      string    // RevokeSubject: the jti that stays valid
	At        time.Time // RevokeSubject: cut-off issue time
	ExpiresAt time.Time // when the entry can be forgotten
}

// ErrCodeReused says an authorization code was presented after it had been
// redeemed: what the first redemption issued must be revoked.
var ErrCodeReused = errors.New("authorization code already used")

// AuthCodeStore keeps pending authorization codes (RFC 6749 §4.1.2) by the
// hash of the code, so any instance on the store redeems a code another
// issued.
type AuthCodeStore interface {
	PutCode(ctx context.Context, c AuthCode) error
	// RedeemCode marks the code used at now and returns it. A code used
	// before is returned with ErrCodeReused; an unknown or expired one is
	// ErrNotFound. The database decides, so one code is redeemed once.
	RedeemCode(ctx context.Context, hash string, now time.Time) (AuthCode, error)
}

// AuthCode is an authorization code as stored, with everything its
// redemption is bound to.
type AuthCode struct {
	Hash        string // SHA-256 of the code; the code is never stored
	ClientID    string
	RedirectURI string
	Challenge   string // the PKCE S256 challenge; "" when the client sent none
	Scope       string
	Nonce       string
	Session     string // hash of the SSO session the code came from
	// Family is the refresh family the redemption starts (its tokens'
	// sid), chosen when the code is issued: a replay revokes it.
	Family    string
	Subject   string
	Kind      PrincipalKind
	Principal string // user name, to re-read roles at redemption
	AuthTime  time.Time
	AMR       []string // authentication methods, RFC 8176 ("pwd")
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// SessionStore keeps single sign-on sessions by the hash of their id, so
// every instance on the store knows them.
type SessionStore interface {
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a live session: ErrNotFound when it is unknown,
	// ended, or expired at now (idle or absolute).
	GetSession(ctx context.Context, hash string, now time.Time) (Session, error)
	// TouchSession slides the session's idle expiry to idleUntil, never
	// past its absolute expiry.
	TouchSession(ctx context.Context, hash string, idleUntil time.Time) error
	// EndSession ends one session (logout); an unknown one is no error.
	EndSession(ctx context.Context, hash string) error
	// EndSubjectSessions ends every session of subject begun at or before at.
	EndSubjectSessions(ctx context.Context, subject string, at time.Time) error
}

// Session is a single sign-on session as stored.
type Session struct {
	Hash      string // SHA-256 of the session id the cookie carries
	Subject   string
	Kind      PrincipalKind
	Principal string
	AuthTime  time.Time
	AMR       []string
	IdleUntil time.Time // slides with use
	ExpiresAt time.Time // absolute
}

// ConsentStore keeps the users' consent decisions, per user and client.
type ConsentStore interface {
	PutConsent(ctx context.Context, c Consent) error // insert or replace
	GetConsent(ctx context.Context, subject, clientID string) (Consent, error)
	ListConsents(ctx context.Context, subject string) ([]Consent, error)
	// DeleteConsent forgets subject's consent to clientID ("": to every
	// client) and says how many it forgot.
	DeleteConsent(ctx context.Context, subject, clientID string) (int, error)
}

// Consent is a user's decision to let a client have scopes.
type Consent struct {
	Subject   string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}
