package tokengate

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// provisionedOn provisions a handler on the SQLite store at dsn. Two DSN
// spellings of one file get two Cores, as two Caddy instances would.
func provisionedOn(tb testing.TB, dsn string) *Handler {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	h := &Handler{Gateway: config.Gateway{Store: &config.Store{Driver: "sqlite", DSN: dsn}, Issuer: "https://api.example"}}
	h.log = zap.NewNop()
	h.standalone = true // no Caddy config, so no tokengate app to start it
	if err := h.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Cleanup() })
	return h
}

// dpopToken issues a client_credentials token bound to key through h.
func dpopToken(tb testing.TB, h *Handler, secret string, key *dpoptest.Key) string {
	tb.Helper()
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}.Encode()
	req := httptest.NewRequest(http.MethodPost, "https://api.example/token", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", key.Proof("POST", "https://api.example/token", ""))
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, withReplacer(req), okNext); err != nil || rec.Code != 200 || !strings.Contains(rec.Body.String(), `"token_type":"DPoP"`) {
		tb.Fatalf("issuing: %v %d %s", err, rec.Code, rec.Body)
	}
	return rec.Body.String()[len(`{"access_token":"`):strings.Index(rec.Body.String(), `","token_type`)]
}

func dpopRequest(tok, proof string) *http.Request {
	req := withReplacer(httptest.NewRequest(http.MethodGet, "https://api.example/admin/x", nil))
	req.Header.Set("Authorization", "DPoP "+tok)
	req.Header.Set("DPoP", proof)
	return req
}

// TestDPoPReplayAcrossInstances: a proof accepted by one instance is
// refused by another on the same store, though neither has seen it in memory.
func TestDPoPReplayAcrossInstances(t *testing.T) {
	dir := t.TempDir()
	a := provisionedOn(t, filepath.Join(dir, "tg.db"))
	// Another path to the same file (store paths are cleaned, so dir/./tg.db
	// would name the same pooled Core): a second instance on the store.
	other := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, other); err != nil {
		t.Fatal(err)
	}
	b := provisionedOn(t, filepath.Join(other, "tg.db"))
	if a.core == b.core {
		t.Fatal("the two handlers share a Core; the test needs two")
	}
	secret, err := issuer.NewSecret("tgs_")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.core.Store().PutClient(context.Background(), issuer.Client{ID: "svc", SecretHash: a.core.Hasher().Hash(secret)}); err != nil {
		t.Fatal(err)
	}
	key := dpoptest.NewKey("ES256")
	tok := dpopToken(t, a, secret, key)
	proof := key.Proof("GET", "https://api.example/admin/x", tok)
	rec := httptest.NewRecorder()
	if err := a.ServeHTTP(rec, dpopRequest(tok, proof), okNext); err != nil || rec.Code != http.StatusNoContent {
		t.Fatalf("first use on instance a: %v %d %s", err, rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	if err := b.ServeHTTP(rec, dpopRequest(tok, proof), okNext); err != nil || rec.Code != 401 || !strings.Contains(rec.Body.String(), "already used") {
		t.Fatalf("replay on instance b: %v %d %s", err, rec.Code, rec.Body)
	}
	// A token proof replayed at the other instance's /token is refused too.
	tp := key.Proof("POST", "https://api.example/token", "")
	body := url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {secret}}.Encode()
	for i, h := range []*Handler{a, b} {
		req := httptest.NewRequest(http.MethodPost, "https://api.example/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("DPoP", tp)
		rec := httptest.NewRecorder()
		_ = h.ServeHTTP(rec, withReplacer(req), okNext)
		if want := []int{200, 400}[i]; rec.Code != want {
			t.Fatalf("token proof on instance %d: %d %s, want %d", i, rec.Code, rec.Body, want)
		}
	}
}

// BenchmarkGuardDPoP measures the guard with a DPoP-bound token and a fresh
// ES256 proof per request (parse, signature, thumbprint, ath, replay record
// in memory and in the SQLite store) beside the same request with a bearer
// token, in the same run. Proofs are signed before the timer starts.
func BenchmarkGuardDPoP(b *testing.B) {
	h, secret := provisioned(b)
	bearer := issueToken(b, h, secret)
	key := dpoptest.NewKey("ES256")
	tok := dpopToken(b, h, secret, key)
	b.Run("bearer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			req := withReplacer(httptest.NewRequest(http.MethodGet, "https://api.example/admin/x", nil))
			req.Header.Set("Authorization", "Bearer "+bearer)
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, req, okNext); err != nil || rec.Code != http.StatusNoContent {
				b.Fatalf("guard: %v %d %s", err, rec.Code, rec.Body)
			}
		}
	})
	b.Run("dpop-ES256", func(b *testing.B) { benchDPoP(b, h, key, tok) })
	// The same without the shared replay record: what the store write costs.
	shared := h.dpop
	memOnly, err := dpop.New(dpop.Config{Now: h.core.Now})
	if err != nil {
		b.Fatal(err)
	}
	h.dpop = memOnly
	b.Run("dpop-ES256-memory-replay-only", func(b *testing.B) { benchDPoP(b, h, key, tok) })
	h.dpop = shared
}

func benchDPoP(b *testing.B, h *Handler, key *dpoptest.Key, tok string) {
	proofs := make([]string, b.N)
	for i := range proofs {
		proofs[i] = key.Proof("GET", "https://api.example/admin/x", tok)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec := httptest.NewRecorder()
		if err := h.ServeHTTP(rec, dpopRequest(tok, proofs[i]), okNext); err != nil || rec.Code != http.StatusNoContent {
			b.Fatalf("guard: %v %d %s", err, rec.Code, rec.Body)
		}
	}
}
