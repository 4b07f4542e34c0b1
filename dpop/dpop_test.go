package dpop_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
)

const (
	tokenURL = "https://api.example/token"
	resURL   = "https://api.example/orders/1"
)

// sharedRecord is a replay record two verifiers share, as two instances
// share a store.
type sharedRecord struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (s *sharedRecord) use(_ context.Context, id string, exp time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[id]; ok {
		return false, nil
	}
	s.seen[id] = exp
	return true, nil
}

func TestVerify(t *testing.T) {
	key := dpoptest.NewKey("ES256")
	other := dpoptest.NewKey("ES256")
	now := time.Now()
	set := func(k string, v any) func(dpoptest.Header, dpoptest.Claims) {
		return func(h dpoptest.Header, c dpoptest.Claims) {
			if _, ok := h[k]; ok || k == "crit" {
				h[k] = v
			} else {
				c[k] = v
			}
		}
	}
	del := func(k string) func(dpoptest.Header, dpoptest.Claims) {
		return func(h dpoptest.Header, c dpoptest.Claims) { delete(h, k); delete(c, k) }
	}
	tests := []verifyCase{
		{"valid at token endpoint", func() string { return key.Proof("POST", tokenURL, "") }, dpop.Request{Method: "POST", URL: tokenURL}, ""},
		{"valid at resource", func() string { return key.Proof("GET", resURL, "tok") }, dpop.Request{Method: "GET", URL: resURL, AccessToken: "tok"}, ""},
		{"htu query ignored, host case and default port normalised", func() string {
			return key.Proof("GET", "HTTPS://API.example:443/orders/1?x=1#f", "tok")
		}, dpop.Request{Method: "GET", URL: resURL, AccessToken: "tok"}, ""},
		{"EdDSA", func() string { return dpoptest.NewKey("EdDSA").Proof("POST", tokenURL, "") }, dpop.Request{Method: "POST", URL: tokenURL}, ""},
		{"PS256", func() string { return dpoptest.NewKey("PS256").Proof("POST", tokenURL, "") }, dpop.Request{Method: "POST", URL: tokenURL}, ""},
		{"wrong htm", func() string { return key.Proof("GET", tokenURL, "") }, dpop.Request{Method: "POST", URL: tokenURL}, "htm"},
		{"wrong htu path", func() string { return key.Proof("POST", "https://api.example/other", "") }, dpop.Request{Method: "POST", URL: tokenURL}, "htu"},
		{"wrong htu host", func() string { return key.Proof("POST", "https://evil.example/token", "") }, dpop.Request{Method: "POST", URL: tokenURL}, "htu"},
		{"wrong htu scheme", func() string { return key.Proof("POST", "http://api.example/token", "") }, dpop.Request{Method: "POST", URL: tokenURL}, "htu"},
		{"relative htu", func() string { return key.Proof("POST", "/token", "") }, dpop.Request{Method: "POST", URL: tokenURL}, "htu"},
		{"stale iat", func() string { return key.Proof("POST", tokenURL, "", set("iat", now.Add(-2*time.Minute).Unix())) }, dpop.Request{Method: "POST", URL: tokenURL}, "iat"},
		{"future iat", func() string { return key.Proof("POST", tokenURL, "", set("iat", now.Add(2*time.Minute).Unix())) }, dpop.Request{Method: "POST", URL: tokenURL}, "iat"},
		{"iat a string", func() string { return key.Proof("POST", tokenURL, "", set("iat", "now")) }, dpop.Request{Method: "POST", URL: tokenURL}, "claims"},
		{"no jti", func() string { return key.Proof("POST", tokenURL, "", del("jti")) }, dpop.Request{Method: "POST", URL: tokenURL}, "lacks"},
		{"ath at token endpoint", func() string { return key.Proof("POST", tokenURL, "tok") }, dpop.Request{Method: "POST", URL: tokenURL}, "ath"},
		{"no ath at resource", func() string { return key.Proof("GET", resURL, "") }, dpop.Request{Method: "GET", URL: resURL, AccessToken: "tok"}, "ath"},
		{"ath of another token", func() string { return key.Proof("GET", resURL, "other") }, dpop.Request{Method: "GET", URL: resURL, AccessToken: "tok"}, "ath"},
		{"wrong typ", func() string { return key.Proof("POST", tokenURL, "", set("typ", "JWT")) }, dpop.Request{Method: "POST", URL: tokenURL}, "typ"},
		{"no jwk", func() string { return key.Proof("POST", tokenURL, "", del("jwk")) }, dpop.Request{Method: "POST", URL: tokenURL}, "jwk"},
		{"jwk of another key", func() string { return key.Proof("POST", tokenURL, "", set("jwk", other.JWK)) }, dpop.Request{Method: "POST", URL: tokenURL}, "signature"},
		{"private jwk", func() string { return key.Proof("POST", tokenURL, "", set("jwk", key.PrivateJWK())) }, dpop.Request{Method: "POST", URL: tokenURL}, "private"},
		{"alg none", func() string {
			return dpoptest.Unsigned(dpoptest.Header{"typ": "dpop+jwt", "jwk": key.JWK}, dpoptest.Claims{"jti": "n", "htm": "POST", "htu": tokenURL, "iat": now.Unix()})
		}, dpop.Request{Method: "POST", URL: tokenURL}, "algorithms"},
		{"HS256", func() string {
			return dpoptest.HMAC([]byte("k"), dpoptest.Header{"typ": "dpop+jwt", "jwk": map[string]any{"kty": "oct", "k": "aw"}}, dpoptest.Claims{"jti": "h", "htm": "POST", "htu": tokenURL, "iat": now.Unix()})
		}, dpop.Request{Method: "POST", URL: tokenURL}, "algorithms"},
		{"alg not allowed", func() string { return dpoptest.NewKey("RS256").Proof("POST", tokenURL, "") }, dpop.Request{Method: "POST", URL: tokenURL}, "algorithms"},
		{"Ed25519 not allowed", func() string { return ed.Proof("POST", tokenURL, "") }, dpop.Request{Method: "POST", URL: tokenURL}, "algorithms"},
		{"unknown crit", func() string { return key.Proof("POST", tokenURL, "", set("crit", []string{"exp"})) }, dpop.Request{Method: "POST", URL: tokenURL}, "signature"},
		{"garbage", func() string { return "a.b.c" }, dpop.Request{Method: "POST", URL: tokenURL}, "compact JWS"},
		{"too large", func() string { return strings.Repeat("a", 9000) }, dpop.Request{Method: "POST", URL: tokenURL}, "large"},
	}
	v, err := dpop.New(dpop.Config{Algs: []string{"ES256", "EdDSA", "PS256"}})
	if err != nil {
		t.Fatal(err)
	}
	run(t, v, tests)
}

