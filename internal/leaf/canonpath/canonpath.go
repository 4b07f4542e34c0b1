// Package canonpath computes the one canonical form of a request path that
// tokengate both matches its rules against and forwards upstream, and
// refuses paths that servers are known to read differently.
//
// The canonical form of an escaped path (what the client sent, before any
// percent-decoding):
//   - percent-encoded unreserved characters (RFC 3986 §2.3: ALPHA DIGIT - _ ~)
//     are decoded; every other escape stays encoded, with upper-case hex;
//   - bytes that may not appear raw in a path (space, non-ASCII, " < > …) are
//     percent-encoded; sub-delimiters ! $ & ' ( ) * + , = : @ stay as sent,
//     raw or encoded, because RFC 3986 §6.2.2.2 says they are not equivalent;
//   - empty segments are dropped (// becomes /), then dot segments are
//     removed as RFC 3986 §5.2.4 does; a trailing slash is kept.
//
// Refused unless a relaxation allows it (see Relax): path parameters (;),
// backslashes, encoded slashes and dots, segments ending in a dot or a space,
// double encoding (%25 followed by two hex digits), invalid or overlong
// UTF-8, and non-ASCII characters that case-map or normalise to ASCII.
// Control characters (raw or encoded, C1 controls such as NEL included),
// malformed escapes and paths that do not
// start with / are always refused.
//
// The package has no Caddy imports.
package canonpath

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Relax is a set of refusals to lift, for upstreams that need such paths.
type Relax uint16

// The refusals that can be relaxed; Names gives their configuration names.
const (
	// Semicolon allows ; (raw or %3B). Tomcat, Jetty and Spring strip
	// ";params" from segments: /admin;x/users reaches them as /admin/users;
	// WithoutParams gives that reading so rules can judge it too.
	Semicolon Relax = 1 << iota
	// Backslash allows \ and %5C (forwarded as %5C). IIS and Windows
	// servers read them as /.
	Backslash
	// EncodedSlash allows %2F inside a segment (forwarded as %2F). Servers
	// that decode it before routing see extra segments, .. included.
	EncodedSlash
	// EncodedDot decodes %2E to a dot (RFC 3986 says they are equivalent)
	// before dot segments are removed, instead of refusing it.
	EncodedDot
	// TrailingDot allows segments that end in a dot or a space. Windows
	// servers drop them: /admin./x reaches them as /admin/x.
	TrailingDot
	// DoubleEncoding allows %25 followed by two hex digits. Servers that
	// decode twice read %252e as a dot.
	DoubleEncoding
	// InvalidUTF8 allows bytes that are not UTF-8 (Latin-1 paths, say).
	// Lax decoders read overlong forms such as %C0%AE as a dot.
	InvalidUTF8
	// Lookalike allows non-ASCII characters that case-map or normalise to
	// ASCII (fullwidth forms, the Kelvin sign, dotless i, slash and dot
	// look-alikes); Unicode-folding or best-fit servers read them as ASCII.
	Lookalike
)

// Names maps each relaxation's configuration name to its flag.
var Names = map[string]Relax{
	"semicolon":       Semicolon,
	"backslash":       Backslash,
	"encoded_slash":   EncodedSlash,
	"encoded_dot":     EncodedDot,
	"trailing_dot":    TrailingDot,
	"double_encoding": DoubleEncoding,
	"invalid_utf8":    InvalidUTF8,
	"lookalike":       Lookalike,
}

// Error says why a path was refused. Its text is safe to show a caller.
type Error struct {
	// Relax is the relaxation that would allow the path; 0 when none can.
	Relax Relax
	msg   string
}

func (e *Error) Error() string { return "path refused: " + e.msg }

var (
	errNoSlash     = &Error{msg: "it does not start with /"}
	errEscape      = &Error{msg: "it has a malformed percent-escape"}
	errControl     = &Error{msg: "it has a control character"}
	errSemicolon   = &Error{Semicolon, "it has a ; path parameter"}
	errBackslash   = &Error{Backslash, `it has a backslash (\ or %5C)`}
	errSlash       = &Error{EncodedSlash, "it has an encoded slash (%2F)"}
	errDot         = &Error{EncodedDot, "it has an encoded dot (%2E)"}
	errTrailingDot = &Error{TrailingDot, "a segment ends in a dot or a space"}
	errDouble      = &Error{DoubleEncoding, "it is double-encoded (%25 followed by hex digits)"}
	errUTF8        = &Error{InvalidUTF8, "it is not valid UTF-8 (overlong or invalid encoding)"}
	errLookalike   = &Error{Lookalike, "it has a non-ASCII look-alike of an ASCII character"}
)

// class of each ASCII byte as it appears raw in an escaped path.
const (
	cOther     = iota // must be percent-encoded in the canonical form
	cSafe             // unreserved or a sub-delimiter kept raw: no work
	cDot              // '.'
	cSlash            // '/'
	cPercent          // '%'
	cSemi             // ';'
	cBackslash        // '\\'
	cControl          // 0x00-0x1F, 0x7F
)

