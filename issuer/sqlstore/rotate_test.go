package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/internal/leaf/waitfor"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// fastOp is how the observer names rotateFresh.
const fastOp = "WITH tg_refresh"

// opLog records the operations a store runs.
type opLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *opLog) observe(op string, _ time.Duration, _ error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ops = append(l.ops, op)
}

// take returns the operations recorded since the last take.
func (l *opLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ops := l.ops
	l.ops = nil
	return ops
}

func openBoth(t *testing.T) map[string]*Store {
	t.Helper()
	pg, err := Open(context.Background(), "postgres", pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return map[string]*Store{"sqlite": openSQLiteStore(t).(*Store), "postgres": pg}
}

// TestRotateFreshDecidesLikeTheTransaction: each refusal the single
// statement must leave to the transaction, and the cases it must take,
// give the same answers on both stores; on PostgreSQL a first use of a
// live token is that one statement alone, and anything else falls back.
func TestRotateFreshDecidesLikeTheTransaction(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	auth := now.Add(-time.Hour)
	grace := 30 * time.Second
	for name, s := range openBoth(t) {
		t.Run(name, func(t *testing.T) {
			var log opLog
			s.SetObserver(log.observe)
			for _, tc := range []struct {
				name string
				// setup acts on the token tok of family fam, subject sub.
				setup func(t *testing.T, tok, fam, sub string)
				at    time.Time // when it is exchanged
				want  error     // nil, issuer.ErrNotFound or issuer.ErrRefreshReused
			}{
				{name: "live, unused", at: now},
				{name: "revoked family", at: now, want: issuer.ErrNotFound,
					setup: func(t *testing.T, _, fam, _ string) { must(t, s.RevokeFamily(ctx, fam)) }},
				{name: "expired", at: now.Add(2 * time.Hour), want: issuer.ErrNotFound},
				{name: "expiring at that very instant", at: now.Add(time.Hour), want: issuer.ErrNotFound},
				{name: "ended by a cut-off at its auth_time", at: now, want: issuer.ErrNotFound,
					setup: func(t *testing.T, _, _, sub string) { must(t, s.EndSessions(ctx, sub, auth, "")) }},
				{name: "ended by a later cut-off", at: now, want: issuer.ErrNotFound,
					setup: func(t *testing.T, _, _, sub string) { must(t, s.EndSessions(ctx, sub, now, "")) }},
				{name: "its family kept by the cut-off", at: now,
					setup: func(t *testing.T, _, fam, sub string) { must(t, s.EndSessions(ctx, sub, now, fam)) }},
				{name: "another family kept by the cut-off", at: now, want: issuer.ErrNotFound,
					setup: func(t *testing.T, _, _, sub string) { must(t, s.EndSessions(ctx, sub, now, "other")) }},
				{name: "a cut-off before its session began", at: now,
					setup: func(t *testing.T, _, _, sub string) {
						must(t, s.EndSessions(ctx, sub, auth.Add(-time.Microsecond), ""))
					}},
				{name: "another subject's cut-off", at: now,
					setup: func(t *testing.T, _, _, sub string) { must(t, s.EndSessions(ctx, sub+"-other", now, "")) }},
				{name: "used within the grace (a retry)", at: now.Add(time.Second),
					setup: func(t *testing.T, tok, fam, sub string) {
						_, err := s.RotateRefresh(ctx, tok, rec(tok+"-first", fam, sub, auth, now), now, grace)
						must(t, err)
					}},
				{name: "used after the grace (reuse)", at: now.Add(grace + time.Second), want: issuer.ErrRefreshReused,
					setup: func(t *testing.T, tok, fam, sub string) {
						_, err := s.RotateRefresh(ctx, tok, rec(tok+"-first", fam, sub, auth, now), now, grace)
						must(t, err)
					}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					tok, fam, sub := "tok-"+tc.name, "fam-"+tc.name, "sub-"+tc.name
					must(t, s.CreateRefresh(ctx, rec(tok, fam, sub, auth, now), false))
					if tc.setup != nil {
						tc.setup(t, tok, fam, sub)
					}
					log.take()
					succ := tok + "-next"
					old, err := s.RotateRefresh(ctx, tok, rec(succ, fam, sub, auth, tc.at), tc.at, grace)
					ops := log.take()
					if !errors.Is(err, tc.want) && (tc.want != nil || err != nil) {
						t.Fatalf("RotateRefresh = %v, want %v", err, tc.want)
					}
					retry := tc.want == nil && tc.setup != nil && tc.name == "used within the grace (a retry)"
					fresh := tc.want == nil && !retry
					got, gerr := s.GetRefresh(ctx, succ)
					if tc.want == nil {
						if old.Hash != tok || old.Family != fam || old.Subject != sub || !old.AuthTime.Equal(auth) ||
							!old.ExpiresAt.Equal(now.Add(time.Hour)) {
							t.Errorf("returned %+v", old)
						}
						if gerr != nil || !got.UsedAt.IsZero() || got.Family != fam || !got.AuthTime.Equal(auth) {
							t.Errorf("successor: %+v, %v", got, gerr)
						}
						usedAt := tc.at
						if retry {
							usedAt = now // a retry leaves the first use
						}
						used, err := s.GetRefresh(ctx, tok)
						if err != nil || !used.UsedAt.Equal(usedAt) {
							t.Errorf("old token after the exchange: %+v, %v", used, err)
						}
					} else if gerr == nil {
						t.Errorf("a refused exchange left a live successor: %+v", got)
					}
					if name != "postgres" {
						return
					}
					switch {
					case fresh && (len(ops) != 1 || ops[0] != fastOp):
						t.Errorf("a first use ran %v, want one %q", ops, fastOp)
					case !fresh && (len(ops) < 2 || ops[0] != fastOp):
						t.Errorf("ran %v, want %q then the transaction", ops, fastOp)
					}
				})
			}
		})
	}
}