// ed is a key signing with RFC 9864's alg name Ed25519, as oauth4webapi does.
var ed = dpoptest.NewKey("Ed25519")

func TestVerifyEd25519(t *testing.T) {
	now := time.Now()
	set := func(k string, v any) func(dpoptest.Header, dpoptest.Claims) {
		return func(h dpoptest.Header, c dpoptest.Claims) { h[k] = v }
	}
	req := dpop.Request{Method: "POST", URL: tokenURL}
	tests := []verifyCase{
		{"valid", func() string { return ed.Proof("POST", tokenURL, "") }, req, ""},
		{"wrong htu", func() string { return ed.Proof("POST", resURL, "") }, req, "htu"},
		{"private jwk", func() string { return ed.Proof("POST", tokenURL, "", set("jwk", ed.PrivateJWK())) }, req, "private"},
		{"EC jwk", func() string { return ed.Proof("POST", tokenURL, "", set("jwk", dpoptest.NewKey("ES256").JWK)) }, req, "Ed25519"},
		{"jwk of another key", func() string { return ed.Proof("POST", tokenURL, "", set("jwk", dpoptest.NewKey("Ed25519").JWK)) }, req, "signature"},
		{"typ", func() string { return ed.Proof("POST", tokenURL, "", set("typ", "JWT")) }, req, "typ"},
		{"crit", func() string { return ed.Proof("POST", tokenURL, "", set("crit", []string{"x"})) }, req, "critical"},
		{"no jwk", func() string {
			return ed.Proof("POST", tokenURL, "", func(h dpoptest.Header, _ dpoptest.Claims) { delete(h, "jwk") })
		}, req, "jwk"},
		{"stale", func() string {
			return ed.Proof("POST", tokenURL, "", func(_ dpoptest.Header, c dpoptest.Claims) { c["iat"] = now.Add(-time.Hour).Unix() })
		}, req, "iat"},
		{"truncated", func() string { p := ed.Proof("POST", tokenURL, ""); return p[:len(p)-4] }, req, "signature"},
	}
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	run(t, v, tests)
	p, err := v.Verify(context.Background(), ed.Proof("POST", tokenURL, ""), req)
	if err != nil || p.JKT != ed.JKT() {
		t.Fatalf("thumbprint %v, %v; want %s", p, err, ed.JKT())
	}
}

