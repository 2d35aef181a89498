#!/bin/bash
# Times `shale table create` on a default cluster (1 PD, 3 tablet servers,
# default flags) started in WORKDIR on ports BASEPORT.. (docs/performance.md,
# "Creating a table").
# usage: scripts/table-create-time.sh BINARY WORKDIR BASEPORT
set -u
BIN=$1 W=$2 P=$3
rm -rf "$W" && mkdir -p "$W"
PD=127.0.0.1:$P
pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
"$BIN" pd --data-dir "$W/pd" --client-addr "$PD" --peer-addr 127.0.0.1:$((P+1)) --http-addr 127.0.0.1:$((P+2)) --insecure >"$W/pd.log" 2>&1 &
pids+=($!)
for i in 1 2 3; do
	"$BIN" tablet --data-dir "$W/s$i" --addr 127.0.0.1:$((P+10+i)) --http-addr 127.0.0.1:$((P+20+i)) --pd "$PD" --insecure >"$W/s$i.log" 2>&1 &
	pids+=($!)
done
start=$(date +%s.%N)
until "$BIN" kv --pd "$PD" put ready 1 >/dev/null 2>&1; do sleep 0.5; done
echo "cluster ready after $(echo "$(date +%s.%N) - $start" | bc) s"
sleep 2
splits=(--split b --split d --split f --split h --split j --split l --split n --split p)
timed() {
	local t0 rc
	t0=$(date +%s.%N)
	"$BIN" table --pd "$PD" "$@"
	rc=$?
	echo "rc=$rc $*: $(echo "$(date +%s.%N) - $t0" | bc) s"
}
timed --timeout 300s create T0 cf
timed --timeout 300s create T8 cf "${splits[@]}"
timed create T8d cf "${splits[@]}"