// TestConcurrentExchangesOfOneToken: on both stores, however many
// exchanges of one token race, one takes it and the family ends up with
// exactly one live token (within the grace the others supersede it, each
// in turn); with no grace the others are reuse and end the family.
func TestConcurrentExchangesOfOneToken(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	for name, s := range openBoth(t) {
		t.Run(name, func(t *testing.T) {
			for _, grace := range []time.Duration{30 * time.Second, 0} {
				t.Run(fmt.Sprintf("grace %v", grace), func(t *testing.T) {
					fam := fmt.Sprintf("fam-%v", grace)
					must(t, s.CreateRefresh(ctx, rec(fam+"-0", fam, "alice", now, now), false))
					const n = 8
					var wg sync.WaitGroup
					errs := make([]error, n)
					for i := range n {
						wg.Add(1)
						go func() {
							defer wg.Done()
							_, errs[i] = s.RotateRefresh(ctx, fam+"-0", rec(fmt.Sprintf("%s-1-%d", fam, i), fam, "alice", now, now), now, grace)
						}()
					}
					wg.Wait()
					won := 0
					for _, err := range errs {
						switch {
						case err == nil:
							won++
						case grace == 0 && (errors.Is(err, issuer.ErrRefreshReused) || errors.Is(err, issuer.ErrNotFound)):
						default:
							t.Errorf("RotateRefresh: %v", err)
						}
					}
					live := liveTokens(t, s, fam)
					switch {
					case grace > 0 && (won != n || live != 1):
						t.Fatalf("%d of %d got a pair, %d live tokens; want all, and 1", won, n, live)
					case grace == 0 && (won != 1 || live != 0):
						t.Fatalf("%d won, %d live tokens; want 1 winner and the family revoked by the reuse", won, live)
					}
				})
			}
		})
	}
}

// liveTokens counts the tokens of family that can still be exchanged.
func liveTokens(t *testing.T, s *Store, family string) int {
	t.Helper()
	var n int
	err := s.db.QueryRowContext(context.Background(), s.q(`SELECT count(*) FROM tg_refresh WHERE family = ? AND used_at = 0 AND revoked = 0`),
		family).Scan(&n)
	must(t, err)
	return n
}

// rec is a token of family, for subject, whose session began at auth,
// issued at at for an hour.
func rec(hash, family, subject string, auth, at time.Time) issuer.RefreshRecord {
	return issuer.RefreshRecord{Hash: hash, Family: family, Subject: subject, Kind: "user", Principal: subject,
		ClientID: "web", Scope: "a", Issuer: "iss", ExpiresAt: at.Add(time.Hour), AuthTime: auth}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRevokeFamilyCatchesAConcurrentSuccessor: revoking a family while a
// rotation of one of its tokens is committing revokes the successor that
// rotation inserts too. On PostgreSQL the revoking UPDATE waits on the
// token the rotation locked, and the successor is not in its snapshot.
func TestRevokeFamilyCatchesAConcurrentSuccessor(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	s, err := Open(ctx, "postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now()
	rec := func(hash string) issuer.RefreshRecord {
		return issuer.RefreshRecord{Hash: hash, Family: "fam", Subject: "alice", Kind: "user", Principal: "alice",
			Issuer: "https://api.example", ExpiresAt: now.Add(time.Hour), AuthTime: now}
	}
	if err := s.CreateRefresh(ctx, rec("t1"), false); err != nil {
		t.Fatal(err)
	}
	// A rotation of t1, held open: t1 locked and used, t2 inserted.
	rotation, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rotation.Rollback()
	if _, err := rotation.ExecContext(ctx, s.q(useRefresh), ns(now), "t2", "t1"); err != nil {
		t.Fatal(err)
	}
	next := rec("t2")
	if _, err := rotation.ExecContext(ctx, s.q(insertRefresh), next.Hash, next.Family, next.Subject, next.Kind,
		next.Principal, next.ClientID, next.Scope, next.Issuer, ns(next.ExpiresAt), ns(next.AuthTime)); err != nil {
		t.Fatal(err)
	}
	var rotationPID int
	if err := rotation.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&rotationPID); err != nil {
		t.Fatal(err)
	}
	revoked := make(chan error, 1)
	go func() { revoked <- s.RevokeFamily(ctx, "fam") }()
	// Wait until the revocation waits on t1's lock, which this rotation
	// holds (no other test's backend can stand in for it).
	waitfor.Until(t, "the revocation to wait on the rotation's lock", 10*time.Second, 0, func() bool {
		var waiting int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE $1 = ANY(pg_blocking_pids(pid)) AND query LIKE 'UPDATE tg_refresh SET revoked%'`, rotationPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		return waiting > 0
	})
	if err := rotation.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-revoked; err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"t1", "t2"} {
		if _, err := s.GetRefresh(ctx, h); !errors.Is(err, issuer.ErrNotFound) {
			t.Errorf("%s after its family was revoked: %v, want ErrNotFound (revoked)", h, err)
		}
	}
}
