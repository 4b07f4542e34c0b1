package tokengate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validateCaddyfile adapts a site whose tokengate block holds block and
// runs `caddy validate` on it.
func validateCaddyfile(t *testing.T, block string) error {
	t.Helper()
	in := "http://localhost:0 {\n\ttokengate {\n\t\tstore sqlite " + filepath.Join(t.TempDir(), "tg.db") + "\n\t\t" + block + "\n\t}\n}\n"
	js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		return err
	}
	var cfg caddy.Config
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

// TestBrowserSignInConfigIsChecked: the login block and the browser
// sign-in options of users and clients are checked at load, each mistake
// named with its fix, and a sound configuration loads.
func TestBrowserSignInConfigIsChecked(t *testing.T) {
	_, clientHash := hashes()
	pages := t.TempDir()
	file := filepath.Join(pages, "login.html")
	if err := os.WriteFile(file, []byte("<p>"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "login.html"), []byte("{{ .Nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, block string
		want        []string // words of the refusal; none: it loads
	}{
		{"a sound configuration", "login {\n templates " + pages + "\n }\n user alice " + mustHash(t) + " email alice@example.com name \"Alice Example\"\n" +
			" client spa public redirect_uri http://127.0.0.1/cb https://app.example/cb\n" +
			" client web " + clientHash + " redirect_uri https://app.example/cb post_logout_redirect_uri https://app.example/ pkce optional consent grants authorization_code", nil},
		{"a public client without browser sign-in", "client cli public", nil},
		{"redirect_uri without login", "client spa public redirect_uri https://app.example/cb", []string{"client spa", "login", "block"}},
		{"http on a public host", "login\n client spa public redirect_uri http://app.example/cb", []string{"client spa", "loopback", "https"}},
		{"a fragment", "login\n client spa public redirect_uri https://app.example/cb#x", []string{"client spa", "fragment"}},
		{"user info", "login\n client spa public redirect_uri https://evil.example@app.example/cb", []string{"client spa", "user info"}},
		{"a relative URI", "login\n client spa public redirect_uri /cb", []string{"client spa", "absolute"}},
		{"a bad post-logout URI", "login\n client spa public redirect_uri https://app.example/cb post_logout_redirect_uri http://app.example/", []string{"client spa", "loopback"}},
		{"a public client without PKCE", "login\n client spa public redirect_uri https://app.example/cb pkce optional", []string{"client spa", "always uses PKCE"}},
		{"consent without redirect_uri", "login\n client web " + clientHash + " consent", []string{"client web", "a redirect URI"}},
		{"post-logout without redirect_uri", "login\n client web " + clientHash + " post_logout_redirect_uri https://app.example/", []string{"client web", "a redirect URI"}},
		{"grants without authorization_code", "login\n client web " + clientHash + " redirect_uri https://app.example/cb grants client_credentials",
			[]string{"client web", "authorization_code", "grants"}},
		{"login on a validate-only site", "issuing off\n login", []string{"login", "issuing"}},
		{"templates that are missing", "login {\n templates " + filepath.Join(pages, "none") + "\n }", []string{"login", "templates", "directory"}},
		{"templates that do not parse", "login {\n templates " + broken + "\n }", []string{"login", "templates", "login.html"}},
		{"templates that are a file", "login {\n templates " + file + "\n }", []string{"login", "templates", "is a file"}},
		{"an idle lifetime beyond the default absolute one", "login {\n session_ttl 8d\n }", []string{"session_ttl", "longer than session_max_ttl"}},
		{"an email with a display name", "user alice " + mustHash(t) + " email \"Alice <alice@example.com>\"", []string{"user alice", "bare address"}},
		{"a display name with a line break", "user alice " + mustHash(t) + " name \"Alice\nExample\"", []string{"user alice", "control characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateCaddyfile(t, tc.block)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("error %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestPublicClientWithSecretIsRefused: only the JSON configuration can
// give a public client a secret hash; it is refused at load.
func TestPublicClientWithSecretIsRefused(t *testing.T) {
	_, clientHash := hashes()
	handler := map[string]any{"handler": "tokengate", "issuer": "https://gw.example",
		"store":   map[string]string{"driver": "sqlite", "dsn": filepath.Join(t.TempDir(), "tg.db")},
		"clients": []map[string]any{{"id": "spa", "public": true, "secret_hash": clientHash}}}
	raw, err := json.Marshal(map[string]any{"apps": map[string]any{"http": map[string]any{"servers": map[string]any{
		"s": map[string]any{"listen": []string{"localhost:0"}, "routes": []any{map[string]any{"handle": []any{handler}}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), "client spa: a public client has no secret") {
		t.Fatalf("got %v", err)
	}
}
