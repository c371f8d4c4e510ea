/*
 * The agent object (pvcluster/agent.h): its creation, and its inputs: the
 * cluster's shape (CPG membership, the totem ring, votequorum), the messages
 * in, children that ended, the storage failing, and the cluster-status and
 * event parts of the control API. It is the top of the agent's files: it
 * hands each input to the parts below it (internal.h lists them in their
 * order; none calls back up).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the storage ----------------------------------------------------------- */

void pvclus_agent_storage_failed(struct pvclus_agent *a)
{
	agent_set_storage_ok(a, false);
}

/* ---- cluster messages -------------------------------------------------------- */

void pvclus_agent_on_deliver(struct pvclus_agent *a, uint32_t nodeid, const void *data, size_t len)
{
	Pvha__ClusterMsg *msg = pvha__cluster_msg__unpack(NULL, len, data);
	if (!msg) {
		alog_warn(a, "cpg: undecodable message of %zu bytes from node %u", len, nodeid);
		return;
	}
	if (msg->version != 1) {
		alog_warn(a, "cpg: message version %u from node %u ignored", msg->version, nodeid);
	} else if (msg->body_case == PVHA__CLUSTER_MSG__BODY_HELLO && !agent_msg_allowed(a, nodeid, msg)) {
		/* dropped (logged); other kinds are checked when applied (guests_on_message) */
	} else if (msg->body_case == PVHA__CLUSTER_MSG__BODY_HELLO) {
		struct peer *p = agent_peer(a, nodeid);
		const Pvha__NodeHello *h = msg->hello;
		if (p) {
			p->hello = true;
			snprintf(p->name, sizeof(p->name), "%s", h->name);
			snprintf(p->addr, sizeof(p->addr), "%s", h->addr);
			snprintf(p->incarnation, sizeof(p->incarnation), "%s", h->incarnation);
			p->mem_bytes = h->mem_bytes;
			p->cpus = h->cpus;
			p->has_state = h->has_state;
			bool was_bad = p->storage_bad;
			p->storage_bad = !h->storage_ok;
			p->n_running = h->n_running;
			if (was_bad != p->storage_bad)
				agent_update_leader(a);
			agent_check_unfence(a);
			guests_on_hello(a, nodeid, h->has_state);
		} else {
			alog_warn(a, "cpg: hello from node %u, which is not in the nodelist", nodeid);
		}
	} else {
		guests_on_message(a, nodeid, msg);
	}
	pvha__cluster_msg__free_unpacked(msg, NULL);
}

/* ---- membership, quorum, the leader ----------------------------------------- */

/* The agents' membership (CPG): who can act, who leads. An agent leaving
 * while its node stays in the ring has only restarted: its guests run on. */
void pvclus_agent_on_members(struct pvclus_agent *a, const uint32_t *ids, size_t n, uint64_t ring)
{
	if (n > PVCLUS_MAX_NODES)
		n = PVCLUS_MAX_NODES;
	for (size_t i = 0; i < a->nmembers; i++) {
		struct peer *p = agent_peer(a, a->members[i]);
		if (p && !agent_in_list(ids, n, a->members[i])) {
			p->hello = false;
			p->has_state = false;
			p->storage_bad = false;
			p->n_running = 0;
			p->unfencing = false;
		}
	}
	memcpy(a->members, ids, n * sizeof(ids[0]));
	a->nmembers = n;
	a->ring_id = ring;
	agent_update_leader(a);
	guests_on_members(a);
	agent_send_hello(a);
}

/* The nodes' membership (the totem ring): a node that left is down or cut
 * off, and its guests go through fencing. The lowest agent logs it. */
void pvclus_agent_on_ring(struct pvclus_agent *a, const uint32_t *ids, size_t n)
{
	uint32_t left[PVCLUS_MAX_NODES];
	size_t nleft = 0;
	bool first = !a->have_ring;
	if (n > PVCLUS_MAX_NODES)
		n = PVCLUS_MAX_NODES;
	/* A minority does not log: it may not reach the storage. */
	bool i_log = a->nmembers > 0 && a->members[0] == a->local && a->storage_ok &&
		     (2 * n > (size_t)a->nnodes || a->nnodes == 2);
	for (size_t i = 0; i < a->nring; i++) {
		if (!agent_in_list(ids, n, a->ring[i])) {
			left[nleft++] = a->ring[i];
			if (i_log)
				cluster_event(a, "node-left", "node %s left the membership (%zu members)",
					      agent_node_name(a, a->ring[i]), n);
		}
	}
	for (size_t j = 0; j < n && !first; j++)
		if (!agent_in_list(a->ring, a->nring, ids[j]) && ids[j] != a->local && i_log)
			cluster_event(a, "node-joined", "node %s joined the membership (%zu members)",
				      agent_node_name(a, ids[j]), n);
	size_t old_nring = a->nring;
	memcpy(a->ring, ids, n * sizeof(ids[0]));
	a->nring = n;
	a->have_ring = true;
	agent_update_leader(a);
	agent_tiebreak_on_ring(a, old_nring); /* before any fence of the nodes that left */
	if (first)
		guests_on_members(a); /* alone, a two-node agent waited for the ring */
	if (nleft)
		guests_on_nodes_left(a, left, nleft);
}

