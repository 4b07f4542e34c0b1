// Package tokengate is a Caddy module that makes a site a token gateway:
// it issues and rotates credentials on its own routes and checks the bearer
// token of every other request before the next handler (normally
// reverse_proxy) sees it.
package tokengate

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/apimaker"
	tgcaddyfile "github.com/tokengate/caddy-tokengate/caddyfile"
	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/eventhos"
	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
	"github.com/tokengate/caddy-tokengate/internal/leaf/canonpath"
	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/usertable"
	"github.com/tokengate/caddy-tokengate/login"
	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/owin"
	"github.com/tokengate/caddy-tokengate/tokenservice"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("tokengate", parseCaddyfile)
	// Guard before anything that answers or proxies, like basic_auth.
	httpcaddyfile.RegisterDirectiveOrder("tokengate", httpcaddyfile.After, "basic_auth")
}

// Handler is the tokengate HTTP handler. Its JSON configuration is
// config.Gateway; see UnmarshalCaddyfile for the Caddyfile syntax.
type Handler struct {
	config.Gateway

	log      *zap.Logger
	iss      string // the configured issuer, or the one derived from the site address
	app      *App   // owns core
	core     *issuer.Core
	issuer   *issuer.Issuer
	tables   []*usertable.Table
	routes   map[string]httpx.Route
	prefixes []string // owned by the gateway: unknown paths under them are 404
	// forwarded holds the canonical names of the forward_header headers.
	forwarded map[string]bool
	allow     *canonpath.Matcher // nil: every path needs a token
	require   []requirement
	lenient   canonpath.Relax // path refusals lifted by the configuration
	realm     string          // of WWW-Authenticate challenges
	dpop      *dpop.Verifier
	tokens    *tokenauth.Checker // the one check of a presented access token
	alg       string             // signing_alg; "": follow the store's newest key (`keys rotate --alg`)
	// login is the checked login block with its defaults filled in (the
	// title, the session lifetimes): what the login routes are built
	// from, with issuer, iss, realm and log. nil: no browser sign-in.
	login *config.Login
	// loginPages are the operator's templates (login.templates), parsed
	// and tried at load; nil: the built-in pages.
	loginPages *login.Pages

	// Set by Provision; the tokengate app calls start, which finishes
	// started (with the error if the site could not start).
	ctx     caddy.Context
	started *startup
	// standalone starts at once in Provision, on an App of its own: for
	// benchmarks that provision a handler outside a Caddy config.
	standalone bool
	metrics    *metrics
	// release undoes this configuration's registrations on the shared
	// Core (token lifetime, rotation schedule) when it is replaced; set in
	// start, run in Cleanup.
	release []func()
}

