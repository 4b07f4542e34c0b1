package oauth

import (
	"errors"
	"net/http"
	"slices"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Error codes of RFC 9449 at the token endpoint.
const (
	ErrInvalidDPoPProof = dpop.CodeInvalidProof
	ErrUseDPoPNonce     = dpop.CodeUseNonce
)

// DPoP is the token endpoint's DPoP (RFC 9449) policy.
type DPoP struct {
	Verifier *dpop.Verifier
	// Required refuses token requests without a proof.
	Required bool
	// Clients must send a proof (checked on the client_id the request names,
	// before authentication: it can only add a refusal).
	Clients []string
	// URL is the request's absolute URL, the htu a proof must name.
	URL func(*http.Request) string
}

// dpopProof verifies the request's DPoP proof and returns its key
// thumbprint, "" when there is no proof and none is required.
func (s *Server) dpopProof(w http.ResponseWriter, r *http.Request, clientID string) (string, *httpx.Problem) {
	if s.DPoP == nil {
		return "", nil
	}
	v := s.DPoP.Verifier
	if n := v.Nonce(); n != "" {
		w.Header().Set("DPoP-Nonce", n) // §8: the nonce to use next
	}
	proof, err := dpop.FromHeader(r.Header)
	if errors.Is(err, dpop.ErrNoProof) {
		if s.DPoP.Required || (clientID != "" && slices.Contains(s.DPoP.Clients, clientID)) {
			return "", httpx.New(httpx.KindInvalidDPoPProof, "this token request needs a DPoP proof")
		}
		return "", nil
	}
	var p *dpop.Proof
	if err == nil {
		p, err = v.Verify(r.Context(), proof, dpop.Request{Method: r.Method, URL: s.DPoP.URL(r)})
	}
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		return "", httpx.Classify(err)
	case err != nil:
		// The replay record is the store: an outage, answered as the guard
		// and every other route answer one (503, Retry-After).
		return "", &httpx.Problem{Kind: httpx.KindUnavailable, Status: http.StatusServiceUnavailable,
			Description: "the DPoP proof could not be checked; retry shortly", RetryAfter: httpx.StoreRetryAfter, Err: err}
	}
	return p.JKT, nil
}

// tokenType is DPoP for a token bound to a DPoP key (RFC 9449 §5).
func tokenType(c *issuer.AccessClaims) string {
	if c.BoundKey() != "" {
		return "DPoP"
	}
	return "Bearer"
}
