package tokengate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
)

// TestSiteIssuer derives issuers from servers as Caddy leaves them while it
// provisions a route's handlers (the route being provisioned still holds
// its handler JSON; routes before it no longer do).
func TestSiteIssuer(t *testing.T) {
	raw := []json.RawMessage{json.RawMessage(`{"handler":"tokengate"}`)}
	route := func(loading bool, hosts ...string) caddyhttp.Route {
		r := caddyhttp.Route{}
		if loading {
			r.HandlersRaw = raw
		}
		if len(hosts) > 0 {
			h := caddyhttp.MatchHost(hosts)
			r.MatcherSets = caddyhttp.MatcherSets{{&h}}
		}
		return r
	}
	tls := caddytls.ConnectionPolicies{new(caddytls.ConnectionPolicy)}
	for _, tc := range []struct {
		name    string
		srv     *caddyhttp.Server
		want    string // "" for a refusal
		refusal string
	}{
		{"https on 443", &caddyhttp.Server{Listen: []string{":443"}, TLSConnPolicies: tls,
			Routes: caddyhttp.RouteList{route(false, "other.example"), route(true, "api.example.com"), route(true, "later.example")}}, "https://api.example.com", ""},
		{"http on a port", &caddyhttp.Server{Listen: []string{":8080"}, Routes: caddyhttp.RouteList{route(true, "localhost")}}, "http://localhost:8080", ""},
		{"http on 80", &caddyhttp.Server{Listen: []string{"tcp/:80"}, Routes: caddyhttp.RouteList{route(true, "Example.COM")}}, "http://example.com", ""},
		{"https on another port", &caddyhttp.Server{Listen: []string{":9443"}, TLSConnPolicies: tls, Routes: caddyhttp.RouteList{route(true, "a.example")}}, "https://a.example:9443", ""},
		{"IPv6 literal", &caddyhttp.Server{Listen: []string{"[::1]:8443"}, TLSConnPolicies: tls, Routes: caddyhttp.RouteList{route(true, "::1")}}, "https://[::1]:8443", ""},
		{"catch-all", &caddyhttp.Server{Listen: []string{":8080"}, Routes: caddyhttp.RouteList{route(true)}}, "", "no host name"},
		{"several hosts", &caddyhttp.Server{Listen: []string{":443"}, TLSConnPolicies: tls, Routes: caddyhttp.RouteList{route(true, "a.example", "b.example")}}, "", "several host names"},
		{"wildcard", &caddyhttp.Server{Listen: []string{":443"}, TLSConnPolicies: tls, Routes: caddyhttp.RouteList{route(true, "*.example")}}, "", "pattern"},
		{"several ports", &caddyhttp.Server{Listen: []string{":80", ":8080"}, Routes: caddyhttp.RouteList{route(true, "a.example")}}, "", "several ports"},
		{"unix socket", &caddyhttp.Server{Listen: []string{"unix//run/caddy.sock"}, Routes: caddyhttp.RouteList{route(true, "a.example")}}, "", "listens on"},
		{"no route loading", &caddyhttp.Server{Listen: []string{":80"}, Routes: caddyhttp.RouteList{route(false, "a.example")}}, "", "which route"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := caddy.Context{Context: context.WithValue(context.Background(), caddyhttp.ServerCtxKey, tc.srv)}
			got, err := siteIssuer(ctx)
			if tc.want != "" && (err != nil || got != tc.want) {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.refusal) || !strings.Contains(err.Error(), "issuer")) {
				t.Fatalf("got %q, %v; want a refusal mentioning %q and issuer", got, err, tc.refusal)
			}
		})
	}
	if _, err := siteIssuer(caddy.Context{Context: context.Background()}); err == nil {
		t.Fatal("outside a server: no error")
	}
}

// TestProvisionRefusesBeforeOpening: names that could pass for a table
// user's subject and unknown entity_admin_kind values are refused before
// the store is opened.
func TestProvisionRefusesBeforeOpening(t *testing.T) {
	store := filepath.Join(t.TempDir(), "never.db")
	for _, tc := range []struct {
		name string
		g    config.Gateway
		want string
	}{
		{"user with a colon", config.Gateway{Users: []config.User{{Name: "app:1", PasswordHash: "$2a$x"}}}, `user "app:1"`},
		{"client with a colon", config.Gateway{Clients: []config.Client{{ID: "a:b", SecretHash: "$2a$x"}}}, `client "a:b"`},
		{"entity with a colon", config.Gateway{Entities: []config.Entity{{ID: "x:1"}}}, `entity "x:1"`},
		{"table with a colon", config.Gateway{UserTables: []config.UserTable{{Name: "a:b"}}}, `user_table "a:b"`},
		{"unknown admin kind", config.Gateway{EntityAdminKinds: []string{"admin"}}, "entity_admin_kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.g.Issuer = "https://gw.example"
			tc.g.Store = &config.Store{Driver: "sqlite", DSN: store}
			h := &Handler{Gateway: tc.g, log: zap.NewNop()}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			if err := h.Provision(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Provision: %v, want an error about %s", err, tc.want)
			}
			if _, err := os.Stat(store); !os.IsNotExist(err) {
				t.Fatalf("the store was opened: %v", err)
			}
		})
	}
}
