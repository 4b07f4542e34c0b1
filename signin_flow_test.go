package tokengate_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

const appCallback = "http://127.0.0.1/callback"

// signInSite is startGateway with browser sign-in: a login block, the
// public client spa and the consent-asking partner, a store user dora and
// a user_table app (carol@example.com, app-pw, subject app:42).
func signInSite(t *testing.T, extra string) *gateway {
	t.Helper()
	appDB := filepath.Join(t.TempDir(), "appdata.db")
	appTable(t, "sqlite", appDB)
	g := startGateway(t, fmt.Sprintf(`login {
			title "Example <Corp>"
		}
		client spa public redirect_uri %s scopes orders:read
		client partner public redirect_uri %s consent scopes orders:read
		user_table app {
			driver sqlite
			dsn %s
			table members
			username_column email
			password_column password_hash
			id_column id
			roles_column role
		}
		%s`, appCallback, appCallback, appDB, extra))
	core := openTestCore(t, g.store, time.Now())
	defer core.Close()
	hash, _ := hashes()
	if err := core.Store().PutUser(context.Background(), issuer.User{Name: "dora", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	return g
}

// browser is a user agent: cookies kept, redirects not followed.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T, g *gateway) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Transport: g.tc.Client.Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, base+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(raw)}
}

// authorizePath is an authorization request of client with the
// challenge of verifier; extra pairs set (or, with "", drop) parameters.
func authorizePath(client, verifier string, extra ...string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {appCallback}, "state": {"st-1"},
		"code_challenge": {issuer.S256(verifier)}, "code_challenge_method": {"S256"}, "scope": {"orders:read"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return "/authorize?" + v.Encode()
}

var pageField = regexp.MustCompile(`name="(authz|csrf)" value="([^"]*)"`)

// submit posts a page's form (its hidden fields and fields) to path.
func (b *browser) submit(page response, path string, fields ...string) response {
	b.t.Helper()
	f := url.Values{}
	for _, m := range pageField.FindAllStringSubmatch(page.body, -1) {
		f.Set(m[1], m[2])
	}
	if f.Get("authz") == "" || f.Get("csrf") == "" {
		b.t.Fatalf("no form on the page: %d %s", page.status, page.body)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		f.Set(fields[i], fields[i+1])
	}
	return b.do(http.MethodPost, path, f)
}

// answer checks a 303 to the app's callback carrying state and iss, and
// returns its query.
func answer(t *testing.T, r response) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, appCallback+"?") {
		t.Fatalf("want a redirect to the app, got %d %q %s", r.status, loc, r.body)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if q.Get("iss") != base || q.Get("state") != "st-1" {
		t.Fatalf("the answer %q lacks iss %s or state", loc, base)
	}
	return q
}

func wantBrowserPage(t *testing.T, r response, status int) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	if r.status != status || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") ||
		r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
		r.header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("want an HTML page %d with the page headers, got %d %v\n%s", status, r.status, r.header, r.body)
	}
}

// exchange redeems a code at /token as the public client.
func exchange(g *gateway, client, code, verifier string) response {
	g.t.Helper()
	return g.form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appCallback},
		"code_verifier": {verifier}, "client_id": {client}})
}

