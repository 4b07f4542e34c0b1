package tokengate

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
	"github.com/tokengate/caddy-tokengate/internal/leaf/canonpath"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// ServeHTTP serves a gateway route, or guards the request and passes it on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Caddy starts its apps in no set order: a request may come in before
	// the tokengate app opened the store. It waits (a closed channel
	// costs nothing afterwards).
	select {
	case <-h.started.done:
	case <-r.Context().Done():
		return r.Context().Err()
	}
	if h.started.err != nil {
		httpx.WriteProblem(w, r, guardDialect{h}, httpx.New(httpx.KindUnavailable, "the token gateway could not start"))
		return nil
	}
	// One canonical path for routes, rules and the upstream: whatever the
	// upstream reads is what the rules judged.
	alt, err := h.canonicalize(r.URL)
	if err != nil {
		httpx.WriteProblem(w, r, guardDialect{h}, httpx.New(httpx.KindInvalidRequest, err.Error()))
		return nil
	}
	// CORS preflights, gateway routes included, go to whatever answers CORS.
	if h.routes != nil && !isPreflight(r) {
		if rt, ok := h.routes[r.URL.Path]; ok {
			if !slices.Contains(rt.Methods, r.Method) {
				allow := strings.Join(rt.Methods, ", ")
				w.Header().Set("Allow", allow)
				httpx.WriteProblem(w, r, guardDialect{h}, httpx.New(httpx.KindMethodNotAllowed, r.Method+" is not allowed here; use "+allow))
				return nil
			}
			// Events (issuance, failed logins) name the route they came from.
			rt.Handler(w, withClientIP(r.WithContext(issuer.WithRoute(r.Context(), r.URL.Path))))
			return nil
		}
		for _, p := range h.prefixes {
			if strings.HasPrefix(r.URL.Path, p) {
				httpx.WriteProblem(w, r, guardDialect{h}, httpx.New(httpx.KindNotFound, "no such tokengate route"))
				return nil
			}
		}
	}
	return h.guard(w, r, next, alt)
}

// canonicalize replaces u's path with its canonical form (Path decoded,
// RawPath escaped, so that reverse_proxy sends exactly the canonical form),
// or refuses it. alt is the other reading of the path that a relaxation
// admits (with `semicolon`: the path without ;params), or u.Path.
func (h *Handler) canonicalize(u *url.URL) (alt string, err error) {
	// net/http has already decoded Path (%2F became /): read what the
	// client sent, unless a rewrite changed Path since.
	raw := u.RawPath
	if raw == "" || !rawMatches(raw, u.Path) {
		raw = u.EscapedPath()
	}
	canon, decoded, err := canonpath.Canonical(raw, h.lenient)
	if err != nil {
		return "", err
	}
	alt = decoded
	if h.lenient&canonpath.Semicolon != 0 && strings.ContainsAny(decoded, ";") {
		if alt, err = canonpath.WithoutParams(canon, h.lenient); err != nil {
			return "", err
		}
	}
	// RawPath is set even when it equals Path: net/url would otherwise
	// re-escape sub-delimiters such as ! and ( on the way out.
	u.Path, u.RawPath = decoded, canon
	return alt, nil
}

// rawMatches reports whether raw still decodes to path.
func rawMatches(raw, path string) bool {
	p, err := url.PathUnescape(raw)
	return err == nil && p == path
}

