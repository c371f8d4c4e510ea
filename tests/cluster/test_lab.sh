#!/bin/bash
# Scenario test of the lab (deploy/lab/pvha-lab) with real Corosync: a 3-node
# lab (token 500 ms, coefficient 0, no Ceph, no agents) through power-off,
# boot, partition and heal, then a 2-node lab (two_node). Every wait polls
# with a deadline. Prints ok/FAIL lines and "N passed, M failed"; exit 0 only
# when nothing failed, 77 (skip) when it cannot run here (not root, no
# corosync/nft/ip). A lab that is already up is left alone, and is a failure.
set -uo pipefail

SRC=${PVHA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LAB=$SRC/deploy/lab/pvha-lab
TOKEN=500
COEFF=0
EVENT_DEADLINE_MS=10000 # token 500: corosync needs ~1 s; generous on a busy 2-core machine

PASSED=0
FAILED=0

ok() {
	echo "ok   $*"
	PASSED=$((PASSED + 1))
}

fail() {
	echo "FAIL $*"
	FAILED=$((FAILED + 1))
}

# check DESCRIPTION COMMAND...: ok when COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((10#$t / 1000))
}

secs() {
	printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

finish() {
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0))
	exit $?
}

# ---- can it run here? --------------------------------------------------------

if ((EUID != 0)); then
	echo "skip: the lab needs root (namespaces, bridge, mounts)"
	exit 77
fi
for t in corosync corosync-quorumtool nft ip; do
	if ! command -v "$t" >/dev/null; then
		echo "skip: $t not installed (deploy/install-deps)"
		exit 77
	fi
done
if [[ ! -x $LAB ]]; then
	fail "$LAB is missing"
	finish
fi
if [[ -n $(ip netns list | grep -E '^pvha-n[0-9]+( |$)') ]] || ip link show pvha-br0 >/dev/null 2>&1; then
	fail "a lab is already up on this machine (pvha-lab status); not touching it"
	finish
fi

DIR=$(mktemp -d /tmp/pvha-lab-test.XXXXXX)
export PVHA_LAB_DIR=$DIR
LAB_UP=0

cleanup() {
	if ((LAB_UP)); then
		"$LAB" down --dir "$DIR" >/dev/null 2>&1 || true
	fi
	[[ -d $DIR && -z $(ls -A "$DIR" 2>/dev/null) ]] && rmdir "$DIR"
	return 0
}
trap cleanup EXIT
# fd 3: the test's own stdout, even inside a redirected command
exec 3>&1
trap 'echo "FAIL interrupted: taking the lab down" >&3; echo "$PASSED passed, $((FAILED + 1)) failed" >&3; exit 1' INT TERM

lab() {
	"$LAB" "$@"
}

quiet() {
	"$@" >/dev/null
}

# view I: "yes:1,2,3" (quorate, members), "no:1", or "down" when node I's
# corosync does not answer.
view() {
	local out line q="" m=""
	out=$(timeout 5 "$LAB" exec "n$1" corosync-quorumtool -s -p 2>/dev/null)
	[[ -n $out ]] || {
		echo down
		return
	}
	local in_members=0
	while IFS= read -r line; do
		case $line in
		Quorate:*) [[ $line == *Yes* ]] && q=yes || q=no ;;
		"Membership information"*) in_members=1 ;;
		*)
			if ((in_members)) && [[ $line =~ ^[[:space:]]*([0-9]+)[[:space:]]+[0-9]+[[:space:]] ]]; then
				m+="${m:+,}${BASH_REMATCH[1]}"
			fi
			;;
		esac
	done <<<"$out"
	echo "$q:$m"
}

# views N: "n1=yes:1,2,3 n2=..." for nodes 1..N
views() {
	local i s=""
	for ((i = 1; i <= $1; i++)); do
		s+="${s:+ }n$i=$(view "$i")"
	done
	echo "$s"
}

