/* kv_buf: see kv_buf.h. */
#include "kv_buf.h"

void kv_buf_init(struct kv_buf *b, struct kv_heap *heap, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->heap = heap;
	b->limit = limit;
}

void kv_buf_release(struct kv_buf *b)
{
	kv_heap_free(b->heap, b->data);
	b->data = NULL;
	b->off = b->len = b->cap = 0;
	b->failed = false;
}

int kv_buf_make_room(struct kv_buf *b, size_t n)
{
	size_t held = b->len - b->off;

	if (n > b->limit || held > b->limit - n)
		return -KV_EMSGSIZE;
	if (b->cap - b->len >= n)
		return 0;
	if (b->off && b->cap - held >= n) {
		memmove(b->data, b->data + b->off, held);
		b->off = 0;
		b->len = held;
		return 0;
	}
	/* Double, or exactly what is needed when that is more: a buddy block of
	 * 2^k bytes holds 2^k - KV_HEAP_HDR, so exact sizes matter. */
	size_t cap = b->cap ? b->cap * 2 : 256;
	if (cap < held + n)
		cap = held + n;
	uint8_t *d = kv_heap_alloc(b->heap, cap);
	if (!d)
		return -KV_ENOMEM;
	if (held)
		memcpy(d, b->data + b->off, held);
	kv_heap_free(b->heap, b->data);
	b->data = d;
	b->cap = kv_heap_usable(d);
	b->off = 0;
	b->len = held;
	return 0;
}

void kv_buf_append(struct kv_buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (kv_buf_reserve(b, n) < 0) {
		b->failed = true;
		return;
	}
	kv_copy(b->data + b->len, p, n);
	b->len += n;
}

void kv_buf_consume(struct kv_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

void kv_buf_truncate(struct kv_buf *b, size_t keep)
{
	if (keep < b->len - b->off)
		b->len = b->off + keep;
}
