#!/bin/bash
# The pause a client sees on ONE connection held through live migrations of
# a service guest, on one host without a cluster: kvstore under pvha-vmm at
# 127.0.0.1 (file disk, tcg), migrated back and forth between two pvha-vmm
# processes over loopback, bench_conn_client sending PING after PING and
# timestamping each reply (the connection moves with the guest, TCP_REPAIR,
# docs/migration.md "Connections").
#   service_migration_pause_loopback_ms: the longest gap between two replies
#     during a migration (RUNS migrations, median; goal <= 50);
#   service_idle_max_gap_loopback_ms: the same client's longest gap over a
#     window of the same length without a migration, in the same run (the
#     machine's own noise), median;
#   service_migration_errors_loopback: failures of the connection (goal 0).
# Needs root (TCP_REPAIR, nftables); finds the build through BUILD_DIR
# (default build); SANDBOX=off runs the VMMs with --sandbox off (their
# privileged steps in-process; default on: through their privileged
# helper and nft runner). Prints `figure NAME VALUE UNIT` lines.
set -uo pipefail
BUILD=$(cd "${BUILD_DIR:-build}" && pwd)
RUNS=${RUNS:-7}
SANDBOX=${SANDBOX:-on}
DIR=$(mktemp -d /tmp/pvha-bench-conn.XXXXXX)
PORT=$((20000 + $$ % 20000))
declare -a vmm=()
client=
trap 'kill $client "${vmm[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT

now_ms() { local t=${EPOCHREALTIME/./}; echo $((10#$t / 1000)); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
vstatus() { "$BUILD/bin/pvha" vmm "$1" status 2>/dev/null; }
longest_gap() { awk -v a="$1" -v b="$2" '$1 == "gap" && $2 >= a && $2 <= b && $3 > g { g = $3 }
	END { printf "%.1f\n", g + 0 }' "$DIR/gaps"; }

spec="file:$DIR/disk,size=16M"
# every migration is authenticated: one key for the targets and the requests
(umask 077 && head -c 32 /dev/urandom >"$DIR/mig.key")
"$BUILD/bin/pvha-vmm" --sandbox "$SANDBOX" --image "$BUILD/guests/kvstore.elf" --mem 64M --backend tcg --disk "$spec" \
	--address 127.0.0.1 --cmdline "port=$PORT" --control "$DIR/0.sock" >"$DIR/0.out" 2>&1 &
vmm[0]=$!
end=$((SECONDS + 60))
until grep -q "kvstore: listening" "$DIR/0.out" 2>/dev/null; do
	((SECONDS < end)) || { echo "bench_conn_migrate: kvstore did not start" >&2; exit 1; }
	sleep 0.05
done
"$BUILD/bench/bench_conn_client" 127.0.0.1 "$PORT" >"$DIR/gaps" &
client=$!
: >"$DIR/pause"
: >"$DIR/idle"
cur=0
for run in $(seq "$RUNS"); do
	nxt=$((1 - cur))
	rm -f "$DIR/$nxt.sock"
	"$BUILD/bin/pvha-vmm" --sandbox "$SANDBOX" --incoming 127.0.0.1:0 --backend tcg --disk "$spec" --address 127.0.0.1 \
		--control "$DIR/$nxt.sock" --migrate-key-file "$DIR/mig.key" >"$DIR/$nxt.out" 2>&1 &
	vmm[nxt]=$!
	end=$((SECONDS + 30))
	until mport=$(vstatus "$DIR/$nxt.sock" | sed -n 's/^incoming: *listening on port \([0-9]*\).*/\1/p') && [[ -n $mport ]]; do
		((SECONDS < end)) || { echo "bench_conn_migrate: the target did not start" >&2; exit 1; }
		sleep 0.05
	done
	# the baseline: as long a window with nothing happening
	t0=$(now_ms)
	sleep 1
	longest_gap "$t0" "$(now_ms)" >>"$DIR/idle"
	t0=$(now_ms)
	"$BUILD/bin/pvha" vmm "$DIR/$cur.sock" migrate "127.0.0.1:$mport" --key-file "$DIR/mig.key" >/dev/null ||
		{ echo "bench_conn_migrate: migrate request failed" >&2; exit 1; }
	end=$((SECONDS + 60))
	until vstatus "$DIR/$cur.sock" | grep -q "^migration: *done"; do
		if vstatus "$DIR/$cur.sock" | grep -q "^migration: *failed"; then
			echo "bench_conn_migrate: migration $run failed: $(vstatus "$DIR/$cur.sock" | grep migration)" >&2
			exit 1
		fi
		((SECONDS < end)) || { echo "bench_conn_migrate: migration $run did not end" >&2; exit 1; }
		sleep 0.01
	done
	kill "${vmm[cur]}" 2>/dev/null
	wait "${vmm[cur]}" 2>/dev/null
	sleep 1
	longest_gap "$t0" "$(now_ms)" >>"$DIR/pause"
	cur=$nxt
done
kill "$client" 2>/dev/null
wait "$client" 2>/dev/null
client=
errors=$(grep -c "^err" "$DIR/gaps")
echo "figure service_migration_pause_loopback_ms $(median <"$DIR/pause") ms"
echo "figure service_idle_max_gap_loopback_ms $(median <"$DIR/idle") ms"
echo "figure service_migration_errors_loopback $errors count"
