#!/usr/bin/env bash
# Prints the path of a Chromium for the browser tests, installing Debian's
# chromium first when it is missing (needs root and apt-get).
set -euo pipefail
for name in chromium chromium-browser; do
	if p="$(command -v "$name")"; then
		echo "$p"
		exit 0
	fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "installing Debian's chromium…" >&2
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
	command -v chromium
	exit 0
fi
echo "no chromium and no way to install it" >&2
exit 1
