#!/usr/bin/env bash
# bench/sysbench.sh: sysbench's OLTP read workloads against the SQL layer
# over the MySQL protocol, on a 3-store cluster (`shale playground`: one PD
# member and three tablet servers in one process, its mysql: endpoint).
#
# Steps: build bin/shale; start the cluster; `sysbench oltp_read_only
# prepare` (table sbtest1, TABLE_SIZE rows, --auto_inc=off
# --create_secondary=off: sql-lite has neither, see docs/sql.md); run
# oltp_point_select and oltp_read_only for TIME seconds each at THREADS
# threads with server-side prepared statements (sysbench's default); for
# comparison, the same point reads through the key-value API with `shale
# bench ycsb run --workload c` (one 200-byte field per record, about an
# sbtest row; uniform keys, as sysbench's). Prints tps, qps, average and
# p95 latency per workload and leaves every output under OUT.
#
# Usage: bench/sysbench.sh
# Environment (defaults in brackets):
#   TABLE_SIZE  rows of sbtest1 [100000]   TIME     seconds per run [60]
#   THREADS     client threads [16]        YCSB=0   skip the YCSB comparison
#   DATA        parent of the work directory [/var/tmp]
#   KEEP_DATA=1 keep the cluster directory
# Quick check: TABLE_SIZE=1000 TIME=3 bench/sysbench.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TABLE_SIZE="${TABLE_SIZE:-100000}"
TIME="${TIME:-60}"
THREADS="${THREADS:-16}"
YCSB="${YCSB:-1}"
DATA="${DATA:-/var/tmp}"
SHALE="$ROOT/bin/shale"
OUT="$(mktemp -d "$DATA/shale-sysbench.XXXXXX")"
PG_PID=""

command -v sysbench >/dev/null || { echo "sysbench is not installed (Debian package sysbench; scripts/install-tools.sh ci)" >&2; exit 1; }

cleanup() {
	if [[ -n "$PG_PID" ]]; then
		kill "$PG_PID" 2>/dev/null || true
		wait "$PG_PID" 2>/dev/null || true
	fi
	if [[ "${KEEP_DATA:-0}" != 1 ]]; then
		rm -rf "$OUT/cluster"
	fi
}
trap cleanup EXIT INT TERM

log() { echo "== $*" >&2; }

log "building bin/shale"
make -C "$ROOT" -s build

log "starting a 3-store cluster in $OUT/cluster"
"$SHALE" playground --stores 3 --data-dir "$OUT/cluster" >"$OUT/playground.out" 2>"$OUT/playground.log" &
PG_PID=$!
MYSQL=""
for _ in $(seq 1 240); do
	MYSQL="$(sed -n 's/^mysql: \([^ ]*\).*/\1/p' "$OUT/playground.out" 2>/dev/null || true)"
	[[ -n "$MYSQL" ]] && break
	kill -0 "$PG_PID" 2>/dev/null || { tail "$OUT/playground.log" >&2; exit 1; }
	sleep 0.5
done
[[ -n "$MYSQL" ]] || { echo "cluster did not start (no mysql: line in $OUT/playground.out)" >&2; exit 1; }
PD="$(sed -n 's/^pd: //p' "$OUT/playground.out")"

SB=(--db-driver=mysql --mysql-host="${MYSQL%:*}" --mysql-port="${MYSQL##*:}" --mysql-user=root
	--mysql-password= --mysql-db=shale --tables=1 --table-size="$TABLE_SIZE" --auto_inc=off
	--create_secondary=off)

log "sysbench prepare: $TABLE_SIZE rows"
sysbench oltp_read_only "${SB[@]}" prepare >"$OUT/prepare.txt" 2>&1 || { cat "$OUT/prepare.txt" >&2; exit 1; }

for w in oltp_point_select oltp_read_only; do
	log "sysbench $w: $THREADS threads, ${TIME}s"
	sysbench "$w" "${SB[@]}" --threads="$THREADS" --time="$TIME" --report-interval=0 run >"$OUT/$w.txt" 2>&1 ||
		{ cat "$OUT/$w.txt" >&2; exit 1; }
done

if [[ "$YCSB" == 1 ]]; then
	log "shale bench ycsb workload c (key-value point reads): $THREADS threads, ${TIME}s"
	YP=(--target shale --pd "$PD" --workload c --threads "$THREADS" --seed 1
		-p "recordcount=$TABLE_SIZE" -p fieldcount=1 -p fieldlength=200 -p requestdistribution=uniform
		-p table=usertable_sysbench)
	"$SHALE" bench ycsb load "${YP[@]}" --duration 24h >"$OUT/ycsb-load.txt" 2>"$OUT/ycsb-load.log"
	"$SHALE" bench ycsb run "${YP[@]}" -p operationcount=0 --duration "${TIME}s" >"$OUT/ycsb-c.txt" 2>"$OUT/ycsb-c.log"
fi

# sysbench's report: "transactions:  N  (X per sec.)", "queries: N (Y per
# sec.)", "avg: ms", "95th percentile: ms".
sb_row() { # WORKLOAD
	awk -v w="$1" '
		/transactions:/ { tps = $3; sub(/\(/, "", tps) }
		/queries:/ && !/performed/ { qps = $3; sub(/\(/, "", qps) }
		/^ *avg:/ { avg = $2 }
		/95th percentile:/ { p95 = $3 }
		END { printf "%-28s %10s %10s %10s %10s\n", w, tps, qps, avg, p95 }' "$OUT/$1.txt"
}
printf "\n%-28s %10s %10s %10s %10s\n" "" "tps" "qps" "avg ms" "p95 ms"
sb_row oltp_point_select
sb_row oltp_read_only
if [[ "$YCSB" == 1 ]]; then
	# The YCSB report: "[OVERALL], Throughput(ops/sec), X", "[READ],
	# AverageLatency(us), Y", "[READ], 95thPercentileLatency(us), Z".
	awk -F', ' '
		/^\[OVERALL\], Throughput/ { ops = $3 }
		/^\[READ\], AverageLatency/ { avg = $3 / 1000 }
		/^\[READ\], 95thPercentileLatency/ { p95 = $3 / 1000 }
		END { printf "%-28s %10.0f %10.0f %10.2f %10.2f\n", "ycsb c (kv point reads)", ops, ops, avg, p95 }' "$OUT/ycsb-c.txt"
fi
echo "outputs: $OUT"
