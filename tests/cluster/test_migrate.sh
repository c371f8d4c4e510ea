#!/bin/bash
# Scenario test of live migration, drain, rolling maintenance and rebalancing
# in the lab (real Corosync, real Ceph, pvhad, guests on RADOS disks):
#  - a counter guest migrated back and forth many times: one copy at a time,
#    its records intact (verified at a reboot from its disk);
#  - the target killed mid-migration: the source runs on, same process;
#  - the source killed mid-migration: exactly one copy runs afterwards;
#  - the link cut mid-migration (the target partitioned): the source runs on;
#  - a drain under load (one guest rewriting its memory), kept through an
#    agent restart, then resume;
#  - rolling maintenance of all 3 nodes: no guest ever stopped, only paused;
#  - rebalance from a skewed start, then no moves on repeated runs;
#  - an anti-affinity pair never shares a node through a drain;
#  - least privilege: each VMM (a target's too) runs as its guest's cephx
#    user, whose key (rados CLI) reads its own disk and not another guest's,
#    deletes nothing, blocklists nothing; each pvhad as its node's user; a
#    deleted guest's user is gone; a diskless guest holds its owner lock,
#    through a migration.
# A slow link (tc tbf on the source's eth0) keeps a migration in pre-copy long
# enough to break it there. Every wait polls with a deadline. Prints ok/FAIL
# lines and "N passed, M failed"; exit 77 (skip) when it cannot run here.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v tc >/dev/null || { echo "skip: tc not installed (iproute2)"; exit 77; }

all_vmms() { # UUID: how many VMMs of it run on all nodes
	local n c=0
	for n in n1 n2 n3; do c=$((c + $(vmm_pids "$n" "$1" | wc -l))); done
	echo "$c"
}
incoming_pids() { # NODE UUID
	local p
	for p in $(vmm_pids "$1" "$2"); do
		tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "--incoming" && echo "$p"
	done
}
slow() { "$LAB" exec "$1" tc qdisc add dev eth0 root tbf rate 16mbit burst 64kbit latency 500ms; }
fast() { "$LAB" exec "$1" tc qdisc del dev eth0 root 2>/dev/null || true; }
wait_phase() { # NODE GUEST PHASE: until its migration is in that phase
	local end=$((SECONDS + DEADLINE_S))
	while ((SECONDS < end)); do
		[[ $(show "$1" "$2") == *"\"phase\":\"$3\""* ]] && return 0
		sleep 0.05
	done
	return 1
}
other_than() { # NODE...: the first of n1..n3 not named
	local n
	for n in n1 n2 n3; do [[ " $* " == *" $n "* ]] || { echo "$n"; return; }; done
}
create() { # NAME IMAGE MEM CMDLINE [more create options]
	local name=$1 image=$2 mem=$3 cmd=$4
	shift 4
	pv n1 guest create "$name" --image "$BUILD/guests/$image" --mem "$mem" --disk 4M --cmdline "$cmd" --start --wait 30 "$@" >/dev/null
}

up 3

# ---- back and forth ------------------------------------------------------
create c1 counter.elf 16M "interval=10" && ok "c1 created and running" || fail "c1 created and running"
uuid=$(show n1 c1 | field uuid)
hops=0 worst=0 bad=0
for i in $(seq 8); do
	from=$(show n1 c1 | field owner)
	case $from in n1) to=n2 ;; n2) to=n3 ;; *) to=n1 ;; esac
	out=$(pv n1 --json guest migrate c1 "$to" --wait 30 2>&1)
	if [[ $out == *'"ok":true'* ]]; then
		hops=$((hops + 1))
		d=$(grep -o '"downtime_us":[0-9]*' <<<"$out" | cut -d: -f2)
		((${d:-0} > worst)) && worst=$d
	else
		bad=$((bad + 1))
		echo "     hop $i $from -> $to: $out"
	fi
	# the source lingers a moment after the handover (migrated: it never runs
	# the guest again) until its agent stops it: then one VMM is left
	end=$((SECONDS + 10))
	until [[ $(all_vmms "$uuid") == 1 ]]; do ((SECONDS < end)) || break; sleep 0.05; done
	[[ $(all_vmms "$uuid") == 1 ]] || { bad=$((bad + 1)); echo "     hop $i: $(all_vmms "$uuid") VMMs of c1 run"; }
