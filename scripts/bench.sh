#!/usr/bin/env bash
# Load benchmark on loopback: requests/s of a guarded route against the same
# route without tokengate, in one Caddy process and one run, reported as a
# ratio; and client_credentials issuance. Needs wrk (apt-get install wrk).
#   scripts/bench.sh [seconds]     (default 10 per measurement)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-10}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
go build -o "$work/caddy" ./cmd/caddy
hash="$(echo bench-secret | "$work/caddy" tokengate hash-password --password-stdin)"
cat > "$work/Caddyfile" <<CADDY
{
	admin off
	log {
		level ERROR
	}
}
http://127.0.0.1:18080 {
	respond "ok"
}
http://127.0.0.1:18081 {
	tokengate {
		store sqlite $work/tg.db
		client bench $hash roles reader
		require /api/* role reader
		forward_header X-User-Id sub
	}
	respond "ok"
}
CADDY
XDG_DATA_HOME="$work/data" "$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:18080/ >/dev/null && break; sleep 0.1; done
token="$(curl -sf -u bench:bench-secret -d grant_type=client_credentials http://127.0.0.1:18081/token |
	sed -E 's/.*"access_token":"([^"]+)".*/\1/')"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" http://127.0.0.1:18081/api/x)" = 200 ]

rps() { wrk -t2 -c32 -d"${secs}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
plain="$(rps http://127.0.0.1:18080/api/x)"
guarded="$(rps -H "Authorization: Bearer $token" http://127.0.0.1:18081/api/x)"
cat > "$work/token.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=bench&client_secret=bench-secret"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
issue="$(rps -s "$work/token.lua" http://127.0.0.1:18081/token)"
echo "plain Caddy (respond):           $plain req/s"
echo "tokengate guard + respond:       $guarded req/s"
echo "ratio guarded/plain:             $(awk -v a="$guarded" -v b="$plain" 'BEGIN {printf "%.2f", a/b}')"
echo "client_credentials issuance:     $issue req/s"
