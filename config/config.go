// Package config holds the JSON configuration of the tokengate handler. It
// lives apart from the handler so that the Caddyfile parser can fill it
// without importing the module that registers the parser.
//
// The field comments here are the reference for what each option does and
// its default; the JSON names are the field tags. The Caddyfile spelling of
// every field is in package caddyfile's documentation (caddyfile/doc.go);
// a test there fails when a field has none, and one here when a field has
// no comment. Durations are caddy.Duration: a string in Caddy's units plus
// d for days ("15m", "90d"), or an integer of nanoseconds.
package config

import "github.com/caddyserver/caddy/v2"

// Gateway is the configuration of one tokengate handler.
type Gateway struct {
	// The `iss` of issued tokens (and of the metadata, introspection and
	// every compatibility route), and the issuer tokens must have. Never
	// taken from a request's Host. Default: derived from the site address
	// when Caddy loads the config: https or http as the site serves TLS or
	// not, its one host name, and its port unless it is the scheme's
	// default (api.example.com gives https://api.example.com,
	// http://localhost:8080 gives http://localhost:8080). So two sites on one
	// store refuse each other's tokens (401 "wrong issuer"). A site with no
	// single host name cannot be derived from and Caddy refuses to load it
	// without an issuer: a catch-all address such as :8080, several names,
	// a wildcard or placeholder host, listeners on several ports, a Unix
	// socket. Set it too for a site behind another proxy that clients reach
	// under another name, and when several sites or a validate-only site
	// share tokens.
	Issuer string `json:"issuer,omitempty"`

	// The `aud` put in access tokens and required of them. Default: the issuer.
	Audience string `json:"audience,omitempty"`

	// Where users, clients, keys and tokens are kept. Default: SQLite at
	// tokengate/tokengate.db in Caddy's data directory. Sites naming the
	// same store share one issuer, and it survives `caddy reload`.
	Store *Store `json:"store,omitempty"`

	// 32 random bytes as 64 hex digits or base64 (`openssl rand -hex 32`);
	// seals private signing keys and entity secrets at rest (AES-256-GCM).
	// Placeholders such as {env.TOKENGATE_MASTER_KEY} are expanded; one
	// that expands to nothing is refused at load. Sites and instances
	// sharing a store must use the same key. Default: a key generated once
	// into tokengate/master.key in Caddy's data directory (see
	// docs/operations.md, "Secrets at rest").
	MasterKey string `json:"master_key,omitempty"`

	// EdDSA, ES256, RS256 or HS256 (HS256 keys are never published).
	// Default: the algorithm of the most recently activated key in the
	// store (`caddy tokengate keys rotate --alg` switches it), EdDSA for a
	// new store.
	SigningAlg string `json:"signing_alg,omitempty"`

	// How often signing keys rotate. Default 720h; 0 uses the default.
	KeyRotation caddy.Duration `json:"key_rotation,omitempty"`

	// Lifetime of access tokens. Default 15m.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`

	// Lifetime of refresh tokens. Default 720h.
	RefreshTTL caddy.Duration `json:"refresh_ttl,omitempty"`

	// How long after a refresh token was exchanged it may be presented
	// again and still get a new pair, for a client whose response was lost.
	// The retry's pair supersedes the first: the family never has two live
	// refresh tokens, and if the superseded one is ever presented the whole
	// family is revoked. So a thief who replays a used token within the
	// grace gets a pair, but the next refresh by the rightful client ends
	// the session for both; keep it short. Default 30s; negative (`off` in
	// the Caddyfile) turns retries off: any reuse revokes the family.
	RefreshGrace caddy.Duration `json:"refresh_grace,omitempty"`

	// Lifetime of a new entity secret when the request names none
	// (secretExpiryDays). Default 90 days.
	SecretTTL caddy.Duration `json:"secret_ttl,omitempty"`

	// When set, every new session of a subject, on every route, ends its
	// others: the older access tokens and refresh-token families stop
	// working.
	SingleSession bool `json:"single_session,omitempty"`

	// Users who sign in with a password (grant_type=password and the
	// routes of the other dialects); more can be added with
	// `caddy tokengate user add`.
	Users []User `json:"users,omitempty"`

	// OAuth 2.0 clients (grant_type=client_credentials, and client
	// authentication on the other grants); more can be added with
	// `caddy tokengate client add`, whose generated secrets are checked by
	// a keyed HMAC, faster than a password hash.
	Clients []Client `json:"clients,omitempty"`

	// Entities (machine identities) whose secrets the Token Service
	// routes manage; more can be added with `caddy tokengate entity add`.
	Entities []Entity `json:"entities,omitempty"`

	// How long a reset entity secret keeps working beside the new one.
	// Default 0: it stops at once.
	SecretGrace caddy.Duration `json:"secret_grace,omitempty"`

	// The longest lifetime secretExpiryDays may ask for. Default 365 days.
	SecretMaxTTL caddy.Duration `json:"secret_max_ttl,omitempty"`

	// Roles allowed to read and reset entity secrets, held by a principal
	// of one of EntityAdminKinds. Default ["admin"].
	EntityAdminRoles []string `json:"entity_admin_roles,omitempty"`

	// Principal kinds whose EntityAdminRoles count: "user" (gateway
	// users), "client", "entity", "table:<name>" (users of that
	// user_table). Default ["user"]: a client, an entity or a table user
	// with a role called admin does not manage entity secrets. The list
	// replaces the default, so keep "user" in it.
	EntityAdminKinds []string `json:"entity_admin_kinds,omitempty"`

	// When true, the Token Service routes (/user/..., /entity/...) are not
	// served: such requests go to the guard and the upstream like any other.
	DisableTokenService bool `json:"disable_token_service,omitempty"`

	// Application users in existing SQL tables, for the apimaker route's
	// AM_DB requests (docs/compat.md).
	UserTables []UserTable `json:"user_tables,omitempty"`

	// Compatibility routes to mount: apimaker, eventhos, owin.
	Endpoints []Endpoint `json:"endpoints,omitempty"`

	// When true, the site only validates tokens: /token, the Token Service
	// and the other issuing routes are not served (the guard still runs).
	DisableIssuing bool `json:"disable_issuing,omitempty"`

	// Paths that need no token. Patterns are written as for Caddy's path
	// matcher (/health, /public/*, *.css) and match the decoded canonical
	// path case-sensitively, so an allow rule never covers more spellings
	// than it names.
	Allow []string `json:"allow,omitempty"`

	// Role, scope or DPoP requirements on paths. They match the decoded
	// canonical path case-insensitively, so /ADMIN/x cannot dodge a
	// /admin/* rule. A token lacking a required role or scope gets 403
	// insufficient_scope; every requirement whose path matches must pass.
	Require []Requirement `json:"require,omitempty"`

	// How request paths are read. Before any rule or route is matched, the
	// path is made canonical (unreserved escapes decoded, dot segments
	// removed, // merged) and that path is what is forwarded; paths that
	// servers read differently are refused with 400. Paths relaxes those
	// refusals.
	Paths *PathPolicy `json:"paths,omitempty"`

	// Request headers set from token claims for the upstream. Any copy the
	// caller sent is removed first, on every request.
	ForwardHeaders []ForwardHeader `json:"forward_headers,omitempty"`

	// The realm of WWW-Authenticate challenges, on the guard and on every
	// route. Default "tokengate".
	Realm string `json:"realm,omitempty"`

	// DPoP (RFC 9449) policy. DPoP is always accepted: a token request
	// with a DPoP proof gets a token bound to the proof's key. This makes
	// it required, tunes the proof checks and turns on server nonces.
	DPoP *DPoP `json:"dpop,omitempty"`

	// Limits on failed sign-ins (every route that checks a password or
	// secret). Default: on, with the defaults of Throttle's fields.
	Throttle *Throttle `json:"throttle,omitempty"`

	// How many password hashes (argon2id, bcrypt) may be computed at once.
	// Default: half the CPUs, at least 1. Shared by every site on the same
	// store; the last site loaded sets it.
	HashConcurrency int `json:"hash_concurrency,omitempty"`

	// How many sign-ins may wait for a hashing slot; the rest get 503 with
	// Retry-After at once. Default: 4 per slot. Memory for argon2id is at
	// most hash_concurrency × its m (19 MiB for new hashes).
	HashQueue int `json:"hash_queue,omitempty"`

	// Browser sign-in: the authorization code flow with PKCE at
	// /authorize, the login and consent pages and the single sign-on
	// session, and grant_type authorization_code at /token. Default: off.
	// Clients with redirect URIs need it.
	Login *Login `json:"login,omitempty"`
}

