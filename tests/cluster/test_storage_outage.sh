#!/bin/bash
# Scenario test in the lab: the agents keep answering while the storage does
# not. 3 nodes with real Corosync and a real Ceph; every OSD is frozen
# (SIGSTOP) for 30 s. Meanwhile every node's pvhad answers `cluster status`
# at once (99 % of its answers within 100 ms and none near the storage's op
# timeout, measured by pvha-api-probe over the API itself), no node leaves the CPG group (one ring, three members
# throughout), `guest list` answers, and a request that needs the storage
# (`events`) ends with an error at the storage's op timeout instead of
# stalling the agent. Once the OSDs run again every node says the storage is
# usable by itself, and a guest starts. Prints ok/FAIL lines and
# "N passed, M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROBE=$BUILD/bin/pvha-api-probe
OUTAGE_S=30

up 3
if pv n1 guest create g1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M >/dev/null; then
	ok "guest g1 created (stopped)"
else
	fail "guest g1 created"
fi
for n in n1 n2 n3; do
	wait_unfenced "$n" || fail "$n: quorate with the storage before the outage"
done

osd_pids=()
for f in "$DIR"/ceph/run/osd.*.pid; do
	[[ -f $f ]] && osd_pids+=("$(<"$f")")
done
((${#osd_pids[@]} > 0)) || { fail "the lab's OSD pids"; finish; }
thaw() { kill -CONT "${osd_pids[@]}" 2>/dev/null; }
# pg_states: how many of the pool's PGs are in each state ("8 active+clean").
pg_states() {
	local c=(timeout 10 ceph -c "$DIR/ceph/ceph.conf") id n i
	read -r _ id _ < <("${c[@]}" osd pool ls detail | grep -m1 "'pvha'")
	n=$("${c[@]}" osd pool get pvha pg_num | cut -d' ' -f2)
	for ((i = 0; i < ${n:-0}; i++)); do
		"${c[@]}" pg "$id.$(printf %x "$i")" query | grep -m1 -o '"state": "[^"]*"' | cut -d'"' -f4
	done | sort | uniq -c | tr -s ' \n' ' '
}
trap 'thaw; "$LAB" down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; [[ -n ${PVHA_KEEP_LOGS:-} ]] || rm -rf "$LOGS_KEPT"' EXIT

kill -STOP "${osd_pids[@]}"
ok "OSDs frozen (${#osd_pids[@]}) for $OUTAGE_S s"
t0=$SECONDS

# A request that needs the storage: it must not stall the loop (the probes
# below run while it waits on its own).
events_out=$(mktemp)
(pv n2 events >"$events_out" 2>&1; echo "exit $?" >>"$events_out") &
events_pid=$!

probe_out=()
for n in n1 n2 n3; do
	f=$(mktemp)
	probe_out+=("$f")
	"$LAB" exec "$n" "$PROBE" --seconds $((OUTAGE_S - 3)) --every-ms 100 >"$f" 2>&1 &
done
sleep 1 # let the probes start; the guest list is asked while they run
if pv n3 guest list | grep -q '^g1 '; then
	ok "guest list answers during the outage"
else
	fail "guest list answers during the outage"
fi
wait $(jobs -p | grep -v "^$events_pid$") 2>/dev/null
i=0
for n in n1 n2 n3; do
	line=$(tail -1 "${probe_out[$i]}")
	i=$((i + 1))
	read -r _ answers _ slowest _ p99 _ members _ rings <<<"$line"
	if [[ -z $answers ]] || ((answers < 50)); then
		fail "$n: probe: $line"
		continue
	fi
	# Within 100 ms (99 % of the answers: this 2-core machine's scheduler
	# delays a few), and never near the storage's op timeout (10 s): the loop
	# never waited on the storage.
	if awk -v p="$p99" -v s="$slowest" 'BEGIN { exit !(p < 100 && s < 1000) }'; then
		ok "$n answered $answers times during the outage: 99 % within $p99 ms, the slowest in $slowest ms"
	else
		fail "$n answered during the outage: 99 % within $p99 ms, the slowest in $slowest ms (want < 100, < 1000)"
	fi
	if ((members == 3 && rings == 1)); then
		ok "$n: no node left the group (3 members, one ring)"
	else
		fail "$n: members fell to $members, $rings ring(s) seen"
	fi
done
wait "$events_pid"
if grep -q "^exit 1" "$events_out" && grep -qi "timed out\|event log" "$events_out"; then
	ok "events during the outage: an error, not a hang ($(head -1 "$events_out"))"
else
	fail "events during the outage: $(tr '\n' ' ' <"$events_out")"
fi
rm -f "$events_out" "${probe_out[@]}"

while ((SECONDS - t0 < OUTAGE_S)); do sleep 0.5; done
thaw
ok "OSDs running again"
for n in n1 n2 n3; do
	if wait_unfenced "$n"; then ok "$n: storage usable again by itself"; else fail "$n: storage usable again"; fi
done
# The lab's one OSD has a read lease longer than the pause (deploy/ceph/
# pvha-ceph): its PGs serve again as soon as it continues, none is left
# "laggy" (Ceph 16.2 can leave such a PG stuck until the OSD restarts). g1's
# record (the object its owner lock lives on) must take a change again and
# its disk's header answer a fresh client (another PG: the VMM's first read).
uuid=$(show n1 g1 | field uuid)
end=$((SECONDS + 30))
serving=0
while ((SECONDS < end)); do
	if pv n1 guest set g1 --priority 1 >/dev/null 2>&1 &&
		timeout 5 rados -c "$DIR/ceph/ceph.conf" -p pvha stat "disk.$uuid.header" >/dev/null 2>&1; then
		serving=1
		break
	fi
	sleep 0.5
done
if ((serving)); then
	ok "g1's record and disk header answer again"
else
	fail "g1's record and disk header answer again; the pool's PGs: $(pg_states)"
fi
if pv n1 guest start g1 --wait 30 >/dev/null; then
	ok "g1 starts after the outage"
else
	fail "g1 starts after the outage"
fi
check_wait "g1 runs (as n3 sees it)" n3 g1 '"state":"running"'
finish
