// Package sqlstore implements issuer.Store on SQLite (pure Go, embedded)
// and PostgreSQL (for several Caddy instances sharing one store). Both run
// the same SQL; the dialect only rewrites placeholders and a few DDL types.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// Store is an issuer.Store over database/sql.
type Store struct {
	db       *sql.DB
	postgres bool
	refresh  refreshStmts // prepared once: a refresh parses no SQL
	observe  atomic.Pointer[Observer]
}

// Observer is told the duration and outcome of store operations, for
// metrics. op is the statement's verb and first table ("SELECT tg_keys").
type Observer func(op string, d time.Duration, err error)

// SetObserver reports operations to f from now on (nil: to no one).
func (s *Store) SetObserver(f Observer) { s.observe.Store(&f) }

// observed reports an operation that started at start.
func (s *Store) observed(query string, start time.Time, err error) {
	f := s.observe.Load()
	if f == nil || *f == nil {
		return
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = nil // not found is an answer, not a store error
	}
	(*f)(opName(query), time.Since(start), err)
}

// opName is the verb and the first tg_ table of query: a label of bounded
// cardinality.
func opName(query string) string {
	verb, rest, _ := strings.Cut(strings.TrimSpace(query), " ")
	i := strings.Index(rest, "tg_")
	if i < 0 {
		return strings.ToUpper(verb)
	}
	table := rest[i:]
	if j := strings.IndexFunc(table, func(r rune) bool { return r != '_' && (r < 'a' || r > 'z') }); j >= 0 {
		table = table[:j]
	}
	return strings.ToUpper(verb) + " " + table
}

var _ issuer.Store = (*Store)(nil)

// Open connects to driver ("sqlite" or "postgres") at dsn (a file path for
// SQLite) and migrates the schema to the current version. A PostgreSQL DSN
// may carry pool_max_conns (as pgxpool names it; default
// DefaultPoolSize): the connections kept open and reused.
func Open(ctx context.Context, driver, dsn string) (*Store, error) {
	return open(ctx, driver, dsn, false)
}

// ErrNoStore says OpenExisting found no store, or one never migrated.
var ErrNoStore = errors.New("no tokengate store")

// OpenExisting opens a store that already exists at the current schema
// version, creating and migrating nothing: for read-only commands. It
// fails with ErrNoStore when there is none.
func OpenExisting(ctx context.Context, driver, dsn string) (*Store, error) {
	if driver == "sqlite" && dsn != ":memory:" {
		if _, err := os.Stat(dsn); err != nil {
			return nil, fmt.Errorf("%w at %s", ErrNoStore, dsn)
		}
	}
	return open(ctx, driver, dsn, true)
}

func open(ctx context.Context, driver, dsn string, existing bool) (*Store, error) {
	var s Store
	var err error
	switch driver {
	case "sqlite":
		if s.db, err = openSQLite(dsn, !existing); err != nil {
			return nil, err
		}
	case "postgres":
		s.postgres = true
		if s.db, err = openPostgres(dsn); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown store driver %q (want sqlite or postgres)", driver)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connecting to %s store: %w", driver, err)
	}
	if existing {
		var version int
		if err := s.db.QueryRowContext(ctx, `SELECT version FROM tg_schema`).Scan(&version); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("%w in this %s database (reading its schema version: %v)", ErrNoStore, driver, err)
		}
		if version != len(migrations) {
			s.db.Close()
			return nil, fmt.Errorf("store schema version %d, this tokengate uses %d: start Caddy once to migrate it", version, len(migrations))
		}
	} else if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	// Preparing changes nothing in the store: read-only opens get them too.
	if err := s.prepareRefresh(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return &s, nil
}

func openSQLite(path string, create bool) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("sqlite store needs a file path")
	}
	if path != ":memory:" && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("creating store directory: %w", err)
		}
		// Create the file ourselves so it is never world-readable.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating store file: %w", err)
		}
		f.Close()
	}
	// WAL lets readers run beside the writer; immediate transactions take
	// the write lock up front so two writers queue instead of deadlocking.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening sqlite store: %w", err)
	}
	// Keep every connection: reopening one re-runs the pragmas.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}

// DefaultPoolSize is how many PostgreSQL connections a store keeps open.
const DefaultPoolSize = 16

// openPostgres opens a pool of connections that stay open: with
// database/sql's default of 2 idle connections, concurrent requests opened
// and closed a connection each (a PostgreSQL backend process, and the
// re-preparation of every statement pgx caches per connection).
func openPostgres(dsn string) (*sql.DB, error) {
	dsn, size, err := poolSize(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening postgres: %w", err)
	}
	db.SetMaxOpenConns(size)
	db.SetMaxIdleConns(size)
	db.SetConnMaxIdleTime(10 * time.Minute) // give back what a burst opened
	return db, nil
}

