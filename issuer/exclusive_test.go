package issuer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestExclusiveGrantRevokesOlderTokens: an exclusive grant (the OWIN
// dialect's) leaves only the newest access token of the subject valid,
// whether the older one was issued in an earlier second or the same one.
// The clock is injected, so the earlier-second case needs no waiting.
func TestExclusiveGrantRevokesOlderTokens(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	is := newIssuer(t, core, issuer.Config{AccessTTL: 10 * time.Minute})
	p := issuer.Principal{Kind: "user", Name: "alice", Subject: "alice"}
	other := issuer.Principal{Kind: "user", Name: "bob", Subject: "bob"}
	issue := func(p issuer.Principal) string {
		t.Helper()
		tok, err := is.Issue(ctx, issuer.Grant{Principal: p, Exclusive: true})
		must(t, err)
		return tok.AccessToken
	}
	valid := func(name, tok string, want bool) {
		t.Helper()
		_, err := is.Verify(tok)
		if want && err != nil || !want && !errors.Is(err, issuer.ErrTokenRevoked) {
			t.Fatalf("%s: Verify = %v, want valid=%v", name, err, want)
		}
	}
	first, bobs := issue(p), issue(other)
	clk.Add(1100 * time.Millisecond) // a later second: iat differs
	second := issue(p)
	valid("token of an earlier second", first, false)
	valid("newest token", second, true)
	valid("another subject's token", bobs, true)
	third := issue(p) // same second as second
	valid("token of the same second", second, false)
	valid("newest token", third, true)
}
