/*
 * kv_buf: a growable byte buffer on a kv_heap, with a hard limit. Bytes are
 * appended at the end and consumed from the front (a client's input, its
 * queued replies). An append that cannot grow the buffer (heap exhausted or
 * limit reached) appends nothing and sets `failed`, so a reply builder can
 * write a whole reply and check once.
 */
#ifndef KV_BUF_H
#define KV_BUF_H

#include "kv_heap.h"

struct kv_buf {
	struct kv_heap *heap;
	uint8_t *data;
	size_t off;   /* first unconsumed byte */
	size_t len;   /* end of the bytes held */
	size_t cap;
	size_t limit; /* most bytes ever held (len - off) */
	bool failed;  /* an append did not fit */
};

void kv_buf_init(struct kv_buf *b, struct kv_heap *heap, size_t limit);

/* Gives the memory back; the buffer is empty and usable again. */
void kv_buf_release(struct kv_buf *b);

/* Bytes held. */
static inline size_t kv_buf_size(const struct kv_buf *b)
{
	return b->len - b->off;
}

static inline const uint8_t *kv_buf_head(const struct kv_buf *b)
{
	return b->data + b->off;
}

/* kv_buf_reserve's slow path: moves or grows the buffer. */
int kv_buf_make_room(struct kv_buf *b, size_t n);

/* Room for n more bytes at the end: 0, -KV_EMSGSIZE over the limit, or
 * -KV_ENOMEM. Moves the held bytes to the front first when that is enough.
 * O(1) when there is room already, O(held) when it moves or grows. */
static inline int kv_buf_reserve(struct kv_buf *b, size_t n)
{
	if (b->cap - b->len >= n && n <= b->limit && b->len - b->off <= b->limit - n)
		return 0;
	return kv_buf_make_room(b, n);
}

/* The end of the held bytes, where up to the reserved room may be written;
 * kv_buf_commit(b, n) then adds n of them. */
static inline uint8_t *kv_buf_tail(struct kv_buf *b)
{
	return b->data + b->len;
}

static inline void kv_buf_commit(struct kv_buf *b, size_t n)
{
	b->len += n;
}

/* Appends n bytes, or sets failed (and appends nothing). */
void kv_buf_append(struct kv_buf *b, const void *p, size_t n);

/* Drops n bytes from the front (n <= kv_buf_size). O(1). */
void kv_buf_consume(struct kv_buf *b, size_t n);

/* Drops everything after the first `keep` held bytes. */
void kv_buf_truncate(struct kv_buf *b, size_t keep);

#endif /* KV_BUF_H */
