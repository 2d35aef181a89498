#!/usr/bin/env bash
# install-tools.sh: make sure the tools the build needs are present.
#
# Usage: scripts/install-tools.sh [GROUP...]     (no GROUP = all groups)
#
#   proto  protoc (Debian package protobuf-compiler) and the pinned Go plugins
#          protoc-gen-go / protoc-gen-go-grpc in <repo>/bin/tools (via GOBIN),
#          and thrift (Debian package thrift-compiler) for `make thrift`.
#   ci     make, git and a C compiler (go test -race needs cgo), etcd-server
#          (the benchmark's etcd driver tests run a real etcd), sqlite3 (the
#          sql-lite differential test compares answers with SQLite's),
#          mariadb-client (the MySQL protocol tests run the mariadb CLI),
#          sysbench (the MySQL protocol tests run its OLTP workloads),
#          chromium (cmd/shale's TestConsoleInBrowser drives the PD web
#          console in headless Chromium).
#          prometheus (its promtool checks deploy/prometheus: make deploy-check).
#
# Idempotent: only what is missing (or at the wrong pinned version) is
# installed. Anything that cannot be installed stops the script with a
# message saying what and why.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_BIN="${ROOT}/bin/tools"

# Pinned plugin versions. Changing them changes the headers of every
# generated file: bump them in one commit together with `make proto` output.
PROTOC_GEN_GO_PKG="google.golang.org/protobuf/cmd/protoc-gen-go"
PROTOC_GEN_GO_VERSION="v1.36.12"
PROTOC_GEN_GO_GRPC_PKG="google.golang.org/grpc/cmd/protoc-gen-go-grpc"
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"
# protoc version the checked-in code was generated with (Debian bookworm).
PROTOC_EXPECTED_VERSION="3.21.12"
# thrift version proto/hbase was generated with (Debian thrift-compiler).
THRIFT_EXPECTED_VERSION="0.17.0"

log() { echo "install-tools: $*" >&2; }
die() {
	echo "install-tools: ERROR: $*" >&2
	exit 1
}

have() { command -v "$1" >/dev/null 2>&1; }

# apt_install PKG...: install Debian packages, as root or through sudo.
apt_install() {
	have apt-get || die "need Debian package(s) $* but apt-get is not available; install them with your OS package manager"
	local sudo=()
	if [[ "$(id -u)" -ne 0 ]]; then
		have sudo || die "need Debian package(s) $* but not running as root and sudo is not available"
		sudo=(sudo -n)
	fi
	log "installing Debian package(s): $*"
	apt_locked "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q ||
		die "apt-get update failed while installing $*"
	apt_locked "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
		die "apt-get install $* failed"
}

# apt_locked CMD...: run an apt-get command, waiting (up to 5 minutes) while
# another apt or dpkg holds its lock. Another process installing packages
# at the same time (an unattended upgrade, a second checkout's make test) is
# not a failure; apt-get update does not wait for the lists lock by itself
# (DPkg::Lock::Timeout covers only dpkg's lock), so wait here.
apt_locked() {
	local out deadline=$((SECONDS + 300))
	while :; do
		if out="$("$@" -o DPkg::Lock::Timeout=60 2>&1)"; then
			printf '%s\n' "$out" >&2
			return 0
		fi
		if ! grep -q 'Could not get lock' <<<"$out" || ((SECONDS >= deadline)); then
			printf '%s\n' "$out" >&2
			return 1
		fi
		log "another apt-get holds the package lock; waiting"
		sleep 5 # polling another process's lock: there is nothing to wait on
	done
}

# need_cmd CMD PKG: make sure CMD is on PATH, installing Debian package PKG if not.
need_cmd() {
	local cmd="$1" pkg="$2"
	if ! have "$cmd"; then
		apt_install "$pkg"
		have "$cmd" || die "installed $pkg but '$cmd' is still not on PATH"
	fi
}

