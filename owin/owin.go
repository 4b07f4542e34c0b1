// Package owin serves the OWIN-style /Token route (seed
// 001_ac69965c9501c752): a password grant answered with userName, userId,
// role, .issued and .expires, where every new token discards the user's
// earlier ones.
package owin

import (
	"bytes"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
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

// code is the OWIN route's code table: each kind of problem's RFC 6749
// error code and status, as the OWIN middleware answers. A kind the route
// never produces answers as a failure of the server.
func code(p *httpx.Problem) (string, int) {
	switch p.Kind {
	case httpx.KindInvalidRequest:
		return "invalid_request", p.Status // 400, or 413 for a body too large
	case httpx.KindUnsupportedGrant:
		return "unsupported_grant_type", http.StatusBadRequest
	case httpx.KindInvalidClient:
		return "invalid_client", p.Status // 401, or 400 for a repeated Authorization header
	case httpx.KindUnauthorizedClient:
		return "unauthorized_client", http.StatusBadRequest
	case httpx.KindInvalidCredentials, httpx.KindInvalidGrant:
		return "invalid_grant", http.StatusBadRequest
	case httpx.KindThrottled:
		return "too_many_requests", http.StatusTooManyRequests
	case httpx.KindBusy, httpx.KindUnavailable:
		return "temporarily_unavailable", http.StatusServiceUnavailable
	}
	return "server_error", http.StatusInternalServerError
}

// dialect words problems as {error, error_description}; a 401 carries a
// Basic challenge, the scheme OWIN clients authenticate with.
type dialect struct{ s *Server }

// Interface guards.
var (
	_ httpx.Dialect       = dialect{}
	_ httpx.Challenger    = dialect{}
	_ httpx.ProblemLogger = dialect{}
)

func (d dialect) Answer(_ *http.Request, p *httpx.Problem) (int, any) {
	c, status := code(p)
	return status, httpx.ErrorBody{Code: c, Description: p.Description}
}

func (d dialect) Challenge(h http.Header, status int, _ *httpx.Problem) {
	if status == http.StatusUnauthorized {
		httpx.Challenge(h, "Basic", d.s.Realm)
	}
}

func (d dialect) LogProblem(r *http.Request, status int, p *httpx.Problem) {
	c, _ := code(p)
	httpx.LogProblem(d.s.Log, "token refused", r, status, p, zap.String("route", "owin"), zap.String("error", c))
}

// ServeHTTP answers GET and POST requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The seed's own example sends a form body labelled application/json,
	// so the body decides: a JSON object, or else a form.
	body, err := httpx.ReadBody(w, r)
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.Classify(err))
		return
	}
	var p map[string]string
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '{' {
		p, err = httpx.JSONParams(trimmed)
	} else {
		p, err = httpx.FormParams(body)
	}
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.Classify(err))
		return
	}
	if p["grant_type"] != "password" {
		httpx.WriteProblem(w, r, dialect{s}, httpx.New(httpx.KindUnsupportedGrant, "grant_type must be password"))
		return
	}
	clientID := ""
	// OWIN clients authenticate with Basic only; client_id in the body is ignored.
	if cc, err := httpx.ClientCredentials(r, p, httpx.FromBasic); err != nil {
		// Whatever is wrong with the Basic header is invalid_client here.
		prob := httpx.Classify(err)
		prob.Kind = httpx.KindInvalidClient
		httpx.WriteProblem(w, r, dialect{s}, prob)
		return
	} else if cc.Basic {
		c, err := s.Issuer.AuthenticateClient(r.Context(), cc.ID, cc.Secret)
		if err != nil {
			httpx.WriteProblem(w, r, dialect{s}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidClient, "client authentication failed"),
				"the server could not check the client's credentials"))
			return
		}
		// As on /token: a client limited to other grants (an entity is
		// limited to client_credentials) may not use the password grant.
		if !c.AllowsGrant("password") {
			httpx.WriteProblem(w, r, dialect{s}, httpx.New(httpx.KindUnauthorizedClient, "this client may not use the password grant"))
			return
		}
		clientID = c.ID
	}
	if p["username"] == "" || p["password"] == "" {
		httpx.WriteProblem(w, r, dialect{s}, httpx.BadRequest("username and password are required"))
		return
	}
	u, err := s.Issuer.AuthenticateUser(r.Context(), p["username"], p["password"])
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidCredentials, "The user name or password is incorrect."),
			"the server could not check the password"))
		return
	}
	pr := issuer.UserPrincipal(u)
	// Exclusive: "every time you call the Token API … the platform issues
	// a new token and discards any existing tokens".
	toks, err := s.Issuer.Issue(r.Context(), issuer.Grant{Principal: pr, ClientID: clientID, Scope: strings.Join(pr.Scopes, " "),
		AccessTTL: s.AccessTTL, Exclusive: true})
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s}, httpx.Failure(err, "the server could not issue a token"))
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
