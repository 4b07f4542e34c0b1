package login_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

const (
	verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	appCB    = "https://app.example/cb"
)

var challenge = issuer.S256(verifier)

// site is a login.Server behind httptest, with a public client spa, a
// confidential client partner that asks consent, and a browser.
type site struct {
	t   *testing.T
	is  *issuer.Issuer
	url string
	hc  *http.Client
}

func newSite(t *testing.T) *site {
	t.Helper()
	is := issuertest.New(t, issuer.Config{Issuer: "https://gw", Clients: []issuer.Client{
		{ID: "spa", Public: true, RedirectURIs: []string{appCB, "http://127.0.0.1/native"}},
		{ID: "partner", SecretHash: issuertest.Hash(t, "s"), Consent: true, Scopes: []string{"read"}, RedirectURIs: []string{appCB}},
		{ID: "legacy", SecretHash: issuertest.Hash(t, "s"), PKCEOptional: true, RedirectURIs: []string{appCB}},
	}, Throttle: throttle.Config{PerAccountIP: 3, PerAccount: 100, PerIP: 100, Base: time.Minute}})
	srv := &login.Server{Issuer: is, Log: zap.NewNop(), Title: "Example <Corp>"}
	mux := http.NewServeMux()
	for path, rt := range srv.Routes() {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			rt.Handler(w, r.WithContext(issuer.WithClientIP(r.Context(), "192.0.2.1")))
		})
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &site{t: t, is: is, url: ts.URL, hc: hc}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (s *site) do(method, path string, form url.Values) resp {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, s.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r, err := s.hc.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, string(b)}
}

func authorizeQuery(extra ...string) string {
	v := url.Values{"response_type": {"code"}, "client_id": {"spa"}, "redirect_uri": {appCB}, "state": {"st-1"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "scope": {"openid"}}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			v.Del(extra[i])
		} else {
			v.Set(extra[i], extra[i+1])
		}
	}
	return login.PathAuthorize + "?" + v.Encode()
}

var hidden = regexp.MustCompile(`name="(authz|csrf)" value="([^"]*)"`)

// formOf returns the hidden fields of a page.
func formOf(t *testing.T, body string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hidden.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], m[2])
	}
	if v.Get("authz") == "" || v.Get("csrf") == "" {
		t.Fatalf("no form in %s", body)
	}
	return v
}

// redirected checks a 303 to the client and returns its query.
func redirected(t *testing.T, r resp) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, appCB+"?") {
		t.Fatalf("want a redirect to the client, got %d %q %s", r.status, loc, r.body)
	}
	u, _ := url.Parse(loc)
	q := u.Query()
	if q.Get("iss") != "https://gw" {
		t.Fatalf("no iss in %q", loc)
	}
	return q
}

func (s *site) signIn(user, pw string, page resp) resp {
	s.t.Helper()
	f := formOf(s.t, page.body)
	f.Set("username", user)
	f.Set("password", pw)
	return s.do(http.MethodPost, login.PathLogin, f)
}

func wantPageHeaders(t *testing.T, r resp) {
	t.Helper()
	csp := r.header.Get("Content-Security-Policy")
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("X-Frame-Options") != "DENY" ||
		!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") ||
		r.header.Get("Referrer-Policy") != "no-referrer" || r.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("page headers: %v", r.header)
	}
}

