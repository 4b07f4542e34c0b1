// Command benchstore drives scripts/bench-store.sh: refresh-grant load
// against a running gateway, bulk loading of refresh rows, and the write
// stall caused by pruning expired rows on SQLite.
//
//	benchstore load  -url http://127.0.0.1:PORT -user U -password P [-chains 16] [-warmup 3s] [-duration 10s] [-pg DSN] [-admin ADDR -profile FILE]
//	benchstore fill  -driver sqlite|postgres -dsn DSN -rows N [-expired]
//	benchstore prune -dsn PATH -rows N
//
// Each prints one JSON object on stdout.
package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokengate/caddy-tokengate/issuer"
	"github.com/tokengate/caddy-tokengate/issuer/sqlstore"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchstore load|fill|prune|schema [flags]")
		os.Exit(2)
	}
	var out any
	var err error
	switch os.Args[1] {
	case "load":
		out, err = load(os.Args[2:])
	case "fill":
		out, err = fill(os.Args[2:])
	case "prune":
		out, err = prune(os.Args[2:])
	case "schema":
		out, err = schema(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchstore:", err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}

// schema creates the PostgreSQL schema named by the DSN's search_path, so
// a second store can live in the same database.
func schema(args []string) (string, error) {
	fs := flag.NewFlagSet("schema", flag.ExitOnError)
	dsn := fs.String("dsn", "", "PostgreSQL DSN (URL) with search_path")
	_ = fs.Parse(args)
	u, err := url.Parse(*dsn)
	if err != nil {
		return "", err
	}
	name := u.Query().Get("search_path")
	if name == "" || strings.ContainsFunc(name, func(r rune) bool { return r != '_' && (r < 'a' || r > 'z') }) {
		return "", fmt.Errorf("search_path %q: want a plain lower-case name", name)
	}
	db, err := sql.Open("pgx", *dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	_, err = db.Exec(`CREATE SCHEMA IF NOT EXISTS ` + name)
	return name, err
}

type loadResult struct {
	GrantsPerSec float64 `json:"grants_per_s"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	Errors       int64   `json:"errors"`
	// NewPGConnections is how many sessions PostgreSQL started during the
	// measured window (pg_stat_database.sessions); -1 without -pg.
	NewPGConnections int64 `json:"new_pg_connections"`
}

func load(args []string) (loadResult, error) {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	base := fs.String("url", "", "gateway base URL")
	user := fs.String("user", "", "user name")
	password := fs.String("password", "", "password")
	chains := fs.Int("chains", 16, "concurrent refresh chains")
	warmup := fs.Duration("warmup", 3*time.Second, "load before measuring")
	dur := fs.Duration("duration", 10*time.Second, "measured load")
	pg := fs.String("pg", "", "PostgreSQL DSN to count new sessions on")
	profile := fs.String("profile", "", "with a Caddy admin address: write the CPU profile of the measured window to this file")
	admin := fs.String("admin", "", "Caddy admin address (host:port) for -profile")
	_ = fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *chains}}
	post := func(v url.Values) (map[string]any, error) {
		res, err := client.PostForm(*base+"/token", v)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if res.StatusCode != 200 {
			return m, fmt.Errorf("status %d: %s", res.StatusCode, b)
		}
		return m, nil
	}
	rts := make([]string, *chains)
	for i := range rts {
		m, err := post(url.Values{"grant_type": {"password"}, "username": {*user}, "password": {*password}})
		if err != nil {
			return loadResult{}, fmt.Errorf("signing in: %w", err)
		}
		rts[i] = m["refresh_token"].(string)
	}
	var measuring, stop atomic.Bool
	var errs atomic.Int64
	lat := make([][]time.Duration, *chains)
	var wg sync.WaitGroup
	for i := range rts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				m, err := post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rts[i]}})
				if err != nil {
					errs.Add(1)
					fmt.Fprintln(os.Stderr, "refresh:", err)
					return
				}
				if measuring.Load() {
					lat[i] = append(lat[i], time.Since(start))
				}
				rts[i] = m["refresh_token"].(string)
			}
		}()
	}
	time.Sleep(*warmup)
	sessions := func() int64 { return -1 }
	if *pg != "" {
		db, err := sql.Open("pgx", *pg)
		if err != nil {
			return loadResult{}, err
		}
		defer db.Close()
		db.SetMaxOpenConns(1)
		sessions = func() int64 {
			var n int64
			if err := db.QueryRow(`SELECT sessions FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
				fmt.Fprintln(os.Stderr, "reading pg_stat_database:", err)
				return -1
			}
			return n
		}
		sessions() // open the monitoring connection before the window
	}
	before := sessions()
	measuring.Store(true)
	start := time.Now()
	profiled := make(chan error, 1)
	if *profile != "" {
		go func() { profiled <- fetchProfile(*admin, *profile, *dur) }()
	} else {
		profiled <- nil
	}
	time.Sleep(*dur)
	measuring.Store(false)
	elapsed := time.Since(start)
	// Backends report their counters within a second or two of going idle.
	time.Sleep(2500 * time.Millisecond)
	after := sessions()
	stop.Store(true)
	wg.Wait()
	if err := <-profiled; err != nil {
		return loadResult{}, err
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))]) / 1e6
	}
	r := loadResult{GrantsPerSec: float64(len(all)) / elapsed.Seconds(), P50ms: q(0.50), P99ms: q(0.99), Errors: errs.Load(), NewPGConnections: -1}
	if before >= 0 && after >= 0 {
		r.NewPGConnections = after - before
	}
	return r, nil
}

