package tokengate_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// startThrottled loads a site with user alice, every compatibility route,
// and per_account_ip 2; servers holds the global `servers` options.
func startThrottled(t *testing.T, servers string) *gateway {
	t.Helper()
	userHash, clientHash := hashes()
	g := &gateway{t: t, tc: newTester(t), dir: t.TempDir()}
	g.store = filepath.Join(g.dir, "tg.db")
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
	%s
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		user alice %s roles admin
		client billing %s
		endpoint owin
		endpoint eventhos
		endpoint apimaker
		throttle {
			per_account_ip 2
		}
	}
	respond "ok"
}`, servers, g.store, userHash, clientHash), "caddyfile")
	return g
}

func wrongPassword(g *gateway, xff string) response {
	g.t.Helper()
	return g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}, "X-Forwarded-For", xff)
}

func wantRetryAfter(t *testing.T, r response, status int) {
	t.Helper()
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	if r.status != status || err != nil || secs < 1 {
		t.Fatalf("got %d (Retry-After %q) %s; want %d with Retry-After", r.status, r.header.Get("Retry-After"), r.body, status)
	}
}

// TestThrottleBehindTrustedProxy: behind a trusted proxy, failures count
// against the client IP of X-Forwarded-For: one client is refused with 429
// on every sign-in route in its own envelope, another is not.
func TestThrottleBehindTrustedProxy(t *testing.T) {
	g := startThrottled(t, `servers {
		trusted_proxies static 127.0.0.1/8 ::1/128
		client_ip_headers X-Forwarded-For
	}`)
	const attacker, owner = "203.0.113.7", "198.51.100.20"
	for range 2 {
		wantOAuthError(t, wrongPassword(g, attacker), 400, "invalid_grant")
	}
	r := wrongPassword(g, attacker)
	wantOAuthError(t, r, 429, "too_many_requests")
	wantRetryAfter(t, r, 429)
	// The right password does not get through either: no hash is computed.
	r = g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, "X-Forwarded-For", attacker)
	wantOAuthError(t, r, 429, "too_many_requests")

	// Every route that checks alice's password answers 429 in its dialect.
	r = g.post("/user/token/generate", "application/json", `{"ver":"1.0","txnId":"t-1","username":"alice","password":"x"}`, "X-Forwarded-For", attacker)
	wantRetryAfter(t, r, 429)
	if r.json["errorCode"] != "TOO_MANY_REQUESTS" || r.json["txnId"] != "t-1" {
		t.Fatalf("token service: %s", r.body)
	}
	r = g.form("/Token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, "X-Forwarded-For", attacker)
	wantRetryAfter(t, r, 429)
	if r.json["error"] != "too_many_requests" {
		t.Fatalf("owin: %s", r.body)
	}
	r = g.form("/auth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, "X-Forwarded-For", attacker)
	wantRetryAfter(t, r, 429)
	if r.json["code"] != float64(500000) {
		t.Fatalf("eventhos: %s", r.body)
	}
	r = g.post("/api/system-api/user-path/token", "application/json", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"x"}}`, "X-Forwarded-For", attacker)
	wantRetryAfter(t, r, 429)
	if r.json["success"] != false || r.json["statusCode"] != float64(429) {
		t.Fatalf("apimaker: %s", r.body)
	}

	// Client authentication on introspection is throttled per client.
	for range 2 {
		r = g.form("/token/introspect", url.Values{"token": {"x"}}, "Authorization", basic("billing", "wrong"), "X-Forwarded-For", attacker)
		wantOAuthError(t, r, 401, "invalid_client")
	}
	r = g.form("/token/revoke", url.Values{"token": {"x"}}, "Authorization", basic("billing", clientSecret), "X-Forwarded-For", attacker)
	wantOAuthError(t, r, 429, "too_many_requests")

	// The owner, from another address, signs in.
	r = g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, "X-Forwarded-For", owner)
	if r.status != 200 {
		t.Fatalf("owner from another IP: %d %s", r.status, r.body)
	}
}

// TestThrottleIgnoresSpoofedForwardedFor: without trusted proxies, a
// caller cannot dodge the limit by making up X-Forwarded-For.
func TestThrottleIgnoresSpoofedForwardedFor(t *testing.T) {
	g := startThrottled(t, "")
	for i := range 2 {
		wantOAuthError(t, wrongPassword(g, fmt.Sprintf("203.0.113.%d", i)), 400, "invalid_grant")
	}
	r := wrongPassword(g, "203.0.113.99")
	wantOAuthError(t, r, 429, "too_many_requests")
	wantRetryAfter(t, r, 429)
}

// TestThrottledRefusalsLogQuietly: a refusal that computed nothing (429)
// is logged at debug, in the request log and in the audit log, on every
// sign-in route, so a flood from one address writes no line per request
// at Caddy's default level; the failed sign-ins before it stay at info.
func TestThrottledRefusalsLogQuietly(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "caddy.log")
	g := startThrottled(t, fmt.Sprintf(`servers {
		trusted_proxies static 127.0.0.1/8 ::1/128
		client_ip_headers X-Forwarded-For
	}
	log {
		output file %s
		format json
		level DEBUG
	}`, logFile))
	const attacker = "203.0.113.9"
	for range 2 {
		wantOAuthError(t, wrongPassword(g, attacker), 400, "invalid_grant")
	}
	wantOAuthError(t, wrongPassword(g, attacker), 429, "too_many_requests")
	for _, r := range []response{
		g.post("/user/token/generate", "application/json", `{"ver":"1.0","txnId":"t-1","username":"alice","password":"x"}`, "X-Forwarded-For", attacker),
		g.form("/Token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, "X-Forwarded-For", attacker),
		g.form("/auth/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, "X-Forwarded-For", attacker),
		g.post("/api/system-api/user-path/token", "application/json", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"x"}}`, "X-Forwarded-For", attacker),
	} {
		wantRetryAfter(t, r, 429)
	}

	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{} // "<level> <msg>"
	for line := range strings.Lines(string(raw)) {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		level, msg := e["level"].(string), e["msg"].(string)
		reason, _ := e["reason"].(string)
		throttled := strings.Contains(reason, "too many failed sign-ins") || msg == "throttled"
		if throttled && level != "debug" {
			t.Errorf("a throttled refusal logged at %s: %s", level, line)
		}
		if reason != "" || msg == "throttled" || msg == "login_failed" {
			count[level+" "+msg]++
		}
	}
	// /token, /Token, /auth/token and API Maker log "token refused", the
	// Token Service its own message; each refusal has an audit entry.
	if count["debug token refused"] < 4 || count["debug token service refused"] < 1 || count["debug throttled"] < 5 {
		t.Errorf("throttled refusals at debug: %v", count)
	}
	if count["info token refused"] < 2 || count["info login_failed"] < 2 {
		t.Errorf("the failed sign-ins before the limit are not at info: %v", count)
	}
}
