#!/bin/bash
# Scenario test in the lab: a service guest behind an address that follows
# it. 3 nodes with real Corosync and Ceph; the kvstore guest (Redis protocol)
# with the address 10.99.0.100/24 on the lab's subnet, its log on a RADOS
# disk. Debian's redis-cli, on the host side of the bridge, talks to it. A
# writer keeps writing and records every acknowledged write, through:
#  - a power-off of the guest's node: the address answers again on a
#    survivor (the time is printed), only the node that runs the guest
#    carries it;
#  - five live migrations and a drain: it answers after each, on the new
#    node only;
#  - a partition of its node: the node without quorum drops the address with
#    the VMM, the majority carries it again;
# and afterwards every acknowledged write reads back.
# Prints ok/FAIL lines and "N passed, M failed"; exit 77 (skip) when it cannot
# run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v redis-cli >/dev/null || { echo "skip: redis-cli not installed (deploy/install-deps)"; exit 77; }
IP=10.99.0.100
ADDR=$IP/24
ACKED=$DIR.acked
STOP=$DIR.stop
rm -f "$ACKED" "$STOP"

rc() { timeout 2 redis-cli -h "$IP" -p 6379 "$@" 2>/dev/null; }
# answers [DEADLINE_S]: until PING gets PONG; prints the seconds it took
answers() {
	local t0=$EPOCHREALTIME end=$((SECONDS + ${1:-$DEADLINE_S}))
	until [[ $(rc PING) == PONG ]]; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}
carries() { ip -n "pvha-$1" -4 addr show dev eth0 2>/dev/null | grep -q "inet $ADDR "; }
# only_on NODE: NODE carries the address and no other node does, within 5 s
# (after a migration the source drops it when its VMM ends, just after the
# hand-over: docs/network.md)
only_on() {
	local n ok end=$((SECONDS + 5))
	while :; do
		ok=0
		carries "$1" || ok=1
		for n in n1 n2 n3; do [[ $n == "$1" ]] || ! carries "$n" || ok=1; done
		((ok == 0)) && return 0
		((SECONDS < end)) || return 1
		sleep 0.05
	done
}
owner() { show "$1" kv | field owner; }

up 3
if pv n1 guest create kv --image "$BUILD/guests/kvstore.elf" --mem 64M --disk 64M --address "$ADDR" \
	--start --wait 60 >/dev/null; then
	ok "kvstore guest created with address $ADDR"
else
	fail "kvstore guest created"
	finish
fi
o=$(owner n1)
if t=$(answers); then ok "redis-cli PING answers at $IP ($t s)"; else fail "redis-cli PING at $IP"; fi
if only_on "$o"; then ok "only $o, which runs it, carries $ADDR"; else fail "only $o carries $ADDR"; fi
if [[ $(rc SET hello world) == OK && $(rc GET hello) == world ]]; then
	ok "SET and GET through redis-cli"
else
	fail "SET and GET through redis-cli"
fi
if pv n2 guest create other --image "$BUILD/guests/hello.elf" --mem 16M --address "$ADDR" 2>"$DIR.err"; then
	fail "a second guest with the same address is refused"
elif grep -q "is guest kv's" "$DIR.err"; then
	ok "a second guest with the same address is refused ($(cat "$DIR.err"))"
else
	fail "a second guest with the same address is refused: $(cat "$DIR.err")"
fi

# The writer: one SET a time, each acknowledged one recorded.
(
	i=0
	while [[ ! -f $STOP ]]; do
		i=$((i + 1))
		[[ $(rc SET "k$i" "$i") == OK ]] && echo "$i" >>"$ACKED"
	done
) &
writer=$!
acked() { [[ -f $ACKED ]] && wc -l <"$ACKED" || echo 0; }
wait_acks() { # until N more writes were acknowledged
	local want=$(($(acked) + $1)) end=$((SECONDS + DEADLINE_S))
	while (($(acked) < want)); do ((SECONDS < end)) || return 1; sleep 0.05; done
}
wait_acks 20 || fail "the writer writes"

# ---- power-off of its node ---------------------------------------------------
other=n1
[[ $o == n1 ]] && other=n2
"$LAB" poweroff "$o" >/dev/null
if t=$(answers); then
	ok "power-off $o: $IP answers again after $t s"
else
	fail "power-off $o: $IP answers again"
fi
new=$(wait_owner_not "$other" kv "$o") || fail "kv recovered"
if only_on "$new"; then ok "only $new carries $ADDR now"; else fail "only $new carries $ADDR now"; fi
wait_acks 20 || fail "the writer writes after the failover"
"$LAB" boot "$o" >/dev/null || fail "boot $o"
wait_unfenced "$o" || fail "$o back"

# ---- five live migrations and a drain ------------------------------------------
for k in 1 2 3 4 5; do
	cur=$(owner n1)
	to=n1
	for n in n1 n2 n3; do [[ $n != "$cur" ]] && to=$n && break; done
	[[ $k == 2 || $k == 4 ]] && for n in n3 n2 n1; do [[ $n != "$cur" ]] && to=$n && break; done
	if pv n1 guest migrate kv "$to" --wait 60 >/dev/null 2>"$DIR.err" && t=$(answers) && only_on "$to"; then
		ok "migration $k: $cur -> $to, $IP answers ($t s), only $to carries it"
	else
		fail "migration $k: $cur -> $to: $(cat "$DIR.err")"
	fi
	wait_acks 5 || fail "the writer writes after migration $k"
done
cur=$(owner n1)
if pv n1 node drain "$cur" >/dev/null; then
	moved=$(wait_owner_not n1 kv "$cur")
	if [[ -n $moved ]] && t=$(answers) && only_on "$moved"; then
		ok "drain of $cur: kv on $moved, $IP answers ($t s)"
	else
		fail "drain of $cur: kv moved and answers"
	fi
	pv n1 node resume "$cur" >/dev/null || fail "resume $cur"
else
	fail "drain $cur"
fi
wait_acks 10 || fail "the writer writes after the drain"

# ---- a node that loses quorum drops the address --------------------------------
cur=$(owner n1)
watch=n1
[[ $cur == n1 ]] && watch=n2
"$LAB" partition "$cur" >/dev/null
end=$((SECONDS + DEADLINE_S))
while carries "$cur" && ((SECONDS < end)); do sleep 0.05; done
if carries "$cur"; then fail "partitioned $cur still carries $ADDR"; else ok "partitioned $cur dropped $ADDR"; fi
if new=$(wait_owner_not "$watch" kv "$cur") && t=$(answers) && only_on "$new"; then
	ok "the majority runs kv on $new and carries $ADDR"
else
	fail "the majority runs kv and carries $ADDR"
fi
"$LAB" heal >/dev/null

# ---- no acknowledged write lost -----------------------------------------------
wait_acks 10 || fail "the writer writes after the heal"
touch "$STOP"
wait "$writer"
n=$(acked)
lost=0
while read -r i; do
	[[ $(rc GET "k$i") == "$i" ]] || lost=$((lost + 1))
done <"$ACKED"
if ((n > 0 && lost == 0)); then
	ok "all $n acknowledged writes read back"
else
	fail "$lost of $n acknowledged writes did not read back"
fi
rm -f "$ACKED" "$STOP" "$DIR.err"
finish
