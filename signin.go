package tokengate

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/login"
)

// provisionLogin checks the login block and the browser sign-in options of
// users and clients, before anything is opened, and keeps the login block
// with its defaults filled in (h.login) for the login routes.
func (h *Handler) provisionLogin() error {
	if err := h.checkLogin(); err != nil {
		return err
	}
	if h.Login == nil {
		h.login, h.loginPages = nil, nil
		return nil
	}
	l := *h.Login
	if l.Title == "" {
		if u, err := url.Parse(h.iss); err == nil {
			l.Title = u.Hostname()
		}
	}
	l.SessionTTL = caddy.Duration(h.sessionTTL())
	l.SessionMaxTTL = caddy.Duration(h.sessionMaxTTL())
	h.login = &l
	return nil
}

// authorizePath is the oauth.Server's AuthorizePath: set when browser
// sign-in is on, which turns on grant_type authorization_code.
func (h *Handler) authorizePath() string {
	if h.Login == nil {
		return ""
	}
	return login.PathAuthorize
}

func (h *Handler) sessionTTL() time.Duration {
	if h.Login == nil {
		return issuer.DefaultSessionTTL
	}
	return durationOr(h.Login.SessionTTL, issuer.DefaultSessionTTL)
}

func (h *Handler) sessionMaxTTL() time.Duration {
	if h.Login == nil {
		return issuer.DefaultSessionMaxTTL
	}
	return durationOr(h.Login.SessionMaxTTL, issuer.DefaultSessionMaxTTL)
}

// checkLogin refuses a login block, user or client that browser sign-in
// could not honour. Each message names the option and the fix.
func (h *Handler) checkLogin() error {
	var errs []error
	if l := h.Login; l != nil {
		if h.DisableIssuing {
			errs = append(errs, errors.New("login: a site with `issuing off` signs nobody in: remove the login block or turn issuing on"))
		}
		if l.SessionTTL < 0 || l.SessionMaxTTL < 0 {
			errs = append(errs, errors.New("login: session_ttl and session_max_ttl must be positive"))
		}
		if idle, abs := h.sessionTTL(), h.sessionMaxTTL(); idle > abs {
			errs = append(errs, fmt.Errorf("login: session_ttl %v is longer than session_max_ttl %v (default %v): shorten it or raise session_max_ttl",
				idle, abs, issuer.DefaultSessionMaxTTL))
		}
		if l.Templates != "" {
			if fi, err := os.Stat(l.Templates); err != nil || !fi.IsDir() {
				errs = append(errs, fmt.Errorf("login: templates %q must be a directory of page templates: %v", l.Templates, dirProblem(fi, err)))
			} else if h.loginPages, err = login.LoadPages(l.Templates); err != nil {
				errs = append(errs, fmt.Errorf("login: templates %q: %w", l.Templates, err))
			}
		}
	}
	for _, u := range h.Users {
		if err := (issuer.User{Email: u.Email, DisplayName: u.DisplayName}).CheckProfile(); err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", u.Name, err))
		}
	}
	for _, c := range h.Clients {
		errs = append(errs, h.checkBrowserClient(c))
	}
	return errors.Join(errs...)
}

// checkBrowserClient checks a client's public, redirect_uri,
// post_logout_redirect_uri, pkce optional and consent options: redirect
// URIs need the login block, the rest is issuer.CheckBrowserClient's.
func (h *Handler) checkBrowserClient(c config.Client) error {
	var errs []error
	if len(c.RedirectURIs) > 0 && h.Login == nil {
		errs = append(errs, fmt.Errorf("client %s: redirect_uri is for browser sign-in, which is off: add a `login` block to the tokengate block", c.ID))
	}
	ic := issuer.Client{ID: c.ID, SecretHash: c.SecretHash, Grants: c.Grants, Public: c.Public, RedirectURIs: c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, PKCEOptional: c.PKCEOptional, Consent: c.Consent}
	if err := issuer.CheckBrowserClient(ic); err != nil {
		errs = append(errs, fmt.Errorf("client %s: %w", c.ID, err))
	}
	return errors.Join(errs...)
}

// dirProblem says why a templates path is no directory.
func dirProblem(fi os.FileInfo, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s is a file", fi.Name())
}