type verifyCase struct {
	name  string
	proof func() string
	req   dpop.Request
	want  string // "" ok, else a fragment of the description
}

func run(t *testing.T, v *dpop.Verifier, tests []verifyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.proof(), tt.req)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.JKT == "" {
					t.Fatal("no thumbprint")
				}
				return
			}
			var de *dpop.Error
			if !errors.As(err, &de) || de.Code != dpop.CodeInvalidProof || !strings.Contains(de.Description, tt.want) {
				t.Fatalf("got %v, want invalid_dpop_proof about %q", err, tt.want)
			}
		})
	}
}

func TestThumbprint(t *testing.T) {
	key := dpoptest.NewKey("EdDSA")
	v, _ := dpop.New(dpop.Config{})
	p, err := v.Verify(context.Background(), key.Proof("POST", tokenURL, ""), dpop.Request{Method: "POST", URL: tokenURL})
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != key.JKT() {
		t.Fatalf("jkt %s, want %s", p.JKT, key.JKT())
	}
	// RFC 7638 §3.1's example key and thumbprint.
	if got := dpop.RFC7638Thumbprint(t); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("RFC 7638 example thumbprint = %s", got)
	}
}

func TestReplaySharedAcrossVerifiers(t *testing.T) {
	shared := &sharedRecord{seen: map[string]time.Time{}}
	a, _ := dpop.New(dpop.Config{Replay: shared.use})
	b, _ := dpop.New(dpop.Config{Replay: shared.use})
	key := dpoptest.NewKey("ES256")
	proof := key.Proof("POST", tokenURL, "")
	req := dpop.Request{Method: "POST", URL: tokenURL}
	if _, err := a.Verify(context.Background(), proof, req); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(context.Background(), proof, req); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replay on the same verifier: %v", err)
	}
	if _, err := b.Verify(context.Background(), proof, req); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replay on another instance: %v", err)
	}
	// The same jti from another key is another proof.
	if _, err := b.Verify(context.Background(), dpoptest.NewKey("ES256").Proof("POST", tokenURL, ""), req); err != nil {
		t.Fatal(err)
	}
	fail, _ := dpop.New(dpop.Config{Replay: func(context.Context, string, time.Time) (bool, error) { return false, errors.New("store down") }})
	if _, err := fail.Verify(context.Background(), key.Proof("POST", tokenURL, ""), req); err == nil || errors.As(err, new(*dpop.Error)) {
		t.Fatalf("a store failure must be an error, not a verdict on the proof: %v", err)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	v, _ := dpop.New(dpop.Config{MaxCached: 8})
	key := dpoptest.NewKey("EdDSA")
	req := dpop.Request{Method: "POST", URL: tokenURL}
	first := key.Proof("POST", tokenURL, "")
	if _, err := v.Verify(context.Background(), first, req); err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if _, err := v.Verify(context.Background(), key.Proof("POST", tokenURL, ""), req); err != nil {
			t.Fatal(err)
		}
	}
	if n := dpop.CacheLen(v); n > 8 {
		t.Fatalf("cache holds %d entries, bound is 8", n)
	}
}

