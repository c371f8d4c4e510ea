/*
 * Event logs: events.cluster and events.guest.<uuid>. Each entry is an omap
 * value (an Event) keyed by its sequence number, zero-padded to 20 digits so
 * that omap's key order is the log's order. The xattr PVSTORE_XATTR_SEQ holds
 * the last number given out; an append is one write op that compares it,
 * bumps it and adds the entry, so concurrent appenders never share a number
 * and never leave a gap. See pvstore.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "proto/storage.pb-c.h"

#define EVENT_MAX 2048
#define APPEND_TRIES 200
#define LIST_PAGE 256

static void event_key(uint64_t seq, char key[PVSTORE_EVENT_KEY_LEN + 1])
{
	snprintf(key, PVSTORE_EVENT_KEY_LEN + 1, "%020" PRIu64, seq);
}

/* The last sequence number of a log: 0 when the log does not exist yet. */
static int read_seq(struct pvstore *st, const char *oid, uint64_t *seq, bool *exists)
{
	char buf[24];
	int r = pvs_rc(rados_getxattr(st->io, oid, PVSTORE_XATTR_SEQ, buf, sizeof(buf) - 1));
	*exists = r != -ENOENT;
	if (r == -ENOENT || r == -ENODATA) {
		*seq = 0;
		return 0;
	}
	if (r < 0)
		return pvs_fail(r, "reading the sequence number of %s", oid);
	buf[r] = '\0';
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return pvs_failx(-EBADMSG, "%s: sequence number '%s' is not a number", oid, buf);
	*seq = v;
	return 0;
}