// poolSize takes pool_max_conns out of a URL or keyword/value DSN (the
// server would refuse it as a run-time parameter).
func poolSize(dsn string) (string, int, error) {
	size, raw := DefaultPoolSize, ""
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", 0, fmt.Errorf("postgres dsn: %w", err)
		}
		q := u.Query()
		if raw = q.Get("pool_max_conns"); raw != "" {
			q.Del("pool_max_conns")
			u.RawQuery = q.Encode()
			dsn = u.String()
		}
	} else {
		var kept []string
		for _, f := range strings.Fields(dsn) {
			if v, ok := strings.CutPrefix(f, "pool_max_conns="); ok {
				raw = v
				continue
			}
			kept = append(kept, f)
		}
		if raw != "" {
			dsn = strings.Join(kept, " ")
		}
	}
	if raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return "", 0, fmt.Errorf("postgres dsn: pool_max_conns %q must be a positive integer", raw)
		}
		size = n
	}
	return dsn, size, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites ? placeholders to $n for PostgreSQL.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	start := time.Now()
	res, err := s.db.ExecContext(ctx, s.q(query), args...)
	s.observed(query, start, err)
	return res, err
}

// row runs a one-row query, observed like exec.
func (s *Store) row(ctx context.Context, query string, args ...any) *sql.Row {
	start := time.Now()
	r := s.db.QueryRowContext(ctx, s.q(query), args...)
	s.observed(query, start, r.Err())
	return r
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func joinList(l []string) string  { return strings.Join(l, " ") }
func splitList(s string) []string { return strings.Fields(s) }

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, issuer.ErrNotFound)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("deleting %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%s: %w", what, issuer.ErrNotFound)
	}
	return nil
}

// PutUser implements issuer.Store.
func (s *Store) PutUser(ctx context.Context, u issuer.User) error {
	_, err := s.exec(ctx, `INSERT INTO tg_users (name, id, password_hash, roles, scopes) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET id = excluded.id, password_hash = excluded.password_hash,
		roles = excluded.roles, scopes = excluded.scopes`,
		u.Name, u.ID, u.PasswordHash, joinList(u.Roles), joinList(u.Scopes))
	if err != nil {
		return fmt.Errorf("storing user %s: %w", u.Name, err)
	}
	return nil
}

const userCols = `SELECT name, id, password_hash, roles, scopes FROM tg_users`

func scanUser(row interface{ Scan(...any) error }) (issuer.User, error) {
	var u issuer.User
	var roles, scopes string
	err := row.Scan(&u.Name, &u.ID, &u.PasswordHash, &roles, &scopes)
	u.Roles, u.Scopes = splitList(roles), splitList(scopes)
	return u, err
}

// GetUser implements issuer.Store.
func (s *Store) GetUser(ctx context.Context, name string) (issuer.User, error) {
	u, err := scanUser(s.row(ctx, userCols+` WHERE name = ?`, name))
	if err != nil {
		return issuer.User{}, notFound(err, "user "+name)
	}
	return u, nil
}

// ListUsers implements issuer.Store.
func (s *Store) ListUsers(ctx context.Context) ([]issuer.User, error) {
	return list(ctx, s, userCols+` ORDER BY name`, scanUser)
}

// DeleteUser implements issuer.Store.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	res, err := s.exec(ctx, `DELETE FROM tg_users WHERE name = ?`, name)
	return mustAffect(res, err, "user "+name)
}

// PutClient implements issuer.Store.
func (s *Store) PutClient(ctx context.Context, c issuer.Client) error {
	_, err := s.exec(ctx, `INSERT INTO tg_clients (id, secret_hash, roles, scopes, grants) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, roles = excluded.roles,
		scopes = excluded.scopes, grants = excluded.grants`,
		c.ID, c.SecretHash, joinList(c.Roles), joinList(c.Scopes), joinList(c.Grants))
	if err != nil {
		return fmt.Errorf("storing client %s: %w", c.ID, err)
	}
	return nil
}

const clientCols = `SELECT id, secret_hash, roles, scopes, grants FROM tg_clients`

func scanClient(row interface{ Scan(...any) error }) (issuer.Client, error) {
	var c issuer.Client
	var roles, scopes, grants string
	err := row.Scan(&c.ID, &c.SecretHash, &roles, &scopes, &grants)
	c.Roles, c.Scopes, c.Grants = splitList(roles), splitList(scopes), splitList(grants)
	return c, err
}

// GetClient implements issuer.Store.
func (s *Store) GetClient(ctx context.Context, id string) (issuer.Client, error) {
	c, err := scanClient(s.row(ctx, clientCols+` WHERE id = ?`, id))
	if err != nil {
		return issuer.Client{}, notFound(err, "client "+id)
	}
	return c, nil
}

