package dpop

import (
	"net/url"
	"strings"
)

// SameURL reports whether a proof's htu names the request URL reqURL,
// ignoring htu's query and fragment and comparing after the syntax- and
// scheme-based normalisation of RFC 3986 §6.2.2 and §6.2.3 (RFC 9449 §4.3):
// case of scheme and host, default ports, an empty path, percent-encoding.
func SameURL(htu, reqURL string) bool {
	a, ok := normalURL(htu)
	if !ok {
		return false
	}
	b, ok := normalURL(reqURL)
	return ok && a == b
}

// normalURL is scheme://host[:port]/path in normal form; false for what
// cannot be an http(s) htu (relative, userinfo, opaque).
func normalURL(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.User != nil || u.Opaque != "" || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	if (scheme == "http" && strings.HasSuffix(host, ":80")) || (scheme == "https" && strings.HasSuffix(host, ":443")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	path := normalPath(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}

// normalPath upper-cases percent-encodings and decodes those of unreserved
// characters, so /a%7eb, /a%7Eb and /a~b compare equal.
func normalPath(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			c := unhex(p[i+1])<<4 | unhex(p[i+2])
			if unreserved(c) {
				b.WriteByte(c)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(p[i+1 : i+3]))
			}
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
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

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
