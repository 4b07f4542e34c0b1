package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/login"
)

// TestPromptConsent: prompt=consent shows the consent page even to a
// client that does not ask for consent, and naming the signed-in user;
// allow answers with a code, deny with access_denied.
func TestPromptConsent(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	b := s.browser()
	codeFor(t, b)
	page := b.do(http.MethodGet, authorizeQuery("prompt", "consent"), nil)
	wantConsentPage(t, page)
	if !strings.Contains(page.body, "Signed in as <strong>alice</strong>") {
		t.Fatalf("the consent page does not say who is signed in: %s", page.body)
	}
	if q := redirected(t, b.do(http.MethodPost, login.PathConsent, with(formOf(t, page.body), "decision", "allow"))); q.Get("code") == "" {
		t.Fatalf("allow: %v", q)
	}
	page = b.do(http.MethodGet, authorizeQuery("prompt", "consent"), nil)
	if q := redirected(t, b.do(http.MethodPost, login.PathConsent, with(formOf(t, page.body), "decision", "deny"))); q.Get("error") != "access_denied" {
		t.Fatalf("deny: %v", q)
	}
	// prompt=login consent: the login page, then the consent page.
	page = b.do(http.MethodGet, authorizeQuery("prompt", "login consent"), nil)
	wantLoginPage(t, page)
	wantConsentPage(t, b.signIn("alice", issuertest.Password, page))
}

// TestConsentCountsForWhoSawIt: a consent page shown to alice, posted
// after bob signed in in the same browser (another tab), grants nothing:
// bob is asked on a page of his own.
func TestConsentCountsForWhoSawIt(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	b := s.browser()
	partner := func(extra ...string) string {
		return authorizeQuery(append([]string{"client_id", "partner", "scope", "read"}, extra...)...)
	}
	alicePage := b.do(http.MethodGet, partner(), nil)
	alicePage = b.signIn("alice", issuertest.Password, alicePage)
	wantConsentPage(t, alicePage)
	// Another tab: bob signs in.
	bobLogin := b.do(http.MethodGet, authorizeQuery("prompt", "login"), nil)
	redirected(t, b.signIn("bob", issuertest.Password, bobLogin))

	r := b.do(http.MethodPost, login.PathConsent, with(formOf(t, alicePage.body), "decision", "allow"))
	wantConsentPage(t, r)
	if !strings.Contains(r.body, "Signed in as <strong>bob</strong>") {
		t.Fatalf("the page asks someone else than bob: %s", r.body)
	}
	if ok, err := s.is.HasConsent(t.Context(), "bob", "partner", []string{"read"}); err != nil || ok {
		t.Fatalf("bob's consent from alice's page: %v %v", ok, err)
	}
	if ok, err := s.is.HasConsent(t.Context(), "alice", "partner", []string{"read"}); err != nil || ok {
		t.Fatalf("alice's consent recorded while bob was signed in: %v %v", ok, err)
	}
	// bob's own page counts for bob.
	if q := redirected(t, b.do(http.MethodPost, login.PathConsent, with(formOf(t, r.body), "decision", "allow"))); q.Get("code") == "" {
		t.Fatalf("bob allows on his page: %v", q)
	}
}

// TestAuthorizeParameterBounds: no HEAD (a code is a side effect), max_age
// is digits only and bounded, an overlong state is refused without being
// echoed.
func TestAuthorizeParameterBounds(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	b := s.browser()
	codeFor(t, b)
	if r := b.do(http.MethodHead, authorizeQuery(), nil); r.header.Get("Location") != "" || r.status == http.StatusSeeOther {
		t.Fatalf("HEAD /authorize with a session answered %d %q", r.status, r.header.Get("Location"))
	}
	for _, v := range []string{"+5", "-1", " 5", "1e3", "9999999999", "99999999999999999999"} {
		if q := redirected(t, b.do(http.MethodGet, authorizeQuery("max_age", v), nil)); q.Get("error") != "invalid_request" {
			t.Errorf("max_age=%q: %v", v, q)
		}
	}
	if q := redirected(t, b.do(http.MethodGet, authorizeQuery("max_age", "999999999"), nil)); q.Get("code") == "" {
		t.Errorf("max_age of nine digits: %v", q)
	}
	long := strings.Repeat("s", 2049)
	r := b.do(http.MethodGet, authorizeQuery("state", long), nil)
	if strings.Contains(r.body, long) || strings.Contains(r.header.Get("Location"), long) {
		t.Fatal("an overlong state is echoed")
	}
	if u, err := url.Parse(r.header.Get("Location")); r.status != http.StatusBadRequest && (err != nil || u.Query().Get("error") != "invalid_request") {
		t.Fatalf("an overlong state: %d %q", r.status, r.header.Get("Location"))
	}
}
