/* pvclus_sched_place, _recovery and _evacuate: priority order, most free
 * memory, ties, which nodes are eligible, affinity and anti-affinity (hard
 * and soft), unplaceable guests reported with their reason, the same answer
 * whatever the order of the input, and bad input refused with -EINVAL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pvcluster/sched.h"

#define GiB (1ull << 30)
#define MAXG 256

static struct pvclus_node node(uint32_t id, uint64_t total_gib, uint64_t used_gib)
{
	struct pvclus_node n = {
		.id = id, .online = true,
		.mem_total = total_gib * GiB, .mem_used = used_gib * GiB,
		.cpu_total = 32, .cpu_used = 0,
	};
	snprintf(n.name, sizeof(n.name), "n%u", id);
	return n;
}

/* Guest k: its uuid sorts as k does. */
static struct pvclus_sched_guest guest(uint32_t k, uint64_t mem_gib, int32_t prio)
{
	struct pvclus_sched_guest g = { .mem = mem_gib * GiB, .cpu = 1, .priority = prio };
	g.uuid[12] = (uint8_t)(k >> 24);
	g.uuid[13] = (uint8_t)(k >> 16);
	g.uuid[14] = (uint8_t)(k >> 8);
	g.uuid[15] = (uint8_t)k;
	return g;
}

static uint32_t uuid_k(const uint8_t u[16])
{
	return (uint32_t)u[12] << 24 | (uint32_t)u[13] << 16 | (uint32_t)u[14] << 8 | u[15];
}

struct run {
	struct pvclus_placement p[MAXG];
	size_t n;
	int rc;
};

static struct run place(const struct pvclus_node *nodes, size_t nn, const struct pvclus_rule *rules,
			size_t nr, const struct pvclus_sched_guest *g, size_t ng)
{
	struct pvclus_view v = { nodes, nn, rules, nr };
	struct run r;
	memset(&r, 0, sizeof(r));
	r.rc = pvclus_sched_place(&v, g, ng, r.p, &r.n);
	return r;
}

/* Where guest k went (0: unplaceable); fails if it was not placed at all. */
static uint32_t where(const struct run *r, uint32_t k)
{
	for (size_t i = 0; i < r->n; i++)
		if (uuid_k(r->p[i].uuid) == k)
			return r->p[i].node;
	fail_msg("guest %u not in the result", k);
	return 0;
}

static enum pvclus_sched_reason why(const struct run *r, uint32_t k)
{
	for (size_t i = 0; i < r->n; i++)
		if (uuid_k(r->p[i].uuid) == k)
			return r->p[i].reason;
	fail_msg("guest %u not in the result", k);
	return PVCLUS_SCHED_OK;
}

/* ---- order and choice --------------------------------------------------- */

static void highest_priority_is_placed_first_then_by_uuid(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 8, 0) };
	/* room for two of the three: priority decides who is left out */
	struct pvclus_sched_guest g[] = { guest(3, 4, 0), guest(2, 4, 10), guest(1, 4, 0) };
	struct run r = place(n, 1, NULL, 0, g, 3);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.n, 3);
	assert_int_equal(uuid_k(r.p[0].uuid), 2); /* decision order */
	assert_int_equal(uuid_k(r.p[1].uuid), 1);
	assert_int_equal(uuid_k(r.p[2].uuid), 3);
	assert_int_equal(r.p[0].index, 1);
	assert_int_equal(where(&r, 2), 1);
	assert_int_equal(where(&r, 1), 1);
	assert_int_equal(where(&r, 3), 0);
	assert_int_equal(why(&r, 3), PVCLUS_SCHED_NO_MEMORY);
}

