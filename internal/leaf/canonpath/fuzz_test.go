package canonpath

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzPatterns are rules the re-encoding property checks; patterns derived
// from each input are added.
var fuzzPatterns = []string{"/admin/*", "/public/*", "/health", "*.json", "*/x/*", "/api/*/docs"}

// FuzzCanonicalPath checks, for any escaped path: no panic; an accepted
// path is canonical (idempotent, no empty or dot segments, what net/url
// will send); and re-encoding an accepted path gives the same decoded path,
// matched the same way.
func FuzzCanonicalPath(f *testing.F) {
	f.Add("/public/..;/admin/x") // more seeds in testdata/fuzz/FuzzCanonicalPath
	f.Fuzz(func(t *testing.T, in string) {
		for _, lenient := range []Relax{0, ^Relax(0)} {
			c, d, err := Canonical(in, lenient)
			if err != nil {
				if c != "" || d != "" {
					t.Fatalf("refused %q but returned %q, %q", in, c, d)
				}
				continue
			}
			checkCanonical(t, in, c, d, lenient)
			if lenient == 0 {
				checkReencoded(t, c, d)
			}
			// The reading without ;params has none left, and is the
			// decoded path itself when there were none.
			alt, err := WithoutParams(c, lenient)
			if err == nil && strings.Contains(alt, ";") {
				t.Fatalf("%q: reading without params %q still has one", c, alt)
			}
			if !strings.Contains(d, ";") && (err != nil || alt != d) {
				t.Fatalf("%q has no params but reads as %q, %v", c, alt, err)
			}
		}
	})
}

func checkCanonical(t *testing.T, in, c, d string, lenient Relax) {
	t.Helper()
	if !strings.HasPrefix(c, "/") || strings.Contains(c, "//") {
		t.Fatalf("%q: canonical %q has an empty segment", in, c)
	}
	for seg := range strings.SplitSeq(c[1:], "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("%q: canonical %q has a dot segment", in, c)
		}
	}
	c2, d2, err := Canonical(c, lenient)
	if err != nil || c2 != c || d2 != d {
		t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, c, c2, err)
	}
	if u := (url.URL{Path: d, RawPath: c}); u.EscapedPath() != c {
		t.Fatalf("%q: net/url would send %q, not %q", in, u.EscapedPath(), c)
	}
	if lenient != 0 {
		return
	}
	if !utf8.ValidString(d) || strings.ContainsAny(d, ";\\") || hasLookalike([]byte(d)) || hasC1Control([]byte(d)) {
		t.Fatalf("%q: strict decoded path %q", in, d)
	}
	for i := 0; i < len(d); i++ {
		if d[i] < 0x20 || d[i] == 0x7f {
			t.Fatalf("%q: control byte in %q", in, d)
		}
	}
	for seg := range strings.SplitSeq(d[1:], "/") {
		if seg == "." || seg == ".." || strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ") {
			t.Fatalf("%q: decoded %q has an ambiguous segment %q", in, d, seg)
		}
	}
}

// checkReencoded re-encodes an accepted path two ways and expects the same
// decoded path (and the same rule decisions).
func checkReencoded(t *testing.T, c, d string) {
	t.Helper()
	segs := strings.Split(d[1:], "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	reenc := "/" + strings.Join(segs, "/")
	var allEsc strings.Builder // every letter and digit as a lower-case escape
	for i := 0; i < len(c); i++ {
		if isUnreserved(c[i]) && c[i] != '-' && c[i] != '_' && c[i] != '~' && (i < 2 || c[i-1] != '%' && c[i-2] != '%') {
			allEsc.WriteString(strings.ToLower(string(appendEscaped(nil, c[i]))))
			continue
		}
		allEsc.WriteByte(c[i])
	}
	patterns := fuzzPatterns
	if !strings.ContainsAny(d, `*?[\`) { // d itself is a valid pattern (no glob syntax)
		patterns = append([]string{d, d[:strings.LastIndexByte(d, '/')+1] + "*"}, fuzzPatterns...)
	}
	for _, fold := range []bool{false, true} {
		m, err := NewMatcher(patterns, fold, 0)
		if err != nil {
			t.Fatalf("patterns from %q: %v", d, err)
		}
		if len(patterns) > len(fuzzPatterns) && !m.Match(d) {
			t.Fatalf("%q does not match itself", d)
		}
		for _, r := range []string{reenc, allEsc.String()} {
			c2, d2, err := Canonical(r, 0)
			if err != nil || d2 != d {
				t.Fatalf("%q re-encoded as %q: %q, %v; want %q", c, r, d2, err, d)
			}
			if r == allEsc.String() && c2 != c {
				t.Fatalf("%q with unreserved characters escaped (%q) canonicalises to %q", c, r, c2)
			}
			if m.Match(d2) != m.Match(d) {
				t.Fatalf("%q and its re-encoding %q match differently", d, r)
			}
		}
	}
}
