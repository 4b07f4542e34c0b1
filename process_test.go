package tokengate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// These tests run real Caddy processes built from ./cmd/caddy, once per
// test binary run.

var caddyBinary struct {
	once sync.Once
	path string
	err  error
}

// buildCaddy builds ./cmd/caddy into the test run's temporary data
// directory (removed by TestMain) and returns its path.
func buildCaddy(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds Caddy and runs it as a process")
	}
	caddyBinary.once.Do(func() {
		dir, err := os.MkdirTemp(os.Getenv("XDG_DATA_HOME"), "bin-")
		if err != nil {
			caddyBinary.err = err
			return
		}
		caddyBinary.path = filepath.Join(dir, "caddy")
		out, err := exec.Command("go", "build", "-o", caddyBinary.path, "./cmd/caddy").CombinedOutput()
		if err != nil {
			caddyBinary.err = fmt.Errorf("go build ./cmd/caddy: %v\n%s", err, out)
		}
	})
	if caddyBinary.err != nil {
		t.Fatal(caddyBinary.err)
	}
	return caddyBinary.path
}

const processMasterKey = "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// caddyProc is one Caddy process serving a tokengate site on 127.0.0.1:port.
type caddyProc struct {
	t      *testing.T
	bin    string
	dir    string
	port   int
	cmd    *exec.Cmd
	exited chan struct{}
	client *http.Client
}

