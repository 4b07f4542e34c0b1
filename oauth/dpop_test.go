package oauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// TestDPoPReplayStoreOutage: when the replay record (the store) cannot
// record a proof, /token answers 503 temporarily_unavailable with
// Retry-After, as the guard does, not a 500.
func TestDPoPReplayStoreOutage(t *testing.T) {
	v, err := dpop.New(dpop.Config{Replay: func(context.Context, string, time.Time) (bool, error) {
		return false, errors.New("store unreachable")
	}})
	if err != nil {
		t.Fatal(err)
	}
	is := issuertest.New(t, issuer.Config{Issuer: gw})
	srv := &oauth.Server{Issuer: is, Log: zap.NewNop(),
		DPoP: &oauth.DPoP{Verifier: v, URL: func(r *http.Request) string { return gw + r.URL.Path }}}
	s := &server{t: t, routes: map[string]func(http.ResponseWriter, *http.Request){}}
	for path, rt := range srv.Routes() {
		s.routes[path] = rt.Handler
	}
	r := s.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {issuertest.Password}},
		"DPoP", dpoptest.NewKey("ES256").Proof("POST", gw+"/token", ""))
	if r.status != http.StatusServiceUnavailable || r.json["error"] != "temporarily_unavailable" || r.header.Get("Retry-After") == "" {
		t.Fatalf("got %d %v (Retry-After %q), want 503 temporarily_unavailable with Retry-After", r.status, r.json, r.header.Get("Retry-After"))
	}
}
