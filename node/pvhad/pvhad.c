/*
 * pvhad: the node agent. One qb_loop, no hidden threads in the agent logic.
 * This first part holds the cluster's shape: CPG membership and messages,
 * votequorum, the leader (the lowest node id of the quorate partition), this
 * node's record and incarnation in RADOS, the cluster event log, and the
 * control API (libqb IPC service "pvhad", root only) that `pvha cluster
 * status`, `pvha node list` and `pvha events` use. Guest supervision, fencing
 * and recovery build on it (docs/agent.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <qb/qbutil.h>

#include "agent.h"
#include "agent_config.h"
#include "agent_migrate.h"
#include "event_queue.h"
#include "log.h"
#include "proto/api.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "pvcluster/corosync.h"
#include "pvstore/pvstore.h"

#define API_MAX (1u << 20)
#define CPG_GROUP "pvha"

/* The process's root context: libqb's IPC poll handlers carry no pointer. */
static struct agent agent;

const char *agent_node_name(const struct agent *a, uint32_t id)
{
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid == id)
			return a->nodes[i].name;
	return "?";
}

struct peer *agent_peer(struct agent *a, uint32_t id)
{
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid == id)
			return &a->peers[i];
	return NULL;
}

bool agent_node_online(struct agent *a, int i)
{
	return agent_is_member(a, a->nodes[i].nodeid) && a->peers[i].hello && !a->peers[i].storage_bad;
}

uint64_t agent_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool agent_is_member(const struct agent *a, uint32_t id)
{
	for (size_t i = 0; i < a->nmembers; i++)
		if (a->members[i] == id)
			return true;
	return false;
}

void cluster_event(struct agent *a, const char *what, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pvlog_info("event %s: %s", what, why);
	event_queue_push(a->evq, NULL, what, why);
}

/* The event-log worker saw the storage refuse or time out. */
static int32_t on_event_queue(int32_t fd, int32_t revents, void *data)
{
	struct agent *a = data;
	(void)fd;
	(void)revents;
	if (event_queue_failed(a->evq))
		agent_set_storage_ok(a, false);
	return 0;
}

/* ---- incarnation and node record ----------------------------------------- */

/* The incarnation is per host boot: kept under run_dir (a tmpfs at /run that
 * a reboot empties); an agent restarted on the same boot finds the same one. */
