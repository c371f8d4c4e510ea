/*
 * Who may send which cluster message (cluster/agent/rules.c, docs/agent.md
 * "Who may send what"): every rule, accepted and refused, on a real agent
 * object driven through its public inputs (nodelist, quorum, membership,
 * ring, deliveries). Guest records are set in the table directly: they stand
 * for what earlier messages would have made them. Nothing runs: the ops are
 * no-ops, and the storage is absent.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "agent_quiet.h"

/* ---- a quiet agent ---------------------------------------------------------- */

struct ctx {
	char last_warn[512]; /* the last "message dropped" warning */
	unsigned warns;      /* how many of them */
};

static void op_log(void *c, enum pvclus_log_level lvl, const char *func, const char *line)
{
	struct ctx *x = c;
	(void)func;
	if (lvl == PVCLUS_LOG_WARN && strstr(line, " dropped: ")) {
		snprintf(x->last_warn, sizeof(x->last_warn), "%s", line);
		x->warns++;
	}
}

static const struct pvclus_agent_ops ops = AGENT_QUIET_OPS(op_log);

struct fx {
	struct ctx c;
	struct pvclus_agent *a;
};

static const uint8_t UUID[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
				  0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };

/* Node 2 of a cluster of nodes 1..3, all members of a quorate ring: node 1
 * leads. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct pvclus_agent_config cfg = { .node_name = "n2", .address = "10.9.0.12" };
	const struct pvclus_cs_node nodes[3] = {
		{ .nodeid = 1, .name = "n1", .addr = "10.9.0.11" },
		{ .nodeid = 2, .name = "n2", .addr = "fd00::12" },
		{ .nodeid = 3, .name = "n3", .addr = "n3.example" },
	};
	const uint32_t ids[3] = { 1, 2, 3 };
	assert_non_null(f);
	assert_int_equal(pvclus_agent_create(&cfg, &ops, &f->c, NULL, &f->a), 0);
	pvclus_agent_set_nodelist(f->a, 2, nodes, 3);
	pvclus_agent_on_quorum(f->a, true, 3);
	pvclus_agent_on_members(f->a, ids, 3, 7);
	pvclus_agent_on_ring(f->a, ids, 3);
	assert_int_equal(pvclus_agent_leader(f->a), 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	pvclus_agent_destroy(f->a);
	free(f);
	return 0;
}

/* A guest in the table with this record. */
static struct guest *add_guest(struct pvclus_agent *a, const struct pvclus_ha_guest *ha)
{
	struct guest *g = &a->g[0];
	g->used = true;
	memcpy(g->spec.uuid, UUID, 16);
	snprintf(g->spec.name, sizeof(g->spec.name), "g1");
	g->ha = *ha;
	return g;
}

static int check(struct fx *f, uint32_t from, const Pvha__ClusterMsg *m)
{
	char why[200] = "";
	int r = agent_msg_check(f->a, from, m, why, sizeof(why));
	/* a refusal always says why; an acceptance says nothing */
	if (r)
		assert_true(why[0] != '\0');
	else
		assert_string_equal(why, "");
	return r;
}

/* m carries e: one event of the test guest. */
static void event_msg(Pvha__ClusterMsg *m, Pvha__GuestEvent *e, enum pvclus_ha_event_type type, uint32_t node)
{
	pvha__cluster_msg__init(m);
	pvha__guest_event__init(e);
	e->uuid.data = (uint8_t *)UUID;
	e->uuid.len = 16;
	e->type = (uint32_t)type;
	e->node = node;
	m->body_case = PVHA__CLUSTER_MSG__BODY_GUEST_EVENT;
	m->guest_event = e;
}

static int event(struct fx *f, uint32_t from, enum pvclus_ha_event_type type, uint32_t node)
{
	Pvha__ClusterMsg m;
	Pvha__GuestEvent e;
	event_msg(&m, &e, type, node);
	return check(f, from, &m);
}

/* ---- every kind: the sender must be a configured node ------------------------- */

static void test_hello(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeHello h = PVHA__NODE_HELLO__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_HELLO;
	m.hello = &h;
	assert_int_equal(check(f, 3, &m), 0);
	assert_int_equal(check(f, 2, &m), 0);
	assert_int_equal(check(f, 9, &m), -EPERM); /* not in the nodelist */
}

static void test_guest_add(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__GuestAdd g = PVHA__GUEST_ADD__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_GUEST_ADD;
	m.guest_add = &g;
	assert_int_equal(check(f, 3, &m), 0); /* any member's API */
	assert_int_equal(check(f, 1, &m), 0);
	assert_int_equal(check(f, 0, &m), -EPERM);
}

