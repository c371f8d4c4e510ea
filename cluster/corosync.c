/* See pvcluster/corosync.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>

#include "pvcluster/corosync.h"

struct pvclus_cs {
	qb_loop_t *loop;
	struct pvclus_cs_callbacks cb;
	void *ctx;
	cpg_handle_t cpg;
	votequorum_handle_t vq;
	cmap_handle_t cmap;
	int cpg_fd, vq_fd;
	struct cpg_name group;
	uint32_t local;
	bool joined;
	bool lost;
	uint64_t ring_id;
};

int pvclus_cs_errno(int e)
{
	switch ((cs_error_t)e) {
	case CS_OK: return 0;
	case CS_ERR_TRY_AGAIN: return -EAGAIN;
	case CS_ERR_LIBRARY: return -ENOTCONN;
	case CS_ERR_NO_MEMORY: return -ENOMEM;
	case CS_ERR_TIMEOUT: return -ETIMEDOUT;
	case CS_ERR_INVALID_PARAM: return -EINVAL;
	case CS_ERR_ACCESS: return -EACCES;
	case CS_ERR_NOT_EXIST: return -ENOENT;
	case CS_ERR_EXIST: return -EEXIST;
	case CS_ERR_BAD_HANDLE: return -EBADF;
	case CS_ERR_NOT_SUPPORTED: return -ENOTSUP;
	case CS_ERR_TOO_BIG: return -EMSGSIZE;
	default: return -EIO;
	}
}

/* Runs op until it stops saying TRY_AGAIN, for at most ~1 s. */
#define CS_RETRY(expr)                                                        \
	({                                                                    \
		cs_error_t r_;                                                \
		for (int try_ = 0;; try_++) {                                 \
			r_ = (expr);                                          \
			if (r_ != CS_ERR_TRY_AGAIN || try_ >= 100)            \
				break;                                        \
			struct timespec ts_ = { 0, 10 * 1000 * 1000 };        \
			nanosleep(&ts_, NULL);                                \
		}                                                             \
		r_;                                                           \
	})

