package canonpath

import (
	"fmt"
	"path"
	"strings"
)

// Matcher matches decoded canonical paths against patterns written as for
// Caddy's path matcher: "*" matches everything, "/p*" is a prefix, "*.x" a
// suffix, "*s*" a substring, any other pattern is an exact path or a
// path.Match glob. Unlike Caddy's matcher it does not clean the path (it is
// canonical already) and it is case-sensitive unless built to fold case.
type Matcher struct {
	patterns []pattern
	fold     bool
}

type pattern struct {
	kind byte // '*' all, 'p' prefix, 's' suffix, 'c' contains, '=' exact, 'g' glob
	s    string
}

// NewMatcher compiles patterns. With fold, matching ignores case (Unicode
// simple case mapping, as strings.ToLower does). A pattern whose fixed part
// is not a canonical path (it could never match one) is an error; lenient
// is the site's relaxations, which decide what is canonical.
func NewMatcher(patterns []string, fold bool, lenient Relax) (*Matcher, error) {
	m := &Matcher{fold: fold}
	for _, p := range patterns {
		if err := checkPattern(p, lenient); err != nil {
			return nil, err
		}
		if fold {
			p = strings.ToLower(p)
		}
		var pt pattern
		stars := strings.Count(p, "*")
		switch {
		case p == "*":
			pt = pattern{'*', ""}
		case stars == 2 && len(p) > 1 && p[0] == '*' && p[len(p)-1] == '*':
			pt = pattern{'c', p[1 : len(p)-1]}
		case stars == 1 && p[0] == '*':
			pt = pattern{'s', p[1:]}
		case stars == 1 && p[len(p)-1] == '*':
			pt = pattern{'p', p[:len(p)-1]}
		case !strings.ContainsAny(p, `*?[\`):
			pt = pattern{'=', p}
		default:
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("path pattern %q: %w", p, err)
			}
			pt = pattern{'g', p}
		}
		m.patterns = append(m.patterns, pt)
	}
	return m, nil
}

// checkPattern refuses a pattern whose complete segments before the first
// wildcard are not in canonical decoded form.
func checkPattern(p string, lenient Relax) error {
	if p == "" {
		return fmt.Errorf("empty path pattern")
	}
	if p[0] != '/' {
		if p[0] == '*' {
			return nil
		}
		return fmt.Errorf("path pattern %q must start with / or *", p)
	}
	fixed := p
	if i := strings.IndexAny(p, `*?[\`); i >= 0 {
		fixed = p[:strings.LastIndexByte(p[:i], '/')+1]
	}
	_, dec, err := Canonical(escapeForCheck(fixed), lenient)
	if err != nil {
		return fmt.Errorf("path pattern %q can never match: %w", p, err)
	}
	if dec != fixed {
		return fmt.Errorf("path pattern %q can never match a canonical path; write %q", p, dec+p[len(fixed):])
	}
	return nil
}

// escapeForCheck percent-encodes what a decoded pattern may hold but an
// escaped path may not hold raw (%, space, non-ASCII…), so that Canonical
// reads the pattern as the decoded text it is.
func escapeForCheck(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || class[c] == cOther {
			b.Write(appendEscaped(nil, c))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Match reports whether the decoded canonical path matches any pattern.
func (m *Matcher) Match(decoded string) bool {
	if m == nil {
		return false
	}
	if m.fold {
		decoded = strings.ToLower(decoded) // no allocation when already lower-case
	}
	for _, pt := range m.patterns {
		var ok bool
		switch pt.kind {
		case '*':
			ok = true
		case 'p':
			ok = strings.HasPrefix(decoded, pt.s)
		case 's':
			ok = strings.HasSuffix(decoded, pt.s)
		case 'c':
			ok = strings.Contains(decoded, pt.s)
		case '=':
			ok = decoded == pt.s
		case 'g':
			ok, _ = path.Match(pt.s, decoded)
		}
		if ok {
			return true
		}
	}
	return false
}
