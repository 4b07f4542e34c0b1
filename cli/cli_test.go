package cli_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/tokengate/caddy-tokengate" // the tokengate Caddyfile directive
	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
	"github.com/tokengate/caddy-tokengate/internal/testkit/clitest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// run executes `caddy tokengate args…` in-process.
var run = clitest.Run

func openIssuer(t *testing.T, path string) *issuer.Issuer {
	return issuertest.Open(t, path, issuer.Config{})
}

func TestClientLifecycle(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	out, err := run(t, "", "client", "add", "billing", "--roles", "reader,ops", "--scopes", "orders:read", "--json", store)
	if err != nil {
		t.Fatal(err, out)
	}
	var created map[string]string
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["client_id"] != "billing" || !strings.HasPrefix(created["client_secret"], "tgs_") {
		t.Fatalf("client add --json printed %q", out)
	}
	if _, err := run(t, "", "client", "add", "billing", store); err == nil {
		t.Fatal("adding an existing client should fail")
	}
	is := openIssuer(t, db)
	c, err := is.AuthenticateClient(context.Background(), "billing", created["client_secret"])
	if err != nil || strings.Join(c.Roles, ",") != "reader,ops" || c.Scopes[0] != "orders:read" {
		t.Fatalf("stored client: %+v %v", c, err)
	}
	out, err = run(t, "", "client", "rotate", "billing", store)
	if err != nil || !strings.Contains(out, "client_id: billing\nclient_secret: tgs_") {
		t.Fatalf("client rotate: %q %v", out, err)
	}
	newSecret := strings.TrimSpace(strings.SplitN(out, "client_secret: ", 2)[1])
	if _, err := is.AuthenticateClient(context.Background(), "billing", created["client_secret"]); err == nil {
		t.Fatal("the old secret still works after rotate")
	}
	if _, err := is.AuthenticateClient(context.Background(), "billing", newSecret); err != nil {
		t.Fatalf("the new secret: %v", err)
	}
	if out, _ := run(t, "", "client", "list", store); !strings.Contains(out, "billing") || strings.Contains(out, newSecret) {
		t.Fatalf("client list: %q", out)
	}
	if err := is.Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	held, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.ClientPrincipal(c), ClientID: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	// A user whose subject is the client's id loses its sessions too, and
	// the output says so.
	if out, err := run(t, "pw\n", "user", "add", "bill", "--id", "billing", "--password-stdin", "--force", store); err != nil {
		t.Fatal(err, out)
	}
	if out, err := run(t, "", "client", "remove", "billing", "--json", store); err != nil || !strings.Contains(out, `"sessions":"ended"`) ||
		!strings.Contains(out, `"also_ended":["user bill"]`) {
		t.Fatal(err, out)
	}
	if err := is.Core().SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Verify(held.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("access token of a removed client: %v", err)
	}
	if _, err := run(t, "", "client", "remove", "billing", store); err == nil || !strings.Contains(err.Error(), "declared in a Caddyfile") {
		t.Fatalf("removing a missing client: %v", err)
	}
}

func TestUserLifecycleThroughCaddyfile(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tg.db")
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(":8080 {\n\ttokengate {\n\t\tstore sqlite "+db+"\n\t}\n\trespond ok\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "--config=" + caddyfile
	if out, err := run(t, "pw-one\n", "user", "add", "carol", "--roles", "admin", "--password-stdin", cfg); err != nil {
		t.Fatal(err, out)
	}
	is := openIssuer(t, db)
	if u, err := is.AuthenticateUser(context.Background(), "carol", "pw-one"); err != nil || u.Roles[0] != "admin" {
		t.Fatalf("user add: %+v %v", u, err)
	}
	login := func(pw string) issuer.Tokens {
		t.Helper()
		u, err := is.AuthenticateUser(context.Background(), "carol", pw)
		if err != nil {
			t.Fatal(err)
		}
		toks, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.UserPrincipal(u), Refresh: true})
		if err != nil {
			t.Fatal(err)
		}
		return toks
	}
	refresh := func(toks issuer.Tokens) error {
		_, _, err := is.Refresh(context.Background(), issuer.RefreshRequest{Token: toks.RefreshToken})
		return err
	}
	if err := is.Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	kept := login("pw-one")
	if out, err := run(t, "pw-kept\n", "user", "passwd", "carol", "--password-stdin", "--keep-sessions", cfg); err != nil || !strings.Contains(out, "sessions go on") {
		t.Fatal(err, out)
	}
	if err := refresh(kept); err != nil {
		t.Fatalf("refresh after passwd --keep-sessions: %v", err)
	}
	ended := login("pw-kept")
	if out, err := run(t, "pw-two\n", "user", "passwd", "carol", "--password-stdin", cfg); err != nil || !strings.Contains(out, "sessions are ended") {
		t.Fatal(err, out)
	}
	if err := refresh(ended); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("refresh after passwd: %v", err)
	}
	if _, err := is.AuthenticateUser(context.Background(), "carol", "pw-one"); err == nil {
		t.Fatal("old password still works")
	}
	if _, err := is.AuthenticateUser(context.Background(), "carol", "pw-two"); err != nil {
		t.Fatal(err)
	}
	if out, _ := run(t, "", "user", "list", cfg); !strings.Contains(out, "carol") || strings.Contains(out, "argon2") {
		t.Fatalf("user list: %q", out)
	}
	held := login("pw-two")
	if out, err := run(t, "", "user", "remove", "carol", cfg); err != nil || !strings.Contains(out, "sessions are ended") || strings.Contains(out, "share the subject") {
		t.Fatal(err, out)
	}
	if _, err := is.AuthenticateUser(context.Background(), "carol", "pw-two"); err == nil {
		t.Fatal("removed user still authenticates")
	}
	// The tokens it held do not outlive it.
	if err := is.Core().SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Verify(held.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("access token of a removed user: %v", err)
	}
	if err := refresh(held); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("refresh of a removed user: %v", err)
	}
	if _, err := run(t, "", "user", "list", "--config="+filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing Caddyfile should fail")
	}
}