static void the_node_with_most_free_memory_wins_ties_to_lowest_id(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(7, 64, 10), node(3, 64, 40), node(5, 32, 0) };
	struct pvclus_sched_guest g[] = { guest(1, 1, 0) };
	struct run r = place(n, 3, NULL, 0, g, 1);
	assert_int_equal(r.rc, 0);
	assert_int_equal(where(&r, 1), 7); /* 54 GiB free beats 32 and 24 */

	struct pvclus_node t[] = { node(9, 64, 32), node(4, 32, 0), node(6, 48, 16) };
	r = place(t, 3, NULL, 0, g, 1);
	assert_int_equal(where(&r, 1), 4); /* all have 32 GiB free */
}

static void memory_placed_in_the_same_call_counts(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 16, 0), node(2, 12, 0) };
	struct pvclus_sched_guest g[] = { guest(1, 8, 0), guest(2, 8, 0), guest(3, 8, 0) };
	struct run r = place(n, 2, NULL, 0, g, 3);
	assert_int_equal(where(&r, 1), 1); /* 16 free */
	assert_int_equal(where(&r, 2), 2); /* 8 vs 12 free */
	assert_int_equal(where(&r, 3), 1); /* 8 vs 4 free */
}

static void offline_fenced_and_maintenance_nodes_take_nothing(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 0), node(2, 64, 0), node(3, 64, 0), node(4, 8, 0) };
	n[0].online = false;
	n[1].fenced = true;
	n[2].maintenance = true;
	struct pvclus_sched_guest g[] = { guest(1, 4, 0), guest(2, 4, 0), guest(3, 4, 0) };
	struct run r = place(n, 4, NULL, 0, g, 3);
	assert_int_equal(where(&r, 1), 4);
	assert_int_equal(where(&r, 2), 4);
	assert_int_equal(where(&r, 3), 0);
	assert_int_equal(why(&r, 3), PVCLUS_SCHED_NO_MEMORY);

	n[3].maintenance = true;
	r = place(n, 4, NULL, 0, g, 1);
	assert_int_equal(where(&r, 1), 0);
	assert_int_equal(why(&r, 1), PVCLUS_SCHED_NO_NODE);

	r = place(NULL, 0, NULL, 0, g, 1);
	assert_int_equal(r.rc, 0);
	assert_int_equal(why(&r, 1), PVCLUS_SCHED_NO_NODE);
}

static void overcommitted_node_has_no_free_memory(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 8, 12) }; /* used > total after a failover */
	struct pvclus_sched_guest g[] = { guest(1, 1, 0) };
	struct run r = place(n, 1, NULL, 0, g, 1);
	assert_int_equal(why(&r, 1), PVCLUS_SCHED_NO_MEMORY);
}

static void running_guests_stay_and_only_unplaced_ones_are_placed(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 8), node(2, 64, 0) };
	struct pvclus_sched_guest g[] = { guest(1, 8, 0), guest(2, 8, 0) };
	g[0].node = 1;
	struct run r = place(n, 2, NULL, 0, g, 2);
	assert_int_equal(r.n, 1);
	assert_int_equal(where(&r, 2), 2);
}

static void the_avoided_node_is_used_only_when_nothing_else_fits(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 0), node(2, 16, 0) };
	struct pvclus_sched_guest g[] = { guest(1, 4, 0) };
	g[0].avoid = 1;
	struct run r = place(n, 2, NULL, 0, g, 1);
	assert_int_equal(where(&r, 1), 2);
	g[0].mem = 32 * GiB;
	r = place(n, 2, NULL, 0, g, 1);
	assert_int_equal(where(&r, 1), 1);
}

/* ---- rules -------------------------------------------------------------- */

static void hard_anti_affinity_never_shares_a_node(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 4), node(2, 32, 0), node(3, 16, 0) };
	struct pvclus_rule rules[] = { { .id = 5, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true } };
	struct pvclus_sched_guest g[] = { guest(1, 4, 0), guest(2, 4, 0), guest(3, 4, 0),
					  guest(4, 4, 0) };
	for (int i = 0; i < 4; i++)
		g[i].rules[0] = 5;
	g[0].node = 1; /* a member already runs on 1 */
	struct run r = place(n, 3, rules, 1, g, 4);
	assert_int_equal(r.rc, 0);
	assert_int_equal(where(&r, 2), 2);
	assert_int_equal(where(&r, 3), 3);
	assert_int_equal(where(&r, 4), 0); /* every node holds one */
	assert_int_equal(why(&r, 4), PVCLUS_SCHED_ANTI_AFFINITY);
}

