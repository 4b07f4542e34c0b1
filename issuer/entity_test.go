package issuer_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

func entityIssuer(t *testing.T, clk *clock, grace time.Duration) *issuer.Issuer {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	must(t, err)
	keyStr, _ := issuer.NewMasterKeyString()
	sk, err := issuer.ParseMasterKey(keyStr)
	must(t, err)
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{MasterKey: sk, Clock: clk.Now, SyncInterval: -1})
	must(t, err)
	t.Cleanup(func() { core.Close() })
	must(t, core.Store().PutEntity(context.Background(), issuer.Entity{ID: "stored-1", Roles: []string{"svc"}}))
	return newIssuer(t, core, issuer.Config{SecretGrace: grace, Entities: []issuer.Entity{{ID: "aa-1", Roles: []string{"member"}}}})
}

func TestEntitySecrets(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	is := entityIssuer(t, clk, 0)
	day := 24 * time.Hour
	if _, err := is.ReadSecret(ctx, "nobody", day); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatalf("unknown entity: %v", err)
	}
	first, err := is.ReadSecret(ctx, "aa-1", 10*day)
	must(t, err)
	again, err := is.ReadSecret(ctx, "aa-1", 99*day)
	must(t, err)
	if first.Secret != again.Secret || !again.ExpiresAt.Equal(clk.Now().Add(10*day)) || len(first.Secret) < 43 {
		t.Fatalf("read twice: %+v / %+v", first, again)
	}
	if e, err := is.AuthenticateEntity(ctx, "aa-1", first.Secret); err != nil || e.Roles[0] != "member" {
		t.Fatalf("authenticate: %+v %v", e, err)
	}
	// Entities may use the client route too.
	if c, err := is.AuthenticateClient(ctx, "aa-1", first.Secret); err != nil || !c.Entity || issuer.ClientPrincipal(c).Kind != "entity" {
		t.Fatalf("entity as client: %+v %v", c, err)
	}
	reset, err := is.ResetSecret(ctx, "aa-1", day)
	must(t, err)
	if reset.Secret == first.Secret {
		t.Fatal("reset kept the secret")
	}
	if _, err := is.AuthenticateEntity(ctx, "aa-1", first.Secret); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatalf("superseded secret without grace: %v", err)
	}
	if got, _ := is.ReadSecret(ctx, "aa-1", day); got.Secret != reset.Secret {
		t.Fatal("read after reset does not return the new secret")
	}
	// Expired: no tokens, and read makes a new one.
	clk.Add(day + time.Second)
	if _, err := is.AuthenticateEntity(ctx, "aa-1", reset.Secret); !errors.Is(err, issuer.ErrInvalidCredentials) {
		t.Fatalf("expired secret: %v", err)
	}
	fresh, err := is.ReadSecret(ctx, "aa-1", day)
	must(t, err)
	if fresh.Secret == reset.Secret {
		t.Fatal("read returned an expired secret")
	}
	// Stored entities work like declared ones.
	s, err := is.ReadSecret(ctx, "stored-1", day)
	must(t, err)
	if _, err := is.AuthenticateEntity(ctx, "stored-1", s.Secret); err != nil {
		t.Fatal(err)
	}
	if _, err := is.AuthenticateEntity(ctx, "stored-1", fresh.Secret); err == nil {
		t.Fatal("another entity's secret accepted")
	}
}

func TestEntitySecretGrace(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	is := entityIssuer(t, clk, 5*time.Minute)
	old, err := is.ReadSecret(ctx, "aa-1", 24*time.Hour)
	must(t, err)
	fresh, err := is.ResetSecret(ctx, "aa-1", 24*time.Hour)
	must(t, err)
	for _, s := range []string{old.Secret, fresh.Secret} {
		if _, err := is.AuthenticateEntity(ctx, "aa-1", s); err != nil {
			t.Fatalf("within grace: %v", err)
		}
	}
	clk.Add(5*time.Minute + time.Second)
	if _, err := is.AuthenticateEntity(ctx, "aa-1", old.Secret); err == nil {
		t.Fatal("old secret works after the grace period")
	}
	if _, err := is.AuthenticateEntity(ctx, "aa-1", fresh.Secret); err != nil {
		t.Fatal(err)
	}
}
