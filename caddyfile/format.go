package caddyfile

import (
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/config"
)

// errUnquotable says a value holds both a backtick and a backslash, which
// no Caddyfile quoting keeps intact.
var errUnquotable = errors.New("value cannot be quoted in a Caddyfile")

// Format writes g as a `tokengate` directive that Parse reads back into g.
// Lists are written comma-joined, one token each, as Parse splits them.
func Format(g config.Gateway) (string, error) {
	f := &formatter{}
	f.block(0, "tokengate")
	f.opt(1, "issuer", g.Issuer)
	f.opt(1, "audience", g.Audience)
	if g.Store != nil {
		f.line(1, "store", g.Store.Driver, g.Store.DSN)
	}
	f.opt(1, "master_key", g.MasterKey)
	f.opt(1, "signing_alg", g.SigningAlg)
	f.opt(1, "realm", g.Realm)
	for _, d := range []struct {
		name string
		v    caddy.Duration
	}{{"key_rotation", g.KeyRotation}, {"access_ttl", g.AccessTTL}, {"refresh_ttl", g.RefreshTTL},
		{"secret_ttl", g.SecretTTL}, {"secret_grace", g.SecretGrace}, {"secret_max_ttl", g.SecretMaxTTL}} {
		if d.v != 0 {
			f.line(1, d.name, time.Duration(d.v).String())
		}
	}
	if g.SingleSession {
		f.line(1, "single_session")
	}
	if g.DisableIssuing {
		f.line(1, "issuing", "off")
	}
	if g.DisableTokenService {
		f.line(1, "token_service", "off")
	}
	f.list(1, "entity_admin_role", g.EntityAdminRoles)
	f.list(1, "entity_admin_kind", g.EntityAdminKinds)
	for _, u := range g.Users {
		args := append([]string{"user", u.Name, u.PasswordHash}, keywords("roles", u.Roles, "scopes", u.Scopes)...)
		args = append(args, single("email", u.Email, "name", u.DisplayName)...)
		f.line(1, args...)
	}
	for _, c := range g.Clients {
		secret := c.SecretHash
		if c.Public {
			secret = "public"
		}
		args := append([]string{"client", c.ID, secret}, keywords("roles", c.Roles, "scopes", c.Scopes, "grants", c.Grants)...)
		args = append(args, uris("redirect_uri", c.RedirectURIs, "post_logout_redirect_uri", c.PostLogoutRedirectURIs)...)
		if c.PKCEOptional {
			args = append(args, "pkce", "optional")
		}
		if c.Consent {
			args = append(args, "consent")
		}
		f.line(1, args...)
	}
	for _, e := range g.Entities {
		f.line(1, append([]string{"entity", e.ID}, keywords("roles", e.Roles)...)...)
	}
	for _, ut := range g.UserTables {
		f.block(1, "user_table", ut.Name)
		for _, kv := range [][2]string{{"driver", ut.Driver}, {"dsn", ut.DSN}, {"database", ut.Database}, {"table", ut.Table},
			{"username_column", ut.UsernameColumn}, {"password_column", ut.PasswordColumn},
			{"id_column", ut.IDColumn}, {"roles_column", ut.RolesColumn}} {
			f.opt(2, kv[0], kv[1])
		}
		f.line(1, "}")
	}
	for _, ep := range g.Endpoints {
		args := []string{"endpoint", ep.Name}
		if ep.Path != "" {
			args = append(args, ep.Path)
		}
		if len(ep.RequireRoles) == 0 && ep.AccessTTL == 0 {
			f.line(1, args...)
			continue
		}
		f.block(1, args...)
		f.list(2, "require_role", ep.RequireRoles)
		if ep.AccessTTL != 0 {
			f.line(2, "access_ttl", time.Duration(ep.AccessTTL).String())
		}
		f.line(1, "}")
	}
	if l := g.Login; l != nil {
		f.block(1, "login")
		for _, d := range []struct {
			name string
			v    caddy.Duration
		}{{"session_ttl", l.SessionTTL}, {"session_max_ttl", l.SessionMaxTTL}} {
			if d.v != 0 {
				f.line(2, d.name, time.Duration(d.v).String())
			}
		}
		f.opt(2, "title", l.Title)
		f.opt(2, "templates", l.Templates)
		f.line(1, "}")
	}
	if len(g.Allow) > 0 {
		f.line(1, append([]string{"allow"}, g.Allow...)...)
	}
	for _, rq := range g.Require {
		for _, p := range rq.Path {
			f.line(1, "require", p, rq.Kind, strings.Join(rq.Values, ","))
		}
	}
	for _, fh := range g.ForwardHeaders {
		f.line(1, "forward_header", fh.Header, fh.Claim)
	}
	f.line(0, "}")
	return f.b.String(), f.err
}

