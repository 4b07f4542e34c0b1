// Package issuertest builds a real Issuer on a temporary SQLite store for
// the wire-format packages' unit tests.
package issuertest

import (
	"context"
	"crypto/x509"
	"maps"
	"path/filepath"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/cli"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// Password is the password of the users New declares.
const Password = "pw-123"

// New returns an Issuer with users alice (roles admin, scopes read) and
// bob, and whatever cfg adds. Secrets hashes use bcrypt's lowest cost to
// keep tests fast.
func New(t testing.TB, cfg issuer.Config) *issuer.Issuer {
	t.Helper()
	cfg.Users = append(cfg.Users,
		issuer.User{Name: "alice", PasswordHash: Hash(t, Password), Roles: []string{"admin"}, Scopes: []string{"read"}},
		issuer.User{Name: "bob", PasswordHash: Hash(t, Password)})
	is := Open(t, filepath.Join(t.TempDir(), "tg.db"), cfg)
	if err := is.Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	return is
}

// Open returns an Issuer on the SQLite store at path (created if need be),
// closed when the test ends.
func Open(t testing.TB, path string, cfg issuer.Config) *issuer.Issuer {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{SyncInterval: -1})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	is, err := issuer.New(core, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

// Hash is a fast bcrypt hash of secret.
func Hash(t testing.TB, secret string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(secret), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// SignWithStoredKey signs claims with header fields extra using the newest
// EdDSA key in the store at path, whose private half must be unsealed (no
// master_key): for tokens the issuer would never mint, such as one with a
// crit header, that still carry a valid signature.
func SignWithStoredKey(t testing.TB, path string, claims jwt.MapClaims, extra map[string]any) string {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rec *issuer.KeyRecord
	for i := range recs {
		if recs[i].Alg == issuer.AlgEdDSA && (rec == nil || recs[i].Seq > rec.Seq) {
			rec = &recs[i]
		}
	}
	if rec == nil {
		t.Fatal("no EdDSA key in the store")
	}
	// Plain, or sealed under the key Caddy generated in its data directory.
	mk, _, err := cli.ResolveMasterKey("", false)
	if err != nil {
		t.Fatal(err)
	}
	der, err := mk.OpenPrivateKey(*rec)
	if err != nil {
		t.Fatalf("opening key %s: %v", rec.KID, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"], tok.Header["typ"] = rec.KID, "at+jwt"
	maps.Copy(tok.Header, extra)
	s, err := tok.SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
