package login_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/login"
)

// TestFormsArePageBound: a page's form is taken only by the route of the
// page it came from. A login page's form posted to /consent with
// decision=allow must not answer with a code: that would skip the
// sign-in prompt=login or max_age asked for, on a session the client
// said was too old. A consent page's form is no login form either.
func TestFormsArePageBound(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	for _, tc := range []struct {
		name   string
		signIn bool     // a session first (two minutes old)
		extra  []string // the authorization request
		path   string   // where the page's form is posted
		form   []string // fields added to it
	}{
		{name: "prompt=login's login form posted as consent", signIn: true, extra: []string{"prompt", "login"},
			path: login.PathConsent, form: []string{"decision", "allow"}},
		{name: "max_age=0's login form posted as consent", signIn: true, extra: []string{"max_age", "0"},
			path: login.PathConsent, form: []string{"decision", "allow"}},
		{name: "an old session's max_age login form posted as consent", signIn: true, extra: []string{"max_age", "60"},
			path: login.PathConsent, form: []string{"decision", "allow"}},
		{name: "a consent client's prompt=login form posted as consent", signIn: true,
			extra: []string{"client_id", "partner", "scope", "openid", "prompt", "login"}, path: login.PathConsent, form: []string{"decision", "allow"}},
		{name: "a login form posted as consent without a session", extra: nil, path: login.PathConsent, form: []string{"decision", "allow"}},
		{name: "a consent form posted as login", signIn: true, extra: []string{"client_id", "partner", "scope", "openid read"},
			path: login.PathLogin, form: []string{"username", "alice", "password", issuertest.Password}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := s.browser()
			if tc.signIn {
				codeFor(t, b)
				s.clk.Add(2 * time.Minute)
			}
			page := b.do(http.MethodGet, authorizeQuery(tc.extra...), nil)
			if page.status != http.StatusOK {
				t.Fatalf("no page: %d %q", page.status, page.header.Get("Location"))
			}
			wantErrorPage(t, b.do(http.MethodPost, tc.path, with(formOf(t, page.body), tc.form...)), http.StatusForbidden)
		})
	}
}
