package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

func sessionIssuer(t *testing.T, cfg issuer.Config) (*issuer.Issuer, *clock, issuer.Principal) {
	t.Helper()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	must(t, err)
	u := issuer.User{Name: "alice", PasswordHash: string(h)}
	cfg.Users = append(cfg.Users, u)
	return newIssuer(t, core, cfg), clk, issuer.UserPrincipal(u)
}

func login(t *testing.T, is *issuer.Issuer, p issuer.Principal, refresh bool) issuer.Tokens {
	t.Helper()
	toks, err := is.Issue(context.Background(), issuer.Grant{Principal: p, ClientID: "web", Refresh: refresh})
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

func refresh(is *issuer.Issuer, rt string) (issuer.Tokens, error) {
	toks, _, err := is.Refresh(context.Background(), issuer.RefreshRequest{Token: rt, ClientID: "web"})
	return toks, err
}

func wantVerify(t *testing.T, is *issuer.Issuer, at string, want error) {
	t.Helper()
	if _, err := is.Verify(at); !errors.Is(err, want) && !(want == nil && err == nil) {
		t.Fatalf("Verify = %v, want %v", err, want)
	}
}

// TestRefreshRetryWithinGrace: a client that lost the response to its
// refresh can present the same token again within the grace and continue;
// the pair it lost is superseded, and whoever presents that one later ends
// the whole session.
func TestRefreshRetryWithinGrace(t *testing.T) {
	is, clk, p := sessionIssuer(t, issuer.Config{})
	first := login(t, is, p, true)
	clk.Add(time.Minute)
	lost, err := refresh(is, first.RefreshToken)
	must(t, err)
	clk.Add(10 * time.Second)
	retry, err := refresh(is, first.RefreshToken)
	if err != nil {
		t.Fatalf("retry within the grace: %v", err)
	}
	wantVerify(t, is, retry.AccessToken, nil)
	clk.Add(time.Second)
	next, err := refresh(is, retry.RefreshToken)
	must(t, err)
	// The lost pair's refresh token surfacing means two holders: the
	// family ends, every access token of it too.
	if _, err := refresh(is, lost.RefreshToken); !errors.Is(err, issuer.ErrRefreshReused) {
		t.Fatalf("superseded token: %v", err)
	}
	if _, err := refresh(is, next.RefreshToken); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("live token of the ended family: %v", err)
	}
	wantVerify(t, is, next.AccessToken, issuer.ErrTokenRevoked)

	t.Run("after the grace a retry is reuse", func(t *testing.T) {
		s := login(t, is, p, true)
		n, err := refresh(is, s.RefreshToken)
		must(t, err)
		clk.Add(issuer.DefaultRefreshGrace + time.Second)
		if _, err := refresh(is, s.RefreshToken); !errors.Is(err, issuer.ErrRefreshReused) {
			t.Fatalf("retry after the grace: %v", err)
		}
		if _, err := refresh(is, n.RefreshToken); !errors.Is(err, issuer.ErrRefreshInvalid) {
			t.Fatalf("family after reuse: %v", err)
		}
	})
	t.Run("refresh_grace off", func(t *testing.T) {
		is, _, p := sessionIssuer(t, issuer.Config{RefreshGrace: -1})
		s := login(t, is, p, true)
		_, err := refresh(is, s.RefreshToken)
		must(t, err)
		if _, err := refresh(is, s.RefreshToken); !errors.Is(err, issuer.ErrRefreshReused) {
			t.Fatalf("retry with no grace: %v", err)
		}
	})
}

// TestSingleSessionEndsRefreshFamilies: a new session ends the previous
// one whole; its old refresh token neither works nor evicts the new one.
func TestSingleSessionEndsRefreshFamilies(t *testing.T) {
	is, clk, p := sessionIssuer(t, issuer.Config{SingleSession: true})
	old := login(t, is, p, true)
	clk.Add(time.Second)
	cur := login(t, is, p, true)
	wantVerify(t, is, old.AccessToken, issuer.ErrTokenRevoked)
	clk.Add(time.Second)
	if _, err := refresh(is, old.RefreshToken); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("refresh of the previous session: %v", err)
	}
	wantVerify(t, is, cur.AccessToken, nil)
	clk.Add(time.Second)
	next, err := refresh(is, cur.RefreshToken)
	if err != nil {
		t.Fatalf("refresh of the current session: %v", err)
	}
	wantVerify(t, is, next.AccessToken, nil)

	t.Run("an exclusive grant without a refresh token", func(t *testing.T) {
		is, clk, p := sessionIssuer(t, issuer.Config{})
		s := login(t, is, p, true)
		clk.Add(time.Second)
		owin, err := is.Issue(context.Background(), issuer.Grant{Principal: p, Exclusive: true})
		must(t, err)
		if _, err := refresh(is, s.RefreshToken); !errors.Is(err, issuer.ErrRefreshInvalid) {
			t.Fatalf("refresh after an exclusive grant: %v", err)
		}
		wantVerify(t, is, s.AccessToken, issuer.ErrTokenRevoked)
		wantVerify(t, is, owin.AccessToken, nil)
	})
}

