/*
 * hcbench: hypercall round trip, measured inside the guest. Calls the cheapest
 * hypercall (abi_version) `iters=N` times (default 2,000,000) in batches that
 * the guest times with its monotonic clock, and prints the median batch as
 * `figure hypercall_round_trip_ns X ns`.
 */
#include "pv.h"

#define BATCHES 21

int main(const struct pv_boot_info *bi)
{
	uint64_t iters = 2000000;
	pv_cmdline_u64(bi, "iters", &iters);
	uint64_t per = iters / BATCHES ? iters / BATCHES : 1;
	uint64_t ns[BATCHES];

	for (int b = 0; b < BATCHES; b++) {
		uint64_t t0 = pv_clock_mono();
		for (uint64_t i = 0; i < per; i++)
			pv_abi_version();
		ns[b] = pv_clock_mono() - t0;
	}
	for (int i = 1; i < BATCHES; i++)
		for (int j = i; j > 0 && ns[j - 1] > ns[j]; j--) {
			uint64_t t = ns[j];
			ns[j] = ns[j - 1];
			ns[j - 1] = t;
		}
	uint64_t med = ns[BATCHES / 2];
	pv_printf("figure hypercall_round_trip_ns %lu.%03lu ns\n", med / per,
		  (med % per) * 1000 / per);
	return 0;
}