var class = func() (t [256]uint8) {
	for c := range 256 {
		switch {
		case c < 0x20 || c == 0x7f:
			t[c] = cControl
		case c >= 0x80:
			t[c] = cOther
		case isUnreserved(byte(c)) || strings.IndexByte("!$&'()*+,=:@", byte(c)) >= 0:
			t[c] = cSafe
		}
	}
	t['.'], t['/'], t['%'], t[';'], t['\\'] = cDot, cSlash, cPercent, cSemi, cBackslash
	return t
}()

// isUnreserved reports RFC 3986 unreserved characters other than '.', which
// has its own rules here.
func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '~'
}

// Canonical returns the canonical escaped path (what is forwarded as the
// request's raw path) and its decoding (what rules match), or an *Error.
// A path made only of safe characters that needs no change is returned as
// is, without allocating.
func Canonical(escaped string, lenient Relax) (canon, decoded string, err error) {
	if escaped == "" {
		return "/", "/", nil
	}
	if escaped[0] != '/' {
		return "", "", errNoSlash
	}
	if plain(escaped) {
		return escaped, escaped, nil
	}
	return slow(escaped, lenient)
}

// plain reports a path that is already canonical and needs no checks
// beyond this scan: only safe bytes, no empty or dot segments, no segment
// ending in a dot.
func plain(p string) bool {
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			switch class[p[i]] {
			case cSafe, cDot:
				continue
			case cSlash:
			default:
				return false
			}
		}
		seg := p[segStart:i]
		if seg == "" {
			if i < len(p) { // an empty segment in the middle: //
				return false
			}
		} else if seg[len(seg)-1] == '.' { // ".", ".." or "name."
			return false
		}
		segStart = i + 1
	}
	return true
}

func slow(p string, lenient Relax) (string, string, error) {
	// Each segment is canonicalised into buf and checked whole, before dot
	// segments can remove it; segs records where each kept segment starts,
	// so ".." can drop the last one.
	buf := make([]byte, 0, len(p)+8)
	var segs []int
	var scratch []byte // a segment's decoding, for the UTF-8 checks
	trailingSlash := false
	for i := 0; i < len(p); {
		// p[i] == '/': start a segment.
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		start := len(buf)
		buf = append(buf, '/')
		var err error
		var nonASCII bool
		if buf, nonASCII, err = appendSegment(buf, p[i+1:j], lenient); err != nil {
			return "", "", err
		}
		seg := buf[start+1:]
		if lenient&DoubleEncoding == 0 && doubleEncoded(string(seg)) {
			return "", "", errDouble
		}
		if nonASCII {
			scratch = appendUnescaped(scratch[:0], seg)
			if lenient&InvalidUTF8 == 0 && !utf8.Valid(scratch) {
				return "", "", errUTF8
			}
			if hasC1Control(scratch) {
				return "", "", errControl
			}
			if lenient&Lookalike == 0 && hasLookalike(scratch) {
				return "", "", errLookalike
			}
		}
		switch {
		case len(seg) == 0:
			buf = buf[:start] // "//" or a trailing "/": handled below
			trailingSlash = j == len(p)
		case string(seg) == ".": // compared without allocating
			buf = buf[:start]
			trailingSlash = true
		case string(seg) == "..":
			buf = buf[:start]
			if len(segs) > 0 {
				buf = buf[:segs[len(segs)-1]]
				segs = segs[:len(segs)-1]
			}
			trailingSlash = true
		default:
			if lenient&TrailingDot == 0 && (seg[len(seg)-1] == '.' || strings.HasSuffix(string(seg), "%20")) {
				return "", "", errTrailingDot
			}
			segs = append(segs, start)
			trailingSlash = false
		}
		i = j
	}
	if trailingSlash || len(buf) == 0 {
		buf = append(buf, '/')
	}
	canon := string(buf)
	decoded := canon
	if strings.IndexByte(canon, '%') >= 0 {
		decoded = string(appendUnescaped(scratch[:0], buf))
	}
	return canon, decoded, nil
}

// appendSegment appends the canonical form of one segment (without its
// slash) to buf, and reports whether it holds a byte >= 0x80.
func appendSegment(buf []byte, seg string, lenient Relax) ([]byte, bool, error) {
	nonASCII := false
	for k := 0; k < len(seg); k++ {
		c := seg[k]
		switch class[c] {
		case cSafe, cDot:
			buf = append(buf, c)
		case cSemi:
			if lenient&Semicolon == 0 {
				return nil, false, errSemicolon
			}
			buf = append(buf, c)
		case cBackslash:
			if lenient&Backslash == 0 {
				return nil, false, errBackslash
			}
			buf = appendEscaped(buf, c)
		case cControl:
			return nil, false, errControl
		case cPercent:
			if k+2 >= len(seg) || !isHex(seg[k+1]) || !isHex(seg[k+2]) {
				return nil, false, errEscape
			}
			d := unhex(seg[k+1])<<4 | unhex(seg[k+2])
			k += 2
			switch {
			case isUnreserved(d):
				buf = append(buf, d)
			case d == '.':
				if lenient&EncodedDot == 0 {
					return nil, false, errDot
				}
				buf = append(buf, d)
			case d == '/':
				if lenient&EncodedSlash == 0 {
					return nil, false, errSlash
				}
				buf = appendEscaped(buf, d)
			case d == '\\':
				if lenient&Backslash == 0 {
					return nil, false, errBackslash
				}
				buf = appendEscaped(buf, d)
			case d == ';':
				if lenient&Semicolon == 0 {
					return nil, false, errSemicolon
				}
				buf = appendEscaped(buf, d)
			case d < 0x20 || d == 0x7f:
				return nil, false, errControl
			default:
				nonASCII = nonASCII || d >= 0x80
				buf = appendEscaped(buf, d)
			}
		default: // cOther: raw bytes that must be encoded
			nonASCII = nonASCII || c >= 0x80
			buf = appendEscaped(buf, c)
		}
	}
	return buf, nonASCII, nil
}

