package tokengate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/internal/httpx"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/oauth"
)

// DPoP (RFC 9449) glue: the verifier's setup, the token endpoint's policy
// and the guard's checks. The proof rules themselves live in package dpop.

// dpopPolicy is the site's DPoP configuration, or the defaults.
func (h *Handler) dpopPolicy() config.DPoP {
	if h.DPoP == nil {
		return config.DPoP{}
	}
	return *h.DPoP
}

// checkDPoPConfig validates the dpop block before Provision opens anything.
func (h *Handler) checkDPoPConfig() error {
	_, err := dpop.New(dpop.Config{Algs: h.dpopPolicy().Algs})
	return err
}

// provisionDPoP builds the verifier. Its replay record is the store, so a
// proof used on one instance is refused on every instance sharing it; its
// nonce key is a store setting, so their nonces agree.
func (h *Handler) provisionDPoP(ctx context.Context) error {
	pol := h.dpopPolicy()
	cfg := dpop.Config{Algs: pol.Algs, Window: time.Duration(pol.Window), Replay: h.issuer.UseDPoPProof, Now: h.core.Now}
	if pol.Nonce {
		key, err := h.core.Store().Setting(ctx, "dpop_nonce_key", func() (string, error) {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return "", fmt.Errorf("generating DPoP nonce key: %w", err)
			}
			return base64.RawStdEncoding.EncodeToString(b), nil
		})
		if err != nil {
			return fmt.Errorf("dpop: nonce key: %w", err)
		}
		if cfg.NonceKey, err = base64.RawStdEncoding.DecodeString(key); err != nil {
			return fmt.Errorf("dpop: stored nonce key: %w", err)
		}
	}
	var err error
	h.dpop, err = dpop.New(cfg)
	return err
}

// oauthDPoP is the token endpoint's policy.
func (h *Handler) oauthDPoP() *oauth.DPoP {
	pol := h.dpopPolicy()
	return &oauth.DPoP{Verifier: h.dpop, Required: pol.Required, Clients: pol.Clients, URL: requestURL}
}

// requestURL is the URL the client addressed, the htu its proof names:
// the original request's, before any rewrite by earlier handlers.
func requestURL(r *http.Request) string {
	u := r.URL
	if or, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && or.URL != nil {
		u = or.URL
	}
	return requestOrigin(r) + u.EscapedPath()
}

// requestOrigin is the scheme and Host the request was sent to. It only
// ever rebuilds the URL a DPoP proof must name; the issuer never comes
// from the request.
func requestOrigin(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// accessToken returns the request's access token and whether it came with
// the DPoP scheme (RFC 9449 §7.1) rather than Bearer.
func accessToken(r *http.Request) (tok string, viaDPoP bool, err error) {
	tok, err = httpx.BearerToken(r)
	if errors.Is(err, httpx.ErrNoCredentials) {
		tok, err = httpx.SchemeToken(r, "DPoP")
		viaDPoP = err == nil
	}
	return tok, viaDPoP, err
}

// offerDPoP adds the DPoP challenge sent beside the Bearer one when a
// request has no token (RFC 9449 §7.1).
func (h *Handler) offerDPoP(hdr http.Header) {
	httpx.AddChallenge(hdr, "DPoP", h.realm, "algs", h.dpop.Algs())
}

// checkDPoP applies DPoP to a request whose token verified: a bound token
// needs the DPoP scheme and a proof of its key; the DPoP scheme needs a
// bound token; a site that requires DPoP refuses bearer tokens. It writes
// the refusal and returns false, or returns true.
func (h *Handler) checkDPoP(w http.ResponseWriter, r *http.Request, tok string, c *issuer.AccessClaims, viaDPoP bool) bool {
	bound := c.BoundKey()
	switch {
	case !viaDPoP && bound != "":
		// §7.1: a bound token is never a bearer token.
		h.dpopChallenge(w, http.StatusUnauthorized, "invalid_token", "this token is bound to a DPoP key: send it as `Authorization: DPoP` with a DPoP proof")
		return false
	case !viaDPoP && h.dpopPolicy().Required:
		h.dpopChallenge(w, http.StatusUnauthorized, "invalid_token", "this site requires DPoP-bound tokens")
		return false
	case !viaDPoP:
		return true
	case bound == "":
		h.dpopChallenge(w, http.StatusUnauthorized, "invalid_token", "this token is not bound to a DPoP key: send it as a Bearer token")
		return false
	}
	proof, err := dpop.FromHeader(r.Header)
	if errors.Is(err, dpop.ErrNoProof) {
		h.dpopChallenge(w, http.StatusUnauthorized, dpop.CodeInvalidProof, "a DPoP proof is required with the DPoP scheme")
		return false
	}
	var p *dpop.Proof
	if err == nil {
		p, err = h.dpop.Verify(r.Context(), proof, dpop.Request{Method: r.Method, URL: requestURL(r), AccessToken: tok})
	}
	var de *dpop.Error
	switch {
	case errors.As(err, &de):
		h.log.Debug("DPoP proof refused", zap.String("reason", de.Description), zap.String("sub", c.Subject), zap.String("path", r.URL.Path))
		h.dpopChallenge(w, http.StatusUnauthorized, de.Code, de.Description)
		return false
	case err != nil:
		h.log.Error("checking DPoP proof", zap.Error(err))
		writeUnavailable(w, "the DPoP proof could not be checked")
		return false
	case p.JKT != bound:
		h.dpopChallenge(w, http.StatusUnauthorized, dpop.CodeInvalidProof, "the proof is signed by another key than the one the token is bound to")
		return false
	}
	return true
}

// dpopChallenge answers with an RFC 9449 §7.1 DPoP challenge and a JSON
// body; use_dpop_nonce comes with the nonce to use (§9).
func (h *Handler) dpopChallenge(w http.ResponseWriter, status int, code, desc string) {
	if code == dpop.CodeUseNonce {
		w.Header().Set("DPoP-Nonce", h.dpop.Nonce())
	}
	httpx.Challenge(w.Header(), "DPoP", h.realm, "error", code, "error_description", desc, "algs", h.dpop.Algs())
	httpx.WriteJSON(w, status, errorBody(code, desc))
}
