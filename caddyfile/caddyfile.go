package caddyfile

import (
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/internal/leaf/canonpath"
)

// Parse reads one `tokengate` directive (the dispenser positioned on it)
// into g.
func Parse(d *caddyfile.Dispenser, g *config.Gateway) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		if err := parseOption(d, g); err != nil {
			return err
		}
	}
	return nil
}

func parseOption(d *caddyfile.Dispenser, g *config.Gateway) error {
	switch opt := d.Val(); opt {
	case "issuer":
		return oneArg(d, &g.Issuer)
	case "audience":
		return oneArg(d, &g.Audience)
	case "master_key":
		return oneArg(d, &g.MasterKey)
	case "signing_alg":
		return oneArg(d, &g.SigningAlg)
	case "realm":
		return oneArg(d, &g.Realm)
	case "key_rotation":
		return duration(d, &g.KeyRotation)
	case "access_ttl":
		return duration(d, &g.AccessTTL)
	case "refresh_ttl":
		return duration(d, &g.RefreshTTL)
	case "refresh_grace":
		return durationOrOff(d, &g.RefreshGrace)
	case "secret_ttl":
		return duration(d, &g.SecretTTL)
	case "secret_grace":
		return duration(d, &g.SecretGrace)
	case "secret_max_ttl":
		return duration(d, &g.SecretMaxTTL)
	case "entity_admin_role":
		roles := splitValues(d.RemainingArgs())
		if len(roles) == 0 {
			return d.ArgErr()
		}
		g.EntityAdminRoles = append(g.EntityAdminRoles, roles...)
	case "entity_admin_kind":
		kinds := splitValues(d.RemainingArgs())
		if len(kinds) == 0 {
			return d.ArgErr()
		}
		g.EntityAdminKinds = append(g.EntityAdminKinds, kinds...)
	case "entity":
		args := d.RemainingArgs()
		if len(args) < 1 {
			return d.Err("entity: want `entity <id> [roles ...]`")
		}
		lists, err := keywordLists(d, args[1:], "roles")
		if err != nil {
			return err
		}
		g.Entities = append(g.Entities, config.Entity{ID: args[0], Roles: lists["roles"]})
	case "token_service":
		on, err := onOff(d)
		if err != nil {
			return err
		}
		g.DisableTokenService = !on
	case "user_table":
		return parseUserTable(d, g)
	case "endpoint":
		return parseEndpoint(d, g)
	case "dpop":
		return parseDPoP(d, g)
	case "single_session":
		if d.NextArg() {
			return d.ArgErr()
		}
		g.SingleSession = true
	case "issuing":
		on, err := onOff(d)
		if err != nil {
			return err
		}
		g.DisableIssuing = !on
	case "store":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Err("store: want `store sqlite <path>` or `store postgres <dsn>`")
		}
		if args[0] != "sqlite" && args[0] != "postgres" {
			return d.Errf("store: unknown driver %q (want sqlite or postgres)", args[0])
		}
		g.Store = &config.Store{Driver: args[0], DSN: args[1]}
	case "user":
		return parseUser(d, g)
	case "client":
		return parseClient(d, g)
	case "login":
		return parseLogin(d, g)
	case "allow":
		paths := d.RemainingArgs()
		if len(paths) == 0 {
			return d.ArgErr()
		}
		g.Allow = append(g.Allow, paths...)
	case "require":
		args := d.RemainingArgs()
		if len(args) == 2 && args[1] == "dpop" {
			g.Require = append(g.Require, config.Requirement{Path: []string{args[0]}, Kind: "dpop"})
			return nil
		}
		if len(args) < 3 || (args[1] != "role" && args[1] != "scope") {
			return d.Err("require: want `require <path> role|scope <values...>` or `require <path> dpop`")
		}
		g.Require = append(g.Require, config.Requirement{Path: []string{args[0]}, Kind: args[1], Values: splitValues(args[2:])})
	case "paths":
		return parsePaths(d, g)
	case "throttle":
		return parseThrottle(d, g)
	case "hash_budget":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return d.Err("hash_budget: want `hash_budget <concurrency> [<queue>]`")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 {
			return d.Errf("hash_budget: concurrency %q must be a positive integer", args[0])
		}
		g.HashConcurrency = n
		if len(args) == 2 {
			q, err := strconv.Atoi(args[1])
			if err != nil || q < 1 {
				return d.Errf("hash_budget: queue %q must be a positive integer", args[1])
			}
			g.HashQueue = q
		}
	case "forward_header":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Err("forward_header: want `forward_header <Header> <claim>`")
		}
		g.ForwardHeaders = append(g.ForwardHeaders, config.ForwardHeader{Header: args[0], Claim: args[1]})
	default:
		return d.Errf("unrecognized tokengate option %q", opt)
	}
	return nil
}