// TestEndSessions: ending a subject's sessions refuses its refresh tokens
// and access tokens; a sign-in afterwards starts a working session.
func TestEndSessions(t *testing.T) {
	is, clk, p := sessionIssuer(t, issuer.Config{})
	s := login(t, is, p, true)
	clk.Add(time.Minute)
	rotated, err := refresh(is, s.RefreshToken)
	must(t, err)
	now := clk.Now()
	must(t, is.Core().EndSessions(context.Background(), issuer.Revocation{Kind: issuer.RevokeSubject, Key: p.Subject, At: now, ExpiresAt: now.Add(time.Hour)}, ""))
	if _, err := refresh(is, rotated.RefreshToken); !errors.Is(err, issuer.ErrRefreshInvalid) {
		t.Fatalf("refresh after EndSessions: %v", err)
	}
	wantVerify(t, is, rotated.AccessToken, issuer.ErrTokenRevoked)
	if _, ok, err := is.RefreshInfo(context.Background(), rotated.RefreshToken); err != nil || ok {
		t.Fatal("introspection calls an ended refresh token active")
	}
	clk.Add(time.Second)
	again := login(t, is, p, true)
	if _, err := refresh(is, again.RefreshToken); err != nil {
		t.Fatalf("a session begun after EndSessions: %v", err)
	}
	if err := is.Core().EndSessions(context.Background(), issuer.Revocation{Kind: issuer.RevokeJTI, Key: "x"}, ""); err == nil {
		t.Fatal("EndSessions took a jti revocation")
	}
}

// BenchmarkRefresh is one refresh grant (read, sign, rotate in one
// transaction) on each store, from 8 concurrent chains per GOMAXPROCS (16
// on 2 CPUs), without HTTP.
func BenchmarkRefresh(b *testing.B) {
	for _, st := range []struct {
		name string
		open func(b *testing.B) issuer.Store
	}{
		{"sqlite", func(b *testing.B) issuer.Store {
			s, err := sqlstore.Open(context.Background(), "sqlite", filepath.Join(b.TempDir(), "tg.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
		{"postgres", func(b *testing.B) issuer.Store {
			s, err := sqlstore.Open(context.Background(), "postgres", pgtest.Schema(b))
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	} {
		b.Run(st.name, func(b *testing.B) {
			core, err := issuer.OpenCore(context.Background(), st.open(b), issuer.CoreOptions{SyncInterval: -1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { core.Close() })
			h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
			if err != nil {
				b.Fatal(err)
			}
			alice := issuer.User{Name: "alice", PasswordHash: string(h)}
			is, err := issuer.New(core, issuer.Config{Users: []issuer.User{alice}})
			if err != nil {
				b.Fatal(err)
			}
			if err := core.EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
				b.Fatal(err)
			}
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				toks, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.UserPrincipal(alice), Refresh: true})
				if err != nil {
					b.Error(err)
					return
				}
				rt := toks.RefreshToken
				for pb.Next() {
					next, _, err := is.Refresh(context.Background(), issuer.RefreshRequest{Token: rt})
					if err != nil {
						b.Error(err)
						return
					}
					rt = next.RefreshToken
				}
			})
		})
	}
}

// TestSignOutEndsSignInSessions: revoke --sub (SignOut) ends the subject's
// sign-in sessions with its tokens; a session begun after stays, and so do
// other subjects'.
func TestSignOutEndsSignInSessions(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	ctx := context.Background()
	st := core.Store()
	now := clk.Now()
	for _, s := range []issuer.Session{
		{Hash: "old", Subject: "alice", AuthTime: now.Add(-time.Minute)},
		{Hash: "later", Subject: "alice", AuthTime: now.Add(time.Minute)},
		{Hash: "bob", Subject: "bob", AuthTime: now.Add(-time.Minute)},
	} {
		s.IdleUntil, s.ExpiresAt = now.Add(time.Hour), now.Add(time.Hour)
		must(t, st.CreateSession(ctx, s))
	}
	must(t, core.SignOut(ctx, issuer.Revocation{Kind: issuer.RevokeSubject, Key: "alice", At: now, ExpiresAt: now.Add(time.Hour)}))
	for hash, live := range map[string]bool{"old": false, "later": true, "bob": true} {
		if _, err := st.GetSession(ctx, hash, now); (err == nil) != live {
			t.Errorf("session %s after SignOut: %v, want live %v", hash, err, live)
		}
	}
	if err := core.SignOut(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: "x"}); err == nil {
		t.Error("SignOut took a revocation that is not of a subject")
	}
}