static void mark_lost(struct pvclus_cs *cs)
{
	if (!cs->lost) {
		cs->lost = true;
		qb_loop_poll_del(cs->loop, cs->cpg_fd);
		qb_loop_poll_del(cs->loop, cs->vq_fd);
		if (cs->cb.lost)
			cs->cb.lost(cs->ctx);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
		       void *msg, size_t len)
{
	struct pvclus_cs *cs;
	(void)group;
	if (cpg_context_get(h, (void **)&cs) != CS_OK || !cs->cb.deliver)
		return;
	cs->cb.deliver(cs->ctx, nodeid, pid, msg, len);
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *members,
		       size_t n_members, const struct cpg_address *left, size_t n_left,
		       const struct cpg_address *joined, size_t n_joined)
{
	struct pvclus_cs *cs;
	uint32_t ids[PVCLUS_MAX_NODES], jids[PVCLUS_MAX_NODES];
	size_t n = 0, nj = 0;
	(void)group;
	(void)left;
	(void)n_left;
	if (cpg_context_get(h, (void **)&cs) != CS_OK || !cs->cb.members)
		return;
	/* One agent per node: a node is a member when any process of it is. */
	for (size_t i = 0; i < n_members && n < PVCLUS_MAX_NODES; i++) {
		bool dup = false;
		for (size_t j = 0; j < n; j++)
			dup |= ids[j] == members[i].nodeid;
		if (!dup)
			ids[n++] = members[i].nodeid;
	}
	for (size_t i = 0; i < n_joined && nj < PVCLUS_MAX_NODES; i++)
		jids[nj++] = joined[i].nodeid;
	qsort(ids, n, sizeof(ids[0]), cmp_u32);
	cs->cb.members(cs->ctx, ids, n, jids, nj, cs->ring_id);
}

static void on_totem(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t *list)
{
	struct pvclus_cs *cs;
	uint32_t ids[PVCLUS_MAX_NODES];
	size_t m = 0;
	if (cpg_context_get(h, (void **)&cs) != CS_OK)
		return;
	cs->ring_id = ring.seq;
	for (uint32_t i = 0; i < n && m < PVCLUS_MAX_NODES; i++)
		ids[m++] = list[i];
	qsort(ids, m, sizeof(ids[0]), cmp_u32);
	if (cs->cb.ring)
		cs->cb.ring(cs->ctx, ids, m, ring.seq);
}

static void on_quorum(votequorum_handle_t h, uint64_t context, uint32_t quorate, uint32_t n,
		      votequorum_node_t nodes[])
{
	struct pvclus_cs *cs = (struct pvclus_cs *)(uintptr_t)context;
	size_t members = 0;
	(void)h;
	for (uint32_t i = 0; i < n; i++)
		members += nodes[i].state == VOTEQUORUM_NODESTATE_MEMBER;
	if (cs->cb.quorum)
		cs->cb.quorum(cs->ctx, quorate != 0, members);
}

static int32_t dispatch_cpg(int32_t fd, int32_t revents, void *data)
{
	struct pvclus_cs *cs = data;
	(void)fd;
	if ((revents & (POLLHUP | POLLERR)) || cpg_dispatch(cs->cpg, CS_DISPATCH_ALL) != CS_OK) {
		mark_lost(cs);
		return -1;
	}
	return 0;
}

static int32_t dispatch_vq(int32_t fd, int32_t revents, void *data)
{
	struct pvclus_cs *cs = data;
	(void)fd;
	if ((revents & (POLLHUP | POLLERR)) || votequorum_dispatch(cs->vq, CS_DISPATCH_ALL) != CS_OK) {
		mark_lost(cs);
		return -1;
	}
	return 0;
}

int pvclus_cs_open(qb_loop_t *loop, const char *group, const struct pvclus_cs_callbacks *cb,
		   void *ctx, struct pvclus_cs **out)
{
	static cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = on_deliver,
		.cpg_confchg_fn = on_confchg,
		.cpg_totem_confchg_fn = on_totem,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	votequorum_callbacks_t vcb = { .votequorum_quorum_notify_fn = on_quorum };
	struct pvclus_cs *cs = calloc(1, sizeof(*cs));
	int err;

	if (!cs)
		return -ENOMEM;
	if (strlen(group) >= sizeof(cs->group.value)) {
		err = -ENAMETOOLONG;
		goto err_free;
	}
	cs->loop = loop;
	cs->cb = *cb;
	cs->ctx = ctx;
	cs->group.length = (uint32_t)strlen(group);
	memcpy(cs->group.value, group, cs->group.length);

	err = pvclus_cs_errno(CS_RETRY(cmap_initialize(&cs->cmap)));
	if (err)
		goto err_free;
	err = pvclus_cs_errno(CS_RETRY(cpg_model_initialize(&cs->cpg, CPG_MODEL_V1,
							    (cpg_model_data_t *)&model, cs)));
	if (err)
		goto err_cmap;
	err = pvclus_cs_errno(CS_RETRY(cpg_local_get(cs->cpg, &cs->local)));
	if (err)
		goto err_cpg;
	err = pvclus_cs_errno(CS_RETRY(votequorum_initialize(&cs->vq, &vcb)));
	if (err)
		goto err_cpg;
	err = pvclus_cs_errno(CS_RETRY(votequorum_trackstart(cs->vq, (uint64_t)(uintptr_t)cs,
							     CS_TRACK_CHANGES | CS_TRACK_CURRENT)));
	if (err)
		goto err_vq;
	err = pvclus_cs_errno(CS_RETRY(cpg_join(cs->cpg, &cs->group)));
	if (err)
		goto err_vq;
	cs->joined = true;
	cpg_fd_get(cs->cpg, &cs->cpg_fd);
	votequorum_fd_get(cs->vq, &cs->vq_fd);
	err = qb_loop_poll_add(loop, QB_LOOP_HIGH, cs->cpg_fd, POLLIN, cs, dispatch_cpg);
	if (err)
		goto err_leave;
	err = qb_loop_poll_add(loop, QB_LOOP_HIGH, cs->vq_fd, POLLIN, cs, dispatch_vq);
	if (err) {
		qb_loop_poll_del(loop, cs->cpg_fd);
		goto err_leave;
	}
	*out = cs;
	return 0;

err_leave:
	cpg_leave(cs->cpg, &cs->group);
err_vq:
	votequorum_finalize(cs->vq);
err_cpg:
	cpg_finalize(cs->cpg);
err_cmap:
	cmap_finalize(cs->cmap);
err_free:
	free(cs);
	return err;
}

void pvclus_cs_close(struct pvclus_cs *cs)
{
	if (!cs)
		return;
	if (!cs->lost) {
		qb_loop_poll_del(cs->loop, cs->cpg_fd);
		qb_loop_poll_del(cs->loop, cs->vq_fd);
		if (cs->joined)
			cpg_leave(cs->cpg, &cs->group);
	}
	votequorum_finalize(cs->vq);
	cpg_finalize(cs->cpg);
	cmap_finalize(cs->cmap);
	free(cs);
}

uint32_t pvclus_cs_local_nodeid(const struct pvclus_cs *cs)
{
	return cs->local;
}

int pvclus_cs_send(struct pvclus_cs *cs, const void *msg, size_t len)
{
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = len };
	if (cs->lost)
		return -ENOTCONN;
	return pvclus_cs_errno(CS_RETRY(cpg_mcast_joined(cs->cpg, CPG_TYPE_AGREED, &iov, 1)));
}

