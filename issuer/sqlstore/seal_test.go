package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

func TestResealSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tg.db")
	testReseal(t, "sqlite", path)
}

func TestResealPostgres(t *testing.T) { testReseal(t, "postgres", pgtest.Schema(t)) }

func newKey(t *testing.T) *issuer.MasterKey {
	t.Helper()
	s, err := issuer.NewMasterKeyString()
	if err != nil {
		t.Fatal(err)
	}
	k, err := issuer.ParseMasterKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testReseal moves a store from plain text to one key and on to another,
// and checks that nothing is lost and that every other key is refused with
// both fingerprints named.
func testReseal(t *testing.T, driver, dsn string) {
	ctx := context.Background()
	open := func(mk *issuer.MasterKey) (*issuer.Core, error) {
		st, err := Open(ctx, driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		core, err := issuer.OpenCore(ctx, st, issuer.CoreOptions{MasterKey: mk, SyncInterval: -1})
		if err != nil {
			st.Close()
			return nil, err
		}
		return core, nil
	}
	withStore := func(f func(st *Store)) {
		st, err := Open(ctx, driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		f(st)
	}
	const iss = "https://gw.test"
	// 1. A plain-text store with a signing key and a token it signed.
	core, err := open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.EnsureKey(ctx, issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	is, _ := issuer.New(core, issuer.Config{Issuer: iss, Entities: []issuer.Entity{{ID: "e-1"}}})
	tok, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}})
	if err != nil {
		t.Fatal(err)
	}
	kid := core.Keys()[0].KID
	core.Close()

	k1, k2 := newKey(t), newKey(t)
	withStore(func(st *Store) {
		stats, err := issuer.Reseal(ctx, st, nil, k1)
		if err != nil || stats.Keys != 1 || stats.WasPlain != 1 {
			t.Fatalf("reseal plain -> k1: %+v %v", stats, err)
		}
		err = st.EachSealed(ctx, func(v issuer.SealedValue) error {
			if v.Plain() || !strings.HasPrefix(v.Sealed, "gcm1:") {
				t.Errorf("%s %s still plain after reseal", v.Kind, v.Owner)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	// 2. Now only k1 opens it; every other key is refused naming both.
	for _, other := range []*issuer.MasterKey{nil, k2} {
		_, err := open(other)
		var mm *issuer.SealMismatchError
		if !errors.As(err, &mm) || !strings.Contains(err.Error(), k1.Fingerprint()) || !strings.Contains(err.Error(), other.Fingerprint()) ||
			!strings.Contains(err.Error(), "caddy tokengate reseal") {
			t.Fatalf("opening a k1 store under %s: %v", other.Fingerprint(), err)
		}
	}
	core, err = open(k1)
	if err != nil {
		t.Fatal(err)
	}
	if ks := core.Keys(); len(ks) != 1 || ks[0].KID != kid || !ks[0].CanSign() {
		t.Fatalf("keys after reseal: %+v", ks)
	}
	is, _ = issuer.New(core, issuer.Config{Issuer: iss, Entities: []issuer.Entity{{ID: "e-1"}}, SecretGrace: time.Hour})
	if _, err := is.Verify(tok.AccessToken); err != nil {
		t.Fatalf("token signed before reseal: %v", err)
	}
	secret, err := is.ReadSecret(ctx, "e-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := is.ResetSecret(ctx, "e-1", time.Hour); err != nil { // a superseded secret too
		t.Fatal(err)
	}
	current, err := is.ReadSecret(ctx, "e-1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	core.Close()

	// 3. A reseal from the wrong old key changes nothing.
	withStore(func(st *Store) {
		if _, err := issuer.Reseal(ctx, st, k2, newKey(t)); err == nil {
			t.Fatal("reseal from a key the store is not sealed under succeeded")
		}
		fp, _ := issuer.StoredFingerprint(ctx, st)
		if fp != k1.Fingerprint() {
			t.Fatalf("failed reseal changed the fingerprint to %s", fp)
		}
		// 4. k1 -> k2 moves keys, the current and the superseded secret.
		stats, err := issuer.Reseal(ctx, st, k1, k2)
		if err != nil || stats.Keys != 1 || stats.Secrets != 2 || stats.WasPlain != 0 {
			t.Fatalf("reseal k1 -> k2: %+v %v", stats, err)
		}
		// Running it again is harmless.
		if _, err := issuer.Reseal(ctx, st, k1, k2); err != nil {
			t.Fatalf("repeated reseal: %v", err)
		}
	})
	if _, err := open(k1); err == nil {
		t.Fatal("the old key still opens the store")
	}
	core, err = open(k2)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	is, _ = issuer.New(core, issuer.Config{Issuer: iss, Entities: []issuer.Entity{{ID: "e-1"}}})
	got, err := is.ReadSecret(ctx, "e-1", time.Hour)
	if err != nil || got.Secret != current.Secret || got.Secret == secret.Secret {
		t.Fatalf("secret after reseal: %v (want the current one)", err)
	}
	if _, err := is.AuthenticateEntity(ctx, "e-1", current.Secret); err != nil {
		t.Fatalf("entity secret after reseal: %v", err)
	}
	if _, err := is.Issue(ctx, issuer.Grant{Principal: issuer.Principal{Name: "a", Subject: "a"}}); err != nil {
		t.Fatalf("signing after reseal: %v", err)
	}
}
