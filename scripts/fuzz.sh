#!/usr/bin/env bash
# Runs every Go fuzz target in the module (func FuzzXxx in a _test.go file)
# for FUZZTIME each (default 30s), one at a time. FUZZ selects targets by
# regexp (default: all); FUZZFLAGS adds go test flags (e.g. -parallel 1).
# FUZZMINIMIZETIME (default 5s) bounds the minimizing of each new
# interesting input: the targets that drive a real cluster take tens of
# milliseconds an execution, and go test's default of 60s would spend the
# whole FUZZTIME minimizing the first one.
# A crash stops the run: go test writes the input to the package's
# testdata/fuzz/<target>/, where it stays as a regression test once the
# bug is fixed (see docs/security.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZTIME="${FUZZTIME:-30s}"
FUZZ="${FUZZ:-.}"
FUZZMINIMIZETIME="${FUZZMINIMIZETIME:-5s}"
GO="${GO:-go}"

targets="$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' --exclude-dir=bin --exclude-dir=.git . |
	sed -E 's#^\./(.*)/[^/]+\.go:func (Fuzz[A-Za-z0-9_]+)\($#\1 \2#' | LC_ALL=C sort -u)"
if [[ -z "$targets" ]]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
n=0
while read -r pkg name; do
	[[ "$name" =~ $FUZZ ]] || continue
	n=$((n + 1))
	echo "==== fuzz ./$pkg $name ($FUZZTIME)"
	# shellcheck disable=SC2086
	$GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" ${FUZZFLAGS:-} "./$pkg"
done <<<"$targets"
echo "fuzz: $n targets ran for $FUZZTIME each without a failure"
