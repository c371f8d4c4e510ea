/* kv_hash: see kvstore.h. */
#include "kvstore.h"

typedef uint64_t __attribute__((may_alias, aligned(1))) u64_unaligned;

#define MUL 0xff51afd7ed558ccdull

uint64_t kv_hash(uint64_t seed, const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ ((uint64_t)len * 0x9e3779b97f4a7c15ull);
	bool long_enough = len >= 8;

	for (; len >= 8; len -= 8, b += 8) {
		h ^= *(const u64_unaligned *)b;
		h *= MUL;
		h ^= h >> 32;
	}
	if (len) {
		uint64_t w = 0;
		if (long_enough) /* the last 8 bytes, shifted down to the tail's */
			w = *(const u64_unaligned *)(b + len - 8) >> (8 * (8 - len));
		else
			for (size_t i = 0; i < len; i++)
				w |= (uint64_t)b[i] << (8 * i);
		h ^= w;
		h *= MUL;
		h ^= h >> 32;
	}
	h ^= h >> 29;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 32;
	return h;
}
