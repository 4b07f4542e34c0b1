package issuer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func jwksKIDs(core *issuer.Core) []string {
	var out []string
	for _, k := range core.JWKS().Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func TestKeyRotationUnderAClock(t *testing.T) {
	ctx := context.Background()
	t0 := time.Unix(1_700_000_000, 0)
	clk := &clock{t: t0}
	core, path := newCore(t, clk, nil) // retention 1h (see newCore)
	// Sites register how long their tokens live; keys keep verifying that
	// long (here less than the 1h floor) after they retire.
	if _, err := core.RegisterLifetime(ctx, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	is := newIssuer(t, core, issuer.Config{AccessTTL: 30 * time.Minute})
	const every, ahead = 24 * time.Hour, 10 * time.Minute
	p := issuer.Principal{Kind: "user", Name: "a", Subject: "a"}
	mint := func() *issuer.Tokens {
		tok, err := is.Issue(ctx, issuer.Grant{Principal: p})
		must(t, err)
		return &tok
	}
	kidOf := func(tok *issuer.Tokens) string { h, _ := decode(t, tok.AccessToken); return h["kid"].(string) }

	k1 := jwksKIDs(core)
	if len(k1) != 1 {
		t.Fatalf("JWKS at start: %v", k1)
	}
	if rotated, err := core.RotateIfDue(ctx, issuer.AlgEdDSA, every, ahead); rotated || err != nil {
		t.Fatalf("rotation before due: %v %v", rotated, err)
	}

	// Due: every - publishAhead after the key began signing. Two processes
	// sharing the store race for it; exactly one key is added.
	clk.Add(every - ahead)
	other := openCoreAt(t, path, clk, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	added := 0
	for _, c := range []*issuer.Core{core, other, core, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rotated, err := c.RotateIfDue(ctx, issuer.AlgEdDSA, every, ahead)
			if err != nil {
				t.Error(err)
			}
			if rotated {
				mu.Lock()
				added++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	must(t, core.ReloadKeys(ctx))
	if added != 1 || len(jwksKIDs(core)) != 2 {
		t.Fatalf("concurrent rotation added %d keys; JWKS %v", added, jwksKIDs(core))
	}
	k2 := jwksKIDs(core)[1]
	// Published but not yet signing: verifiers caching the JWKS learn it first.
	before := mint()
	if kidOf(before) != k1[0] {
		t.Fatalf("a key signed before its activation")
	}

	clk.Add(ahead)
	after := mint()
	if kidOf(after) != k2 {
		t.Fatalf("new key does not sign after activation")
	}
	// A token signed by the retired key still verifies until it expires.
	for _, tok := range []*issuer.Tokens{before, after} {
		if _, err := is.Verify(tok.AccessToken); err != nil {
			t.Fatalf("verify across rotation: %v", err)
		}
	}
	if got := jwksKIDs(core); len(got) != 2 {
		t.Fatalf("JWKS right after activation: %v", got)
	}

	// Past the retention (longest token lifetime + leeway), the old key
	// leaves the JWKS and the store.
	clk.Add(time.Hour + time.Second)
	if _, err := core.RotateIfDue(ctx, issuer.AlgEdDSA, every, ahead); err != nil {
		t.Fatal(err)
	}
	if got := jwksKIDs(core); len(got) != 1 || got[0] != k2 {
		t.Fatalf("JWKS after retention: %v, want [%s]", got, k2)
	}
	recs, err := core.Store().ListKeys(ctx)
	must(t, err)
	if len(recs) != 1 || recs[0].KID != k2 {
		t.Fatalf("store keys after retention: %+v", recs)
	}
}

func TestManualRotateKeepsVerifying(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{})
	old, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	must(t, err)
	rec, err := core.Rotate(ctx, issuer.AlgEdDSA, 0)
	must(t, err)
	if rec.Seq != 2 {
		t.Fatalf("rotated key seq %d", rec.Seq)
	}
	clk.Add(time.Second)
	fresh, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	must(t, err)
	for _, tok := range []issuer.Tokens{old, fresh} {
		if _, err := is.Verify(tok.AccessToken); err != nil {
			t.Fatal(err)
		}
	}
}
