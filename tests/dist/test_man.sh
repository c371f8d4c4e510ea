#!/usr/bin/env bash
# test_man.sh: the man pages render without a groff warning (`groff -man -ww`)
# and through man(1) (`man -l`), and tell the truth: every option a program's
# --help lists is in its page and every option the page names is in --help;
# pvhad.conf(5) lists exactly the keys agent_config.c accepts.
# Env: PVHA_SOURCE_DIR, PVHA_BUILD_DIR.
set -uo pipefail
SRC=${PVHA_SOURCE_DIR:?}
BIN=${PVHA_BUILD_DIR:?}/bin
MAN=$SRC/dist/man
FAILED=0
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
ok() { echo "ok   $*"; }
T=$(mktemp -d /tmp/pvha-man.XXXXXX)
trap 'rm -rf "$T"' EXIT

for page in pvha.1 pvhad.8 pvha-vmm.8 pvhad.conf.5; do
	if ! groff -man -Tutf8 -ww -z "$MAN/$page" 2>"$T/warn" || [[ -s $T/warn ]]; then
		fail "$page: groff: $(cat "$T/warn")"
	elif ! MANWIDTH=80 man -l "$MAN/$page" >"$T/out" 2>"$T/warn" || [[ -s $T/warn ]] || [[ ! -s $T/out ]]; then
		fail "$page: man -l: $(cat "$T/warn")"
	else
		ok "$page renders ($(wc -l <"$T/out") lines), no warnings"
	fi
done

# options() FILE: the --long options named in FILE, one a line, sorted.
options() { grep -oE -- '--[a-z][a-z-]*[a-z]' "$1" | sort -u; }
for prog in pvha:pvha.1 pvhad:pvhad.8 pvha-vmm:pvha-vmm.8; do
	p=${prog%%:*} page=${prog#*:}
	"$BIN/$p" --help >"$T/help" 2>&1 || fail "$p --help exits non-zero"
	# no hyphenation, long lines: options stay whole; EXAMPLES may show other
	# programs' options (systemctl --now)
	groff -man -rHY=0 -rLL=250n -Tascii -P-cbou "$MAN/$page" 2>/dev/null |
		sed '/^EXAMPLES/,/^SEE ALSO/d' >"$T/page"
	options "$T/help" >"$T/h"
	options "$T/page" >"$T/m"
	missing=$(comm -23 "$T/h" "$T/m" | paste -sd' ')
	extra=$(comm -13 "$T/h" "$T/m" | paste -sd' ')
	[[ -z $missing ]] || fail "$page lacks what $p --help lists: $missing"
	[[ -z $extra ]] || fail "$page names what $p --help does not: $extra"
	[[ -z $missing && -z $extra ]] && ok "$page and $p --help name the same $(wc -l <"$T/h") options"
done

# pvhad.conf(5): the keys agent_config.c accepts (the K() table and the
# ignored list) are the keys the page describes (its .TP/.BR headings).
cfg=$SRC/node/pvhad/agent_config.c
{
	grep -oE 'K\([a-z_]+, [01]\)' "$cfg" | sed -E 's/K\(([a-z_]+),.*/\1/'
	sed -n 's/.*ignored\[\] = {\(.*\)};.*/\1/p' "$cfg" | grep -oE '"[a-z_]+"' | tr -d '"'
} | sort -u >"$T/keys"
[[ $(wc -l <"$T/keys") -ge 16 ]] || fail "could not read the keys from $cfg"
awk '/^\.TP/ { getline; print }' "$MAN/pvhad.conf.5" | grep -E '^\.BR? [a-z_]' |
	sed -E 's/^\.BR? //; s/"[^"]*"//g' | tr ' ' '\n' | grep -E '^[a-z_]+$' | sort -u >"$T/pagekeys"
missing=$(comm -23 "$T/keys" "$T/pagekeys" | paste -sd' ')
extra=$(comm -13 "$T/keys" "$T/pagekeys" | paste -sd' ')
[[ -z $missing ]] || fail "pvhad.conf.5 lacks keys: $missing"
[[ -z $extra ]] || fail "pvhad.conf.5 describes keys the agent does not know: $extra"
[[ -z $missing && -z $extra ]] && ok "pvhad.conf.5 describes the $(wc -l <"$T/keys") keys agent_config.c knows"

[[ $FAILED -eq 0 ]] && echo "PASS test_man" || echo "FAILED: $FAILED"
exit $((FAILED > 0))