// fetchProfile writes Caddy's CPU profile over d (from its admin API) to path.
func fetchProfile(admin, path string, d time.Duration) error {
	res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", admin, int(d.Seconds())))
	if err != nil {
		return fmt.Errorf("fetching profile: %w", err)
	}
	defer res.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, res.Body)
	return err
}

type fillResult struct {
	Rows    int64   `json:"rows"`
	Seconds float64 `json:"seconds"`
}

// fill bulk-loads refresh rows in chunks: live ones (expiring in about 30 days,
// 7 in 8 already used, 8 per family, 100 000 subjects) or expired ones.
func fill(args []string) (fillResult, error) {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	driver := fs.String("driver", "sqlite", "sqlite or postgres")
	dsn := fs.String("dsn", "", "SQLite path or PostgreSQL DSN")
	rows := fs.Int64("rows", 1_000_000, "rows to add")
	expired := fs.Bool("expired", false, "add expired rows")
	interleave := fs.Int64("interleave", 1, "families whose tokens interleave (1: a family's 8 tokens are consecutive rows)")
	_ = fs.Parse(args)
	return fillRows(*driver, *dsn, *rows, *expired, *interleave)
}

// fillRows adds rows refresh rows. With interleave F > 1, F families are
// live at once and take turns, as a gateway's sessions do: family g's
// tokens are rows F apart, and its subject is scattered (g*7919 mod 100 000),
// so consecutive rows land on distant entries of the family and subject
// indexes. With F = 1 a family's 8 tokens are consecutive rows and the
// subject is x mod 100 000 (consecutive rows, neighbouring entries).
func fillRows(driver, dsn string, rows int64, expired bool, interleave int64) (fillResult, error) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, driver, dsn) // creates and migrates the schema
	if err != nil {
		return fillResult{}, err
	}
	st.Close()
	// A large page cache for the load; the store's own settings are not changed.
	drv, conn := "sqlite", "file:"+dsn+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_pragma=cache_size(-1048576)"
	if driver == "postgres" {
		drv, conn = "pgx", dsn
	}
	db, err := sql.Open(drv, conn)
	if err != nil {
		return fillResult{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if driver == "postgres" {
		for _, q := range []string{`SET maintenance_work_mem = '512MB'`, `SET synchronous_commit = off`} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fillResult{}, err
			}
		}
	}
	// Secondary indexes are dropped for the load and rebuilt after (a
	// sorted build), with the definitions the store's migrations made.
	defs, err := secondaryIndexes(ctx, db, driver)
	if err != nil {
		return fillResult{}, err
	}
	for name := range defs {
		if _, err := db.ExecContext(ctx, `DROP INDEX `+name); err != nil {
			return fillResult{}, err
		}
	}
	// Row x was issued at issued0 + x*step over one hour, as the gateway
	// makes them: its key is its issue time in milliseconds (12 hex digits)
	// and 52 random hex digits (issuer.RefreshKey), it expires a refresh
	// lifetime (30 days) after its issue, and its family's id begins with
	// the family's start in milliseconds.
	// Live rows were issued in the hour before now; expired ones expired
	// between two hours and one hour ago, so pruning deletes them in the
	// order they were issued, as it does a real table's. Row x's family g = (x / 8F)*F + x mod F began at row
	// x0 = (x / 8F)*8F + x mod F; the family's eighth token is unused.
	const ttl = 30 * 24 * time.Hour
	if interleave < 1 {
		return fillResult{}, fmt.Errorf("interleave %d: want at least 1", interleave)
	}
	now := time.Now()
	issued0 := now.Add(-time.Hour).UnixNano()
	if expired {
		issued0 = now.Add(-2*time.Hour - ttl).UnixNano()
	}
	step := time.Hour.Nanoseconds() / rows
	used := now.Add(-time.Minute).UnixNano()
	subject := `'u' || (x % 100000)`
	if interleave > 1 {
		subject = `'u' || (g * 7919 % 100000)`
	}
	var stmt string
	chunk := int64(500_000)
	tag := randomHex(4)
	if driver == "postgres" {
		chunk = 1_000_000
		stmt = `INSERT INTO tg_refresh (hash, family, subject, kind, principal, client_id, scope, issuer, expires_at, used_at, auth_time, replaced_by, revoked)
			SELECT lpad(to_hex(($4::bigint + x * $5::bigint) / 1000000), 12, '0') || left(md5(x::text || 'a' || $3) || md5(x::text || 'b' || $3), 52),
				lpad(to_hex(($4::bigint + x0 * $5::bigint) / 1000000), 12, '0') || $3 || g, ` + subject + `, 'user', ` + subject + `, '', 'read', 'http://bench',
				$4::bigint + x * $5::bigint + $6::bigint, CASE WHEN (x / $8::bigint) % 8 = 7 THEN 0 ELSE $7::bigint END, $4::bigint + x0 * $5::bigint, '', 0
			FROM generate_series($1::bigint, $2::bigint) AS x,
				LATERAL (SELECT (x / (8 * $8::bigint)) * $8::bigint + x % $8::bigint AS g, (x / (8 * $8::bigint)) * 8 * $8::bigint + x % $8::bigint AS x0) AS f`
	} else {
		stmt = `WITH RECURSIVE c(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM c WHERE x < ?2),
				f(x, g, x0) AS (SELECT x, (x / (8 * ?8)) * ?8 + x % ?8, (x / (8 * ?8)) * 8 * ?8 + x % ?8 FROM c)
			INSERT INTO tg_refresh (hash, family, subject, kind, principal, client_id, scope, issuer, expires_at, used_at, auth_time, replaced_by, revoked)
			SELECT printf('%012x', (?4 + x * ?5) / 1000000) || lower(hex(randomblob(26))),
				printf('%012x', (?4 + x0 * ?5) / 1000000) || ?3 || g, ` + subject + `, 'user', ` + subject + `, '', 'read', 'http://bench',
				?4 + x * ?5 + ?6, CASE WHEN (x / ?8) % 8 = 7 THEN 0 ELSE ?7 END, ?4 + x0 * ?5, '', 0 FROM f`
	}
	start := time.Now()
	for from := int64(1); from <= rows; from += chunk {
		to := min(from+chunk-1, rows)
		if _, err := db.ExecContext(ctx, stmt, from, to, tag, issued0, step, ttl.Nanoseconds(), used, interleave); err != nil {
			return fillResult{}, fmt.Errorf("filling rows %d-%d: %w", from, to, err)
		}
	}
	for name, def := range defs {
		if _, err := db.ExecContext(ctx, def); err != nil {
			return fillResult{}, fmt.Errorf("rebuilding index %s: %w", name, err)
		}
	}
	if driver == "postgres" {
		// Vacuumed and analyzed as after any bulk load, and checkpointed
		// so the server does not write the load out during a measurement.
		if _, err = db.ExecContext(ctx, `VACUUM ANALYZE tg_refresh`); err == nil {
			_, err = db.ExecContext(ctx, `CHECKPOINT`)
		}
	} else {
		_, err = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	}
	if err != nil {
		return fillResult{}, err
	}
	return fillResult{Rows: rows, Seconds: time.Since(start).Seconds()}, nil
}