// ListClients implements issuer.Store.
func (s *Store) ListClients(ctx context.Context) ([]issuer.Client, error) {
	return list(ctx, s, clientCols+` ORDER BY id`, scanClient)
}

// DeleteClient implements issuer.Store.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `DELETE FROM tg_clients WHERE id = ?`, id)
	return mustAffect(res, err, "client "+id)
}

// AddKey implements issuer.Store. The UNIQUE (alg, seq) constraint elects
// one winner among concurrent rotations.
func (s *Store) AddKey(ctx context.Context, k issuer.KeyRecord) error {
	res, err := s.exec(ctx, `INSERT INTO tg_keys (kid, alg, seq, private, public, created_at, activate_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		k.KID, k.Alg, k.Seq, k.Private, k.Public, ns(k.CreatedAt), ns(k.ActivateAt))
	if err != nil {
		return fmt.Errorf("storing key %s: %w", k.KID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("%s key %d: %w", k.Alg, k.Seq, issuer.ErrConflict)
	}
	return nil
}

// ListKeys implements issuer.Store.
func (s *Store) ListKeys(ctx context.Context) ([]issuer.KeyRecord, error) {
	return list(ctx, s, `SELECT kid, alg, seq, private, public, created_at, activate_at FROM tg_keys ORDER BY alg, seq`,
		func(row interface{ Scan(...any) error }) (issuer.KeyRecord, error) {
			var k issuer.KeyRecord
			var created, activate int64
			err := row.Scan(&k.KID, &k.Alg, &k.Seq, &k.Private, &k.Public, &created, &activate)
			k.CreatedAt, k.ActivateAt = fromNS(created), fromNS(activate)
			return k, err
		})
}

// DeleteKey implements issuer.Store.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	res, err := s.exec(ctx, `DELETE FROM tg_keys WHERE kid = ?`, kid)
	return mustAffect(res, err, "key "+kid)
}

// AddRevocation implements issuer.Store.
func (s *Store) AddRevocation(ctx context.Context, r issuer.Revocation) error {
	_, err := s.exec(ctx, `INSERT INTO tg_revocations (kind, rkey, keep, at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		r.Kind, r.Key, r.Keep, ns(r.At), ns(r.ExpiresAt))
	if err != nil {
		return fmt.Errorf("storing revocation: %w", err)
	}
	return nil
}

// RevocationsSince implements issuer.Store.
func (s *Store) RevocationsSince(ctx context.Context, after int64) ([]issuer.Revocation, error) {
	return list(ctx, s, `SELECT id, kind, rkey, keep, at, expires_at FROM tg_revocations WHERE id > ? ORDER BY id`,
		func(row interface{ Scan(...any) error }) (issuer.Revocation, error) {
			var r issuer.Revocation
			var at, exp int64
			err := row.Scan(&r.ID, &r.Kind, &r.Key, &r.Keep, &at, &exp)
			r.At, r.ExpiresAt = fromNS(at), fromNS(exp)
			return r, err
		}, after)
}

// PurgeExpired implements issuer.Store.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) error {
	if err := s.purgeRefresh(ctx, now); err != nil {
		return err
	}
	// Keep the newest revocation so IDs never restart below what peers saw.
	if _, err := s.exec(ctx, `DELETE FROM tg_revocations WHERE expires_at < ? AND id < (SELECT MAX(id) FROM tg_revocations)`, ns(now)); err != nil {
		return fmt.Errorf("purging revocations: %w", err)
	}
	return s.purgeDPoP(ctx, now)
}

// Setting implements issuer.Store.
func (s *Store) Setting(ctx context.Context, name string, create func() (string, error)) (string, error) {
	var v string
	err := s.row(ctx, `SELECT value FROM tg_settings WHERE name = ?`, name).Scan(&v)
	if err == nil {
		return v, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("reading setting %s: %w", name, err)
	}
	nv, err := create()
	if err != nil {
		return "", err
	}
	if _, err := s.exec(ctx, `INSERT INTO tg_settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, name, nv); err != nil {
		return "", fmt.Errorf("storing setting %s: %w", name, err)
	}
	// Read back: a concurrent creator may have won.
	if err := s.row(ctx, `SELECT value FROM tg_settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", fmt.Errorf("reading setting %s: %w", name, err)
	}
	return v, nil
}

func list[T any](ctx context.Context, s *Store, query string, scan func(interface{ Scan(...any) error }) (T, error), args ...any) (_ []T, err error) {
	start := time.Now()
	defer func() { s.observed(query, start, err) }()
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("scanning: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	return out, nil
}
