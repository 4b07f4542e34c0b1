package cli_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/tokengate/caddy-tokengate/internal/gateway/storeconf"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// TestMain keeps Caddy's data directory (the generated master key) in a
// temporary directory, and lets TestExitCodes run this binary as `caddy`.
func TestMain(m *testing.M) {
	if os.Getenv("TOKENGATE_TEST_RUN_CADDY") == "1" {
		caddycmd.Main() // os.Args[1:] is the command line
		return
	}
	dir, err := os.MkdirTemp("", "tokengate-cli-data-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	os.Unsetenv("TOKENGATE_MASTER_KEY")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// caddy runs `caddy args…` as a real process and returns its exit status.
func caddy(t *testing.T, stdin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "TOKENGATE_TEST_RUN_CADDY=1")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	store := "--store=sqlite:" + filepath.Join(dir, "tg.db")
	missing := "--store=sqlite:" + filepath.Join(dir, "missing.db")
	for _, tc := range []struct {
		args  []string
		stdin string
		want  int
	}{
		{[]string{"tokengate", "hash-password", "--password-stdin"}, "pw\n", 0},
		{[]string{"tokengate", "entity", "add", "e-1", store}, "", 0},
		{[]string{"tokengate", "entity", "list", store}, "", 0},
		{[]string{"tokengate", "user", "list", missing}, "", 1},
		{[]string{"tokengate", "user", "remove", "nobody", store}, "", 1},
		{[]string{"tokengate", "user", "list", "--no-such-flag", store}, "", 2},
		{[]string{"tokengate", "user", "add", store}, "", 2},
		{[]string{"tokengate", "revoke", store}, "", 2},
		{[]string{"tokengate", "keys", "rotate", "--alg=none", store}, "", 2},
		{[]string{"tokengate", "user", "list", "--store=mysql:x"}, "", 2},
	} {
		if got, out := caddy(t, tc.stdin, tc.args...); got != tc.want {
			t.Errorf("caddy %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), got, tc.want, out)
		}
	}
}

func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "sub", "tg.db")
	for _, args := range [][]string{{"user", "list"}, {"client", "list"}, {"entity", "list"}, {"keys", "list"}} {
		_, err := run(t, "", append(args, "--store=sqlite:"+db)...)
		if err == nil || !strings.Contains(err.Error(), "no tokengate store") {
			t.Errorf("%v on a missing store: %v", args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only command created %s: %v", db, err)
	}
	if _, err := os.Stat(storeconf.MasterKeyFile()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a read-only command created the master key: %v", err)
	}
}

func TestDeclaredPrincipalsAreNotShadowed(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tg.db")
	caddyfile := filepath.Join(dir, "Caddyfile")
	body := ":8080 {\n\ttokengate {\n\t\tstore sqlite " + db + "\n\t\tclient billing $2a$04$abcdefghijklmnopqrstuuB2hFMW8eTj1nL9w4sX3m1h8iQ5n6kRa\n" +
		"\t\tuser carol $2a$04$abcdefghijklmnopqrstuuB2hFMW8eTj1nL9w4sX3m1h8iQ5n6kRa\n\t\tentity aa-1\n\t}\n\trespond ok\n}\n"
	if err := os.WriteFile(caddyfile, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := "--config=" + caddyfile
	for _, args := range [][]string{{"client", "add", "billing"}, {"user", "add", "carol", "--password-stdin"}, {"entity", "add", "aa-1"}} {
		_, err := run(t, "pw\n", append(args, cfg)...)
		if err == nil || !strings.Contains(err.Error(), "is declared in the Caddyfile") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if out, err := run(t, "", "client", "add", "other", cfg); err != nil {
		t.Fatal(err, out)
	}
}

func TestJSONIsOneObjectPerLine(t *testing.T) {
	store := "--store=sqlite:" + filepath.Join(t.TempDir(), "tg.db")
	for _, id := range []string{"a", "b"} {
		out, err := run(t, "", "client", "add", id, "--json", store)
		if err != nil || strings.Count(out, "\n") != 1 {
			t.Fatalf("client add --json: %q %v", out, err)
		}
	}
	out, err := run(t, "", "client", "list", "--json", store)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var obj map[string]string
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ids = append(ids, obj["client_id"])
	}
	if strings.Join(ids, ",") != "a,b" {
		t.Fatalf("client list --json: %q", out)
	}
}

func TestRevokeUnknownJTI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	is := openIssuer(t, db)
	if err := is.Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	tok, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := is.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	typo := "A" + claims.ID[1:]
	if claims.ID[0] == 'A' {
		typo = "B" + claims.ID[1:]
	}
	if _, err := run(t, "", "revoke", "--jti", typo, store); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("revoke of an unknown jti: %v", err)
	}
	if out, err := run(t, "", "revoke", "--jti", claims.ID, store); err != nil {
		t.Fatal(err, out)
	}
}

// TestResealCommand moves a plain store to TOKENGATE_MASTER_KEY and then
// to another key, through the command.
func TestResealCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	if out, err := run(t, "", "entity", "add", "e-0", store); err != nil { // makes the store: keys rotate writes only to one that exists
		t.Fatal(err, out)
	}
	if _, err := run(t, "", "keys", "rotate", "--publish-ahead=1s", store); err != nil { // plain: no key yet (1s: the least keys rotate allows)
		t.Fatal(err)
	}
	k1, _ := issuer.NewMasterKeyString()
	k2, _ := issuer.NewMasterKeyString()
	t.Setenv("TOKENGATE_MASTER_KEY", k1)
	out, err := run(t, "", "reseal", "--json", store)
	if err != nil {
		t.Fatal(err, out)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["keys"] != 1.0 || res["were_plain"] != 1.0 {
		t.Fatalf("reseal: %q", out)
	}
	if out, err := run(t, "", "keys", "list", store); err != nil || !strings.Contains(out, "EdDSA  1") {
		t.Fatalf("keys list under k1: %q %v", out, err)
	}
	t.Setenv("OLD_KEY", k1)
	t.Setenv("TOKENGATE_MASTER_KEY", k2)
	if _, err := run(t, "", "keys", "list", store); err == nil || !strings.Contains(err.Error(), "caddy tokengate reseal") {
		t.Fatalf("keys list under another key: %v", err)
	}
	if out, err := run(t, "", "reseal", "--old-key-env=OLD_KEY", store); err != nil || !strings.Contains(out, "resealed 1 signing key") {
		t.Fatalf("reseal k1 -> k2: %q %v", out, err)
	}
	st, err := sqlstore.Open(context.Background(), "sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk2, _ := issuer.ParseMasterKey(k2)
	if fp, _ := issuer.StoredFingerprint(context.Background(), st); fp != mk2.Fingerprint() {
		t.Fatalf("fingerprint %s, want %s", fp, mk2.Fingerprint())
	}
}

// TestRelativeStorePath: a relative sqlite path names the file in the
// working directory, as Caddy resolves it.
func TestRelativeStorePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, err := run(t, "", "entity", "add", "e-1", "--store=sqlite:rel.db"); err != nil {
		t.Fatal(err)
	}
	if got := storeconf.ResolveDSN("sqlite", "rel.db"); got != filepath.Join(dir, "rel.db") {
		t.Fatalf("ResolveDSN = %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "rel.db")); err != nil {
		t.Fatal(err)
	}
}

// TestUsageMistakesNameThemselves: through the real binary, every usage
// mistake prints one plain line naming it (not a Caddy log line) and exits
// 2; other errors exit 1 in plain text too.
func TestUsageMistakesNameThemselves(t *testing.T) {
	store := "--store=sqlite:" + filepath.Join(t.TempDir(), "tg.db")
	if code, out := caddy(t, "", "tokengate", "entity", "add", "e-1", store); code != 0 {
		t.Fatalf("entity add: %d %s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want int
		says string
	}{
		{[]string{"tokengate", "keys", "rotate", "--algo", "ES256", store}, 2, "--algo"},
		{[]string{"tokengate", "user", "list", "--bogus", store}, 2, "--bogus"},
		{[]string{"tokengate", "nosuchcmd"}, 2, `unknown command "nosuchcmd"`},
		{[]string{"tokengate", "user", "lst"}, 2, `unknown command "lst"`},
		{[]string{"tokengate", "user"}, 2, "needs a subcommand: add, list, passwd, remove"},
		{[]string{"tokengate", "user", "add", store}, 2, "accepts 1 arg"},
		{[]string{"tokengate", "user", "remove", "nobody", store}, 1, "user nobody"},
		{[]string{"tokengate", "client", "add", "spa", "--public", "--redirect", "https://a.example/cb", store}, 2, "--redirect"},
		{[]string{"tokengate", "client", "add", "spa", "--public", "--redirect-uri", "http://a.example/cb", store}, 2, "loopback"},
		{[]string{"tokengate", "user", "add", "bob", "--email", "bob", store}, 2, "bare address"},
		{[]string{"tokengate", "consent"}, 2, "needs a subcommand: list, revoke"},
		{[]string{"tokengate", "consent", "list", store}, 2, "--user is required"},
		{[]string{"tokengate", "consent", "revoke", "--user", "alice", "--clinet", "x", store}, 2, "--clinet"},
		{[]string{"tokengate", "consent", "list", "--user", "nobody", store}, 1, "no user nobody"},
	} {
		code, out := caddy(t, "", tc.args...)
		if code != tc.want || !strings.Contains(out, tc.says) || !strings.HasPrefix(out, "Error: ") || strings.Contains(out, `"level"`) {
			t.Errorf("caddy %s: exit %d, %q; want exit %d and one plain line saying %q", strings.Join(tc.args, " "), code, out, tc.want, tc.says)
		}
	}
	if code, out := caddy(t, "", "tokengate", "user", "--help"); code != 0 || !strings.Contains(out, "passwd") {
		t.Errorf("--help: %d %s", code, out)
	}
}

// TestWritesToAMissingStoreFail: a write command against a store that does
// not exist (a typo in --store) fails and creates nothing; the add
// commands create a store.
func TestWritesToAMissingStoreFail(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo", "tg.db")
	for _, args := range [][]string{
		{"tokengate", "revoke", "--sub", "alice"},
		{"tokengate", "user", "passwd", "alice", "--password-stdin"},
		{"tokengate", "user", "remove", "alice"},
		{"tokengate", "client", "rotate", "billing"},
		{"tokengate", "keys", "rotate"},
	} {
		code, out := caddy(t, "pw\n", append(args, "--store=sqlite:"+typo)...)
		if code != 1 || !strings.Contains(out, "no tokengate store") {
			t.Errorf("%v on a missing store: exit %d %q", args, code, out)
		}
	}
	if _, err := os.Stat(filepath.Dir(typo)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a write to a missing store created %s: %v", typo, err)
	}
	if code, out := caddy(t, "pw\n", "tokengate", "user", "add", "alice", "--password-stdin", "--store=sqlite:"+typo); code != 0 {
		t.Fatalf("user add creates the store: %d %s", code, out)
	}
}

// TestRevokeNeedsNoMasterKey: in an incident an operator with only access
// to the store can end a subject's sessions; commands that touch sealed
// values still need the key.
func TestRevokeNeedsNoMasterKey(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tg.db")
	store := "--store=sqlite:" + db
	mk, _ := issuer.NewMasterKeyString()
	t.Setenv("TOKENGATE_MASTER_KEY", mk)
	if out, err := run(t, "", "entity", "add", "e-1", store); err != nil {
		t.Fatal(err, out)
	}
	if out, err := run(t, "", "keys", "rotate", store); err != nil { // a sealed private key
		t.Fatal(err, out)
	}
	os.Unsetenv("TOKENGATE_MASTER_KEY")
	if code, out := caddy(t, "", "tokengate", "revoke", "--sub", "alice", store); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke --sub without the master key: exit %d %s", code, out)
	}
	if code, out := caddy(t, "", "tokengate", "keys", "rotate", store); code != 1 || !strings.Contains(out, "master") {
		t.Fatalf("keys rotate without the master key: exit %d %s", code, out)
	}
}
