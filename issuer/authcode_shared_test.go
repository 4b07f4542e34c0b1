package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestCodesAndSessionsAcrossInstances: on a shared store (SQLite file,
// PostgreSQL), a session begun on one instance is live on another, a code
// one instance issued is redeemed on the other, a replay on the first is
// refused and ends what the second issued (there too), and a session ended
// on one is gone on both.
func TestCodesAndSessionsAcrossInstances(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "tg.db")
			if driver == "postgres" {
				dsn = pgtest.Schema(t)
			}
			ctx := context.Background()
			spa := issuer.Client{ID: "spa", Public: true, RedirectURIs: []string{"https://app.example/cb"}}
			cfg := issuer.Config{Clients: []issuer.Client{spa}, NoThrottle: true,
				Users: []issuer.User{{Name: "alice", PasswordHash: issuertest.Hash(t, "pw")}}}
			a, b := openWatched(t, driver, dsn), openWatched(t, driver, dsn)
			isA := newIssuer(t, a, cfg)
			must(t, b.SyncNow(ctx))
			isB := newIssuer(t, b, cfg)

			p, err := isA.SignIn(ctx, "alice", "pw")
			must(t, err)
			id, s, err := isA.StartSession(ctx, p, []string{"pwd"})
			must(t, err)
			if got, err := isB.LookupSession(ctx, id); err != nil || got.Subject != "alice" || !got.AuthTime.Equal(s.AuthTime) {
				t.Fatalf("A's session at B: %+v %v", got, err)
			}
			code, err := isA.IssueCode(ctx, issuer.CodeRequest{Client: spa, RedirectURI: "https://app.example/cb",
				Challenge: issuer.S256(verifier), Scope: "openid", Session: s})
			must(t, err)
			req := issuer.RedeemRequest{Code: code, ClientID: "spa", RedirectURI: "https://app.example/cb", Verifier: verifier}
			got, err := isB.RedeemCode(ctx, req)
			if err != nil || got.Principal.Subject != "alice" {
				t.Fatalf("A's code at B: %+v %v", got, err)
			}
			if _, err := isA.RedeemCode(ctx, req); !errors.Is(err, issuer.ErrCodeInvalid) {
				t.Fatalf("the replay at A: %v", err)
			}
			waitFor(t, "B's token revoked after the replay at A", func() bool {
				_, err := isB.Verify(got.Tokens.AccessToken)
				return errors.Is(err, issuer.ErrTokenRevoked)
			})
			if _, _, err := isB.Refresh(ctx, issuer.RefreshRequest{Token: got.Tokens.RefreshToken, ClientID: "spa"}); err == nil {
				t.Fatal("B's refresh token still works after the replay")
			}
			must(t, isB.EndSession(ctx, id))
			if _, err := isA.LookupSession(ctx, id); !errors.Is(err, issuer.ErrNotFound) {
				t.Fatalf("the session ended at B, at A: %v", err)
			}
		})
	}
}
