// Package storetest is the behaviour every issuer.Store must show. Each
// implementation runs Run against a fresh store.
package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// Run runs the suite; open returns an empty, migrated store.
func Run(t *testing.T, open func(t *testing.T) issuer.Store) {
	ctx := context.Background()
	t.Run("users", func(t *testing.T) {
		s := open(t)
		u := issuer.User{Name: "alice", ID: "u-1", PasswordHash: "$argon2id$x", Roles: []string{"admin", "dev"}, Scopes: []string{"a:b"}}
		must(t, s.PutUser(ctx, u))
		got, err := s.GetUser(ctx, "alice")
		must(t, err)
		if got.ID != "u-1" || got.PasswordHash != u.PasswordHash || len(got.Roles) != 2 || got.Scopes[0] != "a:b" {
			t.Fatalf("GetUser = %+v", got)
		}
		u.Roles = []string{"viewer"}
		must(t, s.PutUser(ctx, u))
		if got, _ := s.GetUser(ctx, "alice"); len(got.Roles) != 1 || got.Roles[0] != "viewer" {
			t.Fatalf("PutUser did not replace: %+v", got)
		}
		must(t, s.PutUser(ctx, issuer.User{Name: "bob", PasswordHash: "h"}))
		l, err := s.ListUsers(ctx)
		must(t, err)
		if len(l) != 2 || l[0].Name != "alice" || l[1].Name != "bob" {
			t.Fatalf("ListUsers = %+v", l)
		}
		must(t, s.DeleteUser(ctx, "alice"))
		if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("GetUser after delete: %v", err)
		}
		if err := s.DeleteUser(ctx, "alice"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("DeleteUser twice: %v", err)
		}
	})
	t.Run("clients", func(t *testing.T) {
		s := open(t)
		must(t, s.PutClient(ctx, issuer.Client{ID: "c1", SecretHash: "abc", Roles: []string{"r"}, Scopes: []string{"x", "y"}, Grants: []string{"client_credentials"}}))
		c, err := s.GetClient(ctx, "c1")
		must(t, err)
		if c.SecretHash != "abc" || len(c.Scopes) != 2 || !c.AllowsGrant("client_credentials") || c.AllowsGrant("password") {
			t.Fatalf("GetClient = %+v", c)
		}
		l, err := s.ListClients(ctx)
		must(t, err)
		if len(l) != 1 {
			t.Fatalf("ListClients = %+v", l)
		}
		must(t, s.DeleteClient(ctx, "c1"))
		if _, err := s.GetClient(ctx, "c1"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("GetClient after delete: %v", err)
		}
	})
	t.Run("keys elect one winner per sequence", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		k := issuer.KeyRecord{KID: "k1", Alg: "EdDSA", Seq: 1, Private: "p", Public: "q", CreatedAt: now, ActivateAt: now.Add(time.Minute)}
		must(t, s.AddKey(ctx, k))
		won, lost := race(t, 8, issuer.ErrConflict, func(i int) error {
			return s.AddKey(ctx, issuer.KeyRecord{KID: "k2-" + string(rune('a'+i)), Alg: "EdDSA", Seq: 2, Private: "p", CreatedAt: now, ActivateAt: now})
		})
		if won != 1 || lost != 7 {
			t.Fatalf("concurrent AddKey: %d won, %d lost; want 1 and 7", won, lost)
		}
		must(t, s.AddKey(ctx, issuer.KeyRecord{KID: "e1", Alg: "ES256", Seq: 1, Private: "p", CreatedAt: now, ActivateAt: now}))
		l, err := s.ListKeys(ctx)
		must(t, err)
		if len(l) != 3 || !l[0].ActivateAt.Equal(k.ActivateAt) && l[0].KID == "k1" {
			t.Fatalf("ListKeys = %+v", l)
		}
		must(t, s.DeleteKey(ctx, "k1"))
		if l, _ := s.ListKeys(ctx); len(l) != 2 {
			t.Fatalf("after DeleteKey: %d keys", len(l))
		}
	})
	t.Run("refresh tokens are used once", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		r := issuer.RefreshRecord{Hash: "h1", Family: "f1", Subject: "alice", Kind: "user", Principal: "alice", ClientID: "c", Scope: "a b", Issuer: "iss", ExpiresAt: now.Add(time.Hour)}
		must(t, s.CreateRefresh(ctx, r))
		must(t, s.CreateRefresh(ctx, issuer.RefreshRecord{Hash: "h2", Family: "f1", Subject: "alice", Kind: "user", ExpiresAt: now.Add(time.Hour)}))
		won, reused := race(t, 8, issuer.ErrRefreshReused, func(int) error {
			got, err := s.UseRefresh(ctx, "h1", now)
			if err == nil && (got.Family != "f1" || got.Scope != "a b" || got.ClientID != "c" || !got.ExpiresAt.Equal(r.ExpiresAt.Truncate(0))) {
				t.Errorf("UseRefresh = %+v", got)
			}
			if errors.Is(err, issuer.ErrRefreshReused) && got.Family != "f1" {
				t.Errorf("reused record has family %q", got.Family)
			}
			return err
		})
		if won != 1 || reused != 7 {
			t.Fatalf("concurrent UseRefresh: %d won, %d reused", won, reused)
		}
		if _, err := s.UseRefresh(ctx, "nope", now); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if _, err := s.GetRefresh(ctx, "h2"); err != nil {
			t.Fatalf("GetRefresh: %v", err)
		}
		must(t, s.RevokeFamily(ctx, "f1"))
		if _, err := s.UseRefresh(ctx, "h2", now); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("revoked family token: %v", err)
		}
		if _, err := s.GetRefresh(ctx, "h2"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("GetRefresh of revoked: %v", err)
		}
		must(t, s.PurgeExpired(ctx, now.Add(2*time.Hour)))
		if _, err := s.UseRefresh(ctx, "h1", now); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("purged token: %v", err)
		}
	})
	t.Run("revocations", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: "j1", ExpiresAt: now.Add(-time.Minute)}))
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeSubject, Key: "alice", Keep: "j9", At: now, ExpiresAt: now.Add(time.Hour)}))
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeSession, Key: "f1", ExpiresAt: now.Add(-time.Minute)}))
		all, err := s.RevocationsSince(ctx, 0)
		must(t, err)
		if len(all) != 3 || all[1].Keep != "j9" || !all[1].At.Equal(now) || all[0].ID >= all[1].ID {
			t.Fatalf("RevocationsSince(0) = %+v", all)
		}
		later, err := s.RevocationsSince(ctx, all[0].ID)
		must(t, err)
		if len(later) != 2 {
			t.Fatalf("RevocationsSince(first) = %+v", later)
		}
		must(t, s.PurgeExpired(ctx, now))
		left, err := s.RevocationsSince(ctx, 0)
		must(t, err)
		// The expired jti goes; the newest row stays even though expired so IDs keep rising.
		if len(left) != 2 || left[0].Kind != issuer.RevokeSubject || left[1].ID != all[2].ID {
			t.Fatalf("after purge = %+v", left)
		}
	})
	t.Run("entities", func(t *testing.T) {
		s := open(t)
		must(t, s.PutEntity(ctx, issuer.Entity{ID: "aa-1", Roles: []string{"member"}}))
		e, err := s.GetEntity(ctx, "aa-1")
		must(t, err)
		if e.ID != "aa-1" || len(e.Roles) != 1 {
			t.Fatalf("GetEntity = %+v", e)
		}
		l, err := s.ListEntities(ctx)
		must(t, err)
		if len(l) != 1 {
			t.Fatalf("ListEntities = %+v", l)
		}
		must(t, s.AddSecret(ctx, issuer.EntitySecret{EntityID: "aa-1", Hash: "h", ExpiresAt: time.Now().Add(time.Hour)}, false, time.Time{}))
		must(t, s.DeleteEntity(ctx, "aa-1"))
		if _, err := s.GetEntity(ctx, "aa-1"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("GetEntity after delete: %v", err)
		}
		if _, err := s.CurrentSecret(ctx, "aa-1"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("secret survived its entity: %v", err)
		}
	})
	t.Run("entity secrets: one current, atomic replace, grace", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		sec := func(hash string, exp time.Duration) issuer.EntitySecret {
			return issuer.EntitySecret{EntityID: "e", Hash: hash, Sealed: "sealed-" + hash, CreatedAt: now, ExpiresAt: now.Add(exp)}
		}
		if _, err := s.CurrentSecret(ctx, "e"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("CurrentSecret of none: %v", err)
		}
		// Concurrent "create if none": exactly one wins.
		won, lost := race(t, 6, issuer.ErrConflict, func(i int) error {
			return s.AddSecret(ctx, sec(string(rune('a'+i)), time.Hour), false, time.Time{})
		})
		if won != 1 || lost != 5 {
			t.Fatalf("concurrent create: %d won, %d lost", won, lost)
		}
		first, err := s.CurrentSecret(ctx, "e")
		must(t, err)
		if first.Sealed != "sealed-"+first.Hash || !first.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("CurrentSecret = %+v", first)
		}
		// Replace with a grace period: both usable until it ends.
		must(t, s.AddSecret(ctx, sec("new", 2*time.Hour), true, now.Add(time.Minute)))
		cur, err := s.CurrentSecret(ctx, "e")
		must(t, err)
		if cur.Hash != "new" {
			t.Fatalf("current after replace = %q", cur.Hash)
		}
		usable, err := s.UsableSecrets(ctx, "e", now)
		must(t, err)
		if len(usable) != 2 || usable[0].Hash != "new" || !usable[1].Superseded || !usable[1].UsableUntil.Equal(now.Add(time.Minute)) {
			t.Fatalf("UsableSecrets in grace = %+v", usable)
		}
		if usable, _ := s.UsableSecrets(ctx, "e", now.Add(2*time.Minute)); len(usable) != 1 || usable[0].Hash != "new" {
			t.Fatalf("UsableSecrets after grace = %+v", usable)
		}
		// Replace without grace: the replaced one is unusable at once (the
		// first one is still in its own grace period).
		must(t, s.AddSecret(ctx, sec("newer", time.Hour), true, now))
		hashes := func(at time.Time) string {
			usable, err := s.UsableSecrets(ctx, "e", at)
			must(t, err)
			var hs []string
			for _, u := range usable {
				hs = append(hs, u.Hash)
			}
			return strings.Join(hs, ",")
		}
		if got := hashes(now); got != "newer,"+first.Hash {
			t.Fatalf("usable after replace without grace = %s", got)
		}
		if got := hashes(now.Add(2 * time.Minute)); got != "newer" {
			t.Fatalf("usable after every grace = %s", got)
		}
		// Expired secrets are not usable.
		if usable, _ := s.UsableSecrets(ctx, "e", now.Add(3*time.Hour)); len(usable) != 0 {
			t.Fatalf("UsableSecrets after expiry = %+v", usable)
		}
	})
	t.Run("settings keep the first value", func(t *testing.T) {
		s := open(t)
		v, err := s.Setting(ctx, "k", func() (string, error) { return "one", nil })
		must(t, err)
		v2, err := s.Setting(ctx, "k", func() (string, error) { return "two", nil })
		must(t, err)
		if v != "one" || v2 != "one" {
			t.Fatalf("Setting = %q, %q", v, v2)
		}
	})
	runDPoP(t, open)
}

// race runs f n times at once and counts the calls that succeeded and those
// that failed with lost; any other error fails the test.
func race(t *testing.T, n int, lost error, f func(i int) error) (won, lostCount int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := f(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, lost):
				lostCount++
			default:
				t.Errorf("call %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	return won, lostCount
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
