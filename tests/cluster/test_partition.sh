#!/bin/bash
# Scenario test of partitions in the lab (real Corosync, real Ceph, pvhad,
# counter guests on RADOS disks): the node running a guest is cut off -> it
# loses quorum and kills its VMM, the majority fences it and runs the guest,
# and no two copies ever write (the counter guest verifies its log at every
# boot and the old VMM is gone); heal -> the node is unfenced and takes the
# majority's view; a restart of the whole cluster brings the guest back; and
# in a two-node cluster a partition never runs a guest twice.
# Every wait polls `pvha --json guest show` with a deadline. Prints ok/FAIL
# lines and "N passed, M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# no_drops WHAT: no agent dropped a cluster message (docs/agent.md, "Who may
# send what"): through partitions, fences, heals and a whole-cluster restart
# every message came from a node allowed to send it, as every agent judged it.
no_drops() {
	local d
	d=$(grep -h ' dropped: ' "$DIR"/n*/pvhad.log 2>/dev/null)
	if [[ -z $d ]]; then ok "$1: no agent dropped a cluster message"; else fail "$1: cluster messages dropped: ${d:0:400}"; fi
}

up 3
pv n2 guest create p1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M --cmdline "interval=20" --start --wait 30 >/dev/null &&
	ok "p1 created and running" || fail "p1 created and running"
owner=$(show n2 p1 | field owner)
uuid=$(show n2 p1 | field uuid)
other=n1; [[ $owner == n1 ]] && other=n2

"$LAB" partition "$owner" >/dev/null
if wait_no_vmm "$owner" "$uuid"; then ok "partition $owner: it lost quorum and killed p1's VMM"; else fail "partition $owner: its VMM is gone"; fi
# it still answers a list, from its own table, and says that is not the cluster's view
out=$(pv "$owner" guest list 2>&1)
if [[ $out == *"pvha: warning: this node's partition has no quorum"* && $out == *$'\np1 '* ]]; then
	ok "partition $owner: its guest list answers and says it is not the cluster's view"
else
	fail "partition $owner: its guest list: ${out:0:400}"
fi
if new=$(wait_owner_not "$other" p1 "$owner"); then ok "partition $owner: p1 runs on $new"; else fail "partition $owner: p1 runs on the majority side"; new=; fi
if [[ -n $new ]]; then
	con=$(console_of "$new" "$uuid")
	if wait_console "$con" "counter: flushed seq"; then ok "p1 writes on $new"; else fail "p1 writes on $new"; fi
	if grep -q CORRUPT "$con"; then fail "no two copies wrote (the log verified)"; else ok "no two copies wrote (the log verified)"; fi
	if [[ -z $(vmm_pids "$owner" "$uuid") ]]; then ok "only one p1 VMM runs"; else fail "only one p1 VMM runs"; fi
fi

"$LAB" heal >/dev/null
if wait_unfenced "$owner"; then ok "heal: $owner is back, quorate and unfenced"; else fail "heal: $owner is back, quorate and unfenced"; fi
check_wait "heal: $owner sees p1 where the majority runs it" "$owner" p1 '"state":"running"' "\"owner\":\"$new\""
# the event log is written by a worker of its own, after the fact: poll it
end=$((SECONDS + DEADLINE_S))
until [[ $(pv "$other" events 2>&1) == *unfenced* ]]; do
	((SECONDS < end)) || break
	sleep 0.2
done
ev=$(pv "$other" events 2>&1)
[[ $ev == *unfenced* ]] && ok "the event log says $owner was unfenced" || fail "the event log says $owner was unfenced: ${ev: -300}"

# The whole cluster powered off and booted again: p1's desired state is running.
# n1 was fenced just before the outage (the blocklist outlives it, and no agent
# remembers it): it must neither lead with an empty view nor stay cut off.
for n in n1 n2 n3; do "$LAB" poweroff "$n" >/dev/null; done
ceph -c "$DIR/ceph/ceph.conf" -k "$DIR/ceph/client.admin.keyring" osd blocklist add 10.99.0.11 600 >/dev/null 2>&1 ||
	fail "blocklisting n1's address before the restart"
for n in n1 n2 n3; do "$LAB" boot "$n" >/dev/null; done
check_wait "whole-cluster restart: p1 runs again" n3 p1 '"state":"running"'
end=$((SECONDS + DEADLINE_S))
until pv n1 --json cluster status 2>/dev/null | grep -q '"storage_ok":true'; do
	((SECONDS < end)) || break
	sleep 0.1
done
if pv n1 --json cluster status 2>/dev/null | grep -q '"storage_ok":true'; then
	ok "whole-cluster restart: the stale fence of n1 was lifted"
else
	fail "whole-cluster restart: the stale fence of n1 was lifted"
fi
check_wait "whole-cluster restart: n1 has the cluster's view of p1" n1 p1 '"state":"running"'
o=$(show n3 p1 | field owner)
con=$(console_of "$o" "$uuid")
if wait_console "$con" "counter: verified"; then ok "p1 came back from its disk"; else fail "p1 came back from its disk"; fi
if grep -q CORRUPT "$con" 2>/dev/null; then fail "p1's log is intact after the restart"; else ok "p1's log is intact after the restart"; fi
no_drops "three nodes"
keep_logs partition-3
"$LAB" down --dir "$DIR" >/dev/null 2>&1

# Two nodes (two_node: both halves stay quorate): a partition never runs the guest twice.
up 2
pv n1 guest create d1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M --cmdline "interval=20" --start --wait 30 >/dev/null &&
	ok "d1 created and running" || fail "d1 created and running"
owner=$(show n1 d1 | field owner)
uuid=$(show n1 d1 | field uuid)
other=n1; [[ $owner == n1 ]] && other=n2
"$LAB" partition "$owner" >/dev/null
two=0
for _ in $(seq 60); do
	a=$(vmm_pids n1 "$uuid" | wc -l)
	b=$(vmm_pids n2 "$uuid" | wc -l)
	if ((a > 0 && b > 0)); then
		# both processes may exist for an instant; the cut-off one cannot write
		con=$(console_of "$other" "$uuid")
		grep -q CORRUPT "$con" 2>/dev/null && two=1
	fi
	sleep 0.25
done
if ((two)); then fail "two-node partition: never two writers"; else ok "two-node partition: never two writers (15 s watched)"; fi
con=$(console_of "$other" "$uuid")
if grep -q CORRUPT "$con" 2>/dev/null; then fail "two-node: d1's log intact"; else ok "two-node: d1's log intact"; fi
# Heal: the fenced node is let back and takes the view of the one that runs d1.
"$LAB" heal >/dev/null
if wait_unfenced "$owner"; then ok "two-node heal: $owner is unfenced"; else fail "two-node heal: $owner is unfenced"; fi
check_wait "two-node heal: $owner sees d1 where it runs" "$owner" d1 '"state":"running"' "\"owner\":\"$other\""
check_wait "two-node heal: $other agrees" "$other" d1 '"state":"running"' "\"owner\":\"$other\""
a=$(vmm_pids n1 "$uuid" | wc -l)
b=$(vmm_pids n2 "$uuid" | wc -l)
((a + b == 1)) && ok "two-node heal: one copy of d1 runs" || fail "two-node heal: one copy of d1 runs ($a + $b)"
no_drops "two nodes"
keep_logs partition-2

finish