# go_tool NAME PKG VERSION: install PKG@VERSION as bin/tools/NAME unless the
# binary there already was built from that module version.
go_tool() {
	local name="$1" pkg="$2" version="$3" bin="${TOOLS_BIN}/$1" have_version=""
	if [[ -x "$bin" ]]; then
		have_version="$(go version -m "$bin" 2>/dev/null | awk '$1 == "mod" { print $3; exit }')" || true
		[[ "$have_version" == "$version" ]] && return 0
		log "${name}: have ${have_version:-unknown version}, want ${version}; reinstalling"
	fi
	log "installing ${pkg}@${version} into ${TOOLS_BIN}"
	mkdir -p "$TOOLS_BIN"
	GOBIN="$TOOLS_BIN" CGO_ENABLED=0 go install "${pkg}@${version}" ||
		die "go install ${pkg}@${version} failed (is the Go module proxy reachable? GOPROXY=$(go env GOPROXY))"
	[[ -x "$bin" ]] || die "go install ${pkg}@${version} did not produce ${bin}"
}

install_proto() {
	have go || die "Go toolchain not found on PATH (needed to install protoc plugins); install Go first"
	need_cmd protoc protobuf-compiler
	local v
	v="$(protoc --version | awk '{ print $2 }')"
	if [[ "$v" != "$PROTOC_EXPECTED_VERSION" ]]; then
		log "warning: protoc is ${v}, checked-in code was generated with ${PROTOC_EXPECTED_VERSION}; generated headers will differ"
	fi
	need_cmd thrift thrift-compiler
	v="$(thrift --version | awk '{ print $3 }')"
	if [[ "$v" != "$THRIFT_EXPECTED_VERSION" ]]; then
		log "warning: thrift is ${v}, proto/hbase was generated with ${THRIFT_EXPECTED_VERSION}; generated code will differ"
	fi
	go_tool protoc-gen-go "$PROTOC_GEN_GO_PKG" "$PROTOC_GEN_GO_VERSION"
	go_tool protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_PKG" "$PROTOC_GEN_GO_GRPC_VERSION"
}

install_ci() {
	have go || die "Go toolchain not found on PATH; install Go (see go.mod for the version) first"
	need_cmd make make
	need_cmd git git
	local cc
	cc="$(go env CC)"
	if ! have "${cc%% *}"; then
		apt_install gcc libc6-dev
		have "${cc%% *}" || die "installed gcc but the C compiler '${cc}' (go env CC) is still not on PATH"
	fi
	# The YCSB etcd driver's tests (bench/) run a real etcd server.
	need_cmd etcd etcd-server
	# sql-lite/sqltest's differential test runs the sqlite3 CLI.
	need_cmd sqlite3 sqlite3
	# sql-lite/mysqlwire's tests run the mysql/mariadb command-line client.
	have mysql || need_cmd mariadb mariadb-client
	# ...and sysbench's OLTP workloads (a C client: server-side prepares).
	need_cmd sysbench sysbench
	# The web console's browser test (cmd/shale TestConsoleInBrowser)
	# drives Debian's chromium headless.
	need_cmd chromium chromium
	# The cross-language Thrift test generates a Python client with
	# Debian's thrift compiler and runs it with Debian's python3-thrift.
	need_cmd thrift thrift-compiler
	# `make deploy-check` runs promtool on the scrape config and alert rules.
	need_cmd promtool prometheus
	if ! /usr/bin/python3 -c 'import thrift' >/dev/null 2>&1; then
		apt_install python3-thrift
		/usr/bin/python3 -c 'import thrift' >/dev/null 2>&1 || die "installed python3-thrift but /usr/bin/python3 cannot import thrift"
	fi
}

groups=("$@")
[[ ${#groups[@]} -eq 0 ]] && groups=(proto ci)
for g in "${groups[@]}"; do
	case "$g" in
	proto) install_proto ;;
	ci) install_ci ;;
	all) install_proto && install_ci ;;
	*) die "unknown tool group '$g' (want: proto, ci, all)" ;;
	esac
done
