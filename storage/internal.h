/*
 * libpvstore internals: the connection struct, the one librados-result
 * conversion, the thread-local error message and small helpers shared by the
 * modules. Not installed; nothing outside storage/ includes it.
 */
#ifndef PVSTORE_INTERNAL_H
#define PVSTORE_INTERNAL_H

#include <rados/librados.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvstore/names.h"
#include "pvstore/pvstore.h"

struct pvstore {
	rados_t cluster;
	rados_ioctx_t io;
	char pool[PVSTORE_NAME_MAX + 1];
	char ns[PVSTORE_NAME_MAX + 1]; /* the ioctx's namespace, "" = the default */
	char client_name[PVSTORE_NAME_MAX + 1];
};

/* The one place where a librados result becomes pvha's 0 / -errno: a
 * non-negative result passes through (a byte count, a locker count); a
 * negative one is already -errno in librados, clamped here into the errno
 * range so callers never see an odd value. Ceph's EBLOCKLISTED is ESHUTDOWN
 * on Linux, which is what callers test for. O(1). */
static inline int pvs_rc(int r)
{
	if (r >= 0)
		return r;
	if (r < -4095)
		return -5; /* EIO */
	return r;
}

/* Records a one-line message for this thread (see pvstore_errmsg) ending in
 * strerror(-err), and returns err unchanged. err must be negative. */
int pvs_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks cfg (who names the caller in messages) and gives the client and
 * pool names it means, defaults filled in. 0 or -EINVAL with the message. */
int pvs_config_check(const char *who, const struct pvstore_config *cfg, const char **client,
		     const char **pool);
/* Creates a librados handle for client from cfg (conf file, timeouts,
 * keyring) and connects it; no pool is opened. cfg and client are already
 * checked. Returns 0 and *out, or -errno with the message set. Blocks up to
 * the mount timeout. */
int pvs_cluster_open(const struct pvstore_config *cfg, const char *client, rados_t *out);
/* A write that timed out may have met a full cluster, which makes writes wait
 * rather than fail: asks the monitors (within the mon op timeout) and returns
 * -ENOSPC with a message naming it when the cluster reports a full OSD or
 * pool; otherwise err unchanged. Call it only off librados's own threads. */
int pvs_explain_write_timeout(struct pvstore *st, int err, const char *what);

/* Same, without the strerror suffix. */
int pvs_failx(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears this thread's message. */
void pvs_clear_error(void);

/* Name rules shared by guests, nodes and lock cookies: 1..63 bytes of
 * [A-Za-z0-9._-], not starting with '.' or '-'. */
bool pvs_name_ok(const char *s);

/* Walks the omap of an index object in key order, a page at a time, calling
 * each(ctx, key, key_len, value, value_len) for every entry; each returns 0 or
 * -errno (having set the message). A missing object is an empty index.
 * `what` names the index in messages. Returns 0 or -errno. O(entries). */
int pvs_index_walk(struct pvstore *st, const char *oid, const char *what,
		   int (*each)(void *ctx, const char *key, size_t kl, const char *val, size_t vl),
		   void *ctx);

/* Copies the string src into dst[n]; false (and a cut copy) when it does not fit. */
bool pvs_copy(char *dst, size_t n, const char *src);

/* The holder of the exclusive cls_lock `lock` on oid: 0 and *out, -ENOENT
 * (no such object, or nobody holds it) or -errno (lock.c). */
int pvs_lock_holder_of(struct pvstore *st, const char *oid, const char *lock, struct pvstore_lock_holder *out);

/* true when every byte of the 16 is zero. */
bool pvs_uuid_is_nil(const uint8_t u[16]);

/* Wall clock in ms since the epoch. */
uint64_t pvs_now_ms(void);

/* Reads a whole object of at most max bytes. On success *buf (malloc'd, the
 * caller frees) and *len are set. -ENOENT when missing, -EFBIG when larger
 * than max. */
int pvs_read_object(struct pvstore *st, const char *oid, size_t max, uint8_t **buf, size_t *len);

/* SHA-256 of len bytes (FIPS 180-4). */
void pvs_sha256(const void *data, size_t len, uint8_t out[32]);

#endif /* PVSTORE_INTERNAL_H */
