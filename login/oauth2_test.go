package login_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/login"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// TestGoOAuth2Client: golang.org/x/oauth2, a client written by others,
// runs the code flow with its own PKCE helpers (GenerateVerifier,
// S256ChallengeOption, VerifierOption) against the login and token
// routes; a person's part (the login form) is posted by the test.
func TestGoOAuth2Client(t *testing.T) {
	s := newBrowserSite(t)
	conf := &oauth2.Config{ClientID: "app", RedirectURL: s.url + "/app/cb", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: s.url + login.PathAuthorize, TokenURL: s.url + oauth.PathToken, AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(r *http.Response, err error) (*http.Response, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, string(b)
	}
	_, page := get(browser.Get(conf.AuthCodeURL("st-go", oauth2.S256ChallengeOption(verifier))))
	f := formOf(t, page)
	f.Set("username", "alice")
	f.Set("password", issuertest.Password)
	r, _ := get(browser.PostForm(s.url+login.PathLogin, f))
	loc, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), conf.RedirectURL+"?") || loc.Query().Get("state") != "st-go" {
		t.Fatalf("authorization response: %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || !tok.Valid() {
		t.Fatalf("token %+v", tok)
	}
	if claims, err := s.is.Verify(tok.AccessToken); err != nil || claims.Subject != "alice" || claims.ClientID != "app" {
		t.Fatalf("access token: %+v %v", claims, err)
	}
	// The refresh token rotates through the library too.
	next, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %+v %v", next, err)
	}
}
