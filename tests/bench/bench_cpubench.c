/*
 * cpubench in a guest (tcg backend, through pvha-vmm) against the same kernels
 * (hv-core/guest/cpubench_kernels.h) compiled natively, in one run: ns per
 * iteration of each and their ratio, medians of RUNS runs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "bench_common.h"
#include "cpubench_kernels.h"

#define RUNS 5
#define ITERS 5000000ull

static volatile uint64_t sink;

static double native_ns(int which)
{
	static struct cpubench_store_state st;
	uint64_t t0 = bench_now_ns();
	if (which == 0)
		sink = cpubench_int(ITERS);
	else if (which == 1)
		sink = cpubench_fp(ITERS);
	else
		sink = cpubench_store(&st, ITERS);
	return (double)(bench_now_ns() - t0) / ITERS;
}

/* Runs the guest once; fills ns per iteration of int, fp, store. */
static int guest_ns(double out[3])
{
	char cmd[1400];
	snprintf(cmd, sizeof(cmd), "%s --backend tcg --image %s --mem 16M --cmdline iters=%llu 2>/dev/null",
		 bench_path("bin/pvha-vmm"), bench_path("guests/cpubench.elf"), ITERS);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	char line[256];
	int got = 0;
	while (fgets(line, sizeof(line), p)) {
		double v;
		if (sscanf(line, "figure guest_int_ns_per_iter %lf", &v) == 1)
			out[0] = v, got |= 1;
		else if (sscanf(line, "figure guest_fp_ns_per_iter %lf", &v) == 1)
			out[1] = v, got |= 2;
		else if (sscanf(line, "figure guest_store_ns_per_iter %lf", &v) == 1)
			out[2] = v, got |= 4;
	}
	int st = pclose(p);
	return got == 7 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(void)
{
	static const char *names[3] = { "int", "fp", "store" };
	double nat[3][RUNS], gst[3][RUNS];

	for (int r = 0; r < RUNS; r++) {
		double g[3];
		if (guest_ns(g)) {
			fprintf(stderr, "bench_cpubench: the cpubench guest did not run (is %s built?)\n",
				bench_path("bin/pvha-vmm"));
			return 1;
		}
		for (int k = 0; k < 3; k++) {
			gst[k][r] = g[k];
			nat[k][r] = native_ns(k);
		}
	}
	for (int k = 0; k < 3; k++) {
		char name[64];
		double n = bench_median(nat[k], RUNS), g = bench_median(gst[k], RUNS);
		snprintf(name, sizeof(name), "cpubench_%s_native", names[k]);
		bench_figure(name, n, "ns/iter");
		snprintf(name, sizeof(name), "cpubench_%s_guest_tcg", names[k]);
		bench_figure(name, g, "ns/iter");
		snprintf(name, sizeof(name), "cpubench_%s_ratio", names[k]);
		bench_figure(name, g / n, "x");
	}
	return 0;
}