func TestKeysAndHashPassword(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	// A key published for less than the sync interval could sign tokens
	// that other gateways do not know yet.
	if out, err := run(t, "", "keys", "rotate", "--publish-ahead=500ms", store); err == nil || !strings.Contains(err.Error(), "shorter than") {
		t.Fatalf("keys rotate --publish-ahead=500ms: %q %v", out, err)
	}
	if err := openIssuer(t, db).Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "keys", "rotate", "--publish-ahead=1s", store); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "", "keys", "rotate", store)
	if err != nil || !strings.Contains(out, "new EdDSA key") {
		t.Fatalf("keys rotate: %q %v", out, err)
	}
	out, err = run(t, "", "keys", "list", store)
	if err != nil || !strings.Contains(out, "active") || !strings.Contains(out, "published") {
		t.Fatalf("keys list: %q %v", out, err)
	}
	if _, err := run(t, "", "keys", "rotate", "--alg=none", store); err == nil {
		t.Fatal("rotating an unknown algorithm should fail")
	}
	out, err = run(t, "s3cret\n", "hash-password", "--password-stdin")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := issuer.VerifyPassword(strings.TrimSpace(out), "s3cret"); !ok || err != nil || !strings.HasPrefix(out, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash-password printed %q, want argon2id with OWASP's parameters", out)
	}
	out, err = run(t, "s3cret\n", "hash-password", "--password-stdin", "--argon-memory=8192", "--argon-time=3", "--argon-threads=2")
	if err != nil || !strings.HasPrefix(out, "$argon2id$v=19$m=8192,t=3,p=2$") {
		t.Fatalf("hash-password with parameters: %q %v", out, err)
	}
	if _, err := run(t, "s3cret\n", "hash-password", "--password-stdin", "--argon-time=0"); err == nil {
		t.Fatal("hash-password accepted t=0")
	}
	if _, err := run(t, "", "client", "list", "--store=mysql:x"); err == nil {
		t.Fatal("bad --store should fail")
	}
}

func TestEntitiesAndRevoke(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	if out, err := run(t, "", "entity", "add", "aa-1", "--roles", "member", store); err != nil {
		t.Fatal(err, out)
	}
	out, err := run(t, "", "entity", "list", store)
	if err != nil || !strings.Contains(out, "aa-1") || !strings.Contains(out, "member") || !strings.Contains(out, "no secret") {
		t.Fatalf("entity list: %q %v", out, err)
	}
	is := openIssuer(t, db)
	if e, err := is.LookupEntity(context.Background(), "aa-1"); err != nil || e.Roles[0] != "member" {
		t.Fatalf("stored entity: %+v %v", e, err)
	}

	if err := is.Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	tok, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Name: "aa-1", Subject: "aa-1"}})
	if err != nil {
		t.Fatal(err)
	}
	user, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Kind: "user", Name: "aa-1", Subject: "aa-1"}, Refresh: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "revoke", "--sub", "aa-1", store); err != nil {
		t.Fatal(err)
	}
	// A running gateway picks the revocation up from the store.
	if err := is.Core().SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Verify(tok.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("token after revoke --sub: %v", err)
	}
	// Its refresh tokens end too, read from the store, no sync needed.
	if _, _, err := is.Refresh(context.Background(), issuer.RefreshRequest{Token: user.RefreshToken}); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("refresh after revoke --sub: %v", err)
	}
	if _, err := run(t, "", "revoke", store); err == nil {
		t.Fatal("revoke without --sub or --jti should fail")
	}
	later, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Kind: issuer.KindEntity, Name: "aa-1", Subject: "aa-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "", "entity", "remove", "aa-1", store); err != nil {
		t.Fatal(err)
	}
	if _, err := is.LookupEntity(context.Background(), "aa-1"); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("removed entity: %v", err)
	}
	if err := is.Core().SyncNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := is.Verify(later.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("access token of a removed entity: %v", err)
	}
}

