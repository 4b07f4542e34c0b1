package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// jsonLines decodes one JSON object per line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var objs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// TestBrowserClients: client add makes public and browser clients, a
// public one without a secret; client list shows their options; a public
// client has no secret to rotate.
func TestBrowserClients(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	out, err := run(t, "", "client", "add", "spa", "--public", "--redirect-uri", "http://127.0.0.1/cb",
		"--redirect-uri", "https://app.example/cb?x=1,2", "--scopes", "read", "--json", store)
	if err != nil {
		t.Fatal(err, out)
	}
	if objs := jsonLines(t, out); len(objs) != 1 || len(objs[0]) != 1 || objs[0]["client_id"] != "spa" {
		t.Fatalf("client add --public --json printed %q, want only the client_id", out)
	}
	out, err = run(t, "", "client", "add", "native", "--public", "--redirect-uri", "http://[::1]/cb", store)
	if err != nil || !strings.Contains(out, "client_id: native\n") || strings.Contains(out, "client_secret") {
		t.Fatalf("client add --public printed %q %v", out, err)
	}
	out, err = run(t, "", "client", "add", "web", "--redirect-uri", "https://web.example/cb", "--post-logout-redirect-uri", "https://web.example/",
		"--pkce-optional", "--consent", "--grants", "authorization_code,refresh_token", store)
	if err != nil || !strings.Contains(out, "client_secret: tgs_") {
		t.Fatalf("client add web: %q %v", out, err)
	}
	is := openIssuer(t, db)
	ctx := context.Background()
	spa, err := is.LookupClient(ctx, "spa")
	if err != nil || !spa.Public || spa.SecretHash != "" || !slices.Equal(spa.RedirectURIs, []string{"http://127.0.0.1/cb", "https://app.example/cb?x=1,2"}) ||
		!slices.Equal(spa.Scopes, []string{"read"}) {
		t.Fatalf("stored spa: %+v %v", spa, err)
	}
	if _, err := is.AuthenticateClient(ctx, "spa", ""); err == nil {
		t.Fatal("a public client authenticates with an empty secret")
	}
	web, err := is.LookupClient(ctx, "web")
	if err != nil || web.Public || !web.PKCEOptional || !web.Consent || web.PostLogoutRedirectURIs[0] != "https://web.example/" {
		t.Fatalf("stored web: %+v %v", web, err)
	}

	out, err = run(t, "", "client", "list", "--json", store)
	if err != nil {
		t.Fatal(err, out)
	}
	rows := map[string]map[string]any{}
	for _, obj := range jsonLines(t, out) {
		rows[obj["client_id"].(string)] = obj
	}
	for _, tc := range []struct{ id, field, want string }{
		{"spa", "type", "public"},
		{"spa", "redirect_uris", "http://127.0.0.1/cb https://app.example/cb?x=1,2"},
		{"spa", "options", ""},
		{"web", "type", "confidential"},
		{"web", "post_logout_redirect_uris", "https://web.example/"},
		{"web", "options", "pkce-optional,consent"},
		{"web", "grants", "authorization_code,refresh_token"},
	} {
		if got := rows[tc.id][tc.field]; got != tc.want {
			t.Errorf("client list: %s's %s is %v, want %q", tc.id, tc.field, got, tc.want)
		}
	}
	if out, _ := run(t, "", "client", "list", store); !strings.Contains(out, "REDIRECT_URIS") || !strings.Contains(out, "public") {
		t.Fatalf("client list: %q", out)
	}
	if out, err := run(t, "", "client", "rotate", "spa", store); err == nil || !strings.Contains(err.Error(), "no secret to rotate") {
		t.Fatalf("client rotate of a public client: %q %v", out, err)
	}
}

