/*
 * Guest disks striped over RADOS objects: disk.<uuid>.header (a DiskHeader)
 * and data objects disk.<uuid>.<index> of object_size bytes (4 MiB), created
 * sparse by the first write that touches them. A request is split at object
 * boundaries and every piece is sent at once with rados_aio_*; the request
 * completes when its last piece does. See pvstore.h for the contracts.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto/storage.pb-c.h"

#define HEADER_MAX 4096
#define REMOVE_WINDOW 32

struct pvstore_disk {
	struct pvstore *st;
	uint8_t uuid[16];
	char header_oid[PVSTORE_OID_MAX];
	char data_prefix[48]; /* "disk.<uuid>.": 42 bytes */
	uint64_t size;
	uint32_t obj_size;
	unsigned obj_shift;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight;        /* requests started and not finished */
	unsigned inflight_writes;
	int write_err;            /* first write error since the last flush */
	bool fenced;              /* a piece came back -ESHUTDOWN: refuse all I/O */
	bool resizing;
};

struct piece {
	struct req *req;
	char *buf;
	size_t len;
};

struct req {
	struct pvstore_disk *d;
	pvstore_disk_cb cb;
	void *arg;
	bool write;
	atomic_uint pending; /* pieces in flight + 1 while submitting */
	atomic_int err;
	unsigned npieces;
	struct piece pieces[];
};

/* ---- header ----------------------------------------------------------------- */

static int header_encode(const uint8_t uuid[16], uint64_t size, uint32_t obj_size, uint8_t *buf,
			 size_t *len)
{
	Pvha__DiskHeader h = PVHA__DISK_HEADER__INIT;
	h.version = 1;
	h.uuid.data = (uint8_t *)uuid;
	h.uuid.len = 16;
	h.size = size;
	h.object_size = obj_size;
	*len = pvha__disk_header__get_packed_size(&h);
	if (*len > HEADER_MAX)
		return -EINVAL;
	pvha__disk_header__pack(&h, buf);
	return 0;
}

static bool size_ok(uint64_t size)
{
	return size && size % 512 == 0 && size <= PVSTORE_DISK_MAX_SIZE;
}

static int header_read(struct pvstore *st, const uint8_t uuid[16], const char *oid, uint64_t *size,
		       uint32_t *obj_size)
{
	uint8_t *buf;
	size_t len;
	int r = pvs_read_object(st, oid, HEADER_MAX, &buf, &len);
	if (r == -EFBIG)
		return pvs_failx(-EBADMSG, "%s: header larger than %u bytes", oid, HEADER_MAX);
	if (r == -ENOENT)
		return pvs_failx(r, "no disk: %s does not exist", oid);
	if (r < 0)
		return r;
	Pvha__DiskHeader *h = pvha__disk_header__unpack(NULL, len, buf);
	free(buf);
	if (!h)
		return pvs_failx(-EBADMSG, "%s: does not decode as a DiskHeader", oid);
	if (h->version != 1)
		r = pvs_failx(-EBADMSG, "%s: header version %u is unknown (want 1)", oid, h->version);
	else if (h->uuid.len != 16 || memcmp(h->uuid.data, uuid, 16) != 0)
		r = pvs_failx(-EBADMSG, "%s: header uuid does not match the object name", oid);
	else if (!size_ok(h->size))
		r = pvs_failx(-EBADMSG, "%s: size %" PRIu64 " is not a multiple of 512 up to 16 TiB", oid,
			      h->size);
	else if (h->object_size < 65536 || h->object_size > (64u << 20) ||
		 (h->object_size & (h->object_size - 1)))
		r = pvs_failx(-EBADMSG, "%s: object size %u is not a power of two in 64 KiB..64 MiB",
			      oid, h->object_size);
	else {
		*size = h->size;
		*obj_size = h->object_size;
	}
	pvha__disk_header__free_unpacked(h, NULL);
	return r;
}