void pvclus_agent_on_quorum(struct pvclus_agent *a, bool quorate, size_t members)
{
	if (quorate == a->quorate)
		return;
	a->quorate = quorate;
	agent_tiebreak_on_quorum(a); /* before the guests take the registry alone */
	agent_update_leader(a);
	guests_on_quorum(a, quorate);
	cluster_event(a, quorate ? "quorum-regained" : "quorum-lost", "node %s: partition of %zu %s",
		      a->cfg.node_name, members, quorate ? "is quorate" : "lost quorum");
}

void pvclus_agent_on_lost(struct pvclus_agent *a)
{
	a->quorate = false;
	a->nmembers = 0;
	a->nring = 0;
	a->have_ring = false;
	agent_update_leader(a);
}

void pvclus_agent_set_nodelist(struct pvclus_agent *a, uint32_t local, const struct pvclus_cs_node *nodes,
			       size_t n)
{
	if (n > PVCLUS_MAX_NODES)
		n = PVCLUS_MAX_NODES;
	a->local = local;
	memcpy(a->nodes, nodes, n * sizeof(nodes[0]));
	a->nnodes = (int)n;
	memset(a->peers, 0, sizeof(a->peers));
	agent_migrate_reload_modes(a); /* modes are by node name */
}

uint32_t pvclus_agent_leader(const struct pvclus_agent *a)
{
	return a->leader;
}

bool pvclus_agent_quorate(const struct pvclus_agent *a)
{
	return a->quorate;
}

bool pvclus_agent_node_held(const struct pvclus_agent *a, uint32_t node)
{
	return agent_node_held(a, node);
}

/* ---- processes ------------------------------------------------------------------ */

bool pvclus_agent_child_exited(struct pvclus_agent *a, pid_t pid, int wait_status)
{
	return guests_reaped(a, pid, wait_status) || agent_fence_reaped(a, pid, wait_status);
}

/* ---- the control API --------------------------------------------------------- */

static void fill_status(struct pvclus_agent *a, Pvha__ClusterStatus *s)
{
	pvha__cluster_status__init(s);
	s->local_nodeid = a->local;
	s->local_name = a->cfg.node_name;
	s->quorate = a->quorate;
	s->leader_nodeid = a->leader;
	s->leader_name = (char *)(a->leader ? agent_node_name(a, a->leader) : "");
	s->ring_id = a->ring_id;
	s->incarnation = a->cfg.incarnation;
	s->storage_ok = a->storage_ok;
	agent_migrate_status(a, s);
	for (int i = 0; i < a->nnodes; i++) {
		Pvha__NodeInfo *n = &a->api.infos[i];
		pvha__node_info__init(n);
		n->nodeid = a->nodes[i].nodeid;
		n->name = a->nodes[i].name;
		n->member = agent_is_member(a, n->nodeid);
		n->leader = n->nodeid == a->leader;
		n->local = n->nodeid == a->local;
		if (a->peers[i].hello) {
			n->addr = a->peers[i].addr;
			n->incarnation = a->peers[i].incarnation;
			n->mem_bytes = a->peers[i].mem_bytes;
			n->cpus = a->peers[i].cpus;
		}
		n->mode = (char *)pvstore_node_mode_str(a->peers[i].mode);
		n->guests = agent_migrate_guests_on(a, n->nodeid);
		a->api.info_ptrs[i] = n;
	}
	s->n_nodes = (size_t)a->nnodes;
	s->nodes = a->api.info_ptrs;
}

struct events_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	void *token;
	bool per_guest;
	uint8_t guest[16];
	uint64_t after;
	size_t max, n;
	struct pvstore_event evs[];
};