// TestBrowserClientRefusals: client add refuses what the configuration
// refuses, before it opens the store.
func TestBrowserClientRefusals(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tg.db")
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"http on a public host", []string{"--public", "--redirect-uri", "http://app.example/cb"}, "loopback"},
		{"a fragment", []string{"--public", "--redirect-uri", "https://app.example/cb#top"}, "fragment"},
		{"user info", []string{"--public", "--redirect-uri", "https://evil.example@app.example/cb"}, "user info"},
		{"a relative URI", []string{"--public", "--redirect-uri", "/cb"}, "absolute"},
		{"a public client without PKCE", []string{"--public", "--redirect-uri", "https://app.example/cb", "--pkce-optional"}, "always uses PKCE"},
		{"consent without a redirect URI", []string{"--consent"}, "redirect URI"},
		{"a post-logout URI without a redirect URI", []string{"--post-logout-redirect-uri", "https://app.example/"}, "redirect URI"},
		{"grants without authorization_code", []string{"--redirect-uri", "https://app.example/cb", "--grants", "client_credentials"}, "authorization_code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, "", append([]string{"client", "add", "c1", "--store=sqlite:" + db}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), "client c1") || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %q %v, want a refusal saying %q", out, err, tc.says)
			}
		})
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("a refused client add created the store: %v", err)
	}
}

// TestUserProfile: user add keeps the email and display name, user list
// shows them, and a malformed address is refused.
func TestUserProfile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	if out, err := run(t, "pw\n", "user", "add", "alice", "--email", "alice@example.com", "--name", "Alice Example", "--password-stdin", store); err != nil {
		t.Fatal(err, out)
	}
	u, err := openIssuer(t, db).Core().Store().GetUser(context.Background(), "alice")
	if err != nil || u.Email != "alice@example.com" || u.DisplayName != "Alice Example" {
		t.Fatalf("stored user: %+v %v", u, err)
	}
	out, err := run(t, "", "user", "list", "--json", store)
	if objs := jsonLines(t, out); err != nil || len(objs) != 1 || objs[0]["email"] != "alice@example.com" || objs[0]["display_name"] != "Alice Example" {
		t.Fatalf("user list --json: %q %v", out, err)
	}
	for _, bad := range [][]string{{"--email", "Alice <alice@example.com>"}, {"--email", "alice"}, {"--name", "Alice\nExample"}} {
		if out, err := run(t, "pw\n", append([]string{"user", "add", "bob", "--password-stdin", store}, bad...)...); err == nil {
			t.Errorf("user add %v: %q", bad, out)
		}
	}
}

// TestConsentListAndRevoke: consent list shows what a user consented to,
// found by the user's name (its subject when it has an id, a table user's
// subject as is); consent revoke forgets one client's or all.
func TestConsentListAndRevoke(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	if out, err := run(t, "pw\n", "user", "add", "alice", "--id", "u-1", "--password-stdin", store); err != nil {
		t.Fatal(err, out)
	}
	is := openIssuer(t, db)
	ctx := context.Background()
	for _, g := range []struct {
		subject, client string
		scopes          []string
	}{{"u-1", "grafana", []string{"openid", "profile"}}, {"u-1", "partner", []string{"read"}}, {"app:42", "partner", []string{"read"}},
		{"alice", "grafana", []string{"other"}}} { // not alice's: her subject is u-1
		if err := is.GrantConsent(ctx, g.subject, g.client, g.scopes); err != nil {
			t.Fatal(err)
		}
	}
	clients := func(user string) []string {
		t.Helper()
		out, err := run(t, "", "consent", "list", "--user", user, "--json", store)
		if err != nil {
			t.Fatal(err, out)
		}
		var ids []string
		for _, obj := range jsonLines(t, out) {
			ids = append(ids, obj["client_id"].(string)+":"+obj["scopes"].(string))
		}
		return ids
	}
	if got := clients("alice"); !slices.Equal(got, []string{"grafana:openid,profile", "partner:read"}) {
		t.Fatalf("consent list alice: %v", got)
	}
	if got := clients("app:42"); !slices.Equal(got, []string{"partner:read"}) {
		t.Fatalf("consent list app:42: %v", got)
	}
	if out, err := run(t, "", "consent", "list", "--user", "carol", store); err == nil || !strings.Contains(err.Error(), "no user carol") {
		t.Fatalf("consent list of an unknown user: %q %v", out, err)
	}
	out, err := run(t, "", "consent", "revoke", "--user", "alice", "--client", "grafana", store)
	if err != nil || !strings.Contains(out, "consent of alice to grafana is forgotten") {
		t.Fatalf("consent revoke --client: %q %v", out, err)
	}
	if got := clients("alice"); !slices.Equal(got, []string{"partner:read"}) {
		t.Fatalf("after revoking grafana: %v", got)
	}
	if out, err := run(t, "", "consent", "revoke", "--user", "alice", "--client", "grafana", store); err == nil || !strings.Contains(err.Error(), "has not consented") {
		t.Fatalf("revoking it again: %q %v", out, err)
	}
	out, err = run(t, "", "consent", "revoke", "--user", "alice", "--json", store)
	if objs := jsonLines(t, out); err != nil || len(objs) != 1 || objs[0]["forgotten"] != float64(1) || objs[0]["status"] != "revoked" {
		t.Fatalf("consent revoke --json: %q %v", out, err)
	}
	if ok, err := is.HasConsent(ctx, "u-1", "partner", []string{"read"}); err != nil || ok {
		t.Fatalf("alice's consent to partner after revoke: %v %v", ok, err)
	}
	if ok, err := is.HasConsent(ctx, "app:42", "partner", []string{"read"}); err != nil || !ok {
		t.Fatalf("another user's consent after alice's revoke: %v %v", ok, err)
	}
}

