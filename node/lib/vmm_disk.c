/* See vmm_disk.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "pvstore/pvstore.h"
#include "vmm_disk.h"

/* The guest record's memory rule and the ABI's are one rule. */
_Static_assert(PVSTORE_MEM_MIN == PV_MEM_MIN && PVSTORE_MEM_MAX == PV_MEM_MAX,
	       "pvstore.h and pvhv/abi.h disagree on the guest memory range");

#define RADOS_INFLIGHT_MAX (32u << 20)

struct rados_disk {
	struct hv_disk hd;
	struct pvstore *st;
	struct pvstore_disk *d;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	size_t inflight_bytes; /* guarded by lock */
	int err;               /* first failed write not yet reported; guarded by lock */
	struct write_req *free_reqs; /* guarded by lock */
	uint8_t uuid[16];
	char lock_cookie[64];  /* "" unless vmm_disk_lock took the owner lock */
};

/* A write's own copy of the guest's data. Requests are recycled through
 * free_reqs rather than freed: a fresh malloc of this size is an mmap, and its
 * munmap a TLB shootdown across librados's threads, on every write. */
struct write_req {
	struct rados_disk *rd;
	struct write_req *next;
	size_t len;
	uint8_t data[PV_DISK_IO_MAX];
};

static void write_done(void *arg, int result)
{
	struct write_req *w = arg;
	struct rados_disk *rd = w->rd;
	pthread_mutex_lock(&rd->lock);
	if (result < 0 && (rd->err == 0 || result == -ESHUTDOWN))
		rd->err = result;
	rd->inflight_bytes -= w->len;
	w->next = rd->free_reqs;
	rd->free_reqs = w;
	pthread_cond_broadcast(&rd->idle);
	pthread_mutex_unlock(&rd->lock);
}

/* Waits until at most `room` bytes are in flight; returns the pending error,
 * clearing it unless it is the fence (which stays). */
static int wait_inflight(struct rados_disk *rd, size_t room)
{
	pthread_mutex_lock(&rd->lock);
	while (rd->inflight_bytes > room)
		pthread_cond_wait(&rd->idle, &rd->lock);
	int err = rd->err;
	if (err != -ESHUTDOWN)
		rd->err = 0;
	pthread_mutex_unlock(&rd->lock);
	return err;
}

static int rados_read(struct hv_disk *hd, void *buf, uint64_t off, size_t len)
{
	struct rados_disk *rd = hd->priv;
	int err = wait_inflight(rd, 0);
	if (err)
		return err;
	return pvstore_disk_read(rd->d, buf, off, len);
}

static int rados_write(struct hv_disk *hd, const void *buf, uint64_t off, size_t len)
{
	struct rados_disk *rd = hd->priv;
	int err = wait_inflight(rd, RADOS_INFLIGHT_MAX - len);
	if (err)
		return err;
	if (len > PV_DISK_IO_MAX)
		return -EINVAL;
	pthread_mutex_lock(&rd->lock);
	struct write_req *w = rd->free_reqs;
	if (w)
		rd->free_reqs = w->next;
	pthread_mutex_unlock(&rd->lock);
	if (!w && !(w = malloc(sizeof(*w))))
		return -ENOMEM;
	w->rd = rd;
	w->len = len;
	memcpy(w->data, buf, len); /* the guest may reuse its buffer at once */
	pthread_mutex_lock(&rd->lock);
	rd->inflight_bytes += len;
	pthread_mutex_unlock(&rd->lock);
	err = pvstore_disk_aio_write(rd->d, w->data, off, len, write_done, w);
	if (err) {
		pthread_mutex_lock(&rd->lock);
		rd->inflight_bytes -= len;
		w->next = rd->free_reqs;
		rd->free_reqs = w;
		pthread_mutex_unlock(&rd->lock);
	}
	return err;
}

static int rados_flush(struct hv_disk *hd)
{
	struct rados_disk *rd = hd->priv;
	int err = wait_inflight(rd, 0);
	int ferr = pvstore_disk_flush(rd->d);
	return err ? err : ferr;
}

