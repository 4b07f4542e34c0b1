package tokengate_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tokengate/caddy-tokengate/internal/testkit/browsertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// browserApp is a web app on its own origin in front of a Caddy site with
// browser sign-in: /start begins the flow with PKCE and state, /cb checks
// state and iss, redeems the code at the site's /token and calls the
// site's guarded /orders/1 with the token, and shows what it answered.
type browserApp struct {
	url string
	mu  sync.Mutex
	// pending: state -> client, verifier
	pending map[string][2]string
}

func newBrowserApp(t *testing.T) *browserApp {
	t.Helper()
	a := &browserApp{pending: map[string][2]string{}}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	a.url = srv.URL
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		client := r.URL.Query().Get("client")
		state, _ := issuer.NewSecret("st_")
		v, _ := issuer.NewSecret("")
		a.mu.Lock()
		a.pending[state] = [2]string{client, v}
		a.mu.Unlock()
		q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {a.url + "/cb"}, "state": {state},
			"code_challenge": {issuer.S256(v)}, "code_challenge_method": {"S256"}, "scope": {"orders:read"}}
		for _, k := range []string{"prompt", "max_age"} {
			if x := r.URL.Query().Get(k); x != "" {
				q.Set(k, x)
			}
		}
		http.Redirect(w, r, base+"/authorize?"+q.Encode(), http.StatusSeeOther)
	})
	mux.HandleFunc("/cb", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>app</title><p id="result">%s</p>`, a.callback(r.URL.Query()))
	})
	return a
}

// callback is what the app makes of the authorization response.
func (a *browserApp) callback(q url.Values) string {
	a.mu.Lock()
	p, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	switch {
	case !ok || q.Get("iss") != base:
		return "bad state or iss"
	case q.Get("error") != "":
		return "error " + q.Get("error")
	}
	res, err := http.PostForm(base+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"redirect_uri": {a.url + "/cb"}, "code_verifier": {p[1]}, "client_id": {p[0]}})
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return fmt.Sprintf("code exchange: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/orders/1", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	api, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer api.Body.Close()
	body, _ := io.ReadAll(api.Body)
	if api.StatusCode != 200 {
		return fmt.Sprintf("guarded API: %d", api.StatusCode)
	}
	if i := strings.Index(string(body), " "); i > 0 {
		return "api says " + string(body[:i]) // sub=…
	}
	return "api says " + string(body)
}

// TestBrowserSignInInChromium: a real headless Chromium signs in through
// the Caddy site's login page from an app on another origin (a wrong
// password, then the right one), the app redeems the code and calls the
// guarded API; prompt=none with the session answers at once, max_age=0
// asks again, consent deny and allow; axe-core finds no serious or
// critical violation on the login, error-shown, consent and error pages.
// TOKENGATE_SCREENSHOTS=docs/screenshots refreshes the screenshots.
func TestBrowserSignInInChromium(t *testing.T) {
	ctx := browsertest.Start(t)
	app := newBrowserApp(t)
	startGateway(t, fmt.Sprintf("login {\n\t\t\ttitle \"Example Corp\"\n\t\t}\n\t\tclient app public redirect_uri %[1]s/cb scopes orders:read\n"+
		"\t\tclient partner public redirect_uri %[1]s/cb consent scopes orders:read", app.url))
	result := func() string { return browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#result"))) }
	shots := os.Getenv("TOKENGATE_SCREENSHOTS")
	page := func(name string) {
		t.Helper()
		if vs := browsertest.Serious(browsertest.Axe(t, ctx)); len(vs) != 0 {
			t.Fatalf("%s page: axe-core reports %+v", name, vs)
		}
		if shots != "" {
			for _, w := range []int64{375, 1280} {
				browsertest.Screenshot(t, ctx, w, filepath.Join(shots, fmt.Sprintf("%s-%d.png", name, w)))
			}
		}
	}

	browsertest.Do(t, ctx, chromedp.Navigate(app.url+"/start?client=app"), chromedp.WaitVisible(chromedp.CSS("#username")))
	page("login")
	browsertest.Do(t, ctx, chromedp.SendKeys(chromedp.CSS("#username"), "alice"), chromedp.SendKeys(chromedp.CSS("#password"), "wrong-password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	page("login-error")
	browsertest.Do(t, ctx, chromedp.SendKeys(chromedp.CSS("#password"), userPassword),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "api says sub=alice" {
		t.Fatalf("after signing in: %q", got)
	}

	browsertest.Do(t, ctx, chromedp.Navigate(app.url+"/start?client=app&prompt=none"), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "api says sub=alice" {
		t.Fatalf("prompt=none with a session: %q", got)
	}
	browsertest.Do(t, ctx, chromedp.Navigate(app.url+"/start?client=app&max_age=0"), chromedp.WaitVisible(chromedp.CSS("#password")))

	browsertest.Do(t, ctx, chromedp.Navigate(app.url+"/start?client=partner"), chromedp.WaitVisible(chromedp.CSS("button[value=deny]")))
	page("consent")
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("button[value=deny]")), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "error access_denied" {
		t.Fatalf("deny: %q", got)
	}
	browsertest.Do(t, ctx, chromedp.Navigate(app.url+"/start?client=partner"), chromedp.WaitVisible(chromedp.CSS("button[value=allow]")),
		chromedp.Click(chromedp.CSS("button[value=allow]")), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "api says sub=alice" {
		t.Fatalf("allow: %q", got)
	}

	browsertest.Do(t, ctx, chromedp.Navigate(base+"/authorize?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2F"),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	page("error")
}

// TestBrowserPromptNoneWithoutSession: a fresh browser asking prompt=none
// comes back to the app with login_required, not a login page.
func TestBrowserPromptNoneWithoutSession(t *testing.T) {
	ctx := browsertest.Start(t)
	app := newBrowserApp(t)
	startGateway(t, "login\n\t\tclient app public redirect_uri "+app.url+"/cb scopes orders:read")
	browsertest.Do(t, ctx, chromedp.Navigate(app.url+"/start?client=app&prompt=none"), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#result"))); got != "error login_required" {
		t.Fatalf("got %q", got)
	}
}
