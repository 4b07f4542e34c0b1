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

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
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

// uncategorized is what every failure of the server says, as the seed's
// 500000 does.
const uncategorized = "Not categorized error"

// code is Eventhos's code table: each kind of problem's result code and
// status. Bad input gets the seed's catch-all code 500000 with HTTP 400:
// the code is Eventhos's, the status says whose fault it is. A kind no
// Eventhos request produces answers as a failure of the server.
func code(p *httpx.Problem) (int, int) {
	switch p.Kind {
	case httpx.KindInvalidRequest:
		return CodeUncategorized, p.Status // 400, or 413 for a body too large
	case httpx.KindUnsupportedGrant:
		return CodeUncategorized, http.StatusBadRequest
	case httpx.KindNotFound:
		return CodeNotFound, http.StatusBadRequest
	case httpx.KindInvalidClient, httpx.KindInvalidCredentials:
		return CodeWrongSecret, http.StatusBadRequest
	case httpx.KindUnauthorizedClient:
		return CodeNotAllowed, http.StatusBadRequest
	case httpx.KindThrottled:
		return CodeUncategorized, http.StatusTooManyRequests
	case httpx.KindBusy, httpx.KindUnavailable:
		return CodeUncategorized, http.StatusServiceUnavailable
	}
	return CodeUncategorized, http.StatusInternalServerError
}

// dialect words problems in the {code, message} envelope. Eventhos has no
// 401: wrong credentials are its 400001.
type dialect struct{ s *Server }

// Interface guards.
var (
	_ httpx.Dialect       = dialect{}
	_ httpx.ProblemLogger = dialect{}
)

func (d dialect) Answer(_ *http.Request, p *httpx.Problem) (int, any) {
	c, status := code(p)
	msg := p.Description
	if status == http.StatusInternalServerError {
		msg = uncategorized
	}
	return status, envelope{Code: c, Message: msg}
}

func (d dialect) LogProblem(r *http.Request, status int, p *httpx.Problem) {
	c, _ := code(p)
	httpx.LogProblem(d.s.Log, "token refused", r, status, p, zap.String("route", "eventhos"), zap.Int("code", c))
}

// ServeHTTP answers POST requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, err := httpx.Params(w, r)
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.Classify(err))
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
		httpx.WriteProblem(w, r, dialect{s}, httpx.New(httpx.KindUnsupportedGrant, "grant_type must be client_credentials or password"))
	}
}

func (s *Server) client(w http.ResponseWriter, r *http.Request, id, secret string) {
	if id == "" || secret == "" {
		httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest("client_id and client_secret are required"))
		return
	}
	ctx := r.Context()
	_, err := s.Issuer.LookupClient(ctx, id)
	if errors.Is(err, issuer.ErrNotFound) {
		_, err = s.Issuer.LookupEntity(ctx, id)
	}
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, lookupProblem(err, "Client not found"))
		return
	}
	c, err := s.Issuer.AuthenticateClient(ctx, id, secret)
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidClient, "Incorrect client secret"), uncategorized))
		return
	}
	if !c.AllowsGrant("client_credentials") {
		httpx.WriteProblem(w, r, dialect{s}, httpx.New(httpx.KindUnauthorizedClient, "Client can not generate this kind of token"))
		return
	}
	p := issuer.ClientPrincipal(c)
	s.issue(w, r, p, c.ID, "Token generated for client "+c.ID, map[string]any{
		"name": c.ID, "description": "", "client_id": c.ID, "identifier": c.ID, "roles": roles(p.Roles)})
}

func (s *Server) user(w http.ResponseWriter, r *http.Request, name, password string) {
	if name == "" || password == "" {
		httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest("username and password are required"))
		return
	}
	if _, err := s.Issuer.LookupUser(r.Context(), name); err != nil {
		httpx.WriteProblem(w, r, dialect{s}, lookupProblem(err, "User not found"))
		return
	}
	u, err := s.Issuer.AuthenticateUser(r.Context(), name, password)
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidCredentials, "Incorrect user password"), uncategorized))
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
		httpx.WriteProblem(w, r, dialect{s}, httpx.Failure(err, uncategorized))
		return
	}
	s.Log.Info("token issued", zap.String("route", "eventhos"), zap.String("sub", p.Subject), zap.String("jti", toks.Claims.ID))
	content["jwt_token"] = toks.AccessToken
	httpx.WriteJSON(w, http.StatusCreated, envelope{Code: CodeOK, Message: msg, Content: content})
}

// lookupProblem answers a failed lookup of the account a request names:
// one that does not exist is notFound (400004, which tells the caller, as
// the original API does), any other error a failure of the server.
func lookupProblem(err error, notFound string) *httpx.Problem {
	p := httpx.Classify(err).Or(uncategorized)
	if p.Kind == httpx.KindNotFound {
		p.Description = notFound
	}
	return p
}

// roles is never null in the answer.
func roles(r []string) []string {
	if r == nil {
		return []string{}
	}
	return r
}
