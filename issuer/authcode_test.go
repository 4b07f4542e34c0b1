package issuer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B

func TestS256MatchesRFC7636(t *testing.T) {
	if got := issuer.S256(verifier); got != "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" {
		t.Fatalf("S256 = %s", got)
	}
}

// browserIssuer is an issuer with alice and a public client spa, and a
// live session of alice's.
func browserIssuer(t *testing.T, clk *clock) (*issuer.Issuer, issuer.Client, issuer.Session) {
	t.Helper()
	core, _ := newCore(t, clk, nil)
	spa := issuer.Client{ID: "spa", Public: true, RedirectURIs: []string{"https://app.example/cb"}}
	is := newIssuer(t, core, issuer.Config{Users: []issuer.User{{Name: "alice", PasswordHash: issuertest.Hash(t, "pw"), Roles: []string{"admin"}}},
		Clients: []issuer.Client{spa}})
	p, err := is.SignIn(context.Background(), "alice", "pw")
	must(t, err)
	_, s, err := is.StartSession(context.Background(), p, []string{"pwd"})
	must(t, err)
	return is, spa, s
}

func TestAuthorizationCodes(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	is, spa, s := browserIssuer(t, clk)
	issue := func(challenge string) string {
		t.Helper()
		code, err := is.IssueCode(ctx, issuer.CodeRequest{Client: spa, RedirectURI: "https://app.example/cb", Challenge: challenge,
			Scope: "openid", Nonce: "n-1", Session: s})
		must(t, err)
		return code
	}
	ok := issuer.RedeemRequest{ClientID: "spa", RedirectURI: "https://app.example/cb", Verifier: verifier}

	t.Run("redeemed once; a replay revokes what the first issued", func(t *testing.T) {
		req := ok
		req.Code = issue(issuer.S256(verifier))
		got, err := is.RedeemCode(ctx, req)
		must(t, err)
		if got.Principal.Subject != "alice" || got.Code.Nonce != "n-1" || !got.Code.AuthTime.Equal(s.AuthTime) ||
			got.Tokens.RefreshToken == "" || got.Tokens.Claims.SID != got.Code.Family {
			t.Fatalf("redeemed %+v", got)
		}
		if _, err := is.RedeemCode(ctx, req); !errors.Is(err, issuer.ErrCodeInvalid) {
			t.Fatalf("second redemption: %v", err)
		}
		if _, err := is.Verify(got.Tokens.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("access token of a replayed code: %v", err)
		}
		if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: got.Tokens.RefreshToken, ClientID: "spa"}); !errors.Is(err, issuer.ErrRefreshInvalid) {
			t.Fatalf("refresh token of a replayed code: %v", err)
		}
	})
	for _, tc := range []struct {
		name      string
		challenge string
		change    func(*issuer.RedeemRequest)
		want      error
	}{
		{"another client", issuer.S256(verifier), func(r *issuer.RedeemRequest) { r.ClientID = "other" }, issuer.ErrCodeInvalid},
		{"another redirect URI", issuer.S256(verifier), func(r *issuer.RedeemRequest) { r.RedirectURI += "/" }, issuer.ErrCodeInvalid},
		{"wrong verifier", issuer.S256(verifier), func(r *issuer.RedeemRequest) { r.Verifier = strings.Repeat("a", 43) }, issuer.ErrPKCE},
		{"missing verifier", issuer.S256(verifier), func(r *issuer.RedeemRequest) { r.Verifier = "" }, issuer.ErrPKCE},
		{"the challenge as verifier", issuer.S256(verifier), func(r *issuer.RedeemRequest) { r.Verifier = issuer.S256(verifier) }, issuer.ErrPKCE},
		{"a verifier for a code without challenge", "", func(*issuer.RedeemRequest) {}, issuer.ErrPKCE},
		{"unknown code", issuer.S256(verifier), func(r *issuer.RedeemRequest) { r.Code = "tgc_nope" }, issuer.ErrCodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := ok
			req.Code = issue(tc.challenge)
			tc.change(&req)
			if _, err := is.RedeemCode(ctx, req); !errors.Is(err, tc.want) {
				t.Fatalf("RedeemCode = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("no challenge, no verifier", func(t *testing.T) {
		req := ok
		req.Code, req.Verifier = issue(""), ""
		if _, err := is.RedeemCode(ctx, req); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		req := ok
		req.Code = issue(issuer.S256(verifier))
		clk.Add(issuer.CodeTTL)
		if _, err := is.RedeemCode(ctx, req); !errors.Is(err, issuer.ErrCodeInvalid) {
			t.Fatalf("a code after CodeTTL: %v", err)
		}
	})
}

func TestAllowsRedirect(t *testing.T) {
	c := issuer.Client{RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/native", "http://[::1]:8080/cb", "http://localhost/x?a=1"}}
	for uri, want := range map[string]bool{
		"https://app.example/cb":            true,
		"https://app.example/cb/":           false,
		"https://APP.example/cb":            false,
		"https://app.example/CB":            false,
		"https://app.example/cb?x=1":        false,
		"https://app.example/cb#f":          false,
		"https://evil@app.example/cb":       false,
		"https://app.example:444/cb":        false,
		"https://app.example.evil/cb":       false,
		"http://app.example/cb":             false,
		"http://127.0.0.1:51234/native":     true,
		"http://127.0.0.1/native":           true,
		"http://127.0.0.1:51234/native/":    false,
		"http://127.0.0.1:51234/other":      false,
		"http://u@127.0.0.1:51234/native":   false,
		"https://127.0.0.1:51234/native":    false,
		"http://[::1]:9/cb":                 true,
		"http://localhost:5173/x?a=1":       true,
		"http://localhost:5173/x?a=2":       false,
		"http://127.0.0.2:1/native":         false, // only the port may differ (RFC 8252 §7.3)
		"http://localhost.evil:1/x?a=1":     false,
		"http://127.0.0.1:+1/native":        false,
		"":                                  false,
		"javascript:alert(1)//127.0.0.1/cb": false,
	} {
		if got := c.AllowsRedirect(uri); got != want {
			t.Errorf("AllowsRedirect(%q) = %v, want %v", uri, got, want)
		}
	}
}

func TestValidVerifierAndChallenge(t *testing.T) {
	for v, want := range map[string]bool{
		verifier:                      true,
		strings.Repeat("a", 42):       false,
		strings.Repeat("a", 43):       true,
		strings.Repeat("~", 128):      true,
		strings.Repeat("a", 129):      false,
		strings.Repeat("a", 42) + "+": false,
	} {
		if got := issuer.ValidVerifier(v); got != want {
			t.Errorf("ValidVerifier(%q) = %v", v, got)
		}
	}
	if !issuer.ValidChallenge(issuer.S256(verifier)) || issuer.ValidChallenge("short") || issuer.ValidChallenge(verifier+"A") {
		t.Error("ValidChallenge")
	}
}

func TestSignInSessions(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{Users: []issuer.User{{Name: "alice", PasswordHash: issuertest.Hash(t, "pw")}},
		SessionTTL: time.Hour, SessionMaxTTL: 3 * time.Hour, NoThrottle: true})
	for _, tc := range []struct{ user, pw string }{{"alice", "wrong"}, {"nobody", "pw"}} {
		if _, err := is.SignIn(ctx, tc.user, tc.pw); !errors.Is(err, issuer.ErrInvalidCredentials) {
			t.Fatalf("SignIn(%s, %s) = %v, want ErrInvalidCredentials", tc.user, tc.pw, err)
		}
	}
	p, err := is.SignIn(ctx, "alice", "pw")
	must(t, err)
	id, s, err := is.StartSession(ctx, p, []string{"pwd"})
	must(t, err)
	if strings.Contains(s.Hash, id) || !strings.HasPrefix(id, "tgs_") {
		t.Fatalf("session id %q, hash %q", id, s.Hash)
	}
	id2, _, err := is.StartSession(ctx, p, []string{"pwd"})
	must(t, err)
	if id2 == id {
		t.Fatal("two sign-ins got one session id")
	}
	// Use slides the idle expiry; the absolute one stands.
	for range 5 {
		clk.Add(40 * time.Minute)
		if clk.Now().Before(s.ExpiresAt) {
			if _, err := is.LookupSession(ctx, id); err != nil {
				t.Fatalf("session in use at %v: %v", clk.Now(), err)
			}
		}
	}
	if _, err := is.LookupSession(ctx, id); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("session past its absolute lifetime: %v", err)
	}
	// Idle for longer than SessionTTL: gone.
	id3, _, err := is.StartSession(ctx, p, nil)
	must(t, err)
	clk.Add(time.Hour)
	if _, err := is.LookupSession(ctx, id3); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("idle session: %v", err)
	}
	// Logout, and a signed-out subject.
	id4, _, err := is.StartSession(ctx, p, nil)
	must(t, err)
	must(t, is.EndSession(ctx, id4))
	if _, err := is.LookupSession(ctx, id4); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("ended session: %v", err)
	}
	id5, _, err := is.StartSession(ctx, p, nil)
	must(t, err)
	must(t, core.RevokeSubject(ctx, "alice")) // another instance's revoke --sub, seen through the feed
	if _, err := is.LookupSession(ctx, id5); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("session of a revoked subject: %v", err)
	}
	for _, bad := range []string{"", "tgs_", id5 + "x", "x"} {
		if _, err := is.LookupSession(ctx, bad); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("LookupSession(%q) = %v", bad, err)
		}
	}
}

func TestConsentGrows(t *testing.T) {
	ctx := context.Background()
	is := issuertest.New(t, issuer.Config{})
	if ok, err := is.HasConsent(ctx, "alice", "partner", []string{"openid"}); err != nil || ok {
		t.Fatalf("before any consent: %v %v", ok, err)
	}
	must(t, is.GrantConsent(ctx, "alice", "partner", []string{"openid"}))
	must(t, is.GrantConsent(ctx, "alice", "partner", []string{"email"}))
	if ok, _ := is.HasConsent(ctx, "alice", "partner", []string{"openid", "email"}); !ok {
		t.Fatal("consents do not add up")
	}
	if ok, _ := is.HasConsent(ctx, "alice", "partner", []string{"openid", "groups"}); ok {
		t.Fatal("a wider request counts as consented")
	}
}