type requirement struct {
	config.Requirement
	match *canonpath.Matcher
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.tokengate",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Defaults for unset durations.
const (
	DefaultAccessTTL    = 15 * time.Minute
	DefaultRefreshTTL   = 720 * time.Hour
	DefaultKeyRotation  = 720 * time.Hour
	DefaultSecretTTL    = 90 * 24 * time.Hour
	DefaultSecretMaxTTL = 365 * 24 * time.Hour
)

// DefaultEntityAdminRole may read and reset entity secrets when
// entity_admin_role is not set; it counts only on gateway users unless
// entity_admin_kind says otherwise.
const DefaultEntityAdminRole = "admin"

// Provision checks the configuration and prepares the guard; nothing is
// written. The store is opened (and keys generated) when the tokengate
// app starts, so `caddy validate` has no side effects.
func (h *Handler) Provision(ctx caddy.Context) error {
	if h.log == nil { // tests may set their own
		h.log = ctx.Logger()
	}
	h.realm = cmp.Or(h.Realm, httpx.Realm)
	h.iss = strings.TrimSuffix(h.Issuer, "/")
	if h.iss == "" {
		var err error
		if h.iss, err = siteIssuer(ctx); err != nil {
			return err
		}
	}
	if err := h.checkNames(); err != nil {
		return err
	}
	if err := h.provisionLogin(); err != nil {
		return err
	}
	h.warnSharedSubjects()
	h.warnLenientProxies(ctx)
	for _, k := range h.EntityAdminKinds {
		if _, err := issuer.ParsePrincipalKind(k); err != nil {
			return fmt.Errorf("entity_admin_kind: %w", err)
		}
	}
	// The guard's rules are checked first: a bad pattern opens no store.
	if err := h.provisionGuard(ctx); err != nil {
		return err
	}
	if err := h.checkDPoPConfig(); err != nil {
		return err
	}
	h.ctx = ctx
	h.started = newStartup()
	h.alg = h.SigningAlg
	if h.alg != "" && !issuer.ValidAlg(h.alg) {
		return fmt.Errorf("signing_alg %q: want EdDSA, ES256, RS256 or HS256", h.alg)
	}
	if !h.DisableIssuing {
		if err := h.mountRoutes(); err != nil { // checks the routes; mounted again in start
			return err
		}
	}
	if h.standalone {
		h.app = new(App)
		h.metrics = newMetrics(prometheus.NewRegistry(), h.app)
		return h.start()
	}
	app, err := ctx.App("tokengate")
	if err != nil {
		return fmt.Errorf("loading the tokengate app: %w", err)
	}
	h.app = app.(*App)
	h.app.register(h)
	return nil
}

// start opens (or joins) the store's issuer and mounts the routes on it.
func (h *Handler) start() error {
	err := h.open(h.ctx)
	h.started.finish(err)
	return err
}

// startup is a site's start outcome, which its requests wait for (see
// ServeHTTP). Set once: by the site's start, or by the app when another
// site failed to start.
type startup struct {
	once sync.Once
	done chan struct{}
	err  error // read once done is closed
}

func newStartup() *startup { return &startup{done: make(chan struct{})} }

// finish records the outcome; the first call decides.
func (s *startup) finish(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

func (h *Handler) open(ctx caddy.Context) error {
	repl := caddy.NewReplacer()
	accessTTL := durationOr(h.AccessTTL, DefaultAccessTTL)
	var err error
	if h.core, err = h.app.Core(ctx, CoreSpec{Store: h.Store, MasterKey: h.MasterKey, Log: h.log}); err != nil {
		return err
	}
	if !h.DisableIssuing {
		// Keys must verify as long as the longest-lived token any route of
		// this site issues; registered before the first key is made.
		unregister, err := h.core.RegisterLifetime(ctx, h.maxAccessTTL(accessTTL))
		if err != nil {
			return fmt.Errorf("registering token lifetime: %w", err)
		}
		h.release = append(h.release, unregister)
		if err := h.core.EnsureKey(ctx, cmp.Or(h.alg, h.core.SigningAlg(), issuer.AlgEdDSA)); err != nil {
			return fmt.Errorf("preparing signing key: %w", err)
		}
		every := durationOr(h.KeyRotation, DefaultKeyRotation)
		h.release = append(h.release, h.core.ScheduleRotation(h.alg, every, min(issuer.DefaultPublishAhead, every/2)))
	}
	if h.HashConcurrency > 0 || h.HashQueue > 0 {
		h.core.HashBudget().Configure(h.HashConcurrency, h.HashQueue, 0)
	}
	if err := h.openUserTables(ctx, repl); err != nil {
		return err
	}
	if h.issuer, err = issuer.New(h.core, h.issuerConfig(h.alg, accessTTL)); err != nil {
		return err
	}
	if err := h.provisionDPoP(ctx); err != nil {
		return err
	}
	h.tokens = &tokenauth.Checker{Issuer: h.issuer, DPoP: h.dpop, RequireDPoP: h.dpopPolicy().Required,
		URL: requestURL, Realm: h.realm, Log: h.log}
	if !h.DisableIssuing {
		return h.mountRoutes()
	}
	return nil
}

// maxAccessTTL is the longest access-token lifetime any route of this site
// can issue: the site's, or a compatibility endpoint's own.
func (h *Handler) maxAccessTTL(site time.Duration) time.Duration {
	d := site
	for _, ep := range h.Endpoints {
		d = max(d, time.Duration(ep.AccessTTL))
	}
	return d
}

// issuerConfig turns the JSON configuration into the issuer's.
func (h *Handler) issuerConfig(alg string, accessTTL time.Duration) issuer.Config {
	cfg := issuer.Config{Issuer: h.iss, Audience: h.Audience, Alg: alg,
		AccessTTL: accessTTL, RefreshTTL: durationOr(h.RefreshTTL, DefaultRefreshTTL), RefreshGrace: time.Duration(h.RefreshGrace),
		SingleSession: h.SingleSession, SecretGrace: time.Duration(h.SecretGrace), Directories: map[string]issuer.UserDirectory{},
		SessionTTL: h.sessionTTL(), SessionMaxTTL: h.sessionMaxTTL()}
	if t := h.Throttle; t != nil {
		cfg.NoThrottle = t.Disabled
		cfg.Throttle = throttle.Config{PerIP: t.PerIP, PerAccountIP: t.PerAccountIP, PerAccount: t.PerAccount,
			Base: time.Duration(t.Backoff), Max: time.Duration(t.MaxBackoff), AccountMax: time.Duration(t.AccountMaxBackoff),
			Forget: time.Duration(t.Forget), Trust: time.Duration(t.Trust), Entries: t.TableSize}
	}
	for _, u := range h.Users {
		cfg.Users = append(cfg.Users, issuer.User{Name: u.Name, PasswordHash: u.PasswordHash, Roles: u.Roles, Scopes: u.Scopes,
			Email: u.Email, DisplayName: u.DisplayName})
	}
	for _, c := range h.Clients {
		cfg.Clients = append(cfg.Clients, issuer.Client{ID: c.ID, SecretHash: c.SecretHash, Roles: c.Roles, Scopes: c.Scopes, Grants: c.Grants,
			Public: c.Public, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			PKCEOptional: c.PKCEOptional, Consent: c.Consent})
	}
	for _, e := range h.Entities {
		cfg.Entities = append(cfg.Entities, issuer.Entity{ID: e.ID, Roles: e.Roles})
	}
	for _, t := range h.tables {
		cfg.Directories[t.Name()] = t
	}
	return cfg
}

// mountRoutes sets up the OAuth 2.0, browser sign-in, Token Service and
// compatibility routes.
func (h *Handler) mountRoutes() error {
	h.routes = (&oauth.Server{Issuer: h.issuer, Log: h.log, Realm: h.realm, DPoP: h.oauthDPoP(), AuthorizePath: h.authorizePath()}).Routes()
	h.prefixes = []string{"/token/"}
	if h.login != nil {
		ls := &login.Server{Issuer: h.issuer, Log: h.log, Title: h.login.Title, Pages: h.loginPages,
			Secure: strings.HasPrefix(h.iss, "https://")}
		maps.Copy(h.routes, ls.Routes())
		h.prefixes = append(h.prefixes, "/login/")
	}
	if !h.DisableTokenService {
		ts := &tokenservice.Server{Issuer: h.issuer, Log: h.log, Realm: h.realm, Tokens: h.tokens,
			AdminRoles: h.EntityAdminRoles, AdminKinds: adminKinds(h.EntityAdminKinds), SecretTTL: durationOr(h.SecretTTL, DefaultSecretTTL),
			MaxSecretTTL: durationOr(h.SecretMaxTTL, DefaultSecretMaxTTL)}
		if len(ts.AdminRoles) == 0 {
			ts.AdminRoles = []string{DefaultEntityAdminRole}
		}
		if len(ts.AdminKinds) == 0 {
			ts.AdminKinds = []issuer.PrincipalKind{issuer.KindUser}
		}
		if ts.SecretTTL > ts.MaxSecretTTL {
			return fmt.Errorf("secret_ttl %v is longer than secret_max_ttl %v", ts.SecretTTL, ts.MaxSecretTTL)
		}
		maps.Copy(h.routes, ts.Routes())
		h.prefixes = append(h.prefixes, "/user/", "/entity/")
	}
	return h.mountEndpoints()
}

func (h *Handler) openUserTables(ctx caddy.Context, repl *caddy.Replacer) error {
	for _, ut := range h.UserTables {
		t, err := usertable.Open(ctx, usertable.Config{Name: ut.Name, Driver: ut.Driver, DSN: repl.ReplaceKnown(ut.DSN, ""),
			Database: ut.Database, Table: ut.Table, UsernameColumn: ut.UsernameColumn, PasswordColumn: ut.PasswordColumn,
			IDColumn: ut.IDColumn, RolesColumn: ut.RolesColumn})
		if err != nil {
			return err
		}
		h.tables = append(h.tables, t)
	}
	return nil
}

// mountEndpoints adds the compatibility routes the config names.
func (h *Handler) mountEndpoints() error {
	for _, ep := range h.Endpoints {
		ttl := time.Duration(ep.AccessTTL)
		var rt httpx.Route
		path := ep.Path
		switch ep.Name {
		case "apimaker":
			srv := &apimaker.Server{Issuer: h.issuer, Log: h.log, Realm: h.realm, Tokens: h.tokens, Tables: h.tables,
				RequireRoles: ep.RequireRoles, AccessTTL: ttl}
			rt = httpx.Route{Methods: httpx.Post, Handler: srv.ServeHTTP}
			path = cmp.Or(path, apimaker.DefaultPath)
		case "eventhos":
			srv := &eventhos.Server{Issuer: h.issuer, Log: h.log, AccessTTL: ttl}
			rt = httpx.Route{Methods: httpx.Post, Handler: srv.ServeHTTP}
			path = cmp.Or(path, eventhos.DefaultPath)
		case "owin":
			srv := &owin.Server{Issuer: h.issuer, Log: h.log, Realm: h.realm, AccessTTL: ttl}
			rt = httpx.Route{Methods: []string{http.MethodGet, http.MethodPost}, Handler: srv.ServeHTTP}
			path = cmp.Or(path, owin.DefaultPath)
		default:
			return fmt.Errorf("endpoint %q: want apimaker, eventhos or owin", ep.Name)
		}
		if len(ep.RequireRoles) > 0 && ep.Name != "apimaker" {
			return fmt.Errorf("endpoint %s: require_role is for apimaker only", ep.Name)
		}
		if !strings.HasPrefix(path, "/") {
			return fmt.Errorf("endpoint %s: path %q must start with /", ep.Name, path)
		}
		if _, taken := h.routes[path]; taken {
			return fmt.Errorf("endpoint %s: path %s is already a tokengate route", ep.Name, path)
		}
		h.routes[path] = rt
	}
	return nil
}

// checkNames refuses principal and table names that could pass for a
// table user's subject, before Provision opens anything.
func (h *Handler) checkNames() error {
	var errs []error
	for _, u := range h.Users {
		errs = append(errs, issuer.CheckName("user", u.Name))
	}
	for _, c := range h.Clients {
		errs = append(errs, issuer.CheckName("client", c.ID))
	}
	for _, e := range h.Entities {
		errs = append(errs, issuer.CheckName("entity", e.ID))
	}
	for _, t := range h.UserTables {
		errs = append(errs, issuer.CheckName("user_table", t.Name))
	}
	return errors.Join(errs...)
}

// warnLenientProxies warns when sign-in throttling keys on a client IP that
// the caller chooses: behind trusted_proxies without trusted_proxies_strict,
// Caddy takes the leftmost X-Forwarded-For value, which the client itself
// wrote, so an attacker is never throttled and can lock a victim's usual IP.
func (h *Handler) warnLenientProxies(ctx caddy.Context) {
	srv, _ := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if srv == nil || h.DisableIssuing || (h.Throttle != nil && h.Throttle.Disabled) || srv.TrustedProxiesStrict > 0 || !trustsProxies(srv) {
		return
	}
	h.log.Warn("sign-in throttling keys on the client IP, and this server takes it from the leftmost client_ip_headers value, " +
		"which the client chooses: set trusted_proxies_strict in the servers options, so that the IP is the rightmost one " +
		"no trusted proxy added")
}

// trustsProxies reports whether srv has trusted_proxies. Caddy drops the
// option's JSON once it has loaded it, before handlers are provisioned, and
// keeps what it loaded unexported: reflection reads whether it is set.
func trustsProxies(srv *caddyhttp.Server) bool {
	f := reflect.ValueOf(srv).Elem().FieldByName("trustedProxies")
	return f.IsValid() && (f.Kind() == reflect.Interface || f.Kind() == reflect.Pointer) && !f.IsNil()
}

// warnSharedSubjects warns of declared principals of different kinds with
// the same name: their tokens carry the same subject, so the upstream sees
// the same identity headers for both unless it is sent their kind.
func (h *Handler) warnSharedSubjects() {
	kinds := map[string][]issuer.PrincipalKind{}
	for _, u := range h.Users {
		kinds[u.Name] = append(kinds[u.Name], issuer.KindUser)
	}
	for _, c := range h.Clients {
		kinds[c.ID] = append(kinds[c.ID], issuer.KindClient)
	}
	for _, e := range h.Entities {
		kinds[e.ID] = append(kinds[e.ID], issuer.KindEntity)
	}
	for name, ks := range kinds {
		if len(ks) > 1 {
			h.log.Warn("principals of different kinds share a subject: the upstream cannot tell them apart "+
				"unless forward_header sends the kind claim", zap.String("subject", name), zap.Any("kinds", ks))
		}
	}
}

func (h *Handler) provisionGuard(ctx caddy.Context) error {
	h.forwarded = map[string]bool{}
	for _, fh := range h.ForwardHeaders {
		h.forwarded[http.CanonicalHeaderKey(fh.Header)] = true
	}
	var err error
	if h.Paths != nil {
		if h.lenient, err = canonpath.Parse(h.Paths.Lenient); err != nil {
			return fmt.Errorf("paths: %w", err)
		}
	}
	// Placeholders such as {env.X} are expanded once, here.
	repl := caddy.NewReplacer()
	expand := func(ps []string) []string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = repl.ReplaceKnown(p, "")
		}
		return out
	}
	if len(h.Allow) > 0 {
		// Case-sensitive: an allow rule never widens to spellings it does
		// not name (a case-sensitive upstream may serve /PUBLIC apart).
		if h.allow, err = canonpath.NewMatcher(expand(h.Allow), false, h.lenient); err != nil {
			return fmt.Errorf("allow: %w", err)
		}
	}
	for _, rq := range h.Require {
		// Case-insensitive: a require rule never narrows for a
		// case-insensitive upstream (/ADMIN/x is /admin/x on IIS).
		m, err := canonpath.NewMatcher(expand(rq.Path), true, h.lenient)
		if err != nil {
			return fmt.Errorf("require: %w", err)
		}
		h.require = append(h.require, requirement{Requirement: rq, match: m})
	}
	return nil
}

