package caddyfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parserOptions extracts, from the parser's source, every option name it
// accepts: the string cases of its switches and the keys of its option
// maps. Options added by anyone are found without editing this test.
func parserOptions(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SwitchStmt:
				// Only switches on the option being parsed (d.Val() or opt).
				if !isOptionSwitch(n) {
					return true
				}
				for _, stmt := range n.Body.List {
					for _, e := range stmt.(*ast.CaseClause).List {
						if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							v, _ := strconv.Unquote(lit.Value)
							seen[v] = true
						}
					}
				}
			case *ast.CompositeLit:
				// map[string]*string{"driver": &ut.Driver, …}
				if m, ok := n.Type.(*ast.MapType); ok && isIdent(m.Key, "string") {
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if lit, ok := kv.Key.(*ast.BasicLit); ok && lit.Kind == token.STRING {
								v, _ := strconv.Unquote(lit.Value)
								seen[v] = true
							}
						}
					}
				}
			}
			return true
		})
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// isOptionSwitch: `switch opt := d.Val(); opt`, `switch d.Val()`.
func isOptionSwitch(s *ast.SwitchStmt) bool {
	if call, ok := s.Tag.(*ast.CallExpr); ok {
		if sel, ok := call.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "Val" {
			return true
		}
	}
	if id, ok := s.Tag.(*ast.Ident); ok && id.Name == "opt" {
		return true
	}
	return false
}

// docOptions extracts the first word of every line of the syntax block in
// the package documentation.
func docOptions(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^//\t\t+([a-z_]+)\b`)
	seen := map[string]bool{}
	for _, m := range line.FindAllStringSubmatch(string(src), -1) {
		seen[m[1]] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestDocListsEveryOption(t *testing.T) {
	parsed, documented := parserOptions(t), docOptions(t)
	if len(parsed) < 20 {
		t.Fatalf("found only %d options in the parser: is the extraction broken? %v", len(parsed), parsed)
	}
	for _, o := range parsed {
		if !slices.Contains(documented, o) {
			t.Errorf("the parser accepts %q but the package documentation (doc.go) does not list it", o)
		}
	}
	for _, o := range documented {
		if !slices.Contains(parsed, o) {
			t.Errorf("doc.go lists %q but the parser does not accept it", o)
		}
	}
}

// TestGoldenAdaptCoversEveryOption: each option appears in at least one
// golden Caddyfile (../testdata/adapt), whose JSON the root package's
// TestCaddyfileAdapt checks.
func TestGoldenAdaptCoversEveryOption(t *testing.T) {
	files, _ := filepath.Glob("../testdata/adapt/*.caddyfile")
	if len(files) == 0 {
		t.Fatal("no golden Caddyfiles")
	}
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, o := range parserOptions(t) {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(o) + `(\s|$)`).MatchString(all.String()) {
			t.Errorf("no golden Caddyfile in testdata/adapt uses %q", o)
		}
	}
}