// Login turns on browser sign-in and tunes its session and pages.
type Login struct {
	// Idle lifetime of the single sign-on session: each use extends it by
	// this much, up to SessionMaxTTL. Default 12h.
	SessionTTL caddy.Duration `json:"session_ttl,omitempty"`
	// Absolute lifetime of the single sign-on session, from the sign-in;
	// not shorter than SessionTTL. Default 7d.
	SessionMaxTTL caddy.Duration `json:"session_max_ttl,omitempty"`
	// The name shown on the login, consent and error pages (escaped, never
	// read as HTML). Default: the issuer's host name.
	Title string `json:"title,omitempty"`
	// A directory of the operator's own page templates (html/template):
	// layout.html, login.html, consent.html and error.html, each used in
	// place of the built-in one when present. It must exist when Caddy
	// loads the config, and every template is parsed and tried then.
	// Default: the built-in pages.
	Templates string `json:"templates,omitempty"`
}

// DPoP is the site's DPoP policy.
type DPoP struct {
	// When true, every token request needs a DPoP proof and the guard
	// refuses tokens not bound to a DPoP key.
	Required bool `json:"required,omitempty"`
	// Clients that must send a DPoP proof to /token (and so only ever
	// hold DPoP-bound tokens).
	Clients []string `json:"clients,omitempty"`
	// When true, proofs must carry a server nonce, handed out in the
	// DPoP-Nonce header with a use_dpop_nonce error (RFC 9449 §8, §9).
	// Nonces are stateless: instances sharing a store accept each other's.
	Nonce bool `json:"nonce,omitempty"`
	// How far a proof's iat may be from the server's clock, either way;
	// also how long its jti is remembered against replay. Default 60s.
	Window caddy.Duration `json:"window,omitempty"`
	// Accepted proof algorithms. Default ES256 ES384 EdDSA Ed25519 RS256
	// PS256 (dpop.DefaultAlgs); ES512 RS384 RS512 PS384 PS512 may be added.
	// `none` and HMAC are never accepted.
	Algs []string `json:"algs,omitempty"`
}

