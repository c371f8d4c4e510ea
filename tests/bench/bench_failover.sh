#!/bin/bash
# Failover time: power-off of the node running a guest -> the guest running on
# a survivor, in the lab (3 nodes, token 500 ms, token_coefficient 0, real
# Ceph), split into detection (power-off -> the survivors' node-left event),
# fencing (-> the fenced event) and restart (-> the guest's running event).
# RUNS power-offs (default 5), medians. Needs root; finds the build through
# BUILD_DIR (default build). Prints `figure NAME VALUE UNIT` lines.
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${BUILD_DIR:-build}" && pwd)
LAB=$SRC/deploy/lab/pvha-lab
RUNS=${RUNS:-5}
DIR=$(mktemp -d /tmp/pvha-bench-failover.XXXXXX)
export PVHA_LAB_DIR=$DIR PVHA_BUILD_DIR=$BUILD
trap '"$LAB" down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR"' EXIT

pv() { local n=$1; shift; "$LAB" exec "$n" "$BUILD/bin/pvha" "$@"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

"$LAB" up --dir "$DIR" --nodes 3 --token 500 --token-coefficient 0 >/dev/null || { echo "bench_failover: lab up failed" >&2; exit 1; }
pv n1 guest create g --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M --cmdline interval=50 --start --wait 30 >/dev/null ||
	{ echo "bench_failover: the guest did not start" >&2; exit 1; }

: >"$DIR/det"; : >"$DIR/fence"; : >"$DIR/restart"; : >"$DIR/total"
for run in $(seq "$RUNS"); do
	owner=$(pv n1 --json guest show g 2>/dev/null || pv n2 --json guest show g)
	owner=$(grep -o '"owner":"[^"]*"' <<<"$owner" | cut -d'"' -f4)
	survivor=n1; [[ $owner == n1 ]] && survivor=n2
	last=$(pv "$survivor" --json events | grep -o '"seq":[0-9]*' | tail -1 | cut -d: -f2)
	glast=$(pv "$survivor" --json events --guest g | grep -o '"seq":[0-9]*' | tail -1 | cut -d: -f2)
	t0=$(now_ms)
	"$LAB" poweroff "$owner" >/dev/null
	end=$((SECONDS + 60))
	until pv "$survivor" --json guest show g 2>/dev/null | grep -q '"state":"running","want_running":true,"owner_nodeid":[0-9]*,"owner":"n[0-9]"' &&
		! pv "$survivor" --json guest show g | grep -q "\"owner\":\"$owner\""; do
		((SECONDS < end)) || { echo "bench_failover: run $run: no recovery in 60 s" >&2; exit 1; }
		sleep 0.02
	done
	# the leader appends the running event once it applied the report: wait for it
	end=$((SECONDS + 10))
	until gev=$(pv "$survivor" --json events --guest g --after "${glast:-0}") && [[ $gev == *'"what":"running"'* ]]; do
		((SECONDS < end)) || break
		sleep 0.05
	done
	ev=$(pv "$survivor" --json events --after "${last:-0}")
	left=$(grep -o '{[^}]*"what":"node-left"[^}]*}' <<<"$ev" | head -1 | grep -o '"time_ms":[0-9]*' | cut -d: -f2)
	fenced=$(grep -o '{[^}]*"what":"fenced"[^}]*}' <<<"$ev" | head -1 | grep -o '"time_ms":[0-9]*' | cut -d: -f2)
	running=$(grep -o '{[^}]*"what":"running"[^}]*}' <<<"$gev" | tail -1 | grep -o '"time_ms":[0-9]*' | cut -d: -f2)
	if [[ -z $left || -z $fenced || -z $running ]]; then
		echo "bench_failover: run $run: events missing (left=$left fenced=$fenced running=$running)" >&2
		exit 1
	fi
	echo $((left - t0)) >>"$DIR/det"
	echo $((fenced - left)) >>"$DIR/fence"
	echo $((running - fenced)) >>"$DIR/restart"
	echo $((running - t0)) >>"$DIR/total"
	echo "run $run: $owner off -> detected $((left - t0)) ms, fenced +$((fenced - left)) ms, running +$((running - fenced)) ms" >&2
	"$LAB" boot "$owner" >/dev/null
	# wait until the booted node is a member again before the next run
	end=$((SECONDS + 60))
	until pv "$owner" --json cluster status 2>/dev/null | grep -q '"quorate":true.*"storage_ok":true'; do
		((SECONDS < end)) || { echo "bench_failover: $owner did not come back" >&2; exit 1; }
		sleep 0.1
	done
done
echo "figure failover_detection_ms $(median <"$DIR/det") ms"
echo "figure failover_fencing_ms $(median <"$DIR/fence") ms"
echo "figure failover_restart_ms $(median <"$DIR/restart") ms"
echo "figure failover_total_ms $(median <"$DIR/total") ms"