// parseUser reads `user <name> <password-hash> [roles ...] [scopes ...]
// [email <address>] [name <display name>]`.
func parseUser(d *caddyfile.Dispenser, g *config.Gateway) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Err("user: want `user <name> <password-hash> [roles ...] [scopes ...] [email <address>] [name <display name>]`")
	}
	c, err := readClauses(d, args[2:], clauseSpec{lists: []string{"roles", "scopes"}, singles: []string{"email", "name"}})
	if err != nil {
		return err
	}
	g.Users = append(g.Users, config.User{Name: args[0], PasswordHash: args[1], Roles: c.lists["roles"], Scopes: c.lists["scopes"],
		Email: c.singles["email"], DisplayName: c.singles["name"]})
	return nil
}

// parseClient reads `client <id> <secret-hash>|public [roles ...]
// [scopes ...] [grants ...] [redirect_uri <uri>...]
// [post_logout_redirect_uri <uri>...] [pkce optional] [consent]`.
func parseClient(d *caddyfile.Dispenser, g *config.Gateway) error {
	args := d.RemainingArgs()
	if len(args) < 2 {
		return d.Err("client: want `client <id> <secret-hash>|public [roles ...] [scopes ...] [grants ...] [redirect_uri <uri>...] " +
			"[post_logout_redirect_uri <uri>...] [pkce optional] [consent]`")
	}
	c, err := readClauses(d, args[2:], clauseSpec{lists: []string{"roles", "scopes", "grants"},
		uris: []string{"redirect_uri", "post_logout_redirect_uri"}, flags: []string{"pkce optional", "consent"}})
	if err != nil {
		return err
	}
	cl := config.Client{ID: args[0], SecretHash: args[1], Roles: c.lists["roles"], Scopes: c.lists["scopes"], Grants: c.lists["grants"],
		RedirectURIs: c.lists["redirect_uri"], PostLogoutRedirectURIs: c.lists["post_logout_redirect_uri"],
		PKCEOptional: c.flags["pkce optional"], Consent: c.flags["consent"]}
	if args[1] == "public" { // no secret: a browser or native app
		cl.SecretHash, cl.Public = "", true
	}
	g.Clients = append(g.Clients, cl)
	return nil
}

// parseLogin reads `login { session_ttl <d>; session_max_ttl <d>; title
// <text>; templates <dir> }`; `login` alone turns browser sign-in on with
// the defaults.
func parseLogin(d *caddyfile.Dispenser, g *config.Gateway) error {
	if d.NextArg() {
		return d.Err("login: want `login` or `login { … }`, with no argument")
	}
	if g.Login == nil {
		g.Login = &config.Login{}
	}
	l := g.Login
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "session_ttl", "session_max_ttl":
			dst := &l.SessionTTL
			if opt == "session_max_ttl" {
				dst = &l.SessionMaxTTL
			}
			if err := duration(d, dst); err != nil {
				return err
			}
		case "title":
			if err := oneArg(d, &l.Title); err != nil {
				return d.Err("login title: want one argument; quote a title with spaces (title \"Example Corp\")")
			}
		case "templates":
			if err := oneArg(d, &l.Templates); err != nil {
				return err
			}
		default:
			return d.Errf("login: unrecognized option %q", opt)
		}
	}
	if l.SessionTTL > 0 && l.SessionMaxTTL > 0 && l.SessionTTL > l.SessionMaxTTL {
		return d.Err("login: session_ttl is longer than session_max_ttl")
	}
	return nil
}

// clauseSpec names the keyword clauses that may follow a line's fixed
// arguments: lists (values split at commas, as splitValues), uris (one
// value a token, never split: a URI may hold a comma), singles (exactly
// one value token, whatever it says) and flags (no value; a flag of
// several words, such as "pkce optional", is written as them).
type clauseSpec struct{ lists, uris, singles, flags []string }

// clauses is what readClauses read: uris are kept in lists.
type clauses struct {
	lists   map[string][]string
	singles map[string]string
	flags   map[string]bool
}