type formatter struct {
	b   strings.Builder
	err error
}

// block writes line's tokens and opens a block.
func (f *formatter) block(indent int, tokens ...string) {
	f.tokens(indent, tokens)
	f.b.WriteString(" {\n")
}

// line writes the first token (a keyword or brace, never quoted) and the
// quoted rest, indented by indent tabs.
func (f *formatter) line(indent int, tokens ...string) {
	f.tokens(indent, tokens)
	f.b.WriteByte('\n')
}

func (f *formatter) tokens(indent int, tokens []string) {
	f.b.WriteString(strings.Repeat("\t", indent))
	for i, t := range tokens {
		if i > 0 {
			f.b.WriteByte(' ')
		}
		if i == 0 {
			f.b.WriteString(t)
			continue
		}
		q, err := quote(t)
		if err != nil && f.err == nil {
			f.err = err
		}
		f.b.WriteString(q)
	}
}

// opt writes `name value` when value is set.
func (f *formatter) opt(indent int, name, value string) {
	if value != "" {
		f.line(indent, name, value)
	}
}

// list writes `name a,b` when the list is not empty.
func (f *formatter) list(indent int, name string, values []string) {
	if len(values) > 0 {
		f.line(indent, name, strings.Join(values, ","))
	}
}

// keywords renders `kw a,b kw2 c` for the non-empty lists of kw, list
// pairs. A lone value that Parse would read as a keyword of the user or
// client line (a role called consent) gets a trailing comma, which Parse
// drops.
func keywords(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if l := pairs[i+1].([]string); len(l) > 0 {
			v := strings.Join(l, ",")
			if slices.Contains([]string{"roles", "scopes", "grants", "email", "name", "redirect_uri", "post_logout_redirect_uri",
				"pkce", "consent"}, v) {
				v += ","
			}
			out = append(out, pairs[i].(string), v)
		}
	}
	return out
}

// single renders `kw value` for the set values of kw, value pairs.
func single(pairs ...string) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			out = append(out, pairs[i], pairs[i+1])
		}
	}
	return out
}

// uris renders `kw u1 u2` for the non-empty lists of kw, list pairs: one
// token per URI, which Parse never splits at commas.
func uris(pairs ...any) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if l := pairs[i+1].([]string); len(l) > 0 {
			out = append(append(out, pairs[i].(string)), l...)
		}
	}
	return out
}

// quote returns t as one Caddyfile token: bare when the lexer reads it
// back as is, else in backticks (no escapes inside), else in double quotes
// (where only \" is an escape).
func quote(t string) (string, error) {
	bare := t != "" && t != "{" && t != "}" && !strings.HasPrefix(t, "<<") &&
		!strings.ContainsAny(t[:1], "\"`#") && !strings.ContainsRune(t, '\\') &&
		strings.IndexFunc(t, unicode.IsSpace) < 0
	switch {
	case bare:
		return t, nil
	case !strings.Contains(t, "`"):
		return "`" + t + "`", nil
	case !strings.Contains(t, `\`):
		return `"` + strings.ReplaceAll(t, `"`, `\"`) + `"`, nil
	}
	return "", errUnquotable
}
