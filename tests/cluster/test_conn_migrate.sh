#!/bin/bash
# Scenario test in the lab: clients' connections stay open through live
# migrations (TCP_REPAIR, docs/migration.md "Connections"). 3 nodes with real
# Corosync and Ceph; the kvstore guest at 10.99.0.100/24 on a RADOS disk.
# From the host side of the bridge:
#  - Debian's redis-benchmark (50 clients, pipelines of 16: 25 on SET, 25 on
#    GET, two runs of one test each, so that every client keeps its one
#    connection) runs through ten live migrations back and forth between n1
#    and n2; it ends at the first failed connection (a reset, a close), so
#    both must still be running afterwards with no error printed
#    (service_migration_errors 0). Not `-t set,get -l`: that opens 50 new
#    connections at every switch between its tests, and a connection the
#    guest has not accepted yet when the migration pauses it is not carried
#    (docs/migration.md): a switch that fell in a pause failed the test;
#  - a client holding one connection (tests/bench/bench_conn_client, a PING
#    at a time) sees every reply, and prints its longest gap.
# Prints ok/FAIL lines and "N passed, M failed"; exit 77 (skip) when it cannot
# run here. Run it as `flock /tmp/pvha-lab.lock tests/cluster/test_conn_migrate.sh`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for t in redis-cli redis-benchmark; do
	command -v "$t" >/dev/null || { echo "skip: $t not installed (deploy/install-deps)"; exit 77; }
done
CLIENT=$BUILD/bench/bench_conn_client
[[ -x $CLIENT ]] || { fail "$CLIENT is not built"; finish; }
IP=10.99.0.100
MIGRATIONS=${MIGRATIONS:-10}
BENCH_OUT=$DIR.bench.out # both runs' output, and their errors below
BENCH_ERR=$DIR.bench.err
GAPS=$DIR.gaps
bench= client=
# the clients end first, then what lib.sh does on exit (the lab goes down)
trap "kill \$bench \$client 2>/dev/null; $(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")" EXIT

rc() { timeout 2 redis-cli -h "$IP" -p 6379 "$@" 2>/dev/null; }
owner() { show "$1" kv | field owner; }

up 3
if pv n1 guest create kv --image "$BUILD/guests/kvstore.elf" --mem 64M --disk 64M --address "$IP/24" \
	--start --wait 60 >/dev/null; then
	ok "kvstore guest created with address $IP/24"
else
	fail "kvstore guest created"
	finish
fi
end=$((SECONDS + DEADLINE_S))
until [[ $(rc PING) == PONG ]]; do
	((SECONDS < end)) || { fail "redis-cli PING at $IP"; finish; }
	sleep 0.05
done
# the guest on n1 or n2, so that the migrations go back and forth between them
if [[ $(owner n1) == n3 ]]; then
	pv n1 guest migrate kv n1 --wait 60 >/dev/null || { fail "moving kv off n3"; finish; }
fi

for t in set get; do
	redis-benchmark -h "$IP" -p 6379 -c 25 -P 16 -t "$t" -n 2000000000 >>"$BENCH_OUT" 2>>"$BENCH_ERR" &
	bench="$bench $!"
done
"$CLIENT" "$IP" 6379 >"$GAPS" &
client=$!
# both are under way: requests answered before the first migration
end=$((SECONDS + DEADLINE_S))
progress() { tr '\r' '\n' <"$BENCH_OUT" 2>/dev/null | grep -q "^$1: rps="; }
until progress SET && progress GET; do
	((SECONDS < end)) || { fail "redis-benchmark runs: $(tail -c 300 "$BENCH_ERR")"; finish; }
	sleep 0.1
done
ok "redis-benchmark runs against $IP"

for k in $(seq "$MIGRATIONS"); do
	cur=$(owner n1)
	to=n1
	[[ $cur == n1 ]] && to=n2
	t0=$(date +%s%3N)
	if ! pv n1 guest migrate kv "$to" --wait 60 >/dev/null 2>"$DIR.err"; then
		fail "migration $k: $cur -> $to: $(cat "$DIR.err")"
		continue
	fi
	# the longest gap of the held connection since the migration began
	sleep 0.5
	gap=$(awk -v a="$t0" '$1 == "gap" && $2 >= a && $3 > g { g = $3 } END { printf "%.1f", g + 0 }' "$GAPS")
	# shellcheck disable=SC2086 # $bench: the two runs' pids
	if kill -0 $bench 2>/dev/null && kill -0 "$client" 2>/dev/null && ! grep -q "^err" "$GAPS"; then
		ok "migration $k: $cur -> $to; redis-benchmark goes on, the held connection's longest gap $gap ms"
	else
		fail "migration $k: $cur -> $to: a client failed: $(tail -c 300 "$BENCH_ERR") $(grep "^err" "$GAPS" | head -3)"
	fi
done

# shellcheck disable=SC2086
kill -TERM $bench 2>/dev/null # (SIGINT is ignored by a background job of a script)
# shellcheck disable=SC2086
wait $bench 2>/dev/null
kill -TERM "$client" 2>/dev/null
wait "$client" 2>/dev/null
bench= client=
# redis-benchmark prints "Error: ..." (and exits) on a failed connection,
# "Error from server" / "ERR" for error replies
errors=$(cat "$BENCH_ERR" "$BENCH_OUT" | tr '\r' '\n' | grep -c -E "Error|ERR")
if ((errors == 0)); then
	ok "redis-benchmark reports no error through $MIGRATIONS migrations"
else
	fail "redis-benchmark reports $errors error line(s): $(cat "$BENCH_ERR" "$BENCH_OUT" | tr '\r' '\n' | grep -E "Error|ERR" | head -3)"
fi
read -r _ replies cerrors maxgap < <(grep "^end" "$GAPS")
if [[ ${cerrors:-x} == 0 && ${replies:-0} -gt 0 ]]; then
	ok "the held connection: $replies replies, no error, longest gap $maxgap ms"
else
	fail "the held connection: $(grep -E "^(err|end)" "$GAPS" | head -5)"
fi
rm -f "$BENCH_OUT" "$BENCH_ERR" "$GAPS" "$DIR.err"
finish
