/* Nodes' maintenance modes: the omap of PVSTORE_OID_NODE_MODES (names.h),
 * node name -> "draining" | "maintenance"; a node without an entry is active. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pvstore/names.h"
#include "pvstore/pvstore.h"

static const char *const mode_names[] = { "active", "draining", "maintenance" };

const char *pvstore_node_mode_str(enum pvstore_node_mode m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}

int pvstore_node_mode_set(struct pvstore *st, const char *name, enum pvstore_node_mode mode)
{
	if (!pvs_name_ok(name))
		return pvs_failx(-EINVAL, "'%s' is not a node name", name ? name : "(null)");
	if ((unsigned)mode > PVSTORE_NODE_MAINTENANCE)
		return pvs_failx(-EINVAL, "node mode %d is unknown", (int)mode);
	rados_write_op_t op = rados_create_write_op();
	if (!op)
		return pvs_failx(-ENOMEM, "rados_create_write_op");
	const char *keys[1] = { name };
	size_t klen[1] = { strlen(name) };
	if (mode == PVSTORE_NODE_ACTIVE) {
		rados_write_op_create(op, LIBRADOS_CREATE_IDEMPOTENT, NULL);
		rados_write_op_omap_rm_keys2(op, keys, klen, 1);
	} else {
		const char *vals[1] = { mode_names[mode] };
		size_t vlen[1] = { strlen(mode_names[mode]) };
		rados_write_op_omap_set2(op, keys, vals, klen, vlen, 1);
	}
	int r = pvs_rc(rados_write_op_operate(op, st->io, PVSTORE_OID_NODE_MODES, NULL, 0));
	rados_release_write_op(op);
	if (r < 0)
		return pvs_explain_write_timeout(st, pvs_fail(r, "writing the mode of node %s", name),
						 "writing a node mode");
	return 0;
}

struct mode_walk {
	int (*each)(void *ctx, const char *name, enum pvstore_node_mode mode);
	void *ctx;
};

static int parse_mode(const char *val, size_t vl, enum pvstore_node_mode *m)
{
	for (unsigned i = 1; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (vl == strlen(mode_names[i]) && !memcmp(val, mode_names[i], vl)) {
			*m = (enum pvstore_node_mode)i;
			return 0;
		}
	}
	return pvs_failx(-EBADMSG, "%s: a node mode of '%.*s' is unknown", PVSTORE_OID_NODE_MODES,
			 (int)(vl > 32 ? 32 : vl), val);
}

static int walk_one(void *ctx, const char *key, size_t kl, const char *val, size_t vl)
{
	struct mode_walk *w = ctx;
	char name[PVSTORE_NAME_MAX + 1];
	if (kl > PVSTORE_NAME_MAX)
		return pvs_failx(-EBADMSG, "%s: a key of %zu bytes", PVSTORE_OID_NODE_MODES, kl);
	memcpy(name, key, kl);
	name[kl] = '\0';
	enum pvstore_node_mode m = PVSTORE_NODE_ACTIVE;
	int r = parse_mode(val, vl, &m);
	if (r)
		return r;
	return w->each(w->ctx, name, m);
}

int pvstore_node_modes(struct pvstore *st, int (*each)(void *ctx, const char *name, enum pvstore_node_mode mode),
		       void *ctx)
{
	struct mode_walk w = { .each = each, .ctx = ctx };
	return pvs_index_walk(st, PVSTORE_OID_NODE_MODES, "node modes", walk_one, &w);
}
