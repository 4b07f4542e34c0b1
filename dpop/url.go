package dpop

import (
	"net/url"
	"strings"

	"github.com/tokengate/caddy-tokengate/internal/leaf/canonpath"
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
	path := canonpath.NormalizeEscapes(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}
