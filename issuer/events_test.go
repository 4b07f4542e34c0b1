package issuer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// TestEvents: each audited action emits one event naming its route, and
// no event carries a secret.
func TestEvents(t *testing.T) {
	ctx := issuer.WithRoute(context.Background(), "/token")
	clk := &clock{t: time.Now()}
	mkStr, _ := issuer.NewMasterKeyString()
	mk, _ := issuer.ParseMasterKey(mkStr)
	core, _ := newCore(t, clk, mk)
	var mu sync.Mutex
	var got []issuer.Event
	core.SetEvents(func(_ context.Context, e issuer.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e)
	})
	// No retry grace: the second exchange of a token is reuse.
	is := newIssuer(t, core, issuer.Config{Entities: []issuer.Entity{{ID: "e-1"}}, RefreshGrace: -1})
	must(t, core.Store().PutUser(ctx, issuer.User{Name: "a"}))
	p := issuer.Principal{Kind: "user", Name: "a", Subject: "a"}
	toks, err := is.Issue(ctx, issuer.Grant{Principal: p, Refresh: true})
	must(t, err)
	refreshed, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: toks.RefreshToken})
	must(t, err)
	if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: toks.RefreshToken}); !errors.Is(err, issuer.ErrRefreshReused) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := is.AuthenticateUser(ctx, "nobody", "pw"); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	if _, err := is.ResetSecret(ctx, "e-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := core.Rotate(ctx, issuer.AlgEdDSA, 0); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, e := range got {
		kinds[e.Kind]++
		if e.Kind != issuer.EventKeyAdded && e.Route != "/token" {
			t.Errorf("%s event without its route: %+v", e.Kind, e)
		}
	}
	for kind, n := range map[string]int{issuer.EventIssued: 1, issuer.EventRefreshed: 1, issuer.EventRefreshReused: 1, issuer.EventRevoked: 1,
		issuer.EventLoginFailed: 1, issuer.EventSecretReset: 1, issuer.EventKeyAdded: 2} {
		if kinds[kind] != n {
			t.Errorf("%d %s events, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
	for _, e := range got {
		if e.Kind == issuer.EventIssued && (e.Grant != "password" || e.JTI != toks.Claims.ID || e.Subject != "a") {
			t.Errorf("issued event: %+v", e)
		}
		if e.Kind == issuer.EventRefreshed && (e.Grant != "refresh_token" || e.JTI != refreshed.Claims.ID || e.Session != toks.Claims.SID) {
			t.Errorf("refreshed event: %+v", e)
		}
		if e.Kind == issuer.EventRefreshReused && (e.Subject != "a" || e.Session != toks.Claims.SID) {
			t.Errorf("reuse event: %+v", e)
		}
	}
}