func TestSignInFlow(t *testing.T) {
	s := newSite(t)
	page := s.do(http.MethodGet, authorizeQuery("login_hint", `"><script>alert(1)</script>`), nil)
	wantPageHeaders(t, page)
	if page.status != 200 || !strings.Contains(page.body, `name="username"`) || !strings.Contains(page.body, `lang="en"`) ||
		strings.Contains(page.body, "<script>alert") || !strings.Contains(page.body, "Example &lt;Corp&gt;") {
		t.Fatalf("login page: %d %s", page.status, page.body)
	}
	// A wrong password: the same page, an error tied to the fields, the
	// name kept (escaped), the password never echoed.
	wrong := s.signIn(`bob<i>`, "not-it-pw-xyz", page)
	if wrong.status != 200 || !strings.Contains(wrong.body, "Incorrect username or password") ||
		!strings.Contains(wrong.body, `aria-describedby="login-error"`) || strings.Contains(wrong.body, "not-it-pw-xyz") ||
		strings.Contains(wrong.body, "<i>") {
		t.Fatalf("wrong password: %d %s", wrong.status, wrong.body)
	}
	wantPageHeaders(t, wrong)
	unknown := s.signIn("nobody", "not-it-pw-xyz", page)
	if unknown.status != wrong.status || !strings.Contains(unknown.body, "Incorrect username or password") {
		t.Fatalf("unknown user answered unlike a wrong password: %d", unknown.status)
	}
	ok := s.signIn("alice", issuertest.Password, wrong)
	q := redirected(t, ok)
	if q.Get("state") != "st-1" || q.Get("code") == "" {
		t.Fatalf("authorization response %v", q)
	}
	var session *http.Cookie
	for _, c := range s.hc.Jar.Cookies(mustURL(s.url)) {
		if c.Name == login.SessionCookieName(false) {
			session = c
		}
	}
	if session == nil || !strings.Contains(strings.Join(ok.header.Values("Set-Cookie"), "\n"), "HttpOnly") ||
		!strings.Contains(strings.Join(ok.header.Values("Set-Cookie"), "\n"), "SameSite=Lax") {
		t.Fatalf("session cookie: %v", ok.header.Values("Set-Cookie"))
	}
	red, err := s.is.RedeemCode(context.Background(), issuer.RedeemRequest{Code: q.Get("code"), ClientID: "spa", RedirectURI: appCB, Verifier: verifier})
	if err != nil || red.Principal.Subject != "alice" || red.Code.Scope != "openid" {
		t.Fatalf("redeem: %+v %v", red, err)
	}

	// With the session: prompt=none answers at once; max_age=0 and
	// prompt=login sign in again.
	q = redirected(t, s.do(http.MethodGet, authorizeQuery("prompt", "none"), nil))
	if q.Get("code") == "" {
		t.Fatalf("prompt=none with a session: %v", q)
	}
	for _, extra := range [][]string{{"max_age", "0"}, {"prompt", "login"}} {
		if r := s.do(http.MethodGet, authorizeQuery(extra...), nil); r.status != 200 || !strings.Contains(r.body, `name="password"`) {
			t.Fatalf("%v with a session: %d", extra, r.status)
		}
	}
	// A second sign-in gets a new session id and ends the old one.
	again := s.signIn("alice", issuertest.Password, s.do(http.MethodGet, authorizeQuery("prompt", "login"), nil))
	redirected(t, again)
	if _, err := s.is.LookupSession(context.Background(), session.Value); err == nil {
		t.Fatal("the session before a new sign-in is still live (fixation)")
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

func TestPromptNoneWithoutSession(t *testing.T) {
	s := newSite(t)
	q := redirected(t, s.do(http.MethodGet, authorizeQuery("prompt", "none"), nil))
	if q.Get("error") != "login_required" || q.Get("state") != "st-1" {
		t.Fatalf("got %v", q)
	}
}

// TestAuthorizeRefusals: each refusal of the issue, shown (never
// redirected) while the client or its redirect URI is unknown, else sent
// back to the client.
func TestAuthorizeRefusals(t *testing.T) {
	s := newSite(t)
	for _, tc := range []struct {
		name  string
		extra []string
		code  string // "": an error page, no redirect
	}{
		{"unknown client", []string{"client_id", "nobody"}, ""},
		{"no client", []string{"client_id", ""}, ""},
		{"trailing slash", []string{"redirect_uri", appCB + "/"}, ""},
		{"case", []string{"redirect_uri", "https://APP.example/cb"}, ""},
		{"extra query", []string{"redirect_uri", appCB + "?x=1"}, ""},
		{"userinfo", []string{"redirect_uri", "https://app.example@evil.example/cb"}, ""},
		{"other port", []string{"redirect_uri", "https://app.example:8443/cb"}, ""},
		{"another host", []string{"redirect_uri", "https://evil.example/cb"}, ""},
		{"protocol-relative", []string{"redirect_uri", "//evil.example/cb"}, ""},
		{"repeated parameter", []string{"client_id", "spa&client_id=spa"}, ""},
		{"response_type token", []string{"response_type", "token"}, "unsupported_response_type"},
		{"no response_type", []string{"response_type", ""}, "invalid_request"},
		{"plain", []string{"code_challenge_method", "plain", "code_challenge", verifier}, "invalid_request"},
		{"no method (plain by default)", []string{"code_challenge_method", ""}, "invalid_request"},
		{"a public client without PKCE", []string{"code_challenge", "", "code_challenge_method", ""}, "invalid_request"},
		{"a challenge that is no S256", []string{"code_challenge", "short"}, "invalid_request"},
		{"an unknown scope", []string{"scope", "openid admin"}, "invalid_scope"},
		{"request object", []string{"request", "eyJ.x.y"}, "request_not_supported"},
		{"request_uri", []string{"request_uri", "https://x"}, "request_uri_not_supported"},
		{"bad prompt", []string{"prompt", "everything"}, "invalid_request"},
		{"bad max_age", []string{"max_age", "-1"}, "invalid_request"},
		{"bad response_mode", []string{"response_mode", "fragment"}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authorizeQuery(tc.extra...)
			if tc.name == "repeated parameter" {
				q = authorizeQuery() + "&client_id=spa"
			}
			r := s.do(http.MethodGet, q, nil)
			if tc.code == "" {
				if r.status != http.StatusBadRequest || r.header.Get("Location") != "" || !strings.Contains(r.body, "<html") {
					t.Fatalf("want an error page, got %d %q", r.status, r.header.Get("Location"))
				}
				wantPageHeaders(t, r)
				return
			}
			if got := redirected(t, r); got.Get("error") != tc.code || got.Get("state") != "st-1" || got.Get("error_description") == "" {
				t.Fatalf("got %v, want %s", got, tc.code)
			}
		})
	}
	t.Run("without state, no state comes back", func(t *testing.T) {
		if q := redirected(t, s.do(http.MethodGet, authorizeQuery("state", "", "response_type", "token"), nil)); q.Has("state") {
			t.Fatalf("got %v", q)
		}
	})
	t.Run("a loopback redirect on another port", func(t *testing.T) {
		r := s.do(http.MethodGet, authorizeQuery("redirect_uri", "http://127.0.0.1:51234/native"), nil)
		if r.status != 200 {
			t.Fatalf("native loopback redirect: %d", r.status)
		}
	})
	t.Run("a confidential client with pkce optional", func(t *testing.T) {
		r := s.do(http.MethodGet, authorizeQuery("client_id", "legacy", "code_challenge", "", "code_challenge_method", ""), nil)
		if r.status != 200 {
			t.Fatalf("pkce optional: %d", r.status)
		}
	})
}

// TestLoginCSRF: the login form is only taken with its token, bound to the
// browser's cookie and to its own authorization request.
func TestLoginCSRF(t *testing.T) {
	s := newSite(t)
	page := s.do(http.MethodGet, authorizeQuery(), nil)
	other := s.do(http.MethodGet, authorizeQuery("state", "other"), nil)
	f, fo := formOf(t, page.body), formOf(t, other.body)
	for name, form := range map[string]url.Values{
		"no token":                  {"authz": {f.Get("authz")}, "username": {"alice"}, "password": {issuertest.Password}},
		"another request's token":   {"authz": {f.Get("authz")}, "csrf": {fo.Get("csrf")}, "username": {"alice"}, "password": {issuertest.Password}},
		"a forged pending request":  {"authz": {"x" + f.Get("authz")}, "csrf": {f.Get("csrf")}, "username": {"alice"}, "password": {issuertest.Password}},
		"no pending request at all": {"csrf": {f.Get("csrf")}, "username": {"alice"}, "password": {issuertest.Password}},
	} {
		if r := s.do(http.MethodPost, login.PathLogin, form); r.status != http.StatusForbidden || r.header.Get("Location") != "" {
			t.Errorf("%s: %d %q", name, r.status, r.header.Get("Location"))
		}
	}
	// Another browser (no CSRF cookie) posting a victim's form: refused.
	stranger := newSite(t)
	stranger.url = s.url
	f.Set("username", "alice")
	f.Set("password", issuertest.Password)
	if r := stranger.do(http.MethodPost, login.PathLogin, f); r.status != http.StatusForbidden {
		t.Fatalf("a form posted from another browser: %d", r.status)
	}
}

func TestConsent(t *testing.T) {
	s := newSite(t)
	start := authorizeQuery("client_id", "partner", "scope", "openid read")
	consentPage := s.signIn("alice", issuertest.Password, s.do(http.MethodGet, start, nil))
	if consentPage.status != 200 || !strings.Contains(consentPage.body, "partner") || !strings.Contains(consentPage.body, "<li>read</li>") ||
		!strings.Contains(consentPage.body, `value="deny"`) {
		t.Fatalf("consent page: %d %s", consentPage.status, consentPage.body)
	}
	wantPageHeaders(t, consentPage)
	deny := formOf(t, consentPage.body)
	deny.Set("decision", "deny")
	if q := redirected(t, s.do(http.MethodPost, login.PathConsent, deny)); q.Get("error") != "access_denied" {
		t.Fatalf("deny: %v", q)
	}
	page := s.do(http.MethodGet, start, nil) // signed in: straight to consent
	allow := formOf(t, page.body)
	allow.Set("decision", "allow")
	if q := redirected(t, s.do(http.MethodPost, login.PathConsent, allow)); q.Get("code") == "" {
		t.Fatalf("allow: %v", q)
	}
	// Remembered: no page the next time, and prompt=none works.
	if q := redirected(t, s.do(http.MethodGet, authorizeQuery("client_id", "partner", "scope", "openid read", "prompt", "none"), nil)); q.Get("code") == "" {
		t.Fatalf("remembered consent: %v", q)
	}
	// Asked again for more (offline_access was never allowed).
	if q := redirected(t, s.do(http.MethodGet, authorizeQuery("client_id", "partner", "scope", "openid offline_access", "prompt", "none"), nil)); q.Get("error") != "consent_required" {
		t.Fatalf("a wider request: %v", q)
	}
}

func TestFormPost(t *testing.T) {
	s := newSite(t)
	r := s.signIn("alice", issuertest.Password, s.do(http.MethodGet, authorizeQuery("response_mode", "form_post", "state", `"><b>x`), nil))
	if r.status != 200 || !strings.Contains(r.body, `action="https://app.example/cb"`) || !strings.Contains(r.body, `name="code"`) ||
		!strings.Contains(r.body, `name="iss" value="https://gw"`) || strings.Contains(r.body, "<b>x") ||
		!strings.Contains(r.body, `src="/login/static/formpost.js"`) || strings.Contains(r.body, "<script>") {
		t.Fatalf("form_post page: %d %s", r.status, r.body)
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example;") {
		t.Fatalf("form_post CSP: %q", csp)
	}
}

func TestThrottledLoginPage(t *testing.T) {
	s := newSite(t)
	page := s.do(http.MethodGet, authorizeQuery(), nil)
	var r resp
	for range 4 {
		r = s.signIn("alice", "wrong-password", page)
	}
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Try again in") {
		t.Fatalf("after repeated failures: %d %v", r.status, r.header)
	}
	wantPageHeaders(t, r)
}

