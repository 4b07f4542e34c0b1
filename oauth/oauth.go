// Package oauth serves the OAuth 2.0 routes of a tokengate issuer: the token
// endpoint (RFC 6749), revocation (RFC 7009), introspection (RFC 7662), the
// JWKS (RFC 7517) and authorization server metadata (RFC 8414).
package oauth

import (
	"context"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
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
	// AuthorizePath is where the site's authorization endpoint (browser
	// sign-in) is mounted; "" when it has none. With one, /token takes
	// grant_type authorization_code and the metadata names the endpoint.
	AuthorizePath string
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
	// ErrTooManyRequests answers 429 (with Retry-After) after too many
	// failed sign-ins.
	ErrTooManyRequests = "too_many_requests"
)

// code is OAuth's code table: each kind of problem's RFC 6749 §5.2 (or
// RFC 7009, RFC 9449) code and status. A kind no OAuth route produces
// answers as a failure of the server.
func code(p *httpx.Problem) (string, int) {
	switch p.Kind {
	case httpx.KindInvalidRequest:
		return ErrInvalidRequest, p.Status // 400, or 413 for a body too large
	case httpx.KindInvalidClient:
		return ErrInvalidClient, http.StatusUnauthorized
	case httpx.KindInvalidCredentials, httpx.KindInvalidGrant: // a wrong password is an invalid grant (§4.3)
		return ErrInvalidGrant, http.StatusBadRequest
	case httpx.KindInvalidScope:
		return ErrInvalidScope, http.StatusBadRequest
	case httpx.KindUnauthorizedClient:
		return ErrUnauthorizedClient, http.StatusBadRequest
	case httpx.KindUnsupportedGrant:
		return ErrUnsupportedGrantType, http.StatusBadRequest
	case httpx.KindInvalidDPoPProof: // RFC 9449 §5: the token endpoint answers 400
		return ErrInvalidDPoPProof, http.StatusBadRequest
	case httpx.KindUseDPoPNonce:
		return ErrUseDPoPNonce, http.StatusBadRequest
	case httpx.KindThrottled:
		return ErrTooManyRequests, http.StatusTooManyRequests
	case httpx.KindBusy, httpx.KindUnavailable:
		return ErrTemporarilyUnavailable, http.StatusServiceUnavailable
	}
	return ErrServerError, http.StatusInternalServerError
}

// dialect words problems as RFC 6749 §5.2 error responses. A 401 carries a
// Basic challenge (RFC 9110 §15.5.2 requires one on every 401; RFC 6749
// §5.2 names the scheme the client may authenticate with), whether the
// client sent its credentials in the Authorization header or in the body.
type dialect struct {
	s *Server
	// fields name the request in the log.
	fields []zap.Field
}

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
	httpx.LogProblem(d.s.Log, "token refused", r, status, p, append(d.fields, zap.String("error", c))...)
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
// both is invalid_request (RFC 6749 §2.3), broken Basic credentials
// invalid_client.
func readClient(r *http.Request, p map[string]string) (clientAuth, *httpx.Problem) {
	c, err := httpx.ClientCredentials(r, p, httpx.FromBasic|httpx.FromBody)
	if err != nil {
		return clientAuth{}, httpx.Classify(err)
	}
	return clientAuth{id: c.ID, secret: c.Secret, basic: c.Basic, present: c.Present}, nil
}

// authenticate checks the client's credentials.
func (s *Server) authenticate(ctx context.Context, ca clientAuth) (issuer.Client, *httpx.Problem) {
	if ca.id == "" || ca.secret == "" {
		return issuer.Client{}, httpx.New(httpx.KindInvalidClient, "client authentication requires client_id and client_secret")
	}
	c, err := s.Issuer.AuthenticateClient(ctx, ca.id, ca.secret)
	if err != nil {
		return issuer.Client{}, httpx.SignInProblem(err, httpx.New(httpx.KindInvalidClient, "client authentication failed"),
			"the server could not check the client's credentials")
	}
	return c, nil
}

// endpointURL joins the issuer URL and a route path.
func (s *Server) endpointURL(path string) string {
	return strings.TrimSuffix(s.Issuer.Identifier(), "/") + path
}
