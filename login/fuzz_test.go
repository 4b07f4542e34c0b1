package login_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

// FuzzAuthorize: whatever the query, /authorize never answers 5xx, never
// redirects anywhere but a registered redirect URI (loopback ports
// included) and never reflects a <script>. Seeds beyond these are in
// testdata/fuzz/FuzzAuthorize.
func FuzzAuthorize(f *testing.F) {
	for _, seed := range []string{
		strings.TrimPrefix(authorizeQuery(), login.PathAuthorize+"?"),
		strings.TrimPrefix(authorizeQuery("redirect_uri", "//evil.example"), login.PathAuthorize+"?"),
		"client_id=spa&client_id=spa", "client_id=spa&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=token",
		"%zz", "client_id=spa&prompt=none&max_age=0", "",
	} {
		f.Add(seed)
	}
	spa := issuer.Client{ID: "spa", Public: true, RedirectURIs: []string{appCB, "http://127.0.0.1/native", "http://[::1]:8080/native"}}
	is := issuertest.New(f, issuer.Config{Clients: []issuer.Client{spa}})
	h := (&login.Server{Issuer: is, Log: zap.NewNop()}).Routes()[login.PathAuthorize].Handler
	f.Fuzz(func(t *testing.T, query string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "https://gw/authorize", nil)
		r.URL.RawQuery = query
		h(w, r)
		if w.Code >= 500 {
			t.Fatalf("%q: %d", query, w.Code)
		}
		if loc := w.Header().Get("Location"); loc != "" {
			base, _, _ := strings.Cut(loc, "?")
			if !spa.AllowsRedirect(base) || strings.ContainsAny(loc, "<>\"' #") || !strings.Contains(loc, "iss=https%3A%2F%2Fgw") {
				t.Fatalf("%q redirected to %q", query, loc)
			}
		}
		if strings.Contains(w.Body.String(), "<script>") {
			t.Fatalf("%q reflected a script: %s", query, w.Body)
		}
	})
}

// FuzzLoginForm: whatever the posted form, /login never answers 5xx and
// never redirects without a valid pending request. Seeds beyond these are
// in testdata/fuzz/FuzzLoginForm.
func FuzzLoginForm(f *testing.F) {
	for _, seed := range []string{"authz=x&csrf=y&username=alice&password=pw", "authz=&csrf=", "%zz", "username=a&username=b"} {
		f.Add(seed)
	}
	is := issuertest.New(f, issuer.Config{Clients: []issuer.Client{{ID: "spa", Public: true, RedirectURIs: []string{appCB}}}})
	h := (&login.Server{Issuer: is, Log: zap.NewNop()}).Routes()[login.PathLogin].Handler
	f.Fuzz(func(t *testing.T, body string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "https://gw/login", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h(w, r)
		if w.Code >= 500 || w.Header().Get("Location") != "" {
			t.Fatalf("%q: %d %q", body, w.Code, w.Header().Get("Location"))
		}
	})
}
