/*
 * The guest registry: guest.<uuid> holds a GuestSpec, the omap of "guests"
 * maps names to uuids. See pvstore.h for the contracts, docs/storage.md for
 * the order of the two writes of create and delete and why it is safe.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int pvstore_guest_read(struct pvstore *st, const uint8_t uuid_in[16], struct pvstore_guest *out)
{
	char oid[PVSTORE_OID_MAX];
	uint8_t *buf, uuid[16];
	size_t len;
	int r;

	memcpy(uuid, uuid_in, 16); /* uuid_in may point into *out */
	pvstore_oid_guest(oid, sizeof(oid), uuid);
	r = pvs_read_object(st, oid, PVSTORE_RECORD_MAX, &buf, &len);
	if (r == -EFBIG)
		return pvs_failx(-EBADMSG, "%s: record larger than %u bytes", oid, PVSTORE_RECORD_MAX);
	if (r < 0)
		return r;
	r = pvstore_guest_decode(oid, uuid, buf, len, out);
	free(buf);
	return r;
}

/* Sets index[name] = uuid if it is absent (or equals `expect`, when given):
 * one write op with omap_cmp + omap_set. -ECANCELED when the compare fails. */
static int index_cas(struct pvstore *st, const char *name, const char *expect, const char *uuid_str)
{
	rados_write_op_t op = rados_create_write_op();
	const char *keys[1] = {name};
	const char *vals[1] = {uuid_str};
	size_t klen[1] = {strlen(name)};
	size_t vlen[1] = {strlen(uuid_str)};
	int prval = 0, r;

	/* omap_cmp on a missing object fails with -ENOENT: create it in the same op */
	rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
	/* a missing key compares as the empty value */
	rados_write_op_omap_cmp(op, name, LIBRADOS_CMPXATTR_OP_EQ, expect ? expect : "",
				expect ? strlen(expect) : 0, &prval);
	rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
	r = pvs_rc(rados_write_op_operate(op, st->io, PVSTORE_OID_GUESTS_INDEX, NULL, 0));
	rados_release_write_op(op);
	return r;
}

/* Removes index[name] if it still maps to uuid_str. */
static int index_remove(struct pvstore *st, const char *name, const char *uuid_str)
{
	rados_write_op_t op = rados_create_write_op();
	const char *keys[1] = {name};
	size_t klen[1] = {strlen(name)};
	int prval = 0, r;

	rados_write_op_omap_cmp(op, name, LIBRADOS_CMPXATTR_OP_EQ, uuid_str, strlen(uuid_str), &prval);
	rados_write_op_omap_rm_keys2(op, keys, klen, 1);
	r = pvs_rc(rados_write_op_operate(op, st->io, PVSTORE_OID_GUESTS_INDEX, NULL, 0));
	rados_release_write_op(op);
	return r;
}

/* Reads index[name] into uuid_str (37 bytes). -ENOENT when absent. */
static int index_get(struct pvstore *st, const char *name, char uuid_str[PVSTORE_UUID_STR])
{
	rados_read_op_t op = rados_create_read_op();
	rados_omap_iter_t it = NULL;
	const char *keys[1] = {name};
	size_t klen[1] = {strlen(name)};
	int prval = 0, r;
	char *k, *v;
	size_t kl, vl;

	rados_read_op_omap_get_vals_by_keys2(op, keys, 1, klen, &it, &prval);
	r = pvs_rc(rados_read_op_operate(op, st->io, PVSTORE_OID_GUESTS_INDEX, 0));
	rados_release_read_op(op);
	if (r == 0 && prval < 0)
		r = pvs_rc(prval);
	if (r < 0 && it) /* allocated by the op even when it fails */
		rados_omap_get_end(it);
	if (r == -ENOENT)
		return pvs_failx(-ENOENT, "no guest named '%s'", name);
	if (r < 0)
		return pvs_fail(r, "reading the guest index");
	r = pvs_failx(-ENOENT, "no guest named '%s'", name);
	while (rados_omap_get_next2(it, &k, &v, &kl, &vl) == 0 && k) {
		if (kl == klen[0] && memcmp(k, name, kl) == 0) {
			if (vl != 36) {
				r = pvs_failx(-EBADMSG, "guest index entry '%s' is not a uuid", name);
				break;
			}
			memcpy(uuid_str, v, 36);
			uuid_str[36] = '\0';
			r = 0;
			break;
		}
	}
	rados_omap_get_end(it);
	if (r == 0)
		pvs_clear_error();
	return r;
}

int pvstore_guest_lookup(struct pvstore *st, const char *name, uint8_t uuid[16])
{
	char u[PVSTORE_UUID_STR];
	int r;
	if (!pvs_name_ok(name))
		return pvs_failx(-EINVAL, "'%s' is not a guest name", name ? name : "(null)");
	r = index_get(st, name, u);
	if (r < 0)
		return r;
	if (pvstore_uuid_parse(u, uuid) < 0)
		return pvs_failx(-EBADMSG, "guest index entry '%s' is not a uuid", name);
	return 0;
}

