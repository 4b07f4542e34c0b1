// Package apimaker serves the API Maker "get token" route (seed
// 000_1b134b56452ca1c1): gateway users with authTokenType AM, application
// users of a configured SQL table with AM_DB.
package apimaker

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/internal/tokenauth"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/usertable"
)

// DefaultPath is where the route is mounted unless configured otherwise.
const DefaultPath = "/api/system-api/user-path/token"

// Server serves the route.
type Server struct {
	Issuer *issuer.Issuer
	Log    *zap.Logger
	// Realm of the WWW-Authenticate challenges; "" is httpx.Realm.
	Realm string
	// Tokens checks the require_role token (Bearer, or DPoP with a proof).
	Tokens *tokenauth.Checker
	// Tables are the user tables AM_DB requests may name.
	Tables []*usertable.Table
	// RequireRoles, when set, makes the route need a bearer token carrying
	// one of them, on a principal of any kind (the seed's authTokenInfo
	// setting); else it is public.
	RequireRoles []string
	// AccessTTL overrides the site's access_ttl for tokens from this route.
	AccessTTL time.Duration
}

type request struct {
	AuthTokenType string `json:"authTokenType"`
	AM            *struct {
		U string `json:"u"`
		P string `json:"p"`
	} `json:"authTokenAM"`
	AMDB *struct {
		Instance       string `json:"instance"`
		Database       string `json:"database"`
		Collection     string `json:"collection"`
		UsernameColumn string `json:"usernameColumn"`
		PasswordColumn string `json:"passwordColumn"`
		U              string `json:"u"`
		P              string `json:"p"`
	} `json:"authTokenAMDB"`
}

type tokenData struct {
	Token        string `json:"token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
}

type response struct {
	Success    bool       `json:"success"`
	StatusCode int        `json:"statusCode"`
	Data       *tokenData `json:"data,omitempty"`
	Message    string     `json:"message,omitempty"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status == http.StatusUnauthorized {
		// Bearer: the scheme require_role asks for; wrong body credentials
		// get the same challenge, as every 401 must carry one.
		httpx.Challenge(w.Header(), "Bearer", s.Realm)
	}
	s.write(w, r, status, msg)
}

// write logs a refusal and answers it in the route's envelope.
func (s *Server) write(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if ce := s.Log.Check(httpx.RefusalLevel(status), "token refused"); ce != nil {
		ce.Write(zap.String("route", "apimaker"), zap.Int("status", status), zap.String("reason", msg),
			zap.String("remote_ip", r.RemoteAddr))
	}
	httpx.WriteJSON(w, status, response{Success: false, StatusCode: status, Message: msg})
}

// refuseToken answers a refused require_role token in the route's
// envelope, with the challenge the refusal calls for.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, rf *tokenauth.Refusal) {
	msg := rf.Description
	if rf.NoToken() || rf.Status == http.StatusBadRequest {
		rf = &tokenauth.Refusal{Status: http.StatusUnauthorized, Scheme: "Bearer", Err: httpx.ErrNoCredentials}
		msg = "this route needs a bearer token"
	}
	s.Tokens.Challenge(w.Header(), rf)
	s.write(w, r, rf.Status, msg)
}

// serverError answers 500 saying msg, or 503 (with Retry-After) when err
// says the store could not be reached.
func (s *Server) serverError(w http.ResponseWriter, r *http.Request, err error, msg string) {
	if httpx.StoreDown(w, err) {
		s.fail(w, r, http.StatusServiceUnavailable, httpx.StoreUnavailableMessage)
		return
	}
	s.fail(w, r, http.StatusInternalServerError, msg)
}

// ServeHTTP answers POST requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.RequireRoles) > 0 {
		if _, rf := s.Tokens.WithRole(r, s.RequireRoles, []issuer.PrincipalKind{tokenauth.AnyKind}); rf != nil {
			s.refuseToken(w, r, rf)
			return
		}
	}
	var req request
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		s.fail(w, r, httpx.Status(err), err.Error())
		return
	}
	var p issuer.Principal
	var err error
	switch req.AuthTokenType {
	case "AM":
		if req.AM == nil || req.AM.U == "" || req.AM.P == "" {
			s.fail(w, r, http.StatusBadRequest, "authTokenAM needs u and p")
			return
		}
		var u issuer.User
		if u, err = s.Issuer.AuthenticateUser(r.Context(), req.AM.U, req.AM.P); err == nil {
			p = issuer.UserPrincipal(u)
		}
	case "AM_DB":
		d := req.AMDB
		if d == nil || d.U == "" || d.P == "" {
			s.fail(w, r, http.StatusBadRequest, "authTokenAMDB needs instance, database, collection, usernameColumn, passwordColumn, u and p")
			return
		}
		i := slices.IndexFunc(s.Tables, func(t *usertable.Table) bool {
			return t.Names(d.Instance, d.Database, d.Collection, d.UsernameColumn, d.PasswordColumn)
		})
		if i < 0 { // nothing that is not configured is ever queried
			s.fail(w, r, http.StatusBadRequest, "no user table is configured with that instance, database, collection and columns")
			return
		}
		var u issuer.User
		if u, err = s.Issuer.AuthenticateTableUser(r.Context(), s.Tables[i].Name(), d.U, d.P); err == nil {
			p = issuer.DirectoryPrincipal(s.Tables[i].Name(), u)
		}
	default:
		s.fail(w, r, http.StatusBadRequest, `authTokenType must be "AM" or "AM_DB"`)
		return
	}
	if status, _, desc, ok := httpx.SignInRefusal(w, err); ok {
		s.fail(w, r, status, desc)
		return
	}
	if errors.Is(err, issuer.ErrInvalidCredentials) {
		s.fail(w, r, http.StatusUnauthorized, "invalid username or password")
		return
	}
	if err != nil {
		s.Log.Error("authenticating", zap.String("route", "apimaker"), zap.Error(err))
		s.serverError(w, r, err, "the server could not check the credentials")
		return
	}
	toks, err := s.Issuer.Issue(r.Context(), issuer.Grant{Principal: p, Scope: strings.Join(p.Scopes, " "),
		Refresh: true, AccessTTL: s.AccessTTL})
	if err != nil {
		s.Log.Error("issuing token", zap.String("route", "apimaker"), zap.Error(err))
		s.serverError(w, r, err, "the server could not issue a token")
		return
	}
	s.Log.Info("token issued", zap.String("route", "apimaker"), zap.String("grant", req.AuthTokenType),
		zap.String("sub", p.Subject), zap.String("jti", toks.Claims.ID))
	httpx.WriteJSON(w, http.StatusOK, response{Success: true, StatusCode: http.StatusOK,
		Data: &tokenData{Token: toks.AccessToken, RefreshToken: toks.RefreshToken, ExpiresIn: toks.ExpiresIn}})
}
