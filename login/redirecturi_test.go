package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
)

// redirectedTo checks a 303 to exactly uri with an authorization
// response in its query, and returns the query.
func redirectedTo(t *testing.T, r resp, uri string) url.Values {
	t.Helper()
	loc := r.header.Get("Location")
	if r.status != http.StatusSeeOther || !strings.HasPrefix(loc, uri+"?") {
		t.Fatalf("want a redirect to %s, got %d %q", uri, r.status, loc)
	}
	q, err := url.ParseQuery(strings.TrimPrefix(loc, uri+"?"))
	if err != nil || q.Get("iss") != issuertest.Iss {
		t.Fatalf("answer %q: %v", loc, err)
	}
	return q
}

// TestRedirectURIExactMatch: a redirect URI is taken only as registered,
// byte for byte, but for the port of a loopback URI (RFC 8252 §7.3);
// every near miss is an error page, never a redirect. One that is taken
// runs the whole flow: the answer goes to the URI sent, and the code is
// redeemed at /token with that same URI.
func TestRedirectURIExactMatch(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	for _, tc := range []struct {
		name   string
		client string
		uri    string // "-": redirect_uri left out
		ok     bool
	}{
		// Refused: near misses of https://app.example/cb.
		{name: "refused: http for https", uri: "http://app.example/cb"},
		{name: "refused: path case", uri: "https://app.example/CB"},
		{name: "refused: host case", uri: "https://App.Example/cb"},
		{name: "refused: trailing slash", uri: appCB + "/"},
		{name: "refused: trailing dot on the host", uri: "https://app.example./cb"},
		{name: "refused: extra query", uri: appCB + "?next=https://evil.example"},
		{name: "refused: empty query", uri: appCB + "?"},
		{name: "refused: fragment", uri: appCB + "#x"},
		{name: "refused: userinfo before the host", uri: "https://evil.example@app.example/cb"},
		{name: "refused: the host as userinfo", uri: "https://app.example@evil.example/cb"},
		{name: "refused: userinfo with a password", uri: "https://app.example:x@evil.example/cb"},
		{name: "refused: other port, not loopback", uri: "https://app.example:8443/cb"},
		{name: "refused: explicit default port", uri: "https://app.example:443/cb"},
		{name: "refused: percent-encoded path", uri: "https://app.example/%63b"},
		{name: "refused: dot segment", uri: "https://app.example/x/../cb"},
		{name: "refused: backslash", uri: `https://app.example\@evil.example/cb`},
		{name: "refused: javascript", uri: "javascript:alert(1)"},
		{name: "refused: another client's URI", uri: otherCB},
		{name: "refused: omitted when two are registered", client: "multi", uri: "-"},
		{name: "refused: omitted when the loopback ones are registered too", uri: "-"},
		// Refused: near misses of the loopback URIs.
		{name: "refused: loopback, other path", uri: "http://127.0.0.1:5000/native/x"},
		{name: "refused: loopback over https", uri: "https://127.0.0.1:5000/native"},
		{name: "refused: loopback with userinfo", uri: "http://evil@127.0.0.1:5000/native"},
		{name: "refused: localhost for 127.0.0.1", uri: "http://localhost:5000/native"},
		{name: "refused: another loopback address", uri: "http://127.0.0.2:5000/native"},
		{name: "refused: IPv6 loopback, other path", uri: "http://[::1]:8080/other"},
		{name: "refused: loopback port not a number", uri: "http://127.0.0.1:80x/native"},
		{name: "refused: loopback with a query", uri: "http://127.0.0.1:5000/native?x=1"},
		{name: "refused: a client without loopback URIs", client: "other", uri: "http://127.0.0.1:5000/native"},
		// Taken.
		{name: "taken: exact", uri: appCB, ok: true},
		{name: "taken: omitted, one registered", client: "partner", uri: "-", ok: true},
		{name: "taken: another registered URI", client: "multi", uri: secondCB, ok: true},
		{name: "taken: loopback without a port", uri: loopV4, ok: true},
		{name: "taken: loopback on any port", uri: "http://127.0.0.1:51234/native", ok: true},
		{name: "taken: IPv6 loopback as registered", uri: loopV6, ok: true},
		{name: "taken: IPv6 loopback on any port", uri: "http://[::1]:49152/native", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := tc.client
			if client == "" {
				client = "spa"
			}
			uri := tc.uri
			if uri == "-" {
				uri = ""
			}
			extra := []string{"client_id", client, "redirect_uri", uri}
			if client == "partner" {
				extra = append(extra, "scope", "openid read")
			}
			b := s.browser()
			r := b.do(http.MethodGet, authorizeQuery(extra...), nil)
			if !tc.ok {
				wantErrorPage(t, r, http.StatusBadRequest)
				if !strings.Contains(r.body, "redirect_uri is not registered") {
					t.Fatalf("page: %s", r.body)
				}
				return
			}
			wantLoginPage(t, r)
			r = b.signIn("alice", issuertest.Password, r)
			if client == "partner" {
				wantConsentPage(t, r)
				r = b.do(http.MethodPost, "/consent", with(formOf(t, r.body), "decision", "allow"))
			}
			target := tc.uri
			if target == "-" {
				target = appCB
			}
			q := redirectedTo(t, r, target)
			form := exchange(q.Get("code"), "client_id", client, "redirect_uri", uri)
			if client == "partner" {
				form = with(form, "client_secret", "s", "code_verifier", verifier)
			}
			if a := s.token(form); a.status != http.StatusOK || a.str("access_token") == "" {
				t.Fatalf("redeeming at %q: %d %v", uri, a.status, a.body)
			}
		})
	}
}
