#!/usr/bin/env bash
# Load benchmark on loopback, one Caddy process (and a second for the signing ceiling), one run,
# reported as ratios:
#   - guarded reverse_proxy vs plain reverse_proxy (one token; 10 000 tokens in rotation)
#   - guarded vs ggicci/caddy-jwt HS256 (skipped when the module proxy does not serve it)
#   - guard p99 latency unloaded, and under a wrong-password flood from one client IP and
#     from 1 000 client IPs behind trusted_proxies (X-Forwarded-For); Caddy's peak RSS then
#   - password grants/s vs raw argon2id hashes/s at the hashing budget's concurrency
#   - client_credentials issuance vs a static `respond`, and the ceiling: a handler that only signs
#     an Ed25519 JWT (scripts/signcaddy) vs the same `respond`
#   - login attempts one IP can make against one account per minute
#   - time to answer a wrong secret: unknown vs known client id
# and writes a plot of guard latency percentiles with and without a flood.
#
#   scripts/bench.sh [seconds]        (default 10 per measurement)
#
# Environment: ROUNDS (throughput rounds, median reported; default 3), LAT_ROUNDS (latency
# rounds, median p99 reported; default 3), BENCH_PORT (first of
# six loopback ports; default 18080), BENCH_PLOT (default docs/bench.png), LOGIN_SECS
# (default 60), CADDY_JWT_VERSION (default v1.1.4), CADDY_BIN (a Caddy already built with
# tokengate, and with caddy-jwt for its row, used instead of building one), KEEP=1 keeps the
# work directory.
# Installs wrk, hey, gnuplot, curl and openssl with apt-get when they are missing and it runs
# as root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$(pwd)"
secs="${1:-10}"
rounds="${ROUNDS:-3}"
lat_rounds="${LAT_ROUNDS:-3}"
p0="${BENCH_PORT:-18080}"
plot="${BENCH_PLOT:-docs/bench.png}"
login_secs="${LOGIN_SECS:-60}"
jwtver="${CADDY_JWT_VERSION:-v1.1.4}"
pu=$p0 pp=$((p0 + 1)) pg=$((p0 + 2)) pr=$((p0 + 3)) pj=$((p0 + 4)) ps=$((p0 + 5))

missing=()
for tool in wrk:wrk hey:hey gnuplot:gnuplot-nox curl:curl openssl:openssl; do
	command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "installing ${missing[*]}…" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	else
		echo "missing ${missing[*]} and no way to install them (run as root with apt-get)" >&2
		exit 1
	fi
fi

work="$(mktemp -d)"
pid="" flood="" signpid=""
cleanup() {
	[ -z "$flood" ] || kill "$flood" 2>/dev/null || true
	[ -z "$signpid" ] || kill "$signpid" 2>/dev/null || true
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }

# ---- build once: Caddy with tokengate (and caddy-jwt when it can be fetched), argonbench
log "building"
jwt=""
mkdir "$work/build"
cat >"$work/build/main.go" <<'GO'
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/ggicci/caddy-jwt"
	_ "github.com/tokengate/caddy-tokengate"
)

func main() { caddycmd.Main() }
GO
if [ -n "${CADDY_BIN:-}" ]; then
	# A Caddy built elsewhere with tokengate (and caddy-jwt, for its row).
	cp "$CADDY_BIN" "$work/caddy"
	if "$work/caddy" list-modules | grep -q '^http.authentication.providers.jwt$'; then
		jwt=1
	else
		log "CADDY_BIN has no caddy-jwt; its row is skipped"
	fi
elif (cd "$work/build" && go mod init benchcaddy >/dev/null 2>&1 &&
	go mod edit -require=github.com/tokengate/caddy-tokengate@v0.0.0-00010101000000-000000000000 \
		-replace=github.com/tokengate/caddy-tokengate="$repo" &&
	go get "github.com/ggicci/caddy-jwt@$jwtver" && go mod tidy && go build -o "$work/caddy" .) >"$work/jwt-build.log" 2>&1; then
	jwt=1
else
	jwt_reason="$(grep -m1 -iE 'forbidden|not available|error|cannot' "$work/jwt-build.log" || tail -n1 "$work/jwt-build.log")"
	log "caddy-jwt $jwtver could not be fetched or built; its row is skipped: $jwt_reason"
	go build -o "$work/caddy" ./cmd/caddy