// readClauses reads args into the clauses spec names.
func readClauses(d *caddyfile.Dispenser, args []string, spec clauseSpec) (clauses, error) {
	c := clauses{lists: make(map[string][]string), singles: make(map[string]string), flags: make(map[string]bool)}
	cur := "" // the list or uris keyword whose values these are
	for i := 0; i < len(args); i++ {
		a := args[i]
		if flag, n := matchFlag(spec.flags, args[i:]); n > 0 {
			c.flags[flag], cur = true, ""
			i += n - 1
			continue
		}
		switch {
		case slices.Contains(spec.lists, a) || slices.Contains(spec.uris, a):
			cur = a
		case startsFlag(spec.flags, a):
			return c, d.Errf("%q: want %s", a, strings.Join(spec.flags, " or "))
		case slices.Contains(spec.singles, a):
			if i+1 == len(args) {
				return c, d.Errf("%s: want one value after it", a)
			}
			if _, twice := c.singles[a]; twice {
				return c, d.Errf("%s given twice", a)
			}
			c.singles[a], cur = args[i+1], ""
			i++
		case cur == "":
			return c, d.Errf("unexpected %q: want one of %s", a, strings.Join(clauseWords(spec), ", "))
		case slices.Contains(spec.uris, cur):
			c.lists[cur] = append(c.lists[cur], a)
		default:
			c.lists[cur] = append(c.lists[cur], splitValues([]string{a})...)
		}
	}
	return c, nil
}

// startsFlag reports whether a is the first word of one of flags (which
// did not match as a whole): `pkce required` is a mistake, not two values.
func startsFlag(flags []string, a string) bool {
	return slices.ContainsFunc(flags, func(f string) bool { return strings.Fields(f)[0] == a })
}

// matchFlag returns the flag of flags that args start with and how many
// words it took, or 0.
func matchFlag(flags, args []string) (string, int) {
	for _, f := range flags {
		words := strings.Fields(f)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return f, len(words)
		}
	}
	return "", 0
}

// clauseWords lists a spec's keywords for an error message.
func clauseWords(spec clauseSpec) []string {
	return slices.Concat(spec.lists, spec.uris, spec.singles, spec.flags)
}

// parsePaths reads `paths lenient <relaxation>...`.
func parsePaths(d *caddyfile.Dispenser, g *config.Gateway) error {
	args := d.RemainingArgs()
	if len(args) < 2 || args[0] != "lenient" {
		return d.Err("paths: want `paths lenient <relaxation>...`")
	}
	if g.Paths == nil {
		g.Paths = &config.PathPolicy{}
	}
	for _, name := range splitValues(args[1:]) {
		if _, ok := canonpath.Names[name]; !ok {
			return d.Errf("paths lenient: unknown relaxation %q (want one of %s)", name, strings.Join(canonpath.SortedNames(), ", "))
		}
		if !slices.Contains(g.Paths.Lenient, name) {
			g.Paths.Lenient = append(g.Paths.Lenient, name)
		}
	}
	return nil
}

func parseUserTable(d *caddyfile.Dispenser, g *config.Gateway) error {
	var ut config.UserTable
	if err := oneArg(d, &ut.Name); err != nil {
		return d.Err("user_table: want `user_table <name> { … }`")
	}
	fields := map[string]*string{"driver": &ut.Driver, "dsn": &ut.DSN, "database": &ut.Database, "table": &ut.Table,
		"username_column": &ut.UsernameColumn, "password_column": &ut.PasswordColumn,
		"id_column": &ut.IDColumn, "roles_column": &ut.RolesColumn}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		dst, ok := fields[d.Val()]
		if !ok {
			return d.Errf("user_table: unrecognized option %q", d.Val())
		}
		if err := oneArg(d, dst); err != nil {
			return err
		}
	}
	if ut.Driver != "sqlite" && ut.Driver != "postgres" {
		return d.Errf("user_table %s: driver must be sqlite or postgres", ut.Name)
	}
	if ut.DSN == "" || ut.Table == "" || ut.UsernameColumn == "" || ut.PasswordColumn == "" {
		return d.Errf("user_table %s: needs dsn, table, username_column and password_column", ut.Name)
	}
	g.UserTables = append(g.UserTables, ut)
	return nil
}

