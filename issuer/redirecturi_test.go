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
