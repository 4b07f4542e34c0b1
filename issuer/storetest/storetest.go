// Package storetest is the behaviour every issuer.Store must show. Each
// implementation runs Run against a fresh store.
package storetest

import (
	"context"
	"errors"
	"fmt"
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
		// A rehash replaces only the hash it names: a password changed
		// meanwhile wins.
		must(t, s.RehashUser(ctx, "alice", "$argon2id$x", "$argon2id$y"))
		must(t, s.RehashUser(ctx, "alice", "$argon2id$x", "$argon2id$z"))
		must(t, s.RehashUser(ctx, "nobody", "$argon2id$x", "$argon2id$z"))
		if got, _ := s.GetUser(ctx, "alice"); got.PasswordHash != "$argon2id$y" || got.ID != "u-1" || got.Roles[0] != "viewer" {
			t.Fatalf("after RehashUser: %+v", got)
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
		// Lifetimes only grow.
		must(t, s.RaiseKeyLifetime(ctx, "e1", 2*time.Hour))
		must(t, s.RaiseKeyLifetime(ctx, "e1", time.Hour))
		for _, k := range mustList(t, s) {
			if k.KID == "e1" && k.MaxTTL != 2*time.Hour {
				t.Fatalf("MaxTTL after raising to 2h then 1h: %v", k.MaxTTL)
			}
		}
		must(t, s.DeleteKey(ctx, "k1"))
		if l, _ := s.ListKeys(ctx); len(l) != 2 {
			t.Fatalf("after DeleteKey: %d keys", len(l))
		}
	})
	t.Run("refresh tokens are used once", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		r := issuer.RefreshRecord{Hash: "h1", Family: "f1", Subject: "alice", Kind: "user", Principal: "alice", ClientID: "c", Scope: "a b", Issuer: "iss", ExpiresAt: now.Add(time.Hour), AuthTime: now}
		must(t, s.CreateRefresh(ctx, r, false))
		got, err := s.GetRefresh(ctx, "h1")
		must(t, err)
		if got.Family != "f1" || got.Scope != "a b" || got.ClientID != "c" || !got.ExpiresAt.Equal(r.ExpiresAt.Truncate(0)) || !got.AuthTime.Equal(now) || !got.UsedAt.IsZero() {
			t.Fatalf("GetRefresh = %+v", got)
		}
		// One wins; the first loser revokes the family, so later ones find
		// a revoked token (ErrNotFound).
		won, lost := race(t, 8, errLost, func(i int) error {
			old, err := s.RotateRefresh(ctx, "h1", next(r, fmt.Sprintf("h1-%d", i)), now, 0)
			if err == nil && old.Family != "f1" {
				t.Errorf("RotateRefresh returned family %q", old.Family)
			}
			if errors.Is(err, issuer.ErrRefreshReused) || errors.Is(err, issuer.ErrNotFound) {
				return errLost
			}
			return err
		})
		if won != 1 || lost != 7 {
			t.Fatalf("concurrent RotateRefresh: %d won, %d lost", won, lost)
		}
		if _, err := s.RotateRefresh(ctx, "h1", next(r, "h1-again"), now, 0); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("reused token after its family was revoked: %v", err)
		}
		// Reuse revoked the family, the winner's new token with it.
		for i := range 8 {
			if _, err := s.GetRefresh(ctx, fmt.Sprintf("h1-%d", i)); !errors.Is(err, issuer.ErrNotFound) {
				t.Fatalf("token of a revoked family: %v", err)
			}
		}
		if _, err := s.RotateRefresh(ctx, "nope", next(r, "x"), now, time.Minute); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		must(t, s.CreateRefresh(ctx, issuer.RefreshRecord{Hash: "h2", Family: "f2", Subject: "alice", Kind: "user", ExpiresAt: now.Add(time.Hour)}, false))
		if _, err := s.RotateRefresh(ctx, "h2", next(r, "h2-1"), now.Add(time.Hour), time.Minute); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("expired token: %v", err)
		}
		must(t, s.RevokeFamily(ctx, "f2"))
		if _, err := s.RotateRefresh(ctx, "h2", next(r, "h2-2"), now, time.Minute); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("revoked family token: %v", err)
		}
		if _, err := s.GetRefresh(ctx, "h2"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("GetRefresh of revoked: %v", err)
		}
		must(t, s.PurgeExpired(ctx, now.Add(2*time.Hour)))
		if _, err := s.RotateRefresh(ctx, "h1", next(r, "h1-x"), now, 0); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("purged token: %v", err)
		}
	})
	t.Run("a retry within the grace supersedes the first successor", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		grace := 30 * time.Second
		start := func(hash, family string) issuer.RefreshRecord {
			r := issuer.RefreshRecord{Hash: hash, Family: family, Subject: "alice", Kind: "user", Issuer: "iss", ExpiresAt: now.Add(time.Hour), AuthTime: now}
			must(t, s.CreateRefresh(ctx, r, false))
			return r
		}
		r := start("a1", "fa")
		_, err := s.RotateRefresh(ctx, "a1", next(r, "a2"), now, grace)
		must(t, err)
		// The response with a2 was lost: the retry gets a3, a2 is superseded.
		_, err = s.RotateRefresh(ctx, "a1", next(r, "a3"), now.Add(10*time.Second), grace)
		must(t, err)
		_, err = s.RotateRefresh(ctx, "a3", next(r, "a4"), now.Add(11*time.Second), grace)
		must(t, err)
		// a2 surfacing now means two holders: the family ends, a4 with it.
		if _, err := s.RotateRefresh(ctx, "a2", next(r, "a5"), now.Add(12*time.Second), grace); !errors.Is(err, issuer.ErrRefreshReused) {
			t.Fatalf("superseded token: %v", err)
		}
		if _, err := s.GetRefresh(ctx, "a4"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("family survived a superseded token's use: %v", err)
		}

		r = start("b1", "fb")
		_, err = s.RotateRefresh(ctx, "b1", next(r, "b2"), now, grace)
		must(t, err)
		if _, err := s.RotateRefresh(ctx, "b1", next(r, "b3"), now.Add(grace+time.Second), grace); !errors.Is(err, issuer.ErrRefreshReused) {
			t.Fatalf("retry after the grace: %v", err)
		}
		if _, err := s.GetRefresh(ctx, "b2"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("family survived reuse after the grace: %v", err)
		}

		r = start("c1", "fc")
		_, err = s.RotateRefresh(ctx, "c1", next(r, "c2"), now, grace)
		must(t, err)
		_, err = s.RotateRefresh(ctx, "c2", next(r, "c3"), now.Add(time.Second), grace)
		must(t, err)
		// The chain went on from c2: c1 again is a second holder, even in grace.
		if _, err := s.RotateRefresh(ctx, "c1", next(r, "c4"), now.Add(2*time.Second), grace); !errors.Is(err, issuer.ErrRefreshReused) {
			t.Fatalf("retry after the successor was used: %v", err)
		}
		if _, err := s.GetRefresh(ctx, "c3"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("family survived: %v", err)
		}

		// Concurrent presentations within the grace all get a pair, and
		// exactly one of the new tokens is live: the family never forks.
		r = start("d1", "fd")
		won, _ := race(t, 8, issuer.ErrRefreshReused, func(i int) error {
			_, err := s.RotateRefresh(ctx, "d1", next(r, fmt.Sprintf("d2-%d", i)), now, grace)
			return err
		})
		if won != 8 {
			t.Fatalf("%d of 8 retries in the grace got a pair", won)
		}
		live := 0
		for i := range 8 {
			got, err := s.GetRefresh(ctx, fmt.Sprintf("d2-%d", i))
			must(t, err)
			if got.UsedAt.IsZero() {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("%d live tokens in one family, want 1", live)
		}
	})
	t.Run("a family revoked while a reuse revokes it too", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		for round := range 30 {
			fam := fmt.Sprintf("fr%d", round)
			name := func(i int) string { return fmt.Sprintf("%s-%d", fam, i) }
			r := issuer.RefreshRecord{Hash: name(0), Family: fam, Subject: "rae", Kind: "user", Issuer: "iss", ExpiresAt: now.Add(time.Hour), AuthTime: now}
			must(t, s.CreateRefresh(ctx, r, false))
			for i := 1; i < 6; i++ {
				_, err := s.RotateRefresh(ctx, name(i-1), next(r, name(i)), now, 0)
				must(t, err)
			}
			// A reuse of a token in the middle of the chain locks it, then
			// revokes the family; RevokeFamily meanwhile revokes from the
			// start. Neither may fail: they decide one after the other.
			var wg sync.WaitGroup
			var reuseErr, revokeErr error
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, reuseErr = s.RotateRefresh(ctx, name(3), next(r, name(9)), now, 0)
			}()
			go func() {
				defer wg.Done()
				revokeErr = s.RevokeFamily(ctx, fam)
			}()
			wg.Wait()
			if !errors.Is(reuseErr, issuer.ErrRefreshReused) && !errors.Is(reuseErr, issuer.ErrNotFound) {
				t.Fatalf("round %d: the reuse: %v", round, reuseErr)
			}
			if revokeErr != nil {
				t.Fatalf("round %d: RevokeFamily: %v", round, revokeErr)
			}
			for i := range 10 {
				if rec, err := s.GetRefresh(ctx, name(i)); !errors.Is(err, issuer.ErrNotFound) {
					t.Fatalf("round %d: %s after both: %+v, %v", round, name(i), rec, err)
				}
			}
		}
	})
	t.Run("ending a subject's sessions", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		mk := func(hash, family, subject string, auth time.Time, exclusive bool) issuer.RefreshRecord {
			r := issuer.RefreshRecord{Hash: hash, Family: family, Subject: subject, Kind: "user", Issuer: "iss", ExpiresAt: now.Add(time.Hour), AuthTime: auth}
			must(t, s.CreateRefresh(ctx, r, exclusive))
			return r
		}
		gone := func(hash string) bool {
			_, err := s.GetRefresh(ctx, hash)
			if err != nil && !errors.Is(err, issuer.ErrNotFound) {
				t.Fatal(err)
			}
			return err != nil
		}
		a := mk("a1", "fa", "alice", now.Add(-time.Minute), false)
		mk("b1", "fb", "bob", now.Add(-time.Minute), false)
		// A rotation racing the end: its new token carries the family's start.
		_, err := s.RotateRefresh(ctx, "a1", next(a, "a2"), now, 0)
		must(t, err)
		must(t, s.EndSessions(ctx, "alice", now, ""))
		if !gone("a2") || gone("b1") {
			t.Fatalf("after EndSessions(alice): a2 gone %v, b1 gone %v", gone("a2"), gone("b1"))
		}
		if _, err := s.RotateRefresh(ctx, "a2", next(a, "a3"), now.Add(time.Second), time.Minute); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("refresh of an ended session: %v", err)
		}
		// A session begun later lives; an older cut-off arriving late changes nothing.
		mk("c1", "fc", "alice", now.Add(time.Second), false)
		must(t, s.EndSessions(ctx, "alice", now.Add(-time.Hour), ""))
		if gone("c1") || !gone("a2") {
			t.Fatal("a late, older cut-off changed which sessions are ended")
		}
		// An exclusive session ends the others in the same write.
		d := mk("d1", "fd", "alice", now.Add(2*time.Second), true)
		if !gone("c1") || gone("d1") {
			t.Fatalf("exclusive session: c1 gone %v, d1 gone %v", gone("c1"), gone("d1"))
		}
		_, err = s.RotateRefresh(ctx, "d1", next(d, "d2"), now.Add(3*time.Second), 0)
		must(t, err)
		if gone("d2") {
			t.Fatal("the kept session cannot rotate")
		}
	})
	t.Run("a session cut-off lasts while a family it ended has an unused token", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		auth := now.Add(-time.Hour)
		// k1 (used, expiring in 3 h) was exchanged for k2 (unused, 1 h).
		k1 := issuer.RefreshRecord{Hash: "k1", Family: "fk", Subject: "kim", Kind: "user", Issuer: "iss", ExpiresAt: now.Add(3 * time.Hour), AuthTime: auth}
		must(t, s.CreateRefresh(ctx, k1, false))
		k2 := next(k1, "k2")
		k2.ExpiresAt = now.Add(time.Hour)
		_, err := s.RotateRefresh(ctx, "k1", k2, now.Add(-time.Minute), 0)
		must(t, err)
		must(t, s.EndSessions(ctx, "kim", now, ""))
		// A family begun before the cut-off lives only if the cut-off is gone.
		lives := func(hash string, exp time.Time) bool {
			must(t, s.CreateRefresh(ctx, issuer.RefreshRecord{Hash: hash, Family: "f" + hash, Subject: "kim", Kind: "user",
				Issuer: "iss", ExpiresAt: exp, AuthTime: auth}, false))
			_, err := s.GetRefresh(ctx, hash)
			if err != nil && !errors.Is(err, issuer.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
		must(t, s.PurgeExpired(ctx, now))
		if lives("p1", now.Add(time.Minute)) {
			t.Fatal("the cut-off was forgotten while a family it ended still has an unused token")
		}
		// k2 and p1 expire; k1, used and live, is all that is left of fk.
		must(t, s.PurgeExpired(ctx, now.Add(2*time.Hour)))
		if !lives("p2", now.Add(4*time.Hour)) {
			t.Fatal("the cut-off outlived the unused tokens of the families it ended")
		}
		// Even within a grace that long, k1 is not exchanged again: a retry
		// supersedes the successor, and k2 is gone.
		if _, err := s.RotateRefresh(ctx, "k1", next(k1, "k3"), now.Add(2*time.Hour), 24*time.Hour); err == nil {
			t.Fatal("a used token of an ended family was exchanged once its cut-off was forgotten")
		}
		if _, err := s.GetRefresh(ctx, "k3"); !errors.Is(err, issuer.ErrNotFound) {
			t.Fatalf("a successor of the used token: %v", err)
		}
	})
	t.Run("expired refresh tokens are pruned", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		for i := range 2500 {
			must(t, s.CreateRefresh(ctx, issuer.RefreshRecord{Hash: fmt.Sprintf("e%d", i), Family: "f", Subject: "alice", Kind: "user", ExpiresAt: now.Add(-time.Minute)}, false))
		}
		must(t, s.CreateRefresh(ctx, issuer.RefreshRecord{Hash: "live", Family: "g", Subject: "alice", Kind: "user", ExpiresAt: now.Add(time.Hour)}, false))
		must(t, s.PurgeExpired(ctx, now))
		for _, h := range []string{"e0", "e1234", "e2499"} {
			if _, err := s.GetRefresh(ctx, h); !errors.Is(err, issuer.ErrNotFound) {
				t.Fatalf("expired %s after purge: %v", h, err)
			}
		}
		if _, err := s.GetRefresh(ctx, "live"); err != nil {
			t.Fatalf("live token after purge: %v", err)
		}
	})
	t.Run("revocations", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: "j1", ExpiresAt: now.Add(-time.Minute)}))
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeSubject, Key: "alice", Keep: "j9", At: now, ExpiresAt: now.Add(time.Hour)}))
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeSession, Key: "f1", ExpiresAt: now.Add(-time.Minute)}))
		all, cursor, err := s.RevocationsSince(ctx, 0)
		must(t, err)
		if len(all) != 3 || all[1].Keep != "j9" || !all[1].At.Equal(now) || all[0].ID >= all[1].ID {
			t.Fatalf("RevocationsSince(0) = %+v", all)
		}
		// The cursor moves on: nothing new means nothing (or, where the
		// store re-reads a window, only what was already seen).
		again, _, err := s.RevocationsSince(ctx, cursor)
		must(t, err)
		for _, r := range again {
			if r.ID > all[2].ID {
				t.Fatalf("RevocationsSince(cursor) returned an unknown row %+v", r)
			}
		}
		must(t, s.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: "j2", ExpiresAt: now.Add(time.Hour)}))
		later, _, err := s.RevocationsSince(ctx, cursor)
		must(t, err)
		if len(later) == 0 || later[len(later)-1].Key != "j2" {
			t.Fatalf("RevocationsSince(cursor) after an insert = %+v", later)
		}
		all = append(all, later[len(later)-1])
		must(t, s.PurgeExpired(ctx, now))
		left, _, err := s.RevocationsSince(ctx, 0)
		must(t, err)
		// The expired jti and session go; the subject and the live jti stay.
		if len(left) != 2 || left[0].Kind != issuer.RevokeSubject || left[1].ID != all[3].ID {
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
	t.Run("an entity removed while its secret is reset", func(t *testing.T) {
		s := open(t)
		now := time.Now().UTC()
		// Five rounds: on PostgreSQL nearly every one deadlocks (each costs
		// the server's deadlock_timeout, 1 s by default, before the retry).
		for round := range 5 {
			id := fmt.Sprintf("ed-%d", round)
			sec := func(hash string, created time.Time) issuer.EntitySecret {
				return issuer.EntitySecret{EntityID: id, Hash: id + hash, Sealed: "sealed", CreatedAt: created, ExpiresAt: now.Add(time.Hour)}
			}
			must(t, s.PutEntity(ctx, issuer.Entity{ID: id}))
			must(t, s.AddSecret(ctx, sec("s0", now), false, time.Time{}))
			must(t, s.AddSecret(ctx, sec("s1", now), true, now)) // s0 superseded, past its use once a later secret comes
			// The reset locks s1 and then drops s0; the removal deletes s0
			// first. Neither may fail: they decide one after the other.
			var wg sync.WaitGroup
			var delErr, addErr error
			wg.Add(2)
			go func() { defer wg.Done(); delErr = s.DeleteEntity(ctx, id) }()
			go func() {
				defer wg.Done()
				addErr = s.AddSecret(ctx, sec("s2", now.Add(time.Second)), true, now.Add(time.Second))
			}()
			wg.Wait()
			if delErr != nil || addErr != nil {
				t.Fatalf("round %d: DeleteEntity %v, AddSecret %v", round, delErr, addErr)
			}
			if _, err := s.GetEntity(ctx, id); !errors.Is(err, issuer.ErrNotFound) {
				t.Fatalf("round %d: the removed entity: %v", round, err)
			}
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
	runBrowser(t, open)
}

var errLost = errors.New("lost")

// next is the token r is exchanged for.
func next(r issuer.RefreshRecord, hash string) issuer.RefreshRecord {
	r.Hash = hash
	return r
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

func mustList(t *testing.T, s issuer.Store) []issuer.KeyRecord {
	t.Helper()
	l, err := s.ListKeys(context.Background())
	must(t, err)
	return l
}
