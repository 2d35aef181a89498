#!/usr/bin/env bash
# bench/backup.sh: `shale backup` and `shale restore` of the bench/import.sh
# dataset (YCSB-shaped rows, 1 GiB of CSV at the default) on a 3-store
# cluster (`shale playground`), against `shale import` of the same data.
#
# Steps: start the cluster; generate RECORDS records with bench/importgen;
# import them into usertable with `shale import` (timed: the baseline);
# run `shale bench ycsb run --workload c` on usertable for a quiet minute
# (FG_QUIET seconds) and then during a full `shale backup` to file:// (the
# foreground p99 with and without the backup); `shale backup verify`; then
# `shale restore --table usertable --as usertable_restored` (timed). Prints
# seconds and MiB/s (of CSV, and of backup files) for import, backup and
# restore, the restore/import ratio, and the foreground read latency during
# the backup; leaves every output under OUT.
#
# Usage: bench/backup.sh
# Environment (defaults in brackets):
#   RECORDS  records [1000000]       DATA  parent of the work dirs [/var/tmp]
#   FG_QUIET seconds of foreground reads without a backup [30]
#   KEEP_DATA=1 keep the cluster, the backup and the work directories
# Quick check: RECORDS=20000 FG_QUIET=5 bench/backup.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-1000000}"
DATA="${DATA:-/var/tmp}"
FG_QUIET="${FG_QUIET:-30}"
SHALE="$ROOT/bin/shale"
OUT="$(mktemp -d "$DATA/shale-backup-bench.XXXXXX")"
PG_PID=""
FG=""

cleanup() {
	for p in "$FG" "$PG_PID"; do
		if [[ -n "$p" ]]; then
			kill "$p" 2>/dev/null || true
			wait "$p" 2>/dev/null || true
		fi
	done
	if [[ "${KEEP_DATA:-0}" != 1 ]]; then
		rm -rf "$OUT/cluster" "$OUT/import" "$OUT/backup" "$OUT/restore" "$OUT/ycsb.csv"
	fi
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
log() { echo "== $*" >&2; }

log "building bin/shale"
make -C "$ROOT" -s build

log "starting a 3-store cluster in $OUT/cluster"
"$SHALE" playground --stores 3 --data-dir "$OUT/cluster" >"$OUT/playground.out" 2>"$OUT/playground.log" &
PG_PID=$!
for _ in $(seq 1 240); do
	PD="$(sed -n 's/^pd: //p' "$OUT/playground.out" 2>/dev/null || true)"
	[[ -n "$PD" ]] && break
	kill -0 "$PG_PID" 2>/dev/null || { tail "$OUT/playground.log" >&2; exit 1; }
	sleep 0.5
done
[[ -n "$PD" ]] || { echo "cluster did not start" >&2; exit 1; }

log "generating $RECORDS records"
(cd "$ROOT" && go run ./bench/importgen -records "$RECORDS") >"$OUT/ycsb.csv"
BYTES=$(stat -c %s "$OUT/ycsb.csv")
MAP=$(for i in $(seq 0 9); do printf 'field%d=f:field%d,' "$i" "$i"; done)
MAP=${MAP%,}

log "baseline: shale import into usertable"
"$SHALE" table --pd "$PD" --timeout 120s create usertable f:maxversions=1 >/dev/null
t0=$(now)
"$SHALE" import --pd "$PD" --table usertable --raw --header --row-key key --map "$MAP" \
	--work-dir "$OUT/import" --progress none "$OUT/ycsb.csv" | tee "$OUT/import.txt"
t1=$(now)

fg_run() { # NAME SECONDS|-  (-: until killed; run it with & so that exec makes $! the reader itself)
	local dur="24h" run=""
	[[ "$2" != "-" ]] && dur="${2}s"
	# Backgrounded, fg_run is a subshell: exec replaces it, so the kill
	# below reaches the reader rather than a shell that waits for it.
	[[ "$2" == "-" ]] && run=exec
	$run "$SHALE" bench ycsb run --target shale --pd "$PD" --workload c --threads 16 --seed 1 \
		-p "recordcount=$RECORDS" -p fieldcount=10 -p fieldlength=100 -p table=usertable \
		-p operationcount=0 --duration "$dur" --json "$OUT/$1.json" >"$OUT/$1.txt" 2>"$OUT/$1.log"
}

log "foreground reads without a backup ($FG_QUIET s)"
fg_run fg-quiet "$FG_QUIET"

log "shale backup under foreground reads"
fg_run fg-backup - &
FG=$!
sleep 5
t2=$(now)
"$SHALE" backup --pd "$PD" --to "file://$OUT/backup" --table usertable --progress none | tee "$OUT/backup.txt"
t3=$(now)
kill -INT "$FG" 2>/dev/null || true
wait "$FG" 2>/dev/null || true
FG=""
BACKUP_BYTES=$(du -sb "$OUT/backup" | cut -f1)

log "shale backup verify"
"$SHALE" backup verify "file://$OUT/backup" | tee "$OUT/verify.txt"

log "shale restore into usertable_restored"
t4=$(now)
"$SHALE" restore --pd "$PD" --from "file://$OUT/backup" --table usertable --as usertable_restored \
	--work-dir "$OUT/restore" --progress none | tee "$OUT/restore.txt"
t5=$(now)

awk -v n="$RECORDS" -v b="$BYTES" -v bb="$BACKUP_BYTES" -v i="$(echo "$t1 - $t0" | bc)" -v k="$(echo "$t3 - $t2" | bc)" -v r="$(echo "$t5 - $t4" | bc)" 'BEGIN {
	printf "\n%-22s %10s %12s %14s %16s\n", "", "seconds", "rows/s", "MiB/s of CSV", "MiB/s of backup"
	printf "%-22s %10.1f %12.0f %14.1f %16s\n", "shale import", i, n/i, b/1048576/i, "-"
	printf "%-22s %10.1f %12.0f %14.1f %16.1f\n", "shale backup", k, n/k, b/1048576/k, bb/1048576/k
	printf "%-22s %10.1f %12.0f %14.1f %16.1f\n", "shale restore", r, n/r, b/1048576/r, bb/1048576/r
	printf "backup size: %.1f MiB; restore / import time: %.2f (<= 1 is the goal)\n", bb/1048576, r/i
}'
for f in fg-quiet fg-backup; do
	echo "foreground reads, $f (workload c):"
	grep -E "^\[READ\], (Operations|AverageLatency|95thPercentile|99thPercentile)" "$OUT/$f.txt" || true
done
echo "outputs: $OUT"