static void soft_anti_affinity_prefers_spreading_but_allows_sharing(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 0), node(2, 16, 0) };
	struct pvclus_rule rules[] = { { .id = 5, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = false } };
	struct pvclus_sched_guest g[] = { guest(1, 4, 0), guest(2, 4, 0), guest(3, 4, 0) };
	for (int i = 0; i < 3; i++)
		g[i].rules[0] = 5;
	struct run r = place(n, 2, rules, 1, g, 3);
	assert_int_equal(where(&r, 1), 1);
	assert_int_equal(where(&r, 2), 2); /* less memory, but no member there */
	assert_int_equal(where(&r, 3), 1); /* both hold one: most free memory */
}

static void hard_affinity_follows_the_running_member(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 16, 8), node(2, 64, 0) };
	struct pvclus_rule rules[] = { { .id = 9, .kind = PVCLUS_RULE_AFFINITY, .hard = true } };
	struct pvclus_sched_guest g[] = { guest(1, 8, 0), guest(2, 4, 0), guest(3, 8, 0) };
	for (int i = 0; i < 3; i++)
		g[i].rules[0] = 9;
	g[0].node = 1;
	struct run r = place(n, 2, rules, 1, g, 3);
	assert_int_equal(where(&r, 2), 1); /* with its group, not on the emptier node */
	assert_int_equal(where(&r, 3), 0); /* node 1 is full */
	assert_int_equal(why(&r, 3), PVCLUS_SCHED_AFFINITY);

	/* the group's node goes into maintenance: nowhere to go */
	n[0].maintenance = true;
	r = place(n, 2, rules, 1, g, 3);
	assert_int_equal(why(&r, 2), PVCLUS_SCHED_AFFINITY);

	/* no member runs yet: the first one chooses, the others follow */
	struct pvclus_node m[] = { node(1, 16, 0), node(2, 64, 0) };
	g[0].node = 0;
	r = place(m, 2, rules, 1, g, 3);
	assert_int_equal(where(&r, 1), 2);
	assert_int_equal(where(&r, 2), 2);
	assert_int_equal(where(&r, 3), 2);
}

static void soft_affinity_prefers_the_group_node(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 16, 8), node(2, 64, 0) };
	struct pvclus_rule rules[] = { { .id = 9, .kind = PVCLUS_RULE_AFFINITY, .hard = false } };
	struct pvclus_sched_guest g[] = { guest(1, 8, 0), guest(2, 4, 0), guest(3, 8, 0) };
	for (int i = 0; i < 3; i++)
		g[i].rules[0] = 9;
	g[0].node = 1;
	struct run r = place(n, 2, rules, 1, g, 3);
	assert_int_equal(where(&r, 2), 1);
	assert_int_equal(where(&r, 3), 2); /* does not fit there: placed anyway */
	assert_int_equal(why(&r, 3), PVCLUS_SCHED_OK);
}

/* ---- recovery and evacuation -------------------------------------------- */