static int events_run(struct pvstore *st, struct pvclus_job *j)
{
	struct events_job *e = (struct events_job *)j;
	int err = st ? pvstore_event_list(st, e->per_guest ? e->guest : NULL, e->after, e->evs, e->max, &e->n)
		     : -ENOTCONN;
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void events_done(struct pvclus_job *j)
{
	struct events_job *e = (struct events_job *)j;
	struct pvclus_agent *a = e->a;
	Pvha__ApiReply rep = PVHA__API_REPLY__INIT;
	char msg[300] = "";
	if (j->err) {
		rep.error = j->err;
		snprintf(msg, sizeof(msg), "reading the event log: %s", j->errmsg);
	}
	for (size_t i = 0; !j->err && i < e->n; i++) {
		Pvha__EventInfo *ei = &a->api.einfo[i];
		pvha__event_info__init(ei);
		ei->seq = e->evs[i].seq;
		ei->time_ms = e->evs[i].time_ms;
		ei->node = e->evs[i].node;
		ei->what = e->evs[i].what;
		ei->why = e->evs[i].why;
		a->api.eptrs[i] = ei;
	}
	if (!j->err) {
		rep.n_events = e->n;
		rep.events = a->api.eptrs;
	}
	a->ops->api_reply(a->ctx, e->token, &rep, msg);
	free(e);
}

static int api_events(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep,
		      char *msg, size_t msglen)
{
	size_t max = req->max ? req->max : 100;
	if (max > 1000)
		max = 1000;
	if (!a->st) {
		rep->error = -ENOTCONN;
		snprintf(msg, msglen, "this node has no storage connection");
		return 0;
	}
	struct guest *g = NULL;
	bool per_guest = req->guest && req->guest[0];
	if (per_guest && !(g = guests_by_name(a, req->guest))) {
		rep->error = -ENOENT;
		snprintf(msg, msglen, "no guest '%s'", req->guest);
		return 0;
	}
	struct events_job *e = calloc(1, sizeof(*e) + max * sizeof(e->evs[0]));
	if (!e) {
		rep->error = -ENOMEM;
		snprintf(msg, msglen, "reading the event log: out of memory");
		return 0;
	}
	e->j = (struct pvclus_job){ .run = events_run, .done = events_done, .what = "event list" };
	e->a = a;
	e->token = token;
	e->per_guest = g != NULL;
	if (g)
		memcpy(e->guest, g->spec.uuid, 16);
	e->after = req->after;
	e->max = max;
	agent_submit(a, &e->j);
	return -EINPROGRESS;
}

int pvclus_agent_api(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep,
		     char *msg, size_t msglen)
{
	if (req->version != 1) {
		rep->error = -EPROTO;
		snprintf(msg, msglen, "API version %u not supported (1)", req->version);
		return 0;
	}
	switch (req->op) {
	case PVHA__API_REQUEST__OP__CLUSTER_STATUS:
	case PVHA__API_REQUEST__OP__NODE_LIST:
		fill_status(a, &a->api.status);
		rep->status = &a->api.status;
		return 0;
	case PVHA__API_REQUEST__OP__EVENTS:
		return api_events(a, req, token, rep, msg, msglen);
	case PVHA__API_REQUEST__OP__GUEST_CREATE:
	case PVHA__API_REQUEST__OP__GUEST_LIST:
	case PVHA__API_REQUEST__OP__GUEST_SHOW:
	case PVHA__API_REQUEST__OP__GUEST_START:
	case PVHA__API_REQUEST__OP__GUEST_STOP:
	case PVHA__API_REQUEST__OP__GUEST_DELETE:
	case PVHA__API_REQUEST__OP__GUEST_SET:
		return guests_api(a, req, token, rep, msg, msglen);
	case PVHA__API_REQUEST__OP__NODE_DRAIN:
	case PVHA__API_REQUEST__OP__NODE_RESUME:
	case PVHA__API_REQUEST__OP__GUEST_MIGRATE:
	case PVHA__API_REQUEST__OP__CLUSTER_REBALANCE:
		return agent_migrate_api(a, req, token, rep, msg, msglen);
	default:
		rep->error = -EINVAL;
		snprintf(msg, msglen, "unknown operation %d", req->op);
		return 0;
	}
}

/* ---- life ------------------------------------------------------------------------- */

int pvclus_agent_create(const struct pvclus_agent_config *cfg, const struct pvclus_agent_ops *ops,
			void *ctx, struct pvstore *st, struct pvclus_agent **out)
{
	struct pvclus_agent *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->sched_view = calloc(1, sizeof(*a->sched_view));
	a->mig_view = calloc(1, sizeof(*a->mig_view));
	if (!a->sched_view || !a->mig_view) {
		pvclus_agent_destroy(a);
		return -ENOMEM;
	}
	a->cfg = *cfg;
	a->ops = ops;
	a->ctx = ctx;
	a->st = st;
	for (int i = 0; i < MAX_GUESTS; i++)
		a->g[i].agent = a;
	for (int i = 0; i < PVCLUS_MAX_NODES; i++)
		a->fences[i].agent = a;
	*out = a;
	return 0;
}

int pvclus_agent_start(struct pvclus_agent *a)
{
	/* Connected: usable until the record's write (or any later use) says
	 * otherwise, so that this node's first hellos do not say it is not. */
	a->storage_ok = a->st != NULL;
	if (a->st)
		agent_put_node_record(a, false);
	else
		alog_warn(a, "running without storage: guests cannot run on this node");
	agent_sched_init(a);
	agent_migrate_init(a);
	return guests_init(a);
}

void pvclus_agent_destroy(struct pvclus_agent *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->nheld; i++)
		free(a->held[i].data);
	free(a->sched_view);
	free(a->mig_view);
	free(a);
}
