#!/bin/bash
# pvha cluster init / pvha node join on hosts that run Corosync and reach a
# Ceph, and nothing of pvha yet (the lab with --config skeleton: each node's
# pvhad.conf holds only the keys an administrator sets by hand). Proves: each
# bad setup is refused with a message that says what to fix and changes
# nothing (no corosync, a missing conf, an unreachable Ceph, joining before
# init, a config that names another node, a Ceph user that may not make
# users, a partition without quorum); init
# makes the pool, the registry and the node's Ceph user, a second init
# changes nothing; join on the other nodes; pvhad started from the generated
# configs runs a guest, the agent connected as the node's own Ceph user and
# the guest's VMM as the guest's own.
source "$(dirname "$0")/lib.sh"

CONF_OF() { echo "$DIR/$1/pvhad.conf"; }
# run NODE CMD...: output and status into OUT and RC
run() { OUT=$("$LAB" exec "$@" 2>&1); RC=$?; }
expect_fail() { # WHAT TEXT: the last run failed (status 1) and said TEXT
	if ((RC == 1)) && [[ $OUT == *"$2"* ]]; then ok "$1"; else fail "$1 (status $RC): $OUT"; fi
}

# ---- before the lab: no corosync in this namespace
OUT=$("$PVHA" cluster init --ceph-conf /nonexistent/ceph.conf --config "$DIR/none.conf" 2>&1); RC=$?
expect_fail "a missing ceph.conf is named" "--ceph-conf /nonexistent/ceph.conf: No such file"
OUT=$("$PVHA" cluster init --ceph-conf /etc/hostname --config "$DIR/none.conf" 2>&1); RC=$?
expect_fail "no corosync running: said so" "corosync is not running on this host"
[[ ! -e $DIR/none.conf ]] && ok "no config written" || fail "a config was written"

up 3 --no-agents --config skeleton
CEPH_CONF=$DIR/ceph/ceph.conf
before=$(cat "$(CONF_OF n1)")

# ---- an unreachable Ceph (a monitor address where nothing listens)
printf '[global]\nmon_host = v1:%s:1\n' "$(sed -n 's/.*v1:\([0-9.]*\):6789.*/\1/p' "$CEPH_CONF")" >"$DIR/dead.conf"
run n1 "$PVHA" cluster init --ceph-conf "$DIR/dead.conf" --config "$(CONF_OF n1)" --timeout 2
expect_fail "an unreachable Ceph: said so" "Ceph is unreachable"
[[ $(cat "$(CONF_OF n1)") == "$before" ]] && ok "config untouched" || fail "config changed"

# ---- join before init
run n2 "$PVHA" node join --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n2)"
expect_fail "join before init: told to run init" "pvha cluster init"

# ---- init on n1, twice
run n1 "$PVHA" cluster init --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n1)"
if ((RC == 0)) && [[ $OUT == *"pool boot: created, registry created"* && $OUT == *"config $(CONF_OF n1): written"* ]]; then
	ok "init: pool and registry created, config written"
else
	fail "init (status $RC): $OUT"
fi
KEYRING=$DIR/n1/ceph.client.pvha-node-n1.keyring
[[ $(stat -c %a "$KEYRING" 2>/dev/null) == 600 ]] && ok "the node's keyring is owner-only" || fail "keyring mode"
grep -qx 'ceph_user = pvha-node-n1' "$(CONF_OF n1)" && grep -qx 'state_dir = .*' "$(CONF_OF n1)" &&
	ok "config: the node's user, the lab's keys kept" || fail "config: $(cat "$(CONF_OF n1)")"
if "$BUILD/bin/pvhad" --check --config "$(CONF_OF n1)" >/dev/null 2>&1; then ok "pvhad --check accepts it"; else fail "pvhad --check"; fi
ceph -c "$CEPH_CONF" osd pool application get boot 2>/dev/null | grep -q '"pvha"' &&
	ok "the pool carries the pvha tag" || fail "no pvha tag on the pool"
ceph -c "$CEPH_CONF" auth get client.pvha-node-n1 2>/dev/null | grep -q 'osd blocklist' &&
	ok "the node's user has the node caps" || fail "node user caps"
after=$(cat "$(CONF_OF n1)" "$KEYRING" "$DIR/n1/ceph.conf")
run n1 "$PVHA" cluster init --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n1)"
if ((RC == 0)) && [[ $OUT == *"a pvha pool already, registry there"* && $OUT == *": unchanged"* &&
	$(cat "$(CONF_OF n1)" "$KEYRING" "$DIR/n1/ceph.conf") == "$after" ]]; then
	ok "init again: adopts, changes nothing"
else
	fail "init again (status $RC): $OUT"
fi

