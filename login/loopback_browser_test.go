package login_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
	"github.com/tokengate/caddy-tokengate/internal/testkit/browsertest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

// TestBrowserLoopbackRedirect: a native app's loopback listener, on IPv4
// or IPv6 and on a port of its choosing, gets the code in a real browser.
// The login form's answer is a 303 to the listener, which Chromium holds
// to the login page's CSP form-action: that must name a source the
// browser understands for the listener (CSP has no IPv6 literals).
func TestBrowserLoopbackRedirect(t *testing.T) {
	ctx := browsertest.Start(t)
	for _, tc := range []struct {
		name, listen, registered string
	}{
		{name: "127.0.0.1 on any port", listen: "127.0.0.1:0", registered: "http://127.0.0.1/cb"},
		{name: "[::1] on any port", listen: "[::1]:0", registered: "http://[::1]/cb"},
		{name: "[::1] registered with another port", listen: "[::1]:0", registered: "http://[::1]:1/cb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", tc.listen)
			if err != nil {
				t.Skipf("no %s listener: %v", tc.listen, err)
			}
			app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_, _ = w.Write([]byte(`<p id="result">app</p>`))
			}))
			app.Listener = l
			app.Start()
			t.Cleanup(app.Close)
			cb := app.URL + "/cb"
			is := issuertest.New(t, issuer.Config{Clients: []issuer.Client{{ID: "native", Public: true, RedirectURIs: []string{tc.registered}}}})
			ls := &login.Server{Issuer: is, Log: zap.NewNop()}
			mux := http.NewServeMux()
			for path, rt := range ls.Routes() {
				mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
					rt.Handler(w, r.WithContext(issuer.WithClientIP(r.Context(), "127.0.0.1")))
				})
			}
			gw := httptest.NewServer(mux)
			t.Cleanup(gw.Close)
			q := url.Values{"response_type": {"code"}, "client_id": {"native"}, "redirect_uri": {cb}, "state": {"st-n"},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			browsertest.Do(t, ctx, chromedp.Navigate(gw.URL+login.PathAuthorize+"?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS("#username")),
				chromedp.SendKeys(chromedp.CSS("#username"), "alice"), chromedp.SendKeys(chromedp.CSS("#password"), issuertest.Password),
				chromedp.Click(chromedp.CSS("button[type=submit]")))
			var loc string
			waitfor.Until(t, "the browser at the app's listener "+cb, 10*time.Second, 20*time.Millisecond, func() bool {
				loc = browsertest.Get(t, ctx, chromedp.Location())
				return strings.HasPrefix(loc, cb+"?")
			})
			u, err := url.Parse(loc)
			if err != nil || !strings.HasPrefix(loc, cb+"?") || u.Query().Get("code") == "" || u.Query().Get("state") != "st-n" {
				t.Fatalf("the browser did not reach the app's listener %s: it is at %q", cb, loc)
			}
			if _, err := is.RedeemCode(t.Context(), issuer.RedeemRequest{Code: u.Query().Get("code"), ClientID: "native",
				RedirectURI: cb, Verifier: verifier}); err != nil {
				t.Fatalf("redeeming: %v", err)
			}
		})
	}
}

// cspSource is a CSP3 source expression as form-action takes one:
// 'self', or scheme://host[:port] where host is *, or DNS labels
// (optionally after *.), never an IP literal in brackets.
var cspSource = regexp.MustCompile(`^('self'|[a-z][a-z0-9+.-]*://(\*|(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*)(:([0-9]+|\*))?)$`)

// TestFormActionSources: the login page's CSP form-action names the
// redirect URI's origin as a source browsers can parse, IPv6 loopback
// included (TestBrowserLoopbackRedirect shows what Chromium does with
// one it cannot).
func TestFormActionSources(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	for _, tc := range []struct{ uri, want string }{
		{appCB, "https://app.example"},
		{"http://127.0.0.1:51234/native", "http://127.0.0.1:51234"},
		{loopV4, "http://127.0.0.1"},
		{loopV6, "http://*:8080"},
		{"http://[::1]:49152/native", "http://*:49152"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			r := s.browser().do(http.MethodGet, authorizeQuery("redirect_uri", tc.uri), nil)
			wantLoginPage(t, r)
			var srcs []string
			for _, dir := range strings.Split(r.header.Get("Content-Security-Policy"), ";") {
				if f := strings.Fields(dir); len(f) > 0 && f[0] == "form-action" {
					srcs = f[1:]
				}
			}
			for _, src := range srcs {
				if !cspSource.MatchString(src) {
					t.Fatalf("form-action source %q is no CSP source (all: %v)", src, srcs)
				}
			}
			if !slices.Contains(srcs, tc.want) {
				t.Fatalf("form-action %v lacks %s", srcs, tc.want)
			}
		})
	}
}