// Throttle limits failed sign-ins by client IP (as Caddy determines it:
// behind trusted_proxies, from the forwarding header, so set
// trusted_proxies_strict too or the caller picks its IP) and by account.
// After its free failures a key waits Backoff, doubling with every further
// failure up to MaxBackoff; a 429 with Retry-After answers, before any hash
// is computed. A success from an IP resets the account's count there. The
// counts are kept in memory, per Caddy process.
type Throttle struct {
	// Turns throttling off.
	Disabled bool `json:"disabled,omitempty"`
	// Free failures per client IP, over all accounts. Default 30.
	PerIP int `json:"per_ip,omitempty"`
	// Free failures per account from one client IP. Default 5.
	PerAccountIP int `json:"per_account_ip,omitempty"`
	// Free failures per account from IPs it never signed in from; past
	// them such IPs wait at most AccountMaxBackoff, while IPs the account
	// signed in from recently are never held back by it. Default 20.
	PerAccount int `json:"per_account,omitempty"`
	// First wait. Default 1s.
	Backoff caddy.Duration `json:"backoff,omitempty"`
	// Longest wait per IP and per account from one IP. Default 15m.
	MaxBackoff caddy.Duration `json:"max_backoff,omitempty"`
	// Longest wait the per-account limit imposes. Default 1m.
	AccountMaxBackoff caddy.Duration `json:"account_max_backoff,omitempty"`
	// Failures are forgotten after this long without a new one. Default 15m.
	Forget caddy.Duration `json:"forget,omitempty"`
	// How long a sign-in lets its IP skip the per-account limit. Default 30d.
	Trust caddy.Duration `json:"trust,omitempty"`
	// Entries in each of the three fixed-size tables (about 32 bytes each).
	// Default 65536.
	TableSize int `json:"table_size,omitempty"`
}

