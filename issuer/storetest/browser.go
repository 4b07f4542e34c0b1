package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

var errReused = errors.New("reused")

func runBrowser(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("profiles and browser clients round-trip", func(t *testing.T) {
		s := open(t)
		must(t, s.PutUser(ctx, issuer.User{Name: "alice", PasswordHash: "h", Email: "alice@example.com", DisplayName: "Alice Example"}))
		u, err := s.GetUser(ctx, "alice")
		must(t, err)
		if u.Email != "alice@example.com" || u.DisplayName != "Alice Example" {
			t.Fatalf("user profile = %+v", u)
		}
		want := issuer.Client{ID: "spa", Public: true, Consent: true, PKCEOptional: true,
			RedirectURIs:           []string{"http://127.0.0.1/cb", "https://app.example/cb"},
			PostLogoutRedirectURIs: []string{"https://app.example/"}}
		must(t, s.PutClient(ctx, want))
		c, err := s.GetClient(ctx, "spa")
		must(t, err)
		if !c.Public || !c.Consent || !c.PKCEOptional || !slices.Equal(c.RedirectURIs, want.RedirectURIs) ||
			!slices.Equal(c.PostLogoutRedirectURIs, want.PostLogoutRedirectURIs) {
			t.Fatalf("client = %+v, want %+v", c, want)
		}
		must(t, s.PutClient(ctx, issuer.Client{ID: "spa", SecretHash: "x"}))
		if c, _ := s.GetClient(ctx, "spa"); c.Public || c.Consent || len(c.RedirectURIs) != 0 {
			t.Fatalf("replaced client kept its old switches: %+v", c)
		}
	})
	t.Run("authorization codes are redeemed once, by one of concurrent callers", func(t *testing.T) {
		s := open(t)
		now := time.Now()
		code := issuer.AuthCode{Hash: "h1", ClientID: "spa", RedirectURI: "https://app.example/cb", Challenge: "ch",
			Scope: "openid", Nonce: "n", Session: "s", Family: "f1", Subject: "alice", Kind: issuer.KindUser,
			Principal: "alice", AuthTime: now.Add(-time.Minute).Truncate(time.Microsecond), AMR: []string{"pwd"},
			ExpiresAt: now.Add(time.Minute)}
		must(t, s.PutCode(ctx, code))
		var got issuer.AuthCode
		won, lost := race(t, 8, errReused, func(int) error {
			c, err := s.RedeemCode(ctx, "h1", now)
			if errors.Is(err, issuer.ErrCodeReused) {
				if c.Family != "f1" {
					t.Errorf("a reused code comes back without its family: %+v", c)
				}
				return errReused
			}
			if err == nil {
				got = c
			}
			return err
		})
		if won != 1 || lost != 7 {
			t.Fatalf("won %d, lost %d; want 1 and 7", won, lost)
		}
		if got.ClientID != code.ClientID || got.RedirectURI != code.RedirectURI || got.Challenge != "ch" || got.Nonce != "n" ||
			got.Session != "s" || got.Family != "f1" || got.Kind != issuer.KindUser || !got.AuthTime.Equal(code.AuthTime) ||
			!slices.Equal(got.AMR, []string{"pwd"}) {
			t.Fatalf("redeemed %+v, stored %+v", got, code)
		}
		if _, err := s.RedeemCode(ctx, "nope", now); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("unknown code: %v", err)
		}
		must(t, s.PutCode(ctx, issuer.AuthCode{Hash: "h2", ExpiresAt: now.Add(time.Second)}))
		if _, err := s.RedeemCode(ctx, "h2", now.Add(time.Second)); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("expired code: %v", err)
		}
		must(t, s.PurgeExpired(ctx, now.Add(time.Hour)))
		if _, err := s.RedeemCode(ctx, "h1", now); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("purged code: %v", err)
		}
	})
	t.Run("sessions slide up to their absolute lifetime and end", func(t *testing.T) {
		s := open(t)
		now := time.Now().Truncate(time.Microsecond)
		ss := issuer.Session{Hash: "s1", Subject: "alice", Kind: issuer.KindUser, Principal: "alice", AuthTime: now,
			AMR: []string{"pwd"}, IdleUntil: now.Add(time.Hour), ExpiresAt: now.Add(3 * time.Hour)}
		must(t, s.CreateSession(ctx, ss))
		got, err := s.GetSession(ctx, "s1", now)
		must(t, err)
		if got.Subject != "alice" || !got.AuthTime.Equal(now) || !got.IdleUntil.Equal(ss.IdleUntil) || !slices.Equal(got.AMR, ss.AMR) {
			t.Fatalf("session = %+v, want %+v", got, ss)
		}
		if _, err := s.GetSession(ctx, "s1", now.Add(time.Hour)); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("idle session: %v", err)
		}
		must(t, s.TouchSession(ctx, "s1", now.Add(2*time.Hour)))
		if _, err := s.GetSession(ctx, "s1", now.Add(time.Hour)); err != nil {
			t.Fatalf("touched session: %v", err)
		}
		must(t, s.TouchSession(ctx, "s1", now.Add(9*time.Hour)))
		if got, _ := s.GetSession(ctx, "s1", now); !got.IdleUntil.Equal(ss.ExpiresAt) {
			t.Fatalf("a touch slid past the absolute expiry: %v", got.IdleUntil)
		}
		if _, err := s.GetSession(ctx, "s1", now.Add(3*time.Hour)); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
		must(t, s.EndSession(ctx, "s1"))
		must(t, s.EndSession(ctx, "s1"))
		if _, err := s.GetSession(ctx, "s1", now); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("ended session: %v", err)
		}
		// Ending a subject's sessions spares those begun later, and others'.
		for i, at := range []time.Time{now, now.Add(time.Minute)} {
			must(t, s.CreateSession(ctx, issuer.Session{Hash: string(rune('a' + i)), Subject: "bob", AuthTime: at,
				IdleUntil: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}))
		}
		must(t, s.CreateSession(ctx, issuer.Session{Hash: "c", Subject: "carol", AuthTime: now, IdleUntil: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)}))
		must(t, s.EndSubjectSessions(ctx, "bob", now))
		for hash, live := range map[string]bool{"a": false, "b": true, "c": true} {
			if _, err := s.GetSession(ctx, hash, now); (err == nil) != live {
				t.Fatalf("session %s: %v, want live %v", hash, err, live)
			}
		}
	})
	t.Run("consents per user and client", func(t *testing.T) {
		s := open(t)
		now := time.Now().Truncate(time.Microsecond)
		must(t, s.PutConsent(ctx, issuer.Consent{Subject: "alice", ClientID: "partner", Scopes: []string{"openid"}, GrantedAt: now}))
		must(t, s.PutConsent(ctx, issuer.Consent{Subject: "alice", ClientID: "partner", Scopes: []string{"openid", "email"}, GrantedAt: now}))
		must(t, s.PutConsent(ctx, issuer.Consent{Subject: "alice", ClientID: "other", Scopes: []string{"openid"}, GrantedAt: now}))
		c, err := s.GetConsent(ctx, "alice", "partner")
		must(t, err)
		if !slices.Equal(c.Scopes, []string{"openid", "email"}) || !c.GrantedAt.Equal(now) {
			t.Fatalf("consent = %+v", c)
		}
		l, err := s.ListConsents(ctx, "alice")
		must(t, err)
		if len(l) != 2 || l[0].ClientID != "other" || l[1].ClientID != "partner" {
			t.Fatalf("ListConsents = %+v", l)
		}
		if n, err := s.DeleteConsent(ctx, "alice", "partner"); err != nil || n != 1 {
			t.Fatalf("DeleteConsent = %d, %v", n, err)
		}
		if _, err := s.GetConsent(ctx, "alice", "partner"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("forgotten consent: %v", err)
		}
		if n, err := s.DeleteConsent(ctx, "alice", ""); err != nil || n != 1 {
			t.Fatalf("DeleteConsent all = %d, %v", n, err)
		}
	})
}