static void recovery_places_the_fenced_node_guests_by_priority(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 24), node(2, 16, 0), node(3, 16, 8) };
	n[0].fenced = true;
	n[0].online = false;
	struct pvclus_sched_guest g[] = { guest(1, 8, 1), guest(2, 8, 5), guest(3, 8, 3),
					  guest(4, 8, 0), guest(5, 2, 9) };
	g[0].node = g[1].node = g[2].node = 1;
	g[3].node = 3; /* runs elsewhere: stays */
	/* g[4] is not running: not this call's business */
	struct pvclus_view v = { n, 3, NULL, 0 };
	struct pvclus_placement p[5];
	size_t np;
	assert_int_equal(pvclus_sched_recovery(&v, g, 5, 1, p, &np), 0);
	assert_int_equal(np, 3);
	assert_int_equal(uuid_k(p[0].uuid), 2); /* priority 5 */
	assert_int_equal(p[0].node, 2);
	assert_int_equal(uuid_k(p[1].uuid), 3); /* priority 3: 8 free on both, lower id */
	assert_int_equal(p[1].node, 2);
	assert_int_equal(uuid_k(p[2].uuid), 1); /* priority 1 */
	assert_int_equal(p[2].node, 3);

	/* not fenced: no recovery */
	n[0].fenced = false;
	assert_int_equal(pvclus_sched_recovery(&v, g, 5, 1, p, &np), -EINVAL);
	assert_int_equal(np, 0);
	assert_int_equal(pvclus_sched_recovery(&v, g, 5, 42, p, &np), -EINVAL);
	assert_int_equal(pvclus_sched_recovery(&v, g, 5, 0, p, &np), -EINVAL);
}

static void recovery_keeps_hard_anti_affinity_with_the_survivors(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 8), node(2, 64, 8), node(3, 64, 4) };
	n[0].fenced = true;
	struct pvclus_rule rules[] = { { .id = 1, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true } };
	struct pvclus_sched_guest g[] = { guest(1, 4, 0), guest(2, 4, 0), guest(3, 4, 0) };
	for (int i = 0; i < 3; i++)
		g[i].rules[0] = 1;
	g[0].node = 1;
	g[1].node = 2;
	g[2].node = 1; /* already broken on the dead node: both need new homes */
	struct pvclus_view v = { n, 3, rules, 1 };
	struct pvclus_placement p[3];
	size_t np;
	assert_int_equal(pvclus_sched_recovery(&v, g, 3, 1, p, &np), 0);
	assert_int_equal(np, 2);
	assert_int_equal(p[0].node, 3);
	assert_int_equal(p[1].node, 0);
	assert_int_equal(p[1].reason, PVCLUS_SCHED_ANTI_AFFINITY);
}

static void evacuation_moves_a_draining_node_guests_elsewhere(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 12), node(2, 64, 30), node(3, 64, 0) };
	n[0].maintenance = true;
	struct pvclus_rule rules[] = { { .id = 1, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true } };
	struct pvclus_sched_guest g[] = { guest(1, 4, 0), guest(2, 8, 0), guest(3, 4, 0) };
	g[0].node = g[1].node = 1;
	g[2].node = 3;
	g[0].rules[0] = g[2].rules[0] = 1; /* 1 must not join 3 */
	struct pvclus_view v = { n, 3, rules, 1 };
	struct pvclus_placement p[3];
	size_t np;
	assert_int_equal(pvclus_sched_evacuate(&v, g, 3, 1, p, &np), 0);
	assert_int_equal(np, 2);
	assert_int_equal(uuid_k(p[0].uuid), 1);
	assert_int_equal(p[0].node, 2);
	assert_int_equal(uuid_k(p[1].uuid), 2);
	assert_int_equal(p[1].node, 3);

	n[0].maintenance = false;
	assert_int_equal(pvclus_sched_evacuate(&v, g, 3, 1, p, &np), -EINVAL);
}

/* ---- determinism -------------------------------------------------------- */

