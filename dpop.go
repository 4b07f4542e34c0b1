package tokengate

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tokengate/caddy-tokengate/config"
	"github.com/tokengate/caddy-tokengate/dpop"
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
