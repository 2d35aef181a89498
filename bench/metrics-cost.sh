#!/usr/bin/env bash
# bench/metrics-cost.sh: what metrics collection costs, YCSB A with
# collection on against the same binary with SHALE_METRICS=off.
#
# For each round, for each mode (the order alternates between rounds so
# machine noise hits both): starts a fresh `shale playground` (1 PD, 3
# tablet servers, in one process) in that mode, scrapes every server's
# /metrics every SCRAPE seconds (as Prometheus would; in both modes),
# loads RECORDS records and runs workload A for DURATION, and keeps the
# YCSB summary. It prints throughput and update/read p99 per run and the
# on/off ratio of the summed throughput.
#
# Environment (defaults in brackets): RECORDS [20000], THREADS [16],
# DURATION [30s], ROUNDS [2], SCRAPE [5], BASE_PORT [27100],
# OUT [bench/results/metrics-cost-<date>].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHALE="${ROOT}/bin/shale"
RECORDS="${RECORDS:-20000}"
THREADS="${THREADS:-16}"
DURATION="${DURATION:-30s}"
ROUNDS="${ROUNDS:-2}"
SCRAPE="${SCRAPE:-5}"
BASE="${BASE_PORT:-27100}"
OUT="${OUT:-${ROOT}/bench/results/metrics-cost-$(date -u +%Y%m%d-%H%M%S)}"
PD="127.0.0.1:${BASE}"
# Playground layout (cmd/shale/playground.go): PD client, peer, HTTP, then
# (gRPC, HTTP) per tablet server.
HTTP_PORTS=($((BASE + 2)) $((BASE + 4)) $((BASE + 6)) $((BASE + 8)))

[[ -x "$SHALE" ]] || { echo "metrics-cost: build bin/shale first (make build)" >&2; exit 1; }
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

run_one() { # mode round
	local mode="$1" round="$2" dir
	dir="$(mktemp -d "${TMPDIR:-/var/tmp}/shale-metrics-cost-XXXXXX")"
	SHALE_METRICS="$mode" "$SHALE" playground --data-dir "$dir/data" --base-port "$BASE" >"$dir/playground.out" 2>&1 &
	local play=$!
	pids+=("$play")
	for _ in $(seq 1 240); do
		grep -q '^data:' "$dir/playground.out" 2>/dev/null && break
		kill -0 "$play" 2>/dev/null || { cat "$dir/playground.out" >&2; exit 1; }
		sleep 0.5 # polling the playground's output for its ready line
	done
	(while kill -0 "$play" 2>/dev/null; do
		for p in "${HTTP_PORTS[@]}"; do curl -s -o /dev/null "http://127.0.0.1:${p}/metrics" || true; done
		sleep "$SCRAPE" # the scrape interval
	done) &
	local scraper=$!
	pids+=("$scraper")
	SHALE_METRICS="$mode" "$SHALE" bench ycsb load --workload a --target shale --pd "$PD" \
		-p recordcount="$RECORDS" --threads "$THREADS" >"$OUT/load-$mode-$round.txt" 2>/dev/null
	SHALE_METRICS="$mode" "$SHALE" bench ycsb run --workload a --target shale --pd "$PD" \
		-p recordcount="$RECORDS" -p operationcount=0 --duration "$DURATION" --threads "$THREADS" \
		>"$OUT/a-$mode-$round.txt" 2>/dev/null
	kill "$play" "$scraper" 2>/dev/null || true
	wait "$play" "$scraper" 2>/dev/null || true
	rm -rf "$dir"
}

field() { awk -F', ' -v s="$2" -v k="$3" '$1 == s && $2 == k { print $3 }' "$1"; }

for round in $(seq 1 "$ROUNDS"); do
	if ((round % 2)); then modes=(on off); else modes=(off on); fi
	for mode in "${modes[@]}"; do
		echo "metrics-cost: round $round, metrics $mode" >&2
		run_one "$mode" "$round"
	done
done

printf '| run | metrics | ops/s | read p99 (us) | update p99 (us) |\n| --- | --- | --- | --- | --- |\n'
declare -A total
for round in $(seq 1 "$ROUNDS"); do
	for mode in on off; do
		f="$OUT/a-$mode-$round.txt"
		ops="$(field "$f" '[OVERALL]' 'Throughput(ops/sec)')"
		total[$mode]="$(awk -v a="${total[$mode]:-0}" -v b="$ops" 'BEGIN { print a + b }')"
		printf '| %s | %s | %.0f | %s | %s |\n' "$round" "$mode" "$ops" \
			"$(field "$f" '[READ]' '99thPercentileLatency(us)')" "$(field "$f" '[UPDATE]' '99thPercentileLatency(us)')"
	done
done
awk -v on="${total[on]}" -v off="${total[off]}" 'BEGIN { printf "\nthroughput with metrics on / off: %.3f (cost %.1f%%)\n", on / off, (1 - on / off) * 100 }'
