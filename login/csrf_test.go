package login_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/login"
)

// TestFormCSRF: the login and consent forms are taken only from the
// browser whose cookie their CSRF token is bound to, for the very
// authorization request the page was shown for. Login CSRF (an
// attacker's form signing the victim in as the attacker) is refused
// like any other.
func TestFormCSRF(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	victim := s.browser()
	p1 := formOf(t, victim.do(http.MethodGet, authorizeQuery(), nil).body)
	p2 := formOf(t, victim.do(http.MethodGet, authorizeQuery("state", "other"), nil).body)
	attacker := s.browser()
	pa := formOf(t, attacker.do(http.MethodGet, authorizeQuery(), nil).body)
	stranger := s.browser() // has a CSRF cookie of its own
	stranger.do(http.MethodGet, authorizeQuery(), nil)
	if stranger.csrfCookie() == "" || stranger.csrfCookie() == victim.csrfCookie() {
		t.Fatal("the stranger has no CSRF cookie of its own")
	}
	bob := s.browser() // signed in, at partner's consent page
	partner := authorizeQuery("client_id", "partner", "scope", "openid read")
	c1page := bob.signIn("bob", issuertest.Password, bob.do(http.MethodGet, partner, nil))
	wantConsentPage(t, c1page)
	c1 := formOf(t, c1page.body)
	c2 := formOf(t, bob.do(http.MethodGet, partner+"&nonce=n2", nil).body)
	creds := []string{"username", "alice", "password", issuertest.Password}
	flip := func(v string) string {
		b := []byte(v)
		b[len(b)/2] ^= 1
		return string(b)
	}
	for _, tc := range []struct {
		name string
		b    *site
		path string
		form url.Values
	}{
		{name: "login: no csrf field", b: victim, path: login.PathLogin, form: with(p1, append(creds, "csrf", "")...)},
		{name: "login: empty csrf field", b: victim, path: login.PathLogin, form: withEmpty(with(p1, creds...), "csrf")},
		{name: "login: the csrf of another authorization", b: victim, path: login.PathLogin, form: with(p1, append(creds, "csrf", p2.Get("csrf"))...)},
		{name: "login: the authz of another authorization", b: victim, path: login.PathLogin, form: with(p1, append(creds, "authz", p2.Get("authz"))...)},
		{name: "login: no csrf cookie (a fresh browser)", b: s.browser(), path: login.PathLogin, form: with(p1, creds...)},
		{name: "login: a csrf cookie from another browser", b: stranger, path: login.PathLogin, form: with(p1, creds...)},
		{name: "login CSRF: the attacker's form in the victim's browser", b: victim, path: login.PathLogin,
			form: with(pa, "username", "bob", "password", issuertest.Password)},
		{name: "login: the csrf token altered", b: victim, path: login.PathLogin, form: with(p1, append(creds, "csrf", flip(p1.Get("csrf")))...)},
		{name: "login: the sealed authz altered", b: victim, path: login.PathLogin, form: with(p1, append(creds, "authz", flip(p1.Get("authz")))...)},
		{name: "login: the sealed authz truncated", b: victim, path: login.PathLogin, form: with(p1, append(creds, "authz", p1.Get("authz")[:40])...)},
		{name: "login: no authz", b: victim, path: login.PathLogin, form: with(p1, append(creds, "authz", "")...)},
		{name: "consent: no csrf field", b: bob, path: login.PathConsent, form: with(c1, "decision", "allow", "csrf", "")},
		{name: "consent: the csrf of another authorization", b: bob, path: login.PathConsent, form: with(c1, "decision", "allow", "csrf", c2.Get("csrf"))},
		{name: "consent: a csrf cookie from another browser", b: stranger, path: login.PathConsent, form: with(c1, "decision", "allow")},
		{name: "consent: no csrf cookie (a fresh browser)", b: s.browser(), path: login.PathConsent, form: with(c1, "decision", "allow")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErrorPage(t, tc.b.do(http.MethodPost, tc.path, tc.form), http.StatusForbidden)
		})
	}
	for _, b := range []*site{victim, stranger} {
		for _, c := range b.hc.Jar.Cookies(mustURL(s.url)) {
			if c.Name == login.SessionCookieName(false) {
				t.Fatal("a refused form signed a browser in")
			}
		}
	}
	// Each browser's own forms still work.
	if q := redirected(t, victim.do(http.MethodPost, login.PathLogin, with(p2, creds...))); q.Get("code") == "" || q.Get("state") != "other" {
		t.Fatalf("the victim's own form: %v", q)
	}
	if q := redirected(t, bob.do(http.MethodPost, login.PathConsent, with(c1, "decision", "allow"))); q.Get("code") == "" {
		t.Fatalf("bob's own consent form: %v", q)
	}
}

// withEmpty is a copy of f with k sent empty (with deletes it).
func withEmpty(f url.Values, k string) url.Values {
	out := with(f)
	out.Set(k, "")
	return out
}