const upperHex = "0123456789ABCDEF"

func appendEscaped(buf []byte, c byte) []byte {
	return append(buf, '%', upperHex[c>>4], upperHex[c&15])
}

// NormalizeEscapes is RFC 3986's percent-encoding normalisation (§6.2.2.1
// and §6.2.2.2) and nothing else: hex digits upper-cased, escapes of
// unreserved characters decoded, so /a%7eb, /a%7Eb and /a~b compare equal.
func NormalizeEscapes(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			if c := unhex(p[i+1])<<4 | unhex(p[i+2]); isUnreserved(c) || c == '.' {
				b = append(b, c)
			} else {
				b = appendEscaped(b, c)
			}
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return string(b)
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// doubleEncoded reports %25 followed by two hex digits in a canonical path.
func doubleEncoded(canon string) bool {
	for i := 0; ; {
		k := strings.Index(canon[i:], "%25")
		if k < 0 {
			return false
		}
		i += k + 3
		if i+1 < len(canon) && isHex(canon[i]) && isHex(canon[i+1]) {
			return true
		}
	}
}

// appendUnescaped appends the decoding of canonical bytes, whose escapes
// are all well formed.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			dst = append(dst, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		dst = append(dst, s[i])
	}
	return dst
}

// hasC1Control reports U+0080-U+009F (NEL among them), which some servers
// read as line breaks.
func hasC1Control(b []byte) bool {
	for _, r := range string(b) {
		if r >= 0x80 && r <= 0x9f {
			return true
		}
	}
	return false
}

// lookalikes are non-ASCII characters that read as / \ or . once
// normalised (NFKC) or best-fit mapped to ASCII.
var lookalikes = []rune{
	'\u2024', // one dot leader
	'\u2044', // fraction slash
	'\u2215', // division slash
	'\u2216', // set minus
	'\u29F5', // reverse solidus operator
	'\u29F8', // big solidus
	'\u29F9', // big reverse solidus
	'\uFE52', // small full stop
	'\uFE68', // small reverse solidus
}

// hasLookalike reports a non-ASCII character that case-maps, folds or
// normalises to ASCII: fullwidth forms (U+FF01-FF5E), characters such as the
// Kelvin sign (folds to k), dotless i (upper-cases to I) and long s
// (upper-cases to S), and the slash and dot look-alikes above.
func hasLookalike(b []byte) bool {
	for _, r := range string(b) { // no allocation: the compiler ranges over b
		if r < utf8.RuneSelf {
			continue
		}
		if r >= 0xFF01 && r <= 0xFF5E {
			return true
		}
		if unicode.ToUpper(r) < utf8.RuneSelf || unicode.ToLower(r) < utf8.RuneSelf {
			return true
		}
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < utf8.RuneSelf {
				return true
			}
		}
		for _, l := range lookalikes {
			if r == l {
				return true
			}
		}
	}
	return false
}

// SortedNames lists the relaxation names in a stable order, for messages.
func SortedNames() []string {
	return slices.Sorted(maps.Keys(Names))
}

// Parse turns relaxation names into a Relax set.
func Parse(names []string) (Relax, error) {
	var r Relax
	for _, n := range names {
		f, ok := Names[n]
		if !ok {
			return 0, fmt.Errorf("unknown path relaxation %q (want one of %s)", n, strings.Join(SortedNames(), ", "))
		}
		r |= f
	}
	return r, nil
}

// WithoutParams returns the decoded canonical path as a server that strips
// ";params" from segments (Tomcat, Jetty, Spring) reads canon: every ; or
// %3B and the rest of its segment removed, then dot segments resolved
// again (/public/..;/admin reads as /admin). canon must come from
// Canonical with the same lenient set.
func WithoutParams(canon string, lenient Relax) (string, error) {
	if !strings.Contains(canon, ";") && !strings.Contains(canon, "%3B") {
		_, d, err := Canonical(canon, lenient)
		return d, err
	}
	var b strings.Builder
	for i := 0; i < len(canon); i++ {
		if canon[i] == ';' || canon[i] == '%' && strings.HasPrefix(canon[i:], "%3B") {
			for i < len(canon) && canon[i] != '/' {
				i++
			}
			if i == len(canon) {
				break
			}
		}
		b.WriteByte(canon[i])
	}
	_, d, err := Canonical(b.String(), lenient)
	return d, err
}
