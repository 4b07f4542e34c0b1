package login_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestCodeExchangeRefusals: a code from the login flow, redeemed at
// oauth's /token, is refused (invalid_grant) when replayed, expired,
// presented by another client or at another redirect URI, or with a
// wrong, missing or downgraded verifier; a refused try spends it.
func TestCodeExchangeRefusals(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	other := verifier[1:] + "A" // a well-formed verifier of another challenge
	for _, tc := range []struct {
		name      string
		authorize []string                        // authorizeQuery's extra
		before    func(t *testing.T, code string) // what happened to the code first
		form      func(code string) url.Values
	}{
		{name: "replayed after a redemption", before: func(t *testing.T, code string) {
			if a := s.token(exchange(code)); a.status != http.StatusOK {
				t.Fatalf("first redemption: %d %v", a.status, a.body)
			}
		}, form: func(code string) url.Values { return exchange(code) }},
		{name: "another client's code", form: func(code string) url.Values { return exchange(code, "client_id", "other") }},
		{name: "the right client after another client tried it", before: func(t *testing.T, code string) {
			wantTokenError(t, s.token(exchange(code, "client_id", "other")), "invalid_grant")
		}, form: func(code string) url.Values { return exchange(code) }},
		{name: "wrong verifier", form: func(code string) url.Values { return exchange(code, "code_verifier", other) }},
		{name: "missing verifier", form: func(code string) url.Values { return exchange(code, "code_verifier", "") }},
		{name: "verifier too short", form: func(code string) url.Values { return exchange(code, "code_verifier", verifier[:42]) }},
		{name: "the challenge as verifier (plain)", form: func(code string) url.Values { return exchange(code, "code_verifier", challenge) }},
		{name: "the right verifier after a wrong one", before: func(t *testing.T, code string) {
			wantTokenError(t, s.token(exchange(code, "code_verifier", other)), "invalid_grant")
		}, form: func(code string) url.Values { return exchange(code) }},
		{name: "a verifier for a code issued without a challenge", authorize: []string{"client_id", "legacy", "code_challenge", "", "code_challenge_method", ""},
			form: func(code string) url.Values { return exchange(code, "client_id", "legacy", "client_secret", "s") }},
		{name: "another redirect URI", form: func(code string) url.Values { return exchange(code, "redirect_uri", loopV4) }},
		{name: "redirect_uri left out", form: func(code string) url.Values { return exchange(code, "redirect_uri", "") }},
		{name: "expired", before: func(t *testing.T, code string) { s.clk.Add(issuer.CodeTTL + time.Second) },
			form: func(code string) url.Values { return exchange(code) }},
		{name: "unknown", form: func(code string) url.Values { return exchange(code + "x") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code := codeFor(t, s.site, tc.authorize...)
			if tc.before != nil {
				tc.before(t, code)
			}
			wantTokenError(t, s.token(tc.form(code)), "invalid_grant")
		})
	}
	t.Run("baseline: the right request is taken", func(t *testing.T) {
		if a := s.token(exchange(codeFor(t, s.site))); a.status != http.StatusOK || a.str("access_token") == "" {
			t.Fatalf("%d %v", a.status, a.body)
		}
	})
	t.Run("a code just inside its lifetime is taken", func(t *testing.T) {
		code := codeFor(t, s.site)
		s.clk.Add(issuer.CodeTTL - time.Second)
		if a := s.token(exchange(code)); a.status != http.StatusOK {
			t.Fatalf("%d %v", a.status, a.body)
		}
	})
}

// TestCodeReplayRevokes: a replayed code revokes what its redemption
// issued (RFC 6749 §4.1.2): the access token, the refresh token, and the
// tokens a refresh rotated in since.
func TestCodeReplayRevokes(t *testing.T) {
	s := newFlowSite(t, "Example Corp")
	code := codeFor(t, s.site)
	first := s.token(exchange(code))
	if first.status != http.StatusOK || first.str("refresh_token") == "" {
		t.Fatalf("redemption: %d %v", first.status, first.body)
	}
	rotated := s.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.str("refresh_token")}, "client_id": {"spa"}})
	if rotated.status != http.StatusOK || rotated.str("refresh_token") == "" {
		t.Fatalf("refresh: %d %v", rotated.status, rotated.body)
	}
	for _, at := range []string{first.str("access_token"), rotated.str("access_token")} {
		if _, err := s.is.Verify(at); err != nil {
			t.Fatalf("before the replay: %v", err)
		}
	}
	wantTokenError(t, s.token(exchange(code)), "invalid_grant")
	for name, at := range map[string]string{"first access token": first.str("access_token"), "rotated access token": rotated.str("access_token")} {
		if _, err := s.is.Verify(at); err == nil {
			t.Errorf("%s still verifies after the code's replay", name)
		}
	}
	wantTokenError(t, s.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated.str("refresh_token")}, "client_id": {"spa"}}),
		"invalid_grant")
	// The browser's session is not the grant: a new code still works.
	if a := s.token(exchange(codeFor(t, s.site))); a.status != http.StatusOK {
		t.Fatalf("a new code after the replay: %d %v", a.status, a.body)
	}
}
