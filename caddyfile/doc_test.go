package caddyfile

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/internal/leaf/canonpath"
	"github.com/tokengate/caddy-tokengate/issuer"
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

// spelling says where doc.go spells a JSON field: on a line of the block
// opened by option block ("" for the tokengate block itself) whose first
// word is option, holding the word token when set (an argument or keyword
// telling this field from the line's others).
type spelling struct{ block, option, token string }

// spellings maps every leaf of the JSON configuration (slice elements as
// []) to its Caddyfile spelling. A field added to config.Gateway without an
// entry here, or an entry whose spelling doc.go lacks, fails
// TestEveryJSONFieldHasASpelling.
var spellings = map[string]spelling{
	"issuer":                              {"", "issuer", ""},
	"audience":                            {"", "audience", ""},
	"store.driver":                        {"", "store", "sqlite"},
	"store.dsn":                           {"", "store", "<dsn>"},
	"master_key":                          {"", "master_key", ""},
	"signing_alg":                         {"", "signing_alg", ""},
	"key_rotation":                        {"", "key_rotation", ""},
	"access_ttl":                          {"", "access_ttl", ""},
	"refresh_ttl":                         {"", "refresh_ttl", ""},
	"refresh_grace":                       {"", "refresh_grace", "off"},
	"secret_ttl":                          {"", "secret_ttl", ""},
	"secret_grace":                        {"", "secret_grace", ""},
	"secret_max_ttl":                      {"", "secret_max_ttl", ""},
	"single_session":                      {"", "single_session", ""},
	"disable_issuing":                     {"", "issuing", "off"},
	"disable_token_service":               {"", "token_service", "off"},
	"realm":                               {"", "realm", ""},
	"users[].name":                        {"", "user", "<name>"},
	"users[].password_hash":               {"", "user", "<password-hash>"},
	"users[].roles":                       {"", "user", "roles"},
	"users[].scopes":                      {"", "user", "scopes"},
	"users[].email":                       {"", "user", "email"},
	"users[].display_name":                {"", "user", "name"},
	"clients[].id":                        {"", "client", "<id>"},
	"clients[].secret_hash":               {"", "client", "<secret-hash>"},
	"clients[].roles":                     {"", "client", "roles"},
	"clients[].scopes":                    {"", "client", "scopes"},
	"clients[].grants":                    {"", "client", "grants"},
	"clients[].public":                    {"", "client", "public"},
	"clients[].redirect_uris":             {"", "client", "redirect_uri"},
	"clients[].post_logout_redirect_uris": {"", "client", "post_logout_redirect_uri"},
	"clients[].pkce_optional":             {"", "client", "pkce"},
	"clients[].consent":                   {"", "client", "consent"},
	"login.session_ttl":                   {"login", "session_ttl", ""},
	"login.session_max_ttl":               {"login", "session_max_ttl", ""},
	"login.title":                         {"login", "title", ""},
	"login.templates":                     {"login", "templates", ""},
	"entities[].id":                       {"", "entity", "<id>"},
	"entities[].roles":                    {"", "entity", "roles"},
	"entity_admin_roles":                  {"", "entity_admin_role", ""},
	"entity_admin_kinds":                  {"", "entity_admin_kind", ""},
	"allow":                               {"", "allow", "<path>"},
	"require[].path":                      {"", "require", "<path>"},
	"require[].kind":                      {"", "require", "role"},
	"require[].values":                    {"", "require", "<value>"},
	"paths.lenient":                       {"", "paths", "lenient"},
	"forward_headers[].header":            {"", "forward_header", "<Header>"},
	"forward_headers[].claim":             {"", "forward_header", "<claim>"},
	"dpop.required":                       {"dpop", "required", ""},
	"dpop.clients":                        {"dpop", "client", ""},
	"dpop.nonce":                          {"dpop", "nonce", ""},
	"dpop.window":                         {"dpop", "window", ""},
	"dpop.algs":                           {"dpop", "algs", ""},
	"throttle.disabled":                   {"", "throttle", "off"},
	"throttle.per_ip":                     {"throttle", "per_ip", ""},
	"throttle.per_account_ip":             {"throttle", "per_account_ip", ""},
	"throttle.per_account":                {"throttle", "per_account", ""},
	"throttle.backoff":                    {"throttle", "backoff", ""}, // its first argument
	"throttle.max_backoff":                {"throttle", "backoff", ""}, // its second
	"throttle.account_max_backoff":        {"throttle", "account_max_backoff", ""},
	"throttle.forget":                     {"throttle", "forget", ""},
	"throttle.trust":                      {"throttle", "trust", ""},
	"throttle.table_size":                 {"throttle", "table_size", ""},
	"hash_concurrency":                    {"", "hash_budget", "<concurrency>"},
	"hash_queue":                          {"", "hash_budget", "<queue>"},
	"user_tables[].name":                  {"", "user_table", "<name>"},
	"user_tables[].driver":                {"user_table", "driver", ""},
	"user_tables[].dsn":                   {"user_table", "dsn", ""},
	"user_tables[].database":              {"user_table", "database", ""},
	"user_tables[].table":                 {"user_table", "table", ""},
	"user_tables[].username_column":       {"user_table", "username_column", ""},
	"user_tables[].password_column":       {"user_table", "password_column", ""},
	"user_tables[].id_column":             {"user_table", "id_column", ""},
	"user_tables[].roles_column":          {"user_table", "roles_column", ""},
	"endpoints[].name":                    {"", "endpoint", "apimaker"},
	"endpoints[].path":                    {"", "endpoint", "<path>"},
	"endpoints[].require_roles":           {"endpoint", "require_role", ""},
	"endpoints[].access_ttl":              {"endpoint", "access_ttl", ""},
}

