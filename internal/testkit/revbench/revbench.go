// Package revbench measures how long a revocation made on one Caddy
// instance takes to be enforced by another instance on the same store:
// two real Caddy processes, a token revoked at A (POST /token/revoke), B
// polled until it answers 401. cmd/bench-revocation prints its figures;
// a test runs it briefly on both stores.
package revbench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// Result is what Run measured: one propagation delay per revocation.
type Result struct {
	Driver  string
	Latency []time.Duration // sorted
}

// Quantile returns the q-quantile (0..1) of the delays.
func (r Result) Quantile(q float64) time.Duration {
	return r.Latency[min(len(r.Latency)-1, int(q*float64(len(r.Latency))))]
}

func (r Result) String() string {
	round := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("%s: %d revocations, A->B propagation p50 %v p90 %v p99 %v max %v", r.Driver, len(r.Latency),
		round(r.Quantile(0.50)), round(r.Quantile(0.90)), round(r.Quantile(0.99)), round(r.Latency[len(r.Latency)-1]))
}

// Run starts two instances of caddyBin on one store (driver "sqlite": a
// new file; "postgres": a new schema in dsn) and measures n revocations:
// each revoked at A, which must refuse the token at once, and timed until
// B refuses it too.
func Run(caddyBin, driver, dsn string, n int) (Result, error) {
	res := Result{Driver: driver}
	err := run(caddyBin, driver, dsn, n, &res)
	return res, err
}

func run(caddyBin, driver, dsn string, n int, out *Result) error {
	work, err := os.MkdirTemp("", "bench-revocation-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	storeDSN := filepath.Join(work, "tg.db")
	if driver == "postgres" {
		var drop func()
		if storeDSN, drop, err = freshSchema(dsn); err != nil {
			return err
		}
		defer drop()
	}
	hash, err := issuer.HashPassword("bench-secret")
	if err != nil {
		return err
	}
	var urls []string
	for _, name := range []string{"a", "b"} {
		port, err := freePort()
		if err != nil {
			return err
		}
		cfg := fmt.Sprintf(`{
	admin off
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	tokengate {
		issuer http://bench.example
		store %s %q
		client bench %s
	}
	respond "ok"
}
`, port, driver, storeDSN, hash)
		path := filepath.Join(work, name+".Caddyfile")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return err
		}
		cmd := exec.Command(caddyBin, "run", "--config", path, "--adapter", "caddyfile")
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(work, "data"), "XDG_CONFIG_HOME="+filepath.Join(work, "config"))
		logf, err := os.Create(filepath.Join(work, name+".log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting caddy: %w", err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		u := fmt.Sprintf("http://127.0.0.1:%d", port)
		if err := waitUp(u); err != nil {
			log, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("instance %s: %w\n%s", name, err, log)
		}
		urls = append(urls, u)
	}
	a, b := urls[0], urls[1]
	client := &http.Client{Timeout: 5 * time.Second}
	var lat []time.Duration
	for i := 0; i < n; i++ {
		tok, err := token(client, a)
		if err != nil {
			return err
		}
		if err := until(client, b, tok, 200, 10*time.Second); err != nil {
			return fmt.Errorf("token %d never accepted at B: %w", i, err)
		}
		// Revocations arrive at random times, not in step with B's polling.
		time.Sleep(time.Duration(mrand.Int64N(int64(250 * time.Millisecond))))
		res, err := client.PostForm(a+"/token/revoke", url.Values{"token": {tok}})
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			return fmt.Errorf("revoke at A: %d", res.StatusCode)
		}
		start := time.Now() // A enforces it from here on
		if st, err := status(client, a, tok); err != nil || st != 401 {
			return fmt.Errorf("A still accepts the token it revoked: %d %v", st, err)
		}
		if err := until(client, b, tok, 401, 10*time.Second); err != nil {
			return fmt.Errorf("revocation %d never reached B: %w", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	out.Latency = lat
	return nil
}

// freshSchema creates a schema for this run and returns a DSN using it,
// and a function dropping it.
func freshSchema(dsn string) (string, func(), error) {
	if dsn == "" {
		return "", nil, fmt.Errorf("a PostgreSQL DSN (TOKENGATE_TEST_POSTGRES_DSN) is required for postgres")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("creating schema: %w", err)
	}
	drop := func() {
		_, _ = db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		db.Close()
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitUp(u string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get(u + "/.well-known/jwks.json"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
	}
	return fmt.Errorf("%s did not come up", u)
}

func token(c *http.Client, base string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bench", "bench-secret")
	res, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token at %s: %d %v", base, res.StatusCode, err)
	}
	return body.AccessToken, nil
}

func status(c *http.Client, base, tok string) (int, error) {
	req, _ := http.NewRequest(http.MethodGet, base+"/x", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// until polls base (every 0.5 ms) until it answers want for tok.
func until(c *http.Client, base, tok string, want int, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(500 * time.Microsecond) {
		st, err := status(c, base, tok)
		if err != nil {
			return err
		}
		if st == want {
			return nil
		}
	}
	return fmt.Errorf("no %d within %v", want, limit)
}
