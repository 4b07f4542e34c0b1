package oauth

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
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
		s.refuse(w, r, "", "", "", requestError(err))
		return
	}
	grant := p["grant_type"]
	ca, oerr := readClient(r, p)
	if oerr == nil {
		ca.jkt, oerr = s.dpopProof(w, r, ca.id)
	}
	if oerr != nil {
		s.refuse(w, r, grant, ca.id, "", oerr)
		return
	}
	var toks issuer.Tokens
	var subject string
	switch grant {
	case "":
		oerr = oauthErr(ErrInvalidRequest, "grant_type is required")
	case GrantPassword:
		toks, subject, oerr = s.passwordGrant(w, r, p, ca)
	case GrantClientCredentials:
		toks, subject, oerr = s.clientCredentialsGrant(w, r, p, ca)
	case GrantRefreshToken:
		toks, subject, oerr = s.refreshGrant(w, r, p, ca)
	default:
		oerr = oauthErr(ErrUnsupportedGrantType, "grant_type must be password, client_credentials or refresh_token")
	}
	if oerr != nil {
		s.refuse(w, r, grant, ca.id, subject, oerr)
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

// refuse logs and writes a token error. It logs who and why, never what
// secret was presented.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, grant, clientID, subject string, e *Error) {
	if ce := s.Log.Check(httpx.RefusalLevel(e.status), "token refused"); ce != nil {
		ce.Write(zap.String("grant", grant), zap.String("sub", subject),
			zap.String("client_id", clientID), zap.String("error", e.Code), zap.String("reason", e.Description),
			zap.String("remote_ip", r.RemoteAddr))
	}
	WriteError(w, s.Realm, e)
}

// optionalClient authenticates the client if it sent credentials.
func (s *Server) optionalClient(w http.ResponseWriter, r *http.Request, ca clientAuth, grant string) (string, *Error) {
	if !ca.present {
		return "", nil
	}
	c, oerr := s.authenticate(w, r.Context(), ca)
	if oerr != nil {
		return "", oerr
	}
	if !c.AllowsGrant(grant) {
		return "", oauthErr(ErrUnauthorizedClient, "this client may not use the "+grant+" grant")
	}
	return c.ID, nil
}

func (s *Server) passwordGrant(w http.ResponseWriter, r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *Error) {
	clientID, oerr := s.optionalClient(w, r, ca, GrantPassword)
	if oerr != nil {
		return issuer.Tokens{}, "", oerr
	}
	if p["username"] == "" || p["password"] == "" {
		return issuer.Tokens{}, "", oauthErr(ErrInvalidRequest, "username and password are required")
	}
	u, err := s.Issuer.AuthenticateUser(r.Context(), p["username"], p["password"])
	if e := refusal(w, err); e != nil {
		return issuer.Tokens{}, p["username"], e
	}
	if errors.Is(err, issuer.ErrInvalidCredentials) {
		return issuer.Tokens{}, p["username"], oauthErr(ErrInvalidGrant, "invalid username or password")
	}
	if err != nil {
		s.Log.Error("authenticating user", zap.String("user", p["username"]), zap.Error(err))
		return issuer.Tokens{}, p["username"], failure(err, "the server could not check the password")
	}
	scope, ok := issuer.GrantScope(p["scope"], u.Scopes)
	if !ok {
		return issuer.Tokens{}, u.Subject(), oauthErr(ErrInvalidScope, "requested scope is not allowed for this user")
	}
	// A public client's refresh token is bound to its DPoP key (RFC 9449 §5).
	return s.issue(r, issuer.Grant{Principal: issuer.UserPrincipal(u), ClientID: clientID, Scope: scope, Refresh: true,
		JKT: ca.jkt, BindRefresh: clientID == ""})
}

func (s *Server) clientCredentialsGrant(w http.ResponseWriter, r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *Error) {
	c, oerr := s.authenticate(w, r.Context(), ca)
	if oerr != nil {
		return issuer.Tokens{}, ca.id, oerr
	}
	if !c.AllowsGrant(GrantClientCredentials) {
		return issuer.Tokens{}, c.ID, oauthErr(ErrUnauthorizedClient, "this client may not use the client_credentials grant")
	}
	scope, ok := issuer.GrantScope(p["scope"], c.Scopes)
	if !ok {
		return issuer.Tokens{}, c.ID, oauthErr(ErrInvalidScope, "requested scope is not allowed for this client")
	}
	// RFC 6749 §4.4.3: no refresh token for client credentials.
	return s.issue(r, issuer.Grant{Principal: issuer.ClientPrincipal(c), ClientID: c.ID, Scope: scope, JKT: ca.jkt})
}

func (s *Server) refreshGrant(w http.ResponseWriter, r *http.Request, p map[string]string, ca clientAuth) (issuer.Tokens, string, *Error) {
	clientID, oerr := s.optionalClient(w, r, ca, GrantRefreshToken)
	if oerr != nil {
		return issuer.Tokens{}, "", oerr
	}
	if p["refresh_token"] == "" {
		return issuer.Tokens{}, "", oauthErr(ErrInvalidRequest, "refresh_token is required")
	}
	toks, pr, err := s.Issuer.Refresh(r.Context(), issuer.RefreshRequest{Token: p["refresh_token"], ClientID: clientID, Scope: p["scope"], JKT: ca.jkt})
	switch {
	case errors.Is(err, issuer.ErrRefreshKey):
		return toks, pr.Subject, oauthErr(ErrInvalidGrant, "refresh token is bound to a DPoP key: send a DPoP proof signed with that key")
	case errors.Is(err, issuer.ErrRefreshReused):
		return toks, pr.Subject, oauthErr(ErrInvalidGrant, "refresh token was already used; every token of its grant is now revoked")
	case errors.Is(err, issuer.ErrClientMismatch):
		return toks, pr.Subject, oauthErr(ErrInvalidGrant, "refresh token was issued to another client")
	case errors.Is(err, issuer.ErrScopeWidened):
		return toks, pr.Subject, oauthErr(ErrInvalidScope, err.Error())
	case errors.Is(err, issuer.ErrRefreshInvalid):
		return toks, pr.Subject, oauthErr(ErrInvalidGrant, "refresh token is invalid, expired or revoked")
	case err != nil:
		s.Log.Error("refreshing token", zap.Error(err))
		return toks, pr.Subject, failure(err, "the server could not refresh the token")
	}
	return toks, pr.Subject, nil
}

func (s *Server) issue(r *http.Request, g issuer.Grant) (issuer.Tokens, string, *Error) {
	toks, err := s.Issuer.Issue(r.Context(), g)
	if err != nil {
		s.Log.Error("issuing token", zap.String("sub", g.Principal.Subject), zap.Error(err))
		return toks, g.Principal.Subject, failure(err, "the server could not issue a token")
	}
	return toks, g.Principal.Subject, nil
}