done
((hops == 8 && bad == 0)) && ok "c1 migrated 8 times, one copy at a time (worst downtime ${worst} us)" ||
	fail "c1 migrated 8 times, one copy at a time ($hops done, $bad problems)"
o=$(show n1 c1 | field owner)
grep -q CORRUPT "$(console_of "$o" "$uuid")" 2>/dev/null && fail "c1's log verified on its way" || ok "c1 wrote no bad record on its way"

# ---- least privilege: every VMM as its guest's own cephx user --------------
# (docs/storage.md) c1's VMM now is a migration target's; pvhad itself runs
# as its node's user, never client.admin.
CEPHC=(-c "$DIR/ceph/ceph.conf")
ADMIN=("${CEPHC[@]}" -k "$DIR/ceph/client.admin.keyring")
o=$(show n1 c1 | field owner)
cmd=$(tr '\0' ' ' <"/proc/$(vmm_pids "$o" "$uuid" | head -1)/cmdline" 2>/dev/null)
[[ $cmd == *"--ceph-client client.pvha-guest-$uuid "* && $cmd == *"--ceph-keyring /dev/fd/"* &&
	$cmd != *client.admin* && $cmd == *--incoming* ]] &&
	ok "c1's VMM (a migration target) runs as client.pvha-guest-$uuid, its key on an fd" ||
	fail "c1's VMM runs as its guest's user: $cmd"
bad=0
for n in n1 n2 n3; do
	grep -qx "ceph_user = pvha-node-$n" "$DIR/$n/pvhad.conf" || bad=1
	[[ $(stat -c %a "$DIR/$n/ceph.keyring" 2>/dev/null) == 600 ]] || bad=1
done
((bad == 0)) && ok "each pvhad runs as its node's cephx user (keyring 0600), not client.admin" ||
	fail "each pvhad runs as its node's cephx user"
gk=$(ceph "${ADMIN[@]}" auth get-key "client.pvha-guest-$uuid" 2>/dev/null)
ring=$DIR/c1.keyring
(umask 077 && printf '[client.pvha-guest-%s]\n\tkey = %s\n' "$uuid" "$gk" >"$ring")
GUEST=("${CEPHC[@]}" -n "client.pvha-guest-$uuid" --keyring "$ring")
rados "${GUEST[@]}" -p pvha stat "disk.$uuid.header" >/dev/null 2>&1 &&
	ok "c1's key reads c1's disk header (rados)" || fail "c1's key reads c1's disk header (rados)"
pv n1 guest create probe --image "$BUILD/guests/memwriter.elf" --mem 16M --disk 4M \
	--cmdline "mib=1 passes=1 hold" --start --wait 30 >/dev/null 2>&1
ownu=$(show n1 probe | field uuid)
ceph "${ADMIN[@]}" auth get "client.pvha-guest-$ownu" >/dev/null 2>&1 &&
	ok "the agent made probe's cephx user when it started it" || fail "the agent made probe's cephx user"
out=$(rados "${GUEST[@]}" -p pvha stat "disk.$ownu.header" 2>&1)
[[ -n $ownu && $out == *"Operation not permitted"* ]] && ok "c1's key cannot read another guest's disk (rados: $out)" ||
	fail "c1's key cannot read another guest's disk (rados: $out)"
out=$(rados "${GUEST[@]}" -p pvha stat "guest.$ownu" 2>&1)
[[ $out == *"Operation not permitted"* ]] && ok "c1's key cannot read another guest's record" ||
	fail "c1's key cannot read another guest's record ($out)"