/* Writes the header; exclusive: create it (fails with -EEXIST), else it must exist. */
static int header_write(struct pvstore *st, const uint8_t uuid[16], const char *oid, uint64_t size,
			uint32_t obj_size, bool exclusive)
{
	uint8_t buf[HEADER_MAX];
	size_t len;
	int r = header_encode(uuid, size, obj_size, buf, &len);
	if (r < 0)
		return pvs_failx(r, "%s: header does not encode", oid);
	rados_write_op_t op = rados_create_write_op();
	if (exclusive)
		rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	else
		rados_write_op_assert_exists(op);
	rados_write_op_write_full(op, (const char *)buf, len);
	r = pvs_rc(rados_write_op_operate(op, st->io, oid, NULL, 0));
	rados_release_write_op(op);
	if (r == -EEXIST)
		return pvs_failx(r, "the disk exists already (%s)", oid);
	if (r < 0)
		return pvs_fail(r, "writing %s", oid);
	return 0;
}

int pvstore_disk_create(struct pvstore *st, const uint8_t uuid[16], uint64_t size)
{
	char oid[PVSTORE_OID_MAX];
	if (!size_ok(size))
		return pvs_failx(-EINVAL, "disk size %" PRIu64 " is not a non-zero multiple of 512 up to 16 TiB",
				 size);
	pvstore_oid_disk_header(oid, sizeof(oid), uuid);
	return header_write(st, uuid, oid, size, PVSTORE_DISK_OBJECT_SIZE, true);
}

/* ---- open / close ------------------------------------------------------------ */

int pvstore_disk_open(struct pvstore *st, const uint8_t uuid[16], struct pvstore_disk **out)
{
	struct pvstore_disk *d;
	char u[PVSTORE_UUID_STR];
	int r;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return pvs_fail(-ENOMEM, "pvstore_disk_open");
	d->st = st;
	memcpy(d->uuid, uuid, 16);
	pvstore_oid_disk_header(d->header_oid, sizeof(d->header_oid), uuid);
	pvstore_uuid_format(uuid, u);
	snprintf(d->data_prefix, sizeof(d->data_prefix), PVSTORE_OID_DISK_PREFIX "%s.", u);
	r = header_read(st, uuid, d->header_oid, &d->size, &d->obj_size);
	if (r < 0)
		goto err_free;
	d->obj_shift = (unsigned)__builtin_ctz(d->obj_size);
	if ((r = -pthread_mutex_init(&d->mu, NULL)) < 0) {
		pvs_fail(r, "pvstore_disk_open: mutex");
		goto err_free;
	}
	if ((r = -pthread_cond_init(&d->cv, NULL)) < 0) {
		pvs_fail(r, "pvstore_disk_open: condvar");
		goto err_mutex;
	}
	*out = d;
	return 0;

err_mutex:
	pthread_mutex_destroy(&d->mu);
err_free:
	free(d);
	return r;
}

