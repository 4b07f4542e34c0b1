package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// TestSubjectRevocationIsExact: with the clock standing still, so that
// every token and the revocation share one second, millisecond and
// microsecond, a token issued before a subject revocation is refused and
// one issued after it verifies. single_session keeps exactly the newest.
func TestSubjectRevocationIsExact(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, path := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{})
	p := issuer.Principal{Kind: "user", Name: "alice", Subject: "alice"}
	mint := func(is *issuer.Issuer) string {
		tok, err := is.Issue(ctx, issuer.Grant{Principal: p})
		must(t, err)
		return tok.AccessToken
	}
	verify := func(is *issuer.Issuer, tok string) error { _, err := is.Verify(tok); return err }

	before := mint(is)
	must(t, core.RevokeSubject(ctx, "alice"))
	after := mint(is)
	if err := verify(is, before); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("token issued before the revocation: %v", err)
	}
	if err := verify(is, after); err != nil {
		t.Fatalf("token issued after the revocation, same instant: %v", err)
	}

	single := newIssuer(t, core, issuer.Config{SingleSession: true})
	toks := []string{mint(single), mint(single), mint(single)}
	for i, tok := range toks {
		err := verify(single, tok)
		if i < len(toks)-1 && !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("single_session: older token %d of the same instant: %v", i, err)
		}
		if i == len(toks)-1 && err != nil {
			t.Fatalf("single_session: newest token: %v", err)
		}
	}
	// Another process (the CLI) sharing the store sees the same cut-off.
	other := openCoreAt(t, path, clk, nil)
	isOther, err := issuer.New(other, issuer.Config{Issuer: iss, Alg: issuer.AlgEdDSA})
	must(t, err)
	if err := verify(isOther, before); !errors.Is(err, issuer.ErrTokenRevoked) {
		t.Fatalf("another process, token before the revocation: %v", err)
	}
	if err := verify(isOther, toks[2]); err != nil {
		t.Fatalf("another process, newest token: %v", err)
	}
}

func TestStampsStrictlyIncrease(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	prev := core.Stamp()
	for range 1000 {
		s := core.Stamp()
		if !s.After(prev) {
			t.Fatalf("stamp %v not after %v", s, prev)
		}
		prev = s
	}
}

// openWatched opens a core on a store with background sync on, polling
// only once an hour: whatever it learns within the test, it learns from
// the store's change notices.
func openWatched(t *testing.T, driver, dsn string) *issuer.Core {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{SyncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	return core
}

// waitFor waits at most 10s for cond, checked every 2 ms (the time it
// took is a figure the tests report).
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	return waitfor.Until(t, what, 10*time.Second, 2*time.Millisecond, cond)
}

// TestRevocationPropagates: a revocation made by one process is enforced
// by another on the same store through the store's change notices
// (PostgreSQL LISTEN/NOTIFY, SQLite data_version), not the hourly poll.
func TestRevocationPropagates(t *testing.T) {
	for _, tc := range []struct{ name, driver string }{{"sqlite", "sqlite"}, {"postgres", "postgres"}} {
		t.Run(tc.name, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "tg.db")
			if tc.driver == "postgres" {
				dsn = pgtest.Schema(t)
			}
			a, b := openWatched(t, tc.driver, dsn), openWatched(t, tc.driver, dsn)
			isA := newIssuer(t, a, issuer.Config{})
			must(t, b.SyncNow(context.Background()))
			isB, err := issuer.New(b, issuer.Config{Issuer: iss, Alg: issuer.AlgEdDSA})
			must(t, err)
			ctx := context.Background()
			for i := range 3 {
				tok, err := isA.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "c", Subject: "c"}})
				must(t, err)
				if _, err := isB.Verify(tok.AccessToken); err != nil {
					t.Fatalf("before revocation at B: %v", err)
				}
				found, err := isA.RevokeToken(ctx, tok.AccessToken, "")
				if !found || err != nil {
					t.Fatalf("revoke: %v %v", found, err)
				}
				if _, err := isA.Verify(tok.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
					t.Fatalf("the revoking process still accepts the token: %v", err)
				}
				took := waitFor(t, "revocation reaching the other process", func() bool {
					_, err := isB.Verify(tok.AccessToken)
					return errors.Is(err, issuer.ErrTokenRevoked)
				})
				t.Logf("revocation %d reached the other process in %v", i, took)
			}
			// A process that only writes (the CLI: no sync of its own).
			st, err := sqlstore.Open(ctx, tc.driver, dsn)
			must(t, err)
			cli, err := issuer.OpenCore(ctx, st, issuer.CoreOptions{SyncInterval: -1})
			must(t, err)
			defer cli.Close()
			tok, err := isA.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "d", Subject: "d"}})
			must(t, err)
			must(t, cli.RevokeSubject(ctx, "d"))
			for _, is := range []*issuer.Issuer{isA, isB} {
				waitFor(t, "CLI revocation", func() bool {
					_, err := is.Verify(tok.AccessToken)
					return errors.Is(err, issuer.ErrTokenRevoked)
				})
			}
		})
	}
}

