#!/bin/bash
# A service guest's downtime as its clients see it, in the lab (3 nodes,
# token 500 ms, token_coefficient 0, real Ceph): the kvstore guest at
# 10.99.0.100/24 on a RADOS disk, clients on the host side of the bridge.
#   service_failover_downtime_ms: power-off of the guest's node -> the first
#     PONG at the same address (Debian's redis-cli, one PING every ~10 ms;
#     RUNS power-offs, median; goal <= 2000);
#   service_migration_pause_ms: the longest gap between two replies on ONE
#     connection held through a live migration (bench_conn_client: PING after
#     PING, each reply timestamped; the connection moves with the guest,
#     docs/migration.md "Connections"; RUNS migrations, median; goal <= 50);
#   service_idle_max_gap_ms: the same client's longest gap over as long a
#     window without a migration, in the same run (the machine's own noise);
#   service_migration_errors: failures of that connection (a reset, a close,
#     a wrong reply) over all the migrations (goal 0).
# Needs root; finds the build through BUILD_DIR (default build). Prints
# `figure NAME VALUE UNIT` lines.
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${BUILD_DIR:-build}" && pwd)
LAB=$SRC/deploy/lab/pvha-lab
RUNS=${RUNS:-3}
IP=10.99.0.100
DIR=$(mktemp -d /tmp/pvha-bench-service.XXXXXX)
export PVHA_LAB_DIR=$DIR PVHA_BUILD_DIR=$BUILD
trap 'kill $pinger 2>/dev/null; "$LAB" down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR"' EXIT
pinger=

pv() { local n=$1; shift; "$LAB" exec "$n" "$BUILD/bin/pvha" "$@"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
owner() { pv n1 --json guest show kv 2>/dev/null | grep -o '"owner":"[^"]*"' | cut -d'"' -f4; }
pong() { [[ $(timeout 1 redis-cli -h "$IP" PING 2>/dev/null) == PONG ]]; }

"$LAB" up --dir "$DIR" --nodes 3 --token 500 --token-coefficient 0 >/dev/null || { echo "bench_service: lab up failed" >&2; exit 1; }
pv n1 guest create kv --image "$BUILD/guests/kvstore.elf" --mem 64M --disk 64M --address "$IP/24" --start --wait 60 >/dev/null ||
	{ echo "bench_service: the guest did not start" >&2; exit 1; }

# ---- failover ---------------------------------------------------------------
: >"$DIR/failover"
for run in $(seq "$RUNS"); do
	o=$(owner)
	until pong; do sleep 0.05; done
	t0=$(now_ms)
	"$LAB" poweroff "$o" >/dev/null
	sleep 0.2 # the old copy is gone now: a PONG from here on is the new one's
	end=$((SECONDS + 60))
	until pong; do
		((SECONDS < end)) || { echo "bench_service: run $run: no answer in 60 s" >&2; exit 1; }
		sleep 0.01
	done
	echo $(($(now_ms) - t0)) >>"$DIR/failover"
	"$LAB" boot "$o" >/dev/null
	until pv "$o" --json cluster status 2>/dev/null | grep -q '"quorate":true.*"storage_ok":true'; do sleep 0.1; done
done

# ---- migrations -------------------------------------------------------------
# One connection, every reply timestamped: "gap T_MS GAP_MS" for gaps over
# 5 ms, "err T_MS WHAT" for a failed connection (bench_conn_client.c).
"$BUILD/bench/bench_conn_client" "$IP" 6379 >"$DIR/gaps" &
pinger=$!
# longest_gap FROM_MS TO_MS: the longest gap that ended in the window
longest_gap() { awk -v a="$1" -v b="$2" '$1 == "gap" && $2 >= a && $2 <= b && $3 > g { g = $3 }
	END { printf "%.1f\n", g + 0 }' "$DIR/gaps"; }
: >"$DIR/pause"
: >"$DIR/idle"
for run in $(seq "$RUNS"); do
	o=$(owner)
	to=n1; for n in n1 n2 n3; do [[ $n != "$o" ]] && to=$n && break; done
	# the baseline: as long a window with nothing happening
	t0=$(now_ms)
	sleep 2
	longest_gap "$t0" "$(now_ms)" >>"$DIR/idle"
	t0=$(now_ms)
	pv n1 guest migrate kv "$to" --wait 60 >/dev/null || { echo "bench_service: migration $run failed" >&2; exit 1; }
	sleep 1 # a client's retransmission after the address moved ends a gap in here
	longest_gap "$t0" "$(now_ms)" >>"$DIR/pause"
done
kill "$pinger" 2>/dev/null
wait "$pinger" 2>/dev/null
errors=$(grep -c "^err" "$DIR/gaps")

echo "figure service_failover_downtime_ms $(median <"$DIR/failover") ms"
echo "figure service_migration_pause_ms $(median <"$DIR/pause") ms"
echo "figure service_idle_max_gap_ms $(median <"$DIR/idle") ms"
echo "figure service_migration_errors $errors count"
