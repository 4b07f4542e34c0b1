#!/usr/bin/env bash
# Runs every Go fuzz target in the repository (every func FuzzXxx, found
# with `go test -list`) for the given time each, one after the other:
# `go test -fuzz` takes one target in one package at a time.
#
#   scripts/fuzz.sh          # 50 inputs each beyond the seeds, as test.sh runs them
#   scripts/fuzz.sh 10m      # a longer run
#
# A crasher is written to the package's testdata/fuzz/FuzzXxx/ and fails
# the run; commit it with the fix, and it stays a regression test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A count (50x) rather than a duration for the short run: with a duration,
# `go test -fuzz` can fail a slow target (an argon2id check per input) with
# "context deadline exceeded" when time runs out mid-input.
fuzztime="${1:-50x}"

targets="$(go test -list '^Fuzz' ./... | awk '
	/^Fuzz/ { names = names " " $1 }
	/^(ok|\?)[ \t]/ { if (names != "") print $2 names; names = "" }')"
if [ -z "$targets" ]; then
	echo "no fuzz targets found" >&2
	exit 1
fi
while read -r pkg names; do
	for name in $names; do
		echo "fuzz: $pkg $name ($fuzztime)" >&2
		go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
	done
done <<<"$targets"
