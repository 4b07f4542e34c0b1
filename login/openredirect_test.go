package login_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

// allowedRedirect reports whether uri is a registered redirect URI of a
// flow site's client (loopback ports included).
func allowedRedirect(t *testing.T, uri string) bool {
	return slices.ContainsFunc(flowClients(t), func(c issuer.Client) bool { return c.AllowsRedirect(uri) })
}

// wantNoOpenRedirect fails unless every way r could send the browser
// on goes to a registered redirect URI: a Location that is one, with
// only an authorization response's parameters (each once) and no
// fragment; forms only to the sign-in routes or one; a CSP form-action
// naming only their origins.
func wantNoOpenRedirect(t *testing.T, r resp) {
	t.Helper()
	if loc := r.header.Get("Location"); loc != "" {
		u, err := url.Parse(loc)
		if err != nil || r.status != http.StatusSeeOther || u.User != nil || strings.Contains(loc, "#") {
			t.Fatalf("redirected to %q (%d)", loc, r.status)
		}
		base := u.Scheme + "://" + u.Host + u.Path
		q, err := url.ParseQuery(u.RawQuery)
		if !allowedRedirect(t, base) || !strings.HasPrefix(loc, base+"?") || err != nil || q.Get("iss") != issuertest.Iss {
			t.Fatalf("redirected to %q", loc)
		}
		for k, vs := range q {
			if !slices.Contains([]string{"code", "state", "iss", "error", "error_description"}, k) || len(vs) != 1 {
				t.Fatalf("the answer %q carries %s=%v", loc, k, vs)
			}
		}
	}
	for _, m := range formActions.FindAllStringSubmatch(r.body, -1) {
		if a := html.UnescapeString(m[1]); a != login.PathLogin && a != login.PathConsent && !allowedRedirect(t, a) {
			t.Fatalf("a form towards %q:\n%s", a, r.body)
		}
	}
	csp := r.header.Get("Content-Security-Policy")
	for _, dir := range strings.Split(csp, ";") {
		f := strings.Fields(dir)
		if len(f) == 0 || f[0] != "form-action" {
			continue
		}
		for _, src := range f[1:] {
			if src != "'self'" && !slices.ContainsFunc(registeredURIs, func(u string) bool { return strings.HasPrefix(u+"/", src+"/") }) &&
				!strings.HasPrefix(src, "http://127.0.0.1:") && !strings.HasPrefix(src, "http://*:") { // "http://*:port": an IPv6 loopback listener
				t.Fatalf("form-action allows %q", src)
			}
		}
	}
}

// TestNoOpenRedirect: whatever parameter points elsewhere, for a browser
// with or without a session, the login and consent forms posted with
// fields of their own pointing elsewhere too, nothing sends the browser
// anywhere but a registered redirect URI.
func TestNoOpenRedirect(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	signedIn := s.browser()
	codeFor(t, signedIn)
	params := []string{"redirect_uri", "client_id", "state", "login_hint", "prompt", "nonce", "scope", "response_mode",
		"response_type", "max_age", "code_challenge", "request_uri", "iss", "next", "return_to", "redirect", "post_logout_redirect_uri"}
	evils := []string{"https://evil.example/cb", "//evil.example/cb", "https://app.example/cb@evil.example", "https://app.example@evil.example/cb",
		"https://app.example/cb/../../evil.example", appCB + "?next=https://evil.example", appCB + "#@evil.example", "javascript:alert(1)",
		`/\evil.example`, "https:evil.example", appCB + "\r\nLocation: https://evil.example", "http://127.0.0.1.evil.example/native"}
	for _, p := range params {
		for _, evil := range evils {
			for _, who := range []string{"fresh", "signed in"} {
				for _, client := range []string{"spa", "partner"} {
					t.Run(p+"="+evil+" "+who+" "+client, func(t *testing.T) {
						b := signedIn
						if who == "fresh" {
							b = s.browser()
						}
						extra := []string{"client_id", client}
						if client == "partner" {
							extra = append(extra, "scope", "openid read")
						}
						r := b.do(http.MethodGet, authorizeQuery(append(extra, p, evil)...), nil)
						wantNoOpenRedirect(t, r)
						for step := 0; step < 2 && r.status == http.StatusOK && strings.Contains(r.body, `name="csrf"`); step++ {
							f := with(formOf(t, r.body), "redirect_uri", evil, "next", evil, "state", evil, "client_id", "other")
							path := login.PathConsent
							if strings.Contains(r.body, `name="password"`) {
								path = login.PathLogin
								f = with(f, "username", "alice", "password", issuertest.Password)
							} else {
								f = with(f, "decision", "allow")
							}
							r = b.do(http.MethodPost, path, f)
							wantNoOpenRedirect(t, r)
						}
					})
				}
			}
		}
	}
}

// TestRegistrationChangedMeanwhile: a page's sealed request names its
// redirect URI; if the client's registration no longer allows it when
// the form comes back (changed or removed meanwhile), the form gets an
// error page, never a redirect there.
func TestRegistrationChangedMeanwhile(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	st := s.is.Core().Store()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func() error
	}{
		{name: "the redirect URI unregistered", change: func() error {
			return st.PutClient(ctx, issuer.Client{ID: "dyn", Public: true, RedirectURIs: []string{otherCB}})
		}},
		{name: "the client removed", change: func() error { return st.DeleteClient(ctx, "dyn") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.PutClient(ctx, issuer.Client{ID: "dyn", Public: true, RedirectURIs: []string{appCB}}); err != nil {
				t.Fatal(err)
			}
			b := s.browser()
			page := b.do(http.MethodGet, authorizeQuery("client_id", "dyn"), nil)
			wantLoginPage(t, page)
			if err := tc.change(); err != nil {
				t.Fatal(err)
			}
			wantErrorPage(t, b.signIn("alice", issuertest.Password, page), http.StatusBadRequest)
		})
	}
}