// TestRevocationWhileStarting: a revocation another process makes just
// as this one opens the store (after its initial load, before its change
// watcher has a baseline) reaches it through the change notices, not the
// hourly poll.
func TestRevocationWhileStarting(t *testing.T) {
	for _, tc := range []struct{ name, driver string }{{"sqlite", "sqlite"}, {"postgres", "postgres"}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := filepath.Join(t.TempDir(), "tg.db")
			if tc.driver == "postgres" {
				dsn = pgtest.Schema(t)
			}
			a := openWatched(t, tc.driver, dsn)
			isA := newIssuer(t, a, issuer.Config{})
			tok, err := isA.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "c", Subject: "c"}})
			must(t, err)
			b := openWatched(t, tc.driver, dsn) // loads the key and (no) revocations
			must(t, a.RevokeSubject(ctx, "c"))
			isB, err := issuer.New(b, issuer.Config{Issuer: iss, Alg: issuer.AlgEdDSA})
			must(t, err)
			took := waitFor(t, "revocation made while the other process started", func() bool {
				_, err := isB.Verify(tok.AccessToken)
				return errors.Is(err, issuer.ErrTokenRevoked)
			})
			t.Logf("reached the starting process in %v", took)
		})
	}
}

// countingStore counts key listings.
type countingStore struct {
	issuer.Store
	lists atomic.Int64
}

func (s *countingStore) ListKeys(ctx context.Context) ([]issuer.KeyRecord, error) {
	s.lists.Add(1)
	return s.Store.ListKeys(ctx)
}

// TestUnknownKidReloadsKeysOnce: a token signed by a key another process
// just added verifies at once (one key reload), and a flood of unknown
// kids costs at most one reload per second.
func TestUnknownKidReloadsKeysOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	st, err := sqlstore.Open(ctx, "sqlite", path)
	must(t, err)
	counted := &countingStore{Store: st}
	a, err := issuer.OpenCore(ctx, counted, issuer.CoreOptions{SyncInterval: -1})
	must(t, err)
	t.Cleanup(func() { a.Close() })
	isA := newIssuer(t, a, issuer.Config{})

	clk := &clock{t: time.Now()}
	b := openCoreAt(t, path, clk, nil)
	_, err = b.Rotate(ctx, issuer.AlgEdDSA, time.Second)
	must(t, err)
	clk.Add(time.Second) // B's new key signs; A has not heard of it
	isB, err := issuer.New(b, issuer.Config{Issuer: iss, Alg: issuer.AlgEdDSA})
	must(t, err)
	tok, err := isB.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "c", Subject: "c"}})
	must(t, err)
	before := counted.lists.Load()
	if _, err := isA.Verify(tok.AccessToken); err != nil {
		t.Fatalf("token signed by a key published elsewhere: %v", err)
	}
	if n := counted.lists.Load() - before; n != 1 {
		t.Fatalf("%d key reloads for one unknown kid, want 1", n)
	}
	// Forged kids: refused, and at most one reload however many arrive.
	before = counted.lists.Load()
	start := time.Now()
	for i := range 50 {
		forged := sign(t, jwt.SigningMethodHS256, "forged-"+string(rune('a'+i%26)), []byte("guess"), claimsFor(time.Now()))
		if _, err := isA.Verify(forged); !errors.Is(err, issuer.ErrTokenKey) {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n, elapsed := counted.lists.Load()-before, time.Since(start); n > int64(elapsed/time.Second)+1 {
		t.Fatalf("%d key reloads in %v for forged kids", n, elapsed)
	}
}

// TestRetentionFollowsLongestLifetime: a token living longer than the
// site's registered lifetime (an endpoint's own access_ttl) makes its key
// verify that long after it retires, and a revocation of it lasts as long.
func TestRetentionFollowsLongestLifetime(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, path := newCore(t, clk, nil) // retention floor 1h
	_, err := core.RegisterLifetime(ctx, 15*time.Minute)
	must(t, err)
	is := newIssuer(t, core, issuer.Config{AccessTTL: 15 * time.Minute})
	p := issuer.Principal{Kind: "user", Name: "a", Subject: "a"}
	long, err := is.Issue(ctx, issuer.Grant{Principal: p, AccessTTL: 6 * time.Hour})
	must(t, err)
	revoked, err := is.Issue(ctx, issuer.Grant{Principal: p, AccessTTL: 6 * time.Hour, Refresh: true})
	must(t, err)
	found, err := is.RevokeToken(ctx, revoked.RefreshToken, "") // revokes the session (sid)
	if !found || err != nil {
		t.Fatalf("revoke: %v %v", found, err)
	}
	recs, err := core.Store().ListKeys(ctx)
	must(t, err)
	if len(recs) != 1 || recs[0].MaxTTL != 6*time.Hour {
		t.Fatalf("key lifetime after a 6h token: %+v", recs)
	}
	// Rotate: the old key retires at once; 5h later (past the 1h floor
	// and the 15m site lifetime) it still verifies its 6h token.
	_, err = core.Rotate(ctx, issuer.AlgEdDSA, 0)
	must(t, err)
	clk.Add(5 * time.Hour)
	_, err = core.RotateIfDue(ctx, issuer.AlgEdDSA, 1000*time.Hour, 0) // deletes keys no token needs
	must(t, err)
	must(t, core.Store().PurgeExpired(ctx, clk.Now()))
	fresh := openCoreAt(t, path, clk, nil) // a process starting now loads what is left
	for _, c := range []*issuer.Core{core, fresh} {
		v, err := issuer.New(c, issuer.Config{Issuer: iss, Alg: issuer.AlgEdDSA})
		must(t, err)
		if _, err := v.Verify(long.AccessToken); err != nil {
			t.Fatalf("6h token after 5h and a rotation: %v", err)
		}
		if _, err := v.Verify(revoked.AccessToken); !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("revoked 6h token after 5h: %v (it came back to life)", err)
		}
	}
	clk.Add(time.Hour + issuer.Leeway + time.Second)
	_, err = core.RotateIfDue(ctx, issuer.AlgEdDSA, 1000*time.Hour, 0)
	must(t, err)
	if recs, _ := core.Store().ListKeys(ctx); len(recs) != 1 {
		t.Fatalf("the retired key outlived its last token: %d keys", len(recs))
	}
}
