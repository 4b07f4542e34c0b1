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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // registers "sqlite"

	"github.com/tokengate/caddy-tokengate/issuer"
)

// Store is an issuer.Store over database/sql.
type Store struct {
	db *sql.DB // reads outside a transaction
	// w runs writes and transactions. On a SQLite file it is a pool of
	// one connection of its own (see openSQLite); otherwise it is db.
	w        *sql.DB
	postgres bool
	stmts    stmtCache // every query prepared once
	observe  atomic.Pointer[Observer]
	memory   bool          // SQLite :memory:: one connection holds the database
	ckpt     *checkpointer // SQLite file opened by Open; nil otherwise
	// maintenance keeps the SQLite pruner's batches and the checkpointer's
	// restarts apart: a restart's writes to disk stall whoever holds the
	// write lock meanwhile (a pruning batch held it 40 ms that way).
	maintenance sync.Mutex
	gate        writeGate // SQLite: this process's writers queue here
	dsn         string    // PostgreSQL: for the LISTEN connection
	// warnf reports trouble of the background work (change watcher,
	// checkpointer). Set by WithLogger before any of it starts, so a plain
	// field is enough; nil: silent.
	warnf func(format string, args ...any)
}

// Observer is told the duration and outcome of store operations, for
// metrics. op is the statement's verb and first table ("SELECT tg_keys").
type Observer func(op string, d time.Duration, err error)

// An Option sets up a Store as Open (or OpenExisting) opens it.
type Option func(*Store)

// WithLogger reports trouble of the store's background work (change
// watcher, checkpointer) to log, as warnings. Without it the store is
// silent (as with a nil log).
func WithLogger(log *zap.Logger) Option {
	return func(s *Store) {
		if log != nil {
			s.warnf = log.Sugar().Warnf
		}
	}
}

// WithObserver reports every operation from Open on to obs.
func WithObserver(obs Observer) Option {
	return func(s *Store) { s.SetObserver(obs) }
}

// SetObserver reports operations to f from now on (nil: to no one), in
// place of the one WithObserver gave: for a caller that counts from a
// point on, as tests do.
func (s *Store) SetObserver(f Observer) { s.observe.Store(&f) }