run n1 "$PVHA" node join --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n1)"
((RC == 0)) && [[ $(cat "$(CONF_OF n1)" "$KEYRING" "$DIR/n1/ceph.conf") == "$after" ]] &&
	ok "join on the node that ran init: nothing changes" || fail "join on n1 (status $RC): $OUT"
json=$("$LAB" exec n1 "$PVHA" --json cluster init --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n1)" 2>/dev/null)
[[ $json == '{"node":"n1","pool":"boot","pool_created":false,"registry_created":false,"config":"'"$(CONF_OF n1)"'"}' ]] &&
	ok "--json: one object on stdout" || fail "--json: '$json'"

# ---- a config that names another node
cp "$(CONF_OF n1)" "$DIR/n3/other.conf"
run n3 "$PVHA" node join --ceph-conf "$CEPH_CONF" --pool boot --config "$DIR/n3/other.conf"
expect_fail "a config of another node: refused, naming the key" "node_name is 'n1' there, this node needs 'n3'"
[[ ! -e $DIR/n3/ceph.client.pvha-node-n3.keyring ]] && ok "nothing written for it" || fail "a keyring was written"

# ---- a Ceph user with no right to make users (n1's own)
before=$(cat "$(CONF_OF n2)")
run n2 "$PVHA" node join --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n2)" \
	--ceph-client client.pvha-node-n1 --keyring "$KEYRING"
expect_fail "no right to create users: said so" "client.pvha-node-n1 has no right to create Ceph users"
[[ $(cat "$(CONF_OF n2)") == "$before" && ! -e $DIR/n2/ceph.conf ]] && ok "nothing written for it" ||
	fail "n2's files changed"

# ---- join on n2 and n3; n3 again from its config alone
echo "# mine" >"$DIR/n3/ceph.conf"
before=$(cat "$(CONF_OF n3)")
run n3 "$PVHA" node join --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF n3)"
expect_fail "a ceph.conf of someone else's: refused, not replaced" "$DIR/n3/ceph.conf exists and differs"
[[ $(cat "$DIR/n3/ceph.conf") == "# mine" && $(cat "$(CONF_OF n3)") == "$before" &&
	! -e $DIR/n3/ceph.client.pvha-node-n3.keyring ]] && ok "nothing written for it" || fail "n3's files changed"
rm "$DIR/n3/ceph.conf"
for n in n2 n3; do
	run "$n" "$PVHA" node join --ceph-conf "$CEPH_CONF" --pool boot --config "$(CONF_OF $n)"
	if ((RC == 0)) && [[ $OUT == *"pool boot: a pvha pool already"* ]]; then ok "join $n"; else fail "join $n (status $RC): $OUT"; fi
done
run n3 "$PVHA" node join --config "$(CONF_OF n3)" --keyring "$DIR/ceph/client.admin.keyring"
((RC == 0)) && [[ $OUT == *": unchanged"* ]] && ok "join again from the config alone: unchanged" || fail "join again (status $RC): $OUT"

# ---- pvhad from the generated configs, and a guest
for n in n1 n2 n3; do "$LAB" agent-restart "$n" >/dev/null || fail "starting pvhad on $n"; done
end=$((SECONDS + DEADLINE_S))
until pv n1 --json node list 2>/dev/null | grep -o '"member":true' | wc -l | grep -qx 3; do
	((SECONDS < end)) || break
	sleep 0.2
done
pv n1 --json node list 2>/dev/null | grep -o '"member":true' | wc -l | grep -qx 3 &&
	ok "three agents online from the generated configs" || fail "agents: $(pv n1 node list 2>&1)"
pv n2 guest create boot1 --image "$BUILD/guests/counter.elf" --mem 16M --disk 4M --start --wait 30 >/dev/null 2>&1
check_wait "a guest runs" n1 boot1 '"state":"running"'
owner=$(show n1 boot1 | field owner)
uuid=$(show n1 boot1 | field uuid)
vmm=$(vmm_pids "$owner" "$uuid" | head -1)
# the agent as the node's user, its VMM as the guest's own (the node's user made it)
if [[ -n $vmm ]] && tr '\0' ' ' <"/proc/$vmm/cmdline" | grep -q -- "--ceph-client client.pvha-guest-$uuid "; then
	ok "its VMM connects as client.pvha-guest-$uuid, made by client.pvha-node-$owner"
else
	fail "the VMM's Ceph user (owner '$owner', vmm '$vmm')"
fi

# ---- no quorum
"$LAB" poweroff n2 >/dev/null
"$LAB" poweroff n3 >/dev/null
end=$((SECONDS + DEADLINE_S))
while ((SECONDS < end)); do
	run n1 "$PVHA" node join --config "$(CONF_OF n1)"
	[[ $OUT == *"not quorate"* ]] && break
	sleep 0.2
done
expect_fail "a partition without quorum: said so" "is not quorate: 1 of 3 expected votes"

keep_logs bootstrap
finish
