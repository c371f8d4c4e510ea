/*
 * kv_heap: a buddy allocator over one caller-given region of memory. kvstore
 * allocates everything from it (there is no malloc in a guest), so the guest's
 * RAM bounds kvstore's memory, and freed blocks merge back with their buddies
 * so that a workload that changes its value sizes does not strand memory.
 *
 * Blocks are 32 << k bytes (k < KV_HEAP_ORDERS); each carries a 16-byte
 * header, so a request of n bytes takes the smallest block >= n + 16: at most
 * twice n plus 16. Payloads are 16-byte aligned. Costs: alloc and free
 * O(KV_HEAP_ORDERS). `used` counts whole blocks, header and slack included.
 */
#ifndef KV_HEAP_H
#define KV_HEAP_H

#include "kvstore.h"

#define KV_HEAP_MIN_SHIFT 5u /* 32-byte smallest block */
#define KV_HEAP_ORDERS 36u   /* largest block 32 << 35 = 1 TiB */
#define KV_HEAP_HDR 16u

struct kv_heap_free;

struct kv_heap {
	uint8_t *base;  /* 32-byte aligned start of the managed region */
	size_t size;    /* bytes managed, a multiple of 32 */
	size_t used;    /* bytes in allocated blocks */
	struct kv_heap_free *free[KV_HEAP_ORDERS];
};

/* Manages [mem, mem + len): the region is aligned in, and carved into the
 * largest aligned power-of-two blocks. Returns 0, or -KV_EINVAL when fewer
 * than 32 bytes are left. O(orders). */
int kv_heap_init(struct kv_heap *h, void *mem, size_t len);

/* A block of at least n bytes, 16-byte aligned, or NULL when none is free. */
void *kv_heap_alloc(struct kv_heap *h, size_t n);

/* Gives back a block from kv_heap_alloc (NULL is ignored). */
void kv_heap_free(struct kv_heap *h, void *p);

/* The usable bytes of the block p points at (>= what was asked). */
size_t kv_heap_usable(const void *p);

/* The block bytes an allocation of n bytes would take (0 when too big). */
size_t kv_heap_block_size(size_t n);

#endif /* KV_HEAP_H */
