#!/usr/bin/env bash
# test_debs.sh DIR: checks the Debian packages deploy/package built into DIR:
# their metadata (the agent package depends on corosync, /etc/pvha/pvhad.conf
# is a conffile, the unit is neither enabled nor started on install), that
# dpkg would install them here (--dry-run, as root), and what they hold,
# unpacked into one root, with tests/dist/test_install.sh (every file at
# Debian's path, the unit's PATH finds the VMM, the config parses, an SDK
# guest builds and runs).
set -uo pipefail
DIR=${1:?usage: test_debs.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
FAILED=0
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
ok() { echo "ok   $*"; }
T=$(mktemp -d /tmp/pvha-debs.XXXXXX)
trap 'rm -rf "$T"' EXIT

agent=$(ls "$DIR"/pvha_*.deb 2>/dev/null | head -n 1)
sdk=$(ls "$DIR"/pvha-guest-sdk_*.deb 2>/dev/null | head -n 1)
[[ -f $agent && -f $sdk ]] || { echo "FAIL no pvha and pvha-guest-sdk packages in $DIR"; exit 1; }

dpkg-deb -f "$agent" Depends | grep -qw corosync && ok "pvha depends on corosync" ||
	fail "pvha does not depend on corosync: $(dpkg-deb -f "$agent" Depends)"
dpkg-deb -e "$agent" "$T/ctl"
grep -qx /etc/pvha/pvhad.conf "$T/ctl/conffiles" && ok "/etc/pvha/pvhad.conf is a conffile" ||
	fail "/etc/pvha/pvhad.conf is not a conffile"
# dh_installsystemd --no-start leaves out deb-systemd-invoke; --no-enable
# enables only a unit that was enabled before (`debian-installed` guards it),
# where the default would enable it on a first install too.
pi=$T/ctl/postinst
if [[ -f $pi ]] && grep -q "deb-systemd-invoke" "$pi"; then
	fail "postinst starts or restarts pvhad"
elif [[ -f $pi ]] && grep -q "was-enabled 'pvhad.service'" "$pi" && ! grep -q "debian-installed 'pvhad.service'" "$pi"; then
	fail "postinst enables pvhad on a first install"
else
	ok "postinst neither enables nor starts an unconfigured pvhad"
fi
if [[ $(id -u) -eq 0 ]]; then
	if out=$(dpkg --dry-run -i "$agent" "$sdk" 2>&1); then
		ok "dpkg --dry-run -i: would install"
	else
		fail "dpkg --dry-run -i: $out"
	fi
fi

mkdir -p "$T/root"
dpkg-deb -x "$agent" "$T/root" && dpkg-deb -x "$sdk" "$T/root" || fail "dpkg-deb -x"
PVHA_DEB_ROOT=$T/root "$HERE/test_install.sh" || fail "the packages' contents (test_install.sh above)"

[[ $FAILED -eq 0 ]] && echo "PASS test_debs" || echo "FAILED: $FAILED"
exit $((FAILED > 0))
