#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster on 127.0.0.1 for the tests.
#   scripts/postgres.sh start   # prints the DSN to use
#   scripts/postgres.sh stop
#   scripts/postgres.sh halt    # stops the server, keeping its data (outage tests)
#   scripts/postgres.sh resume  # starts a halted server again
# Installs Debian's postgresql first when its server binaries are missing
# (needs root and apt-get). Runs the server as the postgres user when root.
set -euo pipefail

port="${TOKENGATE_PG_PORT:-54329}"
dir="${TOKENGATE_PG_DIR:-${TMPDIR:-/tmp}/tokengate-pg-$port}"

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

bin="$(find_bin)"
case "${1:-}" in
start)
	if [ -z "$bin" ]; then
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			echo "installing Debian's postgresql…" >&2
			apt-get update -qq >&2
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
			bin="$(find_bin)"
		fi
		[ -n "$bin" ] || { echo "no PostgreSQL server binaries and no way to install them" >&2; exit 1; }
	fi
	if [ -f "$dir/postmaster.pid" ]; then
		as_owner "$bin/pg_ctl" -D "$dir" -m immediate stop >&2 || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	[ "$(id -u)" = 0 ] && chown postgres "$dir"
	as_owner "$bin/initdb" -D "$dir" -A trust -U postgres --no-sync >/dev/null
	as_owner "$bin/pg_ctl" -D "$dir" -w -l "$dir/server.log" \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
	echo "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	;;
stop)
	[ -n "$bin" ] && [ -f "$dir/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir" -m immediate stop >&2
	rm -rf "$dir"
	;;
halt)
	as_owner "$bin/pg_ctl" -D "$dir" -w -m fast stop >&2
	;;
resume)
	as_owner "$bin/pg_ctl" -D "$dir" -w -l "$dir/server.log" \
		-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
	;;
*)
	echo "usage: $0 start|stop|halt|resume" >&2
	exit 2
	;;
esac
