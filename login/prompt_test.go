package login_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/login"
)

// TestWithoutState: a request without state is served like any other;
// no answer carries a state (not even an empty one), and the code it
// gets is redeemed.
func TestWithoutState(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	for _, tc := range []struct {
		name  string
		extra []string
		error string // "": a code
	}{
		{name: "code after the login page", extra: []string{"state", ""}},
		{name: "code from the session", extra: []string{"state", ""}},
		{name: "code after consent", extra: []string{"state", "", "client_id", "partner", "scope", "openid read"}},
		{name: "an error", extra: []string{"state", "", "response_type", "token"}, error: "unsupported_response_type"},
		{name: "login_required", extra: []string{"state", "", "prompt", "none", "max_age", "0"}, error: "login_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.do(http.MethodGet, authorizeQuery(tc.extra...), nil)
			if r.status == http.StatusOK && strings.Contains(r.body, `name="password"`) {
				r = s.signIn("alice", issuertest.Password, r)
			}
			if r.status == http.StatusOK && strings.Contains(r.body, `value="allow"`) {
				r = s.do(http.MethodPost, login.PathConsent, with(formOf(t, r.body), "decision", "allow"))
			}
			q := redirected(t, r)
			if q.Has("state") || strings.Contains(r.header.Get("Location"), "state") {
				t.Fatalf("an answer to a request without state carries one: %q", r.header.Get("Location"))
			}
			if tc.error != "" {
				if q.Get("error") != tc.error {
					t.Fatalf("got %v, want %s", q, tc.error)
				}
				return
			}
			form := exchange(q.Get("code"))
			if strings.Contains(tc.name, "consent") {
				form = with(form, "client_id", "partner", "client_secret", "s")
			}
			if a := s.token(form); a.status != http.StatusOK {
				t.Fatalf("redeeming: %d %v", a.status, a.body)
			}
		})
	}
	t.Run("form_post", func(t *testing.T) {
		r := s.do(http.MethodGet, authorizeQuery("state", "", "response_mode", "form_post"), nil)
		if r.status != http.StatusOK || !strings.Contains(r.body, `name="code"`) || strings.Contains(r.body, `name="state"`) {
			t.Fatalf("form_post without state: %d %s", r.status, r.body)
		}
	})
}

// TestPromptAndMaxAge: with a session two minutes old (or none), prompt and max_age
// decide between a code at once, the login page, and login_required; a
// sign-in on the page they asked for answers with a code. max_age is
// measured on the issuer's clock.
func TestPromptAndMaxAge(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	for _, tc := range []struct {
		name    string
		fresh   bool // a browser without a session
		extra   []string
		want    string // "code", "login" (the page), or an error code
		signsIn bool   // then sign in on the page: a code
	}{
		{name: "no prompt: a code at once", want: "code"},
		{name: "prompt=none with a session: a code", extra: []string{"prompt", "none"}, want: "code"},
		{name: "prompt=none without a session: login_required", fresh: true, extra: []string{"prompt", "none"}, want: "login_required"},
		{name: "prompt=login with a session: the login page", extra: []string{"prompt", "login"}, want: "login", signsIn: true},
		{name: "prompt=login consent with a session: the login page", extra: []string{"prompt", "login consent"}, want: "login"},
		{name: "prompt=select_account: a code", extra: []string{"prompt", "select_account"}, want: "code"},
		{name: "prompt=none login: refused", extra: []string{"prompt", "none login"}, want: "invalid_request"},
		{name: "max_age longer than the session's age: a code", extra: []string{"max_age", "3600"}, want: "code"},
		{name: "max_age shorter than the session's age: the login page", extra: []string{"max_age", "60"}, want: "login", signsIn: true},
		{name: "max_age=0: the login page", extra: []string{"max_age", "0"}, want: "login", signsIn: true},
		{name: "max_age shorter, prompt=none: login_required", extra: []string{"max_age", "60", "prompt", "none"}, want: "login_required"},
		{name: "max_age=0, prompt=none: login_required", extra: []string{"max_age", "0", "prompt", "none"}, want: "login_required"},
		{name: "max_age not a number: refused", extra: []string{"max_age", "1h"}, want: "invalid_request"},
		{name: "max_age without a session: the login page", fresh: true, extra: []string{"max_age", "3600"}, want: "login", signsIn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := s.browser()
			if !tc.fresh {
				codeFor(t, b) // signs alice in
			}
			s.clk.Add(2 * time.Minute)
			r := b.do(http.MethodGet, authorizeQuery(tc.extra...), nil)
			switch tc.want {
			case "login":
				wantLoginPage(t, r)
			case "code":
				if q := redirected(t, r); q.Get("code") == "" || q.Get("state") != "st-1" {
					t.Fatalf("want a code, got %v", q)
				}
			default:
				if q := redirected(t, r); q.Get("error") != tc.want || q.Get("code") != "" || q.Get("state") != "st-1" {
					t.Fatalf("want %s, got %v", tc.want, q)
				}
			}
			if tc.signsIn {
				if q := redirected(t, b.signIn("alice", issuertest.Password, r)); q.Get("code") == "" {
					t.Fatalf("signing in on the page: %v", q)
				}
				// The sign-in renewed the session: max_age=60 is met.
				if q := redirected(t, b.do(http.MethodGet, authorizeQuery("max_age", "60", "prompt", "none"), nil)); q.Get("code") == "" {
					t.Fatalf("max_age=60 after signing in again: %v", q)
				}
			}
		})
	}
}