// observed reports operation op (see opName) that started at start.
func (s *Store) observed(op string, start time.Time, err error) {
	f := s.observe.Load()
	if f == nil || *f == nil {
		return
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = nil // not found is an answer, not a store error
	}
	(*f)(op, time.Since(start), err)
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

func (s *Store) logf(format string, args ...any) {
	if s.warnf != nil {
		s.warnf(format, args...)
	}
}

var _ issuer.Store = (*Store)(nil)

// Open connects to driver ("sqlite" or "postgres") at dsn (a file path for
// SQLite) and migrates the schema to the current version. A PostgreSQL DSN
// may carry pool_max_conns (as pgxpool names it; default
// DefaultPoolSize): the connections kept open and reused.
func Open(ctx context.Context, driver, dsn string, opts ...Option) (*Store, error) {
	return open(ctx, driver, dsn, false, openOptions{checkpointEvery: checkpointEvery, walLimit: walLimit, restartAt: restartAt, options: opts})
}

// openOptions are what tests change about a store.
type openOptions struct {
	checkpointEvery time.Duration          // 0: no checkpointer
	walLimit        int64                  // WAL size at which writers checkpoint; 0: SQLite's default
	restartAt       int64                  // WAL size at which the checkpointer starts it over; 0: never
	checkpointed    func(checkpointResult) // told every checkpoint pass
	options         []Option               // the caller's
}

// ErrNoStore says OpenExisting found no store, or one never migrated.
var ErrNoStore = errors.New("no tokengate store")

// ErrSchemaOld says a store exists at another schema version than this
// binary's.
var ErrSchemaOld = errors.New("the store's schema is not this version's")

// Exists returns nil when a tokengate store exists at dsn (a SQLite file,
// or a PostgreSQL database holding tokengate's schema), else ErrNoStore
// (or why it could not tell). It creates nothing.
func Exists(ctx context.Context, driver, dsn string) error {
	st, err := OpenExisting(ctx, driver, dsn)
	if err != nil && !errors.Is(err, ErrNoStore) && !errors.Is(err, ErrSchemaOld) {
		return err
	}
	if st != nil {
		return st.Close()
	}
	if errors.Is(err, ErrSchemaOld) {
		return nil // there: Open migrates it, or refuses a newer one
	}
	return err
}

// OpenExisting opens a store that already exists at the current schema
// version, creating and migrating nothing: for read-only commands. It
// fails with ErrNoStore when there is none.
func OpenExisting(ctx context.Context, driver, dsn string, opts ...Option) (*Store, error) {
	if driver == "sqlite" && dsn != ":memory:" {
		if _, err := os.Stat(dsn); err != nil {
			return nil, fmt.Errorf("%w at %s", ErrNoStore, dsn)
		}
	}
	return open(ctx, driver, dsn, true, openOptions{options: opts})
}

func open(ctx context.Context, driver, dsn string, existing bool, opts openOptions) (*Store, error) {
	var s Store
	for _, o := range opts.options {
		o(&s)
	}
	var err error
	switch driver {
	case "sqlite":
		s.memory = dsn == ":memory:"
		s.gate = newWriteGate()
		limit := opts.walLimit
		if existing {
			limit = 0 // no checkpointer: SQLite's own checkpoints
		}
		if s.db, s.w, err = openSQLite(dsn, !existing, limit); err != nil {
			return nil, err
		}
	case "postgres":
		s.postgres, s.dsn = true, dsn
		if s.db, err = openPostgres(dsn); err != nil {
			return nil, err
		}
		s.w = s.db
	default:
		return nil, errorf("unknown store driver %q (want sqlite or postgres)", driver)
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.closeDB()
		return nil, errorf("connecting to %s store: %w", driver, err)
	}
	if existing {
		var version int
		if err := s.db.QueryRowContext(ctx, `SELECT version FROM tg_schema`).Scan(&version); err != nil {
			s.closeDB()
			return nil, fmt.Errorf("%w in this %s database (reading its schema version: %v)", ErrNoStore, driver, err)
		}
		if version != len(migrations) {
			s.closeDB()
			return nil, fmt.Errorf("%w: store schema version %d, this tokengate uses %d: start Caddy once to migrate it", ErrSchemaOld, version, len(migrations))
		}
	} else if err := s.migrate(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	// Preparing changes nothing in the store: read-only opens get them too.
	if err := s.prepareHot(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	if driver == "sqlite" && !s.memory && !existing && opts.checkpointEvery > 0 {
		if s.ckpt, err = startCheckpointer(ctx, dsn, opts.checkpointEvery, opts.restartAt, &s.maintenance, s.gate, s.logf, s.observed, opts.checkpointed); err != nil {
			s.Close()
			return nil, err
		}
	}
	return &s, nil
}

// openSQLite opens the pools of the SQLite store at path: db for reads
// outside a transaction, and w, one connection of its own, for writes and
// transactions. In WAL mode a connection's page cache is dropped whenever
// another connection has committed since its last transaction, so while
// writes took turns on the pool's connections every write re-read its
// B-tree pages from the kernel; on one connection that only this
// process's writes use, the cache stays warm (the gate already lets one
// writer in at a time, so no write waits longer). :memory: has one
// connection for both.
func openSQLite(path string, create bool, walLimit int64) (db, w *sql.DB, err error) {
	if path == "" {
		return nil, nil, errors.New("sqlite store needs a file path")
	}
	if path != ":memory:" && create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, nil, errorf("creating store directory: %w", err)
		}
		// Create the file ourselves so it is never world-readable.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, errorf("creating store file: %w", err)
		}
		f.Close()
	}
	// A store that creates is a server's, with a checkpointer (see
	// checkpoint.go); a read-only open keeps SQLite's own checkpoints.
	dsn := sqliteDSN(path, sqliteBusy, walLimit)
	if db, err = sql.Open("sqlite", dsn); err != nil {
		return nil, nil, errorf("opening sqlite store: %w", err)
	}
	if path == ":memory:" {
		// Every connection to :memory: is a database of its own: keep
		// exactly one, forever, so the store is one database.
		keepConns(db, 1)
		return db, db, nil
	}
	// Keep every connection: reopening one re-runs the pragmas.
	keepConns(db, sqlitePool)
	if w, err = sql.Open("sqlite", dsn); err != nil {
		db.Close()
		return nil, nil, errorf("opening sqlite store: %w", err)
	}
	keepConns(w, 1)
	return db, w, nil
}

