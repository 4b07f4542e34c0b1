#!/usr/bin/env bash
# Revocation propagation between two Caddy instances sharing a store:
# p50/p90/p99/max of the time from a revocation answered by instance A to
# instance B refusing the token, on SQLite and on PostgreSQL.
#   scripts/bench-revocation.sh [revocations]   (default 200)
# PostgreSQL: TOKENGATE_TEST_POSTGRES_DSN if set, else a throwaway cluster
# started with scripts/postgres.sh on TOKENGATE_PG_PORT (default 54391).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n="${1:-200}"
work="$(mktemp -d)"
own_pg=""
cleanup() {
	[ -n "$own_pg" ] && TOKENGATE_PG_PORT="$own_pg" TOKENGATE_PG_DIR="$work/pg" scripts/postgres.sh stop || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/caddy" ./cmd/caddy
go build -o "$work/bench" ./cmd/bench-revocation
"$work/bench" -caddy "$work/caddy" -driver sqlite -n "$n"
dsn="${TOKENGATE_TEST_POSTGRES_DSN:-}"
if [ -z "$dsn" ]; then
	own_pg="${TOKENGATE_PG_PORT:-54391}"
	mkdir -p "$work/pg" && chmod 755 "$work"
	dsn="$(TOKENGATE_PG_PORT="$own_pg" TOKENGATE_PG_DIR="$work/pg" scripts/postgres.sh start)"
fi
"$work/bench" -caddy "$work/caddy" -driver postgres -dsn "$dsn" -n "$n"
