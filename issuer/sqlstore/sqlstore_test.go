package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/storetest"
)

func openSQLiteStore(t *testing.T) issuer.Store {
	s, err := Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "tg.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteStore(t *testing.T) { storetest.Run(t, openSQLiteStore) }

func TestSQLiteFileIsPrivateAndMigrationIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "tg.db")
	for range 2 {
		s, err := Open(context.Background(), "sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := s.db.QueryRow(`SELECT version FROM tg_schema`).Scan(&v); err != nil || v != SchemaVersion() {
			t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion())
		}
		s.Close()
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenRejectsUnknownDriver(t *testing.T) {
	if _, err := Open(context.Background(), "mysql", "x"); err == nil {
		t.Fatal("want error for unknown driver")
	}
}

func TestPostgresStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) issuer.Store {
		s, err := Open(context.Background(), "postgres", pgtest.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestUniqueViolationByCode: a duplicate is recognised by the driver's
// error code on both databases (AddSecret relies on it to report a race).
func TestUniqueViolationByCode(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) issuer.Store{
		"sqlite": openSQLiteStore,
		"postgres": func(t *testing.T) issuer.Store {
			s, err := Open(context.Background(), "postgres", pgtest.Schema(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(t).(*Store)
			ctx := context.Background()
			_, err := s.exec(ctx, `INSERT INTO tg_entities (id, roles) VALUES (?, ?)`, "dup", "")
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.exec(ctx, `INSERT INTO tg_entities (id, roles) VALUES (?, ?)`, "dup", "")
			if !isUniqueViolation(err) {
				t.Fatalf("duplicate insert: %v not recognised", err)
			}
			if isUniqueViolation(errors.New("UNIQUE constraint failed: fake")) {
				t.Fatal("a message that merely looks like one was taken for a violation")
			}
		})
	}
}

func TestOpName(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT name, id FROM tg_users WHERE name = ?": "SELECT tg_users",
		"\n\tINSERT INTO tg_refresh (hash) VALUES (?)": "INSERT tg_refresh",
		"UPDATE tg_entity_secrets SET x = 1":           "UPDATE tg_entity_secrets",
		"SELECT 1":                                     "SELECT",
	} {
		if got := opName(q); got != want {
			t.Errorf("opName(%q) = %q, want %q", q, got, want)
		}
	}
}

func TestPoolSize(t *testing.T) {
	for _, tc := range []struct {
		in, dsn string
		size    int
		err     bool
	}{
		{"postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable", DefaultPoolSize, false},
		{"postgres://u@h/db?pool_max_conns=4&sslmode=disable", "postgres://u@h/db?sslmode=disable", 4, false},
		{"host=h user=u pool_max_conns=32 dbname=db", "host=h user=u dbname=db", 32, false},
		{"host=h user=u", "host=h user=u", DefaultPoolSize, false},
		{"postgres://u@h/db?pool_max_conns=0", "", 0, true},
		{"host=h pool_max_conns=many", "", 0, true},
	} {
		dsn, size, err := poolSize(tc.in)
		if (err != nil) != tc.err || !tc.err && (dsn != tc.dsn || size != tc.size) {
			t.Errorf("poolSize(%q) = %q, %d, %v", tc.in, dsn, size, err)
		}
	}
}

// TestPostgresPoolKeepsConnections: concurrent requests reuse the pool's
// connections; none is closed for want of an idle slot (which is what
// made every burst open new PostgreSQL backends).
func TestPostgresPoolKeepsConnections(t *testing.T) {
	s, err := Open(context.Background(), "postgres", pgtest.Schema(t)+"&pool_max_conns=8")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if _, err := s.GetRefresh(context.Background(), "none"); !errors.Is(err, issuer.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := s.db.Stats()
	if st.MaxOpenConnections != 8 || st.OpenConnections > 8 || st.MaxIdleClosed != 0 || st.MaxLifetimeClosed != 0 {
		t.Fatalf("pool stats after load: %+v", st)
	}
}

// TestPostgresRotationUnderStricterDefaultIsolation: on a server whose
// default isolation is SERIALIZABLE, concurrent exchanges of one token
// abort the one-statement rotation (40001); the transaction, which asks for
// READ COMMITTED, then decides, and exactly one exchange wins.
func TestPostgresRotationUnderStricterDefaultIsolation(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "postgres", pgtest.Schema(t)+"&default_transaction_isolation=serializable")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	for round := range 10 {
		old := issuer.RefreshRecord{Hash: fmt.Sprintf("r%d", round), Family: fmt.Sprintf("f%d", round), Subject: "sam", Kind: "user",
			Issuer: "iss", ExpiresAt: now.Add(time.Hour), AuthTime: now}
		if err := s.CreateRefresh(ctx, old, false); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := old
				next.Hash = fmt.Sprintf("r%d-%d", round, i)
				_, err := s.RotateRefresh(ctx, old.Hash, next, now, 0)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, issuer.ErrRefreshReused), errors.Is(err, issuer.ErrNotFound):
				default:
					t.Errorf("round %d, exchange %d: %v", round, i, err)
				}
			}()
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("round %d: %d exchanges of one token won", round, won)
		}
	}
}