static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static void same_answer_whatever_the_input_order(void **state)
{
	(void)state;
	uint64_t r = 42;
	for (int round = 0; round < 50; round++) {
		struct pvclus_node n[12];
		struct pvclus_sched_guest g[120];
		struct pvclus_rule rules[4] = {
			{ .id = 10, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true },
			{ .id = 11, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = false },
			{ .id = 12, .kind = PVCLUS_RULE_AFFINITY, .hard = true },
			{ .id = 13, .kind = PVCLUS_RULE_AFFINITY, .hard = false },
		};
		size_t nn = 3 + rng(&r) % 10, ng = 10 + rng(&r) % 110;
		for (size_t i = 0; i < nn; i++) {
			n[i] = node((uint32_t)(i * 3 + 1), 16 + rng(&r) % 4 * 16, rng(&r) % 16);
			n[i].online = rng(&r) % 8 != 0;
			n[i].maintenance = rng(&r) % 10 == 0;
		}
		for (size_t i = 0; i < ng; i++) {
			g[i] = guest((uint32_t)(rng(&r) % 100000) * 128 + (uint32_t)i, 1 + rng(&r) % 4,
				     (int32_t)(rng(&r) % 4));
			if (rng(&r) % 3 == 0)
				g[i].rules[0] = 10 + (uint32_t)(rng(&r) % 4);
			if (rng(&r) % 4 == 0)
				g[i].node = n[rng(&r) % nn].id;
			if (rng(&r) % 5 == 0)
				g[i].avoid = n[rng(&r) % nn].id;
		}
		struct run a = place(n, nn, rules, 4, g, ng);
		assert_int_equal(a.rc, 0);

		/* shuffle nodes, rules and guests */
		for (size_t i = nn - 1; i > 0; i--) {
			size_t j = rng(&r) % (i + 1);
			struct pvclus_node t = n[i];
			n[i] = n[j];
			n[j] = t;
		}
		for (size_t i = ng - 1; i > 0; i--) {
			size_t j = rng(&r) % (i + 1);
			struct pvclus_sched_guest t = g[i];
			g[i] = g[j];
			g[j] = t;
		}
		struct pvclus_rule t = rules[0];
		rules[0] = rules[3];
		rules[3] = t;
		struct run b = place(n, nn, rules, 4, g, ng);
		assert_int_equal(b.rc, 0);
		assert_int_equal(a.n, b.n);
		for (size_t i = 0; i < a.n; i++) {
			assert_memory_equal(a.p[i].uuid, b.p[i].uuid, 16);
			assert_int_equal(a.p[i].node, b.p[i].node);
			assert_int_equal(a.p[i].reason, b.p[i].reason);
			/* index points at the same guest in the shuffled array */
			assert_memory_equal(g[b.p[i].index].uuid, b.p[i].uuid, 16);
		}

		/* and the hard rules hold in the result */
		for (size_t i = 0; i < b.n; i++) {
			const struct pvclus_sched_guest *x = &g[b.p[i].index];
			if (!b.p[i].node || x->rules[0] != 10)
				continue;
			for (size_t j = 0; j < ng; j++) {
				uint32_t at = g[j].node;
				for (size_t k = 0; k < b.n; k++)
					if (b.p[k].index == j)
						at = b.p[k].node;
				if (j != b.p[i].index && g[j].rules[0] == 10)
					assert_int_not_equal(at, b.p[i].node);
			}
		}
	}
}

/* ---- bad input ---------------------------------------------------------- */