// keepConns makes db keep n connections open for good.
func keepConns(db *sql.DB, n int) {
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

// SQLite connection settings.
const (
	sqlitePool = 8
	sqlitePage = 4096 // SQLite's default page size, which the store keeps
	sqliteBusy = 10 * time.Second
	// No cache_size or mmap_size beyond SQLite's defaults (2 MiB of page
	// cache per connection, at most 10 connections: 20 MiB; no mmap): with
	// 5 million refresh rows, 16 MiB per connection and a 1 GiB mmap each
	// measured slower than the defaults under refresh load (benchstore
	// load, 16 chains, alternated in one sitting: defaults 1007 and 991
	// grants/s, 16 MiB cache 953 and 869, mmap 660). Under a steady stream
	// of writes a connection's page cache is dropped whenever another
	// connection has committed since its last transaction (WAL mode), so a
	// bigger one is never warm; and the database file grows with every
	// checkpoint, which makes each connection re-map its own mapping. The
	// writer's connection (openSQLite) keeps its cache, but 32 MiB there
	// measured no faster than the default either (5 million rows, two
	// sittings: 2975-3210 grants/s against 3215 and 3275).
)

// sqliteDSN is the driver's DSN for the database at path. WAL lets readers
// run beside the writer; immediate transactions take the write lock up
// front so two writers queue instead of deadlocking. With walLimit > 0 the
// connection checkpoints only once the WAL holds walLimit bytes (the
// store's checkpointer does it before), and a WAL that starts over is cut
// back to walLimit.
func sqliteDSN(path string, busy time.Duration, walLimit int64) string {
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)"+
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate", path, busy.Milliseconds())
	if walLimit > 0 && path != ":memory:" {
		dsn += fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)&_pragma=journal_size_limit(%d)", walLimit/sqlitePage, walLimit)
	}
	return dsn
}

// setBusyTimeout sets how long conn waits for a SQLite lock from now on.
func setBusyTimeout(ctx context.Context, conn *sql.Conn, d time.Duration) error {
	_, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, d.Milliseconds()))
	return err
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
		return nil, errorf("opening postgres: %w", err)
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

// Close stops the checkpointer and closes the prepared statements and the
// database.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		if err = s.ckpt.close(); err != nil {
			err = errorf("closing sqlite checkpointer: %w", err)
		}
	}
	s.closeStmts()
	return errors.Join(err, s.closeDB())
}

// closeDB closes the store's pools.
func (s *Store) closeDB() error {
	var err error
	if s.w != nil && s.w != s.db {
		err = s.w.Close()
	}
	return errors.Join(err, s.db.Close())
}

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

// notify tells the other processes on a PostgreSQL store that keys changed.
func (s *Store) notifyKeys(ctx context.Context) {
	if s.postgres {
		_, _ = s.db.ExecContext(ctx, `SELECT pg_notify('`+notifyChannel+`', current_schema() || ' key')`)
	}
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
		return errorf("%s: %w", what, issuer.ErrNotFound)
	}
	return errorf("reading %s: %w", what, err)
}

func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return errorf("deleting %s: %w", what, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errorf("%s: %w", what, issuer.ErrNotFound)
	}
	return nil
}

// PutUser implements issuer.Store.
func (s *Store) PutUser(ctx context.Context, u issuer.User) error {
	_, err := s.exec(ctx, `INSERT INTO tg_users (name, id, password_hash, roles, scopes, email, display_name)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET id = excluded.id, password_hash = excluded.password_hash,
		roles = excluded.roles, scopes = excluded.scopes, email = excluded.email, display_name = excluded.display_name`,
		u.Name, u.ID, u.PasswordHash, joinList(u.Roles), joinList(u.Scopes), u.Email, u.DisplayName)
	if err != nil {
		return errorf("storing user %s: %w", u.Name, err)
	}
	return nil
}

// RehashUser implements issuer.Store.
func (s *Store) RehashUser(ctx context.Context, name, oldHash, newHash string) error {
	if _, err := s.exec(ctx, `UPDATE tg_users SET password_hash = ? WHERE name = ? AND password_hash = ?`, newHash, name, oldHash); err != nil {
		return errorf("rehashing the password of user %s: %w", name, err)
	}
	return nil
}

const userCols = `SELECT name, id, password_hash, roles, scopes, email, display_name FROM tg_users`

