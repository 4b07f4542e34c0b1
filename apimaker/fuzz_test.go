package apimaker

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/usertable"
)

// FuzzServeHTTP drives the route, with a configured SQLite user table and
// require_role on, with any content type, Authorization and body: the
// answer is the apimaker envelope with a status below 500.
func FuzzServeHTTP(f *testing.F) {
	path := filepath.Join(f.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		f.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE users (email TEXT, pw TEXT)`); err == nil {
		_, err = db.Exec(`INSERT INTO users VALUES ('carol', ?)`, issuertest.Hash(f, "app-pw"))
	}
	db.Close()
	if err != nil {
		f.Fatal(err)
	}
	tb, err := usertable.Open(context.Background(), usertable.Config{Name: "app", Driver: "sqlite", DSN: path,
		Table: "users", UsernameColumn: "email", PasswordColumn: "pw"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { tb.Close() })
	is := issuertest.New(f, issuer.Config{Issuer: "https://gw", Directories: map[string]issuer.UserDirectory{"app": tb}})
	s := &Server{Issuer: is, Log: zap.NewNop(),
		Tables: []*usertable.Table{tb}, Tokens: issuertest.Checker(f, is)}
	guarded := *s
	guarded.RequireRoles = []string{"admin"}
	f.Fuzz(func(t *testing.T, requireRole bool, ctype, auth string, body []byte) {
		srv := s
		if requireRole {
			srv = &guarded
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, issuertest.Request(http.MethodPost, DefaultPath, ctype, auth, body))
		issuertest.WantClientAnswer(t, rec)
	})
}
