#!/bin/bash
# Scenario test of pvhad in the lab: 3 nodes with real Corosync, a real Ceph
# and one pvhad each. Every agent sees the same quorate membership and the same
# leader (the lowest node id); a power-off moves the leadership; a partitioned
# node reports it lost quorum, the majority keeps it; heal and boot bring all
# three back; the cluster event log in RADOS holds what happened. Every wait
# polls `pvha --json cluster status` with a deadline. Prints ok/FAIL lines and
# "N passed, M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

status() { "$LAB" exec "$1" "$PVHA" --json cluster status 2>/dev/null; }

# wait_for NODE PATTERN...: until NODE's status JSON matches every pattern.
wait_status() {
	local node=$1 end=$((SECONDS + DEADLINE_S)) s p all
	shift
	while ((SECONDS < end)); do
		s=$(status "$node")
		all=1
		for p in "$@"; do [[ $s == *"$p"* ]] || all=0; done
		((all)) && return 0
		sleep 0.1
	done
	echo "     $node last said: ${s:-nothing}" >&2
	return 1
}

check_status() {
	local what=$1
	shift
	if wait_status "$@"; then ok "$what"; else fail "$what"; fi
}

if ! "$LAB" up --dir "$DIR" --nodes 3 --token 500 --token-coefficient 0 >"$DIR.up.log" 2>&1; then
	fail "pvha-lab up"
	tail -20 "$DIR.up.log"
	rm -f "$DIR.up.log"
	finish
fi
rm -f "$DIR.up.log"
ok "lab up with agents"

for n in n1 n2 n3; do
	check_status "$n: quorate, leader n1, storage reachable" "$n" '"quorate":true' '"leader":"n1"' \
		'"storage_ok":true'
done
check_status "n2 sees all three online with their addresses" n2 '"name":"n1","member":true' \
	'"addr":"10.99.0.11"' '"name":"n3","member":true'

inc_before=$(status n1 | grep -o '"incarnation":"[^"]*"' | head -1)
"$LAB" poweroff n1 >/dev/null
check_status "power-off n1: n2 leads" n2 '"leader":"n2"' '"name":"n1","member":false'
check_status "power-off n1: n3 agrees" n3 '"leader":"n2"' '"quorate":true'

"$LAB" partition n3 >/dev/null
check_status "partition n3 (with n1 off): n3 lost quorum, no leader" n3 '"quorate":false' '"leader_nodeid":0'
check_status "partition n3 (with n1 off): n2 alone lost quorum too" n2 '"quorate":false'
"$LAB" heal >/dev/null
check_status "heal: n2 and n3 quorate again" n3 '"quorate":true' '"leader":"n2"'

"$LAB" boot n1 >/dev/null
check_status "boot n1: it leads again, everyone agrees" n3 '"leader":"n1"' '"name":"n1","member":true'
check_status "boot n1: quorate with its new agent" n1 '"quorate":true' '"leader":"n1"'
inc1=$(status n1 | grep -o '"incarnation":"[^"]*"' | head -1)
if [[ -n $inc_before && -n $inc1 && $inc1 != "$inc_before" ]]; then
	ok "boot n1: a new incarnation"
else
	fail "boot n1: a new incarnation ($inc1, was $inc_before)"
fi

ev=$("$LAB" exec n2 "$PVHA" events 2>&1)
for want in "node-left        node n1 left" "quorum-lost" "quorum-regained"; do
	if [[ $ev == *"$want"* ]]; then ok "event log has: $want"; else fail "event log has: $want"; echo "$ev" | tail -20; fi
done
if "$LAB" exec n2 "$PVHA" events --max nope >/dev/null 2>&1; then fail "pvha events --max nope refused"; else ok "pvha events --max nope refused"; fi

finish