func scanUser(row interface{ Scan(...any) error }) (issuer.User, error) {
	var u issuer.User
	var roles, scopes string
	err := row.Scan(&u.Name, &u.ID, &u.PasswordHash, &roles, &scopes, &u.Email, &u.DisplayName)
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
	_, err := s.exec(ctx, `INSERT INTO tg_clients (id, secret_hash, roles, scopes, grants, redirect_uris, post_logout_uris, flags)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET secret_hash = excluded.secret_hash, roles = excluded.roles,
		scopes = excluded.scopes, grants = excluded.grants, redirect_uris = excluded.redirect_uris,
		post_logout_uris = excluded.post_logout_uris, flags = excluded.flags`,
		c.ID, c.SecretHash, joinList(c.Roles), joinList(c.Scopes), joinList(c.Grants), joinList(c.RedirectURIs),
		joinList(c.PostLogoutRedirectURIs), joinList(clientFlags(c)))
	if err != nil {
		return errorf("storing client %s: %w", c.ID, err)
	}
	return nil
}

const clientCols = `SELECT id, secret_hash, roles, scopes, grants, redirect_uris, post_logout_uris, flags FROM tg_clients`

func scanClient(row interface{ Scan(...any) error }) (issuer.Client, error) {
	var c issuer.Client
	var roles, scopes, grants, redirects, logouts, flags string
	err := row.Scan(&c.ID, &c.SecretHash, &roles, &scopes, &grants, &redirects, &logouts, &flags)
	c.Roles, c.Scopes, c.Grants = splitList(roles), splitList(scopes), splitList(grants)
	c.RedirectURIs, c.PostLogoutRedirectURIs = splitList(redirects), splitList(logouts)
	for _, f := range splitList(flags) {
		switch f {
		case "public":
			c.Public = true
		case "pkce_optional":
			c.PKCEOptional = true
		case "consent":
			c.Consent = true
		}
	}
	return c, err
}