// guard checks the bearer token and tells the upstream who the caller is.
// alt is another reading of the path (see canonicalize): an allow rule must
// match both readings, a require rule applies when it matches either.
func (h *Handler) guard(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, alt string) error {
	// The upstream trusts these headers, so a caller's copy never survives,
	// not even on paths that need no token; nor may the caller name them
	// in Connection, which makes reverse_proxy delete them.
	h.stripIdentityHeaders(r.Header)
	h.protectFromConnection(r.Header)
	h.guardTrailers(r)
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if isPreflight(r) {
		// A preflight carries no credentials and no content: whatever
		// body it has is not the upstream's business.
		r.Body, r.ContentLength, r.TransferEncoding = http.NoBody, 0, nil
		r.Header.Del("Content-Length")
		r.Header.Del("Transfer-Encoding")
		h.setIdentity(r, repl, nil)
		return next.ServeHTTP(w, r)
	}
	if h.allow.Match(r.URL.Path) && (alt == r.URL.Path || h.allow.Match(alt)) {
		// No identity: the placeholders are empty, never a caller's value.
		h.setIdentity(r, repl, nil)
		h.metrics.guard[outcomeAllowed].Inc()
		return next.ServeHTTP(w, r)
	}
	claims, viaDPoP, rf := h.tokens.Check(r)
	if rf != nil {
		switch {
		case rf.NoToken():
			h.metrics.guard[outcomeNoToken].Inc()
		case errors.Is(rf, issuer.ErrTokenRevoked):
			h.metrics.guard[outcomeRevoked].Inc()
		default:
			h.metrics.guard[outcomeBadToken].Inc()
		}
		if rf.Status == http.StatusUnauthorized && !rf.NoToken() {
			h.log.Debug("token refused", zap.String("reason", rf.Description), zap.String("path", r.URL.Path), zap.String("remote_ip", r.RemoteAddr))
		}
		httpx.WriteProblem(w, r, guardDialect{h}, rf.Problem())
		return nil
	}
	for _, rq := range h.require {
		applies := rq.match.Match(r.URL.Path) || (alt != r.URL.Path && rq.match.Match(alt))
		if rq.Kind == "dpop" {
			if applies && !viaDPoP {
				rf := &tokenauth.Refusal{Kind: httpx.KindInvalidToken, Status: http.StatusUnauthorized, Scheme: "DPoP",
					Description: "this path requires a DPoP-bound token"}
				httpx.WriteProblem(w, r, guardDialect{h}, rf.Problem())
				return nil
			}
			continue
		}
		if applies && !satisfies(claims, rq.Kind, rq.Values) {
			scope := ""
			if rq.Kind == "scope" {
				scope = strings.Join(rq.Values, " ")
			}
			h.metrics.guard[outcomeForbidden].Inc()
			h.log.Debug("token lacks "+rq.Kind, zap.String("sub", claims.Subject), zap.String("path", r.URL.Path))
			rf := &tokenauth.Refusal{Kind: httpx.KindForbidden, Status: http.StatusForbidden, Scheme: "Bearer",
				Description: "the token lacks a required " + rq.Kind, Scope: scope}
			httpx.WriteProblem(w, r, guardDialect{h}, rf.Problem())
			return nil
		}
	}
	h.setIdentity(r, repl, claims)
	h.metrics.guard[outcomeAllowed].Inc()
	return next.ServeHTTP(w, r)
}

// setIdentity sets the {http.auth.user.*} placeholders and the forwarded
// headers from claims; with nil claims, placeholders are set empty. The
// claim placeholders come from one provider over values rendered and boxed
// once per token (issuer.AccessClaims.Rendered): setting them one by one
// grew the Replacer's map on every request, half the guard's CPU time.
func (h *Handler) setIdentity(r *http.Request, repl *caddy.Replacer, claims *issuer.AccessClaims) {
	var v *issuer.RenderedClaims
	if claims != nil {
		v = claims.Rendered()
	}
	repl.Map(identity{v}.get)
	if v == nil {
		return
	}
	for _, fh := range h.ForwardHeaders {
		r.Header.Set(fh.Header, claimValue(claims, fh.Claim))
	}
}

// identity answers {http.auth.user.id} (the subject) and
// {http.auth.user.<claim>}; with nil values every one is empty.
type identity struct{ v *issuer.RenderedClaims }

func (id identity) get(key string) (any, bool) {
	name, ok := strings.CutPrefix(key, "http.auth.user.")
	if !ok {
		return nil, false
	}
	i := slices.Index(claimNames, name)
	if name == "id" {
		i = 0 // sub
	}
	switch {
	case i < 0:
		return nil, false
	case id.v == nil:
		return "", true
	}
	return id.v.Values[i], true
}

// withClientIP passes on the client IP Caddy determined (which honours
// trusted_proxies) for sign-in throttling to key on.
func withClientIP(r *http.Request) *http.Request {
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	if ip == "" { // outside a Caddy server (unit tests): the peer
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	return r.WithContext(issuer.WithClientIP(r.Context(), ip))
}

// isPreflight reports a CORS preflight, which carries no credentials: an
// OPTIONS request with both Origin and Access-Control-Request-Method.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// protectFromConnection removes from the Connection header every token
// that could make reverse_proxy delete a header the upstream must see:
// Authorization, the forward_header headers (in any spelling the upstream
// may read as them), and any header not in the request yet, such as one a
// later request_header directive sets from the identity. The connection
// options close, keep-alive and upgrade, and the caller's own hop-by-hop
// headers, stay.
func (h *Handler) protectFromConnection(hdr http.Header) {
	values := hdr["Connection"]
	drop := false
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && !h.keepConnectionToken(hdr, tok) {
				drop = true
			}
		}
	}
	if !drop {
		return // the common case: nothing to rewrite, nothing allocated
	}
	var keep []string
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" && h.keepConnectionToken(hdr, tok) {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		hdr.Del("Connection")
		return
	}
	hdr["Connection"] = []string{strings.Join(keep, ", ")}
}

