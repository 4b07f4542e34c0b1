// Package issuertest builds a real Issuer on a temporary SQLite store for
// the wire-format packages' unit tests.
package issuertest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/dpop"
	"github.com/tokengate/caddy-tokengate/internal/gateway/storeconf"
	"github.com/tokengate/caddy-tokengate/internal/gateway/tokenauth"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

// Password is the password of the users New declares.
const Password = "pw-123"

// Iss is the issuer of New's and Open's issuers when cfg names none.
const Iss = "https://gw"

// New returns an Issuer with users alice (roles admin, scopes read) and
// bob, and whatever cfg adds. Secrets hashes use bcrypt's lowest cost to
// keep tests fast.
func New(t testing.TB, cfg issuer.Config) *issuer.Issuer {
	t.Helper()
	cfg.Users = append(cfg.Users,
		issuer.User{Name: "alice", PasswordHash: Hash(t, Password), Roles: []string{"admin"}, Scopes: []string{"read"}},
		issuer.User{Name: "bob", PasswordHash: Hash(t, Password)})
	// A master key of its own, so that entity secrets can be read back.
	mk, err := issuer.NewMasterKeyString()
	if err != nil {
		t.Fatal(err)
	}
	key, err := issuer.ParseMasterKey(mk)
	if err != nil {
		t.Fatal(err)
	}
	is := open(t, filepath.Join(t.TempDir(), "tg.db"), cfg, key)
	if err := is.Core().EnsureKey(context.Background(), issuer.AlgEdDSA); err != nil {
		t.Fatal(err)
	}
	return is
}

// Open returns an Issuer on the SQLite store at path (created if need be),
// closed when the test ends. It has no master key, as the CLI on the same
// store without master_key and without a generated key file.
func Open(t testing.TB, path string, cfg issuer.Config) *issuer.Issuer {
	t.Helper()
	return open(t, path, cfg, nil)
}

func open(t testing.TB, path string, cfg issuer.Config, key *issuer.MasterKey) *issuer.Issuer {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = Iss
	}
	st, err := sqlstore.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	core, err := issuer.OpenCore(context.Background(), st, issuer.CoreOptions{SyncInterval: -1, MasterKey: key})
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
	mk, _, err := storeconf.ResolveMasterKey("", false)
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

// Request builds a request as a fuzz target sends it: any content type,
// Authorization value and body ("" leaves a header out).
func Request(method, path, ctype, auth string, body []byte) *http.Request {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if ctype != "" {
		r.Header["Content-Type"] = []string{ctype}
	}
	if auth != "" {
		r.Header["Authorization"] = []string{auth}
	}
	return r
}

// WantClientAnswer fails unless rec is what any input must get: a status
// below 500 (a 5xx from a request is a bug), a JSON body (a success may
// have none, as revocation's), and a WWW-Authenticate challenge on a 401.
func WantClientAnswer(t testing.TB, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if rec.Code < 300 && rec.Body.Len() == 0 {
		return
	}
	if !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("status %d: not a JSON answer: %q", rec.Code, rec.Body)
	}
	if rec.Code == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("401 without WWW-Authenticate: %s", rec.Body)
	}
}

// Checker is the access-token check of is's site, with DPoP's defaults.
func Checker(t testing.TB, is *issuer.Issuer) *tokenauth.Checker {
	t.Helper()
	v, err := dpop.New(dpop.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &tokenauth.Checker{Issuer: is, DPoP: v, Log: zap.NewNop(),
		URL: func(r *http.Request) string { return is.Identifier() + r.URL.Path }}
}
