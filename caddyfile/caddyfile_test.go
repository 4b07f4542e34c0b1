package caddyfile

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tokengate/caddy-tokengate/config"
)

func TestParse(t *testing.T) {
	d := caddyfile.NewTestDispenser(`tokengate {
		issuer https://a.example
		secret_ttl 90d
		user alice $2a$h roles admin,ops scopes x
		client svc h roles r grants client_credentials refresh_token
		require /a/* scope s1 s2
		issuing off
		entity_admin_kind user,table:app client
	}`)
	var g config.Gateway
	if err := Parse(d, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.EntityAdminKinds) != 3 || g.EntityAdminKinds[1] != "table:app" {
		t.Fatalf("entity_admin_kind %v", g.EntityAdminKinds)
	}
	if g.Issuer != "https://a.example" || time.Duration(g.SecretTTL) != 90*24*time.Hour || !g.DisableIssuing {
		t.Fatalf("parsed %+v", g)
	}
	if u := g.Users[0]; u.Name != "alice" || u.PasswordHash != "$2a$h" || len(u.Roles) != 2 || u.Roles[1] != "ops" || u.Scopes[0] != "x" {
		t.Fatalf("user %+v", u)
	}
	if c := g.Clients[0]; c.ID != "svc" || len(c.Grants) != 2 || c.Roles[0] != "r" {
		t.Fatalf("client %+v", c)
	}
	if rq := g.Require[0]; rq.Path[0] != "/a/*" || rq.Kind != "scope" || len(rq.Values) != 2 {
		t.Fatalf("require %+v", rq)
	}
	if err := Parse(caddyfile.NewTestDispenser(`tokengate extra`), &g); err == nil {
		t.Fatal("an argument after the directive should fail")
	}
}

func TestParseDPoP(t *testing.T) {
	d := caddyfile.NewTestDispenser(`tokengate {
		require /payments/* dpop
		dpop {
			required
			client a b,c
			nonce
			window 30s
			algs ES256 EdDSA
		}
	}`)
	var g config.Gateway
	if err := Parse(d, &g); err != nil {
		t.Fatal(err)
	}
	dp := g.DPoP
	if dp == nil || !dp.Required || !dp.Nonce || time.Duration(dp.Window) != 30*time.Second ||
		strings.Join(dp.Clients, " ") != "a b c" || strings.Join(dp.Algs, " ") != "ES256 EdDSA" {
		t.Fatalf("dpop %+v", dp)
	}
	if rq := g.Require[0]; rq.Kind != "dpop" || rq.Path[0] != "/payments/*" || len(rq.Values) != 0 {
		t.Fatalf("require %+v", rq)
	}
}

