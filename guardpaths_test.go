package tokengate_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
)

// recorded is what the upstream received.
type recorded struct {
	uri    string // the request-target exactly as it arrived
	header http.Header
	body   string
	length int64
}

// recorder is an upstream that records every request it receives.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, recorded{uri: r.RequestURI, header: r.Header.Clone(), body: string(b), length: r.ContentLength})
		rec.mu.Unlock()
		fmt.Fprint(w, "upstream")
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// take returns and forgets what the upstream received since the last call.
func (rec *recorder) take() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	got := rec.got
	rec.got = nil
	return got
}

// startProxyGateway runs tokengate in front of reverse_proxy to rec, with
// alice (admin), bob (viewer), allow /health /public/*, require /admin/*
// role admin, and extra lines in the tokengate block. It returns the
// gateway and its store path.
func startProxyGateway(t *testing.T, rec *recorder, extra string, site ...string) (*gateway, string) {
	t.Helper()
	userHash, _ := hashes()
	store := filepath.Join(t.TempDir(), "tg.db")
	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		user alice %s roles admin
		user bob %s roles viewer
		allow /health /public/*
		require /admin/* role admin
		forward_header X-User-Id sub
		forward_header X-Roles roles
		%s
	}
	%s
	reverse_proxy %s
}`, store, userHash, userHash, extra, strings.Join(site, "\n\t"), strings.TrimPrefix(rec.srv.URL, "http://")), "caddyfile")
	return g, store
}

// rawRequest sends a request line exactly as written (Go's client would
// clean or refuse many of these paths) and reads the answer.
func rawRequest(t *testing.T, method, target string, headers ...string) response {
	t.Helper()
	return sendRaw(t, method, target, "", headers...)
}

// sendRaw writes method, target, headers and body (sent as written: the
// caller sets Content-Length or Transfer-Encoding) on a new connection.
func sendRaw(t *testing.T, method, target, body string, headers ...string) response {
	t.Helper()
	conn, err := net.Dial("tcp", "127.0.0.1:"+strings.TrimPrefix(base, "http://localhost:"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, strings.TrimPrefix(base, "http://"))
	for i := 0; i+1 < len(headers); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	b.WriteString("Connection: close\r\n\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: %v", method, target, err)
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, body: string(rb)}
	_ = json.Unmarshal(rb, &r.json)
	return r
}

// TestNoPathBypassReachesUpstream sends every path trick we know through
// Caddy to a real upstream. Ambiguous paths are refused with 400; the
// others are judged on their canonical form, which is exactly what the
// upstream then receives.
func TestNoPathBypassReachesUpstream(t *testing.T) {
	rec := newRecorder(t)
	g, _ := startProxyGateway(t, rec, "")
	alice := g.passwordToken("alice")["access_token"].(string)
	bob := g.passwordToken("bob")["access_token"].(string)
	rec.take()

	// refused: 400 for everyone, nothing forwarded. byGo: net/http itself
	// refuses the request line (raw control bytes) before Caddy runs.
	refused := []struct {
		path string
		byGo bool
	}{
		{"/public/..;/admin/x", false},
		{"/public/..%3b/admin/x", false},
		{"/public/..%3B/admin/x", false},
		{"/admin;x/users", false},
		{"/admin;/users", false},
		{"/admin/x;jsessionid=1", false},
		{"/public/..%5cadmin/x", false},
		{"/public/..%5Cadmin/x", false},
		{`/public/..\admin/x`, false},
		{`/admin\x`, false},
		{`/public\..\admin\x`, false},
		{"/public%2f..%2fadmin/x", false},
		{"/public%2F..%2Fadmin/x", false},
		{"/public/..%2fadmin/x", false},
		{"/public/%2e%2e/admin/x", false},
		{"/public/%2E%2E/admin/x", false},
		{"/public/.%2e/admin/x", false},
		{"/admin%2e/x", false},
		{"/public/%252e%252e/admin/x", false},
		{"/public/%25%32%65%25%32%65/admin/x", false},
		{"/public/%252f..%252fadmin/x", false},
		{"/admin./x", false},
		{"/admin../x", false},
		{"/public/.../admin/x", false},
		{"/admin%20/x", false},
		{"/public/..%20/admin/x", false},
		{"/admin%00/x", false},
		{"/public/x%00/../../admin/x", false},
		{"/admin%09/x", false},
		{"/admin%0d%0aX-User-Id:%20root/x", false},
		{"/admin%7f/x", false},
		{"/admin%c2%85/x", false},
		{"/public/%c0%ae%c0%ae/admin/x", false},
		{"/public/%e0%80%ae%e0%80%ae/admin/x", false},
		{"/public/%c0%af../admin/x", false},
		{"/public/%ff/../../admin/x", false},
		{"/public/\xc0\xae\xc0\xae/admin/x", false},
		{"/public/\xff/../admin/x", false},
		{"/public/%ef%bc%8e%ef%bc%8e/admin/x", false},
		{"/public/..%ef%bc%8fadmin/x", false},
		{"/public/..%ef%bc%bcadmin/x", false},
		{"/adm%c4%b1n/x", false},
		{"/a%e2%88%95dmin/x", false},
		{"/admin\x00/x", true},
		{"/admin\t/x", true},
		{"/admin\x7f/x", true},
	}
	for _, tc := range refused {
		for _, who := range []struct{ name, token string }{{"no token", ""}, {"bob", bob}, {"alice", alice}} {
			t.Run(fmt.Sprintf("%q/%s", tc.path, who.name), func(t *testing.T) {
				var hdr []string
				if who.token != "" {
					hdr = []string{"Authorization", "Bearer " + who.token}
				}
				r := rawRequest(t, http.MethodGet, tc.path, hdr...)
				if got := rec.take(); len(got) != 0 {
					t.Fatalf("reached the upstream as %q (status %d)", got[0].uri, r.status)
				}
				if r.status != 400 {
					t.Fatalf("status %d, want 400: %s", r.status, r.body)
				}
				if !tc.byGo && (r.json["error"] != "invalid_request" || !strings.Contains(r.body, "path refused")) {
					t.Fatalf("want a JSON invalid_request, got %s", r.body)
				}
			})
		}
	}

	// guarded: read as the canonical path, where a rule applies: no token
	// 401, bob 403; alice reaches the upstream, which sees canonical.
	guarded := []struct{ path, canonical string }{
		{"/admin/x", "/admin/x"},
		{"/ADMIN/x", "/ADMIN/x"},
		{"/Admin/x", "/Admin/x"},
		{"//admin/x", "/admin/x"},
		{"///admin//x", "/admin/x"},
		{"/./admin/x", "/admin/x"},
		{"/public/../admin/x", "/admin/x"},
		{"/public/./../admin/x", "/admin/x"},
		{"/public//../admin/x", "/admin/x"},
		{"/public/a/../../admin/x", "/admin/x"},
		{"/health/../admin/x", "/admin/x"},
		{"/token/../admin/x", "/admin/x"},
		{"/%61dmin/x", "/admin/x"},
		{"/%41DMIN/x", "/ADMIN/x"},
		{"/admin/x?next=/public/", "/admin/x?next=/public/"},
		{base + "/public/../admin/x", "/admin/x"},
	}
	for _, tc := range guarded {
		t.Run(fmt.Sprintf("%q", tc.path), func(t *testing.T) {
			for _, who := range []struct {
				token  string
				status int
			}{{"", 401}, {bob, 403}} {
				var hdr []string
				if who.token != "" {
					hdr = []string{"Authorization", "Bearer " + who.token}
				}
				r := rawRequest(t, http.MethodGet, tc.path, hdr...)
				if got := rec.take(); len(got) != 0 || r.status != who.status {
					t.Fatalf("status %d (want %d), upstream got %v", r.status, who.status, got)
				}
			}
			r := rawRequest(t, http.MethodGet, tc.path, "Authorization", "Bearer "+alice)
			got := rec.take()
			if r.status != 200 || len(got) != 1 || got[0].uri != tc.canonical || got[0].header.Get("X-User-Id") != "alice" {
				t.Fatalf("alice: status %d, upstream got %+v; want %q", r.status, got, tc.canonical)
			}
		})
	}

	// Legitimate paths reach the upstream as the rules say, in canonical form.
	legit := []struct{ path, token, canonical string }{
		{"/health", "", "/health"},
		{"/public/a/b", "", "/public/a/b"},
		{"/public//a/./b/", "", "/public/a/b/"},
		{"/public/caf%c3%a9", "", "/public/caf%C3%A9"},
		{"/public/caf\xc3\xa9", "", "/public/caf%C3%A9"},
		{"/public/%7Euser/%41", "", "/public/~user/A"},
		{"/public/a+b@c!$&'()*,=:", "", "/public/a+b@c!$&'()*,=:"},
		{"/public/a%2Bb%40c", "", "/public/a%2Bb%40c"},
		{"/public/100%25", "", "/public/100%25"},
		{"/public/x?q=%2f..%2f&r=;", "", "/public/x?q=%2f..%2f&r=;"},
		{"/api/orders/1", alice, "/api/orders/1"},
		{"/api/orders/1", bob, "/api/orders/1"},
		{"/admin/users", alice, "/admin/users"},
		{"/.well-known/x", alice, "/.well-known/x"},
	}
	for _, tc := range legit {
		t.Run(fmt.Sprintf("legit %q", tc.path), func(t *testing.T) {
			var hdr []string
			if tc.token != "" {
				hdr = []string{"Authorization", "Bearer " + tc.token}
			}
			r := rawRequest(t, http.MethodGet, tc.path, hdr...)
			got := rec.take()
			if r.status != 200 || len(got) != 1 || got[0].uri != tc.canonical {
				t.Fatalf("status %d %s, upstream got %+v; want %q", r.status, r.body, got, tc.canonical)
			}
		})
	}

	// Case: allow rules are case-sensitive (they never widen), require
	// rules case-insensitive (they never narrow).
	for _, path := range []string{"/HEALTH", "/Health", "/PUBLIC/x", "/Public/x"} {
		if r := rawRequest(t, http.MethodGet, path); r.status != 401 || len(rec.take()) != 0 {
			t.Errorf("%s without a token: %d, want 401 and nothing forwarded", path, r.status)
		}
	}

	// Gateway routes see the canonical path too.
	r := rawRequest(t, http.MethodGet, "/token/../.well-known/jwks.json")
	if got := rec.take(); r.status != 200 || len(got) != 0 || !strings.Contains(r.body, `"keys"`) {
		t.Errorf("/token/../.well-known/jwks.json: %d %s (upstream got %d requests)", r.status, r.body, len(got))
	}
	if r := rawRequest(t, http.MethodGet, "//token"); r.status != 405 || len(rec.take()) != 0 {
		t.Errorf("//token: %d, want the /token route's 405", r.status)
	}
	if r := rawRequest(t, http.MethodGet, "/token/%2e%2e/admin/x"); r.status != 400 || len(rec.take()) != 0 {
		t.Errorf("/token/%%2e%%2e/admin/x: %d, want 400", r.status)
	}
}

// TestPathsLenient: a relaxation lifts only the refusal it names.
func TestPathsLenient(t *testing.T) {
	rec := newRecorder(t)
	g, _ := startProxyGateway(t, rec, "paths lenient semicolon encoded_dot")
	alice := g.passwordToken("alice")["access_token"].(string)
	bob := g.passwordToken("bob")["access_token"].(string)
	rec.take()
	for _, tc := range []struct {
		path, token string
		status      int
		canonical   string // "" when nothing may reach the upstream
	}{
		{"/app;jsessionid=1/x", alice, 200, "/app;jsessionid=1/x"},
		{"/app;jsessionid=1/x", "", 401, ""},
		{"/public/x;v=1", "", 200, "/public/x;v=1"},
		// Rules also judge the reading without ;params (Tomcat's): allow
		// must match both readings, require either.
		{"/public/..;/admin/x", "", 401, ""},
		{"/public/..;/admin/x", bob, 403, ""},
		{"/public/..;/admin/x", alice, 200, "/public/..;/admin/x"},
		{"/admin;x/users", bob, 403, ""},
		{"/admin%3bx/users", bob, 403, ""},
		{"/admin;x/users", alice, 200, "/admin;x/users"},
		{"/admin.;x/users", alice, 400, ""},     // without ;x the segment ends in a dot
		{"/public/%2e%2e/admin/x", "", 401, ""}, // decoded, then judged as /admin/x
		{"/public/%2e%2e/admin/x", alice, 200, "/admin/x"},
		{"/public/..%5cadmin/x", "", 400, ""},
		{"/admin./x", alice, 400, ""},
		{"/public/%252e%252e/admin/x", "", 400, ""},
	} {
		var hdr []string
		if tc.token != "" {
			hdr = []string{"Authorization", "Bearer " + tc.token}
		}
		r := rawRequest(t, http.MethodGet, tc.path, hdr...)
		got := rec.take()
		if r.status != tc.status || (tc.canonical == "") != (len(got) == 0) || (len(got) == 1 && got[0].uri != tc.canonical) {
			t.Errorf("%q (token %v): %d %s, upstream got %+v; want %d %q", tc.path, tc.token != "", r.status, r.body, got, tc.status, tc.canonical)
		}
	}
}

// TestPreflightIsNarrow: only OPTIONS with Origin and
// Access-Control-Request-Method skips the token, and its body stays behind.
func TestPreflightIsNarrow(t *testing.T) {
	rec := newRecorder(t)
	startProxyGateway(t, rec, "")
	cors := []string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST"}
	for _, tc := range []struct {
		name, method string
		headers      []string
		status       int
	}{
		{"preflight", http.MethodOptions, cors, 200},
		{"no Origin", http.MethodOptions, cors[2:], 401},
		{"no Access-Control-Request-Method", http.MethodOptions, cors[:2], 401},
		{"GET with preflight headers", http.MethodGet, cors, 401},
		{"POST with preflight headers", http.MethodPost, cors, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "smuggled=1"
			hdr := append([]string{"Content-Type", "application/x-www-form-urlencoded", "Content-Length", fmt.Sprint(len(body)), "X-User-Id", "root"}, tc.headers...)
			r := sendRaw(t, tc.method, "/api/orders", body, hdr...)
			got := rec.take()
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != 200 {
				if len(got) != 0 {
					t.Fatalf("reached the upstream: %+v", got)
				}
				return
			}
			if len(got) != 1 || got[0].body != "" || got[0].length > 0 || got[0].header.Get("X-User-Id") != "" {
				t.Fatalf("upstream got %+v; want no body and no identity", got)
			}
		})
	}
	// A chunked body is dropped too.
	chunked := "a\r\nsmuggled=1\r\n0\r\n\r\n"
	r := sendRaw(t, http.MethodOptions, "/api/orders", chunked, append([]string{"Transfer-Encoding", "chunked"}, cors...)...)
	got := rec.take()
	if r.status != 200 || len(got) != 1 || got[0].body != "" || got[0].length > 0 || len(got[0].header.Values("Transfer-Encoding")) != 0 {
		t.Fatalf("chunked preflight: %d, upstream got %+v", r.status, got)
	}
}

// TestConnectionCannotStripIdentity: reverse_proxy deletes the headers the
// Connection header names, so a caller naming the identity headers (or
// Authorization) there must not keep them from the upstream; other
// Connection tokens keep working.
func TestConnectionCannotStripIdentity(t *testing.T) {
	rec := newRecorder(t)
	// request_header runs after tokengate: a header it sets from the
	// identity is protected too.
	g, _ := startProxyGateway(t, rec, "", "request_header X-Subject {http.auth.user.id}")
	alice := g.passwordToken("alice")["access_token"].(string)
	rec.take()
	for _, conn := range []string{"X-User-Id", "x-user-id", "X_User_Id", "keep-alive, X-User-Id, X-Roles", "Authorization",
		"X-Roles,X-User-Id,Authorization", "X-Subject", "close, X-Subject"} {
		t.Run(conn, func(t *testing.T) {
			r := sendRaw(t, http.MethodGet, "/api/x", "", "Authorization", "Bearer "+alice, "Connection", conn,
				"X-Hop", "1", "Connection", "X-Hop")
			got := rec.take()
			if r.status != 200 || len(got) != 1 {
				t.Fatalf("%d %s; upstream got %d requests", r.status, r.body, len(got))
			}
			h := got[0].header
			if h.Get("X-User-Id") != "alice" || h.Get("X-Roles") != "admin" || h.Get("X-Subject") != "alice" || h.Get("Authorization") != "Bearer "+alice {
				t.Fatalf("upstream got X-User-Id %q, X-Roles %q, X-Subject %q, Authorization %t",
					h.Get("X-User-Id"), h.Get("X-Roles"), h.Get("X-Subject"), h.Get("Authorization") != "")
			}
			if h.Get("X-Hop") != "" {
				t.Fatal("a header the caller named in Connection reached the upstream: hop-by-hop handling broke")
			}
		})
	}
}

// TestCritHeaderRefusedByTheGuard: a correctly signed token whose JWS
// header has crit is refused (RFC 7515 §4.1.11).
func TestCritHeaderRefusedByTheGuard(t *testing.T) {
	rec := newRecorder(t)
	g, store := startProxyGateway(t, rec, "")
	g.passwordToken("alice") // the signing key exists
	now := time.Now()
	claims := jwt.MapClaims{"iss": base, "aud": base, "sub": "alice", "jti": "crit-1", "roles": []string{"admin"},
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	plain := issuertest.SignWithStoredKey(t, store, claims, nil)
	if r := g.get("/api/x", plain); r.status != 200 || len(rec.take()) != 1 {
		t.Fatalf("the same token without crit: %d %s", r.status, r.body)
	}
	crit := issuertest.SignWithStoredKey(t, store, claims, map[string]any{"crit": []string{"x-ext"}, "x-ext": true})
	r := g.get("/api/x", crit)
	if got := rec.take(); r.status != 401 || len(got) != 0 || !strings.Contains(r.header.Get("WWW-Authenticate"), "critical header") {
		t.Fatalf("crit token: %d %v, upstream got %d requests", r.status, r.header, len(got))
	}
}