static void test_unknown_kind(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	assert_int_equal(check(f, 1, &m), -EPERM); /* no body */
}

/* ---- GuestEvent, per event type -------------------------------------------------- */

static void test_event_requests(void **state)
{
	struct fx *f = *state;
	/* a user's request: any member, naming no node */
	enum pvclus_ha_event_type t[] = { PVCLUS_HA_EV_START_REQ, PVCLUS_HA_EV_STOP_REQ, PVCLUS_HA_EV_DELETE_REQ };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(event(f, 3, t[i], 0), 0);
		assert_int_equal(event(f, 1, t[i], 0), 0);
		assert_int_equal(event(f, 3, t[i], 3), -EPERM);
		assert_int_equal(event(f, 7, t[i], 0), -EPERM); /* not a configured node */
	}
}

static void test_event_leader_only(void **state)
{
	struct fx *f = *state;
	enum pvclus_ha_event_type t[] = { PVCLUS_HA_EV_PLACED, PVCLUS_HA_EV_UNPLACEABLE, PVCLUS_HA_EV_NODE_DRAIN };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(event(f, 1, t[i], 3), 0);
		assert_int_equal(event(f, 3, t[i], 3), -EPERM);
		assert_int_equal(event(f, 2, t[i], 2), -EPERM);
	}
	/* node 1's agent leaves: node 2 leads, and node 1 may no longer place */
	const uint32_t ids[2] = { 2, 3 };
	pvclus_agent_on_members(f->a, ids, 2, 8);
	assert_int_equal(pvclus_agent_leader(f->a), 2);
	assert_int_equal(event(f, 2, PVCLUS_HA_EV_PLACED, 3), 0);
	assert_int_equal(event(f, 1, PVCLUS_HA_EV_PLACED, 3), -EPERM);
	/* no quorum: no leader, nobody places */
	pvclus_agent_on_quorum(f->a, false, 2);
	assert_int_equal(pvclus_agent_leader(f->a), 0);
	assert_int_equal(event(f, 2, PVCLUS_HA_EV_PLACED, 3), -EPERM);
}

static void test_event_node_reports(void **state)
{
	struct fx *f = *state;
	enum pvclus_ha_event_type t[] = { PVCLUS_HA_EV_STARTED,	      PVCLUS_HA_EV_START_FAILED,
					  PVCLUS_HA_EV_STOPPED,	      PVCLUS_HA_EV_VMM_EXITED,
					  PVCLUS_HA_EV_MIGRATE_HANDED_OVER, PVCLUS_HA_EV_MIGRATE_DONE,
					  PVCLUS_HA_EV_MIGRATE_FAILED };
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(event(f, 3, t[i], 3), 0);
		assert_int_equal(event(f, 2, t[i], 2), 0);
		assert_int_equal(event(f, 1, t[i], 3), -EPERM); /* not even the leader speaks for node 3 */
		assert_int_equal(event(f, 3, t[i], 0), -EPERM);
	}
}

static void test_event_migrate_start(void **state)
{
	struct fx *f = *state;
	assert_int_equal(event(f, 3, PVCLUS_HA_EV_MIGRATE_START, 2), 0); /* a user's `guest migrate` */
	assert_int_equal(event(f, 1, PVCLUS_HA_EV_MIGRATE_START, 3), 0); /* the leader's drain */
	assert_int_equal(event(f, 3, PVCLUS_HA_EV_MIGRATE_START, 5), -EPERM); /* no such node */
	assert_int_equal(event(f, 3, PVCLUS_HA_EV_MIGRATE_START, 0), -EPERM);
}

static void test_event_local_only(void **state)
{
	struct fx *f = *state;
	/* derived by each agent, never sent: refused from anyone, the leader too */
	enum pvclus_ha_event_type t[] = { PVCLUS_HA_EV_RUN_STABLE,    PVCLUS_HA_EV_NODE_LEFT,
					  PVCLUS_HA_EV_NODE_FENCED,   PVCLUS_HA_EV_QUORUM_LOST,
					  PVCLUS_HA_EV_QUORUM_REGAINED, PVCLUS_HA_EV_DEADLINE };
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(event(f, 1, t[i], 3), -EPERM);
		assert_int_equal(event(f, 3, t[i], 3), -EPERM);
	}
	assert_int_equal(event(f, 1, PVCLUS_HA_EV_COUNT, 0), -EPERM);
	assert_int_equal(event(f, 1, (enum pvclus_ha_event_type)1000, 0), -EPERM);
}

/* ---- NodeFenced -------------------------------------------------------------------- */

