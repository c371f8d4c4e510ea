#!/bin/bash
# A service guest's downtime as its clients see it, in the lab (3 nodes,
# token 500 ms, token_coefficient 0, real Ceph): the kvstore guest at
# 10.99.0.100/24 on a RADOS disk, Debian's redis-cli on the host side of the
# bridge sending one PING every ~10 ms.
#   service_failover_downtime_ms: power-off of the guest's node -> the first
#     PONG at the same address (RUNS power-offs, median; goal <= 2000);
#   service_migration_pause_ms: the longest gap between two PONGs while the
#     guest is live-migrated (RUNS migrations, median; goal <= 50);
#   service_migration_errors: PINGs that failed during those migrations (a
#     new connection each: established connections are reset by a
#     migration until TCP_REPAIR carries them, docs/network.md; goal 0).
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
# The pinger: one line per PING, "ms ok|err".
(
	while :; do
		if pong; then echo "$(now_ms) ok"; else echo "$(now_ms) err"; fi
		sleep 0.01
	done
) >"$DIR/pings" &
pinger=$!
: >"$DIR/pause"
errors=0
for run in $(seq "$RUNS"); do
	o=$(owner)
	to=n1; for n in n1 n2 n3; do [[ $n != "$o" ]] && to=$n && break; done
	t0=$(now_ms)
	pv n1 guest migrate kv "$to" --wait 60 >/dev/null || { echo "bench_service: migration $run failed" >&2; exit 1; }
	sleep 0.3
	t1=$(now_ms)
	# the longest gap between two good replies in [t0, t1], and the errors
	read -r gap errs < <(awk -v a="$t0" -v b="$t1" '$1 >= a && $1 <= b {
		if ($2 == "ok") { if (last && $1 - last > gap) gap = $1 - last; last = $1 } else errs++ }
		END { print gap + 0, errs + 0 }' "$DIR/pings")
	echo "$gap" >>"$DIR/pause"
	errors=$((errors + errs))
done
kill "$pinger" 2>/dev/null
wait "$pinger" 2>/dev/null

echo "figure service_failover_downtime_ms $(median <"$DIR/failover") ms"
echo "figure service_migration_pause_ms $(median <"$DIR/pause") ms"
echo "figure service_migration_errors $errors count"
