#!/usr/bin/env bash
# Builds ./caddy: Caddy with the standard modules and tokengate from this
# checkout. xcaddy and Caddy are pinned; xcaddy runs as a Go tool from
# tools/go.mod, because `go install …@latest` needs version lists that some
# module proxies refuse.
set -euo pipefail

CADDY_VERSION="${CADDY_VERSION:-v2.11.9}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$root/caddy}"

cd "$root/tools"
# The v0.0.0 pin makes xcaddy use this directory instead of asking the
# module proxy for an unpublished module.
XCADDY_SKIP_CLEANUP=0 go tool xcaddy build "$CADDY_VERSION" \
	--output "$out" \
	--with "github.com/tokengate/caddy-tokengate@v0.0.0=$root"
"$out" version
