package problemtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCasesAreComplete holds Cases to issuer's source: every exported
// sentinel (var Err… = errors.New(…)) and every exported error type (a
// type with an Error method) has a case, so a new error of issuer fails
// here until it has a row and every dialect's table answers it.
func TestCasesAreComplete(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "issuer")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no source in %s: %v", dir, err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, path, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, sentinels(f)...)
		names = append(names, errorTypes(f)...)
	}
	if len(names) < 20 {
		t.Fatalf("found only %v in %s: is the parser looking at the right files?", names, dir)
	}
	var have []string
	for _, c := range Cases() {
		have = append(have, c.Name)
	}
	for _, n := range names {
		if !slices.Contains(have, n) {
			t.Errorf("issuer.%s has no row in problemtest.Cases", n)
		}
	}
}

// sentinels are f's exported package-level Err… variables made by
// errors.New.
func sentinels(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) || !name.IsExported() || !strings.HasPrefix(name.Name, "Err") {
					continue
				}
				if call, ok := vs.Values[i].(*ast.CallExpr); ok && isErrorsNew(call.Fun) {
					out = append(out, name.Name)
				}
			}
		}
	}
	return out
}

func isErrorsNew(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "errors" && sel.Sel.Name == "New"
}

// errorTypes are f's exported types with an Error() string method.
func errorTypes(f *ast.File) []string {
	var out []string
	for _, decl := range f.Decls {
		fd, ok := decl.(*ast.FuncDecl)
		if !ok || fd.Recv == nil || fd.Name.Name != "Error" || len(fd.Recv.List) != 1 {
			continue
		}
		typ := fd.Recv.List[0].Type
		if star, ok := typ.(*ast.StarExpr); ok {
			typ = star.X
		}
		if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
			out = append(out, id.Name)
		}
	}
	return out
}
