package config

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/dpop"
)

// fieldDocs returns the doc comment of every field of every struct type in
// config.go, keyed type.Field.
func fieldDocs(t *testing.T) map[string]string {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ast.Inspect(file, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, f := range st.Fields.List {
			for _, name := range f.Names {
				docs[ts.Name.Name+"."+name.Name] = strings.TrimSpace(f.Doc.Text() + f.Comment.Text())
			}
		}
		return false
	})
	return docs
}

// TestEveryFieldIsDocumented: the field comments are the JSON reference
// (the docs link to them), so every field has one.
func TestEveryFieldIsDocumented(t *testing.T) {
	docs := fieldDocs(t)
	if len(docs) < 60 {
		t.Fatalf("found only %d fields: is the parse broken?", len(docs))
	}
	for _, field := range slices.Sorted(maps.Keys(docs)) {
		if docs[field] == "" {
			t.Errorf("%s has no doc comment: say what it does and its default", field)
		}
	}
}

// TestDocumentedDefaults: defaults the comments quote are the code's.
func TestDocumentedDefaults(t *testing.T) {
	docs := fieldDocs(t)
	for _, tc := range []struct{ field, want string }{
		{"DPoP.Algs", "Default " + dpop.DefaultAlgs},
	} {
		if doc := strings.Join(strings.Fields(docs[tc.field]), " "); !strings.Contains(doc, tc.want) {
			t.Errorf("the comment of %s does not say %q:\n%s", tc.field, tc.want, docs[tc.field])
		}
	}
}