// clientFlags are a client's switches as the flags column spells them.
func clientFlags(c issuer.Client) []string {
	var fs []string
	for f, on := range map[string]bool{"public": c.Public, "pkce_optional": c.PKCEOptional, "consent": c.Consent} {
		if on {
			fs = append(fs, f)
		}
	}
	slices.Sort(fs)
	return fs
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
	res, err := s.exec(ctx, `INSERT INTO tg_keys (kid, alg, seq, private, public, created_at, activate_at, max_ttl)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		k.KID, k.Alg, k.Seq, k.Private, k.Public, ns(k.CreatedAt), ns(k.ActivateAt), int64(k.MaxTTL))
	if err != nil {
		return errorf("storing key %s: %w", k.KID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errorf("%s key %d: %w", k.Alg, k.Seq, issuer.ErrConflict)
	}
	s.notifyKeys(ctx)
	return nil
}

// RaiseKeyLifetime implements issuer.Store.
func (s *Store) RaiseKeyLifetime(ctx context.Context, kid string, d time.Duration) error {
	res, err := s.exec(ctx, `UPDATE tg_keys SET max_ttl = ? WHERE kid = ? AND max_ttl < ?`, int64(d), kid, int64(d))
	if err != nil {
		return errorf("raising lifetime of key %s: %w", kid, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		s.notifyKeys(ctx)
	}
	return nil
}

// ListKeys implements issuer.Store.
func (s *Store) ListKeys(ctx context.Context) ([]issuer.KeyRecord, error) {
	return list(ctx, s, `SELECT kid, alg, seq, private, public, created_at, activate_at, max_ttl FROM tg_keys ORDER BY alg, seq`,
		func(row interface{ Scan(...any) error }) (issuer.KeyRecord, error) {
			var k issuer.KeyRecord
			var created, activate, maxTTL int64
			err := row.Scan(&k.KID, &k.Alg, &k.Seq, &k.Private, &k.Public, &created, &activate, &maxTTL)
			k.CreatedAt, k.ActivateAt, k.MaxTTL = fromNS(created), fromNS(activate), time.Duration(maxTTL)
			return k, err
		})
}

// DeleteKey implements issuer.Store.
func (s *Store) DeleteKey(ctx context.Context, kid string) error {
	res, err := s.exec(ctx, `DELETE FROM tg_keys WHERE kid = ?`, kid)
	if err := mustAffect(res, err, "key "+kid); err != nil {
		return err
	}
	s.notifyKeys(ctx)
	return nil
}

// AddRevocation implements issuer.Store. On PostgreSQL the NOTIFY is part
// of the inserting statement, so listeners hear of the row exactly when it
// commits.
func (s *Store) AddRevocation(ctx context.Context, r issuer.Revocation) error {
	query := `INSERT INTO tg_revocations (kind, rkey, keep, at, expires_at) VALUES (?, ?, ?, ?, ?)`
	if s.postgres {
		query = `WITH ins AS (` + query + ` RETURNING id)
			SELECT pg_notify('` + notifyChannel + `', current_schema() || ' rev') FROM ins`
	}
	_, err := s.exec(ctx, query, r.Kind, r.Key, r.Keep, ns(r.At), ns(r.ExpiresAt))
	if err != nil {
		return errorf("storing revocation: %w", err)
	}
	return nil
}

// RevocationsSince implements issuer.Store. SQLite has one writer at a
// time, so ids commit in order and the cursor is the highest id seen. On
// PostgreSQL a transaction may commit after one that took a later id, so
// the cursor is the xmin of the snapshot the rows were read under: every
// transaction older than it had finished, and its rows were read; rows of
// the others (xid >= xmin) are read again next time.
func (s *Store) RevocationsSince(ctx context.Context, cursor int64) ([]issuer.Revocation, int64, error) {
	if !s.postgres {
		rs, err := list(ctx, s, `SELECT id, kind, rkey, keep, at, expires_at FROM tg_revocations WHERE id > ? ORDER BY id`, scanRevocation, cursor)
		next := cursor
		for _, r := range rs {
			next = max(next, r.ID)
		}
		return rs, next, err
	}
	return s.revocationsSincePG(ctx, cursor)
}

// revocationsSincePG reads under one snapshot; observed as one operation.
func (s *Store) revocationsSincePG(ctx context.Context, cursor int64) (_ []issuer.Revocation, _ int64, err error) {
	start := time.Now()
	defer func() { s.observed("SELECT tg_revocations", start, err) }()
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, cursor, errorf("loading revocations: %w", err)
	}
	defer tx.Rollback()
	var xmin string
	if err := tx.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text`).Scan(&xmin); err != nil {
		return nil, cursor, errorf("reading snapshot: %w", err)
	}
	next, err := strconv.ParseInt(xmin, 10, 64)
	if err != nil {
		return nil, cursor, errorf("parsing snapshot xmin %q: %w", xmin, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, kind, rkey, keep, at, expires_at FROM tg_revocations
		WHERE xid >= $1::text::xid8 ORDER BY id`, strconv.FormatInt(cursor, 10))
	if err != nil {
		return nil, cursor, errorf("loading revocations: %w", err)
	}
	defer rows.Close()
	var out []issuer.Revocation
	for rows.Next() {
		r, err := scanRevocation(rows)
		if err != nil {
			return nil, cursor, errorf("scanning revocation: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, cursor, errorf("loading revocations: %w", err)
	}
	return out, next, nil
}

func scanRevocation(row interface{ Scan(...any) error }) (issuer.Revocation, error) {
	var r issuer.Revocation
	var at, exp int64
	err := row.Scan(&r.ID, &r.Kind, &r.Key, &r.Keep, &at, &exp)
	r.At, r.ExpiresAt = fromNS(at), fromNS(exp)
	return r, err
}

// PurgeExpired implements issuer.Store.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time) error {
	if err := s.purgeRefresh(ctx, now); err != nil {
		return err
	}
	// Keep the newest revocation so IDs never restart below what peers saw.
	if _, err := s.exec(ctx, `DELETE FROM tg_revocations WHERE expires_at < ? AND id < (SELECT MAX(id) FROM tg_revocations)`, ns(now)); err != nil {
		return errorf("purging revocations: %w", err)
	}
	if err := s.purgeBrowser(ctx, now); err != nil {
		return err
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
		return "", errorf("reading setting %s: %w", name, err)
	}
	nv, err := create()
	if err != nil {
		return "", err
	}
	if _, err := s.exec(ctx, `INSERT INTO tg_settings (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, name, nv); err != nil {
		return "", errorf("storing setting %s: %w", name, err)
	}
	// Read back: a concurrent creator may have won.
	if err := s.row(ctx, `SELECT value FROM tg_settings WHERE name = ?`, name).Scan(&v); err != nil {
		return "", errorf("reading setting %s: %w", name, err)
	}
	return v, nil
}

func list[T any](ctx context.Context, s *Store, query string, scan func(interface{ Scan(...any) error }) (T, error), args ...any) (_ []T, err error) {
	start := time.Now()
	p := s.lookup(ctx, query, read)
	defer func() { s.observed(p.op, start, err) }()
	var rows *sql.Rows
	if p.stmt != nil {
		rows, err = p.stmt.QueryContext(ctx, args...)
	} else {
		rows, err = s.db.QueryContext(ctx, p.query, args...)
	}
	if err != nil {
		return nil, errorf("listing: %w", err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, errorf("scanning: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, errorf("listing: %w", err)
	}
	return out, nil
}