// TestConsentAgain: consent is remembered for the scopes allowed, per
// user, and asked again when the client asks for more, or prompt=consent;
// prompt=none then answers consent_required.
func TestConsentAgain(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	partner := func(scope string, kv ...string) string {
		return authorizeQuery(append([]string{"client_id", "partner", "scope", scope}, kv...)...)
	}
	page := s.signIn("alice", issuertest.Password, s.do(http.MethodGet, partner("openid read"), nil))
	wantConsentPage(t, page)
	if !strings.Contains(page.body, "<li>read</li>") || !strings.Contains(page.body, "<li>openid</li>") {
		t.Fatalf("the consent page does not list the scopes: %s", page.body)
	}
	redirected(t, s.do(http.MethodPost, login.PathConsent, with(formOf(t, page.body), "decision", "allow")))
	for _, tc := range []struct {
		name  string
		b     *site
		query string
		want  string // "code", "consent" (the page), or an error code
	}{
		{name: "the same scopes: a code", query: partner("openid read"), want: "code"},
		{name: "fewer scopes: a code", query: partner("openid"), want: "code"},
		{name: "the same scopes in another order: a code", query: partner("read openid"), want: "code"},
		{name: "more scope: the consent page", query: partner("openid read offline_access"), want: "consent"},
		{name: "another scope: the consent page", query: partner("profile"), want: "consent"},
		{name: "more scope, prompt=none: consent_required", query: partner("openid read offline_access", "prompt", "none"), want: "consent_required"},
		{name: "prompt=consent: the consent page", query: partner("openid", "prompt", "consent"), want: "consent"},
		{name: "another user: the consent page", b: s.browser(), query: partner("openid"), want: "consent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			if b == nil {
				b = s.site
			}
			r := b.do(http.MethodGet, tc.query, nil)
			if strings.Contains(r.body, `name="password"`) {
				r = b.signIn("bob", issuertest.Password, r)
			}
			switch tc.want {
			case "consent":
				wantConsentPage(t, r)
			case "code":
				if q := redirected(t, r); q.Get("code") == "" {
					t.Fatalf("want a code, got %v", q)
				}
			default:
				if q := redirected(t, r); q.Get("error") != tc.want {
					t.Fatalf("want %s, got %v", tc.want, q)
				}
			}
		})
	}
	// Allowing the wider request remembers it too.
	page = s.do(http.MethodGet, partner("openid read offline_access"), nil)
	redirected(t, s.do(http.MethodPost, login.PathConsent, with(formOf(t, page.body), "decision", "allow")))
	if q := redirected(t, s.do(http.MethodGet, partner("openid read offline_access", "prompt", "none"), nil)); q.Get("code") == "" {
		t.Fatalf("the wider consent was not remembered: %v", q)
	}
}
