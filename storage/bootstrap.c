/*
 * The pool of a new cluster: create it or adopt it, tag it as pvha's and make
 * the registry's index objects (pvstore_pool_prepare, pvstore.h). Used once
 * per node by `pvha cluster init` and `pvha node join`, never by the agent.
 *
 * What makes a pool pvha's is the pool's application tag "pvha" (pool
 * metadata the monitors keep, shown by `ceph osd pool application get`): an
 * object in the pool could not tell a pvha pool from a pool that happens to
 * hold an object of that name, and the tag is where Ceph's own tools look. A
 * pool without the tag is adopted only when nothing in it says it belongs to
 * someone else: no other application's tag ("rados" is the generic one
 * `ceph osd pool application enable P rados` sets), and no object whose name
 * is outside pvha's schema.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* true when oid is a name of pvha's schema (pvstore/names.h). Pure. */
static bool oid_is_pvha(const char *oid)
{
	static const char *const whole[] = {
		PVSTORE_OID_GUESTS_INDEX, PVSTORE_OID_NODES_INDEX, PVSTORE_OID_NODE_MODES,
		PVSTORE_OID_EVENTS_CLUSTER, PVSTORE_OID_TIEBREAK,
	};
	static const char *const prefix[] = {
		PVSTORE_OID_GUEST_PREFIX, PVSTORE_OID_DISK_PREFIX, PVSTORE_OID_NODE_PREFIX,
		PVSTORE_OID_IMAGE_PREFIX, PVSTORE_OID_EVENTS_GUEST_PREFIX,
	};
	for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
		if (!strcmp(oid, whole[i]))
			return true;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(oid, prefix[i], strlen(prefix[i])))
			return true;
	return false;
}

/* The pool's application tags into *pvha (it has ours) and other (the first
 * one that is neither ours nor "rados", "" when none). 0 or -errno. */
static int pool_tags(rados_ioctx_t io, const char *pool, bool *pvha, char *other, size_t otherlen)
{
	char buf[1024];
	size_t len = sizeof(buf);
	int r = pvs_rc(rados_application_list(io, buf, &len));
	if (r < 0)
		return pvs_fail(r, "reading the application tags of pool '%s'", pool);
	*pvha = false;
	other[0] = '\0';
	for (size_t off = 0; off < len && buf[off];) {
		const char *name = buf + off;
		if (!strcmp(name, PVSTORE_POOL_APP))
			*pvha = true;
		else if (strcmp(name, "rados") && !other[0])
			snprintf(other, otherlen, "%s", name);
		off += strlen(name) + 1;
	}
	return 0;
}

/* The first object of the pool (any namespace) that is not pvha's into
 * found ("" when none). O(objects). 0 or -errno. */
static int foreign_object(rados_ioctx_t io, const char *pool, char *found, size_t foundlen)
{
	rados_list_ctx_t ls;
	const char *oid, *key, *nspace;
	int r;

	found[0] = '\0';
	rados_ioctx_set_namespace(io, LIBRADOS_ALL_NSPACES);
	r = pvs_rc(rados_nobjects_list_open(io, &ls));
	if (r < 0) {
		rados_ioctx_set_namespace(io, NULL);
		return pvs_fail(r, "listing pool '%s'", pool);
	}
	while ((r = pvs_rc(rados_nobjects_list_next(ls, &oid, &key, &nspace))) == 0) {
		if (!oid_is_pvha(oid)) {
			snprintf(found, foundlen, "%s%s%s", nspace && nspace[0] ? nspace : "",
				 nspace && nspace[0] ? "/" : "", oid);
			break;
		}
	}
	rados_nobjects_list_close(ls);
	rados_ioctx_set_namespace(io, NULL);
	if (r < 0 && r != -ENOENT) /* -ENOENT: the end of the listing */
		return pvs_fail(r, "listing pool '%s'", pool);
	return 0;
}

/* Makes the index object oid when missing; *made says whether it did. */
static int index_ensure(rados_ioctx_t io, const char *oid, bool create, bool *made)
{
	uint64_t size;
	time_t mtime;
	int r = pvs_rc(rados_stat(io, oid, &size, &mtime));
	if (r == 0)
		return 0;
	if (r != -ENOENT)
		return pvs_fail(r, "reading the registry object '%s'", oid);
	if (!create)
		return pvs_failx(-ENOENT, "the pool has no registry object '%s': run `pvha cluster init` "
				 "on one node first", oid);
	rados_write_op_t op = rados_create_write_op();
	rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
	r = pvs_rc(rados_write_op_operate(op, io, oid, NULL, 0));
	rados_release_write_op(op);
	if (r < 0)
		return pvs_fail(r, "creating the registry object '%s'", oid);
	*made = true;
	return 0;
}

