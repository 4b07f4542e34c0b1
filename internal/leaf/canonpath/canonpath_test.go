package canonpath

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		in, canon, decoded string
	}{
		{"", "/", "/"},
		{"/", "/", "/"},
		{"/api/v1/orders", "/api/v1/orders", "/api/v1/orders"},
		{"/a/b/", "/a/b/", "/a/b/"},
		{"/.well-known/jwks.json", "/.well-known/jwks.json", "/.well-known/jwks.json"},
		{"//admin", "/admin", "/admin"},
		{"/a//b///c", "/a/b/c", "/a/b/c"},
		{"/public/../admin", "/admin", "/admin"},
		{"/a/./b", "/a/b", "/a/b"},
		{"/a/b/..", "/a/", "/a/"},
		{"/a/b/.", "/a/b/", "/a/b/"},
		{"/../../x", "/x", "/x"},
		{"/..", "/", "/"},
		{"/a//../b", "/b", "/b"}, // slashes merge before dot segments go
		{"/%61dmin/%7Eu", "/admin/~u", "/admin/~u"},
		{"/a%2bb/%40x", "/a%2Bb/%40x", "/a+b/@x"},
		{"/a+b/@x!$&'()*,=:", "/a+b/@x!$&'()*,=:", "/a+b/@x!$&'()*,=:"},
		{"/caf%c3%a9", "/caf%C3%A9", "/café"},
		{"/caf\xc3\xa9", "/caf%C3%A9", "/café"},
		{"/a b", "/a%20b", "/a b"},
		{"/a%20b/c", "/a%20b/c", "/a b/c"},
		{"/100%25", "/100%25", "/100%"},
		{"/%25zz", "/%25zz", "/%zz"},
		{`/q"<>^` + "`{|}", "/q%22%3C%3E%5E%60%7B%7C%7D", `/q"<>^` + "`{|}"},
		{"/ADMIN/x", "/ADMIN/x", "/ADMIN/x"},
	} {
		c, d, err := Canonical(tc.in, 0)
		if err != nil || c != tc.canon || d != tc.decoded {
			t.Errorf("Canonical(%q) = %q, %q, %v; want %q, %q", tc.in, c, d, err, tc.canon, tc.decoded)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	for _, tc := range []struct {
		in    string
		relax Relax // 0: cannot be relaxed
		// with the relaxation: the canonical form, or "" when another
		// refusal still applies
		lenient string
	}{
		{"/public/..;/admin/x", Semicolon, "/public/..;/admin/x"},
		{"/admin;x/users", Semicolon, "/admin;x/users"},
		{"/admin%3bx/users", Semicolon, "/admin%3Bx/users"},
		{`/admin\x`, Backslash, "/admin%5Cx"},
		{"/public/..%5cadmin/x", Backslash, "/public/..%5Cadmin/x"},
		{"/public/..%5Cadmin/x", Backslash, "/public/..%5Cadmin/x"},
		{"/public%2f..%2fadmin", EncodedSlash, "/public%2F..%2Fadmin"},
		{"/public/%2e%2e/admin", EncodedDot, "/admin"},
		{"/public/%2E./admin", EncodedDot, "/admin"},
		{"/a/%2e/b", EncodedDot, "/a/b"},
		{"/admin./x", TrailingDot, "/admin./x"},
		{"/admin../x", TrailingDot, "/admin../x"},
		{"/a/...", TrailingDot, "/a/..."},
		{"/admin%20/x", TrailingDot, "/admin%20/x"},
		{"/public/%252e%252e/admin", DoubleEncoding, "/public/%252e%252e/admin"},
		{"/public/%25%32%65", DoubleEncoding, "/public/%252e"},
		{"/x/%c0%ae%c0%ae/admin", InvalidUTF8, "/x/%C0%AE%C0%AE/admin"},
		{"/x/%ff", InvalidUTF8, "/x/%FF"},
		{"/x/\xff", InvalidUTF8, "/x/%FF"},
		{"/x/%ed%a0%80", InvalidUTF8, "/x/%ED%A0%80"},     // a UTF-16 surrogate
		{"/%ef%bc%8fadmin", Lookalike, "/%EF%BC%8Fadmin"}, // fullwidth solidus
		{"/public/%ef%bc%8e%ef%bc%8e", Lookalike, "/public/%EF%BC%8E%EF%BC%8E"},
		{"/adm%c4%b1n", Lookalike, "/adm%C4%B1n"},   // dotless i
		{"/%e2%84%aaey", Lookalike, "/%E2%84%AAey"}, // Kelvin sign
		{"/a%e2%88%95b", Lookalike, "/a%E2%88%95b"}, // division slash
		{"/x%00", 0, ""},
		{"/x\x00", 0, ""},
		{"/x%09y", 0, ""},
		{"/x\ty", 0, ""},
		{"/x%0d%0aHost:", 0, ""},
		{"/x%7f", 0, ""},
		{"/x%c2%85y", 0, ""}, // NEL
		{"/x\xc2\x9fy", 0, ""},
		{"/x%", 0, ""},
		{"/x%4", 0, ""},
		{"/x%zz", 0, ""},
		{"x", 0, ""},
		{"*", 0, ""},
	} {
		_, _, err := Canonical(tc.in, 0)
		var pe *Error
		if !errors.As(err, &pe) || pe.Relax != tc.relax {
			t.Errorf("Canonical(%q) = %v, want a refusal relaxable by %d", tc.in, err, tc.relax)
			continue
		}
		if tc.relax == 0 {
			if _, _, err := Canonical(tc.in, ^Relax(0)); err == nil {
				t.Errorf("Canonical(%q) accepted with every relaxation", tc.in)
			}
			continue
		}
		c, _, err := Canonical(tc.in, tc.relax)
		if tc.lenient == "" {
			if err == nil {
				t.Errorf("Canonical(%q, %d) = %q, want a refusal", tc.in, tc.relax, c)
			}
		} else if err != nil || c != tc.lenient {
			t.Errorf("Canonical(%q, %d) = %q, %v; want %q", tc.in, tc.relax, c, err, tc.lenient)
		}
		// Every other relaxation still refuses it.
		if _, _, err := Canonical(tc.in, ^tc.relax); err == nil {
			t.Errorf("Canonical(%q) accepted without relaxation %d", tc.in, tc.relax)
		}
	}
}

// TestCanonicalIsWhatGoSends checks that the pair (decoded, canonical) set
// as URL.Path and URL.RawPath makes net/url (and so reverse_proxy) send the
// canonical form exactly.
func TestCanonicalIsWhatGoSends(t *testing.T) {
	for _, in := range []string{"/a", "/a%2Bb/%40x", "/caf%c3%a9", "/a b", "/x!$&'()*+,=:@", "/100%25", "/q%22%3C"} {
		c, d, err := Canonical(in, 0)
		if err != nil {
			t.Fatal(err)
		}
		u := url.URL{Path: d, RawPath: c}
		if got := u.EscapedPath(); got != c {
			t.Errorf("%q: EscapedPath %q, want %q", in, got, c)
		}
	}
	c, d, _ := Canonical("/a%2fb", EncodedSlash)
	if u := (url.URL{Path: d, RawPath: c}); u.EscapedPath() != "/a%2Fb" {
		t.Errorf("encoded slash forwarded as %q", u.EscapedPath())
	}
}

func TestMatcher(t *testing.T) {
	sensitive, err := NewMatcher([]string{"/health", "/public/*", "*.css", "*/static/*", "/api/*/docs"}, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	folded, err := NewMatcher([]string{"/admin/*", "/Orders/*"}, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		m    *Matcher
		path string
		want bool
	}{
		{sensitive, "/health", true},
		{sensitive, "/HEALTH", false}, // allow rules never widen by case
		{sensitive, "/health/x", false},
		{sensitive, "/public/a/b", true},
		{sensitive, "/Public/a", false},
		{sensitive, "/x/site.css", true},
		{sensitive, "/a/static/b", true},
		{sensitive, "/api/v1/docs", true},
		{sensitive, "/api/v1/x/docs", false},
		{folded, "/admin/users", true},
		{folded, "/ADMIN/users", true}, // require rules never narrow by case
		{folded, "/AdMiN/x", true},
		{folded, "/orders/1", true},
		{folded, "/administrator", false},
		{nil, "/x", false},
	} {
		if got := tc.m.Match(tc.path); got != tc.want {
			t.Errorf("Match(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestMatcherRefusesPatternsThatNeverMatch(t *testing.T) {
	for _, p := range []string{"", "admin", "/a//b", "/public/../admin", "/admin./*", "/a;b", "/x;y/*", "/x%2Fy"} {
		if _, err := NewMatcher([]string{p}, false, 0); err == nil {
			t.Errorf("pattern %q accepted", p)
		}
	}
	for _, p := range []string{"*", "/api/v1.*", "/café/*", "/a b", "/100%", "/x/*/y", "/a+b@c"} {
		if _, err := NewMatcher([]string{p}, false, 0); err != nil {
			t.Errorf("pattern %q: %v", p, err)
		}
	}
	if _, err := NewMatcher([]string{"/a;b/*"}, false, Semicolon); err != nil {
		t.Errorf("a ; pattern with semicolons allowed: %v", err)
	}
}

func TestPlainPathDoesNotAllocate(t *testing.T) {
	m, _ := NewMatcher([]string{"/admin/*", "/orders/*"}, true, 0)
	allocs := testing.AllocsPerRun(100, func() {
		c, d, err := Canonical("/api/v1/orders/42/items.json", 0)
		if err != nil || c != d || m.Match(d) {
			panic("unexpected")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations for a plain path", allocs)
	}
}

func BenchmarkCanonical(b *testing.B) {
	for _, tc := range []struct{ name, path string }{
		{"plain", "/api/v1/orders/42/items.json"},
		{"escaped", "/api/v1/caf%C3%A9/%7Euser/a%2Bb"},
		{"dot-segments", "/public/../api//v1/./orders/42"},
		{"refused", "/public/..;/admin/x"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _, _ = Canonical(tc.path, 0)
			}
		})
	}
	b.Run("plain-match-folded", func(b *testing.B) {
		m, _ := NewMatcher([]string{"/admin/*", "/orders/*"}, true, 0)
		b.ReportAllocs()
		for b.Loop() {
			_, d, _ := Canonical("/api/v1/orders/42/items.json", 0)
			_ = m.Match(d)
		}
	})
}

// helper for other tests: every relaxation name resolves.
func TestNames(t *testing.T) {
	var all Relax
	for name, r := range Names {
		if r == 0 || all&r != 0 || strings.ToLower(name) != name {
			t.Errorf("relaxation %q = %d", name, r)
		}
		all |= r
	}
}

func TestWithoutParams(t *testing.T) {
	for in, want := range map[string]string{
		"/admin;x/users":           "/admin/users",
		"/public/..;/admin/x":      "/admin/x",
		"/public/..%3B/admin/x":    "/admin/x",
		"/app;jsessionid=1/x;v=2":  "/app/x",
		"/a;b":                     "/a",
		"/plain/path":              "/plain/path",
		"/public/x;/../../admin/y": "/admin/y",
	} {
		c, _, err := Canonical(in, Semicolon)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got, err := WithoutParams(c, Semicolon); err != nil || got != want {
			t.Errorf("WithoutParams(%q) = %q, %v; want %q", c, got, err, want)
		}
	}
}

// TestNormalizeEscapes: only RFC 3986's percent-encoding normalisation,
// nothing of Canonical's (no dot segments removed, nothing refused).
func TestNormalizeEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"/a~b":           "/a~b",
		"/a%7eb":         "/a~b",
		"/a%7Eb":         "/a~b",
		"/a%2eb":         "/a.b",
		"/a%2fb":         "/a%2Fb",
		"/%41%5a%30%2D_": "/AZ0-_",
		"/a%e2%82%ac":    "/a%E2%82%AC",
		"/a/../b%":       "/a/../b%",
		"/a%4":           "/a%4",
		"/a%zz":          "/a%zz",
	} {
		if got := NormalizeEscapes(in); got != want {
			t.Errorf("NormalizeEscapes(%q) = %q, want %q", in, got, want)
		}
	}
}
