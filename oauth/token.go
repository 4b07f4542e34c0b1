package oauth

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Grant types.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
)

// TokenResponse is RFC 6749 §5.1's success body.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	p, err := httpx.Params(w, r)
	if err != nil {
		httpx.WriteProblem(w, r, s.tokenDialect("", "", ""), httpx.Classify(err))
		return
	}
	grant := p["grant_type"]
	ca, prob := readClient(r, p)
	if prob == nil {
		ca.jkt, prob = s.dpopProof(w, r, ca.id)
	}
	if prob != nil {
		httpx.WriteProblem(w, r, s.tokenDialect(grant, ca.id, ""), prob)
		return
	}
	var toks issuer.Tokens
	var subject string
	switch grant {
	case "":
		prob = httpx.New(httpx.KindInvalidRequest, "grant_type is required")
	case GrantPassword:
		toks, subject, prob = s.passwordGrant(r, p, ca)
	case GrantClientCredentials:
		toks, subject, prob = s.clientCredentialsGrant(r, p, ca)
	case GrantRefreshToken:
		toks, subject, prob = s.refreshGrant(r, p, ca)
	default:
		prob = httpx.New(httpx.KindUnsupportedGrant, "grant_type must be password, client_credentials or refresh_token")
	}
	if prob != nil {
		httpx.WriteProblem(w, r, s.tokenDialect(grant, ca.id, subject), prob)
		return
	}
	if ce := s.Log.Check(zap.InfoLevel, "token issued"); ce != nil {
		ce.Write(zap.String("grant", grant), zap.String("sub", subject),
			zap.String("client_id", toks.Claims.ClientID), zap.String("scope", toks.Claims.Scope),
			zap.String("jti", toks.Claims.ID), zap.Bool("refresh_token", toks.RefreshToken != ""), zap.Bool("dpop", ca.jkt != ""))
	}
	httpx.WriteJSON(w, http.StatusOK, TokenResponse{AccessToken: toks.AccessToken, TokenType: tokenType(toks.Claims),
		ExpiresIn: toks.ExpiresIn, RefreshToken: toks.RefreshToken, Scope: toks.Claims.Scope})
}

// tokenDialect is the dialect of /token, whose refusals are logged with
// the grant and who asked.
func (s *Server) tokenDialect(grant, clientID, subject string) dialect {
	return dialect{s: s, fields: []zap.Field{zap.String("grant", grant), zap.String("sub", subject), zap.String("client_id", clientID)}}
}

// optionalClient authenticates the client if it sent credentials.
func (s *Server) optionalClient(r *http.Request, ca clientAuth, grant string) (string, *httpx.Problem) {
	if !ca.present {
		return "", nil
	}
	c, prob := s.authenticate(r.Context(), ca)
	if prob != nil {
		return "", prob
	}
	if !c.AllowsGrant(grant) {
		return "", httpx.New(httpx.KindUnauthorizedClient, "this client may not use the "+grant+" grant")
	}
	return c.ID, nil
}

func (s *Server) passwordGrant(r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *httpx.Problem) {
	clientID, prob := s.optionalClient(r, ca, GrantPassword)
	if prob != nil {
		return issuer.Tokens{}, "", prob
	}
	if p["username"] == "" || p["password"] == "" {
		return issuer.Tokens{}, "", httpx.New(httpx.KindInvalidRequest, "username and password are required")
	}
	u, err := s.Issuer.AuthenticateUser(r.Context(), p["username"], p["password"])
	if err != nil {
		return issuer.Tokens{}, p["username"], httpx.SignInProblem(err, httpx.New(httpx.KindInvalidCredentials, "invalid username or password"),
			"the server could not check the password")
	}
	scope, ok := issuer.GrantScope(p["scope"], u.Scopes)
	if !ok {
		return issuer.Tokens{}, u.Subject(), httpx.New(httpx.KindInvalidScope, "requested scope is not allowed for this user")
	}
	// A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
	return s.issue(r, issuer.Grant{Principal: issuer.UserPrincipal(u), ClientID: clientID, Scope: scope, Refresh: true,
		JKT: ca.jkt, BindRefresh: clientID == ""})
}

func (s *Server) clientCredentialsGrant(r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *httpx.Problem) {
	c, prob := s.authenticate(r.Context(), ca)
	if prob != nil {
		return issuer.Tokens{}, ca.id, prob
	}
	if !c.AllowsGrant(GrantClientCredentials) {
		return issuer.Tokens{}, c.ID, httpx.New(httpx.KindUnauthorizedClient, "this client may not use the client_credentials grant")
	}
	scope, ok := issuer.GrantScope(p["scope"], c.Scopes)
	if !ok {
		return issuer.Tokens{}, c.ID, httpx.New(httpx.KindInvalidScope, "requested scope is not allowed for this client")
	}
	// RFC 6749 §4.4.3: no refresh token for client credentials.
	return s.issue(r, issuer.Grant{Principal: issuer.ClientPrincipal(c), ClientID: c.ID, Scope: scope, JKT: ca.jkt})
}

func (s *Server) refreshGrant(r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *httpx.Problem) {
	clientID, prob := s.optionalClient(r, ca, GrantRefreshToken)
	if prob != nil {
		return issuer.Tokens{}, "", prob
	}
	if p["refresh_token"] == "" {
		return issuer.Tokens{}, "", httpx.New(httpx.KindInvalidRequest, "refresh_token is required")
	}
	toks, pr, err := s.Issuer.Refresh(r.Context(), issuer.RefreshRequest{Token: p["refresh_token"], ClientID: clientID, Scope: p["scope"], JKT: ca.jkt})
	if err != nil {
		// A refused refresh token is invalid_grant or invalid_scope, as
		// Classify names it.
		return toks, pr.Subject, httpx.Classify(err).Or("the server could not refresh the token")
	}
	return toks, pr.Subject, nil
}

func (s *Server) issue(r *http.Request, g issuer.Grant) (issuer.Tokens, string, *httpx.Problem) {
	toks, err := s.Issuer.Issue(r.Context(), g)
	if err != nil {
		return toks, g.Principal.Subject, httpx.Failure(err, "the server could not issue a token")
	}
	return toks, g.Principal.Subject, nil
}
