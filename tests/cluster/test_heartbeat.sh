#!/bin/bash
# Heartbeat monitoring in the lab (docs/heartbeat.md): 3 nodes, real
# Corosync, a real Ceph, one pvhad each, and the test guest hbstop, which
# sends heartbeats for 4 s after each boot and then none while it runs on (a
# hung service in a live VMM). With --heartbeat-timeout 3 and one restart in
# place allowed in 600 s, HA restarts it in place on its node, then moves it
# to another node, restarts it there once, and then leaves it stopped in
# `error` with the reason; every step is in the guest's event log. A start
# request clears the error. Every wait polls the agents with a deadline.
# Prints ok/FAIL lines and "N passed, M failed"; exit 77 (skip) when it
# cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

up 3

# events_has NODE TEXT: the guest's event log (as NODE reads it) contains TEXT.
events_has() { pv "$1" events --guest h1 2>/dev/null | grep -qF "$2"; }
wait_event() { # NODE TEXT
	local end=$((SECONDS + DEADLINE_S))
	until events_has "$1" "$2"; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}
check_event() { # WHAT NODE TEXT
	if wait_event "$2" "$3"; then ok "$1"; else fail "$1"; pv "$2" events --guest h1 2>&1 | tail -8 | sed 's/^/     /'; fi
}
all_vmm_pids() { local n; for n in n1 n2 n3; do vmm_pids "$n" "$1"; done; }

if pv n1 guest create h1 --image "$BUILD/guests/hbstop.elf" --mem 8M --cmdline "beat_ms=4000" \
	--heartbeat-timeout 3 --heartbeat-max-resets 1 --heartbeat-window 600 --start >/dev/null; then
	ok "guest create h1 --heartbeat-timeout 3 --heartbeat-max-resets 1 --heartbeat-window 600 --start"
else
	fail "guest create h1 with heartbeat monitoring"
	finish
fi
check_wait "h1 runs, monitored" n2 h1 '"state":"running"' '"heartbeat_timeout_s":3' '"heartbeat_max_resets":1' \
	'"heartbeat_window_s":600' '"heartbeat_moved":false'
if pv n3 guest show h1 | grep -q "heartbeat:  timeout 3 s; 1 restart(s) in place in 600 s, then a move"; then
	ok "guest show h1 shows its heartbeat policy"
else
	fail "guest show h1 shows its heartbeat policy"
fi
first=$(show n1 h1 | field owner)
uuid=$(show n1 h1 | field uuid)
pid1=$(vmm_pids "$first" "$uuid" | head -1)
[[ -n $first && -n $pid1 ]] && ok "h1 on $first (VMM $pid1)" || fail "h1 has an owner and a VMM"
con=$(console_of "$first" "$uuid")
if wait_console "$con" "hbstop: heartbeats stop now"; then ok "h1's heartbeats stopped (its console says so)"; else fail "h1's heartbeats stopped"; fi

# 1. restarted in place
check_event "event: heartbeat lost on $first, restarting it in place" n2 "no heartbeat for"
check_event "event: restarted in place" n2 "heartbeat lost, restarting in place"
check_wait "h1 runs again on $first" n1 h1 '"state":"running"' "\"owner\":\"$first\""
pid2=$(vmm_pids "$first" "$uuid" | head -1)
if [[ -n $pid2 && $pid2 != "$pid1" ]] && ! "$LAB" exec "$first" kill -0 "$pid1" 2>/dev/null; then
	ok "a new VMM ($pid2) runs h1 on $first, the hung one ($pid1) is gone"
else
	fail "a new VMM runs h1 on $first (old $pid1, now '${pid2:-none}')"
fi

