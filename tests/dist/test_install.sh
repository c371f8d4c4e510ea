#!/usr/bin/env bash
# test_install.sh: `cmake --install` of the build into a DESTDIR puts every
# file where docs/install.md says, and what it installed works from there:
#  - the programs, the unit, the config, the man pages, the completion, the
#    guest SDK and the sample guests are at their paths (and nothing else is);
#  - the installed pvhad finds the installed pvha-vmm the way it looks for it
#    (posix_spawnp through PATH; the unit's Environment=PATH), and that VMM
#    boots an installed sample guest;
#  - the unit's ExecStart and ExecStartPre name the installed pvhad and config;
#  - the installed config parses with every key still commented out except
#    the three required ones, and with every commented key set to its example;
#  - a guest built with find_package(pvha-guest) from the installed SDK runs.
# Env: PVHA_BUILD_DIR, PVHA_INSTALL_PREFIX, PVHA_INSTALL_{BIN,SBIN,SYSCONF,
# MAN,DATA,INCLUDE,LIB}DIR (the configured GNUInstallDirs, from ctest),
# PVHA_SYSTEMD_UNITDIR. Or PVHA_DEB_ROOT: a folder the Debian packages were
# unpacked into (tests/dist/test_debs.sh): no install, Debian's paths, man
# pages compressed, the packages' own docs besides.
set -uo pipefail
FAILED=0
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
ok() { echo "ok   $*"; }

T=$(mktemp -d /tmp/pvha-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
gz=
if [[ -n ${PVHA_DEB_ROOT:-} ]]; then
	D=$PVHA_DEB_ROOT PREFIX=/usr gz=.gz
	BIN=/usr/bin SBIN=/usr/sbin ETC=/etc MAN=/usr/share/man DATA=/usr/share INC=/usr/include
	LIB=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH) UNITDIR=/lib/systemd/system