func TestNonce(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	v, _ := dpop.New(dpop.Config{NonceKey: []byte("0123456789abcdef0123456789abcdef"), Window: time.Minute, Now: clock})
	peer, _ := dpop.New(dpop.Config{NonceKey: []byte("0123456789abcdef0123456789abcdef"), Window: time.Minute, Now: clock})
	key := dpoptest.NewKey("ES256")
	req := dpop.Request{Method: "POST", URL: tokenURL}
	iat := func(h dpoptest.Header, c dpoptest.Claims) { c["iat"] = now.Unix() }
	_, err := v.Verify(context.Background(), key.Proof("POST", tokenURL, "", iat), req)
	var de *dpop.Error
	if !errors.As(err, &de) || de.Code != dpop.CodeUseNonce {
		t.Fatalf("no nonce: %v", err)
	}
	nonce := v.Nonce()
	with := func(n string) func(dpoptest.Header, dpoptest.Claims) {
		return func(h dpoptest.Header, c dpoptest.Claims) { c["nonce"] = n; c["iat"] = now.Unix() }
	}
	if _, err := peer.Verify(context.Background(), key.Proof("POST", tokenURL, "", with(nonce)), req); err != nil {
		t.Fatalf("another instance's nonce: %v", err)
	}
	if _, err := v.Verify(context.Background(), key.Proof("POST", tokenURL, "", with("made-up")), req); !errors.As(err, &de) || de.Code != dpop.CodeUseNonce {
		t.Fatalf("made-up nonce: %v", err)
	}
	now = now.Add(90 * time.Second) // the next step: the previous nonce still works
	if _, err := v.Verify(context.Background(), key.Proof("POST", tokenURL, "", with(nonce)), req); err != nil {
		t.Fatalf("previous step's nonce: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.Verify(context.Background(), key.Proof("POST", tokenURL, "", with(nonce)), req); !errors.As(err, &de) || de.Code != dpop.CodeUseNonce {
		t.Fatalf("old nonce: %v", err)
	}
}

func TestConfig(t *testing.T) {
	for _, algs := range [][]string{{"none"}, {"HS256"}, {"ES256", "HS512"}} {
		if _, err := dpop.New(dpop.Config{Algs: algs}); err == nil {
			t.Errorf("algs %v accepted", algs)
		}
	}
}

func TestFromHeader(t *testing.T) {
	h := map[string][]string{}
	if _, err := dpop.FromHeader(h); !errors.Is(err, dpop.ErrNoProof) {
		t.Fatal(err)
	}
	h["Dpop"] = []string{"a", "b"}
	if _, err := dpop.FromHeader(h); !errors.As(err, new(*dpop.Error)) {
		t.Fatal("two DPoP headers accepted")
	}
}

func TestSameURL(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		same bool
	}{
		{"https://a.example/x", "https://a.example/x", true},
		{"https://A.Example:443/x?q#f", "https://a.example/x", true},
		{"http://a.example:80", "http://a.example/", true},
		{"https://a.example/%7euser", "https://a.example/~user", true},
		{"https://a.example/a%2fb", "https://a.example/a%2Fb", true},
		{"https://a.example/a%2Fb", "https://a.example/a/b", false},
		{"https://a.example:8443/x", "https://a.example/x", false},
		{"https://u:p@a.example/x", "https://a.example/x", false},
		{"ftp://a.example/x", "ftp://a.example/x", false},
		{"https://a.example/X", "https://a.example/x", false},
	} {
		if got := dpop.SameURL(tt.a, tt.b); got != tt.same {
			t.Errorf("SameURL(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

// FuzzVerify feeds arbitrary proofs to the verifier: it must refuse them
// with an *Error (never panic, never accept without a valid signature).
func FuzzVerify(f *testing.F) {
	key := dpoptest.NewKey("ES256")
	f.Add(key.Proof("POST", tokenURL, ""), "POST", tokenURL, "")
	f.Add(ed.Proof("GET", resURL, "tok"), "GET", resURL, "tok")
	f.Add(dpoptest.Unsigned(dpoptest.Header{"typ": "dpop+jwt", "jwk": key.JWK}, dpoptest.Claims{"jti": "x", "htm": "POST", "htu": tokenURL, "iat": 1e300}), "POST", tokenURL, "")
	f.Add("eyJhbGciOiJFZDI1NTE5In0.e30.", "GET", resURL, "")
	f.Add("..", "GET", "http://a/", "t")
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, proof, method, url, token string) {
		p, err := v.Verify(context.Background(), proof, dpop.Request{Method: method, URL: url, AccessToken: token})
		if err == nil {
			// Only a proof signed by the key it names can pass; the fuzzer
			// cannot forge one, but it may replay a seed.
			if p.JKT == "" {
				t.Fatal("accepted without a thumbprint")
			}
			return
		}
		if !errors.As(err, new(*dpop.Error)) {
			t.Fatalf("refusal is not a *dpop.Error: %v", err)
		}
	})
}

// FuzzSameURL checks that the comparison never panics and is symmetric.
func FuzzSameURL(f *testing.F) {
	f.Add("https://A.example:443/%7ex?q#f", "https://a.example/~x")
	f.Add("http://a.example/a%2fb", "http://a.example/a/b")
	f.Add("http://[::1]:80/%", "http://[::1]/%")
	f.Fuzz(func(t *testing.T, a, b string) {
		if dpop.SameURL(a, b) != dpop.SameURL(b, a) {
			t.Fatalf("SameURL(%q, %q) is not symmetric", a, b)
		}
	})
}
