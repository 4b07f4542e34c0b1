// Package owin serves the OWIN-style /Token route (seed
// 001_ac69965c9501c752): a password grant answered with userName, userId,
// role, .issued and .expires, where every new token discards the user's
// earlier ones.
package owin

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// DefaultPath is where the route is mounted unless configured otherwise.
const DefaultPath = "/Token"

// Server serves the route.
type Server struct {
	Issuer    *issuer.Issuer
	Log       *zap.Logger
	AccessTTL time.Duration
	// Realm of the WWW-Authenticate challenges; "" is httpx.Realm.
	Realm string
}

type response struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	UserName    string `json:"userName"`
	UserID      string `json:"userId"`
	Role        string `json:"role"`
	Issued      string `json:".issued"`
	Expires     string `json:".expires"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, desc string) {
	if ce := s.Log.Check(httpx.RefusalLevel(status), "token refused"); ce != nil {
		ce.Write(zap.String("route", "owin"), zap.String("error", code), zap.String("reason", desc),
			zap.String("remote_ip", r.RemoteAddr))
	}
	if status == http.StatusUnauthorized {
		httpx.Challenge(w.Header(), "Basic", s.Realm)
	}
	httpx.WriteJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// serverError answers 500 server_error saying msg, or 503
// temporarily_unavailable (with Retry-After) when the store is unreachable.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error, msg string) {
	if httpx.StoreDown(w, err) {
		s.fail(w, r, http.StatusServiceUnavailable, "temporarily_unavailable", httpx.StoreUnavailableMessage)
		return
	}
	s.fail(w, r, http.StatusInternalServerError, "server_error", msg)
}

// ServeHTTP answers GET and POST requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The seed's own example sends a form body labelled application/json,
	// so the body decides: a JSON object, or else a form.
	body, err := httpx.ReadBody(w, r)
	if err != nil {
		s.fail(w, r, httpx.Status(err), "invalid_request", err.Error())
		return
	}
	var p map[string]string
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		p, err = httpx.JSONParams(trimmed)
	} else {
		p, err = httpx.FormParams(body)
	}
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	if p["grant_type"] != "password" {
		s.fail(w, r, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be password")
		return
	}
	clientID := ""
	// OWIN clients authenticate with Basic only; client_id in the body is ignored.
	if cc, err := httpx.ClientCredentials(r, p, httpx.FromBasic); err != nil {
		s.fail(w, r, httpx.Status(err), "invalid_client", err.Error())
		return
	} else if cc.Basic {
		c, err := s.Issuer.AuthenticateClient(r.Context(), cc.ID, cc.Secret)
		if status, code, desc, ok := httpx.SignInRefusal(w, err); ok {
			s.fail(w, r, status, code, desc)
			return
		}
		if err != nil && !errors.Is(err, issuer.ErrInvalidCredentials) {
			s.serverError(w, r, err, "the server could not check the client's credentials")
			return
		}
		if err != nil {
			s.fail(w, r, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		// As on /token: a client limited to other grants (an entity is
		// limited to client_credentials) may not use the password grant.
		if !c.AllowsGrant("password") {
			s.fail(w, r, http.StatusBadRequest, "unauthorized_client", "this client may not use the password grant")
			return
		}
		clientID = c.ID
	}
	if p["username"] == "" || p["password"] == "" {
		s.fail(w, r, http.StatusBadRequest, "invalid_request", "username and password are required")
		return
	}
	u, err := s.Issuer.AuthenticateUser(r.Context(), p["username"], p["password"])
	if status, code, desc, ok := httpx.SignInRefusal(w, err); ok {
		s.fail(w, r, status, code, desc)
		return
	}
	if errors.Is(err, issuer.ErrInvalidCredentials) {
		s.fail(w, r, http.StatusBadRequest, "invalid_grant", "The user name or password is incorrect.")
		return
	}
	if err != nil {
		s.Log.Error("authenticating user", zap.String("route", "owin"), zap.Error(err))
		s.serverError(w, r, err, "the server could not check the password")
		return
	}
	pr := issuer.UserPrincipal(u)
	// Exclusive: "every time you call the Token API … the platform issues
	// a new token and discards any existing tokens".
	toks, err := s.Issuer.Issue(r.Context(), issuer.Grant{Principal: pr, ClientID: clientID, Scope: strings.Join(pr.Scopes, " "),
		AccessTTL: s.AccessTTL, Exclusive: true})
	if err != nil {
		s.Log.Error("issuing token", zap.String("route", "owin"), zap.Error(err))
		s.serverError(w, r, err, "the server could not issue a token")
		return
	}
	s.Log.Info("token issued", zap.String("route", "owin"), zap.String("sub", pr.Subject), zap.String("jti", toks.Claims.ID))
	httpx.WriteJSON(w, http.StatusOK, response{
		AccessToken: toks.AccessToken, TokenType: "bearer", ExpiresIn: toks.ExpiresIn,
		UserName: u.Name, UserID: u.Subject(), Role: strings.Join(u.Roles, ","),
		Issued:  toks.Claims.IssuedAt.UTC().Format(http.TimeFormat),
		Expires: toks.Claims.ExpiresAt.UTC().Format(http.TimeFormat),
	})
}
