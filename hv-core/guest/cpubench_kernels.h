/*
 * cpubench kernels: three loops that stress what the software CPU does
 * differently from hardware (FACTS.md: integer work ~1.1x native, floating
 * point ~9x, stores ~150x). Pure C, no libpv and no libc, so that the guest
 * (cpubench.c) and a host benchmark compile the very same code; for the same
 * iteration count both get the same checksum.
 *
 * Each kernel is a state struct with _init, _step (runs more iterations,
 * resumable, so the guest can yield between chunks) and _sum; plus a one-shot
 * function taking an iteration count and returning the checksum. Running a
 * kernel in chunks gives exactly the checksum of one long run.
 */
#ifndef CPUBENCH_KERNELS_H
#define CPUBENCH_KERNELS_H

#include <stdint.h>

/* ---- integer: hash mixing in registers -----------------------------------
 * Per iteration: 3 multiplies, 6 xors, 4 shifts/rotates, 3 adds, on four
 * chained 64-bit values; no memory traffic. */
struct cpubench_int_state {
	uint64_t a, b, c, d, i;
};

static inline void cpubench_int_init(struct cpubench_int_state *s)
{
	s->a = 0x243f6a8885a308d3ull;
	s->b = 0x13198a2e03707344ull;
	s->c = 0xa4093822299f31d0ull;
	s->d = 0x082efa98ec4e6c89ull;
	s->i = 0;
}

static inline void cpubench_int_step(struct cpubench_int_state *s, uint64_t iters)
{
	uint64_t a = s->a, b = s->b, c = s->c, d = s->d, i = s->i;

	for (uint64_t n = 0; n < iters; n++, i++) {
		a = (a ^ (a >> 29)) * 0xbf58476d1ce4e5b9ull;
		b += a ^ i;
		b = (b << 17) | (b >> 47);
		c = (c ^ b) * 0x94d049bb133111ebull;
		d += c ^ (d >> 13);
		a ^= d * 0x9e3779b97f4a7c15ull;
	}
	s->a = a;
	s->b = b;
	s->c = c;
	s->d = d;
	s->i = i;
}

static inline uint64_t cpubench_int_sum(const struct cpubench_int_state *s)
{
	return s->a ^ (s->b << 1) ^ (s->c << 2) ^ (s->d << 3) ^ s->i;
}

static inline uint64_t cpubench_int(uint64_t iters)
{
	struct cpubench_int_state s;
	cpubench_int_init(&s);
	cpubench_int_step(&s, iters);
	return cpubench_int_sum(&s);
}

/* ---- floating point: double multiplies, adds and a division ---------------
 * Per iteration: 5 multiplies, 4 adds/subtracts, 1 division. x follows the
 * logistic map at r = 3.9999, which is chaotic and stays in (0, 1), so any
 * error anywhere shows in the checksum; y stays in [0, 0.5) and z in [0, 2).
 * Every operation is an exact IEEE double operation (no FMA contraction in ISO
 * C mode, SSE2 on both sides), so guest and host agree bit for bit. */
struct cpubench_fp_state {
	double x, y, z;
	uint64_t i;
};

static inline void cpubench_fp_init(struct cpubench_fp_state *s)
{
	s->x = 0.123456789;
	s->y = 0.25;
	s->z = 0.75;
	s->i = 0;
}

static inline void cpubench_fp_step(struct cpubench_fp_state *s, uint64_t iters)
{
	double x = s->x, y = s->y, z = s->z;

	for (uint64_t n = 0; n < iters; n++) {
		x = 3.9999 * x * (1.0 - x);
		y = y * 0.5 + x * 0.25;
		z = (x + 0.5) / (y + 1.0) + z * 0.125;
	}
	s->x = x;
	s->y = y;
	s->z = z;
	s->i += iters;
}

static inline uint64_t cpubench_fp_bits(double v)
{
	union {
		double d;
		uint64_t u;
	} c = { .d = v };
	return c.u;
}

static inline uint64_t cpubench_fp_sum(const struct cpubench_fp_state *s)
{
	return cpubench_fp_bits(s->x) ^ (cpubench_fp_bits(s->y) << 1) ^
	       (cpubench_fp_bits(s->z) << 2) ^ s->i;
}

static inline uint64_t cpubench_fp(uint64_t iters)
{
	struct cpubench_fp_state s;
	cpubench_fp_init(&s);
	cpubench_fp_step(&s, iters);
	return cpubench_fp_sum(&s);
}

/* ---- stores: one 8-byte store per iteration over a 64 KiB array -----------
 * The value comes from a 64-bit LCG (one multiply-add); the index walks the
 * array with an odd stride, so every word is written once per 8192
 * iterations and the stores are almost all the work. */
#define CPUBENCH_STORE_WORDS 8192u /* 64 KiB */

struct cpubench_store_state {
	uint64_t v, i;
	uint64_t arr[CPUBENCH_STORE_WORDS];
};

static inline void cpubench_store_init(struct cpubench_store_state *s)
{
	s->v = 0x6a09e667f3bcc909ull;
	s->i = 0;
	for (uint64_t k = 0; k < CPUBENCH_STORE_WORDS; k++)
		s->arr[k] = 0;
}

static inline void cpubench_store_step(struct cpubench_store_state *s, uint64_t iters)
{
	volatile uint64_t *arr = s->arr; /* keep every store: they are the benchmark */
	uint64_t v = s->v, i = s->i;

	for (uint64_t n = 0; n < iters; n++, i++) {
		v = v * 6364136223846793005ull + 1442695040888963407ull;
		arr[(i * 97) & (CPUBENCH_STORE_WORDS - 1)] = v;
	}
	s->v = v;
	s->i = i;
}

/* Reads the whole array: 8192 loads, cheap next to the stores. */
static inline uint64_t cpubench_store_sum(const struct cpubench_store_state *s)
{
	uint64_t h = s->v ^ s->i;
	for (uint64_t k = 0; k < CPUBENCH_STORE_WORDS; k++)
		h = (h ^ s->arr[k]) * 0x100000001b3ull;
	return h;
}

/* The 64 KiB state is the caller's (static, or on a big enough stack). */
static inline uint64_t cpubench_store(struct cpubench_store_state *s, uint64_t iters)
{
	cpubench_store_init(s);
	cpubench_store_step(s, iters);
	return cpubench_store_sum(s);
}

#endif /* CPUBENCH_KERNELS_H */