// noSpelling lists JSON fields that only the JSON configuration can set,
// each with the reason. None today: every field has a Caddyfile spelling.
var noSpelling = map[string]string{}

// jsonLeaves returns the JSON path of every leaf field reachable from t:
// structs (and pointers to them) are walked, slices of structs as name[].
func jsonLeaves(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		ft := f.Type
		if f.Anonymous && name == "" {
			out = append(out, jsonLeaves(ft, prefix)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, jsonLeaves(ft.Elem(), path+"[].")...)
			continue
		}
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, jsonLeaves(ft, path+".")...)
			continue
		}
		out = append(out, path)
	}
	return out
}

// docLine is a line of doc.go's syntax block: the block it is in ("" for
// the tokengate block), its first word and the words before its comment.
type docLine struct {
	block, option string
	words         []string
}

// docLines reads doc.go's syntax block. Options of the tokengate block are
// indented two tabs, those of a nested block three.
func docLines(t *testing.T) []docLine {
	t.Helper()
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^//\t(\t+)(.*)$`)
	var out []docLine
	outer := ""
	for l := range strings.SplitSeq(string(src), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		code, _, _ := strings.Cut(m[2], "#")
		words := strings.FieldsFunc(code, func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("|[]{}", r) })
		for i, w := range words {
			words[i] = strings.TrimSuffix(strings.TrimSuffix(w, "..."), "…")
		}
		if len(words) == 0 {
			continue // a comment continued, or a closing brace
		}
		block := ""
		if len(m[1]) == 1 {
			outer = words[0]
		} else {
			block = outer
		}
		out = append(out, docLine{block: block, option: words[0], words: words})
	}
	return out
}

// TestEveryJSONFieldHasASpelling: every field of the JSON configuration
// has its Caddyfile spelling in doc.go (or a reason in noSpelling), and
// spellings names no field that is gone.
func TestEveryJSONFieldHasASpelling(t *testing.T) {
	leaves := jsonLeaves(reflect.TypeFor[config.Gateway](), "")
	if len(leaves) < 60 {
		t.Fatalf("found only %d JSON fields: is the walk broken? %v", len(leaves), leaves)
	}
	lines := docLines(t)
	for _, path := range leaves {
		t.Run(path, func(t *testing.T) {
			if why, ok := noSpelling[path]; ok {
				if why == "" {
					t.Fatal("noSpelling needs a reason")
				}
				return
			}
			sp, ok := spellings[path]
			if !ok {
				t.Fatalf("JSON field %q has no Caddyfile spelling: add the option to the parser and doc.go, "+
					"and an entry to spellings (or a reason to noSpelling)", path)
			}
			for _, l := range lines {
				if l.block == sp.block && l.option == sp.option && (sp.token == "" || slices.Contains(l.words[1:], sp.token)) {
					return
				}
			}
			where := "the tokengate block"
			if sp.block != "" {
				where = "the " + sp.block + " block"
			}
			t.Errorf("doc.go has no line %q (with %q) in %s, which sets JSON field %q", sp.option, sp.token, where, path)
		})
	}
	for path := range spellings {
		if !slices.Contains(leaves, path) {
			t.Errorf("spellings names %q, which is no field of config.Gateway", path)
		}
		if _, ok := noSpelling[path]; ok {
			t.Errorf("%q is in both spellings and noSpelling", path)
		}
	}
}

// TestDocListsEveryValue: the value lists doc.go quotes are the code's:
// the path relaxations, the claims forward_header sends, the list keywords
// of user, client and entity, and DPoP's default algorithms.
func TestDocListsEveryValue(t *testing.T) {
	src, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	words := strings.FieldsFunc(string(src), func(r rune) bool { return unicode.IsSpace(r) || strings.ContainsRune("|[]{}", r) })
	for _, tc := range []struct {
		what   string
		values []string
	}{
		{"paths lenient relaxation", canonpath.SortedNames()},
		{"forward_header claim", issuer.ClaimNames()},
		{"list keyword", []string{"roles", "scopes", "grants", "redirect_uri", "post_logout_redirect_uri"}},
		{"keyword", []string{"email", "name", "public", "pkce", "optional", "consent"}},
	} {
		for _, v := range tc.values {
			if !slices.Contains(words, v) {
				t.Errorf("doc.go does not name the %s %q", tc.what, v)
			}
		}
	}
	if want := "default " + dpop.DefaultAlgs; !strings.Contains(string(src), want) {
		t.Errorf("doc.go does not say %q (dpop.DefaultAlgs)", want)
	}
}

// TestConfigurationPageIndexesEveryOption: docs/configuration.md's
// "Options by task" names every option of the tokengate block (names
// only: their syntax stays here and their meaning in package config).
func TestConfigurationPageIndexesEveryOption(t *testing.T) {
	page, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	_, index, ok := strings.Cut(string(page), "## Options by task")
	if !ok {
		t.Fatal(`docs/configuration.md has no "Options by task" section`)
	}
	index, _, _ = strings.Cut(index, "\n## ")
	for _, l := range docLines(t) {
		if l.block == "" && !regexp.MustCompile("`"+regexp.QuoteMeta(l.option)+"[` ]").MatchString(index) {
			t.Errorf("docs/configuration.md's Options by task does not name %q", l.option)
		}
	}
}