out=$(rados "${GUEST[@]}" -p pvha rm "guest.$uuid" 2>&1)
[[ $out == *"Operation not permitted"* ]] && ok "c1's key cannot delete its own record" ||
	fail "c1's key cannot delete its own record ($out)"
out=$(ceph "${GUEST[@]}" osd blocklist add 192.0.2.77 60 2>&1)
[[ $out == *"EACCES"* || $out == *"denied"* ]] && ok "c1's key cannot blocklist" || fail "c1's key cannot blocklist ($out)"
pv n1 guest stop probe --wait 30 >/dev/null && pv n1 guest delete probe >/dev/null 2>&1
end=$((SECONDS + DEADLINE_S))
until ! ceph "${ADMIN[@]}" auth get "client.pvha-guest-$ownu" >/dev/null 2>&1; do
	((SECONDS < end)) || break
	sleep 0.1
done
ceph "${ADMIN[@]}" auth get "client.pvha-guest-$ownu" >/dev/null 2>&1 &&
	fail "a deleted guest's cephx user is gone" || ok "a deleted guest's cephx user is gone"

# ---- a diskless guest holds its owner lock too, through a migration -------
pv n1 guest create d1 --image "$BUILD/guests/memwriter.elf" --mem 16M --cmdline "mib=1 passes=1 hold" \
	--start --wait 30 >/dev/null && ok "d1 (no disk) created and running" || fail "d1 (no disk) created and running"
du=$(show n1 d1 | field uuid)
dsrc=$(show n1 d1 | field owner)
lock_cookie() { rados "${ADMIN[@]}" -p pvha lock info "guest.$1" pvha.owner 2>/dev/null | grep -o '"cookie":"[^"]*"'; }
[[ -n $(lock_cookie "$du") ]] && ok "d1's VMM holds its owner lock ($(lock_cookie "$du"))" || fail "d1's VMM holds its owner lock"
ddst=$(other_than "$dsrc")
out=$(pv n1 --json guest migrate d1 "$ddst" --wait 30 2>&1)
[[ $out == *'"ok":true'* ]] && ok "d1 migrated $dsrc -> $ddst" || fail "d1 migrated $dsrc -> $ddst: $out"
end=$((SECONDS + 10))
until [[ $(all_vmms "$du") == 1 ]]; do ((SECONDS < end)) || break; sleep 0.05; done
cmd=$(tr '\0' ' ' <"/proc/$(vmm_pids "$ddst" "$du" | head -1)/cmdline" 2>/dev/null)
[[ $(all_vmms "$du") == 1 && $cmd == *"--owner rados:pvha/$du"* && -n $(lock_cookie "$du") ]] &&
	ok "one copy of d1 runs on $ddst, holding the lock it took over (--owner)" ||
	fail "one copy of d1 runs on $ddst holding the lock: $(all_vmms "$du") VMMs, $cmd"
pv n1 guest stop d1 --wait 30 >/dev/null
pv n1 guest delete d1 >/dev/null 2>&1

pv n1 guest stop c1 --wait 30 >/dev/null && pv n1 guest start c1 --wait 30 >/dev/null
o=$(show n1 c1 | field owner)
con=$(console_of "$o" "$uuid")
if wait_console "$con" "counter: verified" && ! grep -q CORRUPT "$con"; then
	ok "c1's disk log verified at a reboot after the migrations"
else
	fail "c1's disk log verified at a reboot after the migrations"
fi
ev=$(pv n1 events --guest c1 --max 1000)
n=$(grep -c " migrated " <<<"$ev")
((n >= 8)) && ok "the event log has every migration with its downtime ($n)" || fail "the event log has every migration ($n)"

