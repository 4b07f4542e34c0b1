// Package usertable authenticates application users kept in an existing
// SQL table (SQLite or PostgreSQL) with configured table and column names.
//
// Only identifiers from the configuration ever reach SQL: they are checked
// against a strict pattern when the table is opened and always quoted.
// Values from requests are only ever bound parameters.
package usertable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// Config names a table and its columns.
type Config struct {
	Name     string // what requests call it (apimaker's `instance`)
	Driver   string // "sqlite" or "postgres"
	DSN      string // a file path for sqlite, a connection string for postgres
	Database string // what requests call the database; default from the DSN
	Table    string // table, or schema.table
	// Columns. ID and Roles are optional: the subject is then the username,
	// and the user has no roles.
	UsernameColumn, PasswordColumn, IDColumn, RolesColumn string
}

// Table is an opened user table.
type Table struct {
	cfg   Config
	db    *sql.DB
	query string
}

var _ issuer.UserDirectory = (*Table)(nil)

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// quote checks and double-quotes an identifier (or schema.identifier).
func quote(name string, qualified bool) (string, error) {
	parts := []string{name}
	if qualified {
		parts = strings.Split(name, ".")
	}
	if len(parts) > 2 {
		return "", fmt.Errorf("%q: at most schema.table", name)
	}
	for i, p := range parts {
		if !identifier.MatchString(p) {
			return "", fmt.Errorf("%q is not a plain SQL identifier (letters, digits, underscore)", name)
		}
		parts[i] = `"` + p + `"`
	}
	return strings.Join(parts, "."), nil
}

// Open validates cfg, connects, and checks that the table and columns exist.
func Open(ctx context.Context, cfg Config) (*Table, error) {
	if cfg.Name == "" || cfg.Table == "" || cfg.UsernameColumn == "" || cfg.PasswordColumn == "" {
		return nil, errors.New("user_table needs a name, table, username_column and password_column")
	}
	table, err := quote(cfg.Table, true)
	if err != nil {
		return nil, fmt.Errorf("user_table %s: table %w", cfg.Name, err)
	}
	cols := make([]string, 0, 4)
	for _, c := range []string{cfg.PasswordColumn, cfg.IDColumn, cfg.RolesColumn} {
		if c == "" {
			cols = append(cols, "NULL")
			continue
		}
		q, err := quote(c, false)
		if err != nil {
			return nil, fmt.Errorf("user_table %s: column %w", cfg.Name, err)
		}
		cols = append(cols, q)
	}
	user, err := quote(cfg.UsernameColumn, false)
	if err != nil {
		return nil, fmt.Errorf("user_table %s: column %w", cfg.Name, err)
	}
	t := &Table{cfg: cfg}
	placeholder := "?"
	switch cfg.Driver {
	case "sqlite":
		if cfg.DSN == "" {
			return nil, fmt.Errorf("user_table %s: sqlite needs a file path", cfg.Name)
		}
		// Read-only: authenticating must never be able to change the table.
		t.db, err = sql.Open("sqlite", "file:"+cfg.DSN+"?mode=ro&_pragma=busy_timeout(5000)")
		if t.cfg.Database == "" {
			t.cfg.Database = strings.TrimSuffix(filepath.Base(cfg.DSN), filepath.Ext(cfg.DSN))
		}
	case "postgres":
		placeholder = "$1"
		if t.cfg.Database == "" {
			pc, perr := pgx.ParseConfig(cfg.DSN)
			if perr != nil {
				return nil, fmt.Errorf("user_table %s: dsn: %w", cfg.Name, perr)
			}
			t.cfg.Database = pc.Database
		}
		t.db, err = sql.Open("pgx", cfg.DSN)
	default:
		return nil, fmt.Errorf("user_table %s: driver %q: want sqlite or postgres", cfg.Name, cfg.Driver)
	}
	if err != nil {
		return nil, fmt.Errorf("user_table %s: %w", cfg.Name, err)
	}
	t.db.SetMaxOpenConns(4)
	// LIMIT 2: a username that matches two rows is ambiguous and refused.
	t.query = fmt.Sprintf(`SELECT %s, %s, %s FROM %s WHERE %s = %s LIMIT 2`, cols[0], cols[1], cols[2], table, user, placeholder)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	probe := fmt.Sprintf(`SELECT %s, %s, %s, %s FROM %s WHERE 1 = 0`, cols[0], cols[1], cols[2], user, table)
	rows, err := t.db.QueryContext(cctx, probe)
	if err != nil {
		t.db.Close()
		return nil, fmt.Errorf("user_table %s: checking table and columns: %w", cfg.Name, err)
	}
	rows.Close()
	if cfg.Driver == "sqlite" {
		// SQLite reads a double-quoted name that matches no column as a
		// string literal, so the probe alone cannot catch a misspelt column.
		if err := t.checkSQLiteColumns(cctx); err != nil {
			t.db.Close()
			return nil, err
		}
	}
	return t, nil
}

func (t *Table) checkSQLiteColumns(ctx context.Context) error {
	if strings.Contains(t.cfg.Table, ".") {
		return fmt.Errorf("user_table %s: a SQLite table takes no schema", t.cfg.Name)
	}
	rows, err := t.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, t.cfg.Table)
	if err != nil {
		return fmt.Errorf("user_table %s: reading columns: %w", t.cfg.Name, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("user_table %s: reading columns: %w", t.cfg.Name, err)
		}
		have[strings.ToLower(name)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("user_table %s: reading columns: %w", t.cfg.Name, err)
	}
	for _, c := range []string{t.cfg.UsernameColumn, t.cfg.PasswordColumn, t.cfg.IDColumn, t.cfg.RolesColumn} {
		if c != "" && !have[strings.ToLower(c)] {
			return fmt.Errorf("user_table %s: table %s has no column %s", t.cfg.Name, t.cfg.Table, c)
		}
	}
	return nil
}

// Close closes the connection.
func (t *Table) Close() error { return t.db.Close() }

// Name is the table's configured name.
func (t *Table) Name() string { return t.cfg.Name }

// Names reports whether a request's description of a table (apimaker's
// instance, database, collection and column names) is exactly this one.
func (t *Table) Names(instance, database, collection, usernameColumn, passwordColumn string) bool {
	return instance == t.cfg.Name && database == t.cfg.Database && collection == t.cfg.Table &&
		usernameColumn == t.cfg.UsernameColumn && passwordColumn == t.cfg.PasswordColumn
}

// LookupUser implements issuer.UserDirectory.
func (t *Table) LookupUser(ctx context.Context, username string) (issuer.User, error) {
	rows, err := t.db.QueryContext(ctx, t.query, username)
	if err != nil {
		return issuer.User{}, fmt.Errorf("user_table %s: %w", t.cfg.Name, err)
	}
	defer rows.Close()
	var users []issuer.User
	for rows.Next() {
		var hash, id, roles sql.NullString
		if err := rows.Scan(&hash, &id, &roles); err != nil {
			return issuer.User{}, fmt.Errorf("user_table %s: %w", t.cfg.Name, err)
		}
		u := issuer.User{Name: username, ID: id.String, PasswordHash: hash.String}
		u.Roles = strings.FieldsFunc(roles.String, func(r rune) bool { return r == ',' || r == ' ' })
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return issuer.User{}, fmt.Errorf("user_table %s: %w", t.cfg.Name, err)
	}
	if len(users) != 1 { // none, or ambiguous
		return issuer.User{}, issuer.ErrNotFound
	}
	return users[0], nil
}
