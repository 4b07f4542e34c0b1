package tokengate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// provisioned returns a Handler provisioned outside a running Caddy, with a
// client whose secret was generated (keyed-hash verified) and stored.
func provisioned(tb testing.TB) (*Handler, string) {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	h := &Handler{Gateway: config.Gateway{
		Store:          &config.Store{Driver: "sqlite", DSN: filepath.Join(tb.TempDir(), "tg.db")},
		Issuer:         "https://api.example",
		Require:        []config.Requirement{{Path: []string{"/admin/*"}, Kind: "role", Values: []string{"admin"}}},
		Allow:          []string{"/health"},
		ForwardHeaders: []config.ForwardHeader{{Header: "X-User-Id", Claim: "sub"}},
	}}
	h.log = zap.NewNop() // a line per issuance is right in production, noise here
	h.standalone = true  // no Caddy config, so no tokengate app to start it
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Cleanup() })
	secret, err := issuer.NewSecret("tgs_")
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.core.Store().PutClient(context.Background(), issuer.Client{ID: "svc", SecretHash: h.core.Hasher().Hash(secret), Roles: []string{"admin"}}); err != nil {
		tb.Fatal(err)
	}
	return h, secret
}

func withReplacer(r *http.Request) *http.Request {
	repl := caddy.NewReplacer()
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

var okNext = caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
})

func issueToken(tb testing.TB, h *Handler, secret string) string {
	tb.Helper()
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "https://api.example/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(req), okNext); err != nil || rec.Code != 200 {
		tb.Fatalf("issuing: %v %d %s", err, rec.Code, rec.Body)
	}
	return rec.Body.String()[len(`{"access_token":"`):strings.Index(rec.Body.String(), `","token_type`)]
}

// BenchmarkGuard measures a guarded request with a valid token (the hot path:
// verify, rule check, identity headers) against a handler that does nothing.
func BenchmarkGuard(b *testing.B) {
	h, secret := provisioned(b)
	tok := issueToken(b, h, secret)
	b.Run("valid-token", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := withReplacer(httptest.NewRequest(http.MethodGet, "https://api.example/admin/x", nil))
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				if err := h.ServeHTTP(rec, req, okNext); err != nil || rec.Code != http.StatusNoContent {
					b.Fatalf("guard: %v %d %s", err, rec.Code, rec.Body)
				}
			}
		})
	})
	b.Run("no-guard-baseline", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := withReplacer(httptest.NewRequest(http.MethodGet, "https://api.example/admin/x", nil))
				req.Header.Set("Authorization", "Bearer "+tok)
				rec := httptest.NewRecorder()
				_ = okNext.ServeHTTP(rec, req)
			}
		})
	})
	b.Run("missing-token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := withReplacer(httptest.NewRequest(http.MethodGet, "https://api.example/admin/x", nil))
			rec := httptest.NewRecorder()
			_ = h.ServeHTTP(rec, req, okNext)
		}
	})
}

// BenchmarkClientCredentials measures a whole client_credentials issuance
// through the handler: parse, keyed-hash check, sign, respond.
func BenchmarkClientCredentials(b *testing.B) {
	h, secret := provisioned(b)
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}.Encode()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "https://api.example/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, withReplacer(req), okNext); err != nil || rec.Code != 200 {
				b.Fatalf("issuing: %v %d", err, rec.Code)
			}
		}
	})
}

// BenchmarkRefusedSignIn measures what a wrong-password flood from one
// client IP costs per request once the IP is throttled: the 429 path,
// which computes no hash. checked/op counts the attempts let through when
// a backoff ran out (each one hash).
func BenchmarkRefusedSignIn(b *testing.B) {
	h, _ := provisioned(b)
	body := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}.Encode()
	signIn := func() int {
		req := httptest.NewRequest(http.MethodPost, "https://api.example/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		_ = h.ServeHTTP(rec, withReplacer(req), okNext)
		return rec.Code
	}
	for signIn() != http.StatusTooManyRequests { // use up the IP's free failures
	}
	var checked atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			switch code := signIn(); code {
			case http.StatusTooManyRequests:
			case http.StatusBadRequest: // invalid_grant: a backoff ran out
				checked.Add(1)
			default:
				b.Fatalf("wrong password from a throttled IP answered %d", code)
			}
		}
	})
	b.ReportMetric(float64(checked.Load())/float64(b.N), "checked/op")
}
