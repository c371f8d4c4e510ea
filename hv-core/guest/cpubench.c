/*
 * cpubench: runs the kernels of cpubench_kernels.h and prints their cost per
 * iteration as seen by the guest's monotonic clock, and a checksum that
 * depends only on the iteration counts (the save/restore tests compare it).
 *
 * Command line:
 *   iters=N        iterations of every kernel
 *   int_iters=N, fp_iters=N, store_iters=N
 *                  per kernel (defaults 20000000, 5000000, 5000000)
 *   only=int|fp|store   run one kernel
 *   chunk=N        iterations between two yields (default 1000000): a guest
 *                  must make a hypercall every few seconds or it is stopped
 *
 * Output (one figure line per kernel run, then the checksums of those run):
 *   figure guest_int_ns_per_iter X.XXX
 *   figure guest_fp_ns_per_iter X.XXX
 *   figure guest_store_ns_per_iter X.XXX
 *   cpubench: checksum int=0x... fp=0x... store=0x...
 * Exit 0, or 1 for a bad command line.
 */
#include "cpubench_kernels.h"
#include "pv.h"

static struct cpubench_int_state int_state;
static struct cpubench_fp_state fp_state;
static struct cpubench_store_state store_state;

enum kernel { K_INT, K_FP, K_STORE, K_COUNT };

static const char *const kernel_name[K_COUNT] = { "int", "fp", "store" };

static void kernel_init(enum kernel k)
{
	switch (k) {
	case K_INT: cpubench_int_init(&int_state); break;
	case K_FP: cpubench_fp_init(&fp_state); break;
	case K_STORE: cpubench_store_init(&store_state); break;
	default: break;
	}
}

static void kernel_step(enum kernel k, uint64_t iters)
{
	switch (k) {
	case K_INT: cpubench_int_step(&int_state, iters); break;
	case K_FP: cpubench_fp_step(&fp_state, iters); break;
	case K_STORE: cpubench_store_step(&store_state, iters); break;
	default: break;
	}
}

static uint64_t kernel_sum(enum kernel k)
{
	switch (k) {
	case K_INT: return cpubench_int_sum(&int_state);
	case K_FP: return cpubench_fp_sum(&fp_state);
	case K_STORE: return cpubench_store_sum(&store_state);
	default: return 0;
	}
}

static _Noreturn void bad_cmdline(const char *key)
{
	pv_printf("cpubench: bad cmdline %s\n", key);
	pv_exit(1);
}

int main(const struct pv_boot_info *bi)
{
	uint64_t iters[K_COUNT] = { 20000000, 5000000, 5000000 };
	static const char *const iters_key[K_COUNT] = { "int_iters", "fp_iters", "store_iters" };
	uint64_t sum[K_COUNT] = { 0 };
	bool run[K_COUNT] = { true, true, true };
	uint64_t all, chunk = 1000000;
	char only[16];

	int rc = pv_cmdline_u64(bi, "iters", &all);
	if (rc < 0)
		bad_cmdline("iters");
	if (rc > 0)
		iters[K_INT] = iters[K_FP] = iters[K_STORE] = all;
	for (int k = 0; k < K_COUNT; k++) {
		if (pv_cmdline_u64(bi, iters_key[k], &iters[k]) < 0)
			bad_cmdline(iters_key[k]);
	}
	if (pv_cmdline_u64(bi, "chunk", &chunk) < 0 || chunk == 0)
		bad_cmdline("chunk");
	rc = pv_cmdline_get(bi, "only", only, sizeof(only));
	if (rc >= 0) {
		bool known = false;
		for (int k = 0; k < K_COUNT; k++) {
			run[k] = strcmp(only, kernel_name[k]) == 0;
			known |= run[k];
		}
		if (!known)
			bad_cmdline("only");
	} else if (rc != -PV_ENOENT) {
		bad_cmdline("only");
	}

	for (int k = 0; k < K_COUNT; k++) {
		if (!run[k])
			continue;
		kernel_init((enum kernel)k);
		pv_yield();
		uint64_t t0 = pv_clock_mono();
		for (uint64_t done = 0; done < iters[k];) {
			uint64_t n = iters[k] - done < chunk ? iters[k] - done : chunk;
			kernel_step((enum kernel)k, n);
			done += n;
			pv_yield();
		}
		uint64_t ns = pv_clock_mono() - t0;
		sum[k] = kernel_sum((enum kernel)k);
		double per = iters[k] ? (double)ns / (double)iters[k] : 0.0;
		pv_printf("figure guest_%s_ns_per_iter %.3f\n", kernel_name[k], per);
	}

	pv_printf("cpubench: checksum");
	for (int k = 0; k < K_COUNT; k++) {
		if (run[k])
			pv_printf(" %s=0x%016lx", kernel_name[k], sum[k]);
	}
	pv_printf("\n");
	return 0;
}