else
	BUILD=${PVHA_BUILD_DIR:?}
	D=$T/root PREFIX=$PVHA_INSTALL_PREFIX
	abs() { case $1 in /*) echo "$1" ;; *) echo "$PREFIX/$1" ;; esac; }
	BIN=$(abs "$PVHA_INSTALL_BINDIR") SBIN=$(abs "$PVHA_INSTALL_SBINDIR")
	ETC=$(abs "$PVHA_INSTALL_SYSCONFDIR") MAN=$(abs "$PVHA_INSTALL_MANDIR")
	DATA=$(abs "$PVHA_INSTALL_DATADIR") INC=$(abs "$PVHA_INSTALL_INCLUDEDIR")
	LIB=$(abs "$PVHA_INSTALL_LIBDIR") UNITDIR=$(abs "$PVHA_SYSTEMD_UNITDIR")
	if ! DESTDIR=$D cmake --install "$BUILD" >"$T/install.out" 2>&1; then
		cat "$T/install.out"
		echo "FAIL cmake --install"
		exit 1
	fi
fi

# ---- every file where expected, and nothing else
want=(
	"$BIN/pvha" "$SBIN/pvhad" "$SBIN/pvha-vmm"
	"$UNITDIR/pvhad.service" "$ETC/pvha/pvhad.conf"
	"$MAN/man1/pvha.1$gz" "$MAN/man5/pvhad.conf.5$gz" "$MAN/man8/pvhad.8$gz" "$MAN/man8/pvha-vmm.8$gz"
	"$DATA/bash-completion/completions/pvha"
	"$INC/pvha-guest/pv.h" "$INC/pvha-guest/counter_log.h" "$INC/pvha-guest/pvhv/abi.h"
	"$LIB/pvha-guest/libpv.a" "$LIB/pvha-guest/pv_start.o" "$LIB/pvha-guest/guest.ld"
	"$LIB/pvha-guest/check_image.sh"
	"$LIB/cmake/pvha-guest/pvha-guest-config.cmake" "$LIB/cmake/pvha-guest/pvha_guest.cmake"
	"$DATA/pvha/guests/hello.elf" "$DATA/pvha/guests/counter.elf"
	"$DATA/pvha/guests/cpubench.elf" "$DATA/pvha/guests/memwriter.elf" "$DATA/pvha/guests/kvstore.elf"
)
for f in "${want[@]}"; do
	[[ -f $D$f ]] || fail "not installed: $f"
done
for f in "$BIN/pvha" "$SBIN/pvhad" "$SBIN/pvha-vmm" "$LIB/pvha-guest/check_image.sh"; do
	[[ -x $D$f ]] || fail "not executable: $f"
done
# (the packages' copyright, changelogs and lintian overrides besides)
(cd "$D" && find . -type f | sed 's|^\.||' | grep -v -e '^/usr/share/doc/' -e '^/usr/share/lintian/' |
	sort) >"$T/got"
printf '%s\n' "${want[@]}" | sort >"$T/want"
extra=$(comm -23 "$T/got" "$T/want")
[[ -z $extra ]] || fail "installed but not expected: $extra"
[[ $FAILED -eq 0 ]] && ok "${#want[@]} files at their places, nothing else"

# ---- the unit: the installed programs and config
unit=$D$UNITDIR/pvhad.service
grep -qx "ExecStart=$SBIN/pvhad --config $ETC/pvha/pvhad.conf" "$unit" ||
	fail "ExecStart does not run $SBIN/pvhad with $ETC/pvha/pvhad.conf"
grep -qx "ExecStartPre=$SBIN/pvhad --check --config $ETC/pvha/pvhad.conf" "$unit" ||
	fail "ExecStartPre does not check $ETC/pvha/pvhad.conf"
for k in Requires=corosync.service After=corosync.service KillMode=process Restart=on-failure \
	RuntimeDirectory=pvha RuntimeDirectoryPreserve=yes; do
	grep -q "^$k" "$unit" || fail "unit: no $k"
done
if command -v systemd-analyze >/dev/null; then
	# the unit as installed, its paths pointing into the DESTDIR
	sed -e "s|$SBIN/|$D$SBIN/|g" -e "s|$ETC/|$D$ETC/|g" "$unit" >"$T/pvhad.service"
	if out=$(systemd-analyze verify --man=no "$T/pvhad.service" 2>&1) && [[ -z $out ]]; then
		ok "systemd-analyze verify pvhad.service: clean"
	else
		fail "systemd-analyze verify pvhad.service: $out"
	fi
fi

# ---- the installed pvhad finds the installed pvha-vmm: pvhad runs
# posix_spawnp("pvha-vmm") with the unit's PATH (docs/install.md), so resolve
# it as execvp does, with the unit's PATH seen through the DESTDIR.
path=$(sed -n 's/^Environment=PATH=//p' "$unit")
[[ -n $path ]] || fail "unit: no Environment=PATH"
dpath=$(tr ':' '\n' <<<"$path" | sed "s|^|$D|" | paste -sd:)
found=$(env -i PATH="$dpath" /bin/sh -c 'command -v pvha-vmm')
if [[ $found == "$D$SBIN/pvha-vmm" ]]; then
	ok "with the unit's PATH, pvha-vmm is $SBIN/pvha-vmm"
else
	fail "with the unit's PATH, pvha-vmm resolves to '${found:-nothing}', not $SBIN/pvha-vmm"
fi
# ... and that VMM runs an installed sample guest
out=$(env -i PATH="$dpath" pvha-vmm --image "$D$DATA/pvha/guests/hello.elf" --mem 16M --backend tcg 2>&1)
grep -q "hello from pvha guest" <<<"$out" && ok "installed pvha-vmm boots installed hello.elf" ||
	fail "installed pvha-vmm with hello.elf: $out"

# ---- the installed config
conf=$D$ETC/pvha/pvhad.conf
pvhad=$D$SBIN/pvhad
out=$("$pvhad" --check --config "$conf" 2>&1)
rc=$?
[[ $rc -eq 2 && $out == *"missing key 'node_name'"* ]] && ok "shipped config refused until node_name is set" ||
	fail "shipped config: want exit 2 and missing key 'node_name', got $rc: $out"
sed -e 's/^#node_name = /node_name = /' -e 's/^#address = /address = /' -e 's/^#ceph_conf = /ceph_conf = /' \
	"$conf" >"$T/min.conf"
out=$("$pvhad" --check --config "$T/min.conf" 2>&1) && ok "shipped config with the 3 required keys: $out" ||
	fail "shipped config with the 3 required keys: $out"
# every commented key, set to the example beside it (keys: agent_config.c)
sed -E 's/^#([a-z_]+ = )/\1/' "$conf" >"$T/all.conf"
nkeys=$(grep -cE '^[a-z_]+ = ' "$T/all.conf")
if [[ -x /usr/sbin/fence_ipmilan ]]; then
	out=$("$pvhad" --check --config "$T/all.conf" 2>&1) && ok "shipped config with all $nkeys keys set: $out" ||
		fail "shipped config with all $nkeys keys set: $out"
else
	echo "skip all-keys check: /usr/sbin/fence_ipmilan (fence-agents) missing"
fi
for k in node_name address ceph_conf ceph_user ceph_keyring pool run_dir vmm log_file state_dir \
	fence_agent fence_args fence_timeout guest_mem guest_cpus rebalance; do
	grep -qE "^$k = " "$T/all.conf" || fail "shipped config does not list $k"
done

# ---- a guest built against the installed SDK, run by the installed VMM
mkdir -p "$T/guest"
cat >"$T/guest/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(tick C)
find_package(pvha-guest REQUIRED)
pvha_guest(tick tick.c)
CM
cat >"$T/guest/tick.c" <<'C'
#include "pv.h"

int main(const struct pv_boot_info *bi)
{
	uint64_t n = 3;
	if (pv_cmdline_u64(bi, "n", &n) < 0)
		return 1;
	for (uint64_t i = 0; i < n; i++)
		pv_printf("tick %lu\n", i);
	return 0;
}
C
if cmake -S "$T/guest" -B "$T/guest/b" -DCMAKE_PREFIX_PATH="$D$PREFIX" >"$T/sdk.out" 2>&1 &&
	cmake --build "$T/guest/b" >>"$T/sdk.out" 2>&1; then
	out=$(env -i PATH="$dpath" pvha-vmm --image "$T/guest/b/guests/tick.elf" --mem 4M --cmdline n=5 \
		--backend tcg 2>&1)
	[[ $(grep -c '^tick ' <<<"$out") -eq 5 ]] && ok "a guest built with the installed SDK runs (5 ticks)" ||
		fail "SDK guest output: $out"
else
	cat "$T/sdk.out"
	fail "building a guest with find_package(pvha-guest) from $D$PREFIX"
fi

[[ $FAILED -eq 0 ]] && echo "PASS test_install" || echo "FAILED: $FAILED"
exit $((FAILED > 0))
