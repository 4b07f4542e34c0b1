package caddyfile

import (
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