// TestConsentOfADeclaredUser: a user declared in the --config Caddyfile is
// found by name.
func TestConsentOfADeclaredUser(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tg.db")
	caddyfile := filepath.Join(dir, "Caddyfile")
	body := ":8080 {\n\ttokengate {\n\t\tstore sqlite " + db + "\n\t\tuser carol $2a$04$abcdefghijklmnopqrstuuB2hFMW8eTj1nL9w4sX3m1h8iQ5n6kRa\n\t}\n\trespond ok\n}\n"
	if err := os.WriteFile(caddyfile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	is := openIssuer(t, db)
	if err := is.GrantConsent(context.Background(), "carol", "grafana", []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, "", "consent", "list", "--user", "carol", "--config="+caddyfile); err != nil || !strings.Contains(out, "grafana") {
		t.Fatalf("consent list of a declared user: %q %v", out, err)
	}
}

// TestCommandsEndSignInSessions: revoke --sub, user passwd and user remove
// end the user's sign-in (SSO) sessions in the store, so that no instance
// lets the browser in again; passwd --keep-sessions keeps them.
func TestCommandsEndSignInSessions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		ends  bool
	}{
		{"revoke --sub", "", []string{"revoke", "--sub", "carol"}, true},
		{"user passwd", "pw-two\n", []string{"user", "passwd", "carol", "--password-stdin"}, true},
		{"user passwd --keep-sessions", "pw-two\n", []string{"user", "passwd", "carol", "--password-stdin", "--keep-sessions"}, false},
		{"user remove", "", []string{"user", "remove", "carol"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "tg.db")
			store := "--store=sqlite:" + db
			if out, err := run(t, "pw-one\n", "user", "add", "carol", "--password-stdin", store); err != nil {
				t.Fatal(err, out)
			}
			is := openIssuer(t, db)
			ctx := context.Background()
			p, err := is.SignIn(ctx, "carol", "pw-one")
			if err != nil {
				t.Fatal(err)
			}
			id, _, err := is.StartSession(ctx, p, []string{"pwd"})
			if err != nil {
				t.Fatal(err)
			}
			if out, err := run(t, tc.stdin, append(tc.args, store)...); err != nil {
				t.Fatal(err, out)
			}
			_, err = is.LookupSession(ctx, id)
			if ended := errors.Is(err, issuer.ErrNotFound); ended != tc.ends || (!ended && err != nil) {
				t.Fatalf("after %s the sign-in session: %v (want ended %v)", tc.name, err, tc.ends)
			}
		})
	}
}
