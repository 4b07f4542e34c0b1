package issuer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/issuer"
)

func TestDPoPBinding(t *testing.T) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	core, _ := newCore(t, clk, nil)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	is := newIssuer(t, core, issuer.Config{Users: []issuer.User{{Name: "alice", PasswordHash: string(hash)}}})
	ctx := context.Background()
	u, err := is.LookupUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	p := issuer.UserPrincipal(u)
	for _, tc := range []struct {
		name        string
		bind        bool
		refreshWith string // key presented at refresh
		want        error
	}{
		{"public client, same key", true, "jkt-1", nil},
		{"public client, another key", true, "jkt-2", issuer.ErrRefreshKey},
		{"public client, no proof", true, "", issuer.ErrRefreshKey},
		{"confidential client, no proof", false, "", nil},
		{"confidential client, another key", false, "jkt-2", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := is.Issue(ctx, issuer.Grant{Principal: p, Refresh: true, JKT: "jkt-1", BindRefresh: tc.bind})
			if err != nil {
				t.Fatal(err)
			}
			c, err := is.Verify(toks.AccessToken)
			if err != nil || c.BoundKey() != "jkt-1" {
				t.Fatalf("verified claims %+v, %v; want cnf.jkt jkt-1", c, err)
			}
			next, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: toks.RefreshToken, JKT: tc.refreshWith})
			if !errors.Is(err, tc.want) {
				t.Fatalf("refresh: %v, want %v", err, tc.want)
			}
			if err != nil {
				// Refused before use: the owner's key still works.
				if _, _, err := is.Refresh(ctx, issuer.RefreshRequest{Token: toks.RefreshToken, JKT: "jkt-1"}); err != nil {
					t.Fatalf("owner after a refused attempt: %v", err)
				}
				return
			}
			if got := next.Claims.BoundKey(); got != tc.refreshWith {
				t.Fatalf("refreshed token bound to %q, want %q", got, tc.refreshWith)
			}
		})
	}
	toks, err := is.Issue(ctx, issuer.Grant{Principal: p})
	if err != nil || toks.Claims.Cnf != nil {
		t.Fatalf("a bearer grant got cnf %+v, %v", toks.Claims.Cnf, err)
	}
}
