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

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
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

// dialect words problems in the route's envelope, whose statusCode is the
// status: its code table is the kinds' own statuses. A refused
// require_role token is challenged as the token check says; any other 401
// with Bearer, the scheme require_role asks for (wrong body credentials
// get the same challenge, as every 401 must carry one).
type dialect struct{ s *Server }

// Interface guards.
var (
	_ httpx.Dialect       = dialect{}
	_ httpx.Challenger    = dialect{}
	_ httpx.ProblemLogger = dialect{}
)

func (d dialect) Answer(_ *http.Request, p *httpx.Problem) (int, any) {
	return p.Status, response{Success: false, StatusCode: p.Status, Message: p.Description}
}

func (d dialect) Challenge(h http.Header, status int, p *httpx.Problem) {
	var rf *tokenauth.Refusal
	switch {
	case errors.As(p.Err, &rf):
		d.s.Tokens.Challenge(h, rf)
	case status == http.StatusUnauthorized:
		httpx.Challenge(h, "Bearer", d.s.Realm)
	}
}

func (d dialect) LogProblem(r *http.Request, status int, p *httpx.Problem) {
	httpx.LogProblem(d.s.Log, "token refused", r, status, p, zap.String("route", "apimaker"), zap.Int("status", status))
}

// tokenProblem is the answer to a refused require_role token: a request
// without one, or with a malformed Authorization header, is told that the
// route needs a bearer token.
func tokenProblem(rf *tokenauth.Refusal) *httpx.Problem {
	if rf.NoToken() || rf.Status == http.StatusBadRequest {
		rf = &tokenauth.Refusal{Kind: httpx.KindNoToken, Status: http.StatusUnauthorized, Scheme: "Bearer",
			Description: "this route needs a bearer token", Err: httpx.ErrNoCredentials}
	}
	return rf.Problem()
}

// ServeHTTP answers POST requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if len(s.RequireRoles) > 0 {
		if _, rf := s.Tokens.WithRole(r, s.RequireRoles, []issuer.PrincipalKind{tokenauth.AnyKind}); rf != nil {
			httpx.WriteProblem(w, r, dialect{s}, tokenProblem(rf))
			return
		}
	}
	var req request
	if err := httpx.DecodeJSON(w, r, &req); err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.Classify(err))
		return
	}
	var p issuer.Principal
	var err error
	switch req.AuthTokenType {
	case "AM":
		if req.AM == nil || req.AM.U == "" || req.AM.P == "" {
			httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest("authTokenAM needs u and p"))
			return
		}
		var u issuer.User
		if u, err = s.Issuer.AuthenticateUser(r.Context(), req.AM.U, req.AM.P); err == nil {
			p = issuer.UserPrincipal(u)
		}
	case "AM_DB":
		d := req.AMDB
		if d == nil || d.U == "" || d.P == "" {
			httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest("authTokenAMDB needs instance, database, collection, usernameColumn, passwordColumn, u and p"))
			return
		}
		i := slices.IndexFunc(s.Tables, func(t *usertable.Table) bool {
			return t.Names(d.Instance, d.Database, d.Collection, d.UsernameColumn, d.PasswordColumn)
		})
		if i < 0 { // nothing that is not configured is ever queried
			httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest("no user table is configured with that instance, database, collection and columns"))
			return
		}
		var u issuer.User
		if u, err = s.Issuer.AuthenticateTableUser(r.Context(), s.Tables[i].Name(), d.U, d.P); err == nil {
			p = issuer.DirectoryPrincipal(s.Tables[i].Name(), u)
		}
	default:
		httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest(`authTokenType must be "AM" or "AM_DB"`))
		return
	}
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidCredentials, "invalid username or password"),
			"the server could not check the credentials"))
		return
	}
	toks, err := s.Issuer.Issue(r.Context(), issuer.Grant{Principal: p, Scope: strings.Join(p.Scopes, " "),
		Refresh: true, AccessTTL: s.AccessTTL})
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.Failure(err, "the server could not issue a token"))
		return
	}
	s.Log.Info("token issued", zap.String("route", "apimaker"), zap.String("grant", req.AuthTokenType),
		zap.String("sub", p.Subject), zap.String("jti", toks.Claims.ID))
	httpx.WriteJSON(w, http.StatusOK, response{Success: true, StatusCode: http.StatusOK,
		Data: &tokenData{Token: toks.AccessToken, RefreshToken: toks.RefreshToken, ExpiresIn: toks.ExpiresIn}})
}