// TestRefreshStatementsObserved: the refresh path's prepared statements
// report to the observer like every other statement, errors included.
func TestRefreshStatementsObserved(t *testing.T) {
	s := openSQLiteStore(t).(*Store)
	ctx := context.Background()
	var mu sync.Mutex
	ops := map[string]int{}
	failed := 0
	s.SetObserver(func(op string, _ time.Duration, err error) {
		mu.Lock()
		defer mu.Unlock()
		ops[op]++
		if err != nil {
			failed++
		}
	})
	now := time.Now()
	rec := issuer.RefreshRecord{Hash: "h1", Family: "f", Subject: "a", Kind: "user", Principal: "a",
		ExpiresAt: now.Add(time.Hour), AuthTime: now}
	if err := s.CreateRefresh(ctx, rec, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefresh(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	next := rec
	next.Hash = "h2"
	if _, err := s.RotateRefresh(ctx, "h1", next, now, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefresh(ctx, "none"); !errors.Is(err, issuer.ErrNotFound) {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for op, n := range map[string]int{"INSERT tg_refresh": 2, "INSERT tg_refresh_cutoffs": 1, "SELECT tg_refresh": 3, "UPDATE tg_refresh": 1} {
		if ops[op] != n {
			t.Errorf("%d %q observed, want %d (all: %v)", ops[op], op, n, ops)
		}
	}
	if failed != 0 {
		t.Errorf("%d operations observed as failed (a token not found is an answer)", failed)
	}
}

// TestMemoryStore: `:memory:` is one database on one connection, so the
// whole store contract holds on it.
func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) issuer.Store {
		s, err := Open(context.Background(), "sqlite", ":memory:")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestPostgresSyncFollowsCommitOrder: two transactions insert revocations;
// the one with the later id commits first and a sync runs in between. The
// earlier id, committed afterwards, must still reach the next sync (an
// `id > last` cursor would skip it for good).
func TestPostgresSyncFollowsCommitOrder(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "postgres", pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, cursor, err := s.RevocationsSince(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	insert := func(tx *sql.Tx, key string) int64 {
		var id int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO tg_revocations (kind, rkey, keep, at, expires_at)
			VALUES ('jti', $1, '', 0, 9000000000000000000) RETURNING id`, key).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	tx1, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback()
	id1 := insert(tx1, "first")
	tx2, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	id2 := insert(tx2, "second")
	if id2 <= id1 {
		t.Fatalf("ids %d, %d", id1, id2)
	}
	if err := tx2.Commit(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	rs, cursor, err := s.RevocationsSince(ctx, cursor)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		seen[r.Key] = true
	}
	if !seen["second"] || seen["first"] {
		t.Fatalf("first sync saw %v", seen)
	}
	if err := tx1.Commit(); err != nil {
		t.Fatal(err)
	}
	rs, _, err = s.RevocationsSince(ctx, cursor)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		seen[r.Key] = true
	}
	if !seen["first"] {
		t.Fatalf("the revocation committed out of id order was skipped: %+v", rs)
	}
}

func TestRetryableClassifiesByCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"serialization failure, wrapped", fmt.Errorf("revoking refresh family: %w", &pgconn.PgError{Code: "40001"}), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"deadlock in the message only", errors.New("ERROR: deadlock detected (SQLSTATE 40P01)"), false},
		{"none", nil, false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
	// retryTx runs again only what PostgreSQL aborted, and at most maxTxAttempts times.
	for _, tc := range []struct {
		name  string
		err   error
		calls int
	}{
		{"deadlock every time", &pgconn.PgError{Code: "40P01"}, maxTxAttempts},
		{"another error", &pgconn.PgError{Code: "23505"}, 1},
		{"success", nil, 1},
	} {
		calls := 0
		_, err := retryTx(func() (int, error) { calls++; return 0, tc.err })
		if calls != tc.calls || !errors.Is(err, tc.err) {
			t.Errorf("%s: %d calls, %v; want %d calls", tc.name, calls, err, tc.calls)
		}
	}
}

func TestUnavailableClassifiesByCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"bad conn", driver.ErrBadConn, true},
		{"no rows", sql.ErrNoRows, false},
		{"canceled", context.Canceled, false},
		{"wrapped", fmt.Errorf("x: %w", &pgconn.PgError{Code: "57P03"}), true},
	} {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("%s: unavailable = %v, want %v", tc.name, got, tc.want)
		}
		if got := issuer.IsUnavailable(errorf("doing: %w", tc.err)); got != tc.want {
			t.Errorf("%s: IsUnavailable(errorf) = %v, want %v", tc.name, got, tc.want)
		}
	}
	// A locked SQLite database beyond the busy timeout is SQLITE_BUSY.
	path := filepath.Join(t.TempDir(), "tg.db")
	s, err := Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	locker, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	tx, err := locker.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 1`); err != nil {
		t.Fatal(err)
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO tg_settings (name, value) VALUES ('x', 'y')`)
	if !unavailable(err) {
		t.Fatalf("write to a locked database: %v, not classified unavailable", err)
	}
}

// BenchmarkDataVersion measures the change check a SQLite store runs
// every DataVersionPoll.
func BenchmarkDataVersion(b *testing.B) {
	s, err := Open(context.Background(), "sqlite", filepath.Join(b.TempDir(), "tg.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	conn, err := s.db.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	for b.Loop() {
		if _, err := DataVersion(context.Background(), conn); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDataVersionWatchCatchesUp: a revocation another process commits
// after this one loaded the store but before its watcher took its first
// PRAGMA data_version reading is reported, not absorbed into the baseline
// (that left it unseen until the next full poll).
func TestDataVersionWatchCatchesUp(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tg.db")
	open := func() *Store {
		s, err := Open(ctx, "sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	watched, other := open(), open()
	_, cursor, err := watched.RevocationsSince(ctx, 0) // what the watching process loaded
	if err != nil {
		t.Fatal(err)
	}
	notices := make(chan struct{}, 1)
	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		watched.WatchChanges(wctx, func(bool) {
			select {
			case notices <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() { cancel(); <-stopped })
	// At once: in the first DataVersionPoll, as another process would
	// while this one starts.
	now := time.Now()
	if err := other.AddRevocation(ctx, issuer.Revocation{Kind: issuer.RevokeJTI, Key: "j", At: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-notices:
		case <-deadline:
			t.Fatal("a revocation committed as the watch started was never reported")
		}
		rs, _, err := watched.RevocationsSince(ctx, cursor) // what the notified process does
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) == 1 {
			return
		}
	}
}

// TestOpenOptions: the logger and the observer are given to Open and in
// use from the first statement on, before any background work starts.
func TestOpenOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		logger   bool // WithLogger on an observed logger
		nilLog   bool // WithLogger(nil)
		observer bool // WithObserver
	}{
		{name: "logger and observer", logger: true, observer: true},
		{name: "observer only", observer: true},
		{name: "logger only", logger: true},
		{name: "nil logger", nilLog: true},
		{name: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.WarnLevel)
			var mu sync.Mutex
			ops := map[string]int{}
			var opts []Option
			if tc.logger {
				opts = append(opts, WithLogger(zap.New(core)))
			}
			if tc.nilLog {
				opts = append(opts, WithLogger(nil))
			}
			if tc.observer {
				opts = append(opts, WithObserver(func(op string, _ time.Duration, _ error) {
					mu.Lock()
					defer mu.Unlock()
					ops[op]++
				}))
			}
			s, err := Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "tg.db"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.PutEntity(context.Background(), issuer.Entity{ID: "e-1"}); err != nil {
				t.Fatal(err)
			}
			s.logf("sqlite checkpoint: %v", errors.New("disk full")) // as the background work reports
			if got, want := logs.FilterMessage("sqlite checkpoint: disk full").Len(), map[bool]int{true: 1}[tc.logger]; got != want {
				t.Errorf("%d warnings, want %d: %v", got, want, logs.All())
			}
			mu.Lock()
			defer mu.Unlock()
			if got := ops["INSERT tg_entities"] > 0; got != tc.observer {
				t.Errorf("observed the insert: %v, want %v (ops %v)", got, tc.observer, ops)
			}
		})
	}
}