// PathPolicy relaxes the guard's path refusals for upstreams that need such
// paths. Each relaxation lets through paths that some servers read
// differently from the rules; docs/configuration.md ("How the guard
// decides") says what each one risks.
type PathPolicy struct {
	// Refusals to lift: semicolon (; and %3B), backslash (\ and %5C),
	// encoded_slash (%2F), encoded_dot (%2E is decoded instead of refused),
	// trailing_dot (segments ending in a dot or space), double_encoding
	// (%25 followed by two hex digits), invalid_utf8, lookalike (non-ASCII
	// characters that case-map or normalise to ASCII). Control characters
	// are always refused.
	Lenient []string `json:"lenient,omitempty"`
}

// Store names a database.
type Store struct {
	// "sqlite" or "postgres" (PostgreSQL 13 or newer).
	Driver string `json:"driver"`
	// A file path for sqlite, a connection string for postgres; not empty.
	// Placeholders are expanded. A relative SQLite path is relative to the
	// working directory, in Caddy and in `caddy tokengate` alike (Caddy logs
	// the full path); ":memory:" is a store lost when Caddy stops. A
	// PostgreSQL DSN may set pool_max_conns (default 16): the connections
	// each Caddy process keeps open and reuses.
	DSN string `json:"dsn"`
}

// User is a user declared in the configuration.
type User struct {
	// The username, and the subject (sub) of the user's tokens; no ':'.
	Name string `json:"name"`
	// argon2id PHC string (`caddy tokengate hash-password`) or bcrypt hash
	// (`caddy hash-password`); a plain-text password is refused at load.
	PasswordHash string `json:"password_hash"`
	// Roles put in the user's tokens (the roles claim).
	Roles []string `json:"roles,omitempty"`
	// The scopes the user may be granted.
	Scopes []string `json:"scopes,omitempty"`
	// The user's email address, set by the operator and so taken as
	// verified (the OpenID Connect email claim). Default: none.
	Email string `json:"email,omitempty"`
	// The user's display name (the OpenID Connect name claim; `name` in
	// the Caddyfile, as Name is the username). Default: none.
	DisplayName string `json:"display_name,omitempty"`
}

// Client is a client declared in the configuration.
type Client struct {
	// The client_id, and the subject of its client_credentials tokens; no ':'.
	ID string `json:"id"`
	// argon2id PHC string or bcrypt hash of the client secret; empty, and
	// only empty, for a public client.
	SecretHash string `json:"secret_hash,omitempty"`
	// Roles put in the client's client_credentials tokens.
	Roles []string `json:"roles,omitempty"`
	// The scopes the client may be granted.
	Scopes []string `json:"scopes,omitempty"`
	// Grant types the client may use (others get unauthorized_client);
	// empty allows all.
	Grants []string `json:"grants,omitempty"`
	// Marks a client that holds no secret (a browser or native app, RFC
	// 6749 §2.1): it names itself with client_id alone and must use PKCE.
	Public bool `json:"public,omitempty"`
	// Where /authorize may send the user back with a code, matched as
	// exact strings (RFC 9700 §4.1.3), except that an http loopback URI
	// matches on any port (RFC 8252 §7.3). Each is an absolute https URI,
	// or http on a loopback host (localhost, 127.0.0.1, [::1]), without a
	// fragment or user info. Needs the login block.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// Where logout may send the user afterwards, spelled like
	// RedirectURIs and matched exactly. Needs redirect URIs.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// Lets a confidential client leave PKCE out of its authorization
	// requests (`pkce optional`); one that sends a challenge still needs
	// the verifier. Refused on a public client. Default: PKCE S256 is
	// required.
	PKCEOptional bool `json:"pkce_optional,omitempty"`
	// Asks the user's consent, on a page naming the client and the scopes,
	// before the client gets a code; the decision is remembered per user
	// and client, and asked again for more scopes. Needs redirect URIs.
	Consent bool `json:"consent,omitempty"`
}