static void rados_close(struct hv_disk *hd)
{
	struct rados_disk *rd = hd->priv;
	if (rd->d)
		pvstore_disk_close(rd->d); /* waits for requests in flight */
	pvstore_disconnect(rd->st);
	while (rd->free_reqs) {
		struct write_req *w = rd->free_reqs;
		rd->free_reqs = w->next;
		free(w);
	}
	pthread_cond_destroy(&rd->idle);
	pthread_mutex_destroy(&rd->lock);
	free(rd);
}

static const struct hv_disk_ops rados_ops = {
	.name = "rados",
	.read = rados_read,
	.write = rados_write,
	.flush = rados_flush,
	.close = rados_close,
};

/* A lock-only handle (vmm_disk_open_owner): it has no disk to read or write. */
static int owner_io(struct hv_disk *hd, void *buf, uint64_t off, size_t len)
{
	(void)hd, (void)buf, (void)off, (void)len;
	return -ENODEV;
}

static int owner_write(struct hv_disk *hd, const void *buf, uint64_t off, size_t len)
{
	(void)hd, (void)buf, (void)off, (void)len;
	return -ENODEV;
}

static int owner_flush(struct hv_disk *hd)
{
	(void)hd;
	return 0;
}

static const struct hv_disk_ops owner_ops = {
	.name = "rados-owner",
	.read = owner_io,
	.write = owner_write,
	.flush = owner_flush,
	.close = rados_close,
};

/* The rados state behind d, or NULL when d is not a rados handle. */
static struct rados_disk *rados_of(const struct hv_disk *d)
{
	return d && (d->ops == &rados_ops || d->ops == &owner_ops) ? d->priv : NULL;
}

/* without_disk: a lock-only handle (the guest has no disk). */
static int open_rados(const struct pv_disk_spec *ds, const struct vmm_disk_opts *o, bool without_disk,
		      struct hv_disk **out, char *why, size_t whylen)
{
	struct pvstore_config cfg = {
		.conf_path = o && o->ceph_conf ? o->ceph_conf : "/etc/ceph/ceph.conf",
		.client_name = o ? o->ceph_client : NULL,
		.key = o ? o->ceph_key : NULL,
		.pool = ds->pool,
		.mount_timeout_s = o ? o->timeout_s : 0,
		.osd_op_timeout_s = o ? o->timeout_s : 0,
		.mon_op_timeout_s = o ? o->timeout_s : 0,
	};
	struct rados_disk *rd = calloc(1, sizeof(*rd));
	uint8_t uuid[16];
	int err;

	if (!rd)
		return -ENOMEM;
	err = pvstore_connect(&cfg, &rd->st);
	if (err) {
		snprintf(why, whylen, "%s", pvstore_errmsg());
		goto err_free;
	}
	if (pvstore_uuid_parse(ds->name, uuid) != 0) {
		err = pvstore_guest_lookup(rd->st, ds->name, uuid);
		if (err) {
			snprintf(why, whylen, "no guest named %s in pool %s: %s", ds->name, ds->pool,
				 pvstore_errmsg());
			goto err_disconnect;
		}
	}
	memcpy(rd->uuid, uuid, sizeof(rd->uuid));
	if (without_disk) {
		pthread_mutex_init(&rd->lock, NULL);
		pthread_cond_init(&rd->idle, NULL);
		rd->hd.ops = &owner_ops;
		rd->hd.priv = rd;
		*out = &rd->hd;
		return 0;
	}
	err = pvstore_disk_open(rd->st, uuid, &rd->d);
	if (err == -ENOENT && ds->size) {
		err = pvstore_disk_create(rd->st, uuid, ds->size);
		if (!err || err == -EEXIST)
			err = pvstore_disk_open(rd->st, uuid, &rd->d);
	}
	if (err) {
		snprintf(why, whylen, "%s%s", pvstore_errmsg(),
			 err == -ENOENT && !ds->size ? " (add ,size=SIZE to create it)" : "");
		goto err_disconnect;
	}
	if (ds->size && pvstore_disk_size(rd->d) < ds->size) {
		snprintf(why, whylen, "the disk is smaller than size=%llu", (unsigned long long)ds->size);
		err = -ENOSPC;
		goto err_close_disk;
	}
	pthread_mutex_init(&rd->lock, NULL);
	pthread_cond_init(&rd->idle, NULL);
	rd->hd.ops = &rados_ops;
	rd->hd.size = pvstore_disk_size(rd->d);
	rd->hd.priv = rd;
	*out = &rd->hd;
	return 0;

err_close_disk:
	pvstore_disk_close(rd->d);
err_disconnect:
	pvstore_disconnect(rd->st);
err_free:
	free(rd);
	return err;
}

