package tokengate_test

// End-to-end tests of what the third attack round found (each fails on
// b5f99fe): a DPoP-bound token is no bearer token on any route.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/dpop/dpoptest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/clitest"
)

// boundPasswordToken gets alice's access token bound to key.
func (g *gateway) boundPasswordToken(key *dpoptest.Key) string {
	g.t.Helper()
	r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}},
		"DPoP", key.Proof("POST", tokenHTU(), ""))
	if r.status != 200 || r.json["token_type"] != "DPoP" {
		g.t.Fatalf("password grant with a proof: %d %s", r.status, r.body)
	}
	return r.json["access_token"].(string)
}

// TestBoundTokenIsNoBearerTokenOnAnyRoute: RFC 9449 §7.1-7.2, on the
// routes that hand out secrets and on apimaker's require_role as in the
// guard: a bound token sent as Bearer, or with the DPoP scheme but without
// a proof of its key, is refused with a DPoP challenge; with its proof it
// passes.
func TestBoundTokenIsNoBearerTokenOnAnyRoute(t *testing.T) {
	g := startGateway(t, `entity aa-1 roles member
		endpoint apimaker {
			require_role admin
		}`)
	key := dpoptest.NewKey("ES256")
	tok := g.boundPasswordToken(key)
	amBody := `{"authTokenType":"AM","authTokenAM":{"u":"bob","p":"` + userPassword + `"}}`
	for _, rt := range []struct {
		name, path, body string
		ok               func(response) bool
	}{
		{"secret read", "/entity/secret/read", seedBody("aa-1", ""), func(r response) bool { return r.json["secret"] != nil }},
		{"secret reset", "/entity/secret/reset", seedBody("aa-1", ""), func(r response) bool { return r.json["secret"] != nil }},
		{"apimaker require_role", apimakerPath, amBody, func(r response) bool { return r.json["success"] == true }},
	} {
		t.Run(rt.name, func(t *testing.T) {
			send := func(scheme, proof string) response {
				h := []string{"Authorization", scheme + " " + tok}
				if proof != "" {
					h = append(h, "DPoP", proof)
				}
				return g.post(rt.path, "application/json", rt.body, h...)
			}
			htu := base + rt.path
			for _, tc := range []struct{ name, scheme, proof string }{
				{"as Bearer", "Bearer", ""},
				{"as Bearer with a proof", "Bearer", key.Proof("POST", htu, tok)},
				{"DPoP scheme without a proof", "DPoP", ""},
				{"DPoP scheme, proof of another key", "DPoP", dpoptest.NewKey("ES256").Proof("POST", htu, tok)},
				{"DPoP scheme, proof for another route", "DPoP", key.Proof("POST", base+"/orders/1", tok)},
			} {
				r := send(tc.scheme, tc.proof)
				if r.status != http.StatusUnauthorized || rt.ok(r) || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "DPoP ") {
					t.Fatalf("%s: %d %s %q; want 401 with a DPoP challenge and nothing handed out", tc.name, r.status, r.body, r.header.Get("WWW-Authenticate"))
				}
			}
			if r := send("DPoP", key.Proof("POST", htu, tok)); r.status != http.StatusOK || !rt.ok(r) {
				t.Fatalf("with its proof: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("the guard", func(t *testing.T) {
		if r := g.get("/admin/x", tok); r.status != 401 {
			t.Fatalf("guard, as Bearer: %d %s", r.status, r.body)
		}
		if r := g.dpopGet("/admin/x", tok, key.Proof("GET", base+"/admin/x", tok)); r.status != 200 {
			t.Fatalf("guard, with its proof: %d %s", r.status, r.body)
		}
	})
}

// TestIdentityTrailersNeverReachTheUpstream: a chunked request whose
// trailers name an identity header or Authorization (declared in Trailer,
// or sent undeclared) reaches the upstream without them, whatever their
// spelling; other trailers pass.
func TestIdentityTrailersNeverReachTheUpstream(t *testing.T) {
	type seen struct{ header, trailer http.Header }
	got := make(chan seen, 1)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // trailers are there once the body is read
		got <- seen{r.Header.Clone(), r.Trailer.Clone()}
		fmt.Fprint(w, "upstream")
	}))
	defer upstream.Close()
	userHash, _ := hashes()
	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		user alice %s roles admin
		allow /public/*
		forward_header X-User-Id sub
	}
	reverse_proxy %s
}`, filepath.Join(t.TempDir(), "tg.db"), userHash, strings.TrimPrefix(upstream.URL, "http://")), "caddyfile")
	tok := g.passwordToken("alice")["access_token"].(string)
	forged := http.Header{"X-User-Id": {"root"}, "X_user_id": {"root"}, "Authorization": {"Bearer forged"}, "X-Checksum": {"abc"}}
	check := func(name string, s seen) {
		t.Helper()
		for k, v := range s.trailer {
			if k != "X-Checksum" {
				t.Errorf("%s: upstream received trailer %s: %v", name, k, v)
			}
		}
		if s.trailer.Get("X-Checksum") != "abc" {
			t.Errorf("%s: the harmless trailer was lost: %v", name, s.trailer)
		}
		if name == "/api" && s.header.Get("X-User-Id") != "alice" {
			t.Errorf("%s: upstream X-User-Id %q", name, s.header.Get("X-User-Id"))
		}
	}
	for _, path := range []string{"/api", "/public/x"} {
		// Declared: Go's client announces the trailers in a Trailer header.
		req, _ := http.NewRequest(http.MethodPost, base+path, io.MultiReader(strings.NewReader("payload")))
		req.ContentLength = -1
		req.Trailer = forged.Clone()
		if path == "/api" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		if r := g.do(req); r.status != 200 || r.body != "upstream" {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		check(path, <-got)
	}
	// Undeclared: trailers with no Trailer header, on a raw connection.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"+
		"7\r\npayload\r\n0\r\nX-User-Id: root\r\nAuthorization: Bearer forged\r\nX-Checksum: abc\r\n\r\n", strings.TrimPrefix(base, "http://"), tok)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("undeclared trailers: %v %v", res, err)
	}
	s := <-got
	for k := range s.trailer {
		if k != "X-Checksum" {
			t.Errorf("undeclared: upstream received trailer %s", k)
		}
	}
}

// accessLogSnippet is the example's access_log snippet, writing to file.
func accessLogSnippet(t *testing.T, file string) string {
	t.Helper()
	src, err := os.ReadFile("examples/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(src), "\n(access_log) {\n")
	snippet, _, ok2 := strings.Cut(rest, "\n}\n")
	if !ok || !ok2 || !strings.Contains(snippet, "\t\toutput stderr\n") {
		t.Fatal("examples/Caddyfile has no (access_log) snippet writing to stderr")
	}
	return "(access_log) {\n" + strings.Replace(snippet, "output stderr", "output file "+file, 1) + "\n}\n"
}

// TestExampleAccessLogHoldsNoCredentials: with the example's access-log
// filter, credentials a client put in a query string, and DPoP proofs,
// accepted or refused, appear in no log line; what the operator needs
// (method, path, status, other parameters) stays.
func TestExampleAccessLogHoldsNoCredentials(t *testing.T) {
	dir := t.TempDir()
	access, all := filepath.Join(dir, "access.log"), filepath.Join(dir, "caddy.log")
	userHash, clientHash := hashes()
	g := &gateway{t: t, tc: newTester(t), log: all}
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
	log {
		output file %s
		format json
		level DEBUG
	}
}
%s
{$TOKENGATE_TEST_SITE} {
	import access_log
	tokengate {
		store sqlite %s
		user alice %s roles admin
		client billing %s roles reader
		endpoint owin
	}
	respond "ok"
}`, all, accessLogSnippet(t, access), filepath.Join(dir, "tg.db"), userHash, clientHash), "caddyfile")
	const secret = "s3cr3t-in-the-query"
	q := url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {secret}, "client_secret": {secret},
		"refresh_token": {secret}, "code": {secret}, "access_token": {secret}, "id_token_hint": {secret}}
	for _, path := range []string{"/Token", "/token", "/orders/1"} {
		g.do(mustRequest(http.MethodGet, base+path+"?"+q.Encode()))
	}
	key := dpoptest.NewKey("ES256")
	ok := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret),
		"DPoP", key.Proof("POST", tokenHTU(), ""))
	if ok.status != 200 {
		t.Fatalf("DPoP token: %d %s", ok.status, ok.body)
	}
	tok := ok.json["access_token"].(string)
	proofs := []string{
		key.Proof("GET", base+"/orders/1", tok), // accepted
		key.Proof("GET", base+"/orders/2", tok), // refused: another htu, never marked used
		key.Proof("POST", base+"/token", ""),    // refused at /token: wrong secret
	}
	g.dpopGet("/orders/1", tok, proofs[0])
	g.dpopGet("/orders/1", tok, proofs[1])
	g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", "wrong"), "DPoP", proofs[2])
	g.do(mustRequest(http.MethodGet, base+"/health?done=1"))
	logs := waitFile(t, access, `done=1`)
	logs += g.waitLog("")
	if strings.Contains(logs, secret) {
		t.Fatalf("a credential from a query string is in the logs:\n%s", grepLines(logs, secret))
	}
	for _, p := range proofs {
		for _, part := range strings.Split(p, ".") {
			if strings.Contains(logs, part) {
				t.Fatalf("a DPoP proof is in the logs:\n%s", grepLines(logs, part))
			}
		}
	}
	for _, want := range []string{`"uri":"/Token?`, "grant_type=password", "username=alice", "password=REDACTED", `"status":401`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the access log lacks %q:\n%s", want, logs)
		}
	}
}

// waitFile returns file's content once it holds want.
func waitFile(t *testing.T, file, want string) string {
	t.Helper()
	var s string
	waitUntil(t, fmt.Sprintf("%s holding %q", file, want), func() bool {
		b, _ := os.ReadFile(file)
		s = string(b)
		return strings.Contains(s, want)
	})
	return s
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestMetadataNamesPublicClients: RFC 8414 metadata lists `none` among
// the token endpoint's client authentication methods, as the endpoint
// serves clients that do not authenticate (RFC 6749 §2.1's public
// clients: a password grant and its refreshes without client credentials).
func TestMetadataNamesPublicClients(t *testing.T) {
	g := startGateway(t, "")
	r := g.get("/.well-known/oauth-authorization-server", "")
	methods, _ := r.json["token_endpoint_auth_methods_supported"].([]any)
	if r.status != 200 || !slices.Contains(methods, any("none")) || !slices.Contains(methods, any("client_secret_basic")) {
		t.Fatalf("metadata: %d %v", r.status, methods)
	}
	// What `none` promises: a client that does not authenticate is served.
	pw := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}})
	if pw.status != 200 {
		t.Fatalf("password grant without client authentication: %d %s", pw.status, pw.body)
	}
	if r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {pw.json["refresh_token"].(string)}}); r.status != 200 {
		t.Fatalf("its refresh without client authentication: %d %s", r.status, r.body)
	}
}

// TestRefreshScopeIsBoundedByTheGrant: RFC 6749 §6: narrowing the scope
// on one refresh narrows that access token, not the grant; a later refresh
// may ask for the original scope again, and one that asks for none gets
// it; more than the grant is still invalid_scope.
func TestRefreshScopeIsBoundedByTheGrant(t *testing.T) {
	g := startGateway(t, "")
	r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword},
		"scope": {"orders:read orders:write"}})
	if r.status != 200 || r.json["scope"] != "orders:read orders:write" {
		t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	rt := r.json["refresh_token"].(string)
	refresh := func(scope string) response {
		t.Helper()
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if scope != "" {
			v.Set("scope", scope)
		}
		r := g.form("/token", v)
		if r.status == 200 {
			rt = r.json["refresh_token"].(string)
		}
		return r
	}
	for _, step := range []struct{ ask, want string }{
		{"orders:read", "orders:read"},
		{"orders:read orders:write", "orders:read orders:write"},
		{"orders:write", "orders:write"},
		{"", "orders:read orders:write"},
	} {
		r := refresh(step.ask)
		if r.status != 200 || r.json["scope"] != step.want || jwtClaims(t, r.json["access_token"].(string))["scope"] != step.want {
			t.Fatalf("refresh asking %q: %d %s; want scope %q", step.ask, r.status, r.body, step.want)
		}
	}
	wantOAuthError(t, refresh("orders:read admin"), 400, "invalid_scope")
}

// tgCLI runs `caddy tokengate args…` in-process, with stdin.
var tgCLI = clitest.Run

// TestUserAddOverAUserEndsItsSessions: `user add` that replaces a stored
// user's password ends its sessions on a running gateway, as `user passwd`
// does (--keep-sessions keeps them, as for passwd).
func TestUserAddOverAUserEndsItsSessions(t *testing.T) {
	g := startGateway(t, "")
	store := "--store=sqlite:" + g.store
	signIn := func(pw string) map[string]any {
		t.Helper()
		r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {pw}})
		if r.status != 200 {
			t.Fatalf("carol signs in: %d %s", r.status, r.body)
		}
		return r.json
	}
	if out, err := tgCLI(t, "pw-one\n", "user", "add", "carol", "--password-stdin", store); err != nil || !strings.Contains(out, "saved") {
		t.Fatal(err, out)
	}
	kept := signIn("pw-one")
	if out, err := tgCLI(t, "pw-two\n", "user", "add", "carol", "--password-stdin", "--keep-sessions", store); err != nil || !strings.Contains(out, "sessions go on") {
		t.Fatal(err, out)
	}
	if r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {kept["refresh_token"].(string)}}); r.status != 200 {
		t.Fatalf("refresh after user add --keep-sessions: %d %s", r.status, r.body)
	}
	held := signIn("pw-two")
	out, err := tgCLI(t, "pw-three\n", "user", "add", "carol", "--password-stdin", store)
	if err != nil || !strings.Contains(out, "sessions are ended") {
		t.Fatal(err, out)
	}
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {held["refresh_token"].(string)}}), 400, "invalid_grant")
	waitUntil(t, "the gateway refusing the replaced user's access token", func() bool {
		return g.get("/api", held["access_token"].(string)).status == 401
	})
	signIn("pw-three")
}

// TestUserAndClientOfTheSameName: the CLI refuses a principal whose
// subject one of another kind has, unless --force; and forward_header can
// send the principal's kind, so that an upstream tells a user from a client
// of the same name.
func TestUserAndClientOfTheSameName(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tg.db")
	store := "--store=sqlite:" + db
	if out, err := tgCLI(t, "pw\n", "user", "add", "ops", "--password-stdin", store); err != nil {
		t.Fatal(err, out)
	}
	for _, args := range [][]string{
		{"client", "add", "ops"},
		{"entity", "add", "ops"},
	} {
		if out, err := tgCLI(t, "", append(args, store)...); err == nil || !strings.Contains(err.Error(), "user ops") || !strings.Contains(err.Error(), "--force") {
			t.Fatalf("%v over user ops: %v %s", args, err, out)
		}
	}
	if out, err := tgCLI(t, "", "client", "add", "billing", store); err != nil {
		t.Fatal(err, out)
	}
	for _, args := range [][]string{
		{"user", "add", "billing", "--password-stdin"},
		{"user", "add", "bill", "--id", "billing", "--password-stdin"},
	} {
		if out, err := tgCLI(t, "pw\n", append(args, store)...); err == nil || !strings.Contains(err.Error(), "client billing") {
			t.Fatalf("%v over client billing: %v %s", args, err, out)
		}
	}
	out, err := tgCLI(t, "", "client", "add", "ops", "--force", "--json", store)
	if err != nil {
		t.Fatal(err, out)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err, out)
	}

	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		forward_header X-User-Id sub
		forward_header X-Principal-Kind kind
	}
	respond "sub={http.request.header.X-User-Id} kind={http.request.header.X-Principal-Kind} placeholder={http.auth.user.kind}"
}`, db), "caddyfile")
	user := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"ops"}, "password": {"pw"}})
	client := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("ops", created["client_secret"]))
	if user.status != 200 || client.status != 200 {
		t.Fatalf("tokens: %d %s / %d %s", user.status, user.body, client.status, client.body)
	}
	for _, tc := range []struct{ tok, want string }{
		{user.json["access_token"].(string), "sub=ops kind=user placeholder=user"},
		{client.json["access_token"].(string), "sub=ops kind=client placeholder=client"},
	} {
		if r := g.get("/api", tc.tok, "X-Principal-Kind", "user"); r.status != 200 || r.body != tc.want {
			t.Fatalf("upstream saw %q (%d), want %q", r.body, r.status, tc.want)
		}
	}
}

// TestThrottleIPBehindTrustedProxies: behind trusted proxies, a caller
// that writes a victim's IP at the left of X-Forwarded-For: with
// trusted_proxies_strict (as the examples and docs say) its failures count
// against its own IP, the rightmost one no trusted proxy added, and the
// victim is not locked out; without it, the gateway warns at load.
func TestThrottleIPBehindTrustedProxies(t *testing.T) {
	const victim, attacker = "198.51.100.20", "203.0.113.7"
	xff := victim + ", " + attacker // the attacker's proxy appended its real IP
	t.Run("strict", func(t *testing.T) {
		g := startThrottled(t, `servers {
		trusted_proxies static 127.0.0.1/8 ::1/128
		trusted_proxies_strict
		client_ip_headers X-Forwarded-For
	}`)
		for range 2 {
			wantOAuthError(t, wrongPassword(g, xff), 400, "invalid_grant")
		}
		wantOAuthError(t, wrongPassword(g, xff), 429, "too_many_requests")
		wantOAuthError(t, wrongPassword(g, attacker), 429, "too_many_requests")
		r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, "X-Forwarded-For", victim)
		if r.status != 200 {
			t.Fatalf("the victim's IP was locked out: %d %s", r.status, r.body)
		}
	})
	for _, tc := range []struct {
		name, servers string
		warned        bool
	}{
		{"lenient", "trusted_proxies static 127.0.0.1/8\n\t\tclient_ip_headers X-Forwarded-For", true},
		{"strict", "trusted_proxies static 127.0.0.1/8\n\t\ttrusted_proxies_strict", false},
		{"no trusted proxies", "client_ip_headers X-Forwarded-For", false},
	} {
		t.Run("warning, "+tc.name, func(t *testing.T) {
			userHash, _ := hashes()
			g := &gateway{t: t, tc: newTester(t), dir: t.TempDir()}
			g.log = filepath.Join(g.dir, "caddy.log")
			g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
	log {
		output file %s
		format json
	}
	servers {
		%s
	}
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		user alice %s
	}
	respond "ok"
}`, g.log, tc.servers, filepath.Join(g.dir, "tg.db"), userHash), "caddyfile")
			logs := g.waitLog(`"msg":"store opened"`)
			if got := strings.Contains(logs, "trusted_proxies_strict"); got != tc.warned {
				t.Fatalf("warned %v, want %v:\n%s", got, tc.warned, logs)
			}
		})
	}
}

// TestSignInTimingNamesNoUser: the case end to end: users declared
// in the Caddyfile at the default argon2id parameters (m=19 MiB, t=2),
// users stored at m=8 MiB, t=1. After a failed sign-in of a declared user
// (which chose the dummy's class before), a wrong password for a stored
// user and an unknown name take about as long: medians of alternating
// rounds, within a factor of 2 (on b5f99fe the unknown name took about
// four times as long).
func TestSignInTimingNamesNoUser(t *testing.T) {
	g := startGateway(t, "throttle off")
	store := "--store=sqlite:" + g.store
	if out, err := tgCLI(t, "pw\n", "user", "add", "olduser", "--password-stdin", "--argon-memory=8192", "--argon-time=1", store); err != nil {
		t.Fatal(err, out)
	}
	fail := func(name string) time.Duration {
		start := time.Now()
		r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {name}, "password": {"wrong"}})
		d := time.Since(start)
		if r.status != 400 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		return d
	}
	var known, unknown []time.Duration
	for i := range 15 {
		fail("alice")
		if i%2 == 0 {
			known, unknown = append(known, fail("olduser")), append(unknown, fail("nosuchuser"))
		} else {
			unknown, known = append(unknown, fail("nosuchuser")), append(known, fail("olduser"))
		}
	}
	median := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	k, u := median(known), median(unknown)
	ratio := float64(u) / float64(k)
	t.Logf("median failed sign-in: stored user %v, unknown name %v (ratio %.2f); %v / %v", k, u, ratio, known, unknown)
	if ratio > 2 || ratio < 0.5 {
		t.Fatalf("an unknown name takes %v, a stored user's wrong password %v: timing tells which names exist", u, k)
	}
}
