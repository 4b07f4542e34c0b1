package tokengate_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// ownPostgres starts a PostgreSQL cluster of the test's own (a free port,
// its own directory) with scripts/postgres.sh, so it can be stopped and
// started without touching the shared one. It returns the DSN and a
// function running `scripts/postgres.sh halt|resume` on it.
func ownPostgres(t *testing.T) (string, func(cmd string)) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/postgresql"); err != nil && os.Getenv("CI") == "" {
		t.Skip("no PostgreSQL server binaries (scripts/postgres.sh installs them as root)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := fmt.Sprintf("/tmp/tokengate-outage-pg-%d", port) // the postgres user must reach it
	run := func(cmd string) string {
		c := exec.Command("scripts/postgres.sh", cmd)
		c.Env = append(os.Environ(), fmt.Sprintf("TOKENGATE_PG_PORT=%d", port), "TOKENGATE_PG_DIR="+dir)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("scripts/postgres.sh %s: %v", cmd, err)
		}
		return strings.TrimSpace(string(out))
	}
	dsn := run("start")
	t.Cleanup(func() { run("stop") })
	return dsn, func(cmd string) { run(cmd) }
}

// TestStoreOutage stops the store under a running gateway: the guard keeps
// accepting the tokens it can verify, every route that needs the store
// answers 503 with Retry-After and says the store is unavailable (RFC 6749
// temporarily_unavailable, or the route's own envelope), and once the
// store is back the very next request succeeds, with no restart.
func TestStoreOutage(t *testing.T) {
	dsn, pg := ownPostgres(t)
	userHash, clientHash := hashes()
	// A user and an entity that live only in the store.
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutUser(ctx, issuer.User{Name: "carol", PasswordHash: userHash}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutEntity(ctx, issuer.Entity{ID: "aa-9"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	tc := newTester(t)
	tc.InitServer(fmt.Sprintf(`{
`+testGlobals+`
}
{$TOKENGATE_TEST_SITE} {
	tokengate {
		store postgres %q
		user alice %s roles admin
		client billing %s
		endpoint owin
		endpoint eventhos
		endpoint apimaker
	}
	respond "sub={http.auth.user.id}"
}`, dsn, userHash, clientHash), "caddyfile")
	g := &gateway{t: t, tc: tc}
	client := g.clientToken()
	login := g.passwordToken("alice")
	at, rt := login["access_token"].(string), login["refresh_token"].(string)

	pg("halt")
	for _, tok := range []string{client, at} {
		if r := g.get("/api", tok); r.status != 200 {
			t.Fatalf("guard during the outage: %d %s", r.status, r.body)
		}
	}
	form := func(v url.Values, h ...string) func() response {
		return func() response { return g.form("/token", v, h...) }
	}
	post := func(path, ctype, body string) func() response {
		return func() response { return g.post(path, ctype, body) }
	}
	cases := []struct {
		name  string
		do    func() response
		field string // where the body names the error
		code  string
	}{
		{"password grant (refresh token to store)", form(url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {userPassword}}), "error", "temporarily_unavailable"},
		{"password grant, stored user", form(url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {userPassword}}), "error", "temporarily_unavailable"},
		{"refresh grant", form(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}), "error", "temporarily_unavailable"},
		{"client_credentials, stored entity", form(url.Values{"grant_type": {"client_credentials"}, "client_id": {"aa-9"}, "client_secret": {"x"}}), "error", "temporarily_unavailable"},
		{"revoke", func() response { return g.form("/token/revoke", url.Values{"token": {at}}) }, "error", "temporarily_unavailable"},
		{"introspect a refresh token", func() response {
			return g.form("/token/introspect", url.Values{"token": {rt}}, "Authorization", basic("billing", clientSecret))
		}, "error", "temporarily_unavailable"},
		{"Token Service entity token", post("/entity/token/generate", "application/json", `{"id":"aa-9","secret":"x"}`), "errorCode", "SERVICE_UNAVAILABLE"},
		{"Token Service stored user", post("/user/token/generate", "application/json", `{"username":"carol","password":"x"}`), "errorCode", "SERVICE_UNAVAILABLE"},
		{"owin", post("/Token", "application/x-www-form-urlencoded", "grant_type=password&username=alice&password="+url.QueryEscape(userPassword)), "error", "temporarily_unavailable"},
		{"eventhos", post("/auth/token", "application/json", `{"grant_type":"password","username":"carol","password":"x"}`), "message", ""},
		{"apimaker", post("/api/system-api/user-path/token", "application/json", `{"authTokenType":"AM","authTokenAM":{"u":"alice","p":"`+userPassword+`"}}`), "message", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.do()
			if r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Fatalf("%d (Retry-After %q) %s; want 503 with Retry-After", r.status, r.header.Get("Retry-After"), r.body)
			}
			if c.code != "" && r.json[c.field] != c.code {
				t.Fatalf("%s = %v, want %s: %s", c.field, r.json[c.field], c.code, r.body)
			}
			if !strings.Contains(r.body, "store is unavailable") || strings.Contains(r.body, "credentials") {
				t.Fatalf("the body does not say the store is unavailable: %s", r.body)
			}
		})
	}

	pg("resume") // returns once the server accepts connections
	// Introspection reads the store and nothing slow (the client's secret
	// check is cached): its latency is the store's recovery.
	back := time.Now()
	r := g.form("/token/introspect", url.Values{"token": {rt}}, "Authorization", basic("billing", clientSecret))
	if r.status != 200 || r.json["active"] != true {
		t.Fatalf("first request after the store came back: %d %s", r.status, r.body)
	}
	t.Logf("recovered: the first request after the store came back answered 200 in %v", time.Since(back))
	r = g.form("/token", url.Values{"grant_type": {"password"}, "username": {"carol"}, "password": {userPassword}})
	if r.status != 200 {
		t.Fatalf("password grant after the store came back: %d %s", r.status, r.body)
	}
	if r := g.form("/token/revoke", url.Values{"token": {at}}); r.status != 200 {
		t.Fatalf("revoke after recovery: %d %s", r.status, r.body)
	}
	if r := g.get("/api", at); r.status != 401 {
		t.Fatalf("revoked after recovery: %d", r.status)
	}
}
