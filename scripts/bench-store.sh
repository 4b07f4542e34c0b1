#!/usr/bin/env bash
# Store benchmark: refresh grants/s and p50/p99 latency with 16 concurrent
# refresh chains through one Caddy process serving two SQLite sites and two
# PostgreSQL sites (one store of each kind empty, one with 5 million
# existing rows; medians of alternating rounds); new PostgreSQL connections
# during the measured windows; and the longest write stall while pruning
# 1 million expired rows on SQLite.
# Starts its own PostgreSQL (never the default port) and stops it after.
#   scripts/bench-store.sh                      # 10 s per measurement
#   SECS=5 ROWS=1000000 ROUNDS=1 PROFILE=1 scripts/bench-store.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${SECS:-10}"
rows="${ROWS:-5000000}"
prune_rows="${PRUNE_ROWS:-1000000}"
# Families live at once whose tokens interleave in every bulk load (see
# benchstore fill -interleave): 1 puts a family's tokens, and neighbouring
# subjects, on consecutive rows, which spares the indexes.
interleave="${INTERLEAVE:-100000}"
chains="${CHAINS:-16}"
rounds="${ROUNDS:-3}"
export TOKENGATE_PG_PORT="${TOKENGATE_PG_PORT:-54339}"
export TOKENGATE_PG_DIR="${TOKENGATE_PG_DIR:-/tmp/bench-pg}"
[ "$TOKENGATE_PG_PORT" != 54329 ] || { echo "use a port other than the tests' 54329" >&2; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	scripts/postgres.sh stop || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
echo "building…" >&2
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/benchstore" ./scripts/benchstore
pgdsn="$(scripts/postgres.sh start)"

port_free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sq_port="$(port_free)"; sqf_port="$(port_free)"; pg_port="$(port_free)"; pgf_port="$(port_free)"; admin_port="$(port_free)"
# Two stores of each kind: one stays (nearly) empty, the other gets the
# rows, and the rounds alternate between them, so the ratio compares runs
# minutes apart at most (this VM's speed drifts between sittings).
pgfdsn="$pgdsn&search_path=tg_full"
"$work/benchstore" schema -dsn "$pgfdsn" >/dev/null
hash="$(echo bench-pw | "$work/caddy" tokengate hash-password --password-stdin)"
site() { # site <port> <store>
	printf 'http://127.0.0.1:%s {\n\ttokengate {\n\t\tissuer http://bench\n\t\tstore %s\n\t\tuser bench %s\n\t}\n\trespond ok\n}\n' "$1" "$2" "$hash"
}
{
	printf '{\n\tadmin 127.0.0.1:%s\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n}\n' "$admin_port"
	site "$sq_port" "sqlite $work/tg.db"
	site "$sqf_port" "sqlite $work/tg-full.db"
	site "$pg_port" "postgres \"$pgdsn&application_name=tokengate\""
	site "$pgf_port" "postgres \"$pgfdsn&application_name=tokengate\""
} > "$work/Caddyfile"
XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" "$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
pid=$!
for port in "$sq_port" "$sqf_port" "$pg_port" "$pgf_port"; do
	for _ in $(seq 600); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" && break
		kill -0 "$pid" 2>/dev/null || { cat "$work/caddy.log" >&2; exit 1; }
		sleep 0.1
	done
done

run() { # run <port> [extra flags]
	local port="$1"; shift
	"$work/benchstore" load -url "http://127.0.0.1:$port" -user bench -password bench-pw -chains "$chains" \
		-duration "${secs}s" "$@"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

if [ -n "${PROFILE:-}" ]; then
	for site in "SQLite $sq_port" "PostgreSQL $pg_port"; do
		set -- $site
		echo "profiling $1 refresh (${secs}s)…" >&2
		run "$2" -admin "127.0.0.1:$admin_port" -profile "$work/cpu-$1.pprof" >/dev/null
		go tool pprof -top -nodecount=30 "$work/caddy" "$work/cpu-$1.pprof" 2>/dev/null | sed 's/^/    /' >&2
	done
fi
# Pruning runs on its own SQLite file; to save time it runs while SQLite
# is bulk-loaded (so its figure includes that I/O: pessimistic).
# SERIAL=1 runs it alone first instead, before the loads fill the page
# cache and the disk's write-back queue with other files.
prune() { "$work/benchstore" prune -dsn "$work/prune.db" -rows "$prune_rows" -interleave "$interleave" >"$work/prune.json"; }
if [ -n "${SERIAL:-}" ]; then
	echo "pruning $prune_rows expired rows on SQLite…" >&2
	prune
	rm -f "$work"/prune.db*
	sync
else
	echo "pruning $prune_rows expired rows on SQLite (beside the bulk load)…" >&2
	prune & prunepid=$!
fi
# Each load's dirty pages are written out (sync; PostgreSQL also vacuums,
# analyzes and checkpoints in fill) before anything is measured.
echo "loading $rows rows into the second SQLite store…" >&2
fsq="$("$work/benchstore" fill -driver sqlite -dsn "$work/tg-full.db" -rows "$rows" -interleave "$interleave")"
sync
[ -n "${SERIAL:-}" ] || wait "$prunepid"
echo "loading $rows rows into the second PostgreSQL store…" >&2
fpg="$("$work/benchstore" fill -driver postgres -dsn "$pgfdsn" -rows "$rows" -interleave "$interleave")"
sync
echo "  loads: SQLite $(field "$fsq" seconds)s, PostgreSQL $(field "$fpg" seconds)s" >&2
sq0=(); sq1=(); pg0=(); pg1=()
for round in $(seq "$rounds"); do
	echo "round $round of $rounds: SQLite empty, SQLite $rows rows, PostgreSQL empty, PostgreSQL $rows rows…" >&2
	sq0+=("$(run "$sq_port")")
	sq1+=("$(run "$sqf_port")")
	pg0+=("$(run "$pg_port" -pg "$pgdsn")")
	pg1+=("$(run "$pgf_port" -pg "$pgdsn")")
done
pr="$(cat "$work/prune.json")"

join() { local IFS=,; echo "[$*]"; }
sq0="$(join "${sq0[@]}")"; sq1="$(join "${sq1[@]}")"; pg0="$(join "${pg0[@]}")"; pg1="$(join "${pg1[@]}")"
for v in sq0 pg0 sq1 pg1 pr; do echo "$v ${!v}" >&2; done
python3 - "$sq0" "$pg0" "$sq1" "$pg1" "$pr" "$rows" "$prune_rows" "$chains" "$secs" "$rounds" "$interleave" <<'PY'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:5]]
pr = json.loads(sys.argv[5])
rows, prune_rows, chains, secs, rounds, interleave = sys.argv[6:12]
# Medians over the rounds; connections and errors summed.
def summary(rs):
	med = lambda k: statistics.median(r[k] for r in rs)
	return {"grants_per_s": med("grants_per_s"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
		"new_pg_connections": sum(r["new_pg_connections"] for r in rs), "errors": sum(r["errors"] for r in rs),
		"all": "/".join(f"{r['grants_per_s']:.0f}" for r in rs)}
sq0, pg0, sq1, pg1 = (summary(rs) for rs in runs)
m = lambda n: f"{int(n)/1e6:g} million"
def ok(cond): return "yes" if cond else "**no**"
print(f"| figure ({chains} refresh chains, {secs} s each, medians of {rounds} alternating rounds; loads of {int(interleave)} interleaved families) | SQLite | PostgreSQL | target | met |")
print("|---|---|---|---|---|")
print(f"| refresh grants/s, empty table | {sq0['grants_per_s']:.0f} ({sq0['all']}) | {pg0['grants_per_s']:.0f} ({pg0['all']}) | | |")
print(f"| p50 / p99 latency, empty table | {sq0['p50_ms']:.1f} / {sq0['p99_ms']:.1f} ms | {pg0['p50_ms']:.1f} / {pg0['p99_ms']:.1f} ms | PG p99 ≤ 50 ms | {ok(pg0['p99_ms'] <= 50)} |")
r = pg0['grants_per_s'] / sq0['grants_per_s']
print(f"| PostgreSQL / SQLite grants/s | | {r:.2f}× | ≥ 0.75× | {ok(r >= 0.75)} |")
print(f"| new PostgreSQL connections during the windows | | {pg0['new_pg_connections']} (empty), {pg1['new_pg_connections']} ({m(rows)}) | 0 | {ok(pg0['new_pg_connections'] == 0 and pg1['new_pg_connections'] == 0)} |")
print(f"| refresh grants/s with {m(rows)} rows | {sq1['grants_per_s']:.0f} ({sq1['all']}) | {pg1['grants_per_s']:.0f} ({pg1['all']}) | | |")
print(f"| p50 / p99 latency with {m(rows)} rows | {sq1['p50_ms']:.1f} / {sq1['p99_ms']:.1f} ms | {pg1['p50_ms']:.1f} / {pg1['p99_ms']:.1f} ms | | |")
a, b = sq1['grants_per_s'] / sq0['grants_per_s'], pg1['grants_per_s'] / pg0['grants_per_s']
restart = f"longest WAL restart hold {pr['longest_restart_hold_ms']:.1f} ms at {pr['longest_restart_hold_at_s']:.1f} s" if pr['longest_restart_hold_ms'] > 0 else "no WAL restart"
print(f"| {m(rows)} rows / empty | {a:.2f}× | {b:.2f}× | ≥ 0.8× | {ok(a >= 0.8 and b >= 0.8)} |")
print(f"| longest write stall pruning {m(prune_rows)} expired rows | {pr['max_write_stall_ms']:.1f} ms (p99 {pr['p99_write_ms']:.1f} ms, {pr['writes_during_prune']} writes at {pr['write_rate']}/s in {pr['prune_s']:.1f} s; {pr['baseline_max_write_ms']:.1f} ms before; longest prune statement {pr['longest_prune_statement_ms']:.1f} ms; at {pr['max_write_at_s']:.1f} s and {pr['longest_prune_statement_at_s']:.1f} s; {restart}; WAL at most {pr['max_wal_mib']:.0f} MiB) | | ≤ 50 ms | {ok(pr['max_write_stall_ms'] <= 50)} |")
errs = sq0['errors'] + pg0['errors'] + sq1['errors'] + pg1['errors']
if errs: print(f"\n{errs} refresh errors: see stderr")
PY
