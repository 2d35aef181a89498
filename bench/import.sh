#!/usr/bin/env bash
# bench/import.sh: bulk import (`shale import`) against the insert path
# (`shale bench ycsb load`) with the same YCSB-shaped rows, on a 3-store
# cluster (`shale playground`: one PD member and three tablet servers in
# one process, each store with its own Pebble and fsync'd raft log).
#
# Steps: start the cluster; generate RECORDS records as CSV with
# bench/importgen (the keys `bench ycsb load` writes, 10 fields x 100
# bytes: about 1.07 KiB per record, 1 GiB at the default); load them with
# `shale bench ycsb load` into usertable_load; import the CSV with
# `shale import` into usertable_import; then import it again into
# usertable_fg while `shale bench ycsb run --workload c` reads
# usertable_load, to see foreground latency during an import. Prints the
# figures (seconds, rows/s, MiB/s of CSV, the import/insert ratio, the
# foreground p99) and leaves every output under OUT.
#
# Usage: bench/import.sh
# Environment (defaults in brackets):
#   RECORDS  records [1000000]      THREADS  load client threads [64]
#   DATA     parent of the work directory [/var/tmp]
#   KEEP_DATA=1 keep the cluster and work directories
# Quick check: RECORDS=20000 bench/import.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RECORDS="${RECORDS:-1000000}"
THREADS="${THREADS:-64}"
DATA="${DATA:-/var/tmp}"
SHALE="$ROOT/bin/shale"
OUT="$(mktemp -d "$DATA/shale-import-bench.XXXXXX")"
PG_PID=""

cleanup() {
	if [[ -n "$PG_PID" ]]; then
		kill "$PG_PID" 2>/dev/null || true
		wait "$PG_PID" 2>/dev/null || true
	fi
	if [[ "${KEEP_DATA:-0}" != 1 ]]; then
		rm -rf "$OUT/cluster" "$OUT/import" "$OUT/import-fg" "$OUT/ycsb.csv"
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
import_into() { # TABLE WORKDIR
	"$SHALE" table --pd "$PD" --timeout 120s create "$1" f:maxversions=1 >/dev/null
	"$SHALE" import --pd "$PD" --table "$1" --raw --header --row-key key --map "$MAP" \
		--work-dir "$2" --progress none "$OUT/ycsb.csv"
}

log "insert path: shale bench ycsb load ($THREADS threads)"
t0=$(now)
"$SHALE" bench ycsb load --target shale --pd "$PD" --workload a --threads "$THREADS" --seed 1 \
	-p "recordcount=$RECORDS" -p fieldcount=10 -p fieldlength=100 -p table=usertable_load \
	--duration 24h --json "$OUT/load.json" >"$OUT/load.txt" 2>"$OUT/load.log"
t1=$(now)

cpu_of() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat"; } # user+system seconds

log "bulk path: shale import"
c1=$(cpu_of "$PG_PID")
TIMEFORMAT='importer CPU: %U s user, %S s system'
time import_into usertable_import "$OUT/import" | tee "$OUT/import.txt"
t2=$(now)
echo "cluster CPU during the import: $(echo "$(cpu_of "$PG_PID") - $c1" | bc) s" | tee -a "$OUT/import.txt"

log "foreground reads (workload c on usertable_load) during a second import"
"$SHALE" bench ycsb run --target shale --pd "$PD" --workload c --threads 16 --seed 1 \
	-p "recordcount=$RECORDS" -p fieldcount=10 -p fieldlength=100 -p table=usertable_load \
	-p operationcount=0 --duration 24h --json "$OUT/fg.json" >"$OUT/fg.txt" 2>"$OUT/fg.log" &
FG=$!
sleep 5
t3=$(now)
import_into usertable_fg "$OUT/import-fg" >"$OUT/import-fg.txt"
t4=$(now)
kill -INT "$FG" 2>/dev/null || true
wait "$FG" 2>/dev/null || true

awk -v n="$RECORDS" -v b="$BYTES" -v l="$(echo "$t1 - $t0" | bc)" -v i="$(echo "$t2 - $t1" | bc)" -v f="$(echo "$t4 - $t3" | bc)" 'BEGIN {
	printf "\n%-28s %10s %12s %10s\n", "", "seconds", "rows/s", "MiB/s"
	printf "%-28s %10.1f %12.0f %10.1f\n", "insert (bench ycsb load)", l, n/l, b/1048576/l
	printf "%-28s %10.1f %12.0f %10.1f\n", "shale import", i, n/i, b/1048576/i
	printf "%-28s %10.1f %12.0f %10.1f\n", "import under read load", f, n/f, b/1048576/f
	printf "import / insert: %.1fx\n", l/i
}'
echo "foreground reads during the import (workload c):"
grep -E "^\[READ\], (Operations|AverageLatency|95thPercentile|99thPercentile)" "$OUT/fg.txt" || true
echo "outputs: $OUT"
