// Package internal_test checks that each folder of internal/ imports only
// what its level may: a package's place says what it may depend on.
package internal_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/tokengate/caddy-tokengate/"

// levels: what the packages under each folder may import of the module.
//   - leaf: nothing of tokengate (throttle, canonpath, ... sit below issuer);
//   - gateway: issuer and below, what every route shares (httpx, tokenauth,
//     storeconf sit above issuer and below the wire packages);
//   - testkit: anything; only tests and other testkit packages import it.
var levels = map[string]func(imp string) bool{
	"leaf": func(string) bool { return false },
	"gateway": func(imp string) bool {
		for _, ok := range []string{"issuer", "dpop", "config", "internal/leaf", "internal/gateway"} {
			if imp == ok || strings.HasPrefix(imp, ok+"/") {
				return true
			}
		}
		return false
	},
	"testkit": func(string) bool { return true },
}

func TestLayering(t *testing.T) {
	for level, allowed := range levels {
		walkImports(t, level, func(file, imp string, test bool) {
			rel, ok := strings.CutPrefix(imp, module)
			if test && strings.HasPrefix(rel, "internal/testkit/") {
				return // tests may use the test kit
			}
			if ok && !allowed(rel) {
				t.Errorf("%s (internal/%s) imports %s, above its level", file, level, rel)
			}
		})
	}
	// testkit is for tests (and the developers' tools in cmd/ and
	// scripts/): no file of the gateway itself imports it.
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
			strings.Contains(filepath.ToSlash(path), "internal/testkit/") ||
			strings.HasPrefix(filepath.ToSlash(path), "../cmd/") || strings.HasPrefix(filepath.ToSlash(path), "../scripts/") {
			return err
		}
		for _, imp := range imports(t, path) {
			if strings.HasPrefix(imp, module+"internal/testkit/") {
				t.Errorf("%s imports %s outside a test", path, imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func walkImports(t *testing.T, dir string, f func(file, imp string, test bool)) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		for _, imp := range imports(t, path) {
			f(path, imp, strings.HasSuffix(path, "_test.go"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func imports(t *testing.T, path string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range f.Imports {
		imp, _ := strconv.Unquote(s.Path.Value)
		out = append(out, imp)
	}
	return out
}
