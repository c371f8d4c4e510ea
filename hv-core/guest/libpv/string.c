/*
 * libpv string functions: the ones gcc may call on its own (memcpy, memset,
 * memmove, memcmp) and a few more. Built (by gcc) with
 * -fno-tree-loop-distribute-patterns so that these loops are not turned back
 * into calls to themselves; clang does not do that under -ffreestanding. Bulk moves use 8-byte accesses: on the software
 * CPU every store is costly, so fewer, wider stores matter more than anything.
 */
#include "pv.h"

typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	for (; n >= 8; n -= 8, d += 8, s += 8)
		*(u64_unaligned *)d = *(const u64_unaligned *)s;
	while (n--)
		*d++ = *s++;
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (d == s || n == 0)
		return dst;
	if (d < s || d >= s + n) {
		/* Forward copy is safe; the 8-byte loop reads each word before
		 * the store that could overlap it. */
		for (; n >= 8; n -= 8, d += 8, s += 8) {
			uint64_t w = *(const u64_unaligned *)s;
			*(u64_unaligned *)d = w;
		}
		while (n--)
			*d++ = *s++;
	} else {
		d += n;
		s += n;
		for (; n >= 8; n -= 8) {
			d -= 8;
			s -= 8;
			uint64_t w = *(const u64_unaligned *)s;
			*(u64_unaligned *)d = w;
		}
		while (n--)
			*--d = *--s;
	}
	return dst;
}

void *memset(void *dst, int c, size_t n)
{
	unsigned char *d = dst;
	uint64_t w = 0x0101010101010101ull * (unsigned char)c;

	for (; n >= 8; n -= 8, d += 8)
		*(u64_unaligned *)d = w;
	while (n--)
		*d++ = (unsigned char)c;
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;
	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
	}
	return 0;
}

char *strchr(const char *s, int c)
{
	for (;; s++) {
		if (*s == (char)c)
			return (char *)s;
		if (!*s)
			return NULL;
	}
}

int pv_parse_u64(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -PV_EINVAL;
	for (; *s; s++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -PV_EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -PV_EINVAL;
		v = v * base + d;
	}
	*out = v;
	return 0;
}