static int object_exists(struct pvstore *st, const char *oid)
{
	uint64_t size;
	time_t mtime;
	int r = pvs_rc(rados_stat(st->io, oid, &size, &mtime));
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return pvs_fail(r, "stat %s", oid);
	return 1;
}

/* Writes the new guest object: create exclusive + record + generation and
 * name xattrs, in one op. */
static int write_new_object(struct pvstore *st, const char *oid, const struct pvstore_guest *g)
{
	uint8_t *buf;
	size_t len;
	int r = pvstore_guest_encode(g, 1, &buf, &len);
	if (r < 0)
		return r;
	rados_write_op_t op = rados_create_write_op();
	rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
	rados_write_op_write_full(op, (const char *)buf, len);
	rados_write_op_setxattr(op, PVSTORE_XATTR_GEN, "1", 1);
	rados_write_op_setxattr(op, PVSTORE_XATTR_NAME, g->name, strlen(g->name));
	r = pvs_rc(rados_write_op_operate(op, st->io, oid, NULL, 0));
	rados_release_write_op(op);
	free(buf);
	if (r == -EEXIST)
		return pvs_failx(r, "%s already exists", oid);
	if (r < 0)
		return pvs_fail(r, "creating %s", oid);
	return 0;
}

int pvstore_guest_create(struct pvstore *st, struct pvstore_guest *g)
{
	char oid[PVSTORE_OID_MAX], u[PVSTORE_UUID_STR], other[PVSTORE_UUID_STR];
	int r;

	if ((r = pvstore_guest_check(g)) < 0)
		return r;
	if (pvs_uuid_is_nil(g->uuid) && (r = pvstore_uuid_generate(g->uuid)) < 0)
		return r;
	pvstore_uuid_format(g->uuid, u);
	pvstore_oid_guest(oid, sizeof(oid), g->uuid);

	/* 1. The object first: an index entry always names an object that
	 *    existed, so an entry whose object is missing is left over from an
	 *    interrupted delete and may be reclaimed. */
	if ((r = write_new_object(st, oid, g)) < 0)
		return r;

	/* 2. Claim the name: exactly one of two racing creators wins the CAS. */
	r = -ECANCELED;
	for (int tries = 0; tries < 8 && r == -ECANCELED; tries++) {
		r = index_cas(st, g->name, NULL, u);
		if (r != -ECANCELED) {
			if (r < 0)
				pvs_fail(r, "claiming guest name '%s'", g->name);
			break;
		}
		r = index_get(st, g->name, other);
		if (r == -ENOENT) {
			r = -ECANCELED; /* removed meanwhile: try again */
			continue;
		}
		if (r < 0)
			break;
		char other_oid[PVSTORE_OID_MAX];
		snprintf(other_oid, sizeof(other_oid), PVSTORE_OID_GUEST_PREFIX "%s", other);
		r = object_exists(st, other_oid);
		if (r < 0)
			break;
		if (r == 1) {
			r = pvs_failx(-EEXIST, "guest name '%s' is taken by %s", g->name, other);
			break;
		}
		/* a leftover of an interrupted delete: take it over, by CAS too */
		r = index_cas(st, g->name, other, u);
		if (r < 0 && r != -ECANCELED)
			pvs_fail(r, "claiming guest name '%s'", g->name);
	}
	if (r == -ECANCELED)
		r = pvs_failx(-EEXIST, "guest name '%s' kept changing under us", g->name);
	if (r < 0) {
		/* undo step 1; the message of the real failure stays */
		char keep[512];
		snprintf(keep, sizeof(keep), "%s", pvstore_errmsg());
		rados_remove(st->io, oid);
		pvs_failx(r, "%s", keep);
		return r;
	}
	g->generation = 1;
	pvs_clear_error();
	return 0;
}

int pvstore_guest_update(struct pvstore *st, struct pvstore_guest *g)
{
	char oid[PVSTORE_OID_MAX], gen_old[24], gen_new[24];
	uint8_t *buf;
	size_t len;
	int r;

	if ((r = pvstore_guest_check(g)) < 0)
		return r;
	if (!g->generation)
		return pvs_failx(-EINVAL, "guest %s: generation 0 (update a spec that was read)", g->name);
	pvstore_oid_guest(oid, sizeof(oid), g->uuid);
	if ((r = pvstore_guest_encode(g, g->generation + 1, &buf, &len)) < 0)
		return r;
	snprintf(gen_old, sizeof(gen_old), "%" PRIu64, g->generation);
	snprintf(gen_new, sizeof(gen_new), "%" PRIu64, g->generation + 1);

	/* One op: both guards and the new record land together or not at all. */
	rados_write_op_t op = rados_create_write_op();
	rados_write_op_cmpxattr(op, PVSTORE_XATTR_GEN, LIBRADOS_CMPXATTR_OP_EQ, gen_old, strlen(gen_old));
	rados_write_op_cmpxattr(op, PVSTORE_XATTR_NAME, LIBRADOS_CMPXATTR_OP_EQ, g->name, strlen(g->name));
	rados_write_op_write_full(op, (const char *)buf, len);
	rados_write_op_setxattr(op, PVSTORE_XATTR_GEN, gen_new, strlen(gen_new));
	r = pvs_rc(rados_write_op_operate(op, st->io, oid, NULL, 0));
	rados_release_write_op(op);
	free(buf);

	if (r == 0) {
		g->generation++;
		return 0;
	}
	if (r == -ENOENT)
		return pvs_failx(r, "%s does not exist", oid);
	if (r != -ECANCELED)
		return pvs_fail(r, "updating %s", oid);
	/* Tell a rename from a lost race, for a clear message. */
	struct pvstore_guest cur;
	if (pvstore_guest_read(st, g->uuid, &cur) == 0) {
		if (cur.generation == g->generation && strcmp(cur.name, g->name) != 0)
			return pvs_failx(-EINVAL, "%s: renaming '%s' to '%s' is not supported", oid,
					 cur.name, g->name);
		return pvs_failx(-ECANCELED, "%s: generation %" PRIu64 " is stale (now %" PRIu64 ")",
				 oid, g->generation, cur.generation);
	}
	return pvs_failx(-ECANCELED, "%s: generation %" PRIu64 " is stale", oid, g->generation);
}

