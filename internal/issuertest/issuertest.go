// Package issuertest builds a real Issuer on a temporary SQLite store for
// the wire-format packages' unit tests.
package issuertest

import (
	"context"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/bcrypt"

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
	st, err := sqlstore.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	if err := core.EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	cfg.Users = append(cfg.Users,
		issuer.User{Name: "alice", PasswordHash: Hash(t, Password), Roles: []string{"admin"}, Scopes: []string{"read"}},
		issuer.User{Name: "bob", PasswordHash: Hash(t, Password)})
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