# ---- the target killed mid-migration -------------------------------------
create w1 memwriter.elf 32M "mib=8 stride=64" && ok "w1 (rewriting 8 MiB) created" || fail "w1 created"
wu=$(show n1 w1 | field uuid)
src=$(show n1 w1 | field owner)
dst=$(other_than "$src")
spid=$(vmm_pids "$src" "$wu")
slow "$src"
pv n1 guest migrate w1 "$dst" --no-wait >/dev/null
if wait_phase n1 w1 precopy && [[ -n $(incoming_pids "$dst" "$wu") ]]; then
	kill -9 $(incoming_pids "$dst" "$wu")
	check_wait "target killed mid-migration: w1 runs on $src" n1 w1 '"state":"running"' "\"owner\":\"$src\"" '"phase":"failed"'
	[[ $(vmm_pids "$src" "$wu") == "$spid" ]] && ok "the source VMM ran on (pid $spid)" || fail "the source VMM ran on"
else
	fail "w1's migration reached pre-copy with an incoming VMM on $dst"
fi
fast "$src"
ev=$(pv n1 events --guest w1 --max 1000)
[[ $ev == *migration-failed* ]] && ok "the event log says the migration failed" || fail "the event log says the migration failed"

# ---- the source killed mid-migration -------------------------------------
src=$(show n1 w1 | field owner)
dst=$(other_than "$src")
slow "$src"
pv n1 guest migrate w1 "$dst" --no-wait >/dev/null
if wait_phase n1 w1 precopy; then
	kill -9 $(vmm_pids "$src" "$wu" | grep -v -x -F "$(incoming_pids "$src" "$wu")")
	check_wait "source killed mid-migration: w1 runs again" n1 w1 '"state":"running"'
	end=$((SECONDS + DEADLINE_S))
	until [[ $(all_vmms "$wu") == 1 ]]; do ((SECONDS < end)) || break; sleep 0.1; done
	[[ $(all_vmms "$wu") == 1 ]] && ok "exactly one copy of w1 runs" || fail "exactly one copy of w1 runs ($(all_vmms "$wu"))"
else
	fail "w1's second migration reached pre-copy"
fi
fast "$src"

# ---- the link cut mid-migration ------------------------------------------
src=$(show n1 w1 | field owner)
dst=$(other_than "$src" n1) # n1 answers the CLI: keep it in the majority
spid=$(vmm_pids "$src" "$wu")
slow "$src"
pv n1 guest migrate w1 "$dst" --no-wait >/dev/null
if wait_phase n1 w1 precopy; then
	"$LAB" partition "$dst" >/dev/null
	check_wait "link to $dst cut mid-migration: w1 runs on $src" n1 w1 '"state":"running"' "\"owner\":\"$src\""
	[[ $(vmm_pids "$src" "$wu") == "$spid" ]] && ok "the source VMM ran on through the cut" || fail "the source VMM ran on through the cut"
	"$LAB" heal >/dev/null
	wait_unfenced "$dst"
	[[ $(all_vmms "$wu") == 1 ]] && ok "after the heal one copy of w1 runs" || fail "after the heal one copy of w1 runs"
else
	fail "w1's third migration reached pre-copy"
fi
fast "$src"

# ---- drain under load ----------------------------------------------------
create c2 counter.elf 16M "interval=10" || fail "c2 created"
busy=$(show n1 w1 | field owner)
out=$(pv n1 node drain "$busy" --wait 60 2>&1)
if [[ $out == *"in maintenance"* ]]; then ok "drain of $busy (w1 rewriting memory) ended in maintenance"; else fail "drain of $busy: $out"; fi
[[ $(pv n1 --json node list) == *"\"name\":\"$busy\""*'"mode":"maintenance","guests":0'* ]] &&
	ok "$busy runs nothing" || fail "$busy runs nothing: $(pv n1 node list)"
