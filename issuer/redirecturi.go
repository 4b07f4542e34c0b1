package issuer

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// CheckRedirectURI says why uri cannot be registered as a client's
// redirect (or post-logout redirect) URI, or nil. It must be absolute,
// https or, for a native app's loopback listener, http on a loopback host
// (RFC 8252 §7.3, §8.3); without a fragment (RFC 6749 §3.1.2); and without
// user info, which only ever serves to make one host look like another.
// Matching is exact (AllowsRedirect), so nothing else is normalised.
func CheckRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return fmt.Errorf("redirect URI %q: %w", uri, err)
	case !u.IsAbs() || u.Opaque != "" || u.Host == "":
		return fmt.Errorf("redirect URI %q must be absolute, such as https://app.example.com/callback", uri)
	case strings.Contains(uri, "#"):
		return fmt.Errorf("redirect URI %q must not have a fragment (#)", uri)
	case u.User != nil:
		return fmt.Errorf("redirect URI %q must not have user info (@)", uri)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("redirect URI %q: http is only for loopback hosts (localhost, 127.0.0.1, [::1]); use https", uri)
	}
	return fmt.Errorf("redirect URI %q: the scheme must be https (or http for a loopback host)", uri)
}

// isLoopback reports whether host names this machine: localhost, or a
// loopback IP.
func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