// startCaddy writes a Caddyfile whose site block holds the tokengate
// options in block, starts Caddy on it and waits until it answers.
func startCaddy(t *testing.T, bin, block string) *caddyProc {
	t.Helper()
	p := &caddyProc{t: t, bin: bin, dir: t.TempDir(), port: freePort(t),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}}
	cfg := fmt.Sprintf(`{
	admin off
	persist_config off
	log {
		level ERROR
	}
}
http://127.0.0.1:%d {
	tokengate {
		issuer http://gw.test
		master_key %s
		allow /health
		%s
	}
	respond "ok {http.auth.user.id}"
}
`, p.port, processMasterKey, block)
	if err := os.WriteFile(filepath.Join(p.dir, "Caddyfile"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *caddyProc) env() []string {
	return append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(p.dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(p.dir, "config"),
		"TOKENGATE_MASTER_KEY="+processMasterKey)
}

func (p *caddyProc) start() {
	p.t.Helper()
	logf, err := os.OpenFile(filepath.Join(p.dir, "caddy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin, "run", "--config", filepath.Join(p.dir, "Caddyfile"), "--adapter", "caddyfile")
	p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = p.env(), logf, logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(p.cmd, p.exited)
	// Ready when /health answers.
	waitfor.Until(p.t, "caddy to answer /health", 2*time.Minute, 20*time.Millisecond, func() bool {
		select {
		case <-p.exited:
			log, _ := os.ReadFile(filepath.Join(p.dir, "caddy.log"))
			p.t.Fatalf("caddy exited while starting:\n%s", log)
		default:
		}
		res, err := p.client.Get(p.url("/health"))
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	})
}

// kill ends the process with SIGKILL: no graceful shutdown.
func (p *caddyProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.client.CloseIdleConnections()
}

func (p *caddyProc) url(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", p.port, path)
}

// post sends a form (or a JSON body when body is a string) and decodes the
// JSON answer; err is a transport error.
func (p *caddyProc) post(path string, body any, headers ...string) (int, map[string]any, error) {
	var req *http.Request
	switch b := body.(type) {
	case url.Values:
		req, _ = http.NewRequest(http.MethodPost, p.url(path), strings.NewReader(b.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	case string:
		req, _ = http.NewRequest(http.MethodPost, p.url(path), strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := p.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return res.StatusCode, m, nil
}

func (p *caddyProc) mustPost(path string, body any, want int, headers ...string) map[string]any {
	p.t.Helper()
	status, m, err := p.post(path, body, headers...)
	if err != nil || status != want {
		p.t.Fatalf("POST %s on :%d: %d %v %v, want %d", path, p.port, status, m, err, want)
	}
	return m
}

func (p *caddyProc) getStatus(token string) int {
	p.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.url("/x"), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := p.client.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
}

func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestRefreshSurvivesSIGKILL: clients refresh in a loop (losing one
// response in five on purpose), Caddy is killed with SIGKILL in the middle,
// restarted on the same store, and every client continues with the last
// refresh token it holds: the exchange whose response died with the
// process is retried within the grace, nothing is revoked.
func TestRefreshSurvivesSIGKILL(t *testing.T) {
	bin := buildCaddy(t)
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tg.db")
		killMidRefresh(t, bin, "store sqlite "+path, func() (issuer.Store, error) {
			return sqlstore.Open(context.Background(), "sqlite", path)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Schema(t)
		killMidRefresh(t, bin, fmt.Sprintf("store postgres %q", dsn), func() (issuer.Store, error) {
			return sqlstore.Open(context.Background(), "postgres", dsn)
		})
	})
}

func killMidRefresh(t *testing.T, bin, store string, open func() (issuer.Store, error)) {
	const clients, before = 8, 400
	p := startCaddy(t, bin, store+"\n\t\tuser alice "+bcryptHash(t, "pw")+" roles r")
	rts := make([]string, clients)
	for i := range rts {
		m := p.mustPost("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"pw"}}, 200)
		rts[i] = m["refresh_token"].(string)
	}
	var done atomic.Int64
	enough := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var cut atomic.Int64 // clients whose request was in flight when Caddy died
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				status, m, err := p.post("/token", refreshForm(rts[i]))
				if err != nil { // the process is gone
					cut.Add(1)
					return
				}
				if status != 200 {
					t.Errorf("client %d refresh %d: %d %v", i, n, status, m)
					return
				}
				if n%5 != 4 { // else the response is "lost": the next request retries
					rts[i] = m["refresh_token"].(string)
				}
				if done.Add(1) == before {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(2 * time.Minute):
		t.Fatal("the clients did not refresh 400 times in 2 minutes")
	}
	p.kill()
	wg.Wait()
	if t.Failed() {
		return
	}
	// How many clients now hold a token whose exchange committed but whose
	// answer was lost with the process (they need the grace).
	st, err := open()
	if err != nil {
		t.Fatal(err)
	}
	consumed := 0
	for _, rt := range rts {
		rec, err := st.GetRefresh(context.Background(), issuer.RefreshKey(rt))
		if err != nil {
			t.Fatalf("a client's last refresh token is gone from the store: %v", err)
		}
		if !rec.UsedAt.IsZero() {
			consumed++
		}
	}
	st.Close()
	t.Logf("%d refreshes before SIGKILL; %d of %d clients cut mid-request, %d holding a token already exchanged", done.Load(), cut.Load(), clients, consumed)

	p.start()
	for i, rt := range rts {
		for n := range 3 {
			m := p.mustPost("/token", refreshForm(rt), 200)
			rt = m["refresh_token"].(string)
			if status := p.getStatus(m["access_token"].(string)); status != 200 {
				t.Fatalf("client %d after restart, refresh %d: access token answered %d", i, n, status)
			}
		}
	}
}

// TestEndSessionsAcrossInstances: two Caddy processes share one PostgreSQL
// store; `caddy tokengate revoke --sub` and `user passwd` end a subject's
// sessions on both: its refresh tokens are refused at once, its access
// tokens as soon as each guard has synchronised (polled with a deadline).
// Covered: a store user, a user_table user and an entity.
func TestEndSessionsAcrossInstances(t *testing.T) {
	bin := buildCaddy(t)
	dsn := pgtest.Schema(t)
	appDB := filepath.Join(t.TempDir(), "appdata.db")
	appTable(t, "sqlite", appDB)
	block := fmt.Sprintf(`store postgres %q
		user admin %s roles admin
		entity ent-1 roles member
		user_table app {
			driver sqlite
			dsn %s
			table members
			username_column email
			password_column password_hash
			id_column id
			roles_column role
		}
		endpoint apimaker`, dsn, bcryptHash(t, "admin-pw"), appDB)
	a := startCaddy(t, bin, block)
	b := startCaddy(t, bin, block)
	both := []*caddyProc{a, b}
	cli := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(append([]string{"tokengate"}, args...), "--store", "postgres:"+dsn)...)
		cmd.Env, cmd.Stdin = a.env(), strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("caddy tokengate %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	password := func(p *caddyProc, user, pw string) (at, rt string) {
		t.Helper()
		m := p.mustPost("/token", url.Values{"grant_type": {"password"}, "username": {user}, "password": {pw}}, 200)
		return m["access_token"].(string), m["refresh_token"].(string)
	}
	// live refreshes rt on one instance, then checks the new access token
	// passes both guards; it returns the new pair.
	live := func(rt string) (string, string) {
		t.Helper()
		m := b.mustPost("/token", refreshForm(rt), 200)
		at := m["access_token"].(string)
		for _, p := range both {
			if s := p.getStatus(at); s != 200 {
				t.Fatalf("live session refused on :%d: %d", p.port, s)
			}
		}
		return at, m["refresh_token"].(string)
	}
	ended := func(at, rt string) {
		t.Helper()
		for _, p := range both {
			if rt != "" {
				m := p.mustPost("/token", refreshForm(rt), 400)
				if m["error"] != "invalid_grant" {
					t.Fatalf("refresh of an ended session on :%d: %v", p.port, m)
				}
			}
		}
		for _, p := range both {
			if at == "" {
				break
			}
			waitfor.Until(t, fmt.Sprintf("the guard on :%d to refuse the ended session's access token", p.port),
				30*time.Second, 50*time.Millisecond, func() bool { return p.getStatus(at) == 401 })
		}
	}

	cli("bob-pw-1\n", "user", "add", "bob", "--password-stdin")
	t.Run("revoke --sub, store user", func(t *testing.T) {
		_, rt := password(a, "bob", "bob-pw-1")
		at, rt := live(rt)
		out := cli("", "revoke", "--sub", "bob")
		if !strings.Contains(out, "refresh tokens are refused") {
			t.Fatalf("revoke printed %q", out)
		}
		ended(at, rt)
		// A session begun afterwards works.
		_, rt = password(b, "bob", "bob-pw-1")
		live(rt)
	})
	t.Run("user passwd", func(t *testing.T) {
		_, rt := password(a, "bob", "bob-pw-1")
		at, rt := live(rt)
		_, keptRT := password(b, "bob", "bob-pw-1")
		cli("bob-pw-2\n", "user", "passwd", "bob", "--password-stdin", "--keep-sessions")
		_, keptRT = live(keptRT) // --keep-sessions keeps them
		cli("bob-pw-3\n", "user", "passwd", "bob", "--password-stdin")
		ended(at, rt)
		ended("", keptRT)
		if status, _, _ := a.post("/token", url.Values{"grant_type": {"password"}, "username": {"bob"}, "password": {"bob-pw-2"}}); status != 400 {
			t.Fatalf("old password: %d", status)
		}
		_, rt = password(b, "bob", "bob-pw-3")
		live(rt)
	})
	t.Run("revoke --sub, user_table user", func(t *testing.T) {
		m := a.mustPost(apimakerPath, amdb("app", "appdata", "members", "email", "password_hash", "carol@example.com", "app-pw"), 200)
		data := m["data"].(map[string]any)
		at, rt := live(data["refresh_token"].(string))
		cli("", "revoke", "--sub", "app:42") // <user_table name>:<the table's id column>
		ended(at, rt)
		ended(data["token"].(string), "")
	})
	t.Run("revoke --sub, entity", func(t *testing.T) {
		admin := a.mustPost("/user/token/generate", `{"username":"admin","password":"admin-pw"}`, 200)["accessToken"].(string)
		sec := a.mustPost("/entity/secret/read", seedBody("ent-1", ""), 200, "Authorization", "Bearer "+admin)["secret"].(string)
		at := b.mustPost("/entity/token/generate", `{"id":"ent-1","secret":"`+sec+`"}`, 200)["accessToken"].(string)
		for _, p := range both {
			if s := p.getStatus(at); s != 200 {
				t.Fatalf("entity token on :%d: %d", p.port, s)
			}
		}
		// Entities get no refresh token (client_credentials-like), so ending
		// their sessions is ending their access tokens.
		cli("", "revoke", "--sub", "ent-1")
		ended(at, "")
	})
}
