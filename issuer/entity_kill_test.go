package issuer_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

const killKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func killIssuer(t *testing.T, path string) *issuer.Issuer {
	st, err := sqlstore.Open(context.Background(), "sqlite", path)
	must(t, err)
	sk, err := issuer.ParseMasterKey(killKey)
	must(t, err)
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{MasterKey: sk, SyncInterval: -1})
	must(t, err)
	t.Cleanup(func() { core.Close() })
	is, err := issuer.New(core, issuer.Config{Issuer: iss, Entities: []issuer.Entity{{ID: "aa-1"}}})
	must(t, err)
	return is
}

// TestHelperResetLoop is not a test: run by TestResetSurvivesKill as a child
// process, it resets a secret in a loop and prints each one, until killed.
func TestHelperResetLoop(t *testing.T) {
	path := os.Getenv("TOKENGATE_RESET_LOOP_DB")
	if path == "" {
		t.Skip("helper process only")
	}
	is := killIssuer(t, path)
	for {
		s, err := is.ResetSecret(context.Background(), "aa-1", time.Hour)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println(s.Secret)
	}
}

// TestResetSurvivesKill kills a process in the middle of resetting secrets
// and checks that the entity is left with exactly one working secret.
func TestResetSurvivesKill(t *testing.T) {
	for round := range 4 {
		path := filepath.Join(t.TempDir(), "tg.db")
		first, err := killIssuer(t, path).ReadSecret(context.Background(), "aa-1", time.Hour)
		must(t, err)
		cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperResetLoop$")
		cmd.Env = append(os.Environ(), "TOKENGATE_RESET_LOOP_DB="+path)
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		printed := []string{first.Secret}
		lines := bufio.NewScanner(out)
		// Let it get going, then kill it after a different number of resets
		// each round; where inside a reset the kill lands is up to the
		// scheduler, which is the point.
		for len(printed) < 5+round*7 && lines.Scan() {
			printed = append(printed, lines.Text())
		}
		must(t, cmd.Process.Kill())
		for lines.Scan() {
			printed = append(printed, lines.Text())
		}
		_ = cmd.Wait()

		is := killIssuer(t, path)
		cur, err := is.ReadSecret(context.Background(), "aa-1", time.Hour)
		must(t, err)
		if _, err := is.AuthenticateEntity(context.Background(), "aa-1", cur.Secret); err != nil {
			t.Fatalf("round %d: the current secret does not work after the kill: %v", round, err)
		}
		// It is the last secret the child reported, or one it committed
		// but was killed before printing; no older one works.
		last := printed[len(printed)-1]
		for _, old := range printed[:len(printed)-1] {
			if _, err := is.AuthenticateEntity(context.Background(), "aa-1", old); err == nil && old != cur.Secret {
				t.Fatalf("round %d: a superseded secret still works", round)
			}
		}
		if cur.Secret != last {
			if _, err := is.AuthenticateEntity(context.Background(), "aa-1", last); err == nil {
				t.Fatalf("round %d: two secrets work", round)
			}
		}
		t.Logf("round %d: killed after %d resets; current secret is the last printed: %v", round, len(printed)-1, cur.Secret == last)
	}
}