o=$(show n1 w1 | field owner)
grep -q BAD "$(console_of "$o" "$wu")" 2>/dev/null && fail "w1 found every word it wrote" || ok "w1 found every word it wrote after the moves"
"$LAB" agent-restart "$busy" >/dev/null
end=$((SECONDS + DEADLINE_S))
until pv "$busy" --json node list 2>/dev/null | grep -q "\"name\":\"$busy\"[^}]*\"mode\":\"maintenance\""; do
	((SECONDS < end)) || break
	sleep 0.1
done
pv "$busy" --json node list 2>/dev/null | grep -q "\"name\":\"$busy\"[^}]*\"mode\":\"maintenance\"" &&
	ok "maintenance survives an agent restart" || fail "maintenance survives an agent restart"
create late counter.elf 16M "interval=50" || fail "late created"
o=$(show n1 late | field owner)
[[ -n $o && $o != "$busy" ]] && ok "a guest started during the maintenance runs on $o, not $busy" ||
	fail "a guest started during the maintenance: on '$o'"
pv n1 node resume "$busy" >/dev/null && ok "resume $busy" || fail "resume $busy"

# ---- rolling maintenance ---------------------------------------------------
declare -A last
for g in c1 c2 w1 late; do
	last[$g]=$(pv n1 --json events --guest "$g" --max 1000 | grep -o '"seq":[0-9]*' | tail -1 | cut -d: -f2)
done
out=$(pv n1 cluster roll --hook 'test -n "$PVHA_NODE"' 2>&1)
[[ $out == *"rolled: 3 node(s)"* ]] && ok "cluster roll over all 3 nodes" || fail "cluster roll: $out"
stopped=0 moved=0 worst=0
for g in c1 c2 w1 late; do
	ev=$(pv n1 events --guest "$g" --after "${last[$g]:-0}" --max 1000)
	moved=$((moved + $(grep -c ' migrated ' <<<"$ev")))
	for d in $(grep -o 'downtime [0-9.]* ms' <<<"$ev" | cut -d' ' -f2 | cut -d. -f1); do
		((d > worst)) && worst=$d
	done
	# the state column of every step: only migrating and running
	if grep -qE '^ *[0-9]+ [^ ]+ [^ ]+ [^ ]+ +(stopping|stopped|starting|recovering|fence-wait|error) ' <<<"$ev"; then
		stopped=1
		echo "     $g during the roll:"
		sed 's/^/       /' <<<"$ev"
	fi
done
# every guest is running, each was only paused for its migrations
for g in c1 c2 w1 late; do [[ $(show n1 "$g") == *'"state":"running"'* ]] || stopped=1; done
((stopped == 0 && moved >= 4)) && ok "no guest stopped during the roll, only paused ($moved migrations)" ||
	fail "no guest stopped during the roll ($moved migrations)"
# one migration's pause: the downtime budget is 10 ms; a loaded 2-core
# machine may stretch one, never to a stop
((worst < 500)) && ok "the longest pause of the roll: ${worst} ms" || fail "a pause of ${worst} ms during the roll"

# ---- rebalance from a skewed start ------------------------------------------
for g in c1 c2 w1 late; do pv n1 guest stop "$g" --wait 30 >/dev/null; done
pv n1 node drain n2 --wait 30 >/dev/null && pv n1 node drain n3 --wait 30 >/dev/null
for g in c1 c2 w1; do pv n1 guest start "$g" --wait 30 >/dev/null; done
pv n1 node resume n2 >/dev/null && pv n1 node resume n3 >/dev/null
[[ $(show n1 c1 | field owner)$(show n1 c2 | field owner)$(show n1 w1 | field owner) == n1n1n1 ]] &&
	ok "skewed start: 3 guests on n1" || fail "skewed start: 3 guests on n1"