static int load_incarnation(struct agent *a)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/incarnation", a->cfg.run_dir);
	FILE *f = fopen(path, "r");
	if (f) {
		bool ok = fgets(a->incarnation, sizeof(a->incarnation), f) != NULL;
		fclose(f);
		a->incarnation[strcspn(a->incarnation, "\n")] = '\0';
		if (ok && a->incarnation[0])
			return 0;
	}
	uint8_t u[16];
	int err = pvstore_uuid_generate(u);
	if (err)
		return err;
	pvstore_uuid_format(u, a->incarnation);
	if (mkdir(a->cfg.run_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", a->incarnation);
	return fclose(f) == 0 ? 0 : -errno;
}

uint64_t agent_mem_offered(const struct agent *a)
{
	if (a->cfg.guest_mem_bytes)
		return a->cfg.guest_mem_bytes;
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

uint32_t agent_cpus_offered(const struct agent *a)
{
	return a->cfg.guest_cpus_n ? a->cfg.guest_cpus_n : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
}

static int put_node_record(struct agent *a)
{
	struct pvstore_node n = { 0 };
	snprintf(n.name, sizeof(n.name), "%s", a->cfg.node_name);
	snprintf(n.addr, sizeof(n.addr), "%s", a->cfg.address);
	snprintf(n.incarnation, sizeof(n.incarnation), "%s", a->incarnation);
	n.mem_bytes = agent_mem_offered(a);
	n.cpus = agent_cpus_offered(a);
	int err = pvstore_node_put(a->st, &n);
	if (err)
		pvlog_err(err, "storage: writing node record: %s", pvstore_errmsg());
	return err;
}

void agent_set_storage_ok(struct agent *a, bool ok)
{
	if (a->storage_ok == ok)
		return;
	a->storage_ok = ok;
	pvlog_info("storage %s", ok ? "usable" : "NOT usable: this node cannot run guests or lead");
	agent_send_hello(a);
}

#define STORAGE_RETRY_MS 500
#define STORAGE_RETRIES 60

static qb_loop_timer_handle storage_timer;
static bool storage_timer_armed;
static int storage_tries;

/* After an unfence the OSDs may still hold the old map for a moment: the
 * node retries until its record is written (or gives up after 30 s, when it
 * says so in a hello anyway). */
static void storage_retry(void *data)
{
	struct agent *a = data;
	storage_timer_armed = false;
	agent_set_storage_ok(a, a->st && put_node_record(a) == 0);
	if (!a->storage_ok && ++storage_tries < STORAGE_RETRIES)
		storage_timer_armed = qb_loop_timer_add(a->loop, QB_LOOP_MED, STORAGE_RETRY_MS * QB_TIME_NS_IN_MSEC, a,
							storage_retry, &storage_timer) == 0;
	else if (!a->storage_ok)
		pvlog_warn("storage: still not usable %d ms after this node's fence was lifted",
			   STORAGE_RETRY_MS * STORAGE_RETRIES);
}

void agent_storage_ready(struct agent *a)
{
	if (storage_timer_armed)
		qb_loop_timer_del(a->loop, storage_timer);
	storage_timer_armed = false;
	storage_tries = 0;
	storage_retry(a);
}

void agent_check_unfence(struct agent *a)
{
	if (!agent_leads(a))
		return;
	for (size_t i = 0; i < a->nmembers; i++) {
		struct peer *p = agent_peer(a, a->members[i]);
		if (p && p->hello && !p->unfencing && a->members[i] != a->local &&
		    (p->fenced || p->storage_bad) && p->n_running == 0)
			guests_unfence(a, a->members[i]);
	}
}

static int connect_storage(struct agent *a)
{
	char client[80];
	snprintf(client, sizeof(client), "client.%s", a->cfg.ceph_user);
	struct pvstore_config sc = {
		.conf_path = a->cfg.ceph_conf,
		.client_name = client,
		.keyring = a->cfg.ceph_keyring[0] ? a->cfg.ceph_keyring : NULL,
		.pool = a->cfg.pool,
	};
	int err = pvstore_connect(&sc, &a->st);
	if (err) {
		pvlog_err(err, "storage: %s", pvstore_errmsg());
		return err;
	}
	err = put_node_record(a);
	if (err)
		return err;
	a->storage_ok = true;
	return 0;
}

/* ---- cluster messages ---------------------------------------------------- */

int agent_send(struct agent *a, Pvha__ClusterMsg *msg)
{
	if (!a->cs)
		return -ENOTCONN;
	msg->version = 1;
	size_t len = pvha__cluster_msg__get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	pvha__cluster_msg__pack(msg, buf);
	int err = pvclus_cs_send(a->cs, buf, len);
	if (err)
		pvlog_err(err, "cpg: sending a message of %zu bytes", len);
	free(buf);
	return err;
}

void agent_send_hello(struct agent *a)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeHello h = PVHA__NODE_HELLO__INIT;
	h.name = a->cfg.node_name;
	h.addr = a->cfg.address;
	h.incarnation = a->incarnation;
	h.mem_bytes = agent_mem_offered(a);
	h.cpus = agent_cpus_offered(a);
	h.has_state = guests_have_state(a);
	h.storage_ok = a->storage_ok;
	ProtobufCBinaryData running[256];
	h.n_running = guests_running_here(a, running, 256);
	h.running = running;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_HELLO;
	msg.hello = &h;
	agent_send(a, &msg);
}

static void on_deliver(void *ctx, uint32_t nodeid, uint32_t pid, const void *data, size_t len)
{
	struct agent *a = ctx;
	(void)pid;
	Pvha__ClusterMsg *msg = pvha__cluster_msg__unpack(NULL, len, data);
	if (!msg) {
		pvlog_warn("cpg: undecodable message of %zu bytes from node %u", len, nodeid);
		return;
	}
	if (msg->version != 1) {
		pvlog_warn("cpg: message version %u from node %u ignored", msg->version, nodeid);
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
			pvlog_warn("cpg: hello from node %u, which is not in the nodelist", nodeid);
		}
	} else {
		guests_on_message(a, nodeid, msg);
	}
	pvha__cluster_msg__free_unpacked(msg, NULL);
}

