package usertable

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/internal/testkit/issuertest"
	"github.com/tokengate/caddy-tokengate/issuer"
)

// fill creates an application's users table with a bcrypt and an argon2id
// user, and two rows sharing one e-mail.
func fill(t *testing.T, db *sql.DB, placeholders func(n int) string) {
	t.Helper()
	bc, _ := bcrypt.GenerateFromPassword([]byte("bcrypt-pw"), bcrypt.MinCost)
	ar, _ := issuer.HashPassword("argon-pw")
	stmts := []string{
		`CREATE TABLE app_users (id INTEGER, email TEXT, password_hash TEXT, role TEXT)`,
		`CREATE TABLE other (secret TEXT)`,
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	ins := `INSERT INTO app_users (id, email, password_hash, role) VALUES (` + placeholders(4) + `)`
	for _, row := range [][]any{
		{1, "ann@example.com", string(bc), "admin,editor"},
		{2, "ben@example.com", ar, nil},
		{3, "dup@example.com", ar, "x"},
		{4, "dup@example.com", ar, "y"},
		{5, "bad@example.com", "plaintext", "x"},
	} {
		if _, err := db.Exec(ins, row...); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, driver, dsn string) {
	ctx := context.Background()
	cfg := Config{Name: "app", Driver: driver, DSN: dsn, Table: "app_users", UsernameColumn: "email",
		PasswordColumn: "password_hash", IDColumn: "id", RolesColumn: "role"}
	tb, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	// Passwords are checked by the issuer (throttled, within its hashing budget).
	is := issuertest.New(t, issuer.Config{Directories: map[string]issuer.UserDirectory{"app": tb}})
	for _, tc := range []struct {
		user, pw string
		ok       bool
		id       string
		roles    string
	}{
		{"ann@example.com", "bcrypt-pw", true, "1", "admin editor"},
		{"ben@example.com", "argon-pw", true, "2", ""},
		{"ann@example.com", "wrong", false, "", ""},
		{"nobody@example.com", "x", false, "", ""},
		{"dup@example.com", "argon-pw", false, "", ""},  // ambiguous
		{"bad@example.com", "plaintext", false, "", ""}, // not a hash we read
		{"' OR '1'='1", "bcrypt-pw", false, "", ""},
	} {
		u, err := is.AuthenticateTableUser(ctx, "app", tc.user, tc.pw)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, issuer.ErrInvalidCredentials)) {
			t.Errorf("Authenticate(%q) = %v", tc.user, err)
			continue
		}
		if tc.ok && (u.Subject() != tc.id || strings.Join(u.Roles, " ") != tc.roles) {
			t.Errorf("Authenticate(%q) = %+v", tc.user, u)
		}
	}
	// Without id and roles columns the subject is the username.
	plain := cfg
	plain.IDColumn, plain.RolesColumn = "", ""
	tp, err := Open(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	isPlain := issuertest.New(t, issuer.Config{Directories: map[string]issuer.UserDirectory{"app": tp}})
	if u, err := isPlain.AuthenticateTableUser(ctx, "app", "ann@example.com", "bcrypt-pw"); err != nil || u.Subject() != "ann@example.com" || len(u.Roles) != 0 {
		t.Fatalf("without id/roles: %+v %v", u, err)
	}
	if !tb.Names("app", tb.cfg.Database, "app_users", "email", "password_hash") || tb.Names("app", tb.cfg.Database, "other", "email", "password_hash") {
		t.Fatal("Names matches the wrong description")
	}
	for name, bad := range map[string]Config{
		"injected table":   {Table: "app_users; DROP TABLE other"},
		"quoted column":    {UsernameColumn: `email" --`},
		"missing column":   {PasswordColumn: "nope"},
		"missing table":    {Table: "nope"},
		"three-part table": {Table: "a.b.c"},
	} {
		c := cfg
		if bad.Table != "" {
			c.Table = bad.Table
		}
		if bad.UsernameColumn != "" {
			c.UsernameColumn = bad.UsernameColumn
		}
		if bad.PasswordColumn != "" {
			c.PasswordColumn = bad.PasswordColumn
		}
		if _, err := Open(ctx, c); err == nil {
			t.Errorf("%s: Open accepted %+v", name, c)
		}
	}
}

func TestSQLiteUserTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, db, func(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") })
	db.Close()
	run(t, "sqlite", path)
}

func TestPostgresUserTable(t *testing.T) {
	dsn := pgtest.Schema(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fill(t, db, func(n int) string {
		var p []string
		for i := 1; i <= n; i++ {
			p = append(p, "$"+string(rune('0'+i)))
		}
		return strings.Join(p, ", ")
	})
	run(t, "postgres", dsn)
}
