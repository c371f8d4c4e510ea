#!/usr/bin/env bash
# test_completion.sh: dist/completion/pvha loads in bash (with the
# bash-completion package, as an installed one is) and completes what
# `pvha --help` lists: every command, every verb, every option of each
# command; guest and node names from the agent (here a stand-in `pvha` on
# PATH that prints what `pvha --json ... list` prints); image files.
# Env: PVHA_SOURCE_DIR, PVHA_BUILD_DIR.
set -uo pipefail
SRC=${PVHA_SOURCE_DIR:?}
BIN=${PVHA_BUILD_DIR:?}/bin
FAILED=0
fail() { echo "FAIL $*"; FAILED=$((FAILED + 1)); }
ok() { echo "ok   $*"; }
BC=/usr/share/bash-completion/bash_completion
if [[ ! -r $BC ]]; then
	echo "SKIP: $BC missing (package bash-completion)"
	exit 77
fi
T=$(mktemp -d /tmp/pvha-compl.XXXXXX)
trap 'rm -rf "$T"' EXIT

# A stand-in pvha for the names (the real one needs a running agent).
mkdir -p "$T/bin" "$T/img/sub"
cat >"$T/bin/pvha" <<'SH'
#!/bin/sh
case "$*" in
"--json guest list") echo '{"guests":[{"name":"web1","uuid":"x"},{"name":"db-2","uuid":"y"}]}' ;;
"--json node list") echo '{"local":"n1","nodes":[{"nodeid":1,"name":"n1"},{"nodeid":2,"name":"n2"}]}' ;;
*) exit 1 ;;
esac
SH
chmod +x "$T/bin/pvha"
touch "$T/img/a.elf" "$T/img/b.txt"

# complete LINE: prints the sorted completions of LINE (its last word is the
# one being completed; a LINE ending in a space completes an empty word).
complete_line() {
	PATH="$T/bin:$PATH" bash --norc --noprofile -c '
		source "$1" >/dev/null 2>&1
		source "$2" || exit 3
		line=$3
		read -ra COMP_WORDS <<<"$line"
		[[ $line == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$line COMP_POINT=${#line}
		_pvha pvha "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$BC" "$SRC/dist/completion/pvha" "$1"
}
# expect LINE WORD...: LINE's completions include every WORD.
expect() {
	local line=$1 got w miss=
	shift
	got=$(complete_line "$line")
	for w in "$@"; do
		grep -qxF -- "$w" <<<"$got" || miss+=" $w"
	done
	[[ -z $miss ]] || fail "'$line' does not offer$miss (got: $(paste -sd' ' <<<"$got"))"
	[[ -z $miss ]]
}

bash --norc --noprofile -c "source $BC; source $SRC/dist/completion/pvha && complete -p pvha" |
	grep -q -- '-F _pvha pvha' && ok "loads, registers _pvha for pvha" || fail "does not load"

# From --help: "  GROUP VERB ARGS" lines, continuations indented 6, help text
# from column 34 (or on the next lines, indented 34).
"$BIN/pvha" --help >"$T/help"
awk '
/^  [a-z]/ { if (cmd) print cmd; cmd = substr($0, 3); sub(/  .*/, "", cmd); next }
/^      [^ ]/ && !/^                                  / { s = $0; sub(/^ +/, "", s); cmd = cmd " " s; next }
END { if (cmd) print cmd }' "$T/help" >"$T/cmds"
[[ $(wc -l <"$T/cmds") -ge 15 ]] || fail "could not read the commands from pvha --help"
n=0
while read -r group verb rest; do
	opts=$(grep -oE -- '--[a-z][a-z-]*[a-z]' <<<"$verb $rest" | sort -u)
	expect "pvha $group" "$group" || continue
	if [[ $group == vmm ]]; then
		# vmm SOCKET VERB: the verbs after the socket
		v=$(grep -oE '^[a-z|]+' <<<"$rest" | tr '|' ' ')
		expect "pvha vmm /tmp/s.sock " $v || continue
		[[ -z $opts ]] || expect "pvha vmm /tmp/s.sock ${v%% *} x --" $opts || continue
	elif [[ $group == events ]]; then
		opts=$(grep -oE -- '--[a-z][a-z-]*[a-z]' <<<"$verb $rest" | sort -u)
		expect "pvha events --" $opts || continue
	else
		expect "pvha $group " "$verb" || continue
		[[ -z $opts ]] || expect "pvha $group $verb X --" $opts || continue
	fi
	n=$((n + 1))
done <"$T/cmds"
[[ $n -eq $(wc -l <"$T/cmds") ]] && ok "every one of the $n commands in pvha --help, with its options"

expect "pvha --" --json --help && ok "global options"
expect "pvha guest start " web1 db-2 && expect "pvha guest start w" web1 &&
	ok "guest names from the agent"
expect "pvha node drain " n1 n2 && expect "pvha guest migrate web1 " n1 n2 && ok "node names from the agent"
got=$(complete_line "pvha guest create g --image $T/img/")
if grep -qx "$T/img/a.elf" <<<"$got" && ! grep -q "b.txt" <<<"$got"; then
	ok "--image offers .elf files"
else
	fail "--image $T/img/: $(paste -sd' ' <<<"$got")"
fi
got=$(complete_line "pvha guest create g --mem ")
[[ -z $got ]] && ok "--mem offers nothing (a size)" || fail "--mem offers: $got"

[[ $FAILED -eq 0 ]] && echo "PASS test_completion" || echo "FAILED: $FAILED"
exit $((FAILED > 0))
