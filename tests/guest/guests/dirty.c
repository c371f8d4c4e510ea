/*
 * dirty: stores of every kind the dirty-page tracking must see, to known
 * pages. Needs RAM of at least 16 MiB (the pages below are far above the
 * image and far below the stack).
 *
 * Command line: mode=M. Hypercalls, numbered from boot (hv_machine_break_after):
 *   1  console write of "dirty: mode M"
 *   2  pv_yield(): the host collects (and so clears) the dirty bitmap here
 *      ... the stores of mode M; nothing else is written but the stack ...
 *   3  pv_yield(): the host collects again; the pages below must be dirty
 *   4  console write of "dirty: ok" or "dirty: BAD <what>"
 *   5  exit (0 when ok, 1 when bad)
 *
 * Modes and the pages (guest-physical) each one writes between 2 and 3:
 *   plain       8-byte stores at 0x400000, 0x402000, 0x404000
 *               -> pages 0x400000 0x402000 0x404000 (not 0x401000, 0x403000)
 *   load-store  `*p += K` (a load, then a store) at 0x410000 -> page 0x410000
 *   atomic      lock xadd (__atomic_fetch_add) then lock cmpxchg at 0x420000
 *               -> page 0x420000
 *   rep-stos    rep stosb of 3 pages' worth (12288 bytes) of 0xAB from 0x430800
 *               to 0x4337ff -> pages 0x430000 0x431000 0x432000 0x433000
 *   cross       unaligned 8-byte store at 0x440ffc (bytes 0x440ffc..0x441003)
 *               -> pages 0x440000 0x441000
 *   sse         16-byte movups store at 0x450000 -> page 0x450000
 * Unknown mode: "dirty: unknown mode", exit 1 (before any yield).
 */
#include "pv.h"

#define PLAIN_A 0x400000ull
#define PLAIN_B 0x402000ull
#define PLAIN_C 0x404000ull
#define LOAD_STORE 0x410000ull
#define ATOMIC 0x420000ull
#define REP_STOS 0x430800ull
#define REP_STOS_LEN (3ull * PV_PAGE_SIZE)
#define CROSS 0x440ffcull
#define SSE 0x450000ull

#define LOAD_STORE_ADD 0x1234ull
#define CROSS_VALUE 0x8877665544332211ull

static volatile uint64_t *at(uint64_t gpa)
{
	return (volatile uint64_t *)(uintptr_t)gpa;
}

static volatile uint8_t *byte_at(uint64_t gpa)
{
	return (volatile uint8_t *)(uintptr_t)gpa;
}

static const uint8_t sse_pattern[16] __attribute__((aligned(16))) = {
	0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
	0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf,
};

static int bad(const char *what)
{
	pv_printf("dirty: BAD %s\n", what);
	return 1;
}

int main(const struct pv_boot_info *bi)
{
	char mode[32];
	uint64_t before = 0, old = 0;
	bool swapped = false;

	if (pv_cmdline_get(bi, "mode", mode, sizeof(mode)) < 0) {
		pv_printf("dirty: unknown mode\n");
		return 1;
	}
	enum { PLAIN, LOADSTORE, ATOM, REPSTOS, CROSSING, SSESTORE } m;
	if (strcmp(mode, "plain") == 0)
		m = PLAIN;
	else if (strcmp(mode, "load-store") == 0)
		m = LOADSTORE;
	else if (strcmp(mode, "atomic") == 0)
		m = ATOM;
	else if (strcmp(mode, "rep-stos") == 0)
		m = REPSTOS;
	else if (strcmp(mode, "cross") == 0)
		m = CROSSING;
	else if (strcmp(mode, "sse") == 0)
		m = SSESTORE;
	else {
		pv_printf("dirty: unknown mode\n");
		return 1;
	}
	if (bi->mem_size < 16ull * 1024 * 1024) {
		pv_printf("dirty: needs 16 MiB of RAM\n");
		return 1;
	}
	pv_printf("dirty: mode %s\n", mode);

	pv_yield(); /* hypercall 2: the host clears the dirty bitmap */
	switch (m) {
	case PLAIN:
		*at(PLAIN_A) = 0x1111111111111111ull;
		*at(PLAIN_B) = 0x2222222222222222ull;
		*at(PLAIN_C) = 0x3333333333333333ull;
		break;
	case LOADSTORE:
		before = *at(LOAD_STORE);
		*at(LOAD_STORE) += LOAD_STORE_ADD;
		break;
	case ATOM: {
		uint64_t *p = (uint64_t *)(uintptr_t)ATOMIC;
		old = __atomic_fetch_add(p, 5, __ATOMIC_SEQ_CST);
		uint64_t expect = old + 5;
		swapped = __atomic_compare_exchange_n(p, &expect, 0x77, false, __ATOMIC_SEQ_CST,
						      __ATOMIC_SEQ_CST);
		break;
	}
	case REPSTOS: {
		uint64_t dst = REP_STOS, len = REP_STOS_LEN;
		__asm__ volatile("cld\n\trep stosb"
				 : "+D"(dst), "+c"(len)
				 : "a"(0xab)
				 : "memory");
		break;
	}
	case CROSSING:
		__asm__ volatile("movq %1, (%0)" : : "r"(CROSS), "r"(CROSS_VALUE) : "memory");
		break;
	case SSESTORE:
		__asm__ volatile("movups %1, %%xmm0\n\t"
				 "movups %%xmm0, (%0)"
				 :
				 : "r"(SSE), "m"(sse_pattern)
				 : "xmm0", "memory");
		break;
	}
	pv_yield(); /* hypercall 3: the host collects the pages written above */

	/* Read back what was written (loads only). */
	switch (m) {
	case PLAIN:
		if (*at(PLAIN_A) != 0x1111111111111111ull || *at(PLAIN_B) != 0x2222222222222222ull ||
		    *at(PLAIN_C) != 0x3333333333333333ull)
			return bad("plain value");
		break;
	case LOADSTORE:
		if (*at(LOAD_STORE) != before + LOAD_STORE_ADD)
			return bad("load-store value");
		break;
	case ATOM:
		if (!swapped)
			return bad("cmpxchg failed");
		if (*at(ATOMIC) != 0x77)
			return bad("atomic value");
		break;
	case REPSTOS:
		for (uint64_t i = 0; i < REP_STOS_LEN; i++) {
			if (*byte_at(REP_STOS + i) != 0xab)
				return bad("rep-stos value");
		}
		if (*byte_at(REP_STOS - 1) == 0xab || *byte_at(REP_STOS + REP_STOS_LEN) == 0xab)
			return bad("rep-stos wrote outside its range");
		break;
	case CROSSING: {
		uint64_t v = 0;
		for (int i = 7; i >= 0; i--)
			v = (v << 8) | *byte_at(CROSS + (uint64_t)i);
		if (v != CROSS_VALUE)
			return bad("cross value");
		break;
	}
	case SSESTORE:
		for (int i = 0; i < 16; i++) {
			if (*byte_at(SSE + (uint64_t)i) != sse_pattern[i])
				return bad("sse value");
		}
		break;
	}
	pv_printf("dirty: ok\n");
	return 0;
}