// Validate checks the configuration for mistakes Provision does not catch.
// Each message names the option and the fix.
func (h *Handler) Validate() error {
	repl := caddy.NewReplacer()
	if h.Issuer != "" {
		if u, err := url.Parse(h.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("issuer %q: needs a scheme and a host, such as https://api.example.com", h.Issuer)
		}
	}
	if h.Store != nil && h.Store.Driver != "" {
		if h.Store.Driver != "sqlite" && h.Store.Driver != "postgres" {
			return fmt.Errorf("store: driver %q: want sqlite or postgres", h.Store.Driver)
		}
		if strings.TrimSpace(repl.ReplaceKnown(h.Store.DSN, "")) == "" {
			return fmt.Errorf("store %s: the DSN %q is empty once placeholders are expanded: give a file path (sqlite) or a "+
				"connection string (postgres), and check that the environment variable it names is set", h.Store.Driver, h.Store.DSN)
		}
	}
	if h.MasterKey != "" {
		mk := repl.ReplaceKnown(h.MasterKey, "")
		if strings.TrimSpace(mk) == "" {
			return fmt.Errorf("master_key %q is empty once placeholders are expanded: set the environment variable "+
				"(openssl rand -hex 32), or remove master_key to use the key generated in Caddy's data directory", h.MasterKey)
		}
		if _, err := issuer.ParseMasterKey(mk); err != nil {
			return fmt.Errorf("master_key: %w; generate one with `openssl rand -hex 32`", err)
		}
	}
	for _, u := range h.Users {
		if err := issuer.CheckHashFormat(u.PasswordHash); err != nil && issuer.LooksLikeHash(u.PasswordHash) {
			return fmt.Errorf("user %s: the password hash is malformed (%v): put the output of `caddy tokengate hash-password` there", u.Name, err)
		} else if err != nil {
			return fmt.Errorf("user %s: the password must be given as an argon2id or bcrypt hash, never in plain text (%v): "+
				"put the output of `caddy tokengate hash-password` there", u.Name, err)
		}
	}
	for _, c := range h.Clients {
		if c.Public {
			continue // no secret: checked with the other browser sign-in options
		}
		if err := issuer.CheckHashFormat(c.SecretHash); err != nil && issuer.LooksLikeHash(c.SecretHash) {
			return fmt.Errorf("client %s: the secret hash is malformed (%v): put the output of `caddy tokengate hash-password` there", c.ID, err)
		} else if err != nil {
			return fmt.Errorf("client %s: the secret must be given as an argon2id or bcrypt hash, never in plain text (%v): "+
				"put the output of `caddy tokengate hash-password` there, or create the client with `caddy tokengate client add`", c.ID, err)
		}
	}
	for _, rq := range h.Require {
		if rq.Kind == "dpop" {
			if len(rq.Path) == 0 || len(rq.Values) != 0 {
				return errors.New("require dpop: needs a path and no values")
			}
			continue
		}
		if rq.Kind != "role" && rq.Kind != "scope" {
			return fmt.Errorf("require: kind %q must be role, scope or dpop", rq.Kind)
		}
		if len(rq.Path) == 0 || len(rq.Values) == 0 {
			return errors.New("require: needs a path and at least one value")
		}
	}
	if t := h.Throttle; t != nil && t.Backoff > 0 && t.MaxBackoff > 0 && t.Backoff > t.MaxBackoff {
		return errors.New("throttle: backoff is longer than max_backoff")
	}
	if h.HashConcurrency < 0 || h.HashQueue < 0 {
		return errors.New("hash_concurrency and hash_queue must not be negative")
	}
	for _, fh := range h.ForwardHeaders {
		if fh.Header == "" || !knownClaim(fh.Claim) {
			return fmt.Errorf("forward_header %q: claim %q is not one of %s", fh.Header, fh.Claim, strings.Join(claimNames, ", "))
		}
		if hopByHop(fh.Header) {
			return fmt.Errorf("forward_header %q: a hop-by-hop header never reaches the upstream", fh.Header)
		}
	}
	return nil
}

// hopByHop reports the headers reverse_proxy always removes (RFC 9110 §7.6.1).
func hopByHop(name string) bool {
	for _, h := range []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		if headerNameEqual(name, h) {
			return true
		}
	}
	return false
}

// Cleanup closes the user tables and undoes this configuration's
// registrations on the shared Core; the tokengate app releases the Core.
func (h *Handler) Cleanup() error {
	var errs []error
	for _, release := range h.release {
		release()
	}
	for _, t := range h.tables {
		errs = append(errs, t.Close())
	}
	if h.standalone && h.app != nil {
		errs = append(errs, h.app.Cleanup()) // its own app: Caddy does not know it
	}
	return errors.Join(errs...)
}

func durationOr(d caddy.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. The syntax
// is documented once, on package github.com/tokengate/caddy-tokengate/caddyfile.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return tgcaddyfile.Parse(d, &h.Gateway)
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)

// adminKinds converts entity_admin_kind values, checked in Provision.
func adminKinds(ks []string) []issuer.PrincipalKind {
	var out []issuer.PrincipalKind
	for _, k := range ks {
		out = append(out, issuer.PrincipalKind(k))
	}
	return out
}