static bool in_list(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

void agent_update_leader(struct agent *a)
{
	uint32_t old = a->leader;
	/* The lowest member that is not fenced and can reach the storage (as its
	 * hello says, in CPG order, so every agent agrees): a fenced node cannot
	 * write to RADOS (nor lift its own fence) until the leader lets it back. */
	a->leader = 0;
	/* The ring learns of a lost node before votequorum says what it means:
	 * a ring without a majority of the configured nodes (half of two, with
	 * two_node) has no leader, whatever quorum said last. */
	bool majority = !a->have_ring || 2 * a->nring > (size_t)a->nnodes ||
			(a->nnodes == 2 && a->nring == 1);
	for (size_t i = 0; a->quorate && majority && i < a->nmembers && !a->leader; i++) {
		struct peer *p = agent_peer(a, a->members[i]);
		/* the ring may already say its node is gone, before CPG does */
		bool in_ring = !a->have_ring || in_list(a->ring, a->nring, a->members[i]);
		if ((!p || (!p->fenced && !p->storage_bad)) && in_ring)
			a->leader = a->members[i];
	}
	if (a->leader != old) {
		pvlog_info("leader: %s", a->leader ? agent_node_name(a, a->leader) : "none (not quorate)");
		if (a->leader == a->local && agent_leads(a)) {
			agent_check_unfence(a);
			guests_leader_takeover(a);
		}
	}
}

/* The agents' membership (CPG): who can act, who leads. An agent leaving
 * while its node stays in the ring has only restarted: its guests run on. */
static void on_members(void *ctx, const uint32_t *ids, size_t n, const uint32_t *joined,
		       size_t n_joined, uint64_t ring)
{
	struct agent *a = ctx;
	(void)joined;
	(void)n_joined;
	for (size_t i = 0; i < a->nmembers; i++) {
		struct peer *p = agent_peer(a, a->members[i]);
		if (p && !in_list(ids, n, a->members[i])) {
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
static void on_ring(void *ctx, const uint32_t *ids, size_t n, uint64_t ring_id)
{
	struct agent *a = ctx;
	uint32_t left[PVCLUS_MAX_NODES];
	size_t nleft = 0;
	bool first = !a->have_ring;
	(void)ring_id;
	/* A minority does not log: it may not reach the storage, and must not
	 * block its loop on it. */
	bool i_log = a->nmembers > 0 && a->members[0] == a->local && a->storage_ok &&
		     (2 * n > (size_t)a->nnodes || a->nnodes == 2);
	for (size_t i = 0; i < a->nring; i++) {
		if (!in_list(ids, n, a->ring[i])) {
			left[nleft++] = a->ring[i];
			if (i_log)
				cluster_event(a, "node-left", "node %s left the membership (%zu members)",
					      agent_node_name(a, a->ring[i]), n);
		}
	}
	for (size_t j = 0; j < n && !first; j++)
		if (!in_list(a->ring, a->nring, ids[j]) && ids[j] != a->local && i_log)
			cluster_event(a, "node-joined", "node %s joined the membership (%zu members)",
				      agent_node_name(a, ids[j]), n);
	memcpy(a->ring, ids, n * sizeof(ids[0]));
	a->nring = n;
	a->have_ring = true;
	agent_update_leader(a);
	if (nleft)
		guests_on_nodes_left(a, left, nleft);
}

static void on_quorum(void *ctx, bool quorate, size_t members)
{
	struct agent *a = ctx;
	if (quorate == a->quorate)
		return;
	a->quorate = quorate;
	agent_update_leader(a);
	guests_on_quorum(a, quorate);
	cluster_event(a, quorate ? "quorum-regained" : "quorum-lost", "node %s: partition of %zu %s",
		      a->cfg.node_name, members, quorate ? "is quorate" : "lost quorum");
}

static void reconnect(void *data);

static void on_lost(void *ctx)
{
	struct agent *a = ctx;
	pvlog_warn("corosync: the local corosync went away; retrying every second");
	a->quorate = false;
	a->nmembers = 0;
	a->nring = 0;
	a->have_ring = false;
	agent_update_leader(a);
	qb_loop_timer_add(a->loop, QB_LOOP_MED, 1000ull * QB_TIME_NS_IN_MSEC, a, reconnect,
			  &a->reconnect_timer);
}

static const struct pvclus_cs_callbacks cs_callbacks = {
	.members = on_members,
	.ring = on_ring,
	.quorum = on_quorum,
	.deliver = on_deliver,
	.lost = on_lost,
};

static int connect_corosync(struct agent *a)
{
	int err = pvclus_cs_open(a->loop, CPG_GROUP, &cs_callbacks, a, &a->cs);
	if (err)
		return err;
	a->local = pvclus_cs_local_nodeid(a->cs);
	int n = pvclus_cs_nodelist(a->cs, a->nodes, PVCLUS_MAX_NODES);
	a->nnodes = n < 0 ? 0 : n;
	memset(a->peers, 0, sizeof(a->peers));
	return 0;
}

static void reconnect(void *data)
{
	struct agent *a = data;
	pvclus_cs_close(a->cs);
	a->cs = NULL;
	int err = connect_corosync(a);
	if (err)
		qb_loop_timer_add(a->loop, QB_LOOP_MED, 1000ull * QB_TIME_NS_IN_MSEC, a, reconnect,
				  &a->reconnect_timer);
	else
		pvlog_info("corosync: connected again as node %u", a->local);
}

/* ---- control API --------------------------------------------------------- */

static void fill_status(struct agent *a, Pvha__ClusterStatus *s, Pvha__NodeInfo *infos,
			Pvha__NodeInfo **ptrs)
{
	s->local_nodeid = a->local;
	s->local_name = a->cfg.node_name;
	s->quorate = a->quorate;
	s->leader_nodeid = a->leader;
	s->leader_name = (char *)(a->leader ? agent_node_name(a, a->leader) : "");
	s->ring_id = a->ring_id;
	s->incarnation = a->incarnation;
	s->storage_ok = a->storage_ok;
	agent_migrate_status(a, s);
	for (int i = 0; i < a->nnodes; i++) {
		Pvha__NodeInfo *n = &infos[i];
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
		n->mode = (char *)pvstore_node_mode_str((enum pvstore_node_mode)a->peers[i].mode);
		n->guests = agent_migrate_guests_on(a, n->nodeid);
		ptrs[i] = n;
	}
	s->n_nodes = (size_t)a->nnodes;
	s->nodes = ptrs;
}

static void api_handle(struct agent *a, const Pvha__ApiRequest *req, Pvha__ApiReply *rep,
		       char *msg, size_t msglen, Pvha__ClusterStatus *status, Pvha__NodeInfo *infos,
		       Pvha__NodeInfo **ptrs, struct pvstore_event *evs, Pvha__EventInfo *einfo,
		       Pvha__EventInfo **eptrs)
{
	if (req->version != 1) {
		rep->error = -EPROTO;
		snprintf(msg, msglen, "API version %u not supported (1)", req->version);
		return;
	}
	switch (req->op) {
	case PVHA__API_REQUEST__OP__CLUSTER_STATUS:
	case PVHA__API_REQUEST__OP__NODE_LIST:
		fill_status(a, status, infos, ptrs);
		rep->status = status;
		return;
	case PVHA__API_REQUEST__OP__EVENTS: {
		size_t max = req->max ? req->max : 100, n = 0;
		if (max > 1000)
			max = 1000;
		if (!a->st) {
			rep->error = -ENOTCONN;
			snprintf(msg, msglen, "this node has no storage connection");
			return;
		}
		uint8_t gu[16];
		bool per_guest = req->guest && req->guest[0];
		if (per_guest && guests_lookup(a, req->guest, gu) != 0) {
			rep->error = -ENOENT;
			snprintf(msg, msglen, "no guest '%s'", req->guest);
			return;
		}
		int err = pvstore_event_list(a->st, per_guest ? gu : NULL, req->after, evs, max, &n);
		if (err) {
			rep->error = err;
			snprintf(msg, msglen, "reading the event log: %s", pvstore_errmsg());
			return;
		}
		for (size_t i = 0; i < n; i++) {
			pvha__event_info__init(&einfo[i]);
			einfo[i].seq = evs[i].seq;
			einfo[i].time_ms = evs[i].time_ms;
			einfo[i].node = evs[i].node;
			einfo[i].what = evs[i].what;
			einfo[i].why = evs[i].why;
			eptrs[i] = &einfo[i];
		}
		rep->n_events = n;
		rep->events = eptrs;
		return;
	}
	case PVHA__API_REQUEST__OP__GUEST_CREATE:
	case PVHA__API_REQUEST__OP__GUEST_LIST:
	case PVHA__API_REQUEST__OP__GUEST_SHOW:
	case PVHA__API_REQUEST__OP__GUEST_START:
	case PVHA__API_REQUEST__OP__GUEST_STOP:
	case PVHA__API_REQUEST__OP__GUEST_DELETE:
	case PVHA__API_REQUEST__OP__GUEST_SET:
		guests_api(a, req, rep, msg, msglen);
		return;
	case PVHA__API_REQUEST__OP__NODE_DRAIN:
	case PVHA__API_REQUEST__OP__NODE_RESUME:
	case PVHA__API_REQUEST__OP__GUEST_MIGRATE:
	case PVHA__API_REQUEST__OP__CLUSTER_REBALANCE:
		agent_migrate_api(a, req, rep, msg, msglen);
		return;
	default:
		rep->error = -EINVAL;
		snprintf(msg, msglen, "unknown operation %d", req->op);
	}
}

static int32_t ipc_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	(void)c;
	(void)gid;
	return uid == 0 ? 0 : -EACCES;
}

static void ipc_created(qb_ipcs_connection_t *c)
{
	(void)c;
}

static int32_t ipc_closed(qb_ipcs_connection_t *c)
{
	(void)c;
	return 0;
}

static void ipc_destroyed(qb_ipcs_connection_t *c)
{
	(void)c;
}

static int32_t ipc_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct agent *a = &agent;
	const struct qb_ipc_request_header *rh = data;
	Pvha__ApiReply rep = PVHA__API_REPLY__INIT;
	Pvha__ClusterStatus status = PVHA__CLUSTER_STATUS__INIT;
	static Pvha__NodeInfo infos[PVCLUS_MAX_NODES];
	static Pvha__NodeInfo *ptrs[PVCLUS_MAX_NODES];
	static struct pvstore_event evs[1000];
	static Pvha__EventInfo einfo[1000];
	static Pvha__EventInfo *eptrs[1000];
	char msg[512] = "";
	Pvha__ApiRequest *req = NULL;

	if (size < sizeof(*rh) || (size_t)rh->size != size) {
		rep.error = -EBADMSG;
		snprintf(msg, sizeof(msg), "request frame of %zu bytes is malformed", size);
	} else {
		req = pvha__api_request__unpack(NULL, size - sizeof(*rh), (const uint8_t *)data + sizeof(*rh));
		if (!req) {
			rep.error = -EBADMSG;
			snprintf(msg, sizeof(msg), "request does not decode");
		} else {
			api_handle(a, req, &rep, msg, sizeof(msg), &status, infos, ptrs, evs, einfo, eptrs);
		}
	}
	rep.message = msg;
	size_t len = pvha__api_reply__get_packed_size(&rep);
	uint8_t *buf = malloc(sizeof(struct qb_ipc_response_header) + len);
	if (buf) {
		struct qb_ipc_response_header *h = (struct qb_ipc_response_header *)buf;
		h->id = size >= sizeof(*rh) ? rh->id : 0;
		h->size = (int32_t)(sizeof(*h) + len);
		h->error = 0;
		pvha__api_reply__pack(&rep, buf + sizeof(*h));
		qb_ipcs_response_send(c, buf, sizeof(*h) + len);
		free(buf);
	}
	if (req)
		pvha__api_request__free_unpacked(req, NULL);
	return 0;
}

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(agent.loop, p, data, fn);
}

static int32_t dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(agent.loop, p, fd, evts, data, fn);
}

