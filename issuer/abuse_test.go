package issuer_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/leaf/throttle"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// countingCore opens a Core whose password checks are counted and recorded.
type countingCore struct {
	*issuer.Core
	mu     sync.Mutex
	hashes []string // hashes checked, in order
	n      atomic.Int64
}

func newCountingCore(t *testing.T, clk *clock) *countingCore {
	t.Helper()
	cc := &countingCore{}
	st, err := sqlstore.Open(context.Background(), "sqlite", t.TempDir()+"/tg.db")
	if err != nil {
		t.Fatal(err)
	}
	cc.Core, err = issuer.OpenCore(context.Background(), st, issuer.CoreOptions{Clock: clk.Now, SyncInterval: -1,
		VerifyPassword: func(hash, pw string) (bool, error) {
			cc.n.Add(1)
			cc.mu.Lock()
			cc.hashes = append(cc.hashes, hash)
			cc.mu.Unlock()
			return issuer.VerifyPassword(hash, pw)
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func (cc *countingCore) last() string {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.hashes[len(cc.hashes)-1]
}

func bcryptHash(t *testing.T, pw string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestThrottledSignInComputesNoHash: after the free failures an attempt is
// refused with a *ThrottledError and no hash, keyed on the client IP; the
// account stays open from another IP, and a success there resets it.
func TestThrottledSignInComputesNoHash(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cc := newCountingCore(t, clk)
	is := newIssuer(t, cc.Core, issuer.Config{Issuer: iss,
		Users:    []issuer.User{{Name: "alice", PasswordHash: bcryptHash(t, "right", bcrypt.MinCost)}},
		Throttle: throttle.Config{PerAccountIP: 3, PerIP: 100, PerAccount: 100, Base: time.Second, Max: time.Minute}})
	attacker := issuer.WithClientIP(context.Background(), "203.0.113.9")
	for range 3 {
		if _, err := is.AuthenticateUser(attacker, "alice", "wrong"); !errors.Is(err, issuer.ErrInvalidCredentials) {
			t.Fatalf("free failure: %v", err)
		}
	}
	before := cc.n.Load()
	checks := cc.CredentialChecks()
	var mu sync.Mutex
	var events []issuer.Event
	cc.Core.SetEvents(func(_ context.Context, e issuer.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	})
	var te *issuer.ThrottledError
	for range 5 {
		_, err := is.AuthenticateUser(attacker, "alice", "right")
		if !errors.As(err, &te) || !errors.Is(err, issuer.ErrThrottled) || te.RetryAfter <= 0 || te.RetryAfter > time.Second {
			t.Fatalf("4th attempt: %v, want throttled for ≤ 1s", err)
		}
	}
	if cc.n.Load() != before || cc.CredentialChecks() != checks {
		t.Fatalf("throttled attempts computed %d hashes", cc.n.Load()-before)
	}
	mu.Lock()
	if len(events) != 5 || events[0] != (issuer.Event{Kind: issuer.EventThrottled, NameKind: "user", Name: "alice"}) {
		t.Fatalf("throttled attempts reported %+v, want 5 throttled events for user alice", events)
	}
	mu.Unlock()
	// Unknown names are throttled the same way (or 429 would reveal them).
	for range 3 {
		_, _ = is.AuthenticateUser(attacker, "nobody", "x")
	}
	if _, err := is.AuthenticateUser(attacker, "nobody", "x"); !errors.Is(err, issuer.ErrThrottled) {
		t.Fatalf("unknown user not throttled: %v", err)
	}
	// The owner, from elsewhere, is not locked out.
	owner := issuer.WithClientIP(context.Background(), "198.51.100.7")
	if _, err := is.AuthenticateUser(owner, "alice", "right"); err != nil {
		t.Fatalf("owner from another IP: %v", err)
	}
	// Backoff doubles: after 1s one more try, then 2s.
	clk.Add(time.Second)
	if _, err := is.AuthenticateUser(attacker, "alice", "wrong"); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatalf("after the wait: %v", err)
	}
	if _, err := is.AuthenticateUser(attacker, "alice", "wrong"); !errors.As(err, &te) || te.RetryAfter != 2*time.Second {
		t.Fatalf("second backoff: %v", err)
	}
	// Clients and entities on the client route are throttled too.
	for range 3 {
		_, _ = is.AuthenticateClient(attacker, "ghost", "s")
	}
	n := cc.CredentialChecks()
	if _, err := is.AuthenticateClient(attacker, "ghost", "s"); !errors.Is(err, issuer.ErrThrottled) || cc.CredentialChecks() != n {
		t.Fatalf("client route: %v (checks %d → %d)", err, n, cc.CredentialChecks())
	}
}

// TestAccountCapSparesKnownIPs: a flood from many IPs makes IPs the
// account never signed in from wait, but not one it did.
func TestAccountCapSparesKnownIPs(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cc := newCountingCore(t, clk)
	is := newIssuer(t, cc.Core, issuer.Config{Issuer: iss,
		Users:    []issuer.User{{Name: "alice", PasswordHash: bcryptHash(t, "right", bcrypt.MinCost)}},
		Throttle: throttle.Config{PerAccountIP: 3, PerAccount: 10, AccountMax: 30 * time.Second}})
	home := issuer.WithClientIP(context.Background(), "192.0.2.1")
	if _, err := is.AuthenticateUser(home, "alice", "right"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		_, _ = is.AuthenticateUser(issuer.WithClientIP(context.Background(), fmt.Sprintf("10.0.0.%d", i)), "alice", "wrong")
	}
	var te *issuer.ThrottledError
	if _, err := is.AuthenticateUser(issuer.WithClientIP(context.Background(), "10.9.9.9"), "alice", "right"); !errors.As(err, &te) || te.RetryAfter > 30*time.Second {
		t.Fatalf("new IP during the flood: %v, want a wait capped at 30s", err)
	}
	if _, err := is.AuthenticateUser(home, "alice", "right"); err != nil {
		t.Fatalf("the owner's usual IP during the flood: %v", err)
	}
}

// TestUnknownPrincipalsCostTheSame: an unknown user or client is checked
// against a dummy of the same algorithm and parameters as a known one
// (the declared one, costlier here than the class new hashes get).
func TestUnknownPrincipalsCostTheSame(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		name string
		hash func(t *testing.T) string
	}{
		{"bcrypt", func(t *testing.T) string { return bcryptHash(t, "right", 5) }},
		{"argon2id", func(t *testing.T) string {
			h, err := issuer.HashPasswordWith(issuer.HashParams{Memory: 256, Time: 3, Threads: 1}, "right")
			if err != nil {
				t.Fatal(err)
			}
			return h
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := newCountingCore(t, clk)
			h := tc.hash(t)
			is := newIssuer(t, cc.Core, issuer.Config{Issuer: iss, NoThrottle: true,
				HashParams: &issuer.HashParams{Memory: 64, Time: 1, Threads: 1},
				Users:      []issuer.User{{Name: "alice", PasswordHash: h}},
				Clients:    []issuer.Client{{ID: "billing", SecretHash: h}}})
			ctx := context.Background()
			if _, err := is.AuthenticateUser(ctx, "mallory", "right"); !errors.Is(err, issuer.ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if got := cc.last(); issuer.HashClass(got) != issuer.HashClass(h) || got == h {
				t.Fatalf("unknown user checked against %s, want a dummy like %s", got, h)
			}
			n := cc.n.Load()
			if _, err := is.AuthenticateClient(ctx, "nobody", "right"); !errors.Is(err, issuer.ErrInvalidCredentials) {
				t.Fatal(err)
			}
			if cc.n.Load() != n+1 || issuer.HashClass(cc.last()) != issuer.HashClass(h) {
				t.Fatalf("unknown client: %d checks, last %s", cc.n.Load()-n, cc.last())
			}
		})
	}
	// Generated secrets (keyed HMAC): an unknown id costs one keyed hash.
	cc := newCountingCore(t, clk)
	is := newIssuer(t, cc.Core, issuer.Config{Issuer: iss, NoThrottle: true})
	ctx := context.Background()
	must(t, cc.Store().PutClient(ctx, issuer.Client{ID: "gen", SecretHash: cc.Hasher().Hash("s3cret")}))
	n := cc.CredentialChecks()
	if _, err := is.AuthenticateClient(ctx, "gen", "wrong"); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	known := cc.CredentialChecks() - n
	n = cc.CredentialChecks()
	if _, err := is.AuthenticateClient(ctx, "unknown", "wrong"); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if unknown := cc.CredentialChecks() - n; unknown != known || known != 1 || cc.n.Load() != 0 {
		t.Fatalf("keyed checks: known %d, unknown %d, slow hashes %d", known, unknown, cc.n.Load())
	}
}

// TestBusyBudgetRefunds: a sign-in refused by a spent budget is ErrBusy
// and does not count as a failure.
func TestBusyBudgetRefunds(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	cc := newCountingCore(t, clk)
	is := newIssuer(t, cc.Core, issuer.Config{Issuer: iss,
		Users:    []issuer.User{{Name: "alice", PasswordHash: bcryptHash(t, "right", bcrypt.MinCost)}},
		Throttle: throttle.Config{PerAccountIP: 1}})
	cc.HashBudget().Configure(1, -1, time.Hour) // no queue
	hold := make(chan struct{})
	started := make(chan struct{})
	go cc.HashBudget().Do(context.Background(), func() { close(started); <-hold })
	<-started
	ctx := issuer.WithClientIP(context.Background(), "192.0.2.1")
	var refused atomic.Int32
	cc.Core.SetEvents(func(_ context.Context, e issuer.Event) {
		if e == (issuer.Event{Kind: issuer.EventBudgetRefused, NameKind: "user", Name: "alice"}) {
			refused.Add(1)
		}
	})
	for range 3 {
		if _, err := is.AuthenticateUser(ctx, "alice", "right"); !errors.Is(err, issuer.ErrBusy) {
			t.Fatalf("spent budget: %v", err)
		}
	}
	if n := refused.Load(); n != 3 {
		t.Fatalf("%d budget_refused events for 3 refusals", n)
	}
	close(hold)
	var err error
	for { // the holder releases its slot asynchronously
		if _, err = is.AuthenticateUser(ctx, "alice", "right"); !errors.Is(err, issuer.ErrBusy) {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the budget freed, busy refusals must not have counted: %v", err)
	}
}

// TestVerifiedCacheKeepsWorkingSetUnderScan: tokens used again and again
// stay cached while a scan of one-off tokens far larger than the cache
// passes through, and a hit allocates nothing.
func TestVerifiedCacheKeepsWorkingSetUnderScan(t *testing.T) {
	clk := &clock{t: time.Now()}
	st, err := sqlstore.Open(context.Background(), "sqlite", t.TempDir()+"/tg.db")
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{Clock: clk.Now, SyncInterval: -1, VerifiedCacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	must(t, core.EnsureKey(context.Background(), issuer.AlgHS256))
	is := newIssuer(t, core, issuer.Config{Issuer: iss, Alg: issuer.AlgHS256, NoThrottle: true})
	mint := func() string {
		toks, err := is.Issue(context.Background(), issuer.Grant{Principal: issuer.Principal{Kind: "client", Name: "c", Subject: "c"}})
		must(t, err)
		return toks.AccessToken
	}
	hot := make([]string, 50)
	for i := range hot {
		hot[i] = mint()
		for range 3 {
			if _, err := is.Verify(hot[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// ~1 MiB at ~1.5 KiB a token is ~700 entries; scan 5 000 others.
	for range 5000 {
		tok := mint()
		_, _ = is.Verify(tok)
		for _, h := range hot[:5] { // the working set keeps being used
			_, _ = is.Verify(h)
		}
	}
	checks := core.SignatureChecks()
	for _, h := range hot[:5] {
		if _, err := is.Verify(h); err != nil {
			t.Fatal(err)
		}
	}
	if got := core.SignatureChecks() - checks; got != 0 {
		t.Fatalf("%d of the 5 hot tokens were evicted by the scan", got)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = is.Verify(hot[0]) })
	if allocs != 0 {
		t.Fatalf("a cache hit allocates %.1f times", allocs)
	}
	if !strings.Contains(hot[0], ".") {
		t.Fatal("not a JWT")
	}
}

// TestFailedSignInsCostTheSameWhateverTheHashes: with declared users and
// clients hashed at the default parameters beside stored ones hashed
// cheaper (argon2id m=8 MiB t=1, bcrypt), a keyed client secret and an
// entity, every failed sign-in, for an unknown name or a known one, takes
// what a check of the declared class takes, whichever principal was
// looked up before (CWE-208). Hashes take a fixed time on a fake clock,
// and the pad advances it, so the times compare exactly.
func TestFailedSignInsCostTheSameWhateverTheHashes(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	costs := map[string]time.Duration{}
	cc := &countingCore{}
	st, err := sqlstore.Open(context.Background(), "sqlite", t.TempDir()+"/tg.db")
	must(t, err)
	mks, err := issuer.NewMasterKeyString()
	must(t, err)
	mk, err := issuer.ParseMasterKey(mks)
	must(t, err)
	cc.Core, err = issuer.OpenCore(context.Background(), st, issuer.CoreOptions{Clock: clk.Now, SyncInterval: -1, MasterKey: mk,
		VerifyPassword: func(hash, pw string) (bool, error) {
			cc.n.Add(1)
			d, ok := costs[issuer.HashClass(hash)]
			if !ok {
				t.Errorf("a hash of an unexpected class was checked: %s", hash)
			}
			clk.Add(d)
			return issuer.VerifyPassword(hash, pw)
		}})
	must(t, err)
	t.Cleanup(func() { cc.Close() })
	argon := func(p issuer.HashParams) string {
		h, err := issuer.HashPasswordWith(p, "right")
		must(t, err)
		return h
	}
	declared, cheap, legacy := argon(issuer.DefaultHashParams()), argon(issuer.HashParams{Memory: 8192, Time: 1, Threads: 1}), bcryptHash(t, "right", 5)
	costs[issuer.HashClass(declared)] = 31 * time.Millisecond
	costs[issuer.HashClass(cheap)] = 7 * time.Millisecond
	costs[issuer.HashClass(legacy)] = 3 * time.Millisecond
	costs[""] = 0 // a malformed hash fails at once
	is := newIssuer(t, cc.Core, issuer.Config{Issuer: iss, NoThrottle: true,
		Users:   []issuer.User{{Name: "alice", PasswordHash: declared}},
		Clients: []issuer.Client{{ID: "billing", SecretHash: declared}}})
	issuer.SetSigninSleep(is, func(_ context.Context, d time.Duration) { clk.Add(d) })
	ctx := context.Background()
	must(t, cc.Store().PutUser(ctx, issuer.User{Name: "old", PasswordHash: cheap}))
	must(t, cc.Store().PutUser(ctx, issuer.User{Name: "legacy", PasswordHash: legacy}))
	must(t, cc.Store().PutUser(ctx, issuer.User{Name: "broken", PasswordHash: "$argon2id$v=19$m=19456"}))
	must(t, cc.Store().PutClient(ctx, issuer.Client{ID: "gen", SecretHash: cc.Hasher().Hash("s3cret")}))
	must(t, cc.Store().PutEntity(ctx, issuer.Entity{ID: "aa-1"}))
	_, err = is.ResetSecret(ctx, "aa-1", time.Hour)
	must(t, err)

	took := func(signIn func() error) time.Duration {
		t.Helper()
		start := clk.Now()
		if err := signIn(); !errors.Is(err, issuer.ErrInvalidCredentials) {
			t.Fatalf("want ErrInvalidCredentials, got %v", err)
		}
		return clk.Now().Sub(start)
	}
	user := func(name string) func() error {
		return func() error { _, err := is.AuthenticateUser(ctx, name, "wrong"); return err }
	}
	client := func(id string) func() error {
		return func() error { _, err := is.AuthenticateClient(ctx, id, "wrong"); return err }
	}
	// Each order: what was looked up before must not matter.
	for _, order := range [][]string{
		{"alice", "nobody", "old", "legacy", "broken"},
		{"old", "nobody", "legacy", "nobody", "alice", "broken", "nobody"},
	} {
		for _, name := range order {
			if d := took(user(name)); d != 31*time.Millisecond {
				t.Errorf("user %s (after %v): a failed sign-in took %v, want 31ms", name, order, d)
			}
		}
	}
	for _, order := range [][]string{{"billing", "nobody", "gen", "aa-1"}, {"gen", "aa-1", "nobody", "billing"}} {
		for _, id := range order {
			if d := took(client(id)); d != 31*time.Millisecond {
				t.Errorf("client %s (after %v): a failed sign-in took %v, want 31ms", id, order, d)
			}
		}
	}
	// A sign-in that succeeds is not delayed, and moves a stored user's
	// older hash onto the current parameters.
	start := clk.Now()
	if _, err := is.AuthenticateUser(ctx, "old", "right"); err != nil {
		t.Fatal(err)
	}
	if d := clk.Now().Sub(start); d != 7*time.Millisecond {
		t.Errorf("a successful sign-in took %v, want the 7ms of its own hash", d)
	}
	u, err := cc.Store().GetUser(ctx, "old")
	must(t, err)
	if issuer.HashClass(u.PasswordHash) != issuer.HashClass(declared) {
		t.Fatalf("after signing in, old's hash is %s, want the current parameters", u.PasswordHash)
	}
	if ok, err := issuer.VerifyPassword(u.PasswordHash, "right"); !ok || err != nil {
		t.Fatalf("the rehashed password does not verify: %v", err)
	}
	if d := took(user("old")); d != 31*time.Millisecond {
		t.Errorf("old after its rehash: %v", d)
	}
}
