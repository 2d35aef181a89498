#!/usr/bin/env bash
# bench/ab.sh: one YCSB workload against two variants of a cluster, side by
# side in one run (the order alternates between rounds so machine noise
# hits both), and the ratio of their summed throughput.
#
# Each run starts a fresh `shale playground` (1 PD, 3 tablet servers, in one
# process) with the variant's playground flags, loads RECORDS records,
# runs WORKLOAD for DURATION with the variant's run flags, and keeps the
# YCSB summary. In a run's flags @TLS@ stands for root's client TLS flags
# of a `--secure` playground. With COUNTERS set (a regexp of metric names,
# insecure playgrounds only), each tablet server's matching counters are
# printed after each run (e.g. who served the reads).
#
# Examples (docs/performance.md has the figures):
#   A_NAME=no-checks B_NAME=checks-5s B_RUN="--check-every 5s" bench/ab.sh
#   WORKLOAD=c B_NAME=stale-5s B_RUN="-p shale.readstaleness=5s" \
#     COUNTERS='shale_store_(follower_)?reads_total' bench/ab.sh
#   WORKLOAD=a B_NAME=tls B_PLAY=--secure B_RUN=@TLS@ bench/ab.sh
#
# Environment (defaults in brackets): WORKLOAD [a], RECORDS [20000],
# THREADS [16], DURATION [30s], ROUNDS [2], BASE_PORT [27300],
# A_NAME [a], A_PLAY, A_RUN, B_NAME [b], B_PLAY, B_RUN, COUNTERS,
# OUT [bench/results/ab-<date>].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHALE="${ROOT}/bin/shale"
WORKLOAD="${WORKLOAD:-a}"
RECORDS="${RECORDS:-20000}"
THREADS="${THREADS:-16}"
DURATION="${DURATION:-30s}"
ROUNDS="${ROUNDS:-2}"
BASE="${BASE_PORT:-27300}"
A_NAME="${A_NAME:-a}" B_NAME="${B_NAME:-b}"
A_PLAY="${A_PLAY:-}" B_PLAY="${B_PLAY:-}" A_RUN="${A_RUN:-}" B_RUN="${B_RUN:-}"
COUNTERS="${COUNTERS:-}"
OUT="${OUT:-${ROOT}/bench/results/ab-$(date -u +%Y%m%d-%H%M%S)}"
PD="127.0.0.1:${BASE}"
# Playground layout (cmd/shale/playground.go): PD client, peer, HTTP, then
# (gRPC, HTTP) per tablet server.
STORE_HTTP=($((BASE + 4)) $((BASE + 6)) $((BASE + 8)))

[[ -x "$SHALE" ]] || { echo "ab: build bin/shale first (make build)" >&2; exit 1; }
[[ "$A_NAME" != "$B_NAME" ]] || { echo "ab: A_NAME and B_NAME must differ" >&2; exit 1; }
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

run_one() { # name playground-flags run-flags round
	local name="$1" play_flags="$2" run_flags="$3" round="$4" dir tls=""
	dir="$(mktemp -d "${TMPDIR:-/var/tmp}/shale-ab-XXXXXX")"
	# shellcheck disable=SC2086 # the flags are words
	"$SHALE" playground --data-dir "$dir/data" --base-port "$BASE" $play_flags >"$dir/playground.out" 2>&1 &
	local play=$!
	pids+=("$play")
	for _ in $(seq 1 240); do
		grep -q '^data:' "$dir/playground.out" 2>/dev/null && break
		kill -0 "$play" 2>/dev/null || { cat "$dir/playground.out" >&2; exit 1; }
		sleep 0.5 # polling the playground's output for its ready line
	done
	if [[ -d "$dir/data/certs" ]]; then
		local c="$dir/data/certs"
		tls="--tls-ca $c/ca.crt --tls-cert $c/client.root.crt --tls-key $c/client.root.key"
	fi
	local load_flags="" flags="${run_flags//@TLS@/$tls}"
	[[ "$run_flags" == *@TLS@* ]] && load_flags="$tls"
	# shellcheck disable=SC2086
	"$SHALE" bench ycsb load --workload "$WORKLOAD" --target shale --pd "$PD" $load_flags \
		-p recordcount="$RECORDS" --threads "$THREADS" >"$OUT/load-$name-$round.txt" 2>"$OUT/load-$name-$round.err"
	# shellcheck disable=SC2086
	"$SHALE" bench ycsb run --workload "$WORKLOAD" --target shale --pd "$PD" $flags \
		-p recordcount="$RECORDS" -p operationcount=0 --duration "$DURATION" --threads "$THREADS" \
		>"$OUT/run-$name-$round.txt" 2>"$OUT/run-$name-$round.err"
	if [[ -n "$COUNTERS" ]]; then
		for p in "${STORE_HTTP[@]}"; do
			curl -s "http://127.0.0.1:${p}/metrics" | grep -E "^(${COUNTERS})( |\{)" | sed "s/^/store :${p} /" || true
		done >"$OUT/counters-$name-$round.txt"
	fi
	kill "$play" 2>/dev/null || true
	wait "$play" 2>/dev/null || true
	rm -rf "$dir"
}

field() { awk -F', ' -v s="$2" -v k="$3" '$1 == s && $2 == k { print $3 }' "$1"; }

for round in $(seq 1 "$ROUNDS"); do
	if ((round % 2)); then order=(A B); else order=(B A); fi
	for v in "${order[@]}"; do
		name="${v}_NAME" play="${v}_PLAY" run="${v}_RUN"
		echo "ab: round $round, ${!name}" >&2
		run_one "${!name}" "${!play}" "${!run}" "$round"
	done
done

# The second latency column: the workload's other operation.
case "$WORKLOAD" in
a | b) op=UPDATE ;;
d) op=INSERT ;;
e) op=SCAN ;;
f) op=READ-MODIFY-WRITE ;;
*) op=READ ;; # c: reads only; the column repeats read p99
esac
printf '| run | variant | ops/s | read p99 (us) | %s p99 (us) |\n| --- | --- | --- | --- | --- |\n' "${op,,}"
declare -A total
for round in $(seq 1 "$ROUNDS"); do
	for name in "$A_NAME" "$B_NAME"; do
		f="$OUT/run-$name-$round.txt"
		ops="$(field "$f" '[OVERALL]' 'Throughput(ops/sec)')"
		total[$name]="$(awk -v a="${total[$name]:-0}" -v b="${ops:-0}" 'BEGIN { print a + b }')"
		printf '| %s | %s | %.0f | %s | %s |\n' "$round" "$name" "${ops:-0}" \
			"$(field "$f" '[READ]' '99thPercentileLatency(us)')" "$(field "$f" "[$op]" '99thPercentileLatency(us)')"
	done
done
awk -v a="${total[$A_NAME]}" -v b="${total[$B_NAME]}" -v an="$A_NAME" -v bn="$B_NAME" \
	'BEGIN { if (a > 0) printf "\nthroughput %s / %s: %.3f (%+.1f%%)\n", bn, an, b / a, (b / a - 1) * 100 }'
if [[ -n "$COUNTERS" ]]; then
	echo
	for f in "$OUT"/counters-*.txt; do echo "== $(basename "$f" .txt)"; cat "$f"; done
fi
echo "outputs: $OUT" >&2