void pvstore_disk_close(struct pvstore_disk *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	while (d->inflight)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

uint64_t pvstore_disk_size(const struct pvstore_disk *d)
{
	return d->size;
}

/* ---- asynchronous I/O ---------------------------------------------------------- */

static void data_oid(const struct pvstore_disk *d, uint64_t index, char *buf, size_t len)
{
	snprintf(buf, len, "%s%016" PRIx64, d->data_prefix, index);
}

/* The last piece of a request ended: tell the caller, then the bookkeeping
 * that flush and close wait on (after the callback, so that close never
 * returns while a callback still runs). */
static void req_finish(struct req *q)
{
	struct pvstore_disk *d = q->d;
	int err = atomic_load(&q->err);

	q->cb(q->arg, err);
	pthread_mutex_lock(&d->mu);
	if (err == -ESHUTDOWN)
		d->fenced = true;
	if (q->write) {
		if (err && (!d->write_err || err == -ESHUTDOWN))
			d->write_err = err;
		d->inflight_writes--;
	}
	d->inflight--;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
	free(q);
}

static void req_put(struct req *q)
{
	if (atomic_fetch_sub(&q->pending, 1) == 1)
		req_finish(q);
}

static void req_set_err(struct req *q, int err)
{
	int zero = 0;
	/* the first error wins, except that being fenced says the most */
	if (!atomic_compare_exchange_strong(&q->err, &zero, err) && err == -ESHUTDOWN)
		atomic_store(&q->err, err);
}

static void piece_done(rados_completion_t c, void *arg)
{
	struct piece *p = arg;
	struct req *q = p->req;
	int r = pvs_rc(rados_aio_get_return_value(c));

	if (!q->write) {
		if (r == -ENOENT) { /* a hole: the object was never written */
			memset(p->buf, 0, p->len);
			r = 0;
		} else if (r >= 0) {
			if ((size_t)r < p->len) /* past the object's end: zeros too */
				memset(p->buf + r, 0, p->len - (size_t)r);
			r = 0;
		}
	}
	if (r < 0)
		req_set_err(q, r);
	rados_aio_release(c);
	req_put(q);
}

static int start(struct pvstore_disk *d, char *buf, uint64_t off, size_t len, bool write,
		 pvstore_disk_cb cb, void *arg)
{
	uint64_t first, last, end;
	unsigned npieces, i;
	struct req *q;
	int r;

	if (!len || off > d->size || len > d->size - off)
		return pvs_failx(-EINVAL, "%s: %s of %zu bytes at %" PRIu64 " is outside the disk (%" PRIu64 " bytes)",
				 d->header_oid, write ? "write" : "read", len, off, d->size);
	end = off + len;
	first = off >> d->obj_shift;
	last = (end - 1) >> d->obj_shift;
	if (last - first >= 1u << 20)
		return pvs_failx(-EINVAL, "%s: request of %zu bytes is too large", d->header_oid, len);
	npieces = (unsigned)(last - first + 1);

	q = malloc(sizeof(*q) + npieces * sizeof(q->pieces[0]));
	if (!q)
		return pvs_fail(-ENOMEM, "%s", d->header_oid);
	q->d = d;
	q->cb = cb;
	q->arg = arg;
	q->write = write;
	q->npieces = npieces;
	atomic_init(&q->pending, npieces + 1);
	atomic_init(&q->err, 0);

	pthread_mutex_lock(&d->mu);
	if (d->fenced || d->resizing) {
		bool fenced = d->fenced;
		pthread_mutex_unlock(&d->mu);
		free(q);
		if (fenced)
			return pvs_failx(-ESHUTDOWN, "%s: this client is fenced (blocklisted)", d->header_oid);
		return pvs_failx(-EBUSY, "%s: the disk is being resized", d->header_oid);
	}
	d->inflight++;
	if (write)
		d->inflight_writes++;
	pthread_mutex_unlock(&d->mu);

	for (i = 0; i < npieces; i++) {
		uint64_t idx = first + i;
		uint64_t obj_start = idx << d->obj_shift;
		uint64_t p_off = off > obj_start ? off : obj_start;
		uint64_t p_end = end < obj_start + d->obj_size ? end : obj_start + d->obj_size;
		struct piece *p = &q->pieces[i];
		rados_completion_t c;
		char oid[PVSTORE_OID_MAX];

		p->req = q;
		p->buf = buf + (p_off - off);
		p->len = (size_t)(p_end - p_off);
		data_oid(d, idx, oid, sizeof(oid));
		r = pvs_rc(rados_aio_create_completion2(p, piece_done, &c));
		if (r == 0) {
			if (write)
				r = pvs_rc(rados_aio_write(d->st->io, oid, c, p->buf, p->len, p_off - obj_start));
			else
				r = pvs_rc(rados_aio_read(d->st->io, oid, c, p->buf, p->len, p_off - obj_start));
			if (r < 0)
				rados_aio_release(c);
		}
		if (r < 0)
			break;
	}
	if (i < npieces) {
		if (i == 0) {
			/* nothing went out: fail the call, no callback */
			pthread_mutex_lock(&d->mu);
			d->inflight--;
			if (write)
				d->inflight_writes--;
			pthread_cond_broadcast(&d->cv);
			pthread_mutex_unlock(&d->mu);
			free(q);
			return pvs_fail(r, "%s: starting a %s", d->header_oid, write ? "write" : "read");
		}
		/* some pieces are in flight: the callback reports the failure */
		req_set_err(q, r);
		for (unsigned j = i; j < npieces; j++)
			req_put(q);
	}
	req_put(q); /* the submission's own reference */
	return 0;
}

int pvstore_disk_aio_read(struct pvstore_disk *d, void *buf, uint64_t off, size_t len,
			  pvstore_disk_cb cb, void *arg)
{
	return start(d, buf, off, len, false, cb, arg);
}

int pvstore_disk_aio_write(struct pvstore_disk *d, const void *buf, uint64_t off, size_t len,
			   pvstore_disk_cb cb, void *arg)
{
	/* librados does not write through the buffer; the cast only meets its
	 * shared read/write piece type */
	return start(d, (char *)buf, off, len, true, cb, arg);
}

/* ---- synchronous I/O ------------------------------------------------------------ */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int result;
};

