package login_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/browsertest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// browserSite is a gateway's sign-in (login and oauth routes) and an app
// on one httptest server: /app/start begins the flow with PKCE and state,
// /app/cb checks state and iss, redeems the code at /token and calls the
// guarded /api/me with the token.
type browserSite struct {
	url string
	is  *issuer.Issuer
}

func newBrowserSite(t *testing.T) *browserSite {
	t.Helper()
	mux := http.NewServeMux()
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	cb := ts.URL + "/app/cb"
	is := issuertest.New(t, issuer.Config{Issuer: ts.URL, Clients: []issuer.Client{
		{ID: "app", Public: true, RedirectURIs: []string{cb}},
		{ID: "partner", Public: true, Consent: true, RedirectURIs: []string{cb}},
	}})
	ls := &login.Server{Issuer: is, Log: zap.NewNop(), Title: "Example Corp"}
	os := &oauth.Server{Issuer: is, Log: zap.NewNop(), AuthorizePath: login.PathAuthorize}
	for path, rt := range ls.Routes() {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			rt.Handler(w, r.WithContext(issuer.WithClientIP(r.Context(), "127.0.0.1")))
		})
	}
	for path, rt := range os.Routes() {
		mux.HandleFunc(path, rt.Handler)
	}
	var mu sync.Mutex
	pending := map[string][2]string{} // state -> client, verifier
	mux.HandleFunc("/app/start", func(w http.ResponseWriter, r *http.Request) {
		client := r.URL.Query().Get("client")
		state, _ := issuer.NewSecret("st_")
		v, _ := issuer.NewSecret("")
		mu.Lock()
		pending[state] = [2]string{client, v}
		mu.Unlock()
		q := url.Values{"response_type": {"code"}, "client_id": {client}, "redirect_uri": {cb}, "state": {state},
			"code_challenge": {issuer.S256(v)}, "code_challenge_method": {"S256"}, "scope": {"openid"}}
		for _, k := range []string{"prompt", "max_age"} {
			if x := r.URL.Query().Get(k); x != "" {
				q.Set(k, x)
			}
		}
		http.Redirect(w, r, login.PathAuthorize+"?"+q.Encode(), http.StatusSeeOther)
	})
	mux.HandleFunc("/app/cb", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		mu.Lock()
		p, ok := pending[q.Get("state")]
		client, v := p[0], p[1]
		delete(pending, q.Get("state"))
		mu.Unlock()
		switch {
		case !ok || q.Get("iss") != ts.URL:
			_, _ = w.Write([]byte(`<p id="result">bad state or iss</p>`))
			return
		case q.Get("error") != "":
			_, _ = w.Write([]byte(`<p id="result">error ` + q.Get("error") + `</p>`))
			return
		}
		resp, err := http.PostForm(ts.URL+oauth.PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
			"redirect_uri": {cb}, "code_verifier": {v}, "client_id": {client}})
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		var tok map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		at, _ := tok["access_token"].(string)
		claims, err := is.Verify(at) // the guarded API's check
		if err != nil {
			_, _ = w.Write([]byte(`<p id="result">token refused</p>`))
			return
		}
		_, _ = w.Write([]byte(`<p id="result">signed in as ` + claims.Subject + `</p>`))
	})
	return &browserSite{url: ts.URL, is: is}
}

func TestBrowserSignIn(t *testing.T) {
	ctx := browsertest.Start(t)
	s := newBrowserSite(t)
	result := func() string { return browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#result"))) }
	shots := os.Getenv("TOKENGATE_SCREENSHOTS") // a directory: docs/screenshots to refresh them

	// The app starts the flow; a wrong password, then the right one.
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+"/app/start?client=app"), chromedp.WaitVisible(chromedp.CSS("#username")))
	if vs := browsertest.Serious(browsertest.Axe(t, ctx)); len(vs) != 0 {
		t.Fatalf("login page: axe-core reports %+v", vs)
	}
	if shots != "" {
		browsertest.Screenshot(t, ctx, 375, filepath.Join(shots, "login-375.png"))
		browsertest.Screenshot(t, ctx, 1280, filepath.Join(shots, "login-1280.png"))
	}
	browsertest.Do(t, ctx, chromedp.SendKeys(chromedp.CSS("#username"), "alice"), chromedp.SendKeys(chromedp.CSS("#password"), "wrong-password"),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if vs := browsertest.Serious(browsertest.Axe(t, ctx)); len(vs) != 0 {
		t.Fatalf("login page with an error: axe-core reports %+v", vs)
	}
	if shots != "" {
		browsertest.Screenshot(t, ctx, 375, filepath.Join(shots, "login-error-375.png"))
		browsertest.Screenshot(t, ctx, 1280, filepath.Join(shots, "login-error-1280.png"))
	}
	browsertest.Do(t, ctx, chromedp.SendKeys(chromedp.CSS("#password"), issuertest.Password),
		chromedp.Click(chromedp.CSS("button[type=submit]")), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "signed in as alice" {
		t.Fatalf("after signing in: %q", got)
	}

	// A live session: prompt=none answers at once; max_age=0 asks again.
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+"/app/start?client=app&prompt=none"), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "signed in as alice" {
		t.Fatalf("prompt=none with a session: %q", got)
	}
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+"/app/start?client=app&max_age=0"), chromedp.WaitVisible(chromedp.CSS("#password")))

	// Consent: deny, then allow.
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+"/app/start?client=partner"), chromedp.WaitVisible(chromedp.CSS("button[value=deny]")))
	if vs := browsertest.Serious(browsertest.Axe(t, ctx)); len(vs) != 0 {
		t.Fatalf("consent page: axe-core reports %+v", vs)
	}
	if shots != "" {
		browsertest.Screenshot(t, ctx, 375, filepath.Join(shots, "consent-375.png"))
		browsertest.Screenshot(t, ctx, 1280, filepath.Join(shots, "consent-1280.png"))
	}
	browsertest.Do(t, ctx, chromedp.Click(chromedp.CSS("button[value=deny]")), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "error access_denied" {
		t.Fatalf("deny: %q", got)
	}
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+"/app/start?client=partner"), chromedp.WaitVisible(chromedp.CSS("button[value=allow]")),
		chromedp.Click(chromedp.CSS("button[value=allow]")), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := result(); got != "signed in as alice" {
		t.Fatalf("allow: %q", got)
	}

	// The error page (an unregistered redirect URI) is accessible too.
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+login.PathAuthorize+"?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2F"),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	if vs := browsertest.Serious(browsertest.Axe(t, ctx)); len(vs) != 0 {
		t.Fatalf("error page: axe-core reports %+v", vs)
	}
	if shots != "" {
		browsertest.Screenshot(t, ctx, 375, filepath.Join(shots, "error-375.png"))
		browsertest.Screenshot(t, ctx, 1280, filepath.Join(shots, "error-1280.png"))
	}
}

// TestBrowserPromptNoneWithoutSession: a fresh browser asking prompt=none
// comes back with login_required, not a login page.
func TestBrowserPromptNoneWithoutSession(t *testing.T) {
	ctx := browsertest.Start(t)
	s := newBrowserSite(t)
	browsertest.Do(t, ctx, chromedp.Navigate(s.url+"/app/start?client=app&prompt=none"), chromedp.WaitVisible(chromedp.CSS("#result")))
	if got := browsertest.Get(t, ctx, chromedp.Text(chromedp.CSS("#result"))); got != "error login_required" {
		t.Fatalf("got %q", got)
	}
}