func TestStaticAssets(t *testing.T) {
	s := newSite(t)
	css := s.do(http.MethodGet, login.PathStyle, nil)
	js := s.do(http.MethodGet, login.PathFormPost, nil)
	if css.status != 200 || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") || !strings.Contains(css.body, "focus-visible") ||
		js.status != 200 || !strings.Contains(js.body, "submit()") {
		t.Fatalf("assets: %d %d", css.status, js.status)
	}
}

func TestOperatorTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("login.html", `{{template "head" .}}<p>Welcome to {{.Title}}</p>{{template "foot" .}}`)
	p, err := login.LoadPages(dir)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		t.Fatal("no pages")
	}
	write("error.html", `{{.NoSuchField}}`)
	if _, err := login.LoadPages(dir); err == nil || !strings.Contains(err.Error(), "error.html") {
		t.Fatalf("a template that does not render: %v", err)
	}
	write("error.html", `{{if}}`)
	if _, err := login.LoadPages(dir); err == nil {
		t.Fatal("a template that does not parse was taken")
	}
}

// TestRemovedUserSession: a session whose user was removed since counts
// as none (prompt=none: login_required).
func TestRemovedUserSession(t *testing.T) {
	s := newSite(t)
	st := s.is.Core().Store()
	ctx := context.Background()
	if err := st.PutUser(ctx, issuer.User{Name: "carol", PasswordHash: issuertest.Hash(t, "carol-pw")}); err != nil {
		t.Fatal(err)
	}
	redirected(t, s.signIn("carol", "carol-pw", s.do(http.MethodGet, authorizeQuery(), nil)))
	if err := st.DeleteUser(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if q := redirected(t, s.do(http.MethodGet, authorizeQuery("prompt", "none"), nil)); q.Get("error") != "login_required" {
		t.Fatalf("a removed user's session: %v", q)
	}
	if r := s.do(http.MethodGet, authorizeQuery(), nil); r.status != 200 || !strings.Contains(r.body, `name="password"`) {
		t.Fatalf("a removed user's session without prompt: %d", r.status)
	}
}
