/*
 * pvclus_agent_snapshot (cluster/agent/snapshot.c): a real agent object,
 * driven through its public inputs (nodelist, quorum, membership, ring), with
 * guest records set in the table directly (they stand for what earlier
 * messages would have made them); the copy says what the agent knows.
 * Nothing runs: the ops are no-ops (agent_quiet.h) and the storage is absent.
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

static void op_log(void *c, enum pvclus_log_level lvl, const char *func, const char *line)
{
	(void)c, (void)lvl, (void)func, (void)line;
}

static const struct pvclus_agent_ops ops = AGENT_QUIET_OPS(op_log);

static void add_guest(struct pvclus_agent *a, size_t slot, uint8_t id, const char *name,
		      enum pvclus_ha_state st, uint32_t owner, uint32_t target)
{
	struct guest *g = &a->g[slot];
	g->used = true;
	g->spec_loaded = name != NULL;
	g->spec.uuid[0] = id;
	if (name)
		snprintf(g->spec.name, sizeof(g->spec.name), "%s", name);
	g->spec.mem_size = 32u << 20;
	pvclus_ha_init(&g->ha);
	g->ha.state = st;
	g->ha.want_running = st != PVCLUS_HA_STOPPED;
	g->ha.owner = owner;
	g->ha.target = target;
}

/* Node 2 of nodes 1..3; 1 and 2 are members of a quorate ring, 3 is gone:
 * node 1 leads. Guests: a running on 2 (its VMM here, pid 4242), b
 * migrating from 1 to 2, c stopped, and one whose spec is unread. */
static void the_copy_says_what_the_agent_knows(void **state)
{
	(void)state;
	struct pvclus_agent *a;
	struct pvclus_agent_config cfg = { .node_name = "n2", .address = "10.9.0.12", .mem_offered = 1u << 30,
					   .cpus_offered = 4 };
	const struct pvclus_cs_node nodes[3] = {
		{ .nodeid = 1, .name = "n1", .addr = "10.9.0.11" },
		{ .nodeid = 2, .name = "n2", .addr = "10.9.0.12" },
		{ .nodeid = 3, .name = "n3", .addr = "10.9.0.13" },
	};
	const uint32_t ids[2] = { 1, 2 };
	assert_int_equal(pvclus_agent_create(&cfg, &ops, NULL, NULL, &a), 0);
	pvclus_agent_set_nodelist(a, 2, nodes, 3);
	pvclus_agent_on_quorum(a, true, 2);
	pvclus_agent_on_members(a, ids, 2, 7);
	pvclus_agent_on_ring(a, ids, 2);
	add_guest(a, 0, 0xa, "a", PVCLUS_HA_RUNNING, 2, 0);
	a->g[0].pid = 4242;
	a->g[0].ha.restarts = 2;
	a->g[0].spec.heartbeat_timeout_s = 15;
	a->g[0].hb.n_resets = 1;
	add_guest(a, 5, 0xb, "b", PVCLUS_HA_MIGRATING, 1, 2);
	add_guest(a, 9, 0xc, "c", PVCLUS_HA_STOPPED, 0, 0);
	add_guest(a, 11, 0xd, NULL, PVCLUS_HA_STARTING, 0, 0);

	struct pvclus_snapshot *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	memset(s, 0xff, sizeof(*s)); /* whatever was there is overwritten */
	pvclus_agent_snapshot(a, s);
	assert_int_equal(s->local, 2);
	assert_int_equal(s->leader, 1);
	assert_true(s->quorate);
	assert_false(s->leads);
	assert_false(s->have_state); /* no table received, no registry read */

	assert_int_equal(s->n_nodes, 3);
	assert_string_equal(s->nodes[0].name, "n1");
	assert_string_equal(s->nodes[2].addr, "10.9.0.13");
	assert_true(s->nodes[0].member && s->nodes[0].in_ring);
	assert_true(s->nodes[1].member);
	assert_false(s->nodes[2].member);
	assert_false(s->nodes[2].in_ring);
	assert_false(s->nodes[2].online);
	assert_false(s->nodes[0].online); /* no hello from n1 yet */
	assert_false(s->nodes[0].fenced);
	assert_string_equal(s->nodes[0].mode, "active");
	assert_int_equal(s->nodes[1].mem_offered, 1u << 30); /* this node's own, from its config */
	assert_int_equal(s->nodes[1].cpus_offered, 4);
	assert_int_equal(s->nodes[0].guests, 1); /* b's source */
	assert_int_equal(s->nodes[1].guests, 2); /* a, and b's target */
	assert_int_equal(s->nodes[2].guests, 0);

	assert_int_equal(s->n_guests, 4); /* table order */
	assert_string_equal(s->guests[0].name, "a");
	assert_int_equal(s->guests[0].uuid[0], 0xa);
	assert_int_equal(s->guests[0].state, PVCLUS_HA_RUNNING);
	assert_int_equal(s->guests[0].owner, 2);
	assert_int_equal(s->guests[0].pid, 4242);
	assert_int_equal(s->guests[0].restarts, 2);
	assert_int_equal(s->guests[0].mem_size, 32u << 20);
	assert_true(s->guests[0].want_running);
	assert_int_equal(s->guests[0].heartbeat_timeout_s, 15);
	assert_int_equal(s->guests[0].heartbeat_resets, 1);
	assert_int_equal(s->guests[1].heartbeat_timeout_s, 0);
	assert_string_equal(s->guests[1].name, "b");
	assert_int_equal(s->guests[1].owner, 1);
	assert_int_equal(s->guests[1].target, 2);
	assert_int_equal(s->guests[1].pid, 0);
	assert_int_equal(s->guests[2].state, PVCLUS_HA_STOPPED);
	assert_false(s->guests[2].want_running);
	assert_string_equal(s->guests[3].name, ""); /* spec unread: no name, no size */
	assert_int_equal(s->guests[3].mem_size, 0);
	assert_int_equal(s->guests[3].uuid[0], 0xd);

	/* n1 said hello: online. Then the ring loses it before CPG does: no
	 * longer online (nothing is placed there), though still a member */
	a->peers[0].hello = true;
	pvclus_agent_snapshot(a, s);
	assert_true(s->nodes[0].online);
	const uint32_t one[1] = { 2 };
	pvclus_agent_on_ring(a, one, 1);
	pvclus_agent_snapshot(a, s);
	assert_true(s->nodes[0].member);
	assert_false(s->nodes[0].in_ring);
	assert_false(s->nodes[0].online);

	/* the member leaves: the next copy says so */
	pvclus_agent_on_members(a, one, 1, 8);
	pvclus_agent_snapshot(a, s);
	assert_false(s->nodes[0].member);
	free(s);
	pvclus_agent_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_copy_says_what_the_agent_knows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