// secondaryIndexes returns the CREATE INDEX statements of tg_refresh's
// indexes other than its primary key, by name.
func secondaryIndexes(ctx context.Context, db *sql.DB, driver string) (map[string]string, error) {
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tg_refresh' AND sql IS NOT NULL`
	if driver == "postgres" {
		q = `SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tg_refresh' AND schemaname = current_schema()
			AND indexname <> 'tg_refresh_pkey'`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("listing indexes: %w", err)
	}
	defer rows.Close()
	defs := map[string]string{}
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			return nil, err
		}
		defs[name] = def
	}
	if len(defs) < 3 {
		return nil, fmt.Errorf("found %d secondary indexes on tg_refresh, want 3", len(defs))
	}
	return defs, rows.Err()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

type pruneResult struct {
	Rows               int64   `json:"rows"`
	WriteRate          int     `json:"write_rate"`
	PruneSeconds       float64 `json:"prune_s"`
	WritesDuringPrune  int     `json:"writes_during_prune"`
	MaxWriteStallMS    float64 `json:"max_write_stall_ms"`
	P99WriteMS         float64 `json:"p99_write_ms"`
	BaselineMaxWriteMS float64 `json:"baseline_max_write_ms"`
	Left               int64   `json:"expired_rows_left"`
	LongestPruneMS     float64 `json:"longest_prune_statement_ms"`
	LongestPruneOp     string  `json:"longest_prune_statement"`
	// When they happened, in seconds since pruning began, and the largest
	// the WAL file grew (the pool's backstop checkpoint runs inside a
	// write once it holds 64 MiB).
	MaxWriteAtS     float64 `json:"max_write_at_s"`
	LongestPruneAtS float64 `json:"longest_prune_statement_at_s"`
	MaxWALMiB       float64 `json:"max_wal_mib"`
	// The checkpointer's longest hold of the writers to let the WAL start
	// over, and when (since pruning began); both 0 if it never did.
	LongestRestartMS  float64 `json:"longest_restart_hold_ms"`
	LongestRestartAtS float64 `json:"longest_restart_hold_at_s"`
}