out=$(pv n1 --json cluster rebalance)
moves=$(grep -o '"guest":' <<<"$out" | wc -l)
if ((moves >= 1)) && [[ $out == *'"balanced":true'* ]]; then ok "rebalance: $moves move(s) to balance"; else fail "rebalance: $out"; fi
spread=$(for g in c1 c2 w1; do show n1 "$g" | field owner; done | sort -u | wc -l)
((spread == 3)) && ok "the guests are spread over 3 nodes" || fail "the guests are spread over 3 nodes ($spread)"
for i in 1 2; do
	out=$(pv n1 --json cluster rebalance)
	[[ $out == *'"moves":[]'* ]] && ok "rebalance again ($i): no moves" || fail "rebalance again ($i): $out"
done

# ---- anti-affinity through a drain -----------------------------------------
create a1 counter.elf 16M "interval=50" --anti-affinity pair || fail "a1 created"
create a2 counter.elf 16M "interval=50" --anti-affinity pair || fail "a2 created"
o1=$(show n1 a1 | field owner)
o2=$(show n1 a2 | field owner)
[[ -n $o1 && $o1 != "$o2" ]] && ok "anti-affinity: a1 on $o1, a2 on $o2" || fail "anti-affinity pair apart ($o1, $o2)"
pv n1 node drain "$o1" --wait 60 >/dev/null || fail "drain $o1"
n1o=$(show n1 a1 | field owner)
[[ -n $n1o && $n1o != "$o1" && $n1o != "$(show n1 a2 | field owner)" ]] &&
	ok "drain of $o1: a1 went to $n1o, not next to a2" || fail "drain of $o1: a1 on '$n1o', a2 on $(show n1 a2 | field owner)"
pv n1 node resume "$o1" >/dev/null
o1=$(show n1 a1 | field owner)
o2=$(show n1 a2 | field owner)
out=$(pv n1 guest migrate a1 "$o2" --wait 30 2>&1) && fail "a1 migrated next to a2" ||
	{ [[ $out == *"anti-affinity 'pair'"* ]] && ok "a migration next to a2 is refused: ${out#pvha: }" || fail "refused for its rule: $out"; }

keep_logs migrate
"$LAB" down --dir "$DIR" >/dev/null 2>&1

# ---- automatic rebalancing, with hysteresis -----------------------------------
up 3 --rebalance 0.3
pv n1 node drain n2 --wait 30 >/dev/null && pv n1 node drain n3 --wait 30 >/dev/null
for g in r1 r2 r3; do create "$g" counter.elf 16M "interval=50" || fail "$g created"; done
[[ $(show n1 r1 | field owner)$(show n1 r2 | field owner)$(show n1 r3 | field owner) == n1n1n1 ]] &&
	ok "skewed start: r1..r3 on n1" || fail "skewed start: r1..r3 on n1"
pv n1 node resume n2 >/dev/null && pv n1 node resume n3 >/dev/null
end=$((SECONDS + 3 * DEADLINE_S))
spread=0
while ((SECONDS < end)); do
	spread=$(for g in r1 r2 r3; do show n1 "$g" | field owner; done | sort -u | wc -l)
	((spread == 3)) && break
	sleep 0.2
done
((spread == 3)) && ok "the leader rebalanced by itself: one guest a node" || fail "automatic rebalance ($spread nodes used)"
[[ $(pv n1 events --max 1000) == *"rebalance"*"migration(s)"* ]] && ok "the event log says why it moved them" ||
	fail "the event log says why it moved them"
count() { for g in r1 r2 r3; do pv n1 events --guest "$g" --max 1000; done | grep -c ' migrated '; }
checks() { pv n1 --json cluster status | grep -o '"rebalance_checks":[0-9]*' | cut -d: -f2; }
before=$(count)
c0=$(checks)
end=$((SECONDS + 3 * DEADLINE_S))
until (($(checks) >= c0 + 2)); do ((SECONDS < end)) || break; sleep 0.2; done
(($(checks) >= c0 + 2)) && [[ $(count) == "$before" ]] &&
	ok "two more checks of the balance: nothing moved again" || fail "no moves once balanced ($before -> $(count) migrations, checks $c0 -> $(checks))"
keep_logs rebalance
finish
