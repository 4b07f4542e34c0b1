package oauth

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
)

// revoke implements RFC 7009. Holding a token is enough to revoke it; a
// client that authenticates may only revoke its own tokens. Unknown tokens
// get 200 too, so the endpoint reveals nothing.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	p, clientID, prob := s.tokenRequest(w, r, false)
	if prob != nil {
		httpx.WriteProblem(w, r, dialect{s: s}, prob)
		return
	}
	found, err := s.Issuer.RevokeToken(r.Context(), p["token"], clientID)
	if err != nil {
		httpx.WriteProblem(w, r, dialect{s: s}, httpx.Failure(err, "the server could not revoke the token"))
		return
	}
	s.Log.Info("token revoked", zap.String("client_id", clientID), zap.Bool("found", found))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// tokenRequest parses a revocation or introspection request: its
// parameters, the client (authenticated when it sent credentials, and
// required when needClient), and a non-empty `token`.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, needClient bool) (map[string]string, string, *httpx.Problem) {
	p, err := httpx.Params(w, r)
	if err != nil {
		return nil, "", httpx.Classify(err)
	}
	ca, prob := readClient(r, p)
	if prob != nil {
		return nil, "", prob
	}
	clientID := ""
	if ca.present || needClient {
		c, prob := s.authenticate(r.Context(), ca)
		if prob != nil {
			return nil, "", prob
		}
		clientID = c.ID
	}
	if p["token"] == "" {
		return nil, "", httpx.New(httpx.KindInvalidRequest, "token is required")
	}
	return p, clientID, nil
}

// introspect implements RFC 7662 for authenticated clients.
func (s *Server) introspect(w http.ResponseWriter, r *http.Request) {
	p, _, prob := s.tokenRequest(w, r, true)
	if prob != nil {
		httpx.WriteProblem(w, r, dialect{s: s}, prob)
		return
	}
	tok := p["token"]
	inactive := map[string]any{"active": false}
	if strings.HasPrefix(tok, "tgr_") {
		rec, ok, err := s.Issuer.RefreshInfo(r.Context(), tok)
		if err != nil {
			httpx.WriteProblem(w, r, dialect{s: s}, httpx.Failure(err, "the server could not look the token up"))
			return
		}
		if !ok {
			httpx.WriteJSON(w, http.StatusOK, inactive)
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"active": true, "token_type": "refresh_token",
			"sub": rec.Subject, "client_id": rec.ClientID, "scope": rec.Scope, "exp": rec.ExpiresAt.Unix(), "iss": rec.Issuer})
		return
	}
	c, err := s.Issuer.Verify(tok)
	if err != nil {
		httpx.WriteJSON(w, http.StatusOK, inactive)
		return
	}
	out := map[string]any{"active": true, "token_type": tokenType(c), "sub": c.Subject, "client_id": c.ClientID,
		"iss": c.Issuer, "aud": c.Audience, "exp": c.ExpiresAt.Unix(), "iat": c.IssuedAt.Unix(), "jti": c.ID}
	if c.Cnf != nil { // RFC 9449 §6.2
		out["cnf"] = c.Cnf
	}
	if c.Scope != "" {
		out["scope"] = c.Scope
	}
	if len(c.Roles) > 0 {
		out["roles"] = c.Roles
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// jwks serves every public key that may still verify a live token. Caches
// may keep it for five minutes: new keys are published well before use.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+JWKSMaxAge)
	writeRaw(w, s.Issuer.Core().JWKS())
}

// JWKSMaxAge is how long (seconds) verifiers may cache the JWKS; key
// rotation publishes a new key longer than this before it signs.
const JWKSMaxAge = "300"

// JWKSCacheTime is JWKSMaxAge as a duration.
const JWKSCacheTime = 300 * time.Second

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	meta := map[string]any{
		"issuer":                                        s.Issuer.Identifier(),
		"token_endpoint":                                s.endpointURL(PathToken),
		"jwks_uri":                                      s.endpointURL(PathJWKS),
		"revocation_endpoint":                           s.endpointURL(PathRevoke),
		"introspection_endpoint":                        s.endpointURL(PathIntrospect),
		"grant_types_supported":                         s.grantTypes(),
		"response_types_supported":                      []string{},
		"token_endpoint_auth_methods_supported":         []string{"client_secret_basic", "client_secret_post", "none"},
		"revocation_endpoint_auth_methods_supported":    []string{"client_secret_basic", "client_secret_post", "none"},
		"introspection_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	}
	if s.AuthorizePath != "" {
		meta["authorization_endpoint"] = s.endpointURL(s.AuthorizePath)
		meta["response_types_supported"] = []string{"code"}
		meta["response_modes_supported"] = []string{"query", "form_post"}
		meta["code_challenge_methods_supported"] = []string{"S256"}
		meta["authorization_response_iss_parameter_supported"] = true // RFC 9207
	}
	if s.DPoP != nil { // RFC 9449 §5.1
		meta["dpop_signing_alg_values_supported"] = s.DPoP.Verifier.AlgList()
	}
	writeRaw(w, meta)
}

func writeRaw(w http.ResponseWriter, v any) {
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