int pvstore_guest_delete(struct pvstore *st, const uint8_t uuid[16], uint64_t generation)
{
	char oid[PVSTORE_OID_MAX], u[PVSTORE_UUID_STR], name[PVSTORE_NAME_MAX + 2], gen[24];
	struct pvstore_lock_holder h;
	int r;

	pvstore_uuid_format(uuid, u);
	pvstore_oid_guest(oid, sizeof(oid), uuid);
	r = pvs_rc(rados_getxattr(st->io, oid, PVSTORE_XATTR_NAME, name, sizeof(name) - 1));
	if (r == -ENOENT)
		return pvs_failx(r, "%s does not exist", oid);
	if (r < 0 && r != -ENODATA)
		return pvs_fail(r, "reading the name of %s", oid);
	name[r > 0 ? r : 0] = '\0';

	r = pvstore_lock_holder(st, uuid, &h);
	if (r == 0)
		return pvs_failx(-EBUSY, "%s is locked by %s (cookie %s at %s): stop it first", oid,
				 h.client, h.cookie, h.addr);
	if (r != -ENOENT)
		return r;

	rados_write_op_t op = rados_create_write_op();
	if (generation) {
		snprintf(gen, sizeof(gen), "%" PRIu64, generation);
		rados_write_op_cmpxattr(op, PVSTORE_XATTR_GEN, LIBRADOS_CMPXATTR_OP_EQ, gen, strlen(gen));
	}
	rados_write_op_remove(op);
	r = pvs_rc(rados_write_op_operate(op, st->io, oid, NULL, 0));
	rados_release_write_op(op);
	if (r == -ECANCELED)
		return pvs_failx(r, "%s: generation %" PRIu64 " is stale", oid, generation);
	if (r == -ENOENT)
		return pvs_failx(r, "%s does not exist", oid);
	if (r < 0)
		return pvs_fail(r, "removing %s", oid);

	/* The object is gone: the index entry is now a leftover whatever happens
	 * next; remove it unless a new guest took the name over already. */
	if (pvs_name_ok(name)) {
		r = index_remove(st, name, u);
		if (r < 0 && r != -ECANCELED && r != -ENOENT)
			return pvs_fail(r, "removing '%s' from the guest index (the guest is deleted)", name);
	}
	pvs_clear_error();
	return 0;
}

struct guest_list {
	struct pvstore_guest_entry *v;
	size_t cnt, cap;
};

static int add_guest_entry(void *ctx, const char *k, size_t kl, const char *val, size_t vl)
{
	struct guest_list *l = ctx;
	char name[PVSTORE_NAME_MAX + 1], u[PVSTORE_UUID_STR];
	if (vl != 36)
		return pvs_failx(-EBADMSG, "guest index entry '%.*s' is malformed", (int)kl, k);
	memcpy(name, k, kl);
	name[kl] = '\0';
	memcpy(u, val, 36);
	u[36] = '\0';
	if (l->cnt == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		struct pvstore_guest_entry *nv = realloc(l->v, ncap * sizeof(*l->v));
		if (!nv)
			return pvs_fail(-ENOMEM, "listing the guest index");
		l->v = nv;
		l->cap = ncap;
	}
	if (!pvs_name_ok(name) || pvstore_uuid_parse(u, l->v[l->cnt].uuid) < 0)
		return pvs_failx(-EBADMSG, "guest index entry '%s' is malformed", name);
	snprintf(l->v[l->cnt].name, sizeof(l->v[l->cnt].name), "%s", name);
	l->cnt++;
	return 0;
}

int pvstore_guest_list(struct pvstore *st, struct pvstore_guest_entry **out, size_t *n)
{
	struct guest_list l = { 0 };
	*out = NULL;
	*n = 0;
	int r = pvs_index_walk(st, PVSTORE_OID_GUESTS_INDEX, "guest index", add_guest_entry, &l);
	if (r < 0) {
		free(l.v);
		return r;
	}
	*out = l.v;
	*n = l.cnt;
	pvs_clear_error();
	return 0;
}
