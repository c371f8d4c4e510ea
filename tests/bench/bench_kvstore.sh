#!/bin/bash
# kvstore against Debian's redis-server, same machine, same run:
# redis-benchmark -t set,get -P 16 -c 50 -n N -r 100000 against
#   - kvstore in a guest (pvha-vmm --address 127.0.0.1, tcg backend, 256 MiB
#     of RAM, a 1 GiB file disk: every write logged and flushed before its
#     reply, one flush per poll round), and
#   - redis-server with appendonly yes and appendfsync always on a local file
#     (its GET figure is the GET baseline too; persistence does not touch reads).
# With --rados, a third series: kvstore with its disk on RADOS (a Ceph of its
# own from deploy/ceph/pvha-ceph, one memstore OSD, on an address of its own
# in 127.0.0.0/8; needs root and the Ceph packages).
# RUNS rounds (default 5), alternating which server goes first; medians.
# Finds the build through BUILD_DIR (default build). Prints `figure NAME VALUE
# UNIT` lines: kvstore_get_vs_redis_ratio (goal >= 0.5),
# kvstore_set_vs_redis_aof_always_ratio (file disk),
# kvstore_rados_set_vs_redis_aof_always_ratio (--rados), the raw ops/s, and
# each server's CPU time per request (user + system, from /proc: a figure the
# load of a shared machine leaves alone, unlike ops/s).
set -uo pipefail
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${BUILD_DIR:-build}" && pwd)
RADOS=0
[[ ${1:-} == --rados ]] && RADOS=1
RUNS=${RUNS:-5}
N=${N:-200000}
DIR=$(mktemp -d /tmp/pvha-bench-kvstore.XXXXXX)
VMM_PID= REDIS_PID= RVMM_PID=
cleanup() {
	[[ -n $VMM_PID ]] && kill "$VMM_PID" 2>/dev/null
	[[ -n $RVMM_PID ]] && kill "$RVMM_PID" 2>/dev/null
	[[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null
	wait 2>/dev/null
	((RADOS)) && "$SRC/deploy/ceph/pvha-ceph" down "$DIR/ceph" >/dev/null 2>&1
	rm -rf "$DIR"
}
trap cleanup EXIT

for p in redis-server redis-benchmark redis-cli; do
	command -v $p >/dev/null || { echo "bench_kvstore: $p missing (deploy/install-deps)" >&2; exit 1; }
done
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
# A loopback port nothing listens on (ss is in iproute2), below the
# ephemeral range so that no client's connection holds it either.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
	done
}
wait_ping() { # port: until PONG or 60 s
	local end=$((SECONDS + 60))
	until [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; do
		((SECONDS < end)) || {
			echo "bench_kvstore: nothing answers on port $1" >&2
			tail -3 "$DIR"/*.log >&2
			exit 1
		}
		sleep 0.05
	done
}

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$DIR" --save "" --appendonly yes \
	--appendfsync always --daemonize no >"$DIR/redis.log" 2>&1 &
REDIS_PID=$!
KPORT=$(free_port)
"$BUILD/bin/pvha-vmm" --image "$BUILD/guests/kvstore.elf" --mem 256M --backend tcg \
	--disk "file:$DIR/kv.img,size=1G" --address 127.0.0.1 --cmdline "port=$KPORT" \
	>"$DIR/kvstore.log" 2>&1 &
VMM_PID=$!
wait_ping "$RPORT"
wait_ping "$KPORT"
if ((RADOS)); then
	x=$(( ($$ + RANDOM) % 60000 ))
	CADDR=127.$((100 + x / 2500)).$(( (x / 10) % 250 + 1 )).$((x % 10 + 1))
	"$SRC/deploy/ceph/pvha-ceph" up "$DIR/ceph" --addr "$CADDR" --timeout 90 >"$DIR/ceph.log" 2>&1 ||
		{ echo "bench_kvstore: pvha-ceph up failed" >&2; cat "$DIR/ceph.log" >&2; exit 1; }
	KRPORT=$(free_port)
	GID=$(cat /proc/sys/kernel/random/uuid)
	"$BUILD/bin/pvha-vmm" --image "$BUILD/guests/kvstore.elf" --mem 256M --backend tcg --id "$GID" \
		--disk "rados:pvha/$GID,size=1G" --ceph-conf "$DIR/ceph/ceph.conf" \
		--address 127.0.0.1 --cmdline "port=$KRPORT" >"$DIR/kvstore-rados.log" 2>&1 &
	RVMM_PID=$!
	wait_ping "$KRPORT"
fi

# CPU seconds (user + system, all threads) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
# bench PORT PID TEST -> "RPS CPU_US_PER_OP" (the server's CPU per request:
# what the load on a shared machine does not change)
bench() {
	local c0 c1 rps
	c0=$(cpu_s "$2")
	rps=$(redis-benchmark -p "$1" -t "$3" -P 16 -c 50 -n "$N" -r 100000 --csv 2>/dev/null |
		awk -F'"' 'NR > 1 {print $4}')
	c1=$(cpu_s "$2")
	[[ -n $rps ]] || return 1
	echo "$rps $(awk -v a="$c0" -v b="$c1" -v n="$N" 'BEGIN {printf "%.3f", (b - a) * 1e6 / n}')"
}

for f in k r c; do for t in set get; do : >"$DIR/$f.$t"; : >"$DIR/$f.$t.cpu"; done; done
for run in $(seq "$RUNS"); do
	if ((run % 2)); then order="k r"; else order="r k"; fi
	((RADOS)) && order="$order c"
	for who in $order; do
		case $who in
		k) port=$KPORT pid=$VMM_PID ;;
		r) port=$RPORT pid=$REDIS_PID ;;
		c) port=$KRPORT pid=$RVMM_PID ;;
		esac
		for t in set get; do
			read -r rps cpu < <(bench "$port" "$pid" "$t") ||
				{ echo "bench_kvstore: run $run: redis-benchmark -t $t against $who failed" >&2; exit 1; }
			echo "$rps" >>"$DIR/$who.$t"
			echo "$cpu" >>"$DIR/$who.$t.cpu"
			echo "bench_kvstore: run $run $who: $t $rps/s, $cpu us of server CPU per request" >&2
		done
	done
done
kill -0 "$VMM_PID" 2>/dev/null || { echo "bench_kvstore: the kvstore VMM died" >&2; cat "$DIR/kvstore.log" >&2; exit 1; }

ks=$(median <"$DIR/k.set"); kg=$(median <"$DIR/k.get")
rs=$(median <"$DIR/r.set"); rg=$(median <"$DIR/r.get")
kgc=$(median <"$DIR/k.get.cpu"); rgc=$(median <"$DIR/r.get.cpu")
ksc=$(median <"$DIR/k.set.cpu"); rsc=$(median <"$DIR/r.set.cpu")
echo "figure kvstore_set_ops_per_s $ks ops/s"
echo "figure kvstore_get_ops_per_s $kg ops/s"
echo "figure redis_aof_always_set_ops_per_s $rs ops/s"
echo "figure redis_get_ops_per_s $rg ops/s"
awk -v a="$kg" -v b="$rg" 'BEGIN {printf "figure kvstore_get_vs_redis_ratio %.3f ratio\n", a / b}'
awk -v a="$ks" -v b="$rs" 'BEGIN {printf "figure kvstore_set_vs_redis_aof_always_ratio %.3f ratio\n", a / b}'
echo "figure kvstore_get_cpu_per_request $kgc us"
echo "figure redis_get_cpu_per_request $rgc us"
echo "figure kvstore_set_cpu_per_request $ksc us"
echo "figure redis_aof_always_set_cpu_per_request $rsc us"
if ((RADOS)); then
	cs=$(median <"$DIR/c.set"); cg=$(median <"$DIR/c.get")
	echo "figure kvstore_rados_set_ops_per_s $cs ops/s"
	echo "figure kvstore_rados_get_ops_per_s $cg ops/s"
	awk -v a="$cs" -v b="$rs" 'BEGIN {printf "figure kvstore_rados_set_vs_redis_aof_always_ratio %.3f ratio\n", a / b}'
fi
