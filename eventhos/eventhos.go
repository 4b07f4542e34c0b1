// Package eventhos serves the Eventhos token route (seed
// 002_ff0738b17cdd1e28): client_credentials or password, form or JSON,
// answered with HTTP 201 and Eventhos's {code, message, content} envelope.
//
// As in the original API, code 400004 (not found) versus 400001 (wrong
// secret) tells a caller whether an account exists.
package eventhos

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// DefaultPath is where the route is mounted unless configured otherwise.
const DefaultPath = "/auth/token"

// Eventhos result codes.
const (
	CodeOK            = 200000
	CodeWrongSecret   = 400001 // incorrect client secret or user password
	CodeNotFound      = 400004 // client or user not found
	CodeNotAllowed    = 400011 // client can not generate this kind of token
	CodeUncategorized = 500000 // anything else
)

// Server serves the route.
type Server struct {
	Issuer    *issuer.Issuer
	Log       *zap.Logger
	AccessTTL time.Duration
}

type envelope struct {
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Content map[string]any `json:"content,omitempty"`
}

// fail answers an error. Bad input gets the seed's catch-all code 500000
// with HTTP 400: the code is Eventhos's, the status says whose fault it is.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status, code int, msg string) {
	if ce := s.Log.Check(httpx.RefusalLevel(status), "token refused"); ce != nil {
		ce.Write(zap.String("route", "eventhos"), zap.Int("code", code), zap.String("reason", msg),
			zap.String("remote_ip", r.RemoteAddr))
	}
	httpx.WriteJSON(w, status, envelope{Code: code, Message: msg})
}

// ServeHTTP answers POST requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := httpx.Params(w, r)
	if err != nil {
		s.fail(w, r, httpx.Status(err), CodeUncategorized, err.Error())
		return
	}
	switch p["grant_type"] {
	case "client_credentials":
		// Eventhos clients send their credentials in the body only.
		cc, _ := httpx.ClientCredentials(r, p, httpx.FromBody) // no error without FromBasic
		s.client(w, r, cc.ID, cc.Secret)
	case "password":
		s.user(w, r, p["username"], p["password"])
	default:
		s.fail(w, r, http.StatusBadRequest, CodeUncategorized, "grant_type must be client_credentials or password")
	}
}

func (s *Server) client(w http.ResponseWriter, r *http.Request, id, secret string) {
	if id == "" || secret == "" {
		s.fail(w, r, http.StatusBadRequest, CodeUncategorized, "client_id and client_secret are required")
		return
	}
	ctx := r.Context()
	_, err := s.Issuer.LookupClient(ctx, id)
	if errors.Is(err, issuer.ErrNotFound) {
		_, err = s.Issuer.LookupEntity(ctx, id)
	}
	if errors.Is(err, issuer.ErrNotFound) {
		s.fail(w, r, http.StatusBadRequest, CodeNotFound, "Client not found")
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	c, err := s.Issuer.AuthenticateClient(ctx, id, secret)
	if s.refused(w, r, err) {
		return
	}
	if errors.Is(err, issuer.ErrInvalidCredentials) {
		s.fail(w, r, http.StatusBadRequest, CodeWrongSecret, "Incorrect client secret")
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	if !c.AllowsGrant("client_credentials") {
		s.fail(w, r, http.StatusBadRequest, CodeNotAllowed, "Client can not generate this kind of token")
		return
	}
	p := issuer.ClientPrincipal(c)
	s.issue(w, r, p, c.ID, "Token generated for client "+c.ID, map[string]any{
		"name": c.ID, "description": "", "client_id": c.ID, "identifier": c.ID, "roles": roles(p.Roles)})
}

func (s *Server) user(w http.ResponseWriter, r *http.Request, name, password string) {
	if name == "" || password == "" {
		s.fail(w, r, http.StatusBadRequest, CodeUncategorized, "username and password are required")
		return
	}
	if _, err := s.Issuer.LookupUser(r.Context(), name); errors.Is(err, issuer.ErrNotFound) {
		s.fail(w, r, http.StatusBadRequest, CodeNotFound, "User not found")
		return
	} else if err != nil {
		s.serverError(w, r, err)
		return
	}
	u, err := s.Issuer.AuthenticateUser(r.Context(), name, password)
	if s.refused(w, r, err) {
		return
	}
	if errors.Is(err, issuer.ErrInvalidCredentials) {
		s.fail(w, r, http.StatusBadRequest, CodeWrongSecret, "Incorrect user password")
		return
	}
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	p := issuer.UserPrincipal(u)
	s.issue(w, r, p, "", "Token generated for user "+u.Name, map[string]any{
		"name": u.Name, "description": "", "user_id": u.Subject(), "username": u.Name, "roles": roles(p.Roles)})
}

func (s *Server) issue(w http.ResponseWriter, r *http.Request, p issuer.Principal, clientID, msg string, content map[string]any) {
	toks, err := s.Issuer.Issue(r.Context(), issuer.Grant{Principal: p, ClientID: clientID, Scope: strings.Join(p.Scopes, " "),
		AccessTTL: s.AccessTTL})
	if err != nil {
		s.serverError(w, r, err)
		return
	}
	s.Log.Info("token issued", zap.String("route", "eventhos"), zap.String("sub", p.Subject), zap.String("jti", toks.Claims.ID))
	content["jwt_token"] = toks.AccessToken
	httpx.WriteJSON(w, http.StatusCreated, envelope{Code: CodeOK, Message: msg, Content: content})
}

// refused answers a throttled (429) or busy (503) sign-in, with
// Retry-After, in the envelope with the catch-all code.
func (s *Server) refused(w http.ResponseWriter, r *http.Request, err error) bool {
	status, _, desc, ok := httpx.SignInRefusal(w, err)
	if ok {
		s.fail(w, r, status, CodeUncategorized, desc)
	}
	return ok
}

func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error) {
	s.Log.Error("eventhos route", zap.Error(err))
	if httpx.StoreDown(w, err) {
		s.fail(w, r, http.StatusServiceUnavailable, CodeUncategorized, httpx.StoreUnavailableMessage)
		return
	}
	s.fail(w, r, http.StatusInternalServerError, CodeUncategorized, "Not categorized error")
}

// roles is never null in the answer.
func roles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}