func (h *Handler) keepConnectionToken(hdr http.Header, tok string) bool {
	if h.protectedHeader(tok) {
		return false
	}
	for _, opt := range []string{"close", "keep-alive", "upgrade"} {
		if strings.EqualFold(tok, opt) {
			return true
		}
	}
	return len(hdr.Values(tok)) > 0
}

// protectedHeader reports a header name the caller may not nominate as
// hop-by-hop; '_' and '-' compare equal, as CGI and some proxies read them.
func (h *Handler) protectedHeader(name string) bool {
	if headerNameEqual(name, "Authorization") {
		return true
	}
	for _, fh := range h.ForwardHeaders {
		if headerNameEqual(name, fh.Header) {
			return true
		}
	}
	return false
}

// headerNameEqual compares header names case-insensitively, with '_' == '-'.
func headerNameEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if foldHeaderByte(a[i]) != foldHeaderByte(b[i]) {
			return false
		}
	}
	return true
}

func foldHeaderByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
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

// guardTrailers keeps a caller's identity out of the request's trailers,
// which an upstream may merge into its headers (RFC 9110 §6.5.1): the
// forward_header names and Authorization, in any spelling, are dropped from
// the trailers the request declares now and, since net/http fills their
// values in only when the body reaches its end, again at that end, before
// reverse_proxy copies them.
func (h *Handler) guardTrailers(r *http.Request) {
	if len(r.Trailer) == 0 {
		return // undeclared trailers land in no map the upstream is sent
	}
	h.stripTrailers(r.Trailer)
	r.Body = &trailerGuard{ReadCloser: r.Body, trailer: r.Trailer, strip: h.stripTrailers}
}

func (h *Handler) stripTrailers(tr http.Header) {
	for k := range tr {
		if h.protectedHeader(k) {
			delete(tr, k)
		}
	}
}

// trailerGuard strips the protected trailers when the body ends.
type trailerGuard struct {
	io.ReadCloser
	trailer http.Header
	strip   func(http.Header)
}

func (b *trailerGuard) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.strip(b.trailer)
	}
	return n, err
}

// guardCode is the guard's code table: a refused token's RFC 6750 or RFC
// 9449 code (the one its challenge carries; "unauthorized" for a request
// without one), and the gateway's own answers' codes. A kind the guard
// never produces answers as a failure of the server.
func guardCode(p *httpx.Problem) (string, int) {
	switch p.Kind {
	case httpx.KindNoToken:
		return "unauthorized", http.StatusUnauthorized
	case httpx.KindInvalidRequest, httpx.KindInvalidToken, httpx.KindInvalidDPoPProof, httpx.KindUseDPoPNonce, httpx.KindForbidden:
		return tokenauth.Code(p.Kind), p.Status
	case httpx.KindBusy, httpx.KindUnavailable:
		return tokenauth.Code(p.Kind), http.StatusServiceUnavailable
	case httpx.KindNotFound:
		return "not_found", http.StatusNotFound
	case httpx.KindMethodNotAllowed:
		return "method_not_allowed", http.StatusMethodNotAllowed
	}
	return "server_error", http.StatusInternalServerError
}

// guardDialect words the gateway's own answers (a refused token, an
// unknown route, a wrong method, a failed start) as {error,
// error_description}. A refused token carries the challenge the token
// check sets, whatever its status; any other 401 a Bearer one.
type guardDialect struct{ h *Handler }

// Interface guards.
var (
	_ httpx.Dialect    = guardDialect{}
	_ httpx.Challenger = guardDialect{}
)

func (d guardDialect) Answer(_ *http.Request, p *httpx.Problem) (int, any) {
	c, status := guardCode(p)
	return status, httpx.ErrorBody{Code: c, Description: p.Description}
}

func (d guardDialect) Challenge(hdr http.Header, status int, p *httpx.Problem) {
	var rf *tokenauth.Refusal
	switch {
	case errors.As(p.Err, &rf):
		d.h.tokens.Challenge(hdr, rf)
	case status == http.StatusUnauthorized:
		c, _ := guardCode(p)
		httpx.Challenge(hdr, "Bearer", d.h.realm, "error", c, "error_description", p.Description)
	}
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
var claimNames = issuer.ClaimNames()

func knownClaim(name string) bool { return slices.Contains(claimNames, name) }

// claimValue renders a claim as a header value; lists are comma-separated.
func claimValue(c *issuer.AccessClaims, name string) string {
	if i := slices.Index(claimNames, name); i >= 0 {
		return c.Rendered().Strings[i]
	}
	return ""
}
