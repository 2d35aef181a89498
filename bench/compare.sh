#!/usr/bin/env bash
# bench/compare.sh: YCSB side by side, Shale against etcd, on this machine.
#
# Starts a 3-member etcd cluster (Debian's etcd-server, installed if
# missing) and a 3-store Shale cluster (shale pd + 3 x shale tablet
# processes) on 127.0.0.1, both writing to the same disk and both fsyncing
# their logs before acknowledging (etcd's default; Shale always does), then
# for each client thread count: loads the same records into each, runs the
# workloads against each, alternating which system goes first so machine
# noise hits both, records each tablet server's peak RSS (VmHWM), and
# writes a Markdown report (throughput and p99 per workload, Shale/etcd
# ratios, per-operation percentiles, RSS, machine facts, the command) that
# it also prints. A fresh pair of clusters is started per thread count.
# Every step is bounded in time and every process it started is stopped on
# exit (normal, error or Ctrl-C).
#
# Usage: bench/compare.sh            (or: make bench-compare)
# Environment (defaults in brackets):
#   RECORDS     records loaded [100000]; 1 KiB each (10 fields x 100 bytes)
#   THREADS     client thread counts ["16 64"]
#   WORKLOADS   run-phase workloads, YCSB letters ["a b c e f"]
#   DURATION    length of each run-phase workload [30s]
#   LOAD_MAX    longest a load may take before it is cut short [600s]
#   SEED        random seed of every run [1]
#   OUT         result directory [bench/results/<date>-<time>]
#   DATA        parent of the clusters' data directories [/var/tmp]
#   PROFILE=1   also record a CPU profile (perf) of one tablet server
#               during workloads a and c (needs perf; the tablet server has
#               no pprof endpoint)
#   KEEP_DATA=1 keep the data directories
#
# Quick check: RECORDS=2000 DURATION=5s THREADS=16 bench/compare.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-100000}"
THREADS="${THREADS:-16 64}"
WORKLOADS="${WORKLOADS:-a b c e f}"
DURATION="${DURATION:-30s}"
LOAD_MAX="${LOAD_MAX:-600s}"
SEED="${SEED:-1}"
OUT="${OUT:-${ROOT}/bench/results/$(date +%Y%m%d-%H%M%S)}"
DATA="${DATA:-/var/tmp}"
PROFILE="${PROFILE:-0}"
SHALE="${ROOT}/bin/shale"

log() { echo "compare: $*" >&2; }
die() {
	echo "compare: ERROR: $*" >&2
	exit 1
}
secs() { # "30s" / "2m" / "90" -> seconds
	local d="$1"
	case "$d" in
	*m) echo $((${d%m} * 60)) ;;
	*s) echo "${d%s}" ;;
	*) echo "$d" ;;
	esac
}