# 2. moved to another node
check_event "event: heartbeat lost too often on $first, moving it" n3 "heartbeat lost too often on its node, moving it"
if second=$(wait_owner_not n1 h1 "$first"); then ok "h1 moved from $first to $second"; else fail "h1 moved away from $first"; second=""; fi
check_wait "h1 says it was moved for its heartbeat" n1 h1 '"heartbeat_moved":true'
if [[ -z $(vmm_pids "$first" "$uuid") ]]; then ok "no VMM of h1 left on $first"; else fail "no VMM of h1 left on $first"; fi

# 3. restarted once there, then error with the reason
check_event "event: heartbeat lost too often, also after a move -> error" n2 "heartbeat lost too often, also after a move"
check_wait "h1 is in error with the reason" n3 h1 '"state":"error"' '"reason":"heartbeat lost too often, also after a move"'
if pv n1 guest show h1 | grep -q "^reason: *heartbeat lost too often, also after a move"; then
	ok "guest show h1: state error and its reason"
else
	fail "guest show h1: state error and its reason"
fi
end=$((SECONDS + DEADLINE_S))
while [[ -n $(all_vmm_pids "$uuid") ]] && ((SECONDS < end)); do sleep 0.2; done
if [[ -z $(all_vmm_pids "$uuid") ]]; then ok "h1 is left stopped: no VMM of it on any node"; else fail "h1 is left stopped"; fi
n_lost=$(pv n1 events --guest h1 | grep -c "heartbeat-lost")
if ((n_lost == 4)); then ok "4 heartbeat losses in the log: restart, move, restart, error"; else fail "4 heartbeat losses in the log (got $n_lost)"; fi

# 4. a person's start clears it: monitoring off, it runs and stays up
if pv n2 guest set h1 --heartbeat-timeout off >/dev/null; then ok "guest set h1 --heartbeat-timeout off"; else fail "guest set h1 --heartbeat-timeout off"; fi
check_wait "h1 is no longer monitored" n1 h1 '"heartbeat_timeout_s":0'
if pv n2 guest start h1 >/dev/null; then ok "guest start h1"; else fail "guest start h1"; fi
check_wait "the start cleared the error: h1 runs" n3 h1 '"state":"running"' '"reason":""' '"heartbeat_moved":false'
owner=$(show n1 h1 | field owner)
pid=$(vmm_pids "$owner" "$uuid" | head -1)
if wait_console "$(console_of "$owner" "$uuid")" "hbstop: heartbeats stop now"; then ok "h1's heartbeats stopped again"; else fail "h1's heartbeats stopped again"; fi
# Unmonitored, nothing happens: its VMM says the last heartbeat is twice the
# old timeout old, and the same VMM still runs it.
age=0
end=$((SECONDS + DEADLINE_S))
while ((age < 6000 && SECONDS < end)); do
	age=$(pv "$owner" vmm "/run/pvha/guests/$uuid.sock" status 2>/dev/null | sed -n 's/^heartbeat: *seq [0-9]*, \([0-9]*\) ms ago/\1/p')
	age=${age:-0}
	((age >= 6000)) || sleep 0.2
done
if ((age >= 6000)); then ok "h1's last heartbeat is ${age} ms old (its VMM says)"; else fail "h1's last heartbeat gets old (its VMM says ${age} ms)"; fi
if [[ $(vmm_pids "$owner" "$uuid" | head -1) == "$pid" ]] && [[ $(show n2 h1) == *'"state":"running"'* ]]; then
	ok "unmonitored, h1 runs on in the same VMM ($pid)"
else
	fail "unmonitored, h1 runs on in the same VMM"
fi
n_lost=$(pv n1 events --guest h1 | grep -c "heartbeat-lost")
if ((n_lost == 4)); then ok "no heartbeat loss logged while unmonitored"; else fail "no heartbeat loss logged while unmonitored (now $n_lost)"; fi

pv n1 guest stop h1 >/dev/null
check_wait "guest stop h1" n1 h1 '"state":"stopped"'
if pv n1 guest delete h1 >/dev/null; then ok "guest delete h1"; else fail "guest delete h1"; fi
keep_logs heartbeat
finish