fi
"$work/caddy" list-modules | grep -q '^tokengate$' || { echo "$work/caddy has no tokengate module" >&2; exit 1; }
go build -o "$work/argonbench" ./scripts/argonbench
# The ceiling of any Ed25519 issuance here: a Caddy handler that only reads the body and signs.
go build -o "$work/signcaddy" ./scripts/signcaddy

# ---- configuration
hash="$(echo bench-secret | "$work/caddy" tokengate hash-password --password-stdin)"
jwtkey="bench-hs256-key-0123456789abcdef"
jwtsite="" jwtorder=""
if [ -n "$jwt" ]; then
	jwtorder="order jwtauth before basic_auth"
	jwtsite="http://127.0.0.1:$pj {
	jwtauth {
		sign_key $(printf %s "$jwtkey" | openssl base64 -A)
		sign_alg HS256
		user_claims sub
	}
	reverse_proxy 127.0.0.1:$pu
}"
fi
cat >"$work/Caddyfile" <<CADDY
{
	admin off
	log {
		level ERROR
	}
	servers {
		trusted_proxies static 127.0.0.1/8
		client_ip_headers X-Forwarded-For
	}
	$jwtorder
}
http://127.0.0.1:$pu {
	respond "ok"
}
http://127.0.0.1:$pp {
	reverse_proxy 127.0.0.1:$pu
}
http://127.0.0.1:$pg {
	tokengate {
		store sqlite $work/tg.db
		access_ttl 2h
		user alice $hash roles reader
		user gina $hash roles reader
		user lena $hash roles reader
		client bench $hash roles reader
		require /api/* role reader
		forward_header X-User-Id sub
	}
	reverse_proxy 127.0.0.1:$pu
}
http://127.0.0.1:$pr {
	respond "ok"
}
$jwtsite
CADDY
XDG_DATA_HOME="$work/data" "$work/caddy" run --config "$work/Caddyfile" >"$work/caddy.log" 2>&1 &
pid=$!
printf '{\n\tadmin off\n}\nhttp://127.0.0.1:%s {\n\tsign_only\n}\n' "$ps" >"$work/Caddyfile.sign"
XDG_DATA_HOME="$work/data-sign" "$work/signcaddy" run --config "$work/Caddyfile.sign" --adapter caddyfile >"$work/signcaddy.log" 2>&1 &
signpid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$pu/" >/dev/null && curl -s -o /dev/null "http://127.0.0.1:$pg/" &&
	curl -sf -o /dev/null -X POST "http://127.0.0.1:$ps/token" && break; sleep 0.1; done

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
accessToken() { sed -E 's/.*"access_token":"([^"]+)".*/\1/'; }
token="$(curl -sf -u bench:bench-secret -d grant_type=client_credentials "http://127.0.0.1:$pg/token" | accessToken)"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$pg/api/x")" = 200 ] ||
	{ echo "the guarded route refuses the bench token" >&2; exit 1; }

# ---- wrk scripts
cat >"$work/mint.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=bench&client_secret=bench-secret"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
local f
function init(args) f = io.open(args[1] .. "." .. id, "w") end
function response(status, headers, body)
	local t = body:match('"access_token":"([^"]+)"')
	if t then f:write(t, "\n"); f:flush() end
end
LUA
cat >"$work/rotate.lua" <<'LUA'
-- Each thread cycles through every token of the file, the threads half the file apart (Lua's
-- random numbers start alike in every thread).
local reqs, i = {}, 0
local n = 0
function setup(thread) n = n + 1; thread:set("id", n) end
function init(args)
	for line in io.lines(args[1]) do
		reqs[#reqs + 1] = wrk.format("GET", "/api/x", { ["Authorization"] = "Bearer " .. line })
	end
	i = ((id or 1) - 1) * math.floor(#reqs / 2)
end
function request()
	i = i % #reqs + 1
	return reqs[i]
end
LUA
cat >"$work/issue.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=bench&client_secret=bench-secret"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA
cat >"$work/grant.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=password&username=gina&password=bench-secret"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["X-Forwarded-For"] = "10.200.0.1"
LUA
# flood.lua <client IPs> <ms between requests per connection>: wrong passwords for alice.
cat >"$work/flood.lua" <<'LUA'
wrk.method = "POST"
wrk.body = "grant_type=password&username=alice&password=wrong"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
local n, k, pause
function init(args)
	n, pause = tonumber(args[1]), tonumber(args[2])
	k = math.random(n)
end
function request()
	k = k % n + 1
	wrk.headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(k / 65536) % 256, math.floor(k / 256) % 256, k % 256)
	return wrk.format()
end
function delay() return pause end
LUA

# ---- 10 000 tokens
log "minting 10 000 tokens"
for _ in $(seq 20); do
	wrk -t2 -c8 -d3s -s "$work/mint.lua" "http://127.0.0.1:$pg/token" -- "$work/mint" >/dev/null
	# Whole JWTs only: wrk may stop a thread in the middle of a line.
	cat "$work"/mint.* | grep -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$' | sort -u >"$work/tokens"
	[ "$(wc -l <"$work/tokens")" -ge 10000 ] && break
done
head -n 10000 "$work/tokens" >"$work/tokens10k"
ntok="$(wc -l <"$work/tokens10k")"
# Tokens in rotation have been used before: passes over them warm the verified-token cache.
wrk -t2 -c32 -d"$((2 * secs))s" -s "$work/rotate.lua" "http://127.0.0.1:$pg/api/x" -- "$work/tokens10k" >/dev/null

rps() { # prints requests/s; warns about non-2xx answers
	local out
	out="$(wrk -t2 -c32 -d"${secs}s" "$@")"
	if grep -q "Non-2xx" <<<"$out"; then echo "warning: $(grep Non-2xx <<<"$out") for $*" >&2; fi
	awk '/Requests\/sec/ {print $2}' <<<"$out"
}
median() { sort -g | awk '{a[NR] = $1} END {if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b}'; }

declare -A runs
for round in $(seq "$rounds"); do
	log "throughput round $round of $rounds"
	# The same request to both: the plain proxy also carries (and forwards) the token.
	runs[plain]+="$(rps -H "Authorization: Bearer $token" "http://127.0.0.1:$pp/api/x") "
	runs[guard1]+="$(rps -H "Authorization: Bearer $token" "http://127.0.0.1:$pg/api/x") "
	# The same client script against the plain proxy: wrk's Lua work per request is the same.
	runs[plain10k]+="$(rps -s "$work/rotate.lua" "http://127.0.0.1:$pp/api/x" -- "$work/tokens10k") "
	runs[guard10k]+="$(rps -s "$work/rotate.lua" "http://127.0.0.1:$pg/api/x" -- "$work/tokens10k") "
	if [ -n "$jwt" ]; then
		now="$(date +%s)"
		hdr="$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)"
		body="$(printf '{"sub":"bench","iat":%d,"exp":%d}' "$now" $((now + 3600)) | b64url)"
		sig="$(printf %s "$hdr.$body" | openssl dgst -sha256 -hmac "$jwtkey" -binary | b64url)"
		runs[jwt]+="$(rps -H "Authorization: Bearer $hdr.$body.$sig" "http://127.0.0.1:$pj/api/x") "
	fi
	runs[respond]+="$(rps "http://127.0.0.1:$pr/") "
	runs[issue]+="$(rps -s "$work/issue.lua" "http://127.0.0.1:$pg/token") "
	runs[signonly]+="$(rps -s "$work/issue.lua" "http://127.0.0.1:$ps/token") "
done
declare -A med
for k in "${!runs[@]}"; do med[$k]="$(tr ' ' '\n' <<<"${runs[$k]}" | grep . | median)"; done

# ---- latency: unloaded, and under floods (hey at a fixed rate: 4 workers × 100 req/s). A p99 of
# one short window swings with whatever else the machine does, so the three conditions take turns
# for LAT_ROUNDS rounds and each reports the median of its rounds' p99s (the plot shows round 1).
latency() { # writes hey's percentiles to $1, prints p99 in ms
	hey -z "${secs}s" -c 4 -q 100 -H "Authorization: Bearer $token" "http://127.0.0.1:$pg/api/x" >"$1"
	awk '/% in/ {gsub("%", "", $1); printf "%s %.3f\n", $1, $3 * 1000}' "$1" >"$1.pct"
	awk '$1 == 99 {print $2}' "$1.pct"
}
flooded() { # $1: client IPs, $2: output; a flood of ≈ 64 connections × 1 request / 20 ms
	wrk -t1 -c64 -d"$((secs + 3))s" -s "$work/flood.lua" "http://127.0.0.1:$pg/token" -- "$1" 20 >"$2.wrk" &
	flood=$!
	sleep 2
	latency "$2"
	wait "$flood" || true
	flood=""
}
echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true # reset VmHWM: peak RSS from here on
declare -A lat
for round in $(seq "$lat_rounds"); do
	log "latency round $round of $lat_rounds: unloaded, flood from one client IP, flood from 1 000 client IPs"
	lat[idle]+="$(latency "$work/lat-idle.$round") "
	lat[one]+="$(flooded 1 "$work/lat-one.$round") "
	lat[many]+="$(flooded 1000 "$work/lat-many.$round") "
done
for k in idle one many; do
	declare "p99_$k=$(tr ' ' '\n' <<<"${lat[$k]}" | grep . | median)"
	cp "$work/lat-$k.1.pct" "$work/lat-$k.pct"
done
rss_mb="$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")"
flood_one_rps="$(cat "$work"/lat-one.*.wrk | awk '/Requests\/sec/ {print $2}' | median)"
flood_many_rps="$(cat "$work"/lat-many.*.wrk | awk '/Requests\/sec/ {print $2}' | median)"

# ---- password grants vs raw argon2id at the budget's concurrency
budget=$(($(nproc) / 2))
[ "$budget" -ge 1 ] || budget=1
params="$(sed -E 's/^\$argon2id\$v=19\$m=([0-9]+),t=([0-9]+),p=([0-9]+)\$.*/\1 \2 \3/' <<<"$hash")"
read -r am at ap <<<"$params"
# Alternating rounds, medians: the two figures are taken at different moments.
grant_runs="" raw_runs=""
for round in $(seq "$rounds"); do
	log "password grants ($budget hashing slot(s)) and raw argon2id, round $round of $rounds"
	grant_runs+="$(wrk -t1 -c4 -d"${secs}s" -s "$work/grant.lua" "http://127.0.0.1:$pg/token" | tee "$work/grants.$round" | awk '/Requests\/sec/ {print $2}') "
	if grep -q Non-2xx "$work/grants.$round"; then echo "warning: password grants: $(grep Non-2xx "$work/grants.$round")" >&2; fi
	raw_runs+="$("$work/argonbench" -workers "$budget" -seconds "$secs" -m "$am" -t "$at" -p "$ap") "
done
grants="$(tr ' ' '\n' <<<"$grant_runs" | grep . | median)"
raw="$(tr ' ' '\n' <<<"$raw_runs" | grep . | median)"

# ---- login attempts one IP can make against one account
log "login attempts from one IP against one account for ${login_secs}s"
hey -z "${login_secs}s" -c 1 -m POST -T application/x-www-form-urlencoded -H "X-Forwarded-For: 10.77.0.1" \
	-d "grant_type=password&username=lena&password=wrong" "http://127.0.0.1:$pg/token" >"$work/login"
attempts="$(awk '/\[400\]/ {print $2}' "$work/login")"
refused="$(awk '/\[429\]/ {print $2}' "$work/login")"
per_min="$(awk -v a="${attempts:-0}" -v s="$login_secs" 'BEGIN {printf "%.0f", a * 60 / s}')"

# ---- unknown vs known client id, wrong secret: time to answer (each from its own IP)
log "unknown vs known client id"
: >"$work/known" && : >"$work/unknown"
# 19 of each: under per_account's 20 free failures from never-seen IPs, so no answer is a 429.
try() { curl -s -o /dev/null -w '%{time_total}\n' -u "$1:wrong" -H "X-Forwarded-For: $2" -d grant_type=client_credentials "http://127.0.0.1:$pg/token"; }
for i in $(seq 19); do
	if [ $((i % 2)) = 0 ]; then
		try bench "10.88.$i.1" >>"$work/known"
		try nobody "10.89.$i.1" >>"$work/unknown"
	else
		try nobody "10.89.$i.1" >>"$work/unknown"
		try bench "10.88.$i.1" >>"$work/known"
	fi
done
known_ms="$(median <"$work/known" | awk '{printf "%.1f", $1 * 1000}')"
unknown_ms="$(median <"$work/unknown" | awk '{printf "%.1f", $1 * 1000}')"

# ---- plot
paste "$work/lat-idle.pct" <(cut -d' ' -f2 "$work/lat-one.pct") <(cut -d' ' -f2 "$work/lat-many.pct") >"$work/lat.dat"
mkdir -p "$(dirname "$plot")"
gnuplot <<GP
set terminal pngcairo size 800,480 font "sans,10"
set output "$plot"
set title "tokengate guard latency (hey, 4 × 100 req/s), $(nproc) CPUs"
set xlabel "percentile"
set ylabel "latency (ms)"
set logscale y
set key top left
set grid
plot "$work/lat.dat" using 1:2 with linespoints title "unloaded", \
     "" using 1:3 with linespoints title "wrong-password flood, one client IP", \
     "" using 1:4 with linespoints title "wrong-password flood, 1000 client IPs"
GP

# ---- the table
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {if (v == "n/a" || v == "") print "-"; else if ((op == ">=" && v + 0 >= t) || (op == "<=" && v + 0 <= t)) print "yes"; else print "NO"}'; }
r_one="$(ratio "${med[guard1]}" "${med[plain]}")"
r_10k="$(ratio "${med[guard10k]}" "${med[plain10k]}")"
r_jwt="$(ratio "${med[guard1]}" "${med[jwt]:-}")"
r_flood1="$(ratio "$p99_one" "$p99_idle")"
r_flood1k="$(ratio "$p99_many" "$p99_idle")"
r_grant="$(ratio "$grants" "$raw")"
r_issue="$(ratio "${med[issue]}" "${med[respond]}")"
r_sign="$(ratio "${med[signonly]}" "${med[respond]}")"
r_issue_sign="$(ratio "${med[issue]}" "${med[signonly]}")"
r_unknown="$(ratio "$unknown_ms" "$known_ms")"
d_unknown="$(awk -v r="$r_unknown" 'BEGIN {d = r - 1; if (d < 0) d = -d; printf "%.2f", d}')"
cat <<TABLE

tokengate bench: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, ${secs}s per measurement, throughput = median of $rounds rounds
command: scripts/bench.sh $secs (ROUNDS=$rounds)

| figure | measured | ratio | target | met |
|---|---|---|---|---|
| guarded proxy / plain proxy, one token (the same request to both) | ${med[guard1]} / ${med[plain]} req/s | ${r_one}× | ≥ 0.95× | $(met "$r_one" 0.95 ">=") |
| same, $ntok distinct tokens in rotation (both through the same wrk Lua script) | ${med[guard10k]} / ${med[plain10k]} req/s | ${r_10k}× | ≥ 0.85× | $(met "$r_10k" 0.85 ">=") |
| guarded proxy / caddy-jwt HS256, one token | ${med[guard1]} / ${med[jwt]:-skipped: caddy-jwt $jwtver not fetchable} req/s | ${r_jwt}× | ≥ 1.25× | $(met "$r_jwt" 1.25 ">=") |
| guard p99, flood from one IP / unloaded (medians of $lat_rounds rounds) | ${p99_one} / ${p99_idle} ms (flood ${flood_one_rps} req/s) | ${r_flood1}× | ≤ 2× | $(met "$r_flood1" 2 "<=") |
| guard p99, flood from 1 000 IPs behind a trusted proxy / unloaded (medians of $lat_rounds rounds) | ${p99_many} / ${p99_idle} ms (flood ${flood_many_rps} req/s) | ${r_flood1k}× | ≤ 3× | $(met "$r_flood1k" 3 "<=") |
| peak RSS of Caddy during the floods (VmHWM) | ${rss_mb} MB | | ≤ 250 MB | $(met "$rss_mb" 250 "<=") |
| password grants/s / raw argon2id hashes/s (m=$am KiB, t=$at, p=$ap), $budget worker(s), medians of $rounds alternating rounds | ${grants} / ${raw} | ${r_grant}× | ≥ 0.9× | $(met "$r_grant" 0.9 ">=") |
| client_credentials issuance / static respond | ${med[issue]} / ${med[respond]} req/s | ${r_issue}× | ≥ 0.6× | $(met "$r_issue" 0.6 ">=") |
| (ceiling) a handler that only signs an Ed25519 JWT / static respond; issuance / that handler | ${med[signonly]} req/s | ${r_sign}×; ${r_issue_sign}× | | |
| login attempts one IP makes against one account | ${attempts:-0} checked, ${refused:-0} refused 429 in ${login_secs}s | ${per_min}/min | bounded | $( [ "${per_min}" -le 20 ] && echo yes || echo NO) |
| unknown / known client id, wrong secret: p50 time to answer | ${unknown_ms} / ${known_ms} ms | ${r_unknown}× | within 10 % | $(met "$d_unknown" 0.10 "<=") |

plot: $plot
TABLE