static void wake(void *arg, int result)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->result = result;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static int sync_io(struct pvstore_disk *d, char *buf, uint64_t off, size_t len, bool write)
{
	struct waiter w = {.done = false, .result = 0};
	int r;

	if (!len)
		return 0;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	r = start(d, buf, off, len, write, wake, &w);
	if (r == 0) {
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		r = w.result;
		if (r < 0)
			pvs_fail(r, "%s: %s of %zu bytes at %" PRIu64, d->header_oid,
				 write ? "write" : "read", len, off);
		if (write)
			r = pvs_explain_write_timeout(d->st, r, d->header_oid);
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return r;
}

int pvstore_disk_read(struct pvstore_disk *d, void *buf, uint64_t off, size_t len)
{
	return sync_io(d, buf, off, len, false);
}

int pvstore_disk_write(struct pvstore_disk *d, const void *buf, uint64_t off, size_t len)
{
	return sync_io(d, (char *)buf, off, len, true);
}

int pvstore_disk_flush(struct pvstore_disk *d)
{
	int r;
	pthread_mutex_lock(&d->mu);
	while (d->inflight_writes)
		pthread_cond_wait(&d->cv, &d->mu);
	r = d->write_err;
	if (r != -ESHUTDOWN) /* being fenced is reported to every later flush */
		d->write_err = 0;
	if (!r && d->fenced)
		r = -ESHUTDOWN;
	pthread_mutex_unlock(&d->mu);
	if (r < 0) {
		pvs_fail(r, "%s: flush: an earlier write failed", d->header_oid);
		return pvs_explain_write_timeout(d->st, r, d->header_oid);
	}
	return 0;
}

/* ---- resize / delete ------------------------------------------------------------ */

struct rm_slot {
	rados_completion_t c;
	uint64_t index;
};

/* Removes data objects [first, end) of a disk, REMOVE_WINDOW at a time;
 * missing ones are fine. */
static int remove_objects(struct pvstore *st, const char *prefix, uint64_t first, uint64_t end)
{
	struct rm_slot slots[REMOVE_WINDOW];
	int err = 0;

	for (uint64_t base = first; base < end && !err; base += REMOVE_WINDOW) {
		unsigned n = 0;
		for (uint64_t i = base; i < end && n < REMOVE_WINDOW; i++) {
			char oid[PVSTORE_OID_MAX];
			int r;
			snprintf(oid, sizeof(oid), "%s%016" PRIx64, prefix, i);
			r = pvs_rc(rados_aio_create_completion2(NULL, NULL, &slots[n].c));
			if (r == 0) {
				r = pvs_rc(rados_aio_remove(st->io, oid, slots[n].c));
				if (r < 0)
					rados_aio_release(slots[n].c);
			}
			if (r < 0) {
				err = pvs_fail(r, "removing %s", oid);
				break;
			}
			slots[n++].index = i;
		}
		for (unsigned j = 0; j < n; j++) {
			rados_aio_wait_for_complete(slots[j].c);
			int r = pvs_rc(rados_aio_get_return_value(slots[j].c));
			rados_aio_release(slots[j].c);
			if (r < 0 && r != -ENOENT && !err)
				err = pvs_fail(r, "removing %s%016" PRIx64, prefix, slots[j].index);
		}
	}
	return err;
}

static uint64_t objects_for(uint64_t size, unsigned shift)
{
	return (size + (1ull << shift) - 1) >> shift;
}

int pvstore_disk_resize(struct pvstore_disk *d, uint64_t new_size)
{
	int r = 0;

	if (!size_ok(new_size))
		return pvs_failx(-EINVAL, "disk size %" PRIu64 " is not a non-zero multiple of 512 up to 16 TiB",
				 new_size);
	pthread_mutex_lock(&d->mu);
	if (d->fenced) {
		pthread_mutex_unlock(&d->mu);
		return pvs_failx(-ESHUTDOWN, "%s: this client is fenced (blocklisted)", d->header_oid);
	}
	d->resizing = true;
	while (d->inflight)
		pthread_cond_wait(&d->cv, &d->mu);
	pthread_mutex_unlock(&d->mu);

	if (new_size < d->size) {
		/* Data beyond the new end goes before the header changes: a
		 * crash in between leaves the old size with zeros at its end,
		 * never old data showing up after a later grow. */
		uint64_t keep = objects_for(new_size, d->obj_shift);
		r = remove_objects(d->st, d->data_prefix, keep, objects_for(d->size, d->obj_shift));
		if (!r && new_size & (d->obj_size - 1)) {
			char oid[PVSTORE_OID_MAX];
			data_oid(d, new_size >> d->obj_shift, oid, sizeof(oid));
			rados_write_op_t op = rados_create_write_op();
			rados_write_op_assert_exists(op);
			rados_write_op_truncate(op, new_size & (d->obj_size - 1));
			r = pvs_rc(rados_write_op_operate(op, d->st->io, oid, NULL, 0));
			rados_release_write_op(op);
			if (r == -ENOENT)
				r = 0; /* a hole stays a hole */
			else if (r < 0)
				pvs_fail(r, "truncating %s", oid);
		}
	}
	if (!r)
		r = header_write(d->st, d->uuid, d->header_oid, new_size, d->obj_size, false);
	if (!r)
		d->size = new_size;

	pthread_mutex_lock(&d->mu);
	d->resizing = false;
	pthread_mutex_unlock(&d->mu);
	return r;
}

int pvstore_disk_delete(struct pvstore *st, const uint8_t uuid[16])
{
	char oid[PVSTORE_OID_MAX], prefix[PVSTORE_OID_MAX], u[PVSTORE_UUID_STR];
	uint64_t size;
	uint32_t obj_size;
	int r;

	pvstore_oid_disk_header(oid, sizeof(oid), uuid);
	pvstore_uuid_format(uuid, u);
	snprintf(prefix, sizeof(prefix), PVSTORE_OID_DISK_PREFIX "%s.", u);
	r = header_read(st, uuid, oid, &size, &obj_size);
	if (r < 0)
		return r;
	/* data first, the header last: an interrupted delete can be redone */
	r = remove_objects(st, prefix, 0, objects_for(size, (unsigned)__builtin_ctz(obj_size)));
	if (r < 0)
		return r;
	r = pvs_rc(rados_remove(st->io, oid));
	if (r < 0 && r != -ENOENT)
		return pvs_fail(r, "removing %s", oid);
	return 0;
}