int vmm_disk_client_addr(struct hv_disk *d, char *buf, size_t len)
{
	struct rados_disk *rd = rados_of(d);
	if (!rd)
		return -ENOTSUP;
	return pvstore_client_addr(rd->st, buf, len);
}

int vmm_disk_lock(struct hv_disk *d, const char *cookie, char *why, size_t whylen)
{
	struct rados_disk *rd = rados_of(d);
	if (!rd) {
		snprintf(why, whylen, "the owner lock needs a rados disk or --owner");
		return -ENOTSUP;
	}
	int err = pvstore_lock_acquire(rd->st, rd->uuid, cookie);
	if (err) {
		snprintf(why, whylen, "%s", pvstore_errmsg());
		return err;
	}
	snprintf(rd->lock_cookie, sizeof(rd->lock_cookie), "%s", cookie);
	return 0;
}

void vmm_disk_unlock(struct hv_disk *d)
{
	(void)vmm_disk_release(d, NULL, 0);
}

int vmm_disk_release(struct hv_disk *d, char *why, size_t whylen)
{
	struct rados_disk *rd = rados_of(d);
	if (!rd || !rd->lock_cookie[0])
		return 0;
	int err = pvstore_lock_release(rd->st, rd->uuid, rd->lock_cookie);
	if (err) {
		if (why && whylen)
			snprintf(why, whylen, "%s", pvstore_errmsg());
		return err;
	}
	rd->lock_cookie[0] = '\0';
	return 0;
}

bool vmm_disk_locked(const struct hv_disk *d)
{
	const struct rados_disk *rd = rados_of(d);
	return rd && rd->lock_cookie[0] != '\0';
}

int vmm_disk_guest_uuid(const struct hv_disk *d, uint8_t out[16])
{
	const struct rados_disk *rd = rados_of(d);
	if (!rd)
		return -ENOTSUP;
	memcpy(out, rd->uuid, 16);
	return 0;
}

int vmm_disk_open(const char *spec, const struct vmm_disk_opts *opts, struct hv_disk **out,
		  char *why, size_t whylen)
{
	struct pv_disk_spec ds;
	int err = pv_parse_disk_spec(spec, &ds);
	if (err) {
		snprintf(why, whylen, "want file:PATH[,size=SIZE] or rados:POOL/GUEST[,size=SIZE]");
		return -EINVAL;
	}
	if (ds.size % 512) {
		snprintf(why, whylen, "size must be a multiple of 512 bytes");
		return -EINVAL;
	}
	if (ds.kind == PV_DISK_RADOS)
		return open_rados(&ds, opts, false, out, why, whylen);
	err = hv_disk_file_open(ds.path, ds.size, out);
	if (err == -ENOSPC)
		snprintf(why, whylen, "%s is smaller than size=%llu", ds.path, (unsigned long long)ds.size);
	else if (err == -ENOENT && !ds.size)
		snprintf(why, whylen, "%s does not exist (add ,size=SIZE to create it)", ds.path);
	else if (err)
		snprintf(why, whylen, "%s: %s", ds.path, strerror(-err));
	return err;
}

int vmm_disk_open_owner(const char *spec, const struct vmm_disk_opts *opts, struct hv_disk **out, char *why,
			size_t whylen)
{
	struct pv_disk_spec ds;
	if (pv_parse_disk_spec(spec, &ds) || ds.kind != PV_DISK_RADOS || ds.size) {
		snprintf(why, whylen, "want rados:POOL/GUEST");
		return -EINVAL;
	}
	return open_rados(&ds, opts, true, out, why, whylen);
}
