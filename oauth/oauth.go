// Package oauth serves the OAuth 2.0 routes of a tokengate issuer: the token
// endpoint (RFC 6749), revocation (RFC 7009), introspection (RFC 7662), the
// JWKS (RFC 7517) and authorization server metadata (RFC 8414).
package oauth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Route paths, relative to the site root.
const (
	PathToken      = "/token"
	PathRevoke     = "/token/revoke"
	PathIntrospect = "/token/introspect"
	PathJWKS       = "/.well-known/jwks.json"
	PathMetadata   = "/.well-known/oauth-authorization-server"
)

// Server serves the OAuth 2.0 routes for one Issuer.
type Server struct {
	Issuer *issuer.Issuer
	Log    *zap.Logger
	// DPoP checks DPoP proofs at /token; nil accepts none.
	DPoP *DPoP
	// Realm of the WWW-Authenticate challenges; "" is httpx.Realm.
	Realm string
}

// Routes maps each path to its handler and allowed method.
func (s *Server) Routes() map[string]httpx.Route {
	return map[string]httpx.Route{
		PathToken:      {Methods: httpx.Post, Handler: s.token},
		PathRevoke:     {Methods: httpx.Post, Handler: s.revoke},
		PathIntrospect: {Methods: httpx.Post, Handler: s.introspect},
		PathJWKS:       {Methods: httpx.Get, Handler: s.jwks},
		PathMetadata:   {Methods: httpx.Get, Handler: s.metadata},
	}
}

// Error codes of RFC 6749 §5.2 and RFC 7009.
const (
	ErrInvalidRequest       = "invalid_request"
	ErrInvalidClient        = "invalid_client"
	ErrInvalidGrant         = "invalid_grant"
	ErrUnauthorizedClient   = "unauthorized_client"
	ErrUnsupportedGrantType = "unsupported_grant_type"
	ErrInvalidScope         = "invalid_scope"
	ErrServerError          = "server_error"
	// ErrTemporarilyUnavailable (RFC 6749 §4.1.2.1, used here on every
	// route) answers 503 when the store cannot be reached.
	ErrTemporarilyUnavailable = "temporarily_unavailable"
)

// failure turns an internal error into server_error with desc, or into
// temporarily_unavailable when the store could not be reached.
func failure(err error, desc string) *Error {
	if issuer.IsUnavailable(err) {
		return &Error{Code: ErrTemporarilyUnavailable, Description: httpx.StoreUnavailableMessage, status: http.StatusServiceUnavailable}
	}
	return oauthErr(ErrServerError, desc)
}

// Error is an RFC 6749 error response.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
	status      int
}

// refusal turns a throttled or busy sign-in into its error (429 or 503,
// with Retry-After already set on w); nil for any other error.
func refusal(w http.ResponseWriter, err error) *Error {
	if status, code, desc, ok := httpx.SignInRefusal(w, err); ok {
		return &Error{Code: code, Description: desc, status: status}
	}
	return nil
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code, desc string) *Error { return &Error{Code: code, Description: desc} }

// WriteError writes e with its RFC 6749 status. A 401 carries a Basic
// challenge (RFC 9110 §15.5.2 requires one on every 401; RFC 6749 §5.2
// names the scheme the client may authenticate with), whether the client
// sent its credentials in the Authorization header or in the body.
func WriteError(w http.ResponseWriter, realm string, e *Error) {
	status := e.status
	if status == 0 {
		status = http.StatusBadRequest
		if e.Code == ErrInvalidClient {
			status = http.StatusUnauthorized
		}
		if e.Code == ErrServerError {
			status = http.StatusInternalServerError
		}
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", httpx.RetryAfter)
	}
	if status == http.StatusUnauthorized {
		httpx.Challenge(w.Header(), "Basic", realm)
	}
	httpx.WriteJSON(w, status, e)
}

// requestError turns a body or header problem into invalid_request (or
// invalid_client for broken Basic credentials), keeping its status.
func requestError(err error) *Error {
	st := httpx.Status(err)
	if st == http.StatusUnauthorized {
		return &Error{Code: ErrInvalidClient, Description: err.Error(), status: st}
	}
	return &Error{Code: ErrInvalidRequest, Description: err.Error(), status: st}
}

// clientAuth is how a request identified its client.
type clientAuth struct {
	id, secret string
	basic      bool // via HTTP Basic
	present    bool // any client credentials (or a client_id) were sent
	// jkt is the thumbprint of the request's verified DPoP key; "" without a proof.
	jkt string
}

// readClient extracts client credentials from Basic or the body; sending
// both is invalid_request (RFC 6749 §2.3).
func readClient(r *http.Request, p map[string]string) (clientAuth, *Error) {
	c, err := httpx.ClientCredentials(r, p, httpx.FromBasic|httpx.FromBody)
	if err != nil {
		return clientAuth{}, requestError(err)
	}
	return clientAuth{id: c.ID, secret: c.Secret, basic: c.Basic, present: c.Present}, nil
}

// authenticate checks the client's credentials.
func (s *Server) authenticate(w http.ResponseWriter, ctx context.Context, ca clientAuth) (issuer.Client, *Error) {
	if ca.id == "" || ca.secret == "" {
		return issuer.Client{}, oauthErr(ErrInvalidClient, "client authentication requires client_id and client_secret")
	}
	c, err := s.Issuer.AuthenticateClient(ctx, ca.id, ca.secret)
	if e := refusal(w, err); e != nil {
		return issuer.Client{}, e
	}
	if errors.Is(err, issuer.ErrInvalidCredentials) {
		return issuer.Client{}, oauthErr(ErrInvalidClient, "client authentication failed")
	}
	if err != nil {
		s.Log.Error("authenticating client", zap.String("client_id", ca.id), zap.Error(err))
		return issuer.Client{}, failure(err, "the server could not check the client's credentials")
	}
	return c, nil
}

// endpointURL joins the issuer URL and a route path.
func (s *Server) endpointURL(path string) string {
	return strings.TrimSuffix(s.Issuer.Identifier(), "/") + path
}
