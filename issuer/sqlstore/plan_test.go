package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/leaf/pgtest"
)

// requestQueries are the statements a refresh, a revocation or pruning runs
// on tg_refresh, with arguments; none may scan the table.
var requestQueries = []struct {
	name, query string
	args        []any
}{
	{"read a token", refreshByHash, []any{"h"}},
	{"use a token", useRefresh, []any{int64(1), "n", "h"}},
	{"supersede a successor", supersedeRefresh, []any{int64(1), "h"}},
	{"record a retry", replaceRefresh, []any{"n", "h"}},
	{"revoke a family", revokeFamily, []any{"f"}},
	{"prune expired", pruneRefresh, []any{int64(1), 1000}},
}

// TestQueryPlans checks with EXPLAIN that every request-path query on the
// refresh table is served by an index, on SQLite and on PostgreSQL.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite", func(t *testing.T) {
		s, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "tg.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for _, q := range requestQueries {
			plan := explain(t, s, "EXPLAIN QUERY PLAN "+q.query, 3, q.args)
			// SEARCH uses an index; SCAN reads the whole table.
			if strings.Contains(plan, "SCAN") || !strings.Contains(plan, "SEARCH") {
				t.Errorf("%s scans:\n%s", q.name, plan)
			}
		}
		// The check sees a scan when there is one.
		if plan := explain(t, s, "EXPLAIN QUERY PLAN SELECT hash FROM tg_refresh WHERE scope = ?", 3, []any{"x"}); !strings.Contains(plan, "SCAN") {
			t.Errorf("a query on an unindexed column shows no scan:\n%s", plan)
		}
		// Pruning cut-offs reads the (small) cut-off table, but looks the
		// refresh table up by index.
		if plan := explain(t, s, "EXPLAIN QUERY PLAN "+pruneCutoffs, 3, nil); !strings.Contains(plan, "tg_refresh_subject_unused") {
			t.Errorf("pruning cut-offs does not use the subject index:\n%s", plan)
		}
		if plan := explain(t, s, "EXPLAIN QUERY PLAN "+pruneBindings, 3, []any{int64(1)}); !strings.Contains(plan, "tg_refresh_family") {
			t.Errorf("pruning DPoP bindings does not use the family index:\n%s", plan)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		s, err := Open(ctx, "postgres", pgtest.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		// With sequential scans priced out (see explain), a plan still
		// holding one has no index to use.
		for _, q := range requestQueries {
			plan := explain(t, s, "EXPLAIN "+s.q(q.query), 0, q.args)
			if strings.Contains(plan, "Seq Scan on tg_refresh ") {
				t.Errorf("%s scans:\n%s", q.name, plan)
			}
		}
		// The one-statement rotation, PostgreSQL's alone, scans no table:
		// every table it touches is looked up by its primary key.
		plan := explain(t, s, "EXPLAIN "+rotateFresh, 0, []any{int64(1), "n", "h", "f", "s", "user", "p", "c", "", "iss", int64(2), int64(1)})
		for _, idx := range []string{"tg_refresh_pkey", "tg_refresh_cutoffs_pkey", "tg_dpop_families_pkey"} {
			if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, idx) {
				t.Errorf("the one-statement rotation does not use %s, or scans:\n%s", idx, plan)
			}
		}
		if plan := explain(t, s, "EXPLAIN SELECT hash FROM tg_refresh WHERE scope = $1", 0, []any{"x"}); !strings.Contains(plan, "Seq Scan on tg_refresh ") {
			t.Errorf("a query on an unindexed column shows no scan:\n%s", plan)
		}
		if plan := explain(t, s, "EXPLAIN "+pruneCutoffs, 0, nil); strings.Contains(plan, "Seq Scan on tg_refresh ") {
			t.Errorf("pruning cut-offs scans the refresh table:\n%s", plan)
		}
		if plan := explain(t, s, "EXPLAIN "+s.q(pruneBindings), 0, []any{int64(1)}); strings.Contains(plan, "Seq Scan on tg_refresh ") {
			t.Errorf("pruning DPoP bindings scans the refresh table:\n%s", plan)
		}
	})
}

// explain runs an EXPLAIN on one connection with sequential scans off
// (PostgreSQL) and returns column col (0: the only one) of every row.
func explain(t *testing.T, s *Store, query string, col int, args []any) string {
	t.Helper()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if s.postgres {
		if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		defer conn.ExecContext(ctx, `RESET enable_seqscan`)
	}
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var lines []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(toString(vals[min(col, len(cols)-1)])))
	}
	return strings.Join(lines, "\n")
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}