static void bad_views_and_guests_are_refused(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64, 0), node(2, 64, 0) };
	struct pvclus_rule rules[] = { { .id = 5, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true } };
	struct pvclus_sched_guest g[] = { guest(1, 4, 0), guest(2, 4, 0) };
	struct run r = place(n, 2, rules, 1, g, 2);
	assert_int_equal(r.rc, 0);

	struct pvclus_node bn[2];
	memcpy(bn, n, sizeof(n));
	bn[1].id = 1; /* duplicate id */
	assert_int_equal(place(bn, 2, rules, 1, g, 2).rc, -EINVAL);
	memcpy(bn, n, sizeof(n));
	bn[0].id = 0;
	assert_int_equal(place(bn, 2, rules, 1, g, 2).rc, -EINVAL);
	memcpy(bn, n, sizeof(n));
	bn[0].mem_total = 0;
	assert_int_equal(place(bn, 2, rules, 1, g, 2).rc, -EINVAL);
	memcpy(bn, n, sizeof(n));
	bn[0].cpu_total = 0;
	assert_int_equal(place(bn, 2, rules, 1, g, 2).rc, -EINVAL);

	struct pvclus_rule br[2] = { rules[0], rules[0] }; /* duplicate rule id */
	assert_int_equal(place(n, 2, br, 2, g, 2).rc, -EINVAL);
	br[0].id = 0;
	assert_int_equal(place(n, 2, br, 1, g, 2).rc, -EINVAL);
	br[0] = rules[0];
	br[0].kind = (enum pvclus_rule_kind)7;
	assert_int_equal(place(n, 2, br, 1, g, 2).rc, -EINVAL);

	struct pvclus_sched_guest bg[2];
	memcpy(bg, g, sizeof(g));
	memcpy(bg[1].uuid, bg[0].uuid, 16); /* duplicate uuid */
	assert_int_equal(place(n, 2, rules, 1, bg, 2).rc, -EINVAL);
	memcpy(bg, g, sizeof(g));
	bg[0].mem = 0;
	assert_int_equal(place(n, 2, rules, 1, bg, 2).rc, -EINVAL);
	memcpy(bg, g, sizeof(g));
	bg[0].node = 3; /* unknown node */
	assert_int_equal(place(n, 2, rules, 1, bg, 2).rc, -EINVAL);
	memcpy(bg, g, sizeof(g));
	bg[0].rules[1] = 6; /* unknown rule */
	assert_int_equal(place(n, 2, rules, 1, bg, 2).rc, -EINVAL);
	memcpy(bg, g, sizeof(g));
	bg[0].rules[0] = bg[0].rules[2] = 5; /* named twice */
	assert_int_equal(place(n, 2, rules, 1, bg, 2).rc, -EINVAL);

	struct pvclus_view v = { n, 2, rules, 1 };
	struct pvclus_placement p[2];
	size_t np = 9;
	assert_int_equal(pvclus_sched_place(NULL, g, 2, p, &np), -EINVAL);
	assert_int_equal(np, 0);
	assert_int_equal(pvclus_sched_place(&v, NULL, 2, p, &np), -EINVAL);
	assert_int_equal(pvclus_sched_place(&v, g, 2, NULL, &np), -EINVAL);
	assert_int_equal(pvclus_sched_place(&v, g, 2, p, NULL), -EINVAL);
	struct pvclus_view nv = { NULL, 2, NULL, 0 };
	assert_int_equal(pvclus_sched_place(&nv, g, 2, p, &np), -EINVAL);
	assert_int_equal(pvclus_sched_place(&v, g, 0, NULL, &np), 0);
	assert_int_equal(np, 0);

	assert_string_not_equal(pvclus_sched_reason_str(PVCLUS_SCHED_ANTI_AFFINITY), "?");
	assert_string_equal(pvclus_sched_reason_str(PVCLUS_SCHED_REASON_COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(highest_priority_is_placed_first_then_by_uuid),
		cmocka_unit_test(the_node_with_most_free_memory_wins_ties_to_lowest_id),
		cmocka_unit_test(memory_placed_in_the_same_call_counts),
		cmocka_unit_test(offline_fenced_and_maintenance_nodes_take_nothing),
		cmocka_unit_test(overcommitted_node_has_no_free_memory),
		cmocka_unit_test(running_guests_stay_and_only_unplaced_ones_are_placed),
		cmocka_unit_test(the_avoided_node_is_used_only_when_nothing_else_fits),
		cmocka_unit_test(hard_anti_affinity_never_shares_a_node),
		cmocka_unit_test(soft_anti_affinity_prefers_spreading_but_allows_sharing),
		cmocka_unit_test(hard_affinity_follows_the_running_member),
		cmocka_unit_test(soft_affinity_prefers_the_group_node),
		cmocka_unit_test(recovery_places_the_fenced_node_guests_by_priority),
		cmocka_unit_test(recovery_keeps_hard_anti_affinity_with_the_survivors),
		cmocka_unit_test(evacuation_moves_a_draining_node_guests_elsewhere),
		cmocka_unit_test(same_answer_whatever_the_input_order),
		cmocka_unit_test(bad_views_and_guests_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
