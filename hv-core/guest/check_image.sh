#!/bin/sh
# check_image.sh OBJDUMP IMAGE: checks a linked guest image against the rules
# the hypervisor relies on; pvha_guest() runs it after every link.
#  - every `out %eax,(%dx)` is followed by a `jmp` to the very next
#    instruction (`jmp 1f; 1:`: the hypercall must end a translation block);
#  - the entry point is 0x100000 (PV_IMAGE_MIN_GPA, where guest.ld puts _start);
#  - no VEX-encoded (AVX) instructions.
set -eu
objdump=$1
image=$2

# A failed check removes the image, so that the next build links it again
# instead of taking the bad file as up to date.
trap 'rc=$?; [ $rc -eq 0 ] || rm -f "$image"; exit $rc' EXIT

entry=$("$objdump" -f "$image" | awk '/start address/ { print $3 }')
if [ "$((entry))" -ne $((0x100000)) ]; then
	echo "$image: entry point $entry is not 0x100000" >&2
	exit 1
fi

"$objdump" -d --no-show-raw-insn "$image" | awk -v img="$image" '
/^ *[0-9a-f]+:\t/ {
	a = $1; sub(":", "", a)
	t = $0; sub(/^ *[0-9a-f]+:\t/, "", t)
	addr[n] = a; text[n] = t; n++
}
END {
	for (i = 0; i < n; i++) {
		if (text[i] ~ /^v/) {
			printf "%s: AVX instruction at %s: %s\n", img, addr[i], text[i] > "/dev/stderr"
			bad = 1
		}
		if (text[i] !~ /^out +%eax,\(%dx\)/)
			continue
		calls++
		split(text[i + 1], f, /[ \t]+/)
		if (i + 2 >= n || f[1] != "jmp" || f[2] != addr[i + 2]) {
			printf "%s: hypercall at %s is not followed by jmp 1f; 1: (%s)\n", img, addr[i], text[i + 1] > "/dev/stderr"
			bad = 1
		}
	}
	if (calls == 0) {
		printf "%s: no hypercall found\n", img > "/dev/stderr"
		bad = 1
	}
	exit bad
}'