// parseThrottle reads `throttle off` or a `throttle { … }` block.
func parseThrottle(d *caddyfile.Dispenser, g *config.Gateway) error {
	t := &config.Throttle{}
	g.Throttle = t
	if d.NextArg() {
		if d.Val() != "off" || d.NextArg() {
			return d.Err("throttle: want `throttle off` or `throttle { … }`")
		}
		t.Disabled = true
		return nil
	}
	ints := map[string]*int{"per_ip": &t.PerIP, "per_account_ip": &t.PerAccountIP, "per_account": &t.PerAccount, "table_size": &t.TableSize}
	durs := map[string]*caddy.Duration{"account_max_backoff": &t.AccountMaxBackoff, "forget": &t.Forget, "trust": &t.Trust}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch opt := d.Val(); opt {
		case "per_ip", "per_account_ip", "per_account", "table_size":
			var v string
			if err := oneArg(d, &v); err != nil {
				return err
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return d.Errf("throttle %s: %q must be a positive integer", opt, v)
			}
			*ints[opt] = n
		case "account_max_backoff", "forget", "trust":
			if err := duration(d, durs[opt]); err != nil {
				return err
			}
		case "backoff":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("throttle backoff: want `backoff <first> <longest>`")
			}
			for i, dst := range []*caddy.Duration{&t.Backoff, &t.MaxBackoff} {
				v, err := caddy.ParseDuration(args[i])
				if err != nil || v <= 0 {
					return d.Errf("throttle backoff: %q must be a positive duration", args[i])
				}
				*dst = caddy.Duration(v)
			}
			if t.Backoff > t.MaxBackoff {
				return d.Err("throttle backoff: the first wait is longer than the longest")
			}
		default:
			return d.Errf("throttle: unrecognized option %q", opt)
		}
	}
	return nil
}

func parseEndpoint(d *caddyfile.Dispenser, g *config.Gateway) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 2 {
		return d.Err("endpoint: want `endpoint apimaker|eventhos|owin [<path>]`")
	}
	ep := config.Endpoint{Name: args[0]}
	if len(args) == 2 {
		ep.Path = args[1]
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "require_role":
			roles := splitValues(d.RemainingArgs())
			if len(roles) == 0 {
				return d.ArgErr()
			}
			ep.RequireRoles = append(ep.RequireRoles, roles...)
		case "access_ttl":
			if err := duration(d, &ep.AccessTTL); err != nil {
				return err
			}
		default:
			return d.Errf("endpoint: unrecognized option %q", d.Val())
		}
	}
	g.Endpoints = append(g.Endpoints, ep)
	return nil
}

// parseDPoP reads `dpop { required; client <id>...; nonce; window <d>; algs <alg>... }`.
func parseDPoP(d *caddyfile.Dispenser, g *config.Gateway) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	if g.DPoP == nil {
		g.DPoP = &config.DPoP{}
	}
	dp := g.DPoP
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "required", "nonce":
			if d.NextArg() {
				return d.ArgErr()
			}
			if d.Val() == "required" {
				dp.Required = true
			} else {
				dp.Nonce = true
			}
		case "client":
			ids := splitValues(d.RemainingArgs())
			if len(ids) == 0 {
				return d.ArgErr()
			}
			dp.Clients = append(dp.Clients, ids...)
		case "window":
			if err := duration(d, &dp.Window); err != nil {
				return err
			}
		case "algs":
			algs := splitValues(d.RemainingArgs())
			if len(algs) == 0 {
				return d.ArgErr()
			}
			dp.Algs = append(dp.Algs, algs...)
		default:
			return d.Errf("dpop: unrecognized option %q", d.Val())
		}
	}
	return nil
}

func onOff(d *caddyfile.Dispenser) (bool, error) {
	opt := d.Val()
	var v string
	if err := oneArg(d, &v); err != nil {
		return false, err
	}
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, d.Errf("%s: want on or off, got %q", opt, v)
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// durationOrOff reads a positive duration, or `off` as -1.
func durationOrOff(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	if d.CountRemainingArgs() == 1 && d.NextArg() {
		if d.Val() == "off" {
			*dst = -1
			return nil
		}
		d.Prev()
	}
	return duration(d, dst)
}

func duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil {
		return d.Errf("%s: %v", opt, err)
	}
	if dur <= 0 {
		return d.Errf("%s must be positive", opt)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// keywordLists reads `kw v1 v2 kw2 v3` into lists keyed by keyword.
func keywordLists(d *caddyfile.Dispenser, args []string, keywords ...string) (map[string][]string, error) {
	out := map[string][]string{}
	cur := ""
	for _, a := range args {
		if slices.Contains(keywords, a) {
			cur = a
			continue
		}
		if cur == "" {
			return nil, d.Errf("unexpected %q: want one of %s followed by values", a, strings.Join(keywords, ", "))
		}
		out[cur] = append(out[cur], splitValues([]string{a})...)
	}
	return out, nil
}

// splitValues accepts `a b` and `a,b` alike.
func splitValues(args []string) []string {
	var out []string
	for _, a := range args {
		for v := range strings.SplitSeq(a, ",") {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}
