/*
 * A disk in memory for kvstore's unit tests: `data` is what the disk holds
 * (every write), `durable` what a crash would keep (the state at the last
 * flush). A write budget makes the disk "crash": once a write finds it spent,
 * that write and every later write and flush fail with -EIO and change nothing, so a test can stop a log in the
 * middle of any sequence of writes and reopen either image.
 */
#ifndef KV_TEST_DISK_H
#define KV_TEST_DISK_H

#include <stdlib.h>
#include <string.h>

#include "kv_log.h"

struct memdisk {
	uint8_t *data;
	uint8_t *durable;
	size_t size;
	long writes_left; /* < 0: unlimited */
	bool crashed;     /* a write found the budget spent: flushes fail too */
	unsigned writes, flushes, reads;
};

static inline int memdisk_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct memdisk *d = ctx;
	if (off > d->size || len > d->size - off)
		abort(); /* the log must never ask outside the disk */
	d->reads++;
	memcpy(buf, d->data + off, len);
	return 0;
}

static inline int memdisk_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	struct memdisk *d = ctx;
	if (off > d->size || len > d->size - off)
		abort();
	if (d->writes_left == 0) {
		d->crashed = true;
		return -KV_EIO;
	}
	if (d->writes_left > 0)
		d->writes_left--;
	d->writes++;
	memcpy(d->data + off, buf, len);
	return 0;
}

static inline int memdisk_flush(void *ctx)
{
	struct memdisk *d = ctx;
	if (d->crashed)
		return -KV_EIO;
	d->flushes++;
	memcpy(d->durable, d->data, d->size);
	return 0;
}

static const struct kv_disk_ops memdisk_ops = {
	.read = memdisk_read, .write = memdisk_write, .flush = memdisk_flush,
};

static inline void memdisk_init(struct memdisk *d, size_t size)
{
	memset(d, 0, sizeof(*d));
	d->size = size;
	d->data = calloc(1, size);
	d->durable = calloc(1, size);
	d->writes_left = -1;
}

/* A copy of src's `data` (or, with durable, of what a crash keeps). */
static inline void memdisk_clone(struct memdisk *d, const struct memdisk *src, bool durable)
{
	memdisk_init(d, src->size);
	memcpy(d->data, durable ? src->durable : src->data, src->size);
	memcpy(d->durable, d->data, d->size);
}

static inline void memdisk_free(struct memdisk *d)
{
	free(d->data);
	free(d->durable);
}

static inline struct kv_disk memdisk_disk(struct memdisk *d)
{
	return (struct kv_disk){ .ops = &memdisk_ops, .ctx = d, .size = d->size };
}

#endif /* KV_TEST_DISK_H */
