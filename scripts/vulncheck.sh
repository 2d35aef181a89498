#!/usr/bin/env bash
# vulncheck.sh: govulncheck ./... against the Go vulnerability database;
# fails (exit 3) when the code calls a function with a known vulnerability
# (in a dependency or the standard library). Vulnerable code that is only
# imported, never called, is listed without failing.
#
# The database: VULNDB (a URL, e.g. https://vuln.go.dev, or file:///dir) if
# set. Otherwise it is built from the golang.org/x/vulndb module, which
# carries every published report as OSV JSON (data/osv), fetched through
# the Go module proxy like any module (these machines reach nothing else),
# at VULNDB_VERSION (default: latest, so each run sees the reports the
# proxy has), with vulndb's own cmd/indexdb, into bin/tools/vulndb-VERSION.
#
# Pinned: govulncheck (GOVULNCHECK_VERSION). Exits non-zero, saying why,
# when the tool or the database cannot be had. VULNCHECK_STDLIB=warn
# reports called vulnerabilities of the Go standard library without
# failing (only a newer toolchain fixes those); the default fails on them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="${ROOT}/bin/tools"
GOVULNCHECK_VERSION="v1.10.0"
VULNDB_MODULE="golang.org/x/vulndb"
VULNDB_VERSION="${VULNDB_VERSION:-latest}"
cd "$ROOT"

log() { echo "vulncheck: $*" >&2; }
die() {
	echo "vulncheck: ERROR: $*" >&2
	exit 1
}

# install NAME PKG VERSION: go install PKG@VERSION as bin/tools/NAME unless
# the binary there was built from that module version.
install() {
	local name="$1" pkg="$2" version="$3" bin="${TOOLS_BIN}/$1"
	if [[ -x "$bin" ]] && [[ "$(go version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $3; exit }')" == "$version" ]]; then
		return 0
	fi
	log "installing ${pkg}@${version}"
	mkdir -p "$TOOLS_BIN"
	GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "${pkg}@${version}" ||
		die "go install ${pkg}@${version} failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
}

install govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"

db="${VULNDB:-}"
if [[ -z "$db" ]]; then
	version="$(go list -m -f '{{.Version}}' "${VULNDB_MODULE}@${VULNDB_VERSION}")" ||
		die "cannot resolve ${VULNDB_MODULE}@${VULNDB_VERSION} through the Go module proxy (GOPROXY=$(go env GOPROXY)); set VULNDB to a database URL or file:// directory"
	dir="${TOOLS_BIN}/vulndb-${version}"
	if [[ ! -f "${dir}/index/db.json" ]]; then
		src="$(go mod download -json "${VULNDB_MODULE}@${version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
		[[ -d "${src}/data/osv" ]] || die "${VULNDB_MODULE}@${version} has no data/osv directory (the module's layout changed?)"
		install indexdb "${VULNDB_MODULE}/cmd/indexdb" "$version"
		log "building the vulnerability database from ${VULNDB_MODULE}@${version} ($(ls "${src}/data/osv" | wc -l) reports)"
		rm -rf "${dir}.tmp"
		"${TOOLS_BIN}/indexdb" -vulns "${src}/data/osv" -out "${dir}.tmp" || die "indexdb failed on ${src}/data/osv"
		rm -rf "$dir"
		mv "${dir}.tmp" "$dir"
	fi
	db="file://${dir}"
fi
log "database ${db}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
set +e
"${TOOLS_BIN}/govulncheck" -db "$db" ./... | tee "$out"
rc=${PIPESTATUS[0]}
set -e
case "$rc" in
0) exit 0 ;;
3) ;; # called vulnerabilities: sorted out below
*) die "govulncheck failed (exit ${rc})" ;;
esac
modules="$(awk '/^Vulnerability #/ { v = $2; sub(":", "", v) } /^  Module: / { print v, $2 }' "$out")"
stdlib="$(awk '/^Vulnerability #/ { v = $2; sub(":", "", v) } /^  Standard library$/ { print v }' "$out" | tr '\n' ' ')"
if [[ -n "$modules" ]]; then
	log "FAIL: the code calls vulnerable functions of these modules (upgrade them as 'Fixed in' says):"
	echo "$modules" >&2
	exit 3
fi
if [[ "${VULNCHECK_STDLIB:-fail}" == "warn" ]]; then
	log "WARNING: the code calls vulnerable functions of the standard library of $(go env GOVERSION) (${stdlib% }); the fix is a newer Go toolchain (see 'Fixed in' above). Not failing: VULNCHECK_STDLIB=warn."
	exit 0
fi
log "FAIL: the code calls vulnerable functions of the standard library of $(go env GOVERSION) (${stdlib% }); the fix is a newer Go toolchain (see 'Fixed in' above)"
exit 3
