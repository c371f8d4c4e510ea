/*
 * Shared bits of the benchmarks: where the build is (BUILD_DIR, default
 * "build"), medians, and `figure NAME VALUE UNIT` output.
 */
#ifndef PVHA_BENCH_COMMON_H
#define PVHA_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline const char *bench_path(const char *rel)
{
	static char bufs[16][512];
	static int next;
	const char *b = getenv("BUILD_DIR");
	char *p = bufs[next++ % 16];
	snprintf(p, 512, "%s/%s", b && *b ? b : "build", rel);
	return p;
}

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of n values (sorts them in place). */
static inline double bench_median(double *v, size_t n)
{
	qsort(v, n, sizeof(double), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline void bench_figure(const char *name, double value, const char *unit)
{
	printf("figure %s %.3f %s\n", name, value, unit);
	fflush(stdout);
}

#endif