static int fenced(struct fx *f, uint32_t from, uint32_t node, bool unfenced, const char *addr)
{
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeFenced nf = PVHA__NODE_FENCED__INIT;
	nf.nodeid = node;
	nf.unfenced = unfenced;
	nf.addr = (char *)addr;
	m.body_case = PVHA__CLUSTER_MSG__BODY_NODE_FENCED;
	m.node_fenced = &nf;
	return check(f, from, &m);
}

static void test_node_fenced(void **state)
{
	struct fx *f = *state;
	for (int u = 0; u < 2; u++) {
		assert_int_equal(fenced(f, 1, 3, u, "10.9.0.13"), 0);
		assert_int_equal(fenced(f, 2, 3, u, ""), -EPERM);    /* not the leader */
		assert_int_equal(fenced(f, 3, 3, u, ""), -EPERM);    /* itself, not the leader */
		assert_int_equal(fenced(f, 1, 1, u, ""), 0);         /* the leader itself: back with no guest */
		assert_int_equal(fenced(f, 1, 9, u, ""), -EPERM);    /* no such node */
		/* about this node (2): from any member, since this node's own
		 * view of the leader may be the stale one */
		assert_int_equal(fenced(f, 3, 2, u, ""), 0);
		assert_int_equal(fenced(f, 1, 2, u, ""), 0);
		assert_int_equal(fenced(f, 2, 2, u, ""), -EPERM);    /* itself, not the leader */
	}
}

/* ---- GuestTable ------------------------------------------------------------------------ */

static void test_table(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__GuestTable t = PVHA__GUEST_TABLE__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_TABLE;
	m.table = &t;
	assert_int_equal(check(f, 1, &m), 0);
	assert_int_equal(check(f, 3, &m), 0);
	assert_int_equal(check(f, 2, &m), 0); /* its own (ignored anyway) */
	f->a->peers[agent_node_index(f->a, 3)].fenced = true;
	assert_int_equal(check(f, 3, &m), -EPERM); /* a fenced node's table is stale */
	assert_int_equal(check(f, 1, &m), 0);
	assert_int_equal(check(f, 4, &m), -EPERM);
	/* ... unless this node waits for a table and the sender's hello says it
	 * has state and reaches the storage: then this view of its fence is the
	 * stale one (it missed the unfence; random seed 2207) */
	struct peer *p3 = &f->a->peers[agent_node_index(f->a, 3)];
	p3->hello = true;
	p3->has_state = true;
	p3->storage_bad = false;
	f->a->awaiting = false;
	assert_int_equal(check(f, 3, &m), -EPERM); /* not waiting: the rule holds */
	f->a->awaiting = true;
	assert_int_equal(check(f, 3, &m), 0);
	p3->storage_bad = true; /* still blocklisted by its own account */
	assert_int_equal(check(f, 3, &m), -EPERM);
	p3->storage_bad = false;
	p3->has_state = false; /* nothing to offer */
	assert_int_equal(check(f, 3, &m), -EPERM);
	p3->has_state = true;
	p3->hello = false; /* not heard since it came back */
	assert_int_equal(check(f, 3, &m), -EPERM);
	/* a sender outside this agent's CPG membership: at a heal the new
	 * ring's messages may come before the membership (random seed 8073) */
	p3->fenced = false;
	const uint32_t two[2] = { 1, 2 };
	pvclus_agent_on_members(f->a, two, 2, 8);
	assert_int_equal(check(f, 3, &m), -EPERM);
	assert_int_equal(check(f, 1, &m), 0);
}

/* ---- NodeMode -------------------------------------------------------------------------- */

static int mode(struct fx *f, uint32_t from, uint32_t node, uint32_t md)
{
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeMode nm = PVHA__NODE_MODE__INIT;
	nm.nodeid = node;
	nm.mode = md;
	m.body_case = PVHA__CLUSTER_MSG__BODY_NODE_MODE;
	m.node_mode = &nm;
	return check(f, from, &m);
}

static void test_node_mode(void **state)
{
	struct fx *f = *state;
	/* drain and resume: any member's API, about any node */
	assert_int_equal(mode(f, 3, 2, NODE_DRAINING), 0);
	assert_int_equal(mode(f, 3, 2, NODE_ACTIVE), 0);
	assert_int_equal(mode(f, 1, 3, NODE_DRAINING), 0);
	/* maintenance: the leader, once a drain is done */
	assert_int_equal(mode(f, 1, 3, NODE_MAINTENANCE), 0);
	assert_int_equal(mode(f, 3, 3, NODE_MAINTENANCE), -EPERM);
	assert_int_equal(mode(f, 1, 3, 3), -EPERM);  /* no such mode */
	assert_int_equal(mode(f, 1, 8, NODE_ACTIVE), -EPERM); /* no such node */
}

