package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// CodeTTL is how long an authorization code may wait for its redemption
// (RFC 6749 §4.1.2 recommends at most ten minutes; a browser's redirect
// takes a second).
const CodeTTL = 60 * time.Second

// Authorization code errors.
var (
	// ErrCodeInvalid says a code is unknown, expired, used, or was issued
	// to another client or redirect URI: invalid_grant.
	ErrCodeInvalid = errors.New("authorization code is invalid, expired or already used")
	// ErrPKCE says the code_verifier does not match the code's challenge,
	// or is missing, or came for a code issued without one: invalid_grant.
	ErrPKCE = errors.New("code_verifier does not match the code_challenge")
)

const codePrefix = "tgc_"

// codeKey is a code's store key: its SHA-256. Codes carry 256 random bits.
func codeKey(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// S256 is the PKCE S256 challenge of verifier (RFC 7636 §4.2).
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CodeRequest is what an authorization code is issued for: a signed-in
// user's session, for a client, to be redeemed at one redirect URI.
type CodeRequest struct {
	Client      Client
	RedirectURI string
	Challenge   string // PKCE S256 challenge; "" when the client sent none
	Scope       string // already checked with GrantScope
	Nonce       string
	Session     Session
}

// IssueCode returns a new single-use authorization code for req, kept in
// the store (by its hash) for CodeTTL.
func (i *Issuer) IssueCode(ctx context.Context, req CodeRequest) (string, error) {
	now := i.core.now()
	code, err := NewSecret(codePrefix)
	if err != nil {
		return "", err
	}
	family, err := newFamilyID(now)
	if err != nil {
		return "", err
	}
	s := req.Session
	rec := AuthCode{Hash: codeKey(code), ClientID: req.Client.ID, RedirectURI: req.RedirectURI, Challenge: req.Challenge,
		Scope: req.Scope, Nonce: req.Nonce, Session: s.Hash, Family: family, Subject: s.Subject, Kind: s.Kind,
		Principal: s.Principal, AuthTime: s.AuthTime, AMR: s.AMR, ExpiresAt: now.Add(CodeTTL)}
	if err := i.codeStore.PutCode(ctx, rec); err != nil {
		return "", fmt.Errorf("storing authorization code: %w", err)
	}
	return code, nil
}

// RedeemRequest is a token request with grant_type authorization_code.
type RedeemRequest struct {
	Code        string
	ClientID    string // the authenticated client (or the public client named)
	RedirectURI string
	Verifier    string // code_verifier
	JKT         string // the DPoP key the tokens are bound to; "" for none
	// BindRefresh binds the refresh family to JKT too (a public client,
	// RFC 9449 §5).
	BindRefresh bool
}

// Redeemed is what a code's redemption issued, with what the code said
// about the sign-in (for the ID token).
type Redeemed struct {
	Tokens    Tokens
	Principal Principal
	Code      AuthCode
}

// RedeemCode exchanges an authorization code for tokens (RFC 6749 §4.1.3)
// once. A second redemption is ErrCodeInvalid and revokes what the first
// issued (§4.1.2). The store marks the code used before anything else is
// checked, so a code presented with the wrong client, redirect URI or
// verifier is spent too: a code is only ever tried once.
func (i *Issuer) RedeemCode(ctx context.Context, req RedeemRequest) (Redeemed, error) {
	now := i.core.Stamp()
	rec, err := i.codeStore.RedeemCode(ctx, codeKey(req.Code), now)
	switch {
	case errors.Is(err, ErrCodeReused):
		i.core.Emit(ctx, Event{Kind: EventCodeReused, Subject: rec.Subject, ClientID: rec.ClientID, Session: rec.Family})
		if rerr := i.revokeFamily(ctx, rec.Family, now); rerr != nil {
			return Redeemed{}, rerr
		}
		return Redeemed{}, ErrCodeInvalid
	case errors.Is(err, ErrNotFound):
		return Redeemed{}, ErrCodeInvalid
	case err != nil:
		return Redeemed{}, fmt.Errorf("redeeming authorization code: %w", err)
	}
	if rec.ClientID != req.ClientID || rec.RedirectURI != req.RedirectURI {
		return Redeemed{}, ErrCodeInvalid
	}
	if err := checkVerifier(rec.Challenge, req.Verifier); err != nil {
		return Redeemed{}, err
	}
	p, err := i.refreshPrincipal(ctx, RefreshRecord{Kind: rec.Kind, Principal: rec.Principal, Subject: rec.Subject})
	if err != nil {
		return Redeemed{}, ErrCodeInvalid // the user is gone or changed
	}
	toks, next, err := i.mint(ctx, Grant{Principal: p, ClientID: rec.ClientID, Scope: rec.Scope, Refresh: true, JKT: req.JKT},
		now, rec.Family, rec.AuthTime)
	if err != nil {
		return Redeemed{}, err
	}
	if req.BindRefresh && req.JKT != "" {
		if err := i.proofStore.BindFamily(ctx, rec.Family, req.JKT, next.ExpiresAt); err != nil {
			return Redeemed{}, err
		}
	}
	if err := i.refreshStore.CreateRefresh(ctx, *next, i.cfg.SingleSession); err != nil {
		return Redeemed{}, fmt.Errorf("storing refresh token: %w", err)
	}
	if i.cfg.SingleSession {
		if err := i.endOtherSessions(ctx, toks.Claims, false, now); err != nil {
			return Redeemed{}, err
		}
	}
	i.core.Emit(ctx, Event{Kind: EventIssued, Grant: "authorization_code", Subject: toks.Claims.Subject, ClientID: rec.ClientID,
		JTI: toks.Claims.ID, Session: rec.Family, ExpiresAt: toks.Claims.ExpiresAt.Time})
	return Redeemed{Tokens: toks, Principal: p, Code: rec}, nil
}

// checkVerifier checks a code_verifier against the code's challenge: a
// code issued with a challenge needs its verifier, one issued without
// takes none (RFC 9700 §2.1.1: a verifier without a challenge is a
// downgrade attempt).
func checkVerifier(challenge, verifier string) error {
	if challenge == "" {
		if verifier != "" {
			return ErrPKCE
		}
		return nil
	}
	if !ValidVerifier(verifier) || subtle.ConstantTimeCompare([]byte(S256(verifier)), []byte(challenge)) != 1 {
		return ErrPKCE
	}
	return nil
}

// ValidVerifier reports whether v is a code_verifier as RFC 7636 §4.1
// spells one: 43 to 128 characters of [A-Za-z0-9-._~].
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	return strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r))
	}) < 0
}

// ValidChallenge reports whether c can be an S256 challenge: the
// base64url of a SHA-256, 43 characters.
func ValidChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// AllowsRedirect reports whether uri is one of the client's registered
// redirect URIs: the same string (RFC 9700 §4.1.3), or, for a loopback
// URI registered by a native app, the same but for the port (RFC 8252
// §7.3).
func (c Client) AllowsRedirect(uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	got, ok := loopbackWithoutPort(uri)
	if !ok {
		return false
	}
	for _, r := range c.RedirectURIs {
		if reg, ok := loopbackWithoutPort(r); ok && reg == got {
			return true
		}
	}
	return false
}

// loopbackWithoutPort returns an http loopback URI with its port taken
// out, or false for any other URI.
func loopbackWithoutPort(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	host := u.Hostname()
	if !isLoopback(host) {
		return "", false
	}
	if p := u.Port(); p != "" && strings.TrimLeft(p, "0123456789") != "" {
		return "", false
	}
	u.Host = host
	if strings.Contains(host, ":") {
		u.Host = "[" + host + "]"
	}
	return u.String(), true
}
