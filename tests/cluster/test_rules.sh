#!/bin/bash
# Scenario test of placement rules and start dependencies in the lab: 3
# nodes, real Corosync, a real Ceph, one pvhad each, counter guests.
#  - a hard anti-affinity pair (aa1, aa2) runs on two nodes; an affinity
#    group (aa1 also in it, af1, af2) shares aa1's node;
#  - that node is powered off: aa1 (priority 10, recovered first) goes to
#    the one node without aa2, and af1 and af2 follow it there, in the same
#    recovery;
#  - a third member of the anti-affinity group (aa3) on the two nodes left is
#    unplaceable, with the scheduler's reason;
#  - a guest that depends on aa3 (app) waits for it ("waiting" event), and
#    once the node boots again aa3 is placed there and app starts after it;
#  - the CLI refuses an unknown dependency and a cycle; guest set changes a
#    priority and the rules.
# Every wait polls `pvha --json guest show` with a deadline. Prints ok/FAIL
# lines and "N passed, M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

up 3

IMG=$BUILD/guests/counter.elf
create() { # NODE NAME [options]
	local n=$1 name=$2
	shift 2
	if pv "$n" guest create "$name" --image "$IMG" --mem 16M --disk 4M --cmdline "interval=200" "$@" >/dev/null; then
		ok "guest create $name $*"
	else
		fail "guest create $name $*"
		finish
	fi
}
owner() { show "$1" "$2" | field owner; }
# event_ms NODE GUEST WHAT: the time of the guest's first event WHAT (ms), or nothing.
event_ms() {
	pv "$1" --json events --guest "$2" --max 1000 2>/dev/null | tr '}' '\n' |
		grep "\"what\":\"$3\"" | head -1 | grep -o '"time_ms":[0-9]*' | cut -d: -f2
}

# ---- anti-affinity and affinity -------------------------------------------
create n1 aa1 --anti-affinity ha --affinity grp --priority 10 --start
create n2 aa2 --anti-affinity ha --start
check_wait "aa1 runs" n1 aa1 '"state":"running"'
check_wait "aa2 runs" n1 aa2 '"state":"running"'
o1=$(owner n1 aa1)
o2=$(owner n1 aa2)
if [[ -n $o1 && -n $o2 && $o1 != "$o2" ]]; then ok "hard anti-affinity: aa1 on $o1, aa2 on $o2"; else fail "hard anti-affinity: aa1 on '$o1', aa2 on '$o2'"; fi
s=$(show n3 aa1)
if [[ $s == *'"rules":[{"group":"ha","anti":true,"soft":false},{"group":"grp","anti":false,"soft":false}]'* ]]; then
	ok "guest show lists aa1's rules"
else
	fail "guest show lists aa1's rules: $s"
fi

create n3 af1 --affinity grp --start
create n1 af2 --affinity grp:soft --start
check_wait "af1 runs with aa1 on $o1" n2 af1 '"state":"running"' "\"owner\":\"$o1\""
check_wait "af2 runs with aa1 on $o1" n2 af2 '"state":"running"' "\"owner\":\"$o1\""

# ---- recovery keeps the rules ---------------------------------------------
survivor=n1
[[ $o1 == n1 ]] && survivor=n2
third=
for n in n1 n2 n3; do [[ $n != "$o1" && $n != "$o2" ]] && third=$n; done
"$LAB" poweroff "$o1" >/dev/null
new=$(wait_owner_not "$survivor" aa1 "$o1")
if [[ -n $new && $new == "$third" ]]; then ok "power-off $o1: aa1 recovered on $third, not with aa2 ($o2)"; else fail "power-off $o1: aa1 on '$new', want $third (aa2 on $o2)"; fi
check_wait "af1 followed aa1 to $third" "$survivor" af1 '"state":"running"' "\"owner\":\"$third\""
check_wait "af2 followed aa1 to $third" "$survivor" af2 '"state":"running"' "\"owner\":\"$third\""
if [[ $(owner "$survivor" aa2) == "$o2" ]]; then ok "aa2 stayed on $o2"; else fail "aa2 stayed on $o2"; fi

# ---- a third member with one node down: unplaceable -----------------------
create "$survivor" aa3 --anti-affinity ha --start
reason="every node with the memory holds a member of its hard anti-affinity rule"
check_wait "aa3 is unplaceable: anti-affinity" "$survivor" aa3 '"state":"starting"' "\"waiting\":\"unplaceable: $reason\""
ev=$(pv "$survivor" events --guest aa3 2>&1)
if [[ $ev == *"$reason"* ]]; then ok "aa3's event log gives the scheduler's reason"; else fail "aa3's event log gives the scheduler's reason: $ev"; fi

# ---- dependencies ---------------------------------------------------------
if pv "$survivor" guest create bad --image "$IMG" --mem 16M --depends-on nosuch 2>"$DIR.err" >/dev/null; then
	fail "an unknown dependency is refused"
elif grep -q "dependency 'nosuch': no such guest" "$DIR.err"; then
	ok "an unknown dependency is refused"
else
	fail "an unknown dependency is refused: $(cat "$DIR.err")"
fi
create "$survivor" app --depends-on aa3 --start
check_wait "app waits for aa3" "$survivor" app '"state":"starting"' '"waiting":"for aa3 (starting)"' '"depends_on":["aa3"]'
if pv "$survivor" events --guest app 2>&1 | grep -q "waiting .*for aa3"; then ok "app's event log says it waits for aa3"; else fail "app's event log says it waits for aa3"; fi
if pv "$survivor" guest set aa3 --depends-on app 2>"$DIR.err" >/dev/null; then
	fail "a dependency cycle is refused"
elif grep -q "cycle" "$DIR.err"; then
	ok "a dependency cycle is refused ($(cat "$DIR.err"))"
else
	fail "a dependency cycle is refused: $(cat "$DIR.err")"
fi
rm -f "$DIR.err"

# The node comes back: aa3 goes there (the only node without a member of
# ha), then app starts.
"$LAB" boot "$o1" >/dev/null
check_wait "$o1 back: aa3 placed on it" "$survivor" aa3 '"state":"running"' "\"owner\":\"$o1\""
check_wait "then app runs" "$survivor" app '"state":"running"' '"waiting":""'
t_dep=$(event_ms "$survivor" aa3 running)
t_app=$(event_ms "$survivor" app running)
if [[ -n $t_dep && -n $t_app ]] && ((t_app >= t_dep)); then
	ok "app started after aa3 ($((t_app - t_dep)) ms later)"
else
	fail "app started after aa3 (aa3 at ${t_dep:-?}, app at ${t_app:-?})"
fi

# ---- guest set --------------------------------------------------------------
if pv "$survivor" guest set app --priority 5 --anti-affinity web:soft >/dev/null; then ok "guest set app"; else fail "guest set app"; fi
check_wait "guest set: every node sees the new spec" "$o1" app '"priority":5' '"rules":[{"group":"web","anti":true,"soft":true}]' '"depends_on":["aa3"]'
if pv "$survivor" guest set app --no-rules --no-depends >/dev/null; then ok "guest set app --no-rules --no-depends"; else fail "guest set app --no-rules --no-depends"; fi
check_wait "guest set: rules and dependencies gone" "$o1" app '"rules":[]' '"depends_on":[]'

finish
