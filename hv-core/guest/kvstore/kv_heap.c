/*
 * kv_heap: buddy allocator; see kv_heap.h. A block starts with its header:
 * a tag (allocated or free) and its order. A free block also links itself
 * into its order's list. The buddy of a block of order k at offset o lies at
 * o ^ (32 << k); while the block exists, that address is always the start of
 * a block (its buddy, or the first piece of its split buddy), so reading its
 * header is safe. Top-level blocks (the region carved greedily from offset 0)
 * have their buddy at or past the end: they never merge.
 */
#include "kv_heap.h"

#define TAG_USED 0x55534544u /* "DESU" */
#define TAG_FREE 0x45455246u /* "FREE" */

struct kv_heap_hdr {
	uint32_t tag;
	uint32_t order;
	uint64_t pad;
};

struct kv_heap_free {
	struct kv_heap_hdr hdr;
	struct kv_heap_free *next;
	struct kv_heap_free *prev;
};

_Static_assert(sizeof(struct kv_heap_hdr) == KV_HEAP_HDR, "header size");
_Static_assert(sizeof(struct kv_heap_free) <= (1u << KV_HEAP_MIN_SHIFT), "free block size");

static size_t order_size(unsigned k)
{
	return (size_t)1 << (k + KV_HEAP_MIN_SHIFT);
}

static void list_push(struct kv_heap *h, struct kv_heap_free *b, unsigned k)
{
	b->hdr.tag = TAG_FREE;
	b->hdr.order = k;
	b->prev = NULL;
	b->next = h->free[k];
	if (b->next)
		b->next->prev = b;
	h->free[k] = b;
}

static void list_remove(struct kv_heap *h, struct kv_heap_free *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		h->free[b->hdr.order] = b->next;
	if (b->next)
		b->next->prev = b->prev;
}

int kv_heap_init(struct kv_heap *h, void *mem, size_t len)
{
	uintptr_t start = ((uintptr_t)mem + 31u) & ~(uintptr_t)31u;
	size_t lost = (size_t)(start - (uintptr_t)mem);

	memset(h, 0, sizeof(*h));
	if (len < lost + 32u)
		return -KV_EINVAL;
	h->base = (uint8_t *)start;
	h->size = (len - lost) & ~(size_t)31u;
	size_t off = 0;
	while (off < h->size) {
		unsigned k = KV_HEAP_ORDERS - 1;
		while (order_size(k) > h->size - off)
			k--;
		list_push(h, (struct kv_heap_free *)(h->base + off), k);
		off += order_size(k);
	}
	return 0;
}

size_t kv_heap_block_size(size_t n)
{
	if (n > order_size(KV_HEAP_ORDERS - 1) - KV_HEAP_HDR)
		return 0;
	unsigned k = 0;
	while (order_size(k) < n + KV_HEAP_HDR)
		k++;
	return order_size(k);
}

void *kv_heap_alloc(struct kv_heap *h, size_t n)
{
	size_t want = kv_heap_block_size(n);
	if (want == 0)
		return NULL;
	unsigned k = 0;
	while (order_size(k) < want)
		k++;
	unsigned j = k;
	while (j < KV_HEAP_ORDERS && !h->free[j])
		j++;
	if (j == KV_HEAP_ORDERS)
		return NULL;
	struct kv_heap_free *b = h->free[j];
	list_remove(h, b);
	/* Split down to order k, giving the upper halves back. */
	while (j > k) {
		j--;
		list_push(h, (struct kv_heap_free *)((uint8_t *)b + order_size(j)), j);
	}
	struct kv_heap_hdr *hdr = &b->hdr;
	hdr->tag = TAG_USED;
	hdr->order = k;
	h->used += order_size(k);
	return (uint8_t *)hdr + KV_HEAP_HDR;
}

void kv_heap_free(struct kv_heap *h, void *p)
{
	if (!p)
		return;
	struct kv_heap_hdr *hdr = (struct kv_heap_hdr *)((uint8_t *)p - KV_HEAP_HDR);
	unsigned k = hdr->order;
	size_t off = (size_t)((uint8_t *)hdr - h->base);

	h->used -= order_size(k);
	while (k + 1 < KV_HEAP_ORDERS) {
		size_t boff = off ^ order_size(k);
		if (boff + order_size(k) > h->size)
			break;
		struct kv_heap_free *buddy = (struct kv_heap_free *)(h->base + boff);
		if (buddy->hdr.tag != TAG_FREE || buddy->hdr.order != k)
			break;
		list_remove(h, buddy);
		buddy->hdr.tag = 0;
		if (boff < off)
			off = boff;
		k++;
	}
	list_push(h, (struct kv_heap_free *)(h->base + off), k);
}

size_t kv_heap_usable(const void *p)
{
	const struct kv_heap_hdr *hdr = (const struct kv_heap_hdr *)((const uint8_t *)p - KV_HEAP_HDR);
	return order_size(hdr->order) - KV_HEAP_HDR;
}
