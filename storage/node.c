/* Node records: node.<name> holds a NodeRecord, the omap of "nodes" lists the
 * names. See pvstore.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto/storage.pb-c.h"

#define NODE_RECORD_MAX 4096

int pvstore_node_put(struct pvstore *st, struct pvstore_node *n)
{
	Pvha__NodeRecord m = PVHA__NODE_RECORD__INIT;
	char oid[PVSTORE_OID_MAX];
	uint8_t buf[NODE_RECORD_MAX];
	size_t len;
	int r;

	if (!pvs_name_ok(n->name))
		return pvs_failx(-EINVAL, "node name '%.*s' is not 1..63 bytes of [A-Za-z0-9._-]",
				 PVSTORE_NAME_MAX, n->name);
	if (!n->addr[0] || strnlen(n->addr, sizeof(n->addr)) >= sizeof(n->addr))
		return pvs_failx(-EINVAL, "node %s: no address", n->name);
	if (!pvs_name_ok(n->incarnation))
		return pvs_failx(-EINVAL, "node %s: incarnation '%.*s' is not 1..63 bytes of [A-Za-z0-9._-]",
				 n->name, PVSTORE_NAME_MAX, n->incarnation);
	n->updated_ms = pvs_now_ms();
	m.version = 1;
	m.name = n->name;
	m.addr = n->addr;
	m.incarnation = n->incarnation;
	m.mem_bytes = n->mem_bytes;
	m.cpus = n->cpus;
	m.updated_ms = n->updated_ms;
	len = pvha__node_record__get_packed_size(&m);
	if (len > sizeof(buf))
		return pvs_failx(-EINVAL, "node %s: record too large", n->name);
	pvha__node_record__pack(&m, buf);

	pvstore_oid_node(oid, sizeof(oid), n->name);
	r = pvs_rc(rados_write_full(st->io, oid, (const char *)buf, len));
	if (r < 0)
		return pvs_fail(r, "writing %s", oid);

	/* listed after it exists: a listed node always has had a record */
	rados_write_op_t op = rados_create_write_op();
	const char *keys[1] = {n->name};
	const char *vals[1] = {""};
	size_t klen[1] = {strlen(n->name)};
	size_t vlen[1] = {0};
	rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
	rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
	r = pvs_rc(rados_write_op_operate(op, st->io, PVSTORE_OID_NODES_INDEX, NULL, 0));
	rados_release_write_op(op);
	if (r < 0)
		return pvs_fail(r, "listing node %s in the nodes index", n->name);
	return 0;
}

int pvstore_node_get(struct pvstore *st, const char *name, struct pvstore_node *out)
{
	char oid[PVSTORE_OID_MAX];
	uint8_t *buf;
	size_t len;
	int r;

	if (!pvs_name_ok(name))
		return pvs_failx(-EINVAL, "'%s' is not a node name", name ? name : "(null)");
	pvstore_oid_node(oid, sizeof(oid), name);
	r = pvs_read_object(st, oid, NODE_RECORD_MAX, &buf, &len);
	if (r == -EFBIG)
		return pvs_failx(-EBADMSG, "%s: record larger than %u bytes", oid, NODE_RECORD_MAX);
	if (r < 0)
		return r;
	Pvha__NodeRecord *m = pvha__node_record__unpack(NULL, len, buf);
	free(buf);
	if (!m)
		return pvs_failx(-EBADMSG, "%s: does not decode as a NodeRecord", oid);
	if (m->version != 1)
		r = pvs_failx(-EBADMSG, "%s: record version %u is unknown (want 1)", oid, m->version);
	else if (strcmp(m->name, name) != 0)
		r = pvs_failx(-EBADMSG, "%s: record names node '%.64s'", oid, m->name);
	else if (!m->addr[0] || strlen(m->addr) >= sizeof(out->addr))
		r = pvs_failx(-EBADMSG, "%s: bad address", oid);
	else if (!pvs_name_ok(m->incarnation))
		r = pvs_failx(-EBADMSG, "%s: bad incarnation", oid);
	else {
		memset(out, 0, sizeof(*out));
		snprintf(out->name, sizeof(out->name), "%s", m->name);
		snprintf(out->addr, sizeof(out->addr), "%s", m->addr);
		snprintf(out->incarnation, sizeof(out->incarnation), "%s", m->incarnation);
		out->mem_bytes = m->mem_bytes;
		out->cpus = m->cpus;
		out->updated_ms = m->updated_ms;
	}
	pvha__node_record__free_unpacked(m, NULL);
	return r;
}

struct name_list {
	char (*v)[PVSTORE_NAME_MAX + 1];
	size_t cnt, cap;
};

static int add_node_name(void *ctx, const char *k, size_t kl, const char *val, size_t vl)
{
	struct name_list *l = ctx;
	(void)val;
	(void)vl;
	if (l->cnt == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		char(*nv)[PVSTORE_NAME_MAX + 1] = realloc(l->v, ncap * sizeof(*l->v));
		if (!nv)
			return pvs_fail(-ENOMEM, "listing the nodes index");
		l->v = nv;
		l->cap = ncap;
	}
	memcpy(l->v[l->cnt], k, kl);
	l->v[l->cnt][kl] = '\0';
	if (!pvs_name_ok(l->v[l->cnt]))
		return pvs_failx(-EBADMSG, "nodes index entry '%s' is not a node name", l->v[l->cnt]);
	l->cnt++;
	return 0;
}

int pvstore_node_list(struct pvstore *st, char (**names)[PVSTORE_NAME_MAX + 1], size_t *n)
{
	struct name_list l = { 0 };
	*names = NULL;
	*n = 0;
	int r = pvs_index_walk(st, PVSTORE_OID_NODES_INDEX, "nodes index", add_node_name, &l);
	if (r < 0) {
		free(l.v);
		return r;
	}
	*names = l.v;
	*n = l.cnt;
	return 0;
}

int pvstore_node_delete(struct pvstore *st, const char *name)
{
	char oid[PVSTORE_OID_MAX];
	int r;

	if (!pvs_name_ok(name))
		return pvs_failx(-EINVAL, "'%s' is not a node name", name ? name : "(null)");
	pvstore_oid_node(oid, sizeof(oid), name);
	/* unlisted first: a listed node always has a record */
	rados_write_op_t op = rados_create_write_op();
	const char *keys[1] = {name};
	size_t klen[1] = {strlen(name)};
	rados_write_op_omap_rm_keys2(op, keys, klen, 1);
	r = pvs_rc(rados_write_op_operate(op, st->io, PVSTORE_OID_NODES_INDEX, NULL, 0));
	rados_release_write_op(op);
	if (r < 0 && r != -ENOENT)
		return pvs_fail(r, "removing %s from the nodes index", name);
	r = pvs_rc(rados_remove(st->io, oid));
	if (r == -ENOENT)
		return pvs_failx(r, "no node %s", name);
	if (r < 0)
		return pvs_fail(r, "removing %s", oid);
	return 0;
}
