package issuer

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strings"
	"unicode"
)

// GrantAuthorizationCode is the grant a client with redirect URIs redeems
// its codes with.
const GrantAuthorizationCode = "authorization_code"

// CheckBrowserClient says what is wrong with c's browser sign-in options,
// for the configuration and the CLI alike (each adds how to spell the
// fix): a public client has no secret and always uses PKCE; redirect and
// post-logout URIs pass CheckRedirectURI; post-logout URIs, optional PKCE
// and consent mean nothing without a redirect URI; and a client with
// redirect URIs whose grants are limited must include
// authorization_code, or its codes could never be redeemed.
func CheckBrowserClient(c Client) error {
	var errs []error
	if c.Public && c.SecretHash != "" {
		errs = append(errs, errors.New("a public client has no secret"))
	}
	if c.Public && c.PKCEOptional {
		errs = append(errs, errors.New("a public client always uses PKCE: it cannot make PKCE optional"))
	}
	for _, uri := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs) {
		if err := CheckRedirectURI(uri); err != nil {
			errs = append(errs, err)
		}
	}
	browser := len(c.RedirectURIs) > 0
	if !browser && (len(c.PostLogoutRedirectURIs) > 0 || c.PKCEOptional || c.Consent) {
		errs = append(errs, errors.New("post-logout redirect URIs, optional PKCE and consent are for browser sign-in: give the client a redirect URI"))
	}
	if browser && !c.AllowsGrant(GrantAuthorizationCode) {
		errs = append(errs, errors.New("it has redirect URIs but its grants leave out authorization_code, so its codes could never be redeemed: add it to the grants"))
	}
	return errors.Join(errs...)
}

// CheckProfile says what is wrong with u's email address and display
// name: the address is a bare one (alice@example.com, no display name
// around it), and the name holds no control character (a line break in a
// page or a claim).
func (u User) CheckProfile() error {
	var errs []error
	if u.Email != "" {
		if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
			errs = append(errs, fmt.Errorf("email %q must be a bare address, such as alice@example.com", u.Email))
		}
	}
	if strings.IndexFunc(u.DisplayName, unicode.IsControl) >= 0 {
		errs = append(errs, errors.New("the display name must not hold control characters (a line break, a tab)"))
	}
	return errors.Join(errs...)
}

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
