/*
 * memwriter: keeps rewriting a region of its RAM and checks every word before
 * it rewrites it, for the live-migration tests and benchmark: a guest that
 * dirties pages as fast as it can, and in which a page lost or torn on the
 * way shows up as BAD.
 *
 * Command line:
 *   mib=N       size of the region in MiB (default 16); it starts at the first
 *               MiB boundary after the image and must end 1 MiB below the stack
 *   stride=B    bytes from one written word to the next (default 64; a multiple
 *               of 8 from 8 to 4096): 4096 touches each page once per pass
 *   passes=K    passes over the region (default 0 = for ever)
 *   report=R    print a line every R passes (default 0 = only at the end)
 *   hold        after the passes, sleep for ever, re-checking the region (loads
 *               only) once a second: an idle guest with its memory full
 *
 * Pass p (from 1) writes mix(p, offset) at every stride, after checking that
 * the word holds what pass p - 1 wrote (0 before pass 1: fresh RAM). The guest
 * yields after every 256 KiB of region, and sends a heartbeat after every pass
 * and every re-check while it holds (docs/heartbeat.md).
 *
 * Output lines:
 *   memwriter: region N MiB at 0xADDR, stride B
 *   memwriter: pass P ok                        (every report= passes)
 *   memwriter: done, K passes ok                (exit 0; with hold: then idles)
 *   memwriter: BAD at 0xADDR in pass P: 0xHAVE, want 0xWANT   (exit 2)
 *   memwriter: bad cmdline <key> | region does not fit   (exit 1)
 */
#include "pv.h"

#define MIB (1024ull * 1024ull)
#define YIELD_EVERY (256ull * 1024ull)

static uint64_t mix(uint64_t pass, uint64_t off)
{
	uint64_t z = pass * 0x9e3779b97f4a7c15ull + off + 1;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) | 1; /* never 0: a lost page reads as 0 */
}

static _Noreturn void bad(uint64_t addr, uint64_t pass, uint64_t have, uint64_t want)
{
	pv_printf("memwriter: BAD at 0x%lx in pass %lu: 0x%lx, want 0x%lx\n", addr, pass, have, want);
	pv_exit(2);
}

static uint64_t arg(const struct pv_boot_info *bi, const char *key, uint64_t def)
{
	uint64_t v = def;
	if (pv_cmdline_u64(bi, key, &v) < 0) {
		pv_printf("memwriter: bad cmdline %s\n", key);
		pv_exit(1);
	}
	return v;
}

/* Checks that every word holds pass `have` and, when write, stores pass
 * have + 1 over it. */
static void sweep(volatile uint64_t *base, uint64_t len, uint64_t stride, uint64_t have, bool write)
{
	for (uint64_t off = 0; off < len; off += YIELD_EVERY) {
		uint64_t end = off + YIELD_EVERY < len ? off + YIELD_EVERY : len;
		for (uint64_t o = off; o < end; o += stride) {
			volatile uint64_t *w = base + o / 8;
			uint64_t want = have ? mix(have, o) : 0;
			uint64_t v = *w;
			if (v != want)
				bad((uint64_t)(uintptr_t)w, have + (write ? 1 : 0), v, want);
			if (write)
				*w = mix(have + 1, o);
		}
		pv_yield();
	}
}

int main(const struct pv_boot_info *bi)
{
	uint64_t mib = arg(bi, "mib", 16);
	uint64_t stride = arg(bi, "stride", 64);
	uint64_t passes = arg(bi, "passes", 0);
	uint64_t report = arg(bi, "report", 0);

	if (stride < 8 || stride > PV_PAGE_SIZE || stride % 8) {
		pv_printf("memwriter: bad cmdline stride\n");
		return 1;
	}
	uint64_t start = (bi->image_end + MIB - 1) / MIB * MIB;
	uint64_t len = mib * MIB;
	if (mib == 0 || len > bi->mem_size || start + len + MIB > bi->stack_top - 64 * 1024) {
		pv_printf("memwriter: region does not fit\n");
		return 1;
	}
	volatile uint64_t *base = (volatile uint64_t *)(uintptr_t)start;
	pv_printf("memwriter: region %lu MiB at 0x%lx, stride %lu\n", mib, start, stride);

	uint64_t p = 0;
	while (passes == 0 || p < passes) {
		sweep(base, len, stride, p, true);
		p++;
		pv_heartbeat(p);
		if (report && p % report == 0)
			pv_printf("memwriter: pass %lu ok\n", p);
	}
	pv_printf("memwriter: done, %lu passes ok\n", p);
	if (!pv_cmdline_has(bi, "hold"))
		return 0;
	uint64_t beat = p;
	for (;;) {
		pv_sleep_ms(1000);
		sweep(base, len, stride, p, false);
		pv_heartbeat(++beat);
	}
}
