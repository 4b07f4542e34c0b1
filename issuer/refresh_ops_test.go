package issuer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// TestRefreshGrantIsTwoStatementsOnPostgres: a refresh grant of a
// configured user costs two store round trips on PostgreSQL, reading the
// token (with its family's DPoP binding) and rotating it in one statement,
// bound to a DPoP key or not; a refresh with the wrong key stops after the
// read and leaves the token usable.
func TestRefreshGrantIsTwoStatementsOnPostgres(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "postgres", pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, err := issuer.OpenCore(ctx, st, issuer.CoreOptions{Clock: clk.Now, SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	h, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	must(t, err)
	alice := issuer.User{Name: "alice", PasswordHash: string(h)}
	is := newIssuer(t, core, issuer.Config{Users: []issuer.User{alice}})
	p := issuer.UserPrincipal(alice)

	var mu sync.Mutex
	var ops []string
	st.SetObserver(func(op string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		ops = append(ops, op)
	})
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		got := ops
		ops = nil
		return got
	}
	want := []string{"SELECT tg_refresh", "WITH tg_refresh"}

	for _, jkt := range []string{"", "key-thumbprint"} {
		toks, err := is.Issue(ctx, issuer.Grant{Principal: p, ClientID: "web", Refresh: true, JKT: jkt, BindRefresh: jkt != ""})
		must(t, err)
		rt := toks.RefreshToken
		if jkt != "" {
			take()
			if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: rt, ClientID: "web", JKT: "another-key"}); !errors.Is(err, issuer.ErrRefreshKey) {
				t.Fatalf("refresh with another key: %v", err)
			}
			if got := take(); !slices.Equal(got, want[:1]) {
				t.Errorf("refused refresh ran %v, want %v", got, want[:1])
			}
		}
		for range 3 {
			clk.Add(time.Second)
			take()
			next, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: rt, ClientID: "web", JKT: jkt})
			must(t, err)
			if got := take(); !slices.Equal(got, want) {
				t.Fatalf("refresh (DPoP key %q) ran %v, want %v", jkt, got, want)
			}
			rt = next.RefreshToken
		}
	}
}
