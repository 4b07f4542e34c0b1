package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

var errReplayed = errors.New("replayed")

func runDPoP(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("dpop proof ids are used once, by one of concurrent callers", func(t *testing.T) {
		s := open(t)
		now := time.Now()
		won, lost := race(t, 8, errReplayed, func(int) error {
			fresh, err := s.UseProofID(ctx, "p1", now.Add(time.Minute), now)
			if err == nil && !fresh {
				return errReplayed
			}
			return err
		})
		if won != 1 || lost != 7 {
			t.Fatalf("won %d, lost %d; want 1 and 7", won, lost)
		}
		// Once expired, the id is free again (the iat window refuses such
		// a proof before it gets here).
		fresh, err := s.UseProofID(ctx, "p1", now.Add(3*time.Minute), now.Add(2*time.Minute))
		must(t, err)
		if !fresh {
			t.Fatal("an expired proof id still counts as used")
		}
		must(t, s.PurgeExpired(ctx, now.Add(time.Hour)))
		if fresh, _ := s.UseProofID(ctx, "p1", now.Add(2*time.Hour), now.Add(time.Hour)); !fresh {
			t.Fatal("purged proof id still counts as used")
		}
	})
	t.Run("dpop family bindings", func(t *testing.T) {
		s := open(t)
		now := time.Now()
		must(t, s.BindFamily(ctx, "fam", "jkt-1", now.Add(time.Hour)))
		if k, err := s.FamilyKey(ctx, "fam"); err != nil || k != "jkt-1" {
			t.Fatalf("FamilyKey = %q, %v", k, err)
		}
		if k, err := s.FamilyKey(ctx, "other"); err != nil || k != "" {
			t.Fatalf("unbound FamilyKey = %q, %v", k, err)
		}
		if err := s.BindFamily(ctx, "fam", "jkt-2", now.Add(time.Hour)); err == nil {
			t.Fatal("a family was bound twice")
		}
		must(t, s.PurgeExpired(ctx, now.Add(2*time.Hour)))
		if k, _ := s.FamilyKey(ctx, "fam"); k != "" {
			t.Fatal("expired binding not purged")
		}
	})
	t.Run("a refresh token carries its family's DPoP binding", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		mk := func(hash, family string) issuer.RefreshRecord {
			r := issuer.RefreshRecord{Hash: hash, Family: family, Subject: "alice", Kind: "user", Issuer: "iss",
				ExpiresAt: now.Add(time.Hour), AuthTime: now}
			must(t, s.CreateRefresh(ctx, r, false))
			return r
		}
		must(t, s.BindFamily(ctx, "bound", "jkt-1", now.Add(time.Hour)))
		b := mk("b1", "bound")
		mk("u1", "unbound")
		for hash, want := range map[string]string{"b1": "jkt-1", "u1": ""} {
			if got, err := s.GetRefresh(ctx, hash); err != nil || got.JKT != want {
				t.Fatalf("GetRefresh(%s).JKT = %q, %v; want %q", hash, got.JKT, err, want)
			}
		}
		// Rotation keeps the family, so the successor is bound too.
		old, err := s.RotateRefresh(ctx, "b1", next(b, "b2"), now, time.Minute)
		must(t, err)
		if old.JKT != "jkt-1" {
			t.Fatalf("RotateRefresh returned JKT %q", old.JKT)
		}
		if got, err := s.GetRefresh(ctx, "b2"); err != nil || got.JKT != "jkt-1" {
			t.Fatalf("successor JKT = %q, %v", got.JKT, err)
		}
	})
	t.Run("a binding outlives its first token while the family goes on", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		// Bound until the first token expires; each rotation slides the
		// expiry of the family's newest token past that.
		first := issuer.RefreshRecord{Hash: "f1", Family: "fam", Subject: "alice", Kind: "user", Issuer: "iss",
			ExpiresAt: now.Add(time.Hour), AuthTime: now}
		must(t, s.BindFamily(ctx, "fam", "jkt-1", first.ExpiresAt))
		must(t, s.CreateRefresh(ctx, first, false))
		second := next(first, "f2")
		second.ExpiresAt = now.Add(2 * time.Hour)
		_, err := s.RotateRefresh(ctx, "f1", second, now.Add(50*time.Minute), time.Minute)
		must(t, err)
		must(t, s.PurgeExpired(ctx, now.Add(90*time.Minute)))
		if got, err := s.GetRefresh(ctx, "f2"); err != nil || got.JKT != "jkt-1" {
			t.Fatalf("after the first token's expiry the live token reads JKT %q, %v: its family lost its key", got.JKT, err)
		}
		must(t, s.PurgeExpired(ctx, now.Add(3*time.Hour)))
		if k, err := s.FamilyKey(ctx, "fam"); err != nil || k != "" {
			t.Fatalf("binding of a family with no token left: %q, %v", k, err)
		}
	})
}