/* The pool exists and io is open on it: adopt it (create) or check it. */
static int pool_adopt(rados_ioctx_t io, const char *pool, bool create, bool created,
		      struct pvstore_pool_info *out)
{
	char other[64], foreign[PVSTORE_OID_MAX + PVSTORE_NAME_MAX + 2];
	bool pvha = false;
	int r = pool_tags(io, pool, &pvha, other, sizeof(other));
	if (r < 0)
		return r;
	if (!pvha) {
		if (other[0])
			return pvs_failx(-EEXIST, "pool '%s' belongs to '%s' (its application tag), not to pvha: "
					 "name another pool with --pool", pool, other);
		if (!create)
			return pvs_failx(-ENXIO, "pool '%s' is not a pvha pool yet (no application tag '%s'): "
					 "run `pvha cluster init` on one node first, or name the pool "
					 "it made with --pool", pool, PVSTORE_POOL_APP);
		if (!created && (r = foreign_object(io, pool, foreign, sizeof(foreign))) < 0)
			return r;
		if (!created && foreign[0])
			return pvs_failx(-EEXIST, "pool '%s' holds objects that are not pvha's (for example "
					 "'%s'): name another pool with --pool, or empty this one", pool, foreign);
		r = pvs_rc(rados_application_enable(io, PVSTORE_POOL_APP, 1));
		if (r < 0)
			return pvs_fail(r, "tagging pool '%s' with application '%s' (the user needs mon "
					"'allow *' or 'profile admin')", pool, PVSTORE_POOL_APP);
		out->tagged = true;
	}
	bool made = false;
	if ((r = index_ensure(io, PVSTORE_OID_GUESTS_INDEX, create, &made)) < 0 ||
	    (r = index_ensure(io, PVSTORE_OID_NODES_INDEX, create, &made)) < 0)
		return r;
	out->registry_created = made;
	return 0;
}

int pvstore_pool_prepare(const struct pvstore_config *cfg, bool create, struct pvstore_pool_info *out)
{
	const char *client, *pool;
	rados_t cluster;
	rados_ioctx_t io;
	bool created = false;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = pvs_config_check("pvstore_pool_prepare", cfg, &client, &pool)) < 0)
		return r;
	if (cfg->rados_namespace && cfg->rados_namespace[0])
		return pvs_failx(-EINVAL, "pvstore_pool_prepare: a RADOS namespace is not supported here");

	r = pvs_cluster_open(cfg, client, &cluster);
	if (r < 0)
		return r;
	r = pvs_rc(rados_cluster_fsid(cluster, out->fsid, sizeof(out->fsid)));
	if (r < 0) {
		pvs_fail(r, "reading the cluster's fsid");
		goto err_shutdown;
	}
	r = pvs_rc(rados_conf_get(cluster, "mon_host", out->mon_host, sizeof(out->mon_host)));
	if (r < 0 || !out->mon_host[0]) {
		r = pvs_failx(r < 0 ? r : -EINVAL, "%s names no monitors (mon_host): pvha needs them there",
			      cfg->conf_path);
		goto err_shutdown;
	}
	r = pvs_rc(rados_pool_lookup(cluster, pool));
	if (r == -ENOENT) {
		if (!create) {
			pvs_failx(-ENOENT, "pool '%s' does not exist: run `pvha cluster init` on one node "
				  "first, or name its pool with --pool", pool);
			goto err_shutdown;
		}
		r = pvs_rc(rados_pool_create(cluster, pool));
		if (r < 0 && r != -EEXIST) {
			pvs_fail(r, "creating pool '%s' (the user needs mon 'allow *' or 'profile admin')", pool);
			goto err_shutdown;
		}
		created = r == 0;
		out->pool_created = created;
	} else if (r < 0) {
		pvs_fail(r, "looking up pool '%s'", pool);
		goto err_shutdown;
	}
	r = pvs_rc(rados_ioctx_create(cluster, pool, &io));
	if (r < 0) {
		pvs_fail(r, "opening pool '%s'", pool);
		goto err_shutdown;
	}
	r = pool_adopt(io, pool, create, created, out);
	rados_ioctx_destroy(io);
err_shutdown:
	rados_shutdown(cluster);
	return r < 0 ? r : 0;
}
