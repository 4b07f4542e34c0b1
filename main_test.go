package tokengate_test

import (
	"net"
	"os"
	"strconv"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"
)

// Ports of the in-process Caddy, free ones picked by TestMain so that
// test runs never meet on a fixed port; Caddyfiles read them as
// {$TOKENGATE_TEST_…} environment placeholders.
var (
	adminPort int
	base      string // http://localhost:<http port>
	base2     string // a second site, for tests that need two
)

// newTester returns a caddytest.Tester talking to this run's admin port.
func newTester(t *testing.T) *caddytest.Tester {
	return caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{AdminPort: adminPort})
}

// freePorts returns n distinct ports free on loopback right now.
func freePorts(n int) []int {
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// TestMain keeps Caddy's data directory (certificates, the generated
// master key) inside a temporary directory instead of the user's home.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokengate-test-data-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_DATA_HOME", dir)
	ports := freePorts(4)
	adminPort = ports[0]
	base = "http://localhost:" + strconv.Itoa(ports[1])
	os.Setenv("TOKENGATE_TEST_ADMIN_PORT", strconv.Itoa(ports[0]))
	os.Setenv("TOKENGATE_TEST_HTTP_PORT", strconv.Itoa(ports[1]))
	os.Setenv("TOKENGATE_TEST_HTTPS_PORT", strconv.Itoa(ports[2]))
	os.Setenv("TOKENGATE_TEST_SITE", base)
	base2 = "http://localhost:" + strconv.Itoa(ports[3])
	os.Setenv("TOKENGATE_TEST_SITE2", base2)
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
