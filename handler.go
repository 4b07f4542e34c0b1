package tokengate

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// ServeHTTP serves a gateway route, or guards the request and passes it on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// CORS preflights, gateway routes included, go to whatever answers CORS.
	if h.routes != nil && !isPreflight(r) {
		if rt, ok := h.routes[r.URL.Path]; ok {
			if !slices.Contains(rt.Methods, r.Method) {
				allow := strings.Join(rt.Methods, ", ")
				w.Header().Set("Allow", allow)
				httpx.WriteJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", r.Method+" is not allowed here; use "+allow))
				return nil
			}
			rt.Handler(w, r)
			return nil
		}
		for _, p := range h.prefixes {
			if strings.HasPrefix(r.URL.Path, p) {
				httpx.WriteJSON(w, http.StatusNotFound, errorBody("not_found", "no such tokengate route"))
				return nil
			}
		}
	}
	return h.guard(w, r, next)
}

// guard checks the bearer token and tells the upstream who the caller is.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// The upstream trusts these headers, so a caller's copy never survives,
	// not even on paths that need no token.
	h.stripIdentityHeaders(r.Header)
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if isPreflight(r) {
		h.setIdentity(r, repl, nil)
		return next.ServeHTTP(w, r) // CORS preflight carries no credentials
	}
	if h.allow != nil && h.allow.Match(r) {
		// No identity: the placeholders are empty, never a caller's value.
		h.setIdentity(r, repl, nil)
		return next.ServeHTTP(w, r)
	}
	tok, err := httpx.BearerToken(r)
	switch {
	case errors.Is(err, httpx.ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+h.realm+`"`)
		httpx.WriteJSON(w, http.StatusUnauthorized, errorBody("unauthorized", "a bearer token is required"))
		return nil
	case err != nil:
		h.challenge(w, http.StatusBadRequest, "invalid_request", err.Error(), "")
		return nil
	}
	iss := "" // the configured issuer, or this request's scheme://host
	if h.Issuer == "" {
		iss = requestIssuer(r)
	}
	claims, err := h.issuer.Verify(tok, iss, "")
	if err != nil {
		h.log.Debug("token refused", zap.String("reason", err.Error()), zap.String("path", r.URL.Path), zap.String("remote_ip", r.RemoteAddr))
		h.challenge(w, http.StatusUnauthorized, "invalid_token", err.Error(), "")
		return nil
	}
	for _, rq := range h.require {
		if rq.match.Match(r) && !satisfies(claims, rq.Kind, rq.Values) {
			scope := ""
			if rq.Kind == "scope" {
				scope = strings.Join(rq.Values, " ")
			}
			h.log.Debug("token lacks "+rq.Kind, zap.String("sub", claims.Subject), zap.String("path", r.URL.Path))
			h.challenge(w, http.StatusForbidden, "insufficient_scope", "the token lacks a required "+rq.Kind, scope)
			return nil
		}
	}
	h.setIdentity(r, repl, claims)
	return next.ServeHTTP(w, r)
}

// setIdentity sets the {http.auth.user.*} placeholders and the forwarded
// headers from claims; with nil claims, placeholders are set empty.
func (h *Handler) setIdentity(r *http.Request, repl *caddy.Replacer, claims *issuer.AccessClaims) {
	if claims == nil {
		repl.Set("http.auth.user.id", "")
		for i := range claimNames {
			repl.Set(claimPlaceholders[i], "")
		}
		return
	}
	repl.Set("http.auth.user.id", claims.Subject)
	for i, name := range claimNames {
		repl.Set(claimPlaceholders[i], claimValue(claims, name))
	}
	for _, fh := range h.ForwardHeaders {
		r.Header.Set(fh.Header, claimValue(claims, fh.Claim))
	}
}

// isPreflight reports a CORS preflight, which carries no credentials.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
}

// stripIdentityHeaders deletes every inbound copy of the forwarded headers,
// including spellings with underscores (X_User_Id), which CGI, PHP and some
// proxies treat as the same header.
func (h *Handler) stripIdentityHeaders(hdr http.Header) {
	if len(h.ForwardHeaders) == 0 {
		return
	}
	for _, fh := range h.ForwardHeaders {
		hdr.Del(fh.Header)
	}
	for k := range hdr {
		if strings.ContainsRune(k, '_') && h.forwarded[http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))] {
			delete(hdr, k)
		}
	}
}

// challenge answers with an RFC 6750 WWW-Authenticate header and JSON body.
func (h *Handler) challenge(w http.ResponseWriter, status int, code, desc, scope string) {
	v := `Bearer realm="` + h.realm + `", error="` + code + `", error_description="` + quoteSafe(desc) + `"`
	if scope != "" {
		v += `, scope="` + quoteSafe(scope) + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	httpx.WriteJSON(w, status, errorBody(code, desc))
}

func errorBody(code, desc string) map[string]string {
	return map[string]string{"error": code, "error_description": desc}
}

// quoteSafe keeps a value inside an RFC 6750 quoted-string.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}

func satisfies(c *issuer.AccessClaims, kind string, values []string) bool {
	for _, v := range values {
		if (kind == "role" && c.HasRole(v)) || (kind == "scope" && c.HasScope(v)) {
			return true
		}
	}
	return false
}

// claimNames are the claims a token carries, exposed as
// {http.auth.user.<claim>} and usable in forward_header.
var claimNames = []string{"sub", "iss", "aud", "exp", "iat", "jti", "client_id", "scope", "roles", "sid"}

// claimPlaceholders are the placeholder names of claimNames, built once so
// the guard does not concatenate them on every request.
var claimPlaceholders = func() []string {
	out := make([]string, len(claimNames))
	for i, n := range claimNames {
		out[i] = "http.auth.user." + n
	}
	return out
}()

func knownClaim(name string) bool { return slices.Contains(claimNames, name) }

// claimValue renders a claim as a header value; lists are comma-separated.
func claimValue(c *issuer.AccessClaims, name string) string {
	switch name {
	case "sub":
		return c.Subject
	case "iss":
		return c.Issuer
	case "aud":
		return strings.Join(c.Audience, ",")
	case "exp":
		return strconv.FormatInt(c.ExpiresAt.Unix(), 10)
	case "iat":
		return strconv.FormatInt(c.IssuedAt.Unix(), 10)
	case "jti":
		return c.ID
	case "client_id":
		return c.ClientID
	case "scope":
		return c.Scope
	case "roles":
		return strings.Join(c.Roles, ",")
	case "sid":
		return c.SID
	}
	return ""
}

// requestIssuer is the default issuer: the request's scheme and host.
func requestIssuer(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}
