#!/usr/bin/env bash
# bench/overload.sh: goodput of one overloaded tablet server (issue 22).
#
# Starts a `shale playground --stores 1` (admission control on unless
# ADMISSION=off), loads RECORDS YCSB records, then runs YCSB A from a
# separate client process (`shale bench ycsb run`) at each of LOW (the
# peak: concurrencies the store can take) and HIGH (256 threads) in
# alternating rounds, so the machine's drift hits both. It prints each
# run's successful operations per second (goodput) and errors, and the
# ratio of HIGH's summed goodput to the best LOW's. The issue's bar: 256
# clients get ServerBusy with backoff, not timeouts, and goodput stays at
# 90 % or more of the peak.
#
# Usage: bench/overload.sh
# Environment (defaults in brackets): RECORDS [20000]  DURATION [20s]
#   ROUNDS [2]  LOW ["16 32"]  HIGH [256]  ADMISSION [on]  DATA [/var/tmp]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-20000}"
DURATION="${DURATION:-20s}"
ROUNDS="${ROUNDS:-2}"
LOW="${LOW:-16 32}"
HIGH="${HIGH:-256}"
ADMISSION="${ADMISSION:-on}"
DATA="${DATA:-/var/tmp}"
SHALE="$ROOT/bin/shale"
OUT="$(mktemp -d "$DATA/shale-overload-bench.XXXXXX")"
PG_PID=""

cleanup() {
	if [[ -n "$PG_PID" ]]; then
		kill "$PG_PID" 2>/dev/null || true
		wait "$PG_PID" 2>/dev/null || true
	fi
	rm -rf "$OUT/cluster"
}
trap cleanup EXIT INT TERM
log() { echo "== $*" >&2; }

log "building bin/shale"
(cd "$ROOT" && make --no-print-directory build >/dev/null)

"$SHALE" playground --stores 1 --admission "$ADMISSION" --data-dir "$OUT/cluster" \
	>"$OUT/playground.out" 2>"$OUT/playground.log" &
PG_PID=$!
PD=""
for _ in $(seq 1 240); do
	PD="$(sed -n 's/^pd: //p' "$OUT/playground.out" 2>/dev/null || true)"
	[[ -n "$PD" ]] && break
	kill -0 "$PG_PID" 2>/dev/null || { tail "$OUT/playground.log" >&2; exit 1; }
	sleep 0.5 # polling the playground's output for its ready line
done
[[ -n "$PD" ]] || { echo "overload: the cluster did not start" >&2; exit 1; }

flags=(--target shale --pd "$PD" --workload a --seed 1 -p "recordcount=$RECORDS")
log "loading $RECORDS records"
"$SHALE" bench ycsb load "${flags[@]}" --threads 16 >"$OUT/load.txt" 2>"$OUT/load.log"

ok_ops() { # FILE: successful operations in a YCSB summary
	awk -F', ' '/Return=OK/ { n += $3 } END { print n + 0 }' "$1"
}
err_ops() { # FILE: failed operations, by return code
	awk -F', ' '/Return=/ && !/Return=OK/ { printf "%s%s %s", sep, $2, $3; sep = "; " } END { print "" }' "$1"
}

printf "%-6s %-8s %12s  %s\n" round threads "ok ops/s" errors | tee "$OUT/summary.txt"
declare -A sum
secs="${DURATION%s}"
for r in $(seq 1 "$ROUNDS"); do
	for n in $LOW $HIGH; do
		f="$OUT/run-$r-$n.txt"
		"$SHALE" bench ycsb run "${flags[@]}" --threads "$n" -p operationcount=0 --duration "$DURATION" >"$f" 2>"$OUT/run-$r-$n.log"
		ok=$(ok_ops "$f")
		sum[$n]=$(( ${sum[$n]:-0} + ok ))
		printf "%-6s %-8s %12.0f  %s\n" "$r" "$n" "$(echo "$ok / $secs" | bc -l)" "$(err_ops "$f")" | tee -a "$OUT/summary.txt"
	done
done
peak=0
for n in $LOW; do (( sum[$n] > peak )) && peak=${sum[$n]}; done
printf "goodput at %s threads / peak: %.3f (admission %s)\n" "$HIGH" "$(echo "${sum[$HIGH]} / $peak" | bc -l)" "$ADMISSION" | tee -a "$OUT/summary.txt"
echo "outputs: $OUT"