# await DESCRIPTION T0_MS N "n1=... n2=..." : polls until every named node shows
# the expected view (deadline EVENT_DEADLINE_MS after T0); reports the time
# from T0 to the first poll that saw it.
await() {
	local what=$1 t0=$2 n=$3 want=$4 item i exp got all last=""
	while :; do
		all=1
		last=""
		for item in $want; do
			i=${item%%=*}
			i=${i#n}
			exp=${item#*=}
			got=$(view "$i")
			last+="${last:+ }n$i=$got"
			[[ $got == "$exp" ]] || all=0
		done
		if ((all)); then
			ok "$what after $(secs $(($(now_ms) - t0))) s ($want)"
			return 0
		fi
		if (($(now_ms) - t0 > EVENT_DEADLINE_MS)); then
			fail "$what: wanted '$want' within $((EVENT_DEADLINE_MS / 1000)) s, last saw '$last' (all: $(views "$n"))"
			return 1
		fi
		sleep 0.02
	done
}

no_ns_procs() {
	[[ -z $(ip netns pids "$1" 2>/dev/null) ]]
}

no_shm_of() {
	local pid
	for pid in "$@"; do
		compgen -G "/dev/shm/qb-*-$pid-*" >/dev/null && return 1
		compgen -G "/dev/shm/qb-$pid-*" >/dev/null && return 1
	done
	return 0
}

# nothing_left PIDS...: no lab namespace, bridge, veth, process, /dev/shm file
# of these corosync PIDs, state directory.
nothing_left() {
	local what=$1
	shift
	check "$what: no lab namespace" test -z "$(ip netns list | grep -E '^pvha-n[0-9]+( |$)')"
	check "$what: no bridge" bash -c '! ip link show pvha-br0 >/dev/null 2>&1'
	check "$what: no lab veth" test -z "$(ip -o link show | grep -E ': pvha-')"
	check "$what: no process of the lab" test -z "$(pgrep -f -- "$DIR/" || true)"
	check "$what: corosync PIDs $* gone" bash -c 'for p; do [[ -d /proc/$p ]] && ! grep -q "^State:.*Z" /proc/$p/status && exit 1; done; exit 0' _ "$@"
	check "$what: no /dev/shm files of those corosyncs" no_shm_of "$@"
	check "$what: state directory removed" test ! -e "$DIR/lab.env"
}

corosync_pids() {
	cat "$DIR"/n*/corosync.pids 2>/dev/null | tr '\n' ' '
}

# ---- usage errors --------------------------------------------------------------

rc=0
lab up --nodes 1 --dir "$DIR" >/dev/null 2>&1 || rc=$?
check "up --nodes 1 is a usage error (exit 2, got $rc)" test "$rc" -eq 2
rc=0
lab up --nodes 9 --dir "$DIR" >/dev/null 2>&1 || rc=$?
check "up --nodes 9 is a usage error (exit 2, got $rc)" test "$rc" -eq 2
rc=0
lab frobnicate >/dev/null 2>&1 || rc=$?
check "an unknown command is a usage error (exit 2, got $rc)" test "$rc" -eq 2

# ---- 3 nodes -------------------------------------------------------------------

echo "== 3 nodes, token $TOKEN ms, coefficient $COEFF"
LAB_UP=1
t0=$(now_ms)
if out=$(lab up --nodes 3 --token "$TOKEN" --token-coefficient "$COEFF" --dir "$DIR" --no-ceph --no-agents 2>&1); then
	ok "up 3 nodes ($(secs $(($(now_ms) - t0))) s; $(grep '^quorate:' <<<"$out"))"
else
	fail "up 3 nodes"
	echo "$out" | sed 's/^/    /'
	finish
fi
check "every node quorate with members 1,2,3" test "$(views 3)" == "n1=yes:1,2,3 n2=yes:1,2,3 n3=yes:1,2,3"
tok=$(lab exec n1 corosync-cmapctl -g runtime.config.totem.token 2>/dev/null | awk '{print $NF}')
check "effective token is $TOKEN ms (runtime.config.totem.token = $tok)" test "$tok" == "$TOKEN"
rc=0
msg=$(lab up --dir "$DIR.other" --no-ceph 2>&1) || rc=$?
check "up while a lab is up fails clearly (exit $rc: $msg)" bash -c '[[ $0 -eq 1 && $1 == *"already up"* ]]' "$rc" "$msg"
rmdir "$DIR.other" 2>/dev/null || true
rc=0
lab poweroff n4 >/dev/null 2>&1 || rc=$?
check "poweroff n4 in a 3-node lab is a usage error (exit 2, got $rc)" test "$rc" -eq 2
json=$(lab status --json)
check "status --json names 3 nodes, all quorate" bash -c '[[ $(grep -o "\"quorate\": true" <<<"$0" | wc -l) -eq 3 ]]' "$json"

n3_pid=$(cat "$DIR/n3/corosync.pids")
t0=$(now_ms)
check "poweroff n3" quiet lab poweroff n3
check "n3 runs no process" no_ns_procs pvha-n3
check "no /dev/shm file of n3's corosync ($n3_pid) left" no_shm_of "$n3_pid"
await "poweroff n3 -> n1, n2 see 2 members, quorate" "$t0" 3 "n1=yes:1,2 n2=yes:1,2"

t0=$(now_ms)
check "boot 3 (a bare number names n3)" quiet lab boot 3
await "boot n3 -> 3 members again" "$t0" 3 "n1=yes:1,2,3 n2=yes:1,2,3 n3=yes:1,2,3"

t0=$(now_ms)
check "partition n1" quiet lab partition n1
n1_json=$(lab status --json | grep -o '"name": "n1"[^}]*')
check "status --json shows n1 partitioned" bash -c '[[ $0 == *"\"partitioned\": true"* ]]' "$n1_json"
await "partition n1 -> n1 loses quorum, n2/n3 keep it with 2 members" "$t0" 3 "n1=no:1 n2=yes:2,3 n3=yes:2,3"

t0=$(now_ms)
check "heal" quiet lab heal
await "heal -> 3 members again" "$t0" 3 "n1=yes:1,2,3 n2=yes:1,2,3 n3=yes:1,2,3"

pids=$(corosync_pids)
check "down" lab down
LAB_UP=0
nothing_left "down (3 nodes)" $pids
check "down again is not an error" lab down

# ---- 2 nodes -------------------------------------------------------------------

echo "== 2 nodes (two_node)"
LAB_UP=1
mkdir -p "$DIR"
t0=$(now_ms)
if out=$(lab up --nodes 2 --token "$TOKEN" --token-coefficient "$COEFF" --dir "$DIR" --no-ceph --no-agents 2>&1); then
	ok "up 2 nodes ($(secs $(($(now_ms) - t0))) s; $(grep '^quorate:' <<<"$out"))"
else
	fail "up 2 nodes"
	echo "$out" | sed 's/^/    /'
fi
check "both nodes quorate with members 1,2" test "$(views 2)" == "n1=yes:1,2 n2=yes:1,2"
flags=$(lab exec n1 corosync-quorumtool -s 2>/dev/null | grep '^Flags:' || true)
check "two_node is set ($flags)" bash -c '[[ $0 == *2Node* ]]' "$flags"
pids=$(corosync_pids)
check "down" lab down
LAB_UP=0
nothing_left "down (2 nodes)" $pids

finish