static int cmp_node(const void *a, const void *b)
{
	const struct pvclus_cs_node *x = a, *y = b;
	return (x->nodeid > y->nodeid) - (x->nodeid < y->nodeid);
}

/* The nodelist of one cmap handle (see pvclus_cs_nodelist). */
static int nodelist_of(cmap_handle_t cmap, struct pvclus_cs_node *out, size_t max)
{
	size_t n = 0;
	for (unsigned i = 0; i < PVCLUS_MAX_NODES && n < max; i++) {
		char key[64];
		uint32_t id;
		char *name = NULL;
		snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", i);
		if (cmap_get_uint32(cmap, key, &id) != CS_OK)
			break;
		snprintf(key, sizeof(key), "nodelist.node.%u.name", i);
		out[n].nodeid = id;
		if (cmap_get_string(cmap, key, &name) == CS_OK) {
			snprintf(out[n].name, sizeof(out[n].name), "%s", name);
			free(name);
		} else {
			snprintf(out[n].name, sizeof(out[n].name), "node%u", id);
		}
		snprintf(key, sizeof(key), "nodelist.node.%u.ring0_addr", i);
		out[n].addr[0] = '\0';
		if (cmap_get_string(cmap, key, &name) == CS_OK) {
			snprintf(out[n].addr, sizeof(out[n].addr), "%s", name);
			free(name);
		}
		n++;
	}
	qsort(out, n, sizeof(out[0]), cmp_node);
	return (int)n;
}

int pvclus_cs_nodelist(struct pvclus_cs *cs, struct pvclus_cs_node *out, size_t max)
{
	return nodelist_of(cs->cmap, out, max);
}

int pvclus_cs_probe(struct pvclus_cs_probe *out)
{
	cmap_handle_t cmap;
	votequorum_handle_t vq;
	struct votequorum_info info;
	votequorum_callbacks_t vcb = { 0 };
	struct pvclus_cs_node nodes[PVCLUS_MAX_NODES];
	int err, n;

	memset(out, 0, sizeof(*out));
	err = pvclus_cs_errno(CS_RETRY(cmap_initialize(&cmap)));
	if (err)
		return err;
	err = pvclus_cs_errno(CS_RETRY(cmap_get_uint32(cmap, "runtime.votequorum.this_node_id", &out->nodeid)));
	if (err) {
		err = err == -ENOENT ? -ENOPROTOOPT : err; /* no votequorum: not its quorum provider */
		goto out_cmap;
	}
	n = nodelist_of(cmap, nodes, PVCLUS_MAX_NODES);
	out->configured = (uint32_t)n;
	for (int i = 0; i < n; i++)
		if (nodes[i].nodeid == out->nodeid)
			out->self = nodes[i];
	if (!out->self.name[0]) {
		err = -ENOENT;
		goto out_cmap;
	}
	err = pvclus_cs_errno(CS_RETRY(votequorum_initialize(&vq, &vcb)));
	if (err)
		goto out_cmap;
	err = pvclus_cs_errno(CS_RETRY(votequorum_getinfo(vq, out->nodeid, &info)));
	if (!err) {
		out->quorate = info.flags & VOTEQUORUM_INFO_QUORATE;
		out->total_votes = info.total_votes;
		out->expected_votes = info.node_expected_votes;
		out->quorum = info.quorum;
	}
	votequorum_finalize(vq);
out_cmap:
	cmap_finalize(cmap);
	return err;
}