# ---- processes: every one we start is recorded and stopped on exit ----
PIDS=()
WORKDIRS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if ((${#PIDS[@]})); then
		log "stopping ${#PIDS[@]} processes"
		kill -TERM "${PIDS[@]}" 2>/dev/null || true
		for _ in $(seq 1 50); do
			local alive=0
			for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
			((alive)) || break
			sleep 0.2
		done
		kill -KILL "${PIDS[@]}" 2>/dev/null || true
		wait "${PIDS[@]}" 2>/dev/null || true
	fi
	if [[ "${KEEP_DATA:-0}" != 1 ]]; then
		for d in "${WORKDIRS[@]}"; do rm -rf "$d"; done
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_all() { # stop what runs now (between thread counts)
	((${#PIDS[@]})) || return 0
	kill -TERM "${PIDS[@]}" 2>/dev/null || true
	for _ in $(seq 1 50); do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.2
	done
	kill -KILL "${PIDS[@]}" 2>/dev/null || true
	wait "${PIDS[@]}" 2>/dev/null || true
	PIDS=()
}

# free_port prints a TCP port nothing listens on (and that this script has
# not handed out yet), below the kernel's ephemeral range so no outgoing
# connection holds it either.
USED_PORTS=" "
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
		[[ "$USED_PORTS" == *" $p "* ]] && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			USED_PORTS+="$p "
			echo "$p"
			return
		fi
	done
	die "no free port found"
}

wait_http() { # URL SECONDS
	local url="$1" deadline=$((SECONDS + $2))
	until curl -sf -o /dev/null --max-time 2 "$url"; do
		((SECONDS < deadline)) || die "$url not healthy after $2 s"
		sleep 0.2
	done
}

# ---- setup ----
if ! command -v etcd >/dev/null 2>&1; then
	log "etcd not found: installing Debian's etcd-server"
	sudo=()
	[[ "$(id -u)" -eq 0 ]] || sudo=(sudo -n)
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends etcd-server >&2
	command -v etcd >/dev/null 2>&1 || die "installed etcd-server but etcd is not on PATH"
fi
command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install curl)"
log "building bin/shale"
make -C "$ROOT" -s build >&2
mkdir -p "$OUT"
if [[ "$PROFILE" == 1 ]] && ! command -v perf >/dev/null 2>&1; then
	die "PROFILE=1 needs perf (apt-get install linux-perf)"
fi

# ---- clusters ----
start_etcd() { # DIR LOGDIR -> sets ETCD_ENDPOINTS, ETCD_PIDS
	local dir="$1" logs="$2" i cluster="" urls=()
	local -a cport pport
	for i in 1 2 3; do
		cport[i]=$(free_port)
		pport[i]=$(free_port)
		cluster+="${cluster:+,}e$i=http://127.0.0.1:${pport[i]}"
		urls+=("127.0.0.1:${cport[i]}")
	done
	ETCD_PIDS=()
	for i in 1 2 3; do
		# Durability: etcd fsyncs its WAL and backend by default. The quota
		# is raised and old revisions compacted every 5 minutes, as a
		# production etcd holding this much data would be run.
		etcd --name "e$i" --data-dir "$dir/e$i" \
			--listen-client-urls "http://127.0.0.1:${cport[i]}" --advertise-client-urls "http://127.0.0.1:${cport[i]}" \
			--listen-peer-urls "http://127.0.0.1:${pport[i]}" --initial-advertise-peer-urls "http://127.0.0.1:${pport[i]}" \
			--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$$" \
			--quota-backend-bytes $((8 * 1024 * 1024 * 1024)) \
			--auto-compaction-mode periodic --auto-compaction-retention 5m \
			>"$logs/etcd-$i.log" 2>&1 &
		PIDS+=($!)
		ETCD_PIDS+=($!)
	done
	for u in "${urls[@]}"; do wait_http "http://$u/health" 60; done
	ETCD_ENDPOINTS=$(
		IFS=,
		echo "${urls[*]}"
	)
}

start_shale() { # DIR LOGDIR -> sets PD, TABLET_PIDS
	local dir="$1" logs="$2" i
	local pdc pdp pdh
	pdc=$(free_port)
	pdp=$(free_port)
	pdh=$(free_port)
	"$SHALE" pd --name pd1 --data-dir "$dir/pd1" --client-addr "127.0.0.1:$pdc" --peer-addr "127.0.0.1:$pdp" \
		--http-addr "127.0.0.1:$pdh" --insecure >"$logs/shale-pd.log" 2>&1 &
	PIDS+=($!)
	PD="127.0.0.1:$pdc"
	wait_http "http://127.0.0.1:$pdh/healthz" 60
	TABLET_PIDS=()
	for i in 1 2 3; do
		local a h
		a=$(free_port)
		h=$(free_port)
		# Heartbeats every second (as the playground) so the placement
		# driver balances the new table's leaders during the load.
		"$SHALE" tablet --data-dir "$dir/s$i" --addr "127.0.0.1:$a" --http-addr "127.0.0.1:$h" \
			--pd "$PD" --heartbeat-interval 1s --insecure >"$logs/shale-tablet-$i.log" 2>&1 &
		PIDS+=($!)
		TABLET_PIDS+=($!)
		wait_http "http://127.0.0.1:$h/healthz" 60
	done
	# Serving once the first tablet exists (PD creates it when 3 stores are up).
	local deadline=$((SECONDS + 60))
	until "$SHALE" kv --pd "$PD" --timeout 5s put compare-probe ok >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "Shale cluster not serving after 60 s (logs in $logs)"
		sleep 0.5
	done
}

# ---- benchmark runs ----
# bench SYSTEM PHASE WORKLOAD THREADS: one `shale bench ycsb` run.
bench() {
	local sys="$1" phase="$2" w="$3" t="$4" name limit
	name="t${t}-${sys}-$([[ "$phase" == load ]] && echo load || echo "$w")"
	local args=(bench ycsb "$phase" --workload "$w" --threads "$t" --seed "$SEED"
		-p "recordcount=$RECORDS" -p fieldcount=10 -p fieldlength=100
		--json "$OUT/$name.json")
	if [[ "$phase" == load ]]; then
		args+=(--duration "$LOAD_MAX")
		limit=$(($(secs "$LOAD_MAX") + 120))
	else
		# operationcount=0: run for the whole duration (and keep zipfian's
		# key range at the loaded records, as YCSB does for operationcount 0).
		args+=(-p operationcount=0 --duration "$DURATION")
		limit=$(($(secs "$DURATION") + 120))
	fi
	case "$sys" in
	shale) args+=(--target shale --pd "$PD") ;;
	etcd) args+=(--target etcd --etcd-endpoints "$ETCD_ENDPOINTS") ;;
	esac
	log "$(date +%H:%M:%S) $name"
	echo "bin/shale ${args[*]}" >>"$OUT/commands.txt"
	# In the background and waited for, so a signal to this script is
	# handled at once (cleanup stops the run too).
	timeout --kill-after=10 "$limit" "$SHALE" "${args[@]}" >"$OUT/$name.txt" 2>"$OUT/$name.log" &
	local pid=$! rc=0
	PIDS+=("$pid")
	wait "$pid" || rc=$?
	if ((rc != 0)); then
		tail -3 "$OUT/$name.log" >&2
		# Running workloads on records that were not loaded measures nothing.
		[[ "$phase" == load ]] && die "$name failed (exit $rc, see $OUT/$name.log)"
		log "WARNING: $name exited with $rc (see $OUT/$name.log)"
	fi
	if [[ "$phase" == load ]]; then
		local ok
		ok=$(awk -F', ' '$1 == "[INSERT]" && $2 == "Return=OK" { print $3 }' "$OUT/$name.txt")
		[[ "${ok:-0}" == "$RECORDS" ]] || die "$name loaded ${ok:-0} of $RECORDS records (see $OUT/$name.txt)"
	fi
	grep -E '^\[OVERALL\], Throughput' "$OUT/$name.txt" >&2 || true
}

# profile WORKLOAD THREADS: CPU profile of the first tablet server while the
# Shale side of a workload runs (in the background of that run).
profile_start() {
	[[ "$PROFILE" == 1 ]] || return 0
	local name="t$2-shale-$1" secs_
	secs_=$(($(secs "$DURATION") - 5))
	((secs_ > 5)) || secs_=5
	perf record -F 999 -g -p "${TABLET_PIDS[0]}" -o "$OUT/$name.perf.data" -- sleep "$secs_" >/dev/null 2>&1 &
	PERF_PID=$!
	PIDS+=("$PERF_PID")
}
profile_end() {
	[[ "$PROFILE" == 1 ]] || return 0
	local name="t$2-shale-$1"
	wait "$PERF_PID" 2>/dev/null || true
	# Self time per symbol ([k] kernel, [.] user), and cumulative time
	# (children included) for the call-graph view.
	perf report -i "$OUT/$name.perf.data" --stdio --no-children --sort symbol --percent-limit 0.3 2>/dev/null |
		awk '/^# Samples/ || /^ +[0-9.]+%/ { if ($1 == "#") print; else print $1, $2, $3 }' | head -41 >"$OUT/$name.perf-top.txt" || true
	perf report -i "$OUT/$name.perf.data" --stdio --children --sort symbol --percent-limit 2 2>/dev/null |
		awk '/^ +[0-9.]+%/ { print $1, $2, $3, $4 }' | head -40 >"$OUT/$name.perf-cum.txt" || true
}

# next_order sets ORDER, alternating which system goes first at each step.
round=0
next_order() {
	if ((round % 2 == 0)); then ORDER="shale etcd"; else ORDER="etcd shale"; fi
	round=$((round + 1))
}

rss_kib() { awk '/^'"$2"':/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ---- main ----
{
	echo "started: $(date '+%Y-%m-%d %H:%M:%S %Z')"
	echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "disk: $(df -h "$DATA" | awk 'NR==2 { print $1 " (" $2 ")" }') for both clusters' data"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "shale: $("$SHALE" version)"
	echo "etcd: $(etcd --version | head -1), client go.etcd.io/etcd/client/v3 $(cd "$ROOT" && go list -m -f '{{.Version}}' go.etcd.io/etcd/client/v3)"
	echo "settings: RECORDS=$RECORDS THREADS=\"$THREADS\" WORKLOADS=\"$WORKLOADS\" DURATION=$DURATION SEED=$SEED"
} >"$OUT/machine.txt"
: >"$OUT/commands.txt"
: >"$OUT/rss.txt"

for t in $THREADS; do
	work="$(mktemp -d "$DATA/shale-compare.XXXXXX")"
	WORKDIRS+=("$work")
	mkdir -p "$work/etcd" "$work/shale" "$OUT/logs/t$t"
	log "threads $t: starting clusters in $work (server logs in $OUT/logs/t$t)"
	start_etcd "$work/etcd" "$OUT/logs/t$t"
	start_shale "$work/shale" "$OUT/logs/t$t"

	next_order
	for sys in $ORDER; do bench "$sys" load a "$t"; done
	"$SHALE" ctl --pd "$PD" stores >"$OUT/t$t-shale-stores-after-load.txt" 2>&1 || true
	for w in $WORKLOADS; do
		next_order
		for sys in $ORDER; do
			if [[ "$sys" == shale && ( "$w" == a || "$w" == c ) ]]; then profile_start "$w" "$t"; fi
			bench "$sys" run "$w" "$t"
			if [[ "$sys" == shale && ( "$w" == a || "$w" == c ) ]]; then profile_end "$w" "$t"; fi
		done
	done

	for i in 0 1 2; do
		p="${TABLET_PIDS[i]}"
		echo "t$t shale tablet server $((i + 1)): peak RSS $(($(rss_kib "$p" VmHWM) / 1024)) MiB, now $(($(rss_kib "$p" VmRSS) / 1024)) MiB" >>"$OUT/rss.txt"
	done
	for i in 0 1 2; do
		p="${ETCD_PIDS[i]}"
		echo "t$t etcd member $((i + 1)): peak RSS $(($(rss_kib "$p" VmHWM) / 1024)) MiB, now $(($(rss_kib "$p" VmRSS) / 1024)) MiB" >>"$OUT/rss.txt"
	done
	echo "t$t data after the runs (apparent size; both preallocate log files): shale $(du -sh --apparent-size "$work/shale" | cut -f1), etcd $(du -sh --apparent-size "$work/etcd" | cut -f1)" >>"$OUT/rss.txt"
	log "threads $t: stopping clusters"
	stop_all
done
echo "finished: $(date '+%Y-%m-%d %H:%M:%S %Z'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

# ---- report ----
report="$OUT/report.md"
{
	echo "### YCSB: Shale vs etcd, $(head -1 "$OUT/machine.txt" | cut -d' ' -f2-)"
	echo
	echo '```'
	echo "RECORDS=$RECORDS THREADS=\"$THREADS\" WORKLOADS=\"$WORKLOADS\" DURATION=$DURATION SEED=$SEED bench/compare.sh"
	echo '```'
	echo
	sed 's/^/- /' "$OUT/machine.txt"
	echo
	"$SHALE" bench ycsb compare --base shale "$OUT"/t*-*.json
	echo
	echo "Memory (VmHWM is the peak resident set of the process over the whole section):"
	echo
	sed 's/^/- /' "$OUT/rss.txt"
	if [[ "$PROFILE" == 1 ]]; then
		for f in "$OUT"/*.perf-top.txt; do
			[[ -e "$f" ]] || continue
			echo
			echo "CPU profile of tablet server 1 during $(basename "$f" .perf-top.txt) (perf, self time, top 20):"
			echo
			echo '```'
			head -21 "$f"
			echo '```'
		done
	fi
} >"$report"
cat "$report"
log "results in $OUT (report.md, *.json, *.txt summaries, *.log status lines)"
