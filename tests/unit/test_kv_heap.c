/* kvstore's buddy heap and word-wise copy/compare (hv-core/guest/kvstore):
 * blocks never overlap, freed blocks merge back into the whole region, the
 * accounting is exact, and the copies and compares agree with memcpy and
 * memcmp at every length and alignment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_heap.h"

static void blocks_fit_their_request_and_merge_back(void **state)
{
	(void)state;
	size_t size = (1u << 20) + 12345; /* not a power of two, not aligned */
	uint8_t *mem = malloc(size + 7);
	struct kv_heap h;
	assert_int_equal(kv_heap_init(&h, mem + 7, size), 0);
	assert_int_equal(h.used, 0);
	/* The largest block the region holds, before and after any churn. */
	void *big = kv_heap_alloc(&h, (1u << 20) - KV_HEAP_HDR);
	assert_non_null(big);
	assert_null(kv_heap_alloc(&h, (1u << 20)));
	kv_heap_free(&h, big);
	assert_int_equal(h.used, 0);

	enum { N = 3000 };
	static void *p[N];
	static size_t len[N];
	srand(3);
	unsigned live = 0;
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < N; i++) {
			if (p[i] && rand() % 2) {
				for (size_t j = 0; j < len[i]; j++) /* nobody wrote over it */
					assert_int_equal(((uint8_t *)p[i])[j], (uint8_t)(i + j));
				kv_heap_free(&h, p[i]);
				p[i] = NULL;
				live--;
			} else if (!p[i]) {
				len[i] = (size_t)(rand() % 700);
				p[i] = kv_heap_alloc(&h, len[i]);
				if (!p[i])
					continue;
				assert_int_equal((uintptr_t)p[i] % 16, 0);
				assert_true(kv_heap_usable(p[i]) >= len[i]);
				assert_true((uint8_t *)p[i] >= mem + 7 &&
					    (uint8_t *)p[i] + len[i] <= mem + 7 + size);
				for (size_t j = 0; j < len[i]; j++)
					((uint8_t *)p[i])[j] = (uint8_t)(i + j);
				live++;
			}
		}
	}
	assert_true(live > 100);
	size_t used = 0;
	for (int i = 0; i < N; i++) {
		if (p[i])
			used += kv_heap_block_size(len[i]);
	}
	assert_int_equal(h.used, used);
	for (int i = 0; i < N; i++)
		kv_heap_free(&h, p[i]);
	assert_int_equal(h.used, 0);
	big = kv_heap_alloc(&h, (1u << 20) - KV_HEAP_HDR); /* everything merged again */
	assert_non_null(big);
	free(mem);
}

static void block_sizes_are_powers_of_two_with_the_header(void **state)
{
	(void)state;
	assert_int_equal(kv_heap_block_size(0), 32);
	assert_int_equal(kv_heap_block_size(16), 32);
	assert_int_equal(kv_heap_block_size(17), 64);
	assert_int_equal(kv_heap_block_size((4u << 20) - KV_HEAP_HDR), 4u << 20);
	assert_int_equal(kv_heap_block_size(SIZE_MAX / 2), 0);
	struct kv_heap h;
	uint8_t small[40];
	assert_int_equal(kv_heap_init(&h, small, 20), -KV_EINVAL);
}

static void word_copies_and_compares_match_the_c_library(void **state)
{
	(void)state;
	uint8_t src[80], dst[80], ref[80];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 37 + 1);
	for (size_t off = 0; off < 8; off++) {
		for (size_t n = 0; n <= 64; n++) {
			memset(dst, 0xee, sizeof(dst));
			memset(ref, 0xee, sizeof(ref));
			kv_copy(dst + off, src + 3, n);
			memcpy(ref + off, src + 3, n);
			assert_memory_equal(dst, ref, sizeof(dst));
			assert_true(kv_mem_eq(dst + off, src + 3, n));
			for (size_t j = 0; j < n; j++) { /* any one byte differs */
				dst[off + j] ^= 0x40;
				assert_false(kv_mem_eq(dst + off, src + 3, n));
				dst[off + j] ^= 0x40;
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(blocks_fit_their_request_and_merge_back),
		cmocka_unit_test(block_sizes_are_powers_of_two_with_the_header),
		cmocka_unit_test(word_copies_and_compares_match_the_c_library),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
