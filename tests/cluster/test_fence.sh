#!/bin/bash
# Scenario test of power fencing in the lab (real Corosync, real Ceph, pvhad,
# counter guests on RADOS disks), with real fence agents speaking the
# fence-agents stdin protocol:
#  1. Debian's fence_dummy (type=file: a status file per node, "on"/"off"):
#     the owner of a guest is powered off; while its fence agent hangs (its
#     status file is a FIFO), pvhad kills it at fence_timeout, says so in the
#     event log, retries, and never starts the guest elsewhere; once the agent
#     can work, the node is confirmed off ("off" in its file) and only then is
#     the guest recovered.
#  2. The lab's own power-off agent (fence_pvha_lab): a node cut off by a
#     partition is powered off by the majority before its guest is recovered;
#     booted again, it rejoins and is unfenced.
# Every wait polls with a deadline. Prints ok/FAIL lines and "N passed, M
# failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FENCE_DUMMY=/usr/sbin/fence_dummy
[[ -x $FENCE_DUMMY ]] || { echo "skip: $FENCE_DUMMY not installed (deploy/install-deps: fence-agents)"; exit 77; }

events_wait() { # NODE PATTERN COUNT: until the cluster log has COUNT lines matching PATTERN
	local end=$((SECONDS + DEADLINE_S)) n
	while ((SECONDS < end)); do
		n=$(pv "$1" events --max 1000 2>/dev/null | grep -c -- "$2")
		((n >= $3)) && return 0
		sleep 0.2
	done
	return 1
}

# ---- 1. fence_dummy, hanging then working --------------------------------
up 3 --fence-agent "$FENCE_DUMMY" --fence-args "type=file status_file=$DIR/power-%n" --fence-timeout 2
for n in n1 n2 n3; do printf on >"$DIR/power-$n"; done # fence_dummy wants no newline
pv n1 guest create f1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M --cmdline "interval=20" --start --wait 30 >/dev/null &&
	ok "f1 created and running" || fail "f1 created and running"
owner=$(show n1 f1 | field owner)
uuid=$(show n1 f1 | field uuid)
other=n1; [[ $owner == n1 ]] && other=n2
rm -f "$DIR/power-$owner" && mkfifo "$DIR/power-$owner" # fence_dummy blocks reading it

"$LAB" poweroff "$owner" >/dev/null
if events_wait "$other" "fence-failed.*timed out" 2; then
	ok "power fence of $owner: the hanging agent was killed at fence_timeout and retried"
else
	fail "power fence of $owner: timed out and retried"
fi
s=$(show "$other" f1)
if [[ $s == *'"state":"fence-wait"'* && -z $(pv "$other" events --max 1000 2>/dev/null | grep power-fenced) ]]; then
	ok "f1 waits in fence-wait while the power fence fails"
else
	fail "f1 waits in fence-wait while the power fence fails: $s"
fi
for n in n1 n2 n3; do
	[[ $n == "$owner" ]] && continue
	[[ -z $(vmm_pids "$n" "$uuid") ]] || fail "f1 started on $n before its node was powered off"
done
rm -f "$DIR/power-$owner" && printf on >"$DIR/power-$owner"
if new=$(wait_owner_not "$other" f1 "$owner"); then ok "once the fence works, f1 runs on $new"; else fail "f1 recovered after the fence"; new=; fi
[[ $(cat "$DIR/power-$owner" 2>/dev/null) == off ]] && ok "fence_dummy switched $owner off" ||
	fail "fence_dummy switched $owner off (status file: $(cat "$DIR/power-$owner" 2>/dev/null))"
if events_wait "$other" "power-fenced.*node $owner: powered off by $FENCE_DUMMY" 1; then
	ok "the event log says $owner was powered off"
else
	fail "the event log says $owner was powered off"
fi
if [[ -n $new ]]; then
	con=$(console_of "$new" "$uuid")
	if wait_console "$con" "counter: verified"; then ok "f1 came back from its disk"; else fail "f1 came back from its disk"; fi
	grep -q CORRUPT "$con" 2>/dev/null && fail "f1's log intact" || ok "f1's log intact"
fi
keep_logs fence-dummy
"$LAB" down --dir "$DIR" >/dev/null 2>&1

# ---- 2. the lab's power-off agent ----------------------------------------
up 3 --fence-agent lab
pv n1 guest create g1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M --cmdline "interval=20" --start --wait 30 >/dev/null &&
	ok "g1 created and running" || fail "g1 created and running"
owner=$(show n1 g1 | field owner)
uuid=$(show n1 g1 | field uuid)
other=n1; [[ $owner == n1 ]] && other=n2
"$LAB" partition "$owner" >/dev/null
if new=$(wait_owner_not "$other" g1 "$owner"); then ok "partition $owner: g1 runs on $new"; else fail "partition $owner: g1 recovered"; fi
node_off() { "$LAB" status --json | grep -oE "\{\"name\": \"$1\"[^}]*\}" | grep -q '"corosync": false.*"agent": false'; }
if node_off "$owner"; then ok "the lab agent powered $owner off before g1 was recovered"; else fail "$owner powered off"; fi
if events_wait "$other" "power-fenced.*node $owner: powered off by .*fence_pvha_lab" 1; then
	ok "the event log says fence_pvha_lab powered $owner off"
else
	fail "the event log says fence_pvha_lab powered $owner off"
fi
"$LAB" heal >/dev/null
"$LAB" boot "$owner" >/dev/null || fail "boot $owner"
if wait_unfenced "$owner"; then ok "booted again, $owner rejoined and was unfenced"; else fail "booted again, $owner rejoined and was unfenced"; fi
check_wait "g1 still runs on $new" "$owner" g1 '"state":"running"' "\"owner\":\"$new\""
keep_logs fence-lab

finish
