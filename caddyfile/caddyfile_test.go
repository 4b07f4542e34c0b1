package caddyfile

import (
	"strings"
	"testing"
	"time"

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
	}`)
	var g config.Gateway
	if err := Parse(d, &g); err != nil {
		t.Fatal(err)
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
