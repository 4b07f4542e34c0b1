package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

// xss breaks out of an attribute and of text, with a script; xssEscaped
// is its script as html/template escapes it, in text and attributes.
const (
	xss        = `"'><script>alert(1)</script>`
	xssEscaped = `&lt;script&gt;alert(1)&lt;/script&gt;`
)

// TestXSS: whatever reflects a parameter, a client's or the site's name,
// or an error description, shows it escaped: the raw <script> never
// appears, and the escaped form does where the value is shown; a
// Location carries it URL-encoded.
func TestXSS(t *testing.T) {
	// A client named and scoped by a careless operator.
	evil := issuer.Client{ID: "evil" + xss, Public: true, Consent: true, Scopes: []string{xss}, RedirectURIs: []string{appCB}}
	s := newFlowSite(t, "Corp "+xss, evil)
	evilQuery := func(kv ...string) string {
		return authorizeQuery(append([]string{"client_id", evil.ID}, kv...)...)
	}
	for _, tc := range []struct {
		name    string
		run     func(b *site) resp
		escaped bool // the value is shown, escaped
	}{
		{name: "login_hint on the login page", escaped: true,
			run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery("login_hint", xss), nil) }},
		{name: "the site's title on the login page", escaped: true,
			run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery(), nil) }},
		{name: "the site's title on an error page", escaped: true,
			run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery("client_id", "nobody"), nil) }},
		{name: "the client's id on the login page", escaped: true,
			run: func(b *site) resp { return b.do(http.MethodGet, evilQuery(), nil) }},
		{name: "the client's id and scope on the consent page", escaped: true, run: func(b *site) resp {
			return b.signIn("alice", issuertest.Password, b.do(http.MethodGet, evilQuery("scope", "openid "+xss), nil))
		}},
		{name: "a typed username on the login page again", escaped: true, run: func(b *site) resp {
			return b.signIn(xss, "wrong-password", b.do(http.MethodGet, authorizeQuery(), nil))
		}},
		{name: "state in a form_post answer", escaped: true, run: func(b *site) resp {
			return b.signIn("alice", issuertest.Password, b.do(http.MethodGet, authorizeQuery("state", xss, "response_mode", "form_post"), nil))
		}},
		{name: "state in a form_post error", escaped: true,
			run: func(b *site) resp {
				return b.do(http.MethodGet, authorizeQuery("state", xss, "response_mode", "form_post", "response_type", "token"), nil)
			}},
		{name: "scope in a form_post error description", escaped: true,
			run: func(b *site) resp {
				return b.do(http.MethodGet, authorizeQuery("scope", xss, "response_mode", "form_post"), nil)
			}},
		{name: "a repeated parameter's name in an error page", escaped: true, run: func(b *site) resp {
			return b.do(http.MethodGet, authorizeQuery()+"&"+url.QueryEscape(xss)+"=1&"+url.QueryEscape(xss)+"=2", nil)
		}},
		{name: "state in a redirect", run: func(b *site) resp {
			return b.do(http.MethodGet, authorizeQuery("state", xss, "response_type", "token"), nil)
		}},
		{name: "scope in a redirect's error description", run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery("scope", xss), nil) }},
		{name: "an unknown client_id", run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery("client_id", xss), nil) }},
		{name: "redirect_uri", run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery("redirect_uri", appCB+xss), nil) }},
		{name: "nonce", run: func(b *site) resp { return b.do(http.MethodGet, authorizeQuery("nonce", xss), nil) }},
		{name: "prompt", run: func(b *site) resp {
			return b.do(http.MethodGet, authorizeQuery("prompt", xss, "response_mode", "form_post"), nil)
		}},
		{name: "max_age", run: func(b *site) resp {
			return b.do(http.MethodGet, authorizeQuery("max_age", xss, "response_mode", "form_post"), nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run(s.browser())
			if strings.Contains(r.body, "<script>") || strings.Contains(r.body, `"'>`) {
				t.Fatalf("reflected unescaped: %d\n%s", r.status, r.body)
			}
			if tc.escaped && !strings.Contains(r.body, xssEscaped) {
				t.Fatalf("the escaped value is not shown: %d\n%s", r.status, r.body)
			}
			if loc := r.header.Get("Location"); strings.ContainsAny(loc, `<>"' `) {
				t.Fatalf("Location %q is not URL-encoded", loc)
			}
			if loc := r.header.Get("Location"); loc != "" && !strings.HasPrefix(loc, appCB+"?") {
				t.Fatalf("redirected to %q", loc)
			}
			if r.status == http.StatusOK && !strings.Contains(r.body, login.PathStyle) {
				t.Fatalf("not a page: %s", r.body)
			}
		})
	}
}
