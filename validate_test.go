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

// TestValidateWritesNothing: `caddy validate` provisions the config but
// must not create the store, generate a master key or a signing key.
// Sites name a host: the issuer is derived from it.
func TestValidateWritesNothing(t *testing.T) {
	data := t.TempDir()
	t.Setenv("XDG_DATA_HOME", data)
	db := filepath.Join(t.TempDir(), "sub", "tg.db")
	in := "http://localhost:0 {\n\ttokengate {\n\t\tstore sqlite " + db + "\n\t\tuser alice " + mustHash(t) + "\n\t}\n\trespond ok\n}\n"
	js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(db)); !os.IsNotExist(err) {
		t.Errorf("validate created the store directory: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(data, "caddy", "tokengate")); len(entries) > 0 {
		t.Errorf("validate wrote %d file(s) in the data directory, such as %s", len(entries), entries[0].Name())
	}
	// A configuration mistake is still caught without starting.
	bad := "http://localhost:0 {\n\ttokengate {\n\t\tstore sqlite " + db + "\n\t\tsigning_alg none\n\t}\n}\n"
	js, _, err = caddyconfig.GetAdapter("caddyfile").Adapt([]byte(bad), nil)
	if err == nil {
		var cfg caddy.Config
		if err := json.Unmarshal(js, &cfg); err != nil {
			t.Fatal(err)
		}
		err = caddy.Validate(&cfg)
	}
	if err == nil {
		t.Fatal("validate accepted signing_alg none")
	}
}

func mustHash(t *testing.T) string {
	u, _ := hashes()
	return u
}

// TestLoadRefusesWithTheFix: mistakes that would otherwise surface at the
// first login (or never) stop the load with a message naming the option
// and the fix.
func TestLoadRefusesWithTheFix(t *testing.T) {
	t.Setenv("TOKENGATE_TEST_UNSET", "")
	for _, tc := range []struct {
		name, block string
		want        []string
	}{
		{"plain-text password", "user alice hunter2", []string{"user alice", "plain text", "hash-password"}},
		{"plain-text client secret", "client billing s3cret", []string{"client billing", "plain text", "hash-password"}},
		{"empty DSN", "store postgres {env.TOKENGATE_TEST_UNSET}", []string{"store postgres", "empty", "environment variable"}},
		{"issuer without scheme", "issuer api.example.com", []string{"issuer", "scheme", "https://"}},
		{"empty master key", "master_key {env.TOKENGATE_TEST_UNSET}", []string{"master_key", "empty", "openssl rand -hex 32"}},
		{"short master key", "master_key abc", []string{"master_key", "openssl rand -hex 32"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := "http://localhost:0 {\n\ttokengate {\n\t\tstore sqlite " + filepath.Join(t.TempDir(), "tg.db") + "\n\t\t" + tc.block + "\n\t}\n}\n"
			js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
			if err == nil {
				var cfg caddy.Config
				if err := json.Unmarshal(js, &cfg); err != nil {
					t.Fatal(err)
				}
				err = caddy.Validate(&cfg)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("error %v, want it to mention %q", err, w)
				}
			}
		})
	}
}

// TestMalformedHashIsNamed: a hash cut short when pasted is refused at
// load as a malformed hash of that user or client, not as plain text.
func TestMalformedHashIsNamed(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"user alice $argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ", "user alice: the password hash is malformed"},
		{"client billing $2a$10$abc", "client billing: the secret hash is malformed"},
		{"user bob hunter2", "never in plain text"},
	} {
		in := "http://localhost:0 {\n\ttokengate {\n\t\tstore sqlite " + filepath.Join(t.TempDir(), "tg.db") + "\n\t\t" + tc.line + "\n\t}\n}\n"
		js, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
		if err != nil {
			t.Fatal(err)
		}
		var cfg caddy.Config
		if err := json.Unmarshal(js, &cfg); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to say %q", tc.line, err, tc.want)
		}
	}
}
