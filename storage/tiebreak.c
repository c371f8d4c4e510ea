/*
 * The two-node tie-breaker (docs/agent.md): an exclusive cls_lock with a
 * duration on PVSTORE_OID_TIEBREAK, which one half of a split two-node
 * cluster must hold before it fences the other or recovers its guests, and
 * the loser's word (omap node -> the holder's cookie) that it runs no VMM.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "internal.h"
#include "pvstore/names.h"
#include "pvstore/pvstore.h"

int pvstore_tiebreak_take(struct pvstore *st, const char *cookie, uint32_t duration_s,
			  struct pvstore_lock_holder *holder)
{
	if (holder)
		memset(holder, 0, sizeof(*holder));
	if (!pvs_name_ok(cookie))
		return pvs_failx(-EINVAL, "tie-break cookie '%s' is not 1..63 bytes of [A-Za-z0-9._-]",
				 cookie ? cookie : "(null)");
	if (duration_s < 1 || duration_s > 3600)
		return pvs_failx(-EINVAL, "tie-break duration %u s is not within 1 .. 3600 s", duration_s);
	struct timeval tv = { .tv_sec = (time_t)duration_s };
	/* MAY_RENEW: the same client and cookie again renews the duration (without
	 * it cls_lock answers -EEXIST and keeps the old expiry). */
	int r = pvs_rc(rados_lock_exclusive(st->io, PVSTORE_OID_TIEBREAK, PVSTORE_LOCK_TIEBREAK, cookie,
					    "pvha tie-break", &tv, LIBRADOS_LOCK_FLAG_MAY_RENEW));
	if (r == 0)
		return 0;
	if (r == -EBUSY) {
		struct pvstore_lock_holder h;
		if (pvs_lock_holder_of(st, PVSTORE_OID_TIEBREAK, PVSTORE_LOCK_TIEBREAK, &h) == 0) {
			if (holder)
				*holder = h;
			return pvs_failx(-EBUSY, "%s is held by %s (cookie %s)", PVSTORE_OID_TIEBREAK, h.client,
					 h.cookie);
		}
		return pvs_failx(-EBUSY, "%s is held by another client", PVSTORE_OID_TIEBREAK);
	}
	return pvs_explain_write_timeout(st, pvs_fail(r, "locking %s", PVSTORE_OID_TIEBREAK),
					 "taking the tie-break");
}

int pvstore_tiebreak_break(struct pvstore *st, const struct pvstore_lock_holder *h)
{
	int r = pvs_rc(rados_break_lock(st->io, PVSTORE_OID_TIEBREAK, PVSTORE_LOCK_TIEBREAK, h->client,
					h->cookie));
	if (r == -ENOENT)
		return pvs_failx(r, "%s is not locked by %s with cookie %s", PVSTORE_OID_TIEBREAK, h->client,
				 h->cookie);
	if (r < 0)
		return pvs_fail(r, "breaking the lock of %s held by %s", PVSTORE_OID_TIEBREAK, h->client);
	return 0;
}

int pvstore_tiebreak_yield(struct pvstore *st, const char *node, const char *holder_cookie)
{
	if (!pvs_name_ok(node) || !pvs_name_ok(holder_cookie))
		return pvs_failx(-EINVAL, "tie-break yield: '%s' / '%s' is not a node name / cookie",
				 node ? node : "(null)", holder_cookie ? holder_cookie : "(null)");
	rados_write_op_t op = rados_create_write_op();
	if (!op)
		return pvs_failx(-ENOMEM, "rados_create_write_op");
	const char *keys[1] = { node };
	const char *vals[1] = { holder_cookie };
	size_t klen[1] = { strlen(node) };
	size_t vlen[1] = { strlen(holder_cookie) };
	rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
	int r = pvs_rc(rados_write_op_operate(op, st->io, PVSTORE_OID_TIEBREAK, NULL, 0));
	rados_release_write_op(op);
	if (r < 0)
		return pvs_explain_write_timeout(st, pvs_fail(r, "writing the tie-break yield of %s", node),
						 "writing a tie-break yield");
	return 0;
}

struct yield_find {
	const char *node;
	char *out;
	size_t len;
	bool found;
};

static int yield_one(void *ctx, const char *key, size_t kl, const char *val, size_t vl)
{
	struct yield_find *f = ctx;
	if (kl != strlen(f->node) || memcmp(key, f->node, kl))
		return 0;
	if (vl >= f->len)
		return pvs_failx(-EBADMSG, "%s: the yield of %s is %zu bytes", PVSTORE_OID_TIEBREAK, f->node, vl);
	memcpy(f->out, val, vl);
	f->out[vl] = '\0';
	f->found = true;
	return 0;
}

int pvstore_tiebreak_yielded(struct pvstore *st, const char *node, char *out, size_t len)
{
	if (!pvs_name_ok(node) || !out || !len)
		return pvs_failx(-EINVAL, "tie-break yield: '%s' is not a node name", node ? node : "(null)");
	struct yield_find f = { .node = node, .out = out, .len = len };
	int r = pvs_index_walk(st, PVSTORE_OID_TIEBREAK, "tie-break", yield_one, &f);
	if (r < 0)
		return r;
	if (!f.found)
		return pvs_failx(-ENOENT, "%s: no yield of %s", PVSTORE_OID_TIEBREAK, node);
	return 0;
}
