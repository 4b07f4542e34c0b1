package issuer_test

import (
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func TestCheckRedirectURI(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want string // "" for accepted, else a word of the refusal
	}{
		{"https://app.example.com/callback", ""},
		{"https://app.example.com:8443/cb?tenant=a", ""},
		{"http://127.0.0.1/callback", ""},
		{"http://127.0.0.1:51004/callback", ""},
		{"http://[::1]:8080/cb", ""},
		{"http://localhost:5173/callback", ""},
		{"http://app.example.com/callback", "loopback"},
		{"http://10.0.0.1/cb", "loopback"},
		{"/callback", "absolute"},
		{"app.example.com/callback", "absolute"},
		{"https:///callback", "absolute"},
		{"mailto:ops@example.com", "absolute"},
		{"com.example.app:/oauth2redirect", "absolute"},
		{"https://app.example.com/cb#frag", "fragment"},
		{"https://app.example.com/cb#", "fragment"},
		{"https://evil.example@app.example.com/cb", "user info"},
		{"https://user:pw@app.example.com/cb", "user info"},
		{"ftp://app.example.com/cb", "scheme"},
		{"javascript://app.example.com/%0aalert(1)", "scheme"},
		{"https://app.example.com/\x7f", "redirect URI"},
		{"", "absolute"},
	} {
		err := issuer.CheckRedirectURI(tc.uri)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckRedirectURI(%q) = %v, want %q", tc.uri, err, tc.want)
		}
	}
}

// FuzzCheckRedirectURI: a URI that can be registered has no fragment and
// no user info, and a client holding it allows exactly it.
func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{"https://app.example.com/cb", "http://127.0.0.1:8080/cb", "https://a@b/#c", "http://[::1]/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if issuer.CheckRedirectURI(uri) != nil {
			return
		}
		lower := strings.ToLower(uri) // the scheme is case-insensitive
		if strings.Contains(uri, "#") || !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "http://") {
			t.Fatalf("accepted %q", uri)
		}
		if !(issuer.Client{RedirectURIs: []string{uri}}).AllowsRedirect(uri) {
			t.Fatalf("a client registering %q does not allow it", uri)
		}
	})
}

func TestCheckBrowserClient(t *testing.T) {
	cb := []string{"https://app.example/cb"}
	for _, tc := range []struct {
		name string
		c    issuer.Client
		want string // "" for accepted, else a word of the refusal
	}{
		{"a confidential client", issuer.Client{ID: "svc", SecretHash: "h"}, ""},
		{"a public client", issuer.Client{ID: "spa", Public: true, RedirectURIs: cb}, ""},
		{"every option", issuer.Client{ID: "web", SecretHash: "h", RedirectURIs: cb, PostLogoutRedirectURIs: []string{"https://app.example/"},
			PKCEOptional: true, Consent: true, Grants: []string{"authorization_code", "refresh_token"}}, ""},
		{"a public client with a secret", issuer.Client{ID: "spa", Public: true, SecretHash: "h"}, "no secret"},
		{"a public client without PKCE", issuer.Client{ID: "spa", Public: true, RedirectURIs: cb, PKCEOptional: true}, "always uses PKCE"},
		{"a bad redirect URI", issuer.Client{ID: "spa", Public: true, RedirectURIs: []string{"http://app.example/cb"}}, "loopback"},
		{"a bad post-logout URI", issuer.Client{ID: "spa", Public: true, RedirectURIs: cb, PostLogoutRedirectURIs: []string{"/bye"}}, "absolute"},
		{"consent without a redirect URI", issuer.Client{ID: "web", SecretHash: "h", Consent: true}, "give the client a redirect URI"},
		{"optional PKCE without a redirect URI", issuer.Client{ID: "web", SecretHash: "h", PKCEOptional: true}, "give the client a redirect URI"},
		{"post-logout without a redirect URI", issuer.Client{ID: "web", SecretHash: "h", PostLogoutRedirectURIs: cb}, "give the client a redirect URI"},
		{"grants without authorization_code", issuer.Client{ID: "web", SecretHash: "h", RedirectURIs: cb, Grants: []string{"client_credentials"}}, "authorization_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := issuer.CheckBrowserClient(tc.c)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCheckProfile(t *testing.T) {
	for _, tc := range []struct {
		email, name string
		want        string
	}{
		{"", "", ""},
		{"alice@example.com", "Alice Example", ""},
		{"alice@example.com", "Ålice \"Al\" <Example>", ""},
		{"Alice <alice@example.com>", "", "bare address"},
		{"alice", "", "bare address"},
		{"alice@example.com\n", "", "bare address"},
		{"", "Alice\nExample", "control characters"},
		{"", "Alice\tExample", "control characters"},
	} {
		err := (issuer.User{Name: "alice", Email: tc.email, DisplayName: tc.name}).CheckProfile()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckProfile(%q, %q) = %v, want %q", tc.email, tc.name, err, tc.want)
		}
	}
}
