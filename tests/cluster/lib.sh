# Shared by the lab scenario tests (tests/cluster/test_*.sh): skip checks, a
# lab directory of the test's own torn down on exit, ok/FAIL counting with
# the closing "N passed, M failed" line, and polling helpers (every wait polls
# the agents' JSON with a deadline, never a fixed sleep). Source it.
set -uo pipefail

SRC=${PVHA_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=${PVHA_BUILD_DIR:-$SRC/build}
LAB=$SRC/deploy/lab/pvha-lab
PVHA=$BUILD/bin/pvha
DEADLINE_S=30
PASSED=0
FAILED=0

ok() { echo "ok   $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
finish() {
	if ((FAILED > 0)) && [[ -n ${LOGS_KEPT:-} ]]; then
		keep_logs "$(basename "$0" .sh)-end"
		local f
		for f in "$LOGS_KEPT"/*.log; do
			[[ -f $f ]] || continue
			echo "---- the last lines of $(basename "$f")"
			tail -n 25 "$f" | sed 's/^/  /'
		done
	fi
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0))
	exit $?
}

if ((EUID != 0)); then echo "skip: the lab needs root"; exit 77; fi
for t in corosync nft ip ceph-mon; do
	command -v "$t" >/dev/null || { echo "skip: $t not installed (deploy/install-deps)"; exit 77; }
done
if [[ ! -x $BUILD/bin/pvhad || ! -x $PVHA ]]; then
	fail "pvhad or pvha is not built in $BUILD"
	finish
fi
if [[ -n $(ip netns list | grep -E '^pvha-n[0-9]+( |$)') ]] || ip link show pvha-br0 >/dev/null 2>&1; then
	fail "a lab is already up on this machine; not touching it"
	finish
fi

DIR=$(mktemp -d /tmp/pvha-lab-test.XXXXXX)
export PVHA_LAB_DIR=$DIR PVHA_BUILD_DIR=$BUILD
# keep_logs TAG: with PVHA_KEEP_LOGS=DIR, copies every agent's log there as
# TAG-nX.log (called before each lab goes down, and on exit).
# Without it they go to a directory of the test's own, whose tails finish
# prints when something failed (so that a CI log says what the agents did).
LOGS_KEPT=${PVHA_KEEP_LOGS:-$(mktemp -d /tmp/pvha-lab-logs.XXXXXX)}
keep_logs() {
	local f n
	for f in "$DIR"/n*/pvhad.log; do
		[[ -f $f ]] && cp "$f" "$LOGS_KEPT/$1-$(basename "$(dirname "$f")").log"
	done
	# and the guests' consoles (what a guest said before it ended)
	for f in "$DIR"/n*/pvhad/console/*; do
		[[ -f $f ]] || continue
		n=$(basename "$(dirname "$(dirname "$(dirname "$f")")")")
		cp "$f" "$LOGS_KEPT/$1-$n-console-$(basename "$f" .log).log"
	done
	return 0
}
trap '"$LAB" down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR"; [[ -n ${PVHA_KEEP_LOGS:-} ]] || rm -rf "$LOGS_KEPT"' EXIT

pv() { local n=$1; shift; "$LAB" exec "$n" "$PVHA" "$@"; }
show() { pv "$1" --json guest show "$2" 2>/dev/null; }
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

# wait_for NODE GUEST PATTERN...: until the guest's JSON (as NODE sees it) matches every pattern.
wait_for() {
	local node=$1 guest=$2 end=$((SECONDS + DEADLINE_S)) s p all
	shift 2
	while ((SECONDS < end)); do
		s=$(show "$node" "$guest")
		all=1
		for p in "$@"; do [[ $s == *"$p"* ]] || all=0; done
		((all)) && return 0
		sleep 0.1
	done
	echo "     $guest as $node sees it: ${s:-nothing}" >&2
	return 1
}
check_wait() {
	local what=$1
	shift
	if wait_for "$@"; then ok "$what"; else fail "$what"; fi
}
console_of() { # NODE UUID
	echo "$DIR/$1/pvhad/console/$2.console"
}
wait_console() { # FILE TEXT
	local end=$((SECONDS + DEADLINE_S))
	while ((SECONDS < end)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}


up() { # NODES [more pvha-lab up arguments]
	local n=$1
	shift
	if ! "$LAB" up --dir "$DIR" --nodes "$n" --token 500 --token-coefficient 0 "$@" >"$DIR.up.log" 2>&1; then
		fail "pvha-lab up ($n nodes)"
		tail -20 "$DIR.up.log"
		rm -f "$DIR.up.log"
		finish
	fi
	rm -f "$DIR.up.log"
	ok "lab up: $n nodes with agents${*:+ ($*)}"
}
# pgrep sees every namespace's processes: keep those of the node's namespace.
vmm_pids() {
	local p
	for p in $(ip netns pids "pvha-$1" 2>/dev/null); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q "pvha-vmm.*$2" && echo "$p"
	done
}
wait_no_vmm() { # NODE UUID
	local end=$((SECONDS + DEADLINE_S))
	while [[ -n $(vmm_pids "$1" "$2") ]]; do ((SECONDS < end)) || return 1; sleep 0.1; done
}
# wait_unfenced NODE: until NODE's agent is quorate and reaches the storage.
wait_unfenced() {
	local end=$((SECONDS + DEADLINE_S))
	until pv "$1" --json cluster status 2>/dev/null | grep -q '"quorate":true.*"storage_ok":true'; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}
wait_owner_not() { # NODE GUEST OLD
	local end=$((SECONDS + DEADLINE_S)) s o
	while ((SECONDS < end)); do
		s=$(show "$1" "$2")
		o=$(field owner <<<"$s")
		[[ $s == *'"state":"running"'* && -n $o && $o != "$3" ]] && { echo "$o"; return 0; }
		sleep 0.1
	done
	return 1
}