/* ---- migrations ------------------------------------------------------------------------ */

static int ready(struct fx *f, uint32_t from, uint32_t target, const uint8_t *uuid)
{
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__MigrateReady r = PVHA__MIGRATE_READY__INIT;
	r.uuid.data = (uint8_t *)uuid;
	r.uuid.len = uuid ? 16 : 0;
	r.target = target;
	r.addr = "10.9.0.13";
	r.port = 4444;
	m.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_READY;
	m.migrate_ready = &r;
	return check(f, from, &m);
}

static void test_migrate_ready(void **state)
{
	struct fx *f = *state;
	struct pvclus_ha_guest ha = { .state = PVCLUS_HA_MIGRATING, .want_running = true, .owner = 1, .target = 3 };
	assert_int_equal(ready(f, 3, 3, UUID), -EPERM); /* no such guest yet */
	struct guest *g = add_guest(f->a, &ha);
	assert_int_equal(ready(f, 3, 3, UUID), 0);
	assert_int_equal(ready(f, 2, 3, UUID), -EPERM); /* speaks for the target */
	assert_int_equal(ready(f, 2, 2, UUID), -EPERM); /* not the record's target */
	assert_int_equal(ready(f, 1, 1, UUID), -EPERM); /* the source, or the leader */
	assert_int_equal(ready(f, 3, 3, NULL), -EPERM);
	g->ha.handed_over = true;
	assert_int_equal(ready(f, 3, 3, UUID), -EPERM); /* too late: the lock is gone */
	g->ha.handed_over = false;
	g->ha.state = PVCLUS_HA_RUNNING;
	g->ha.target = 0;
	assert_int_equal(ready(f, 3, 3, UUID), -EPERM); /* not migrating */
}

static void test_migrate_progress(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__MigrateProgress p = PVHA__MIGRATE_PROGRESS__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_PROGRESS;
	m.migrate_progress = &p;
	p.source = 3;
	p.target = 1;
	assert_int_equal(check(f, 3, &m), 0);
	assert_int_equal(check(f, 1, &m), -EPERM); /* the target, or the leader */
	assert_int_equal(check(f, 2, &m), -EPERM);
}

static void test_migrate_request(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__MigrateRequest r = PVHA__MIGRATE_REQUEST__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST;
	m.migrate_request = &r;
	r.target = 3;
	assert_int_equal(check(f, 2, &m), 0);
	assert_int_equal(check(f, 1, &m), 0);
	r.target = 6;
	assert_int_equal(check(f, 1, &m), -EPERM);
}

/* ---- through the agent's input: dropped, logged, without effect ------------------------------- */

static void deliver(struct fx *f, uint32_t from, Pvha__ClusterMsg *m)
{
	m->version = 1;
	size_t len = pvha__cluster_msg__get_packed_size(m);
	uint8_t *buf = malloc(len + 1);
	assert_non_null(buf);
	pvha__cluster_msg__pack(m, buf);
	pvclus_agent_on_deliver(f->a, from, buf, len);
	free(buf);
}

static void test_deliver_drops(void **state)
{
	struct fx *f = *state;
	/* node 3 sends the table (node 2 joined without state): node 2 takes it */
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__GuestTable t = PVHA__GUEST_TABLE__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_TABLE;
	m.table = &t;
	deliver(f, 3, &m);
	assert_true(f->a->have_state);

	/* node 3 claims node 1 fenced: dropped, with one line naming both */
	Pvha__NodeFenced nf = PVHA__NODE_FENCED__INIT;
	nf.nodeid = 1;
	nf.addr = "10.66.6.6";
	m = (Pvha__ClusterMsg)PVHA__CLUSTER_MSG__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_NODE_FENCED;
	m.node_fenced = &nf;
	unsigned warns = f->c.warns;
	deliver(f, 3, &m);
	assert_int_equal(f->c.warns, warns + 1);
	assert_non_null(strstr(f->c.last_warn, "NodeFenced from node n3 (3) dropped"));
	assert_false(f->a->peers[agent_node_index(f->a, 1)].fenced);
	assert_int_equal(pvclus_agent_leader(f->a), 1);

	/* the leader fences node 3: taken, and its addr is not the fence's */
	nf.nodeid = 3;
	nf.addr = "10.66.6.6";
	warns = f->c.warns;
	deliver(f, 1, &m);
	assert_int_equal(f->c.warns, warns);
	assert_true(f->a->peers[agent_node_index(f->a, 3)].fenced);
	assert_string_not_equal(f->a->peers[agent_node_index(f->a, 3)].addr, "10.66.6.6");

	/* a hello from outside the nodelist */
	Pvha__NodeHello h = PVHA__NODE_HELLO__INIT;
	m = (Pvha__ClusterMsg)PVHA__CLUSTER_MSG__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_HELLO;
	m.hello = &h;
	warns = f->c.warns;
	deliver(f, 12, &m);
	assert_int_equal(f->c.warns, warns + 1);
	assert_non_null(strstr(f->c.last_warn, "NodeHello from node ? (12) dropped"));
}

