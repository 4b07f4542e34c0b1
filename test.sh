#!/usr/bin/env bash
# Runs tokengate's whole test suite: vet, then every package's tests
# (unit, in-process Caddy via caddytest, interop with golang.org/x/oauth2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

gofmt_out="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$gofmt_out" ]; then
	echo "gofmt would change: $gofmt_out" >&2
	exit 1
fi
go vet ./...
go test -count=1 "$@" ./...
