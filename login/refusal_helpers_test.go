package login_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
	"github.com/tokengate/caddy-tokengate/login"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// Redirect URIs of the flow site's clients beyond appCB.
const (
	loopV4   = "http://127.0.0.1/native"    // spa: a native app's loopback listener, any port
	loopV6   = "http://[::1]:8080/native"   // spa: the same on IPv6
	otherCB  = "https://other.example/cb"   // other's own
	secondCB = "https://app.example/second" // multi's second
)

// testClock is a clock tests move.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// flowClients are the flow site's clients: spa (public, with loopback
// URIs), other (public, a URI of its own too), partner (confidential,
// asks consent, may ask scope read), legacy (confidential, PKCE
// optional), multi (public, two redirect URIs).
func flowClients(t testing.TB) []issuer.Client {
	return []issuer.Client{
		{ID: "spa", Public: true, RedirectURIs: []string{appCB, loopV4, loopV6}},
		{ID: "other", Public: true, RedirectURIs: []string{appCB, otherCB}},
		{ID: "partner", SecretHash: issuertest.Hash(t, "s"), Consent: true, Scopes: []string{"read"}, RedirectURIs: []string{appCB}},
		{ID: "legacy", SecretHash: issuertest.Hash(t, "s"), PKCEOptional: true, RedirectURIs: []string{appCB}},
		{ID: "multi", Public: true, RedirectURIs: []string{appCB, secondCB}},
	}
}

// registeredURIs are every redirect URI of flowClients.
var registeredURIs = []string{appCB, loopV4, loopV6, otherCB, secondCB}

// clockedIssuer is issuertest.New on a clock the test moves (issuertest
// has no clock of its own): users alice and bob, issuer https://gw.
func clockedIssuer(t testing.TB, cfg issuer.Config, clk *testClock) *issuer.Issuer {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(ctx, st, issuer.CoreOptions{SyncInterval: -1, Clock: clk.Now})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	if cfg.Issuer == "" {
		cfg.Issuer = issuertest.Iss
	}
	cfg.Users = append(cfg.Users,
		issuer.User{Name: "alice", PasswordHash: issuertest.Hash(t, issuertest.Password), Scopes: []string{"read"}},
		issuer.User{Name: "bob", PasswordHash: issuertest.Hash(t, issuertest.Password)})
	is, err := issuer.New(core, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.EnsureKey(ctx, issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	return is
}

// flowSite is a site whose mux has both the login routes and oauth's
// /token, on an issuer with a moving clock; browser() gives another
// browser (its own cookie jar) on the same site.
type flowSite struct {
	*site
	clk *testClock
}

func newFlowSite(t *testing.T, title string, extra ...issuer.Client) *flowSite {
	t.Helper()
	clk := &testClock{t: time.Now().Truncate(time.Second)}
	is := clockedIssuer(t, issuer.Config{Clients: append(flowClients(t), extra...)}, clk)
	ls := &login.Server{Issuer: is, Log: zap.NewNop(), Title: title}
	oa := &oauth.Server{Issuer: is, Log: zap.NewNop(), AuthorizePath: login.PathAuthorize}
	mux := http.NewServeMux()
	for path, rt := range ls.Routes() {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			rt.Handler(w, r.WithContext(issuer.WithClientIP(r.Context(), "192.0.2.1")))
		})
	}
	for path, rt := range oa.Routes() {
		mux.HandleFunc(path, rt.Handler)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	f := &flowSite{site: &site{t: t, is: is, url: ts.URL}, clk: clk}
	f.hc = f.browser().hc
	return f
}

// browser is another browser on the site: a jar of its own.
func (f *flowSite) browser() *site {
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &site{t: f.t, is: f.is, url: f.url, hc: hc}
}

// csrfCookie is the browser's CSRF cookie ("" if none).
func (s *site) csrfCookie() string {
	for _, c := range s.hc.Jar.Cookies(mustURL(s.url)) {
		if c.Name == "tg_csrf" {
			return c.Value
		}
	}
	return ""
}

// tokenAnswer is /token's answer.
type tokenAnswer struct {
	status int
	body   map[string]any
}

func (t tokenAnswer) str(k string) string { s, _ := t.body[k].(string); return s }

// token posts a token request (no cookies: the client's back channel).
func (f *flowSite) token(form url.Values) tokenAnswer {
	f.t.Helper()
	r, err := http.PostForm(f.url+oauth.PathToken, form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		f.t.Fatalf("token answer %d is not JSON: %s", r.StatusCode, b)
	}
	return tokenAnswer{r.StatusCode, body}
}

// exchange is the token request redeeming code for client spa at appCB.
func exchange(code string, kv ...string) url.Values {
	v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {"spa"},
		"redirect_uri": {appCB}, "code_verifier": {verifier}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

// wantTokenError checks a refused token request.
func wantTokenError(t *testing.T, a tokenAnswer, code string) {
	t.Helper()
	if a.status != http.StatusBadRequest && a.status != http.StatusUnauthorized || a.str("error") != code || a.str("access_token") != "" {
		t.Fatalf("want %s, got %d %v", code, a.status, a.body)
	}
}

// codeFor runs the flow in browser b (signing alice in if asked) for
// authorizeQuery(extra...) and returns the code sent to appCB.
func codeFor(t *testing.T, b *site, extra ...string) string {
	t.Helper()
	r := b.do(http.MethodGet, authorizeQuery(extra...), nil)
	if r.status == http.StatusOK && strings.Contains(r.body, `name="password"`) {
		r = b.signIn("alice", issuertest.Password, r)
	}
	q := redirected(t, r)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	return q.Get("code")
}

// wantLoginPage checks r is the login form.
func wantLoginPage(t *testing.T, r resp) {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Location") != "" || !strings.Contains(r.body, `action="/login"`) ||
		!strings.Contains(r.body, `name="password"`) {
		t.Fatalf("want the login page, got %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	wantPageHeaders(t, r)
}

// wantConsentPage checks r is the consent form.
func wantConsentPage(t *testing.T, r resp) {
	t.Helper()
	if r.status != http.StatusOK || r.header.Get("Location") != "" || !strings.Contains(r.body, `action="/consent"`) ||
		!strings.Contains(r.body, `value="allow"`) {
		t.Fatalf("want the consent page, got %d %q %s", r.status, r.header.Get("Location"), r.body)
	}
	wantPageHeaders(t, r)
}

// wantErrorPage checks r is an error page with status, no redirect and
// no form.
func wantErrorPage(t *testing.T, r resp, status int) {
	t.Helper()
	if r.status != status || r.header.Get("Location") != "" || !strings.Contains(r.body, `class="error"`) || strings.Contains(r.body, "<form") {
		t.Fatalf("want a %d error page, got %d %q %s", status, r.status, r.header.Get("Location"), r.body)
	}
	wantPageHeaders(t, r)
}

// with is a copy of f with k set to v ("" deletes it).
func with(f url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vs := range f {
		out[k] = append([]string(nil), vs...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			out.Del(kv[i])
		} else {
			out.Set(kv[i], kv[i+1])
		}
	}
	return out
}

var formActions = regexp.MustCompile(`<form[^>]*action="([^"]*)"`)
