package oauth

import (
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Grant types.
const (
	GrantPassword          = "password"
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantAuthorizationCode = "authorization_code"
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
	case GrantAuthorizationCode:
		if s.AuthorizePath != "" {
			toks, subject, prob = s.authorizationCodeGrant(r, p, ca)
			break
		}
		fallthrough
	default:
		prob = httpx.New(httpx.KindUnsupportedGrant, "grant_type must be one of "+strings.Join(s.grantTypes(), ", "))
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
	c, prob := s.identify(r, ca)
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

// grantTypes are the grant types /token takes.
func (s *Server) grantTypes() []string {
	g := []string{GrantPassword, GrantClientCredentials, GrantRefreshToken}
	if s.AuthorizePath != "" {
		g = append(g, GrantAuthorizationCode)
	}
	return g
}

// authorizationCodeGrant redeems an authorization code (RFC 6749 §4.1.3)
// with its PKCE verifier (RFC 7636 §4.5).
func (s *Server) authorizationCodeGrant(r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *httpx.Problem) {
	if p["code"] == "" {
		return issuer.Tokens{}, "", httpx.New(httpx.KindInvalidRequest, "code is required")
	}
	c, prob := s.identify(r, ca)
	if prob != nil {
		return issuer.Tokens{}, "", prob
	}
	if !c.AllowsGrant(GrantAuthorizationCode) {
		return issuer.Tokens{}, "", httpx.New(httpx.KindUnauthorizedClient, "this client may not use the authorization_code grant")
	}
	red, err := s.Issuer.RedeemCode(r.Context(), issuer.RedeemRequest{Code: p["code"], ClientID: c.ID,
		RedirectURI: p["redirect_uri"], Verifier: p["code_verifier"], JKT: ca.jkt, BindRefresh: c.Public})
	if err != nil {
		return issuer.Tokens{}, "", httpx.Classify(err).Or("the server could not redeem the authorization code")
	}
	return red.Tokens, red.Principal.Subject, nil
}

// identify returns the request's client: a public client names itself
// with client_id alone (RFC 6749 §3.2.1); any other authenticates as
// always. A confidential client without its secret, and a public one with
// a secret, fail alike.
func (s *Server) identify(r *http.Request, ca clientAuth) (issuer.Client, *httpx.Problem) {
	if ca.secret == "" && ca.id != "" {
		c, err := s.Issuer.LookupClient(r.Context(), ca.id)
		switch {
		case err == nil && c.Public:
			return c, nil
		case err != nil && !errors.Is(err, issuer.ErrNotFound):
			return issuer.Client{}, httpx.Failure(err, "the server could not look the client up")
		}
	}
	return s.authenticate(r.Context(), ca)
}