int pvstore_event_append(struct pvstore *st, const uint8_t *guest, const char *node,
			 const char *what, const char *why, uint64_t *seq_out)
{
	Pvha__Event m = PVHA__EVENT__INIT;
	char oid[PVSTORE_OID_MAX], why_line[PVSTORE_EVENT_WHY_MAX + 1];
	uint8_t buf[EVENT_MAX];
	int r = 0;

	if (!pvs_name_ok(node))
		return pvs_failx(-EINVAL, "event: node '%s' is not a node name", node ? node : "(null)");
	if (!pvs_name_ok(what) || strlen(what) > PVSTORE_EVENT_WHAT_MAX)
		return pvs_failx(-EINVAL, "event: what '%s' is not 1..%u bytes of [A-Za-z0-9._-]",
				 what ? what : "(null)", PVSTORE_EVENT_WHAT_MAX);
	/* one line, cut to size */
	snprintf(why_line, sizeof(why_line), "%s", why ? why : "");
	for (char *p = why_line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	pvstore_oid_events(oid, sizeof(oid), guest);

	m.version = 1;
	m.node = (char *)node;
	m.what = (char *)what;
	m.why = why_line;
	if (guest) {
		m.guest_uuid.data = (uint8_t *)guest;
		m.guest_uuid.len = 16;
	}

	for (int tries = 0; tries < APPEND_TRIES; tries++) {
		uint64_t seq = 0;
		bool exists = false;
		char key[PVSTORE_EVENT_KEY_LEN + 1], cur[24], next[24];
		size_t len;

		if ((r = read_seq(st, oid, &seq, &exists)) < 0)
			return r;
		m.seq = seq + 1;
		m.time_ms = pvs_now_ms();
		len = pvha__event__get_packed_size(&m);
		if (len > sizeof(buf))
			return pvs_failx(-EINVAL, "event too large");
		pvha__event__pack(&m, buf);
		event_key(seq + 1, key);
		snprintf(cur, sizeof(cur), "%" PRIu64, seq);
		snprintf(next, sizeof(next), "%" PRIu64, seq + 1);

		const char *keys[1] = {key};
		const char *vals[1] = {(const char *)buf};
		size_t klen[1] = {PVSTORE_EVENT_KEY_LEN};
		size_t vlen[1] = {len};
		rados_write_op_t op = rados_create_write_op();
		if (!exists)
			rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
		else if (seq)
			rados_write_op_cmpxattr(op, PVSTORE_XATTR_SEQ, LIBRADOS_CMPXATTR_OP_EQ, cur, strlen(cur));
		else /* exists without a number: only we create logs, so it is damaged */
			rados_write_op_cmpxattr(op, PVSTORE_XATTR_SEQ, LIBRADOS_CMPXATTR_OP_EQ, "", 0);
		rados_write_op_setxattr(op, PVSTORE_XATTR_SEQ, next, strlen(next));
		rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
		r = pvs_rc(rados_write_op_operate(op, st->io, oid, NULL, 0));
		rados_release_write_op(op);
		if (r == 0) {
			if (seq_out)
				*seq_out = seq + 1;
			return 0;
		}
		if (r != -ECANCELED && r != -EEXIST)
			return pvs_fail(r, "appending to %s", oid);
		/* another appender won this number: back off a little, by
		 * a random amount so that two losers do not collide again */
		if (tries > 2) {
			struct timespec ts = {0, (long)(100000 + (pvs_now_ms() * 7919 + (uint64_t)tries * 104729) % 900000)};
			nanosleep(&ts, NULL);
		}
	}
	return pvs_failx(-EBUSY, "appending to %s: %d lost races in a row", oid, APPEND_TRIES);
}

static int decode_event(const char *oid, const char *key, size_t kl, const char *val, size_t vl,
			struct pvstore_event *out)
{
	char keybuf[PVSTORE_EVENT_KEY_LEN + 1], want[PVSTORE_EVENT_KEY_LEN + 1];
	int r = 0;

	if (kl != PVSTORE_EVENT_KEY_LEN)
		return pvs_failx(-EBADMSG, "%s: key of %zu bytes is not a sequence number", oid, kl);
	memcpy(keybuf, key, kl);
	keybuf[kl] = '\0';
	if (vl > EVENT_MAX)
		return pvs_failx(-EBADMSG, "%s: entry %s is larger than %u bytes", oid, keybuf, EVENT_MAX);
	Pvha__Event *m = pvha__event__unpack(NULL, vl, (const uint8_t *)val);
	if (!m)
		return pvs_failx(-EBADMSG, "%s: entry %s does not decode as an Event", oid, keybuf);
	event_key(m->seq, want);
	if (m->version != 1)
		r = pvs_failx(-EBADMSG, "%s: entry %s has unknown version %u", oid, keybuf, m->version);
	else if (strcmp(want, keybuf) != 0)
		r = pvs_failx(-EBADMSG, "%s: entry %s carries seq %" PRIu64, oid, keybuf, m->seq);
	else if (m->guest_uuid.len != 0 && m->guest_uuid.len != 16)
		r = pvs_failx(-EBADMSG, "%s: entry %s has a bad guest uuid", oid, keybuf);
	else {
		memset(out, 0, sizeof(*out));
		out->seq = m->seq;
		out->time_ms = m->time_ms;
		snprintf(out->node, sizeof(out->node), "%s", m->node);
		out->has_guest = m->guest_uuid.len == 16;
		if (out->has_guest)
			memcpy(out->guest, m->guest_uuid.data, 16);
		snprintf(out->what, sizeof(out->what), "%s", m->what);
		snprintf(out->why, sizeof(out->why), "%s", m->why);
	}
	pvha__event__free_unpacked(m, NULL);
	return r;
}

int pvstore_event_list(struct pvstore *st, const uint8_t *guest, uint64_t after,
		       struct pvstore_event *out, size_t max, size_t *n)
{
	char oid[PVSTORE_OID_MAX], start_after[PVSTORE_EVENT_KEY_LEN + 1];
	unsigned char more = 1;
	size_t cnt = 0;
	int r = 0;

	*n = 0;
	pvstore_oid_events(oid, sizeof(oid), guest);
	event_key(after, start_after);
	while (more && cnt < max) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		int prval = 0;
		char *k, *v;
		size_t kl, vl;
		uint64_t want = max - cnt < LIST_PAGE ? max - cnt : LIST_PAGE;

		more = 0;
		rados_read_op_omap_get_vals2(op, start_after, "", want, &it, &more, &prval);
		r = pvs_rc(rados_read_op_operate(op, st->io, oid, 0));
		rados_release_read_op(op);
		if (r == -ENOENT) {
			if (it) /* allocated by the op even when it fails */
				rados_omap_get_end(it);
			return 0; /* nothing logged yet */
		}
		if (r == 0 && prval < 0)
			r = pvs_rc(prval);
		if (r < 0) {
			if (it)
				rados_omap_get_end(it);
			return pvs_fail(r, "reading %s", oid);
		}
		while (cnt < max && rados_omap_get_next2(it, &k, &v, &kl, &vl) == 0 && k) {
			if ((r = decode_event(oid, k, kl, v, vl, &out[cnt])) < 0) {
				rados_omap_get_end(it);
				return r;
			}
			event_key(out[cnt].seq, start_after);
			cnt++;
		}
		rados_omap_get_end(it);
	}
	*n = cnt;
	return 0;
}