// prune fills a fresh SQLite store with expired rows, then measures how
// long single-row writes through the same store (as a gateway's requests
// write through the store its app prunes) wait while PurgeExpired deletes
// them; with -other-store the writes go through a second store, as
// another process's would. The writer issues -rate
// writes a second (a steady request load; a write that stalls delays the
// next, so the stall is measured, not hidden); 0 writes back to back,
// which holds the write lock so often that the pruner mostly waits.
func prune(args []string) (pruneResult, error) {
	fs := flag.NewFlagSet("prune", flag.ExitOnError)
	path := fs.String("dsn", "", "SQLite path (created)")
	rows := fs.Int64("rows", 1_000_000, "expired rows")
	rate := fs.Int("rate", 1000, "writes per second during the measurement (0: back to back)")
	interleave := fs.Int64("interleave", 1, "as fill's -interleave")
	other := fs.Bool("other-store", false, "write through a store of its own (as another process would, with a checkpointer of its own) instead of the pruner's")
	_ = fs.Parse(args)
	var tick <-chan time.Time
	if *rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(*rate))
		defer t.Stop()
		tick = t.C
	}
	ctx := context.Background()
	if _, err := fillRows("sqlite", *path, *rows, true, *interleave); err != nil {
		return pruneResult{}, err
	}
	pruner, err := sqlstore.Open(ctx, "sqlite", *path)
	if err != nil {
		return pruneResult{}, err
	}
	defer pruner.Close()
	// The longest statement of the pruner: a batch holds the write lock
	// that long.
	var batchMu sync.Mutex
	var longestBatch time.Duration
	var longestOp string
	var longestAt time.Time
	var longestHold time.Duration
	var longestHoldAt time.Time
	pruner.SetObserver(func(op string, d time.Duration, _ error) {
		if op == "CHECKPOINT restart" { // the checkpointer's hold of the writers, letting the WAL start over
			batchMu.Lock()
			defer batchMu.Unlock()
			if d > longestHold {
				longestHold, longestHoldAt = d, time.Now().Add(-d)
			}
			return
		}
		if !strings.HasPrefix(op, "DELETE") { // the writer's, through the same store
			return
		}
		batchMu.Lock()
		defer batchMu.Unlock()
		if d > longestBatch {
			longestBatch, longestOp, longestAt = d, op, time.Now().Add(-d)
		}
	})
	// The WAL's size, sampled until the end.
	var maxWAL atomic.Int64
	walDone := make(chan struct{})
	defer close(walDone)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-walDone:
				return
			case <-t.C:
			}
			if fi, err := os.Stat(*path + "-wal"); err == nil && fi.Size() > maxWAL.Load() {
				maxWAL.Store(fi.Size())
			}
		}
	}()
	writer := pruner
	if *other {
		if writer, err = sqlstore.Open(ctx, "sqlite", *path); err != nil {
			return pruneResult{}, err
		}
		defer writer.Close()
	}
	var mu sync.Mutex
	var phase int // 0 baseline, 1 pruning, 2 done
	var base, during []time.Duration
	var maxD time.Duration
	var maxAt time.Time // when the longest write during pruning began
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			mu.Lock()
			ph := phase
			mu.Unlock()
			if ph == 2 {
				return
			}
			if tick != nil {
				<-tick
			}
			tok, err := issuer.NewRefreshToken(time.Now())
			if err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				return
			}
			rec := issuer.RefreshRecord{Hash: issuer.RefreshKey(tok), Family: "w", Subject: "writer", Kind: "user", Issuer: "http://bench",
				ExpiresAt: time.Now().Add(time.Hour), AuthTime: time.Now()}
			start := time.Now()
			if err := writer.CreateRefresh(ctx, rec, false); err != nil {
				fmt.Fprintln(os.Stderr, "write:", err)
				return
			}
			d := time.Since(start)
			mu.Lock()
			if phase == 0 {
				base = append(base, d)
			} else if phase == 1 {
				if d > maxD {
					maxD, maxAt = d, start
				}
				during = append(during, d)
			}
			mu.Unlock()
		}
	}()
	time.Sleep(time.Second)
	mu.Lock()
	phase = 1
	mu.Unlock()
	start := time.Now()
	err = pruner.PurgeExpired(ctx, time.Now())
	elapsed := time.Since(start)
	mu.Lock()
	phase = 2
	mu.Unlock()
	<-done
	if err != nil {
		return pruneResult{}, err
	}
	db, err := sql.Open("sqlite", "file:"+*path)
	if err != nil {
		return pruneResult{}, err
	}
	defer db.Close()
	var left int64
	if err := db.QueryRow(`SELECT COUNT(*) FROM tg_refresh WHERE expires_at < ?`, time.Now().UnixNano()).Scan(&left); err != nil {
		return pruneResult{}, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	slices.Sort(base)
	slices.Sort(during)
	batchMu.Lock()
	defer batchMu.Unlock()
	r := pruneResult{LongestPruneMS: float64(longestBatch) / 1e6, LongestPruneOp: longestOp, Rows: *rows, WriteRate: *rate, PruneSeconds: elapsed.Seconds(), WritesDuringPrune: len(during), Left: left,
		MaxWriteAtS: maxAt.Sub(start).Seconds(), LongestPruneAtS: longestAt.Sub(start).Seconds(), MaxWALMiB: float64(maxWAL.Load()) / (1 << 20),
		LongestRestartMS: ms(longestHold)}
	if !longestHoldAt.IsZero() {
		r.LongestRestartAtS = longestHoldAt.Sub(start).Seconds()
	}
	if len(base) > 0 {
		r.BaselineMaxWriteMS = ms(base[len(base)-1])
	}
	if len(during) > 0 {
		r.MaxWriteStallMS = ms(during[len(during)-1])
		r.P99WriteMS = ms(during[int(0.99*float64(len(during)-1))])
	}
	return r, nil
}
