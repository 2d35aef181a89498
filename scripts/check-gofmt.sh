#!/usr/bin/env bash
# check-gofmt.sh: fail, listing the files, if any hand-written Go file is not
# gofmt-formatted. Generated files ("// Code generated ... DO NOT EDIT.") and
# testdata/ are skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

files=()
while IFS= read -r -d '' f; do
	grep -qE '^// Code generated .* DO NOT EDIT\.$' "$f" || files+=("$f")
done < <(find . -type f -name '*.go' \
	-not -path './.git/*' -not -path './bin/*' -not -path './vendor/*' \
	-not -path '*/testdata/*' -print0 | LC_ALL=C sort -z)

[[ ${#files[@]} -eq 0 ]] && exit 0

unformatted="$(gofmt -l "${files[@]}")"
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files are not formatted (run 'gofmt -w' on them):" >&2
	echo "$unformatted" >&2
	exit 1
fi
