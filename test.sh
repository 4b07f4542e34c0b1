#!/usr/bin/env bash
# Runs tokengate's whole test suite: vet, then every package's tests
# (unit, in-process Caddy via caddytest, interop with golang.org/x/oauth2),
# with a PostgreSQL server started for the tests that need one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

gofmt_out="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$gofmt_out" ]; then
	echo "gofmt would change: $gofmt_out" >&2
	exit 1
fi
go vet ./...

# PostgreSQL for the store and user_table tests: a throwaway cluster on
# loopback (Debian's postgresql is installed first when missing).
if dsn="$(scripts/postgres.sh start)"; then
	export TOKENGATE_TEST_POSTGRES_DSN="$dsn"
	trap 'scripts/postgres.sh stop' EXIT
elif [ -n "${CI:-}" ]; then
	echo "PostgreSQL could not be started; CI needs it" >&2
	exit 1
else
	echo "PostgreSQL could not be started: its tests will skip" >&2
fi

# Headless Chromium for the browser tests (internal/testkit/browsertest):
# they skip without it, and fail under CI.
if chromium="$(scripts/chromium.sh)"; then
	export TOKENGATE_CHROMIUM="$chromium"
elif [ -n "${CI:-}" ]; then
	echo "Chromium could not be installed; CI needs it" >&2
	exit 1
fi

# Node clients (openid-client, jose, and axe-core for the browser tests) for the non-Go interop test. Without
# npm or its registry, the Go tests still run and the Node test says why it
# skipped (TOKENGATE_NODE_SKIP).
if ! command -v npm >/dev/null; then
	export TOKENGATE_NODE_SKIP="npm is not installed"
elif ! npm ci --prefix interop/node --no-audit --no-fund --loglevel=error >&2; then
	export TOKENGATE_NODE_SKIP="npm ci failed (is the npm registry reachable?)"
fi
if [ -n "${TOKENGATE_NODE_SKIP:-}" ]; then
	echo "SKIPPING the Node interop tests TestInteropNodeClients (openid-client, jose) and TestInteropNodeDPoP (oauth4webapi): $TOKENGATE_NODE_SKIP" >&2
fi

status=0
go test -count=1 "$@" ./... || status=$?
if [ -n "${TOKENGATE_NODE_SKIP:-}" ]; then
	echo "NOTE: the Node interop tests (TestInteropNodeClients, TestInteropNodeDPoP) were skipped: $TOKENGATE_NODE_SKIP" >&2
fi

# Every fuzz target, 50 new inputs each (scripts/fuzz.sh 10m for a longer run).
scripts/fuzz.sh 50x || status=$?
exit "$status"