/* A joiner holds what comes before its table and replays it after: a leader's
 * message is judged by who led when it was delivered (as every other agent
 * judged it then), not by who leads at the replay. */
static void test_replay_judged_at_delivery(void **state)
{
	struct fx *f = *state;
	Pvha__ClusterMsg m;
	Pvha__GuestEvent e;
	event_msg(&m, &e, PVCLUS_HA_EV_PLACED, 3);
	assert_true(f->a->awaiting);
	/* node 3 (not the leader) places it on itself, then node 1 (the leader) on node 3 */
	deliver(f, 3, &m);
	deliver(f, 1, &m);
	assert_int_equal(f->a->nheld, 2);
	/* node 1's agent leaves before the table comes: node 2 leads now */
	const uint32_t ids[2] = { 2, 3 };
	pvclus_agent_on_members(f->a, ids, 2, 8);
	assert_int_equal(pvclus_agent_leader(f->a), 2);

	/* the table: the guest waits for a node */
	Pvha__HaRecord r = PVHA__HA_RECORD__INIT;
	Pvha__HaRecord *rp = &r;
	uint32_t fence[2] = { 0, 0 };
	r.uuid.data = (uint8_t *)UUID;
	r.uuid.len = 16;
	r.state = PVCLUS_HA_STARTING;
	r.want_running = true;
	r.max_start_failures = 3;
	r.max_restarts = 3;
	r.n_fence = 2;
	r.fence = fence;
	Pvha__GuestTable t = PVHA__GUEST_TABLE__INIT;
	t.n_guests = 1;
	t.guests = &rp;
	m = (Pvha__ClusterMsg)PVHA__CLUSTER_MSG__INIT;
	m.body_case = PVHA__CLUSTER_MSG__BODY_TABLE;
	m.table = &t;
	unsigned warns = f->c.warns;
	deliver(f, 3, &m);
	assert_false(f->a->awaiting);
	/* node 3's placement dropped (it led neither then nor now), node 1's taken */
	assert_int_equal(f->c.warns, warns + 1);
	assert_non_null(strstr(f->c.last_warn, "GuestEvent from node n3 (3) dropped"));
	struct guest *g = guests_find(f->a, UUID);
	assert_non_null(g);
	assert_int_equal(g->ha.state, PVCLUS_HA_STARTING);
	assert_int_equal(g->ha.owner, 3);
	/* after the replay, the leader is the leader now */
	assert_int_equal(event(f, 1, PVCLUS_HA_EV_PLACED, 3), -EPERM);
	assert_int_equal(event(f, 2, PVCLUS_HA_EV_PLACED, 3), 0);
}

/* ---- fence addresses: the nodelist's ring0_addr ------------------------------------------------- */

static void test_fence_addr(void **state)
{
	struct fx *f = *state;
	char out[64];
	agent_fence_addr(f->a, agent_node_index(f->a, 1), out, sizeof(out));
	assert_string_equal(out, "10.9.0.11");
	agent_fence_addr(f->a, agent_node_index(f->a, 2), out, sizeof(out));
	assert_string_equal(out, "fd00::12");
	/* a name is not what the storage blocklists: the node record says */
	agent_fence_addr(f->a, agent_node_index(f->a, 3), out, sizeof(out));
	assert_string_equal(out, "");
	/* a hello's address changes nothing */
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeHello h = PVHA__NODE_HELLO__INIT;
	h.name = "n1";
	h.addr = "10.66.6.6";
	m.body_case = PVHA__CLUSTER_MSG__BODY_HELLO;
	m.hello = &h;
	deliver(f, 1, &m);
	agent_fence_addr(f->a, agent_node_index(f->a, 1), out, sizeof(out));
	assert_string_equal(out, "10.9.0.11");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_add, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_leader_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_node_reports, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_migrate_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_local_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_fenced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_node_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_ready, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_drops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_judged_at_delivery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_addr, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