// TestKeysRotateAlgChangesWhatIsSigned: after `keys rotate --alg ES256`, a
// site without signing_alg signs ES256 once the key is active, and `keys
// list` shows exactly one active key per algorithm.
func TestKeysRotateAlgChangesWhatIsSigned(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	// Keys made in the past by a core whose clock says so: EdDSA 1 and 2
	// (1 retired), then the CLI's ES256 key, published 1s ahead.
	past := time.Now().Add(-2 * time.Hour)
	st, err := sqlstore.Open(ctx, "sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(ctx, st, issuer.CoreOptions{Clock: func() time.Time { return past }, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := core.EnsureKey(ctx, issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	past = past.Add(time.Hour)
	if _, err := core.Rotate(ctx, issuer.AlgEdDSA, 0); err != nil {
		t.Fatal(err)
	}
	core.Close()
	if out, err := run(t, "", "keys", "rotate", "--alg=ES256", "--publish-ahead=1s", store); err != nil || !strings.Contains(out, "new ES256 key") {
		t.Fatalf("keys rotate --alg=ES256: %q %v", out, err)
	}
	// Signing with the new key, as a gateway would a second later.
	st, err = sqlstore.Open(ctx, "sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(2 * time.Second)
	core, err = issuer.OpenCore(ctx, st, issuer.CoreOptions{Clock: func() time.Time { return later }, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	is, err := issuer.New(core, issuer.Config{Issuer: "https://gw"}) // no signing_alg
	if err != nil {
		t.Fatal(err)
	}
	toks, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(toks.AccessToken, ".")[0])
	if !strings.Contains(string(hdr), `"alg":"ES256"`) {
		t.Fatalf("after keys rotate --alg ES256 the site signs %s", hdr)
	}
	pinned, err := issuer.New(core, issuer.Config{Issuer: "https://gw", Alg: issuer.AlgEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if toks, err = pinned.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}}); err != nil {
		t.Fatal(err)
	}
	if hdr, _ = base64.RawURLEncoding.DecodeString(strings.Split(toks.AccessToken, ".")[0]); !strings.Contains(string(hdr), `"alg":"EdDSA"`) {
		t.Fatalf("a site with signing_alg EdDSA signs %s", hdr)
	}
	// keys list runs on the real clock: wait for the ES256 key to activate.
	var out string
	waitfor.Until(t, "the ES256 key to activate", 10*time.Second, 50*time.Millisecond, func() bool {
		if out, err = run(t, "", "keys", "list", store); err != nil {
			t.Fatal(err)
		}
		return !strings.Contains(out, "published")
	})
	active := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 5 && f[4] == "active" || strings.Contains(line, "active,") {
			active[strings.Fields(line)[1]]++
		}
	}
	if active["EdDSA"] != 1 || active["ES256"] != 1 || !strings.Contains(out, "retired") || !strings.Contains(out, "ES256  ") {
		t.Fatalf("keys list, want one active key per algorithm and one retired:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "default") && !strings.Contains(line, "ES256") {
			t.Fatalf("the default algorithm is not ES256:\n%s", out)
		}
	}
}

// TestNamesThatCouldPassForTableSubjects: the CLI refuses a ":" in user
// names and ids, client ids and entity ids, and saves nothing.
func TestNamesThatCouldPassForTableSubjects(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	for _, args := range [][]string{
		{"user", "add", "app:42", "--password-stdin"},
		{"user", "add", "carol", "--id", "app:42", "--password-stdin"},
		{"client", "add", "app:svc"},
		{"entity", "add", "app:aa-1"},
	} {
		if out, err := run(t, "pw\n", append(args, store)...); err == nil || !strings.Contains(err.Error(), "may not contain") {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
	// Refused before the store is opened: none was created.
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("store after refusals: %v", err)
	}
	// And on an existing store, nothing is saved.
	if out, err := run(t, "pw\n", "user", "add", "dora", "--password-stdin", store); err != nil {
		t.Fatal(err, out)
	}
	if out, err := run(t, "pw\n", "user", "add", "app:42", "--password-stdin", store); err == nil {
		t.Fatalf("user app:42 on an existing store: %q", out)
	}
	out, err := run(t, "", "user", "list", store)
	if err != nil || !strings.Contains(out, "dora") || strings.Contains(out, "app") || strings.Contains(out, "carol") {
		t.Fatalf("user list after refusals: %q %v", out, err)
	}
}
