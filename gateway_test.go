package tokengate_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	_ "github.com/tokengate/caddy-tokengate"
	"github.com/tokengate/caddy-tokengate/internal/gateway/storeconf"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

const (
	userPassword = "correct horse battery staple"
	clientSecret = "billing-secret-0123456789"
)

// hashes are computed once: argon2id is deliberately slow.
var hashes = sync.OnceValues(func() (string, string) {
	u, err := issuer.HashPassword(userPassword)
	if err != nil {
		panic(err)
	}
	c, err := issuer.HashPassword(clientSecret)
	if err != nil {
		panic(err)
	}
	return u, c
})

type gateway struct {
	t     *testing.T
	tc    *caddytest.Tester
	dir   string
	store string
	log   string
}

// startGateway loads a site with a demo user and client; extra lines go
// into the tokengate block.
func startGateway(t *testing.T, extra string) *gateway {
	t.Helper()
	userHash, clientHash := hashes()
	g := &gateway{t: t, tc: newTester(t), dir: t.TempDir()}
	g.store = filepath.Join(g.dir, "tg.db")
	g.log = filepath.Join(g.dir, "caddy.log")
	// A key that became active two hours ago lets mintWithClock sign
	// tokens dated in the past with the gateway's own key.
	seed := openTestCore(t, g.store, time.Now().Add(-2*time.Hour))
	if err := seed.EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	seed.Close()
	g.tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
	log {
		output file %s
		format json
		level DEBUG
	}
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store sqlite %s
		user alice %s roles admin scopes orders:read orders:write
		user bob %s roles viewer
		client billing %s roles reader scopes orders:read
		client narrow %s grants password refresh_token
		allow /health /public/*
		require /admin/* role admin
		require /orders/* scope orders:read
		forward_header X-User-Id sub
		forward_header X-Roles roles
		%s
	}
	respond "sub={http.auth.user.id} hdr={http.request.header.X-User-Id} roles={http.request.header.X-Roles} client={http.auth.user.client_id}"
}`, g.log, g.store, userHash, userHash, clientHash, clientHash, extra), "caddyfile")
	return g
}

// waitLog returns the gateway's log once it holds every one of want
// (waitUntil's deadline): the server writes its log lines independently of
// the responses a test reads.
func (g *gateway) waitLog(want ...string) string {
	g.t.Helper()
	var logs string
	waitUntil(g.t, fmt.Sprintf("log lines %q", want), func() bool {
		b, err := os.ReadFile(g.log)
		logs = string(b)
		for _, w := range want {
			if err != nil || !strings.Contains(logs, w) {
				return false
			}
		}
		return true
	})
	return logs
}

// testGlobals are the global options every in-process test server uses;
// TestMain picks free ports for them.
const testGlobals = `	skip_install_trust
	admin localhost:{$TOKENGATE_TEST_ADMIN_PORT}
	http_port {$TOKENGATE_TEST_HTTP_PORT}
	https_port {$TOKENGATE_TEST_HTTPS_PORT}
	grace_period 1ns`

type response struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (g *gateway) do(req *http.Request) response {
	g.t.Helper()
	res, err := g.tc.Client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, body: string(b)}
	_ = json.Unmarshal(b, &r.json)
	return r
}

func (g *gateway) post(path, contentType, body string, headers ...string) response {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return g.do(req)
}

func (g *gateway) form(path string, v url.Values, headers ...string) response {
	g.t.Helper()
	return g.post(path, "application/x-www-form-urlencoded", v.Encode(), headers...)
}

func (g *gateway) get(path, token string, headers ...string) response {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return g.do(req)
}

func mustRequest(method, url string) *http.Request {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	return req
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func (g *gateway) passwordToken(user string) map[string]any {
	g.t.Helper()
	r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {userPassword}})
	if r.status != 200 {
		g.t.Fatalf("password grant: %d %s", r.status, r.body)
	}
	return r.json
}

func (g *gateway) clientToken() string {
	g.t.Helper()
	r := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret))
	if r.status != 200 {
		g.t.Fatalf("client_credentials: %d %s", r.status, r.body)
	}
	return r.json["access_token"].(string)
}

func wantOAuthError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status || r.json["error"] != code || r.json["error_description"] == "" {
		t.Fatalf("got %d %s; want %d %s with a description", r.status, r.body, status, code)
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("error Content-Type %q", r.header.Get("Content-Type"))
	}
}

func TestTokenGrants(t *testing.T) {
	g := startGateway(t, "")
	t.Run("password grant, form", func(t *testing.T) {
		tok := g.passwordToken("alice")
		if tok["token_type"] != "Bearer" || tok["expires_in"].(float64) != 900 || tok["scope"] != "orders:read orders:write" {
			t.Fatalf("response %v", tok)
		}
		if rt, _ := tok["refresh_token"].(string); !strings.HasPrefix(rt, "tgr_") {
			t.Fatalf("refresh_token %v", tok["refresh_token"])
		}
	})
	t.Run("password grant, JSON, narrowed scope, Basic client", func(t *testing.T) {
		r := g.post("/token", "application/json", `{"grant_type":"password","username":"alice","password":"`+userPassword+`","scope":"orders:read"}`,
			"Authorization", basic("narrow", clientSecret))
		if r.status != 200 || r.json["scope"] != "orders:read" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
		up := g.get("/orders/1", r.json["access_token"].(string))
		if up.status != 200 || !strings.Contains(up.body, "client=narrow") {
			t.Fatalf("upstream: %d %s", up.status, up.body)
		}
	})
	t.Run("client_credentials, Basic and body", func(t *testing.T) {
		r := g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", clientSecret))
		if r.status != 200 || r.json["refresh_token"] != nil || r.json["scope"] != "orders:read" {
			t.Fatalf("%d %s", r.status, r.body)
		}
		r = g.form("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}, "client_secret": {clientSecret}})
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	errCases := []struct {
		name    string
		values  url.Values
		headers []string
		status  int
		code    string
	}{
		{"wrong user password", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"nope"}}, nil, 400, "invalid_grant"},
		{"unknown user", url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"x"}}, nil, 400, "invalid_grant"},
		{"password grant missing password", url.Values{"grant_type": {"password"}, "username": {"alice"}}, nil, 400, "invalid_request"},
		{"password grant with bad client", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, []string{"Authorization", basic("billing", "wrong")}, 401, "invalid_client"},
		{"client_credentials wrong secret, Basic", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic("billing", "wrong")}, 401, "invalid_client"},
		{"client_credentials wrong secret, body", url.Values{"grant_type": {"client_credentials"}, "client_id": {"billing"}, "client_secret": {"wrong"}}, nil, 401, "invalid_client"},
		{"client_credentials without client", url.Values{"grant_type": {"client_credentials"}}, nil, 401, "invalid_client"},
		{"client_credentials unknown client", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic("ghost", clientSecret)}, 401, "invalid_client"},
		{"client not allowed the grant", url.Values{"grant_type": {"client_credentials"}}, []string{"Authorization", basic("narrow", clientSecret)}, 400, "unauthorized_client"},
		{"scope beyond the client's", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders:write"}}, []string{"Authorization", basic("billing", clientSecret)}, 400, "invalid_scope"},
		{"scope beyond the user's", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {userPassword}, "scope": {"orders:read"}}, nil, 400, "invalid_scope"},
		{"unknown grant", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, nil, 400, "unsupported_grant_type"},
		{"missing grant", url.Values{"username": {"alice"}}, nil, 400, "invalid_request"},
		{"refresh without token", url.Values{"grant_type": {"refresh_token"}}, nil, 400, "invalid_request"},
		{"unknown refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tgr_nope"}}, nil, 400, "invalid_grant"},
		{"credentials in header and body", url.Values{"grant_type": {"client_credentials"}, "client_secret": {clientSecret}}, []string{"Authorization", basic("billing", clientSecret)}, 400, "invalid_request"},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.form("/token", tc.values, tc.headers...)
			wantOAuthError(t, r, tc.status, tc.code)
			// Every 401 is challenged (RFC 9110 §15.5.2), body credentials too.
			if got := r.header.Get("WWW-Authenticate"); (tc.status == 401) != strings.HasPrefix(got, "Basic ") {
				t.Fatalf("WWW-Authenticate %q on %d", got, tc.status)
			}
		})
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	g := startGateway(t, "")
	first := g.passwordToken("alice")
	rt1 := first["refresh_token"].(string)
	r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	rt2, at2 := r.json["refresh_token"].(string), r.json["access_token"].(string)
	if rt2 == rt1 || rt2 == "" {
		t.Fatal("refresh token was not rotated")
	}
	if up := g.get("/anything", at2); up.status != 200 {
		t.Fatalf("refreshed access token refused: %d", up.status)
	}
	// Presenting the used token again within refresh_grace is a retry (a
	// client that lost the answer): a new pair, which supersedes rt2.
	r = g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	if r.status != 200 {
		t.Fatalf("retry within the grace: %d %s", r.status, r.body)
	}
	rt3, at3 := r.json["refresh_token"].(string), r.json["access_token"].(string)
	// The superseded rt2 surfacing means two holders: the whole family is revoked.
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}), 400, "invalid_grant")
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt3}}), 400, "invalid_grant")
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}), 400, "invalid_grant")
	for _, at := range []string{at2, at3} {
		if up := g.get("/anything", at); up.status != 401 {
			t.Fatalf("access token of a revoked family: %d", up.status)
		}
	}
	// A refresh token bound to a client needs that client.
	r = g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}, "Authorization", basic("narrow", clientSecret))
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.json["refresh_token"].(string)}}), 400, "invalid_grant")
}

// refresh_grace reaches the issuer: with it off, presenting a used token
// again at once is a reuse that ends the family, not a retry.
func TestRefreshGraceOff(t *testing.T) {
	g := startGateway(t, "refresh_grace off")
	rt1 := g.passwordToken("alice")["refresh_token"].(string)
	r := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	rt2 := r.json["refresh_token"].(string)
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}}), 400, "invalid_grant")
	wantOAuthError(t, g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}), 400, "invalid_grant")
}

func TestRevokeAndIntrospect(t *testing.T) {
	g := startGateway(t, "")
	at := g.passwordToken("alice")["access_token"].(string)
	auth := []string{"Authorization", basic("billing", clientSecret)}
	r := g.form("/token/introspect", url.Values{"token": {at}}, auth...)
	if r.status != 200 || r.json["active"] != true || r.json["sub"] != "alice" || r.json["scope"] != "orders:read orders:write" {
		t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	wantOAuthError(t, g.form("/token/introspect", url.Values{"token": {at}}), 401, "invalid_client")
	if r := g.form("/token/introspect", url.Values{"token": {"garbage"}}, auth...); r.json["active"] != false {
		t.Fatalf("introspect garbage: %s", r.body)
	}
	if r := g.form("/token/revoke", url.Values{"token": {"unknown"}}); r.status != 200 {
		t.Fatalf("revoke unknown: %d", r.status)
	}
	if r := g.form("/token/revoke", url.Values{"token": {at}, "token_type_hint": {"access_token"}}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if up := g.get("/x", at); up.status != 401 || !strings.Contains(up.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked token at the guard: %d %v", up.status, up.header)
	}
	if r := g.form("/token/introspect", url.Values{"token": {at}}, auth...); r.json["active"] != false {
		t.Fatalf("introspect revoked: %s", r.body)
	}
	wantOAuthError(t, g.form("/token/revoke", url.Values{}), 400, "invalid_request")
}

func TestWellKnown(t *testing.T) {
	g := startGateway(t, "")
	r := g.get("/.well-known/oauth-authorization-server", "")
	if r.status != 200 || r.json["issuer"] != base || r.json["token_endpoint"] != base+"/token" || r.json["jwks_uri"] != base+"/.well-known/jwks.json" {
		t.Fatalf("metadata: %d %s", r.status, r.body)
	}
	r = g.get("/.well-known/jwks.json", "")
	keys, _ := r.json["keys"].([]any)
	if r.status != 200 || len(keys) != 1 || keys[0].(map[string]any)["kty"] != "OKP" {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	if k := keys[0].(map[string]any); k["d"] != nil {
		t.Fatal("JWKS leaks the private key")
	}
}

func TestRoutesMethodsAndUnknownPaths(t *testing.T) {
	g := startGateway(t, "")
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{http.MethodGet, "/token", 405},
		{http.MethodPut, "/token/revoke", 405},
		{http.MethodPost, "/.well-known/jwks.json", 405},
		{http.MethodPost, "/token/nope", 404},
		{http.MethodGet, "/token/", 404},
		{http.MethodDelete, "/.well-known/oauth-authorization-server", 405},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.path, nil)
		r := g.do(req)
		if r.status != tc.status || r.json["error"] == nil {
			t.Errorf("%s %s: %d %s, want %d with a JSON error", tc.method, tc.path, r.status, r.body, tc.status)
		}
		if tc.status == 405 && r.header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
	// HEAD on GET routes, and a CORS preflight to /token reaches the next
	// handler (here: respond) instead of a 405.
	if r := g.do(mustRequest(http.MethodHead, base+"/.well-known/jwks.json")); r.status != 200 {
		t.Errorf("HEAD jwks: %d", r.status)
	}
	pre := mustRequest(http.MethodOptions, base+"/token")
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	if r := g.do(pre); r.status != 200 || !strings.HasPrefix(r.body, "sub=") {
		t.Errorf("preflight to /token: %d %q", r.status, r.body)
	}
}

func TestGuard(t *testing.T) {
	g := startGateway(t, "")
	alice := g.passwordToken("alice")["access_token"].(string)
	bob := g.passwordToken("bob")["access_token"].(string)
	client := g.clientToken()
	expired := mintWithClock(t, g.store, time.Now().Add(-time.Hour))
	future := mintWithClock(t, g.store, time.Now().Add(time.Hour))
	parts := strings.Split(alice, ".")
	tampered := parts[0] + "." + parts[1][:len(parts[1])-2] + "AA." + parts[2]

	cases := []struct {
		name, path, token string
		headers           []string
		status            int
		bodyHas, wwwHas   string
	}{
		{"no token", "/api", "", nil, 401, "", `Bearer realm="tokengate"`},
		{"valid token reaches upstream", "/api", alice, nil, 200, "sub=alice hdr=alice roles=admin", ""},
		{"client token", "/api", client, nil, 200, "sub=billing hdr=billing roles=reader client=billing", ""},
		{"tampered", "/api", tampered, nil, 401, "", `error="invalid_token"`},
		{"garbage", "/api", "not-a-jwt", nil, 401, "", `error="invalid_token"`},
		{"expired", "/api", expired, nil, 401, "", `error_description="token has expired"`},
		{"issued in the future", "/api", future, nil, 401, "", `error="invalid_token"`},
		{"wrong scheme", "/api", "", []string{"Authorization", basic("alice", userPassword)}, 401, "", `Bearer realm=`},
		{"two Authorization headers", "/api", alice, []string{"Authorization", "Bearer " + alice}, 400, "", `error="invalid_request"`},
		{"allowed path without token", "/health", "", nil, 200, "sub= hdr= roles=", ""},
		{"allowed glob", "/public/a/b", "", nil, 200, "", ""},
		{"spoofed header on allowed path is stripped", "/public/x", "", []string{"X-User-Id", "root"}, 200, "hdr= ", ""},
		{"spoofed header is replaced", "/api", bob, []string{"X-User-Id", "root", "X-Roles", "admin"}, 200, "hdr=bob roles=viewer", ""},
		{"role required, present", "/admin/users", alice, nil, 200, "", ""},
		{"role required, missing", "/admin/users", bob, nil, 403, "", `error="insufficient_scope"`},
		{"case does not dodge a rule", "/Admin/users", bob, nil, 403, "", `insufficient_scope`},
		{"double slash does not dodge a rule", "//admin/users", bob, nil, 403, "", `insufficient_scope`},
		{"dot-dot does not dodge a rule", "/public/../admin/users", bob, nil, 403, "", `insufficient_scope`},
		{"dot-dot into protected path needs a token", "/public/../api", "", nil, 401, "", `Bearer`},
		{"scope required, present", "/orders/7", client, nil, 200, "", ""},
		{"scope required, missing", "/orders/7", bob, nil, 403, "", `scope="orders:read"`},
		{"CORS preflight passes", "/api", "", []string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST"}, 200, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if strings.HasPrefix(tc.name, "CORS") {
				method = http.MethodOptions
			}
			req, _ := http.NewRequest(method, base+tc.path, nil)
			if strings.Contains(tc.path, "..") || strings.HasPrefix(tc.path, "//") {
				req.URL.Opaque = strings.TrimPrefix(base, "http:") + tc.path // send the path exactly as written
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Add(tc.headers[i], tc.headers[i+1])
			}
			r := g.do(req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if !strings.Contains(r.body, tc.bodyHas) {
				t.Fatalf("body %q lacks %q", r.body, tc.bodyHas)
			}
			if www := r.header.Get("WWW-Authenticate"); !strings.Contains(www, tc.wwwHas) || (tc.wwwHas == "" && www != "") {
				t.Fatalf("WWW-Authenticate %q, want %q", www, tc.wwwHas)
			}
			if r.status >= 400 && r.json["error"] == nil {
				t.Fatalf("error without a JSON body: %s", r.body)
			}
		})
	}
}

// openTestCore opens the gateway's store with a clock stopped at at.
func openTestCore(t *testing.T, storePath string, at time.Time) *issuer.Core {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite", storePath)
	if err != nil {
		t.Fatal(err)
	}
	// The key Caddy generates (TestMain keeps it in a temporary data dir).
	mk, _, err := storeconf.ResolveMasterKey("", true)
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{MasterKey: mk, Clock: func() time.Time { return at }, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return core
}

// mintWithClock signs a token with the gateway's own key as if at time at.
func mintWithClock(t *testing.T, storePath string, at time.Time) string {
	t.Helper()
	core := openTestCore(t, storePath, at)
	defer core.Close()
	is, err := issuer.New(core, issuer.Config{Issuer: base})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Kind: "user", Name: "alice", Subject: "alice", Roles: []string{"admin"}}})
	if err != nil {
		t.Fatal(err)
	}
	return toks.AccessToken
}

func TestBadInputNeverFiveHundred(t *testing.T) {
	g := startGateway(t, "")
	valid := "grant_type=client_credentials&client_id=billing&client_secret=" + clientSecret
	cases := []struct {
		name, path, ctype, body string
		headers                 []string
		status                  int
	}{
		{"non-JSON body as JSON", "/token", "application/json", "grant_type=password", nil, 400},
		{"truncated JSON", "/token", "application/json", `{"grant_type":"password","user`, nil, 400},
		{"JSON array", "/token", "application/json", `["grant_type"]`, nil, 400},
		{"JSON nested object", "/token", "application/json", `{"grant_type":{"a":1}}`, nil, 400},
		{"JSON trailing data", "/token", "application/json", `{"grant_type":"password"} {}`, nil, 400},
		{"JSON repeated key", "/token", "application/json", `{"grant_type":"password","grant_type":"client_credentials"}`, nil, 400},
		{"wrong content type", "/token", "text/plain", valid, nil, 400},
		{"malformed content type", "/token", "application/x-www-form-urlencoded; ===", valid, nil, 400},
		{"no content type with body", "/token", "", valid, nil, 400},
		{"empty body", "/token", "", "", nil, 400},
		{"body over the limit", "/token", "application/x-www-form-urlencoded", valid + "&pad=" + strings.Repeat("a", 70<<10), nil, 413},
		{"invalid UTF-8", "/token", "application/x-www-form-urlencoded", "grant_type=password&username=\xff\xfe&password=x", nil, 400},
		{"invalid percent-encoding", "/token", "application/x-www-form-urlencoded", "grant_type=%zz", nil, 400},
		{"repeated parameter", "/token", "application/x-www-form-urlencoded", valid + "&grant_type=password", nil, 400},
		{"missing fields", "/token", "application/x-www-form-urlencoded", "grant_type=password", nil, 400},
		{"unknown grant", "/token", "application/x-www-form-urlencoded", "grant_type=urn:x", nil, 400},
		{"bad Basic header", "/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", []string{"Authorization", "Basic !!!"}, 401},
		{"Basic without colon", "/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("billing"))}, 401},
		{"Basic with bad escape", "/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("a%zz:b"))}, 401},
		{"repeated Authorization", "/token", "application/x-www-form-urlencoded", "grant_type=client_credentials", []string{"Authorization", basic("billing", clientSecret), "Authorization", basic("billing", clientSecret)}, 400},
		{"huge password", "/token", "application/x-www-form-urlencoded", "grant_type=password&username=alice&password=" + strings.Repeat("p", 60<<10), nil, 400},
		{"revoke with bad JSON", "/token/revoke", "application/json", `{"token":`, nil, 400},
		{"introspect with bad Basic", "/token/introspect", "application/x-www-form-urlencoded", "token=x", []string{"Authorization", "Basic %%%"}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := g.post(tc.path, tc.ctype, tc.body, tc.headers...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if r.json["error"] == nil || r.json["error_description"] == nil {
				t.Fatalf("not a JSON error: %q", r.body)
			}
		})
	}
	// The good request still works after all that.
	if r := g.post("/token", "application/x-www-form-urlencoded", valid); r.status != 200 {
		t.Fatalf("valid request after bad ones: %d %s", r.status, r.body)
	}
}

func TestLogsNeverHoldSecrets(t *testing.T) {
	g := startGateway(t, "")
	tok := g.passwordToken("alice")
	g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong-password-xyz"}})
	g.form("/token", url.Values{"grant_type": {"client_credentials"}}, "Authorization", basic("billing", "wrong-secret-xyz"))
	ct := g.clientToken()
	g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	g.get("/api", "tampered"+ct)
	g.form("/token/revoke", url.Values{"token": {ct}})
	// The revocation line is the last request's: once it is there, so are
	// the lines of every request before it.
	logs := g.waitLog(`"token issued"`, `"token refused"`, `"grant":"password"`, `"token revoked"`)
	for _, secret := range []string{userPassword, "wrong-password-xyz", clientSecret, "wrong-secret-xyz",
		tok["access_token"].(string), tok["refresh_token"].(string), ct, strings.Split(ct, ".")[2]} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log holds a secret (%.12s…)", secret)
		}
	}
}