// TestBrowserSignInThroughCaddy: on a Caddy site with a login block, a
// gateway user, a store user and a user_table user each sign in on the
// login page (a wrong password first), the app gets the code with state
// and iss, redeems it with its PKCE verifier, calls a guarded path and
// refreshes; the session cookie then answers prompt=none at once.
func TestBrowserSignInThroughCaddy(t *testing.T) {
	g := signInSite(t, "")
	for _, tc := range []struct{ user, password, sub, path string }{
		{"alice", userPassword, "alice", "/orders/1"},
		{"dora", userPassword, "dora", "/api"},
		{"carol@example.com", "app-pw", "app:42", "/api"},
	} {
		t.Run(tc.user, func(t *testing.T) {
			b := newBrowser(t, g)
			verifier := newVerifier(t)
			page := b.do(http.MethodGet, authorizePath("spa", verifier, "scope", scopeFor(tc.sub)), nil)
			wantBrowserPage(t, page, 200)
			if !strings.Contains(page.body, "Example &lt;Corp&gt;") || strings.Contains(page.body, "Example <Corp>") {
				t.Fatalf("the title is not shown escaped: %s", page.body)
			}
			wrong := b.submit(page, "/login", "username", tc.user, "password", "wrong")
			wantBrowserPage(t, wrong, 200)
			if !strings.Contains(wrong.body, `id="login-error"`) || strings.Contains(wrong.body, `value="wrong"`) {
				t.Fatalf("a wrong password: %s", wrong.body)
			}
			signedIn := b.submit(wrong, "/login", "username", tc.user, "password", tc.password)
			q := answer(t, signedIn)
			var session *http.Cookie
			for _, c := range (&http.Response{Header: signedIn.header}).Cookies() {
				if c.Name == "tg_session" {
					session = c
				}
			}
			if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure || session.Path != "/" {
				t.Fatalf("session cookie on an http site: %+v (all: %v)", session, signedIn.header["Set-Cookie"])
			}
			if strings.Contains(signedIn.header.Get("Location"), tc.password) {
				t.Fatal("the password is in the redirect")
			}

			tok := exchange(g, "spa", q.Get("code"), verifier)
			at, _ := tok.json["access_token"].(string)
			rt, _ := tok.json["refresh_token"].(string)
			if tok.status != 200 || at == "" || rt == "" {
				t.Fatalf("code exchange: %d %s", tok.status, tok.body)
			}
			if r := g.get(tc.path, at); r.status != 200 || !strings.Contains(r.body, "sub="+tc.sub+" ") || !strings.Contains(r.body, "client=spa") {
				t.Fatalf("guarded %s with the code's token: %d %s", tc.path, r.status, r.body)
			}
			ref := g.form("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}})
			if ref.status != 200 || ref.json["refresh_token"] == rt {
				t.Fatalf("refresh of the code's grant: %d %s", ref.status, ref.body)
			}

			// The SSO session: prompt=none answers at once, with a new code.
			again := answer(t, b.do(http.MethodGet, authorizePath("spa", verifier, "prompt", "none", "scope", scopeFor(tc.sub)), nil))
			if again.Get("code") == "" || again.Get("code") == q.Get("code") {
				t.Fatalf("prompt=none with a session: %v", again)
			}
			if tok := exchange(g, "spa", again.Get("code"), verifier); tok.status != 200 {
				t.Fatalf("the session's code: %d %s", tok.status, tok.body)
			}
		})
	}
}

// scopeFor: table users hold no scopes, so they ask for none.
func scopeFor(sub string) string {
	if strings.Contains(sub, ":") {
		return "openid"
	}
	return "orders:read"
}

func newVerifier(t *testing.T) string {
	t.Helper()
	v, err := issuer.NewSecret("")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowserSignInPagesThroughCaddy: what a browser meets besides the
// happy path, on the Caddy site: an unregistered redirect URI is an error
// page, never a redirect; other errors go back to the app; the form
// routes answer a GET with a page; consent deny and allow; the throttle's
// 429 page says when to retry.
func TestBrowserSignInPagesThroughCaddy(t *testing.T) {
	g := signInSite(t, "throttle {\n\t\t\tper_account_ip 3\n\t\t}")
	v := newVerifier(t)
	for _, tc := range []struct {
		name, path string
		status     int // an HTML page; 303: an answer to the app
		error      string
	}{
		{"unregistered redirect URI", authorizePath("spa", v, "redirect_uri", "https://evil.example/callback"), 400, ""},
		{"redirect URI with a trailing slash", authorizePath("spa", v, "redirect_uri", appCallback+"/"), 400, ""},
		{"unknown client", authorizePath("nobody", v), 400, ""},
		{"response_type token", authorizePath("spa", v, "response_type", "token"), 303, "unsupported_response_type"},
		{"plain PKCE", authorizePath("spa", v, "code_challenge_method", "plain"), 303, "invalid_request"},
		{"no PKCE from a public client", authorizePath("spa", v, "code_challenge", "", "code_challenge_method", ""), 303, "invalid_request"},
		{"prompt=none without a session", authorizePath("spa", v, "prompt", "none"), 303, "login_required"},
		{"GET of the login form's target", "/login", 405, ""},
		{"GET of the consent form's target", "/consent", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBrowser(t, g).do(http.MethodGet, tc.path, nil)
			if tc.status != http.StatusSeeOther {
				wantBrowserPage(t, r, tc.status)
				if r.header.Get("Location") != "" {
					t.Fatalf("an error page redirects to %s", r.header.Get("Location"))
				}
				return
			}
			if q := answer(t, r); q.Get("error") != tc.error || q.Get("code") != "" {
				t.Fatalf("answer %v, want error %s", q, tc.error)
			}
		})
	}
	if r := g.get("/login/nothing-here", ""); r.status != 404 {
		t.Fatalf("an unknown path under /login/: %d %s", r.status, r.body)
	}
	if r := g.get("/login/static/style.css", ""); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Fatalf("the style sheet: %d %v", r.status, r.header)
	}

	t.Run("consent", func(t *testing.T) {
		b := newBrowser(t, g)
		page := b.submit(b.do(http.MethodGet, authorizePath("partner", v), nil), "/login", "username", "alice", "password", userPassword)
		wantBrowserPage(t, page, 200)
		if !strings.Contains(page.body, "partner") || !strings.Contains(page.body, "orders:read") {
			t.Fatalf("the consent page names neither the client nor the scope: %s", page.body)
		}
		if q := answer(t, b.submit(page, "/consent", "decision", "deny")); q.Get("error") != "access_denied" {
			t.Fatalf("deny: %v", q)
		}
		page = b.do(http.MethodGet, authorizePath("partner", v), nil)
		q := answer(t, b.submit(page, "/consent", "decision", "allow"))
		if tok := exchange(g, "partner", q.Get("code"), v); tok.status != 200 {
			t.Fatalf("allow, then the exchange: %d %s", tok.status, tok.body)
		}
		// Remembered: the next authorization answers at once.
		if q := answer(t, b.do(http.MethodGet, authorizePath("partner", v), nil)); q.Get("code") == "" {
			t.Fatalf("a remembered consent: %v", q)
		}
	})

	t.Run("throttled", func(t *testing.T) {
		b := newBrowser(t, g)
		page := b.do(http.MethodGet, authorizePath("spa", v), nil)
		for range 3 {
			page = b.submit(page, "/login", "username", "bob", "password", "wrong")
			wantBrowserPage(t, page, 200)
		}
		r := b.submit(page, "/login", "username", "bob", "password", userPassword)
		wantBrowserPage(t, r, 429)
		if secs, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || secs < 1 {
			t.Fatalf("429 without Retry-After: %v", r.header)
		}
	})
}

