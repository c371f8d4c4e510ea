#!/bin/bash
# Scenario test of automatic HA in the lab: 3 nodes, real Corosync, a real
# Ceph, one pvhad each, counter guests on RADOS disks. A guest is placed and
# started; its VMM killed -> restarted in place; its node powered off -> it
# runs on a survivor, its disk log intact (every record the old copy said was
# flushed is there, and no two copies ever wrote: the guest verifies its log
# at every boot and stops on any sign of two writers); stop and delete work.
# Every wait polls `pvha --json guest show` with a deadline. Prints ok/FAIL
# lines and "N passed, M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! "$LAB" up --dir "$DIR" --nodes 3 --token 500 --token-coefficient 0 >"$DIR.up.log" 2>&1; then
	fail "pvha-lab up"
	tail -20 "$DIR.up.log"
	rm -f "$DIR.up.log"
	finish
fi
rm -f "$DIR.up.log"
ok "lab up with agents"

if pv n2 guest create c1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M \
	--cmdline "interval=20" --priority 10 --start >/dev/null; then
	ok "guest create c1 --start"
else
	fail "guest create c1 --start"
	finish
fi
check_wait "c1 runs (as n3 sees it)" n3 c1 '"state":"running"'
owner=$(show n1 c1 | field owner)
uuid=$(show n1 c1 | field uuid)
[[ -n $owner ]] && ok "c1 placed on $owner" || fail "c1 has an owner"
con=$(console_of "$owner" "$uuid")
if wait_console "$con" "counter: flushed seq 10"; then ok "c1 writes its log on $owner"; else fail "c1 writes its log on $owner"; fi

# The VMM pvhad started is sandboxed (node/vmm/sandbox.h): seccomp,
# no_new_privs, no capabilities, the user pvha-vmm.
pid=$(vmm_pids "$owner" "$uuid" | head -1)
st=$(cat "/proc/$pid/status" 2>/dev/null)
if grep -qx $'Seccomp:\t2' <<<"$st" && grep -qx $'NoNewPrivs:\t1' <<<"$st" &&
	grep -qx $'CapEff:\t0000000000000000' <<<"$st" &&
	[[ $(awk '/^Uid:/ {print $2}' <<<"$st") == "$(id -u pvha-vmm)" ]]; then
	ok "c1's VMM runs sandboxed (user pvha-vmm, Seccomp 2, NoNewPrivs 1, CapEff 0)"
else
	fail "c1's VMM runs sandboxed"
	grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' <<<"$st"
fi

# A crash of the VMM: restarted in place.
"$LAB" exec "$owner" kill -9 "$pid"
check_wait "VMM killed: c1 restarted in place" n1 c1 '"state":"running"' "\"owner\":\"$owner\"" '"restarts":1'
if wait_console "$con" "counter: verified .* records, boot 2"; then ok "c1 rebooted from its disk, log verified"; else fail "c1 rebooted from its disk, log verified"; tail -5 "$con"; fi

# Kill the agent alone: the guest keeps running, and the restarted agent
# (same boot, same incarnation) adopts its VMM: a crash afterwards is seen
# and restarted in place again.
pid=$(vmm_pids "$owner" "$uuid" | head -1)
seq_before=$(grep -c "flushed seq" "$con")
"$LAB" agent-restart "$owner" >/dev/null
end=$((SECONDS + DEADLINE_S))
until pv "$owner" --json cluster status 2>/dev/null | grep -q '"quorate":true'; do
	((SECONDS < end)) || break
	sleep 0.1
done
if "$LAB" exec "$owner" kill -0 "$pid" 2>/dev/null; then ok "agent restart: the guest's VMM ($pid) kept running"; else fail "agent restart: the guest's VMM kept running"; fi
end=$((SECONDS + DEADLINE_S))
while (($(grep -c "flushed seq" "$con") <= seq_before + 5 && SECONDS < end)); do sleep 0.1; done
if (($(grep -c "flushed seq" "$con") > seq_before + 5)); then ok "agent restart: the guest kept writing"; else fail "agent restart: the guest kept writing"; fi
check_wait "agent restart: c1 still running on $owner" n3 c1 '"state":"running"' "\"owner\":\"$owner\""
"$LAB" exec "$owner" kill -9 "$pid"
check_wait "adopted VMM killed: c1 restarted in place" n1 c1 '"state":"running"' "\"owner\":\"$owner\"" '"restarts":2'

# Power off its node: recovered on a survivor.
cp "$con" "$DIR/before-poweroff.console"
"$LAB" poweroff "$owner" >/dev/null
t0=$SECONDS
survivor=n1
[[ $owner == n1 ]] && survivor=n2
moved=0
end=$((SECONDS + DEADLINE_S))
while ((SECONDS < end)); do
	s=$(show "$survivor" c1)
	o=$(field owner <<<"$s")
	if [[ $s == *'"state":"running"'* && -n $o && $o != "$owner" ]]; then moved=1; break; fi
	sleep 0.1
done
if ((moved)); then ok "power-off $owner: c1 runs on a survivor"; else fail "power-off $owner: c1 runs on a survivor (last: $s)"; fi
new=$(show "$survivor" c1 | field owner)
if [[ -n $new && $new != "$owner" ]]; then ok "c1 moved from $owner to $new in $((SECONDS - t0)) s"; else fail "c1 moved (owner now '$new')"; fi
con2=$(console_of "$new" "$uuid")
if wait_console "$con2" "counter: flushed seq"; then ok "c1 writes again on $new"; else fail "c1 writes again on $new"; fi
if grep -q "CORRUPT" "$con2"; then fail "c1's log is intact after failover"; else ok "c1's log is intact after failover (no CORRUPT)"; fi
# the survivor's agent got the guest's key (docs/storage.md): the recovered
# VMM runs as the guest's own cephx user, not as the node's
cmd=$(tr '\0' ' ' <"/proc/$(vmm_pids "$new" "$uuid" | head -1)/cmdline" 2>/dev/null)
[[ $cmd == *"--ceph-client client.pvha-guest-$uuid "* && $cmd != *"client.pvha-node"* ]] &&
	ok "the recovered VMM on $new runs as client.pvha-guest-$uuid" || fail "the recovered VMM runs as its guest's user: $cmd"
last=$(grep -o 'flushed seq [0-9]*' "$DIR/before-poweroff.console" | tail -1 | grep -o '[0-9]*$')
verified=$(grep -o 'verified [0-9]* records' "$con2" | head -1 | grep -o '[0-9]*')
if [[ -n $last && -n $verified && $verified -ge $last ]]; then
	ok "every flushed record survived ($last flushed, $verified on disk)"
else
	fail "every flushed record survived ($last flushed, ${verified:-?} on disk)"
fi
ev=$(pv "$survivor" events 2>&1)
if [[ $ev == *"fenced"* ]]; then ok "the event log says the node was fenced"; else fail "the event log says the node was fenced"; fi

pv "$survivor" guest stop c1 >/dev/null
check_wait "guest stop c1" "$survivor" c1 '"state":"stopped"'
if pv "$survivor" guest delete c1 >/dev/null; then ok "guest delete c1"; else fail "guest delete c1"; fi
if pv "$survivor" guest show c1 >/dev/null 2>&1; then fail "c1 is gone"; else ok "c1 is gone"; fi

finish
