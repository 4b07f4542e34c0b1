package tokengate

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
)

func TestProtectFromConnection(t *testing.T) {
	h := &Handler{Gateway: config.Gateway{ForwardHeaders: []config.ForwardHeader{{Header: "X-User-Id", Claim: "sub"}, {Header: "X-Roles", Claim: "roles"}}}}
	for _, tc := range []struct {
		in   []string
		want []string // nil: no Connection header left
	}{
		{[]string{"keep-alive"}, []string{"keep-alive"}},
		{[]string{"close"}, []string{"close"}},
		{[]string{"X-User-Id"}, nil},
		{[]string{"x_user_ID"}, nil},
		{[]string{"Upgrade, X-User-Id"}, []string{"Upgrade"}},
		{[]string{"keep-alive, authorization,X-Roles", "X-Hop"}, []string{"keep-alive, X-Hop"}},
		{[]string{"X-Hop, X-Set-Later"}, []string{"X-Hop"}}, // absent now: a later handler may set it
		{[]string{" , X-Hop"}, []string{" , X-Hop"}},        // untouched: nothing to drop
	} {
		hdr := http.Header{"Connection": tc.in, "X-Hop": {"1"}, "Authorization": {"Bearer x"}}
		h.protectFromConnection(hdr)
		got := hdr["Connection"]
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || (tc.want == nil) != (got == nil) {
			t.Errorf("Connection %q became %q, want %q", tc.in, got, tc.want)
		}
	}
}

// provisionGateway provisions a handler outside a running Caddy.
func provisionGateway(t *testing.T, g config.Gateway) error {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	g.Store = &config.Store{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "tg.db")}
	g.Issuer = "https://gw.example"                                // outside Caddy there is no site address to derive it from
	h := &Handler{Gateway: g, log: zap.NewNop(), standalone: true} // no Caddy config to start it
	err := h.Provision(ctx)
	if err == nil {
		err = h.Validate()
	}
	t.Cleanup(func() { h.Cleanup() })
	return err
}

func TestGuardConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		g    config.Gateway
		want string
	}{
		{"allow pattern never canonical", config.Gateway{Allow: []string{"/public/../admin"}}, "write \"/admin\""},
		{"allow pattern with //", config.Gateway{Allow: []string{"/a//b/*"}}, "never match"},
		{"require pattern with ;", config.Gateway{Require: []config.Requirement{{Path: []string{"/admin;x/*"}, Kind: "role", Values: []string{"a"}}}}, "require"},
		{"require pattern not a path", config.Gateway{Require: []config.Requirement{{Path: []string{"admin"}, Kind: "role", Values: []string{"a"}}}}, "must start with"},
		{"unknown relaxation", config.Gateway{Paths: &config.PathPolicy{Lenient: []string{"control"}}}, "unknown path relaxation"},
		{"hop-by-hop forward_header", config.Gateway{ForwardHeaders: []config.ForwardHeader{{Header: "Keep-Alive", Claim: "sub"}}}, "hop-by-hop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := provisionGateway(t, tc.g); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if err := provisionGateway(t, config.Gateway{Allow: []string{"/a;b/*"}, Paths: &config.PathPolicy{Lenient: []string{"semicolon"}}}); err != nil {
		t.Fatalf("a ; pattern with semicolons allowed: %v", err)
	}
}

// TestGuardPlainPathAllocations: for a plain path the guard's path work
// (canonical form, rule matching, the Connection check) allocates nothing.
func TestGuardPlainPathAllocations(t *testing.T) {
	h, _ := provisioned(t)
	hdr := http.Header{"Connection": {"keep-alive"}}
	allocs := testing.AllocsPerRun(100, func() {
		u := url.URL{Path: "/admin/orders/42"}
		if _, err := h.canonicalize(&u); err != nil || h.allow.Match(u.Path) || !h.require[0].match.Match(u.Path) {
			t.Fatal("unexpected result")
		}
		h.protectFromConnection(hdr)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for a plain path", allocs)
	}
	u := url.URL{Path: "/admin//orders/./42"}
	if _, err := h.canonicalize(&u); err != nil || u.Path != "/admin/orders/42" || u.EscapedPath() != "/admin/orders/42" {
		t.Fatalf("canonicalize: %v %q", err, u.Path)
	}
}