func TestParseThrottle(t *testing.T) {
	var g config.Gateway
	err := Parse(caddyfile.NewTestDispenser(`tokengate {
		throttle {
			per_ip 40
			per_account_ip 3
			per_account 200
			backoff 2s 10m
			account_max_backoff 30s
			forget 1h
			trust 7d
			table_size 4096
		}
		hash_budget 2 16
	}`), &g)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Throttle{PerIP: 40, PerAccountIP: 3, PerAccount: 200, Backoff: caddy.Duration(2 * time.Second),
		MaxBackoff: caddy.Duration(10 * time.Minute), AccountMaxBackoff: caddy.Duration(30 * time.Second),
		Forget: caddy.Duration(time.Hour), Trust: caddy.Duration(7 * 24 * time.Hour), TableSize: 4096}
	if g.Throttle == nil || *g.Throttle != want || g.HashConcurrency != 2 || g.HashQueue != 16 {
		t.Fatalf("parsed %+v, %d %d", g.Throttle, g.HashConcurrency, g.HashQueue)
	}
	g = config.Gateway{}
	if err := Parse(caddyfile.NewTestDispenser("tokengate {\n throttle off\n }"), &g); err != nil || g.Throttle == nil || !g.Throttle.Disabled {
		t.Fatalf("throttle off: %+v %v", g.Throttle, err)
	}
	for _, bad := range []string{"throttle maybe", "throttle {\n per_ip 0\n }", "throttle {\n backoff 1m 1s\n }",
		"throttle {\n backoff 1s\n }", "throttle {\n color blue\n }", "hash_budget", "hash_budget 0", "hash_budget 1 x"} {
		if err := Parse(caddyfile.NewTestDispenser("tokengate {\n "+bad+"\n }"), &config.Gateway{}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestRefreshGrace(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"refresh_grace 45s", 45 * time.Second, false},
		{"refresh_grace off", -1, false},
		{"refresh_grace 0s", 0, true},
		{"refresh_grace soon", 0, true},
		{"refresh_grace", 0, true},
		{"refresh_grace 1s 2s", 0, true},
	} {
		var g config.Gateway
		err := Parse(caddyfile.NewTestDispenser("tokengate {\n"+tc.in+"\n}"), &g)
		if (err != nil) != tc.err || !tc.err && time.Duration(g.RefreshGrace) != tc.want {
			t.Errorf("%q: %v, %v", tc.in, time.Duration(g.RefreshGrace), err)
		}
	}
}

// TestParseBrowserSignIn: the login block, the browser sign-in options of
// the client line and the user's email and display name, each alone, and
// their refusals.
func TestParseBrowserSignIn(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     config.Gateway
		err      string // a word of the refusal; "" parses
	}{
		{name: "login alone", in: "login", want: config.Gateway{Login: &config.Login{}}},
		{name: "login block", in: "login {\n session_ttl 8h\n session_max_ttl 7d\n title \"Example Corp\"\n templates /etc/tg\n }",
			want: config.Gateway{Login: &config.Login{SessionTTL: caddy.Duration(8 * time.Hour), SessionMaxTTL: caddy.Duration(7 * 24 * time.Hour),
				Title: "Example Corp", Templates: "/etc/tg"}}},
		{name: "public client", in: "client spa public redirect_uri http://localhost:5173/cb http://127.0.0.1/cb scopes a,b",
			want: config.Gateway{Clients: []config.Client{{ID: "spa", Public: true, Scopes: []string{"a", "b"},
				RedirectURIs: []string{"http://localhost:5173/cb", "http://127.0.0.1/cb"}}}}},
		{name: "a redirect URI keeps its commas", in: "client web h redirect_uri https://a.example/cb?x=1,2",
			want: config.Gateway{Clients: []config.Client{{ID: "web", SecretHash: "h", RedirectURIs: []string{"https://a.example/cb?x=1,2"}}}}},
		{name: "every client option", in: "client web h roles r redirect_uri https://a.example/cb post_logout_redirect_uri https://a.example/ https://a.example/bye pkce optional consent grants authorization_code",
			want: config.Gateway{Clients: []config.Client{{ID: "web", SecretHash: "h", Roles: []string{"r"}, Grants: []string{"authorization_code"},
				RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"https://a.example/", "https://a.example/bye"},
				PKCEOptional: true, Consent: true}}}},
		{name: "flags end a list", in: "client web h consent roles r pkce optional",
			want: config.Gateway{Clients: []config.Client{{ID: "web", SecretHash: "h", Roles: []string{"r"}, PKCEOptional: true, Consent: true}}}},
		{name: "user email and name", in: "user alice h roles admin email alice@example.com name \"Alice Example\" scopes s",
			want: config.Gateway{Users: []config.User{{Name: "alice", PasswordHash: "h", Roles: []string{"admin"}, Scopes: []string{"s"},
				Email: "alice@example.com", DisplayName: "Alice Example"}}}},
		{name: "a display name that is a keyword", in: "user alice h name roles",
			want: config.Gateway{Users: []config.User{{Name: "alice", PasswordHash: "h", DisplayName: "roles"}}}},
		{name: "login with an argument", in: "login on", err: "no argument"},
		{name: "login unknown option", in: "login {\n color blue\n }", err: "unrecognized option"},
		{name: "login negative duration", in: "login {\n session_ttl -1h\n }", err: "positive"},
		{name: "login title of two words", in: "login {\n title Example Corp\n }", err: "quote"},
		{name: "login templates without a directory", in: "login {\n templates\n }", err: "argument"},
		{name: "login idle longer than absolute", in: "login {\n session_ttl 8d\n session_max_ttl 7d\n }", err: "longer"},
		{name: "pkce without optional", in: "client web h pkce", err: "pkce optional"},
		{name: "pkce required", in: "client web h pkce required", err: "pkce optional"},
		{name: "a URI before its keyword", in: "client web h https://a.example/cb", err: "unexpected"},
		{name: "email without a value", in: "user alice h email", err: "one value"},
		{name: "email twice", in: "user alice h email a@x email b@x", err: "twice"},
		{name: "client flags on a user", in: "user alice h consent", err: "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := parseText("tokengate {\n" + tc.in + "\n}")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(g, tc.want) {
				t.Fatalf("parsed\n%#v\nwant\n%#v", g, tc.want)
			}
		})
	}
}

// TestFormatBrowserSignIn: Format writes the browser sign-in options so
// that Parse reads them back, a role named like a keyword included.
func TestFormatBrowserSignIn(t *testing.T) {
	in := config.Gateway{
		Login: &config.Login{SessionTTL: caddy.Duration(time.Hour), Title: "Example `Corp`", Templates: "/etc/tg pages"},
		Users: []config.User{{Name: "alice", PasswordHash: "h", Email: "alice@example.com", DisplayName: "Alice \"Al\" Example"}},
		Clients: []config.Client{
			{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb", "https://a.example/cb?x=1,2"}, Roles: []string{"consent"}},
			{ID: "web", SecretHash: "h", RedirectURIs: []string{"https://a.example/cb"}, PostLogoutRedirectURIs: []string{"https://a.example/"},
				PKCEOptional: true, Consent: true, Grants: []string{"authorization_code"}},
		},
	}
	out, err := Format(in)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseText(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(in, back) {
		t.Fatalf("round trip:\n%#v\n%#v\n%s", in, back, out)
	}
}
