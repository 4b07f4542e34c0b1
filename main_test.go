package tokengate_test

import (
	"os"
	"testing"
)

// TestMain keeps Caddy's data directory (certificates, the generated
// master key) inside a temporary directory instead of the user's home.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokengate-test-data-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestGeneratedMasterKeyFile: with no master_key, the key that seals
// readable entity secrets is generated once into Caddy's data directory,
// readable only by its owner, and reused.
func TestGeneratedMasterKeyFile(t *testing.T) {
	g := startGateway(t, "entity aa-1")
	path := os.Getenv("XDG_DATA_HOME") + "/caddy/tokengate/master.key"
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("master.key mode %v, want 0600", fi.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	admin := g.adminToken()
	first := g.tsPost("/entity/secret/read", seedBody("aa-1", ""), admin).json["secret"]
	g2 := startGateway(t, "entity aa-1")
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("master.key was regenerated")
	}
	if first == nil || g2.tsPost("/entity/secret/read", seedBody("aa-1", ""), g2.adminToken()).json["secret"] == nil {
		t.Fatal("secrets not readable")
	}
}
