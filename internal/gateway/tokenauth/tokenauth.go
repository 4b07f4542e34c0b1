// Package tokenauth is the one check of an access token a request
// presents to the gateway, for the guard and for every route that takes
// one (the Token Service's secret routes, apimaker's require_role): the
// token comes as `Authorization: Bearer` (RFC 6750) or `Authorization:
// DPoP` with a proof (RFC 9449), and a token bound to a DPoP key is valid
// only with a proof of that key, wherever it is presented (§7.1-7.2).
package tokenauth

import (
	"errors"
	"net/http"
	"slices"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/internal/gateway/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// Checker checks the access tokens presented to one site.
type Checker struct {
	Issuer *issuer.Issuer
	// DPoP verifies proofs; its replay record is the store's.
	DPoP *dpop.Verifier
	// RequireDPoP refuses bearer tokens (the dpop block's `required`).
	RequireDPoP bool
	// URL is the request's absolute URL, the htu a proof must name.
	URL func(*http.Request) string
	// Realm of the challenges; "" is httpx.Realm.
	Realm string
	Log   *zap.Logger
}

// ErrLacksRole says a valid token's principal holds none of the roles a
// route needs, or is of a kind whose roles do not count there.
var ErrLacksRole = errors.New("the token lacks the role this route needs")

// AnyKind, in WithRole's kinds, lets roles count on every principal kind.
const AnyKind issuer.PrincipalKind = "*"

// Refusal is why a request's token was refused, with what the answer
// needs: its kind and status, the scheme of its challenge and, for
// insufficient scope, the scope that would do.
type Refusal struct {
	// Kind is httpx.KindNoToken, KindInvalidRequest (a malformed
	// Authorization header), KindInvalidToken, KindInvalidDPoPProof,
	// KindUseDPoPNonce, KindForbidden (ErrLacksRole, or a scope or role a
	// path requires) or KindUnavailable (a proof could not be checked).
	Kind httpx.Kind
	// Status is 400, 401, 403 or 503, as Kind says.
	Status int
	// Scheme is the challenge's scheme: "Bearer" or "DPoP".
	Scheme      string
	Description string
	// Scope, on a KindForbidden refusal, is the scope the challenge names.
	Scope string
	// Err is what was refused: httpx.ErrNoCredentials, the token's
	// verification error, a *dpop.Error, ErrLacksRole, or the error that
	// kept a proof from being checked.
	Err error
}

func (r *Refusal) Error() string { return r.Description }
func (r *Refusal) Unwrap() error { return r.Err }

// NoToken reports a refusal for a request that sent no token at all.
func (r *Refusal) NoToken() bool { return errors.Is(r.Err, httpx.ErrNoCredentials) }

// Code is the RFC 6750 §3.1 or RFC 9449 §7.1 error code of the refusal's
// challenge; "" when no token was sent (§3.1: the challenge then carries
// none).
func (r *Refusal) Code() string { return Code(r.Kind) }

// Code is the error code of a token refusal of kind k: the code table of
// the challenges (and of the guard's answers).
func Code(k httpx.Kind) string {
	switch k {
	case httpx.KindInvalidRequest:
		return "invalid_request"
	case httpx.KindInvalidToken:
		return "invalid_token"
	case httpx.KindInvalidDPoPProof:
		return dpop.CodeInvalidProof
	case httpx.KindUseDPoPNonce:
		return dpop.CodeUseNonce
	case httpx.KindForbidden:
		return "insufficient_scope"
	case httpx.KindUnavailable, httpx.KindBusy:
		return "temporarily_unavailable"
	}
	return ""
}

// Problem is the refusal for a dialect to word. Its cause is the refusal,
// so that the dialect finds the challenge to send (Checker.Challenge).
func (r *Refusal) Problem() *httpx.Problem {
	return &httpx.Problem{Kind: r.Kind, Status: r.Status, Description: r.Description, Err: r}
}

// refused is the refusal of err, as httpx.Classify names it, with scheme's
// challenge.
func refused(scheme string, err error) *Refusal {
	p := httpx.Classify(err)
	return &Refusal{Kind: p.Kind, Status: p.Status, Scheme: scheme, Description: p.Description, Err: err}
}

// Check returns the claims of the request's access token, and whether it
// came with the DPoP scheme, or why it is refused. A bound token needs the
// DPoP scheme and a proof of its key; the DPoP scheme needs a bound token;
// with RequireDPoP a bearer token is refused.
func (c *Checker) Check(r *http.Request) (*issuer.AccessClaims, bool, *Refusal) {
	tok, viaDPoP, err := token(r)
	switch {
	case errors.Is(err, httpx.ErrNoCredentials):
		return nil, false, &Refusal{Kind: httpx.KindNoToken, Status: http.StatusUnauthorized, Scheme: "Bearer",
			Description: "a bearer token is required", Err: err}
	case err != nil:
		return nil, false, refused("Bearer", err)
	}
	claims, err := c.Issuer.Verify(tok)
	if err != nil {
		scheme := "Bearer"
		if viaDPoP {
			scheme = "DPoP"
		}
		return nil, viaDPoP, refused(scheme, err)
	}
	if rf := c.checkBinding(r, tok, claims, viaDPoP); rf != nil {
		return nil, viaDPoP, rf
	}
	return claims, viaDPoP, nil
}

// WithRole is Check, then "whose principal is of one of kinds
// (issuer.KindUser, KindClient, KindEntity, "table:<name>", or AnyKind)
// and holds one of roles". Empty kinds or roles admit nobody: a role counts
// only where the route says so, since a role called admin in an
// application's user table, on a client or on an entity need not mean the
// gateway's admin.
func (c *Checker) WithRole(r *http.Request, roles []string, kinds []issuer.PrincipalKind) (*issuer.AccessClaims, *Refusal) {
	claims, viaDPoP, rf := c.Check(r)
	if rf != nil {
		return nil, rf
	}
	kindOK := slices.Contains(kinds, AnyKind) || slices.Contains(kinds, claims.Kind)
	if !kindOK || !slices.ContainsFunc(roles, claims.HasRole) {
		scheme := "Bearer"
		if viaDPoP {
			scheme = "DPoP"
		}
		return nil, &Refusal{Kind: httpx.KindForbidden, Status: http.StatusForbidden, Scheme: scheme,
			Description: ErrLacksRole.Error(), Err: ErrLacksRole}
	}
	return claims, nil
}

// checkBinding applies DPoP to a token that verified.
func (c *Checker) checkBinding(r *http.Request, tok string, claims *issuer.AccessClaims, viaDPoP bool) *Refusal {
	bound := claims.BoundKey()
	refuse := func(kind httpx.Kind, desc string) *Refusal {
		return &Refusal{Kind: kind, Status: http.StatusUnauthorized, Scheme: "DPoP", Description: desc, Err: errors.New(desc)}
	}
	switch {
	case !viaDPoP && bound != "":
		// §7.1: a bound token is never a bearer token.
		return refuse(httpx.KindInvalidToken, "this token is bound to a DPoP key: send it as `Authorization: DPoP` with a DPoP proof")
	case !viaDPoP && c.RequireDPoP:
		return refuse(httpx.KindInvalidToken, "this site requires DPoP-bound tokens")
	case !viaDPoP:
		return nil
	case bound == "":
		return refuse(httpx.KindInvalidToken, "this token is not bound to a DPoP key: send it as a Bearer token")
	}
	proof, err := dpop.FromHeader(r.Header)
	if errors.Is(err, dpop.ErrNoProof) {
		return &Refusal{Kind: httpx.KindInvalidDPoPProof, Status: http.StatusUnauthorized, Scheme: "DPoP",
			Description: "a DPoP proof is required with the DPoP scheme", Err: err}
	}
	var p *dpop.Proof
	if err == nil {
		p, err = c.DPoP.Verify(r.Context(), proof, dpop.Request{Method: r.Method, URL: c.URL(r), AccessToken: tok})
	}
	var de *dpop.Error
	switch {
	case errors.As(err, &de): // the caller logs the refusal with its description
		return refused("DPoP", de)
	case err != nil:
		c.Log.Error("checking DPoP proof", zap.Error(err))
		return &Refusal{Kind: httpx.KindUnavailable, Status: http.StatusServiceUnavailable, Scheme: "DPoP",
			Description: "the DPoP proof could not be checked", Err: err}
	case p.JKT != bound:
		return refuse(httpx.KindInvalidDPoPProof, "the proof is signed by another key than the one the token is bound to")
	}
	return nil
}

// token returns the request's access token and whether it came with the
// DPoP scheme (RFC 9449 §7.1) rather than Bearer.
func token(r *http.Request) (tok string, viaDPoP bool, err error) {
	tok, err = httpx.BearerToken(r)
	if errors.Is(err, httpx.ErrNoCredentials) {
		tok, err = httpx.SchemeToken(r, "DPoP")
		viaDPoP = err == nil
	}
	return tok, viaDPoP, err
}

// Challenge sets the headers rf's answer must carry: its WWW-Authenticate
// challenge (for a request without a token, Bearer with DPoP offered
// beside it; a 403 names the scope that would do), use_dpop_nonce the
// nonce to use. A 503 has none (httpx.WriteProblem sets its Retry-After).
func (c *Checker) Challenge(h http.Header, rf *Refusal) {
	switch {
	case rf.Status == http.StatusServiceUnavailable:
		return
	case rf.NoToken():
		httpx.Challenge(h, "Bearer", c.Realm)
		c.OfferDPoP(h)
		return
	case rf.Scheme == "DPoP":
		c.DPoPChallenge(h, rf.Code(), rf.Description)
		return
	}
	httpx.Challenge(h, "Bearer", c.Realm, "error", rf.Code(), "error_description", rf.Description, "scope", rf.Scope)
}

// DPoPChallenge sets an RFC 9449 §7.1 DPoP challenge; use_dpop_nonce comes
// with the nonce to use (§9).
func (c *Checker) DPoPChallenge(h http.Header, code, desc string) {
	if code == dpop.CodeUseNonce {
		h.Set("DPoP-Nonce", c.DPoP.Nonce())
	}
	httpx.Challenge(h, "DPoP", c.Realm, "error", code, "error_description", desc, "algs", c.DPoP.Algs())
}

// OfferDPoP adds the DPoP challenge sent beside the Bearer one when a
// request has no token (RFC 9449 §7.1).
func (c *Checker) OfferDPoP(h http.Header) {
	httpx.AddChallenge(h, "DPoP", c.Realm, "algs", c.DPoP.Algs())
}
