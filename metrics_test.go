package tokengate_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scrape returns the admin /metrics samples whose name starts with tokengate_.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(fmt.Sprintf("http://localhost:%d/metrics", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	out := map[string]float64{}
	line := regexp.MustCompile(`^(tokengate_[^{ ]+(?:\{[^}]*\})?) ([0-9.e+-]+)$`)
	for _, l := range strings.Split(string(body), "\n") {
		if m := line.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] = v
		}
	}
	return out
}

// TestMetricsAndAudit drives real traffic through Caddy, then reads the
// counters from the admin /metrics and the audit entries from the log.
func TestMetricsAndAudit(t *testing.T) {
	g := startGateway(t, "entity aa-1")
	at := g.passwordToken("alice")["access_token"].(string)
	viewer := g.passwordToken("bob")["access_token"].(string)
	_ = g.clientToken()
	if r := g.form("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}}); r.status != 400 {
		t.Fatalf("wrong password: %d", r.status)
	}
	g.get("/x", at)                                    // allowed
	g.get("/health", "")                               // allowed (allow path)
	g.get("/x", "")                                    // no_token
	g.get("/x", "not.a.token")                         // bad_token
	g.get("/admin/x", viewer)                          // forbidden
	g.form("/token/revoke", url.Values{"token": {at}}) // revocation
	g.get("/x", at)                                    // revoked
	admin := g.adminToken()
	g.tsPost("/entity/secret/reset", seedBody("aa-1", ""), admin)

	m := scrape(t)
	for name, min := range map[string]float64{
		`tokengate_tokens_issued_total{grant="password",route="/token"}`:           2,
		`tokengate_tokens_issued_total{grant="client_credentials",route="/token"}`: 1,
		`tokengate_login_failures_total{kind="user",route="/token"}`:               1,
		`tokengate_guard_decisions_total{outcome="allowed"}`:                       2,
		`tokengate_guard_decisions_total{outcome="no_token"}`:                      1,
		`tokengate_guard_decisions_total{outcome="bad_token"}`:                     1,
		`tokengate_guard_decisions_total{outcome="forbidden"}`:                     1,
		`tokengate_guard_decisions_total{outcome="revoked"}`:                       1,
		`tokengate_signing_keys{state="active"}`:                                   1,
		`tokengate_store_operation_seconds_count{op="INSERT tg_revocations"}`:      1,
		`tokengate_password_checks_in_flight`:                                      0,
		`tokengate_revocation_sync_lag_seconds`:                                    0,
		`tokengate_throttled_total`:                                                0,
		`tokengate_hash_budget_refused_total`:                                      0,
	} {
		v, ok := m[name]
		if !ok || v < min {
			t.Errorf("%s = %v (present %v), want >= %v", name, v, ok, min)
		}
	}

	// One audit entry per event, on the tokengate.audit logger, never a secret.
	f, err := os.Open(g.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) != nil || e["logger"] != "tokengate.audit" {
			continue
		}
		seen[e["msg"].(string)]++
		for _, secret := range []string{at, viewer, userPassword, clientSecret, "wrong", "tge_", "$argon2id$"} {
			if strings.Contains(sc.Text(), secret) {
				t.Errorf("audit entry holds a secret: %s", sc.Text())
			}
		}
	}
	for kind, n := range map[string]int{"issued": 4, "login_failed": 1, "revoked": 1, "secret_reset": 1} {
		if seen[kind] < n {
			t.Errorf("audit %s entries: %d, want >= %d (all: %v)", kind, seen[kind], n, seen)
		}
	}
}