static int32_t dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(agent.loop, p, fd, evts, data, fn);
}

static int32_t dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(agent.loop, fd);
}

static int start_api(struct agent *a)
{
	static struct qb_ipcs_service_handlers sh = {
		.connection_accept = ipc_accept,
		.connection_created = ipc_created,
		.msg_process = ipc_msg,
		.connection_closed = ipc_closed,
		.connection_destroyed = ipc_destroyed,
	};
	static struct qb_ipcs_poll_handlers ph = {
		.job_add = job_add,
		.dispatch_add = dispatch_add,
		.dispatch_mod = dispatch_mod,
		.dispatch_del = dispatch_del,
	};
	a->ipcs = qb_ipcs_create("pvhad", 0, QB_IPC_SOCKET, &sh);
	if (!a->ipcs)
		return -errno ? -errno : -ENOMEM;
	qb_ipcs_poll_handlers_set(a->ipcs, &ph);
	return qb_ipcs_run(a->ipcs);
}

/* ---- main ---------------------------------------------------------------- */

static int32_t on_signal(int32_t sig, void *data)
{
	struct agent *a = data;
	pvlog_info("signal %d: leaving the cluster", sig);
	qb_loop_stop(a->loop);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pvhad --config FILE\n"
		   "The pvha node agent: joins the cluster through the local corosync, keeps\n"
		   "this node's record in RADOS and serves the control API that `pvha` uses.\n"
		   "  --config FILE   the agent's configuration (keys: docs/lab.md, docs/agent.md)\n"
		   "  --check         read the configuration, report, and exit\n"
		   "  --verbose       log more\n"
		   "  -h, --help      this text\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent *a = &agent;
	const char *config = NULL;
	bool check = false;
	char why[600];
	int c, err;

	pvlog_prog = "pvhad";
	if (getenv("PVHA_DEBUG"))
		pvlog_max_level = PVLOG_DEBUG;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'k': check = true; break;
		case 'v': pvlog_max_level = PVLOG_DEBUG; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!config || optind < argc) {
		usage(stderr);
		return 2;
	}
	err = agent_config_load(config, &a->cfg, why, sizeof(why));
	if (err) {
		fprintf(stderr, "pvhad: %s\n", why);
		return 2;
	}
	if (check) {
		printf("pvhad: %s: node %s, address %s, pool %s\n", config, a->cfg.node_name,
		       a->cfg.address, a->cfg.pool);
		return 0;
	}
	if (a->cfg.log_file[0] && !freopen(a->cfg.log_file, "a", stderr)) {
		fprintf(stdout, "pvhad: log_file %s: %s\n", a->cfg.log_file, strerror(errno));
		return 2;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	err = load_incarnation(a);
	if (err) {
		pvlog_err(err, "incarnation under %s", a->cfg.run_dir);
		return 1;
	}
	a->loop = qb_loop_create();
	if (!a->loop) {
		pvlog_err(-ENOMEM, "qb_loop_create");
		return 1;
	}
	qb_loop_signal_handle sh1, sh2;
	qb_loop_signal_add(a->loop, QB_LOOP_HIGH, SIGTERM, a, on_signal, &sh1);
	qb_loop_signal_add(a->loop, QB_LOOP_HIGH, SIGINT, a, on_signal, &sh2);
	signal(SIGPIPE, SIG_IGN);

	/* Storage first: a node that cannot reach RADOS still joins (and says so). */
	if (connect_storage(a))
		pvlog_warn("running without storage: guests cannot run on this node");
	if (a->st) {
		err = event_queue_start(a->st, a->cfg.node_name, &a->evq);
		if (err) {
			pvlog_err(err, "event log worker");
			return 1;
		}
		qb_loop_poll_add(a->loop, QB_LOOP_MED, event_queue_fd(a->evq), POLLIN, a, on_event_queue);
	}
	guests_start_supervision(a);
	err = guests_init(a);
	if (err)
		pvlog_warn("guests: the registry could not be read (%s); starting with none", strerror(-err));
	err = connect_corosync(a);
	if (err) {
		pvlog_err(err, "corosync: cannot connect (is corosync running?)");
		return 1;
	}
	agent_migrate_init(a); /* after the nodelist: node modes are by name */
	err = start_api(a);
	if (err) {
		pvlog_err(err, "control API");
		return 1;
	}
	pvlog_info("node %s (id %u), incarnation %s, up", a->cfg.node_name, a->local, a->incarnation);
	qb_loop_run(a->loop);

	qb_ipcs_destroy(a->ipcs);
	pvclus_cs_close(a->cs);
	event_queue_stop(a->evq);
	pvstore_disconnect(a->st);
	qb_loop_destroy(a->loop);
	pvlog_info("stopped");
	return 0;
}
