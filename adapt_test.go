package tokengate_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	tgcaddyfile "github.com/tokengate/caddy-tokengate/caddyfile"
	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
)

var update = flag.Bool("update", false, "rewrite the golden adapt files")

// TestCaddyfileAdapt adapts each testdata/adapt/*.caddyfile and compares the
// JSON with its golden .json file (go test -run Adapt -update rewrites them).
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/adapt/*.caddyfile")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden Caddyfiles: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			js, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, map[string]any{"filename": f})
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) > 0 {
				t.Fatalf("warnings: %v", warnings)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, js, "", "\t"); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := strings.TrimSuffix(f, ".caddyfile") + ".json"
			if *update {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Fatalf("adapted JSON differs from %s:\n%s", golden, pretty.String())
			}
		})
	}
}

func TestCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"unknown option", "bogus 1", "unrecognized tokengate option"},
		{"bad duration", "access_ttl soon", "access_ttl"},
		{"bad store", "store mysql x", "unknown driver"},
		{"require without values", "require /a role", "require"},
		{"require bad kind", "require /a group x", "require"},
		{"user without hash", "user alice", "user"},
		{"words before a list keyword", "user alice h admin", "unexpected"},
		{"issuing maybe", "issuing maybe", "on or off"},
		{"forward_header arity", "forward_header X-A", "forward_header"},
		{"user_table without driver", "user_table app {\n table t\n }", "driver"},
		{"user_table unknown option", "user_table app {\n driver sqlite\n color blue\n }", "unrecognized option"},
		{"user_table missing columns", "user_table app {\n driver sqlite\n dsn x.db\n table t\n }", "username_column"},
		{"endpoint unknown option", "endpoint owin {\n color blue\n }", "unrecognized option"},
		{"endpoint too many args", "endpoint owin /a /b", "endpoint"},
		{"entity without id", "entity", "entity"},
		{"token_service maybe", "token_service maybe", "on or off"},
		{"paths without lenient", "paths semicolon", "paths lenient"},
		{"paths lenient without names", "paths lenient", "paths lenient"},
		{"paths unknown relaxation", "paths lenient control", "unknown relaxation"},
		{"dpop argument", "dpop on", "wrong argument"},
		{"dpop unknown option", "dpop {\n color blue\n }", "dpop: unrecognized option"},
		{"dpop client without id", "dpop {\n client\n }", "wrong argument"},
		{"dpop bad window", "dpop {\n window soon\n }", "window"},
		{"require dpop with values", "require /a dpop x", "require"},
		{"throttle maybe", "throttle maybe", "throttle"},
		{"throttle unknown option", "throttle {\n color blue\n }", "unrecognized option"},
		{"hash_budget zero", "hash_budget 0", "hash_budget"},
		{"login argument", "login on", "login: want `login`"},
		{"login unknown option", "login {\n color blue\n }", "login: unrecognized option"},
		{"login bad duration", "login {\n session_ttl soon\n }", "session_ttl"},
		{"login title unquoted", "login {\n title Example Corp\n }", "quote a title"},
		{"login idle longer than absolute", "login {\n session_ttl 2d\n session_max_ttl 1d\n }", "longer than session_max_ttl"},
		{"user email without value", "user alice h email", "email: want one value"},
		{"user name twice", "user alice h name a name b", "name given twice"},
		{"client pkce without optional", "client spa public redirect_uri https://a.example/cb pkce required", "want pkce optional"},
		{"client words before a keyword", "client spa public https://a.example/cb", "unexpected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ":8080 {\n\ttokengate {\n\t\t" + tc.block + "\n\t}\n}\n"
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestExamplesAdapt keeps every runnable example valid.
func TestExamplesAdapt(t *testing.T) {
	files, _ := filepath.Glob("examples/*Caddyfile*")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	for _, f := range files {
		in, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(in, map[string]any{"filename": f}); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestThrottleGodocDefaults: the throttle block in package caddyfile's
// godoc parses, and the values it shows are the defaults in force.
func TestThrottleGodocDefaults(t *testing.T) {
	src, err := os.ReadFile("caddyfile/doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var block []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		body, _, _ := strings.Cut(strings.TrimPrefix(line, "//"), "#")
		switch {
		case strings.Contains(line, "throttle off | {"):
			in = true
			block = append(block, "throttle {")
		case in:
			block = append(block, body)
			if strings.TrimSpace(body) == "}" {
				in = false
			}
		}
	}
	if len(block) < 3 {
		t.Fatal("no throttle block in the godoc")
	}
	var g config.Gateway
	d := caddyfile.NewTestDispenser("tokengate {\n" + strings.Join(block, "\n") + "\n}")
	if err := tgcaddyfile.Parse(d, &g); err != nil {
		t.Fatalf("the godoc's throttle block: %v\n%s", err, strings.Join(block, "\n"))
	}
	th := g.Throttle
	got := throttle.Config{PerIP: th.PerIP, PerAccountIP: th.PerAccountIP, PerAccount: th.PerAccount,
		Base: time.Duration(th.Backoff), Max: time.Duration(th.MaxBackoff), AccountMax: time.Duration(th.AccountMaxBackoff),
		Forget: time.Duration(th.Forget), Trust: time.Duration(th.Trust), Entries: th.TableSize}
	if want := (throttle.Config{}).WithDefaults(); got != want {
		t.Fatalf("godoc shows %+v, defaults are %+v", got, want)
	}
}