// Entity is an entity declared in the configuration.
type Entity struct {
	// The entity id (entityId in Token Service requests); no ':'.
	ID string `json:"id"`
	// Roles put in the entity's tokens.
	Roles []string `json:"roles,omitempty"`
}

// UserTable names a table of application users and its columns. Only
// these identifiers ever reach SQL; they must be plain identifiers.
type UserTable struct {
	// What AM_DB requests call it (their `instance`), and the prefix of
	// its users' subjects (<name>:<id>); no ':'.
	Name string `json:"name"`
	// "sqlite" or "postgres".
	Driver string `json:"driver"`
	// A file path for sqlite (opened read-only), a connection string for
	// postgres. Placeholders are expanded.
	DSN string `json:"dsn"`
	// What AM_DB requests call the database. Default: the SQLite file name
	// without extension, or the PostgreSQL database name.
	Database string `json:"database,omitempty"`
	// The table (`collection` in AM_DB requests); schema.table for postgres.
	Table string `json:"table"`
	// The column AM_DB requests sign in by (their usernameColumn).
	UsernameColumn string `json:"username_column"`
	// Holds bcrypt or argon2id hashes.
	PasswordColumn string `json:"password_column"`
	// Optional: the subject of tokens (default: the username).
	IDColumn string `json:"id_column,omitempty"`
	// Optional: roles, comma- or space-separated.
	RolesColumn string `json:"roles_column,omitempty"`
}

// Endpoint mounts a compatibility route.
type Endpoint struct {
	// apimaker, eventhos or owin.
	Name string `json:"name"`
	// Default: /api/system-api/user-path/token, /auth/token, /Token.
	Path string `json:"path,omitempty"`
	// apimaker only: require a bearer token with one of these roles (the
	// seed's authTokenInfo setting). Default: the route is public.
	RequireRoles []string `json:"require_roles,omitempty"`
	// Lifetime of tokens from this route; default: the site's access_ttl.
	AccessTTL caddy.Duration `json:"access_ttl,omitempty"`
}

// Requirement says requests matching Path need one of Values, or (kind
// "dpop") a DPoP-bound token presented with its proof.
type Requirement struct {
	// Patterns written as for Caddy's path matcher (/admin/*), matched
	// case-insensitively against the decoded canonical path.
	Path []string `json:"path"`
	// "role", "scope" or "dpop". A token lacking the role or scope gets
	// 403 insufficient_scope; where dpop is required, a bearer token gets
	// 401 with a DPoP challenge.
	Kind string `json:"kind"`
	// The token needs at least one of these; none for "dpop".
	Values []string `json:"values,omitempty"`
}

// ForwardHeader sets request header Header to the value of claim Claim.
type ForwardHeader struct {
	// The header the upstream receives; any copy the caller sent is
	// removed. A hop-by-hop header (Keep-Alive, Upgrade, …) is refused.
	Header string `json:"header"`
	// Claim is one of sub, iss, aud, exp, iat, jti, client_id, scope,
	// roles, sid, or kind (the principal's kind: user, client, entity or
	// table:<name>). Lists are comma-separated.
	Claim string `json:"claim"`
}
