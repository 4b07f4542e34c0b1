package tokengate_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestExampleBrowserSignIn runs the README's browser sign-in on
// examples/Caddyfile (its ports, admin endpoint and database file moved to
// this run's): the README's authorization URL shows the login page, demo
// signs in, the demo upstream's /callback shows the code as plain text, and
// the README's verifier redeems it for a token the guard accepts.
func TestExampleBrowserSignIn(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	authURL := regexp.MustCompile(`(?m)^http://localhost:8080/authorize\?\S+$`).FindString(string(readme))
	verifier := regexp.MustCompile(`code_verifier=(\S+)`).FindStringSubmatch(string(readme))
	if authURL == "" || verifier == nil {
		t.Fatal("the README's quick start has no authorization URL or code_verifier")
	}
	src, err := os.ReadFile("examples/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	upstream := strconv.Itoa(freePorts(1)[0])
	accessLog := filepath.Join(t.TempDir(), "access.log")
	cfg := strings.NewReplacer(
		"{\n\tadmin localhost:2019\n}", "{\n"+testGlobals+"\n}",
		":8080 {", base+" {",
		"http://localhost:8080", base,
		"127.0.0.1:9000", "127.0.0.1:"+upstream,
		":9000 {", ":"+upstream+" {",
		"./tokengate-demo.db", filepath.Join(t.TempDir(), "demo.db"),
		"\t\toutput stderr\n", "\t\toutput file "+accessLog+"\n",
	).Replace(string(src))
	g := &gateway{t: t, tc: newTester(t)}
	g.tc.InitServer(cfg, "caddyfile")

	u := strings.NewReplacer("http://localhost:8080", base, "127.0.0.1%3A9000", "127.0.0.1%3A"+upstream).Replace(authURL)
	b := newBrowser(t, g)
	page := b.do(http.MethodGet, strings.TrimPrefix(u, base), nil)
	wantBrowserPage(t, page, 200)
	signedIn := b.submit(page, "/login", "username", "demo", "password", "demo-password")
	cb := signedIn.header.Get("Location")
	if signedIn.status != http.StatusSeeOther || !strings.HasPrefix(cb, "http://127.0.0.1:"+upstream+"/callback?") {
		t.Fatalf("sign-in: %d %q %s", signedIn.status, cb, signedIn.body)
	}
	res, err := http.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := regexp.MustCompile(`^demo-app received code=(tgc_\S+) state=xyz iss=(\S+)$`).FindStringSubmatch(string(body))
	if m == nil || m[2] != base || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("the demo callback: %s %q", res.Header.Get("Content-Type"), body)
	}
	tok := g.form("/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"demo-app"},
		"redirect_uri": {"http://127.0.0.1:" + upstream + "/callback"}, "code_verifier": {verifier[1]}, "code": {m[1]}})
	at, _ := tok.json["access_token"].(string)
	if tok.status != 200 || at == "" || tok.json["scope"] != "orders:read" || tok.json["refresh_token"] == nil {
		t.Fatalf("the README's exchange: %d %s", tok.status, tok.body)
	}
	if r := g.get("/orders/42", at); r.status != 200 || !strings.Contains(r.body, `"user":"demo"`) {
		t.Fatalf("the upstream with the code's token: %d %s", r.status, r.body)
	}
	if again := b.do(http.MethodGet, strings.TrimPrefix(u, base), nil); again.status != http.StatusSeeOther {
		t.Fatalf("the README's URL again, with the session: %d", again.status)
	}
	// The example's access log keeps the requests but no credential: not
	// the codes in the redirects, the session cookie or the password.
	secrets := []string{m[1], "demo-password", at}
	for _, c := range b.hc.Jar.Cookies(mustParse(t, base)) {
		secrets = append(secrets, c.Value)
	}
	logs := waitLogged(t, accessLog, `"uri":"/orders/42"`)
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the access log holds a credential %.12s…", s)
		}
	}
	if !strings.Contains(logs, "callback?code=REDACTED") {
		t.Errorf("the redirect's code is not shown redacted:\n%s", logs)
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitLogged returns file once it holds want (Caddy writes its log
// independently of the responses).
func waitLogged(t *testing.T, file, want string) string {
	t.Helper()
	var logs string
	waitUntil(t, "access log line "+want, func() bool {
		b, _ := os.ReadFile(file)
		logs = string(b)
		return strings.Contains(logs, want)
	})
	return logs
}