// TestSignInSessionCookiesOnHTTPS: when the issuer is https, the cookies
// get Secure and the __Host- prefix (Path=/, no Domain).
func TestSignInSessionCookiesOnHTTPS(t *testing.T) {
	g := signInSite(t, "issuer https://gw.example")
	v := newVerifier(t)
	hc := &http.Client{Transport: g.tc.Client.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Get(base + authorizePath("spa", v))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	page := response{status: res.StatusCode, header: res.Header, body: string(raw)}
	wantBrowserPage(t, page, 200)
	csrf := cookieNamed(t, res.Cookies(), "__Host-tg_csrf")
	f := url.Values{"username": {"alice"}, "password": {userPassword}}
	for _, m := range pageField.FindAllStringSubmatch(page.body, -1) {
		f.Set(m[1], m[2])
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: csrf.Name, Value: csrf.Value})
	res, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	u, _ := url.Parse(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || u.Query().Get("iss") != "https://gw.example" || u.Query().Get("code") == "" {
		t.Fatalf("sign-in: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	cookieNamed(t, res.Cookies(), "__Host-tg_session")
}

func cookieNamed(t *testing.T, cs []*http.Cookie, name string) *http.Cookie {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			if !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != http.SameSiteLaxMode {
				t.Fatalf("cookie %s: %+v", name, c)
			}
			return c
		}
	}
	t.Fatalf("no cookie %s in %v", name, cs)
	return nil
}

// TestSignOutEndsSessionsEverywhere: revoke --sub from another instance
// (another Core on the same store) ends the browser's session at once.
func TestSignOutEndsSessionsEverywhere(t *testing.T) {
	g := signInSite(t, "")
	v := newVerifier(t)
	b := newBrowser(t, g)
	answer(t, b.submit(b.do(http.MethodGet, authorizePath("spa", v), nil), "/login", "username", "alice", "password", userPassword))
	answer(t, b.do(http.MethodGet, authorizePath("spa", v, "prompt", "none"), nil)) // the session answers

	other := openTestCore(t, g.store, time.Now())
	defer other.Close()
	if err := other.SignOut(context.Background(), issuer.Revocation{Kind: issuer.RevokeSubject, Key: "alice", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if q := answer(t, b.do(http.MethodGet, authorizePath("spa", v, "prompt", "none"), nil)); q.Get("error") != "login_required" {
		t.Fatalf("prompt=none after revoke --sub elsewhere: %v", q)
	}
}

// TestSignInRotatesTheSession: every sign-in gets a new session id and
// ends the one the browser held, so an id planted in a browser before the
// person signs in is worth nothing after (no fixation).
func TestSignInRotatesTheSession(t *testing.T) {
	g := signInSite(t, "")
	v := newVerifier(t)
	b := newBrowser(t, g)
	sessionOf := func() string {
		for _, c := range b.hc.Jar.Cookies(mustParse(t, base)) {
			if c.Name == "tg_session" {
				return c.Value
			}
		}
		t.Fatal("no session cookie")
		return ""
	}
	answer(t, b.submit(b.do(http.MethodGet, authorizePath("spa", v), nil), "/login", "username", "alice", "password", userPassword))
	planted := sessionOf()
	answer(t, b.submit(b.do(http.MethodGet, authorizePath("spa", v, "prompt", "login"), nil), "/login", "username", "bob", "password", userPassword))
	if now := sessionOf(); now == planted || !strings.HasPrefix(now, "tgs_") {
		t.Fatalf("the session id was not renewed at sign-in: %.8s…", now)
	}
	other := newBrowser(t, g)
	other.hc.Jar.SetCookies(mustParse(t, base), []*http.Cookie{{Name: "tg_session", Value: planted, Path: "/"}})
	if q := answer(t, other.do(http.MethodGet, authorizePath("spa", v, "prompt", "none"), nil)); q.Get("error") != "login_required" {
		t.Fatalf("the id held before the sign-in still opens a session: %v", q)
	}
}
