#!/bin/bash
# The lab from the Debian packages, as docs/install.md does it on real hosts:
# the .deb files of build-deb/ (deploy/package build-deb; CI builds them
# before the tests) unpacked into a root, every node's config started from
# the package's /etc/pvha/pvhad.conf and filled in by `pvha cluster init` /
# `pvha node join`, the installed pvhad, pvha-vmm, pvha and sample guest; a
# guest is restarted on another node after a power-off. A file missing from
# a package, a broken conffile template or an installed program that does
# not work fails here. Packages older than the build (the CLI's --help
# differs) fail too, rather than test something else.
source "$(dirname "$0")/lib.sh"

DEBS=${PVHA_DEB_DIR:-$SRC/build-deb}
shopt -s nullglob
debs=("$DEBS"/pvha_*.deb "$DEBS"/pvha-guest-sdk_*.deb)
shopt -u nullglob
if ((${#debs[@]} != 2)); then
	echo "skip: no pvha packages in $DEBS (deploy/package build-deb makes them; deploy/test does before the tests)"
	exit 77
fi
ROOT=$(mktemp -d /tmp/pvha-root.XXXXXX)
trap '"$LAB" down --dir "$DIR" >/dev/null 2>&1; rm -rf "$DIR" "$ROOT"; [[ -n ${PVHA_KEEP_LOGS:-} ]] || rm -rf "$LOGS_KEPT"' EXIT
for d in "${debs[@]}"; do
	dpkg-deb -x "$d" "$ROOT" || { fail "dpkg-deb -x $d"; finish; }
done
ok "unpacked $(basename "${debs[0]}") and $(basename "${debs[1]}")"
missing=""
for f in usr/sbin/pvhad usr/sbin/pvha-vmm usr/bin/pvha etc/pvha/pvhad.conf lib/systemd/system/pvhad.service \
	usr/share/pvha/guests/counter.elf; do
	[[ -s $ROOT/$f ]] || missing+=" $f"
done
[[ -z $missing ]] && ok "the packages hold what the lab runs" || { fail "missing from the packages:$missing"; finish; }
if [[ $("$ROOT/usr/bin/pvha" --help 2>&1) == "$("$PVHA" --help 2>&1)" ]]; then
	ok "the packages are of this build (same pvha --help)"
else
	fail "the packages in $DEBS are not of this build: rebuild them (deploy/package build-deb)"
	finish
fi
PVHA=$ROOT/usr/bin/pvha

up 3 --root "$ROOT"
grep -q 'pool pvha: adopted, registry created' "$DIR/n1/bootstrap.out" &&
	grep -q 'pool pvha: a pvha pool already' "$DIR/n3/bootstrap.out" &&
	ok "cluster init in n1, node join in n2 and n3" || fail "bootstrap: $(cat "$DIR"/n*/bootstrap.out)"
conf=$DIR/n2/pvhad.conf
if grep -q '^# /etc/pvha/pvhad.conf' "$conf" && grep -qx 'node_name = n2' "$conf" && ! grep -q '^#node_name' "$conf"; then
	ok "the package's template filled in (its #node_name line became the key)"
else
	fail "n2's config: $(grep -v '^#' "$conf" | grep .)"
fi

# the agents are the installed pvhad
exe_of() { # NODE NAME: the executables of NAME's processes in NODE's namespace
	local p
	for p in $(ip netns pids "pvha-$1"); do
		[[ $(cat "/proc/$p/comm" 2>/dev/null) == "$2" ]] && readlink "/proc/$p/exe"
	done
}
[[ $(exe_of n1 pvhad) == "$ROOT/usr/sbin/pvhad" ]] && ok "n1 runs the installed pvhad" ||
	fail "n1's pvhad is '$(exe_of n1 pvhad)'"
end=$((SECONDS + DEADLINE_S))
until [[ $(pv n1 --json node list 2>/dev/null | grep -o '"member":true' | wc -l) == 3 ]]; do
	((SECONDS < end)) || break
	sleep 0.2
done
pv n1 guest create web --image "$ROOT/usr/share/pvha/guests/counter.elf" --mem 16M --disk 4M \
	--cmdline "interval=50" --start --wait 30 >/dev/null 2>&1
check_wait "the installed sample guest runs" n1 web '"state":"running"'
owner=$(show n1 web | field owner)
[[ -n $owner && $(exe_of "$owner" pvha-vmm) == "$ROOT/usr/sbin/pvha-vmm" ]] &&
	ok "its VMM is the installed pvha-vmm" || fail "the VMM on '$owner' is '$(exe_of "$owner" pvha-vmm)'"

survivor=n1
[[ $owner == n1 ]] && survivor=n2
"$LAB" poweroff "$owner" >/dev/null
if new=$(wait_owner_not "$survivor" web "$owner"); then
	ok "after $owner's power-off, web runs on $new"
else
	fail "web was not restarted after $owner's power-off: $(show "$survivor" web)"
fi

keep_logs installed
finish
