/* pvclus_rebalance_plan and pvclus_imbalance: the score as documented, a
 * skewed cluster brought under the goal and then left alone, hysteresis
 * (threshold, minimum gain, one move per guest), the rules (anti-affinity
 * never broken, soft rules never worse, pinned guests and hard-affinity
 * groups stay), maintenance, determinism, 10,000 guests on 32 nodes, and bad
 * input refused with -EINVAL. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pvcluster/sched.h"

#define GiB (1ull << 30)
#define MiB (1ull << 20)

static void assert_near(double a, double b)
{
	if (fabs(a - b) > 1e-9)
		fail_msg("%.12f != %.12f", a, b);
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static struct pvclus_node node(uint32_t id, uint64_t mem, uint32_t cpu)
{
	struct pvclus_node n = { .id = id, .online = true, .mem_total = mem, .cpu_total = cpu };
	snprintf(n.name, sizeof(n.name), "n%u", id);
	return n;
}

static struct pvclus_sched_guest guest(uint32_t k, uint64_t mem, uint32_t cpu, uint32_t on)
{
	struct pvclus_sched_guest g = { .mem = mem, .cpu = cpu, .node = on };
	g.uuid[12] = (uint8_t)(k >> 24);
	g.uuid[13] = (uint8_t)(k >> 16);
	g.uuid[14] = (uint8_t)(k >> 8);
	g.uuid[15] = (uint8_t)k;
	return g;
}

static struct pvclus_node *find_node(struct pvclus_node *n, size_t nn, uint32_t id)
{
	for (size_t i = 0; i < nn; i++)
		if (n[i].id == id)
			return &n[i];
	fail_msg("no node %u", id);
	return NULL;
}

/* Sets each node's used memory and CPU to the sum of its guests. */
static void fill_used(struct pvclus_node *n, size_t nn, const struct pvclus_sched_guest *g,
		      size_t ng)
{
	for (size_t i = 0; i < nn; i++)
		n[i].mem_used = n[i].cpu_used = 0;
	for (size_t i = 0; i < ng; i++)
		if (g[i].node) {
			struct pvclus_node *x = find_node(n, nn, g[i].node);
			x->mem_used += g[i].mem;
			x->cpu_used += g[i].cpu;
		}
}

/* Makes the planned moves, checking each against the state it meets. */
static void apply_moves(struct pvclus_node *n, size_t nn, struct pvclus_sched_guest *g,
			const struct pvclus_move *m, size_t nm)
{
	for (size_t i = 0; i < nm; i++) {
		struct pvclus_sched_guest *x = &g[m[i].index];
		assert_memory_equal(x->uuid, m[i].uuid, 16);
		assert_int_equal(x->node, m[i].from);
		assert_int_not_equal(m[i].from, m[i].to);
		struct pvclus_node *from = find_node(n, nn, m[i].from), *to = find_node(n, nn, m[i].to);
		assert_true(to->online && !to->fenced && !to->maintenance);
		assert_true(from->online && !from->fenced && !from->maintenance);
		assert_false(x->pinned);
		assert_true(to->mem_used + x->mem <= to->mem_total);
		from->mem_used -= x->mem;
		from->cpu_used -= x->cpu;
		to->mem_used += x->mem;
		to->cpu_used += x->cpu;
		x->node = m[i].to;
		/* a guest moves at most once in a plan */
		for (size_t j = 0; j < i; j++)
			assert_memory_not_equal(m[j].uuid, m[i].uuid, 16);
	}
}

struct plan {
	struct pvclus_move m[4096];
	struct pvclus_rebalance_result r;
	int rc;
};

static struct plan *plan(const struct pvclus_node *n, size_t nn, const struct pvclus_rule *rules,
			 size_t nr, const struct pvclus_sched_guest *g, size_t ng, double threshold,
			 double target, double min_gain, size_t max_moves)
{
	static struct plan p;
	struct pvclus_view v = { n, nn, rules, nr };
	struct pvclus_rebalance_params pr = { threshold, target, min_gain, max_moves };
	memset(&p, 0, sizeof(p));
	assert_true(max_moves <= 4096);
	p.rc = pvclus_rebalance_plan(&v, g, ng, &pr, p.m, &p.r);
	return &p;
}

static struct pvclus_imbalance score(const struct pvclus_node *n, size_t nn)
{
	struct pvclus_view v = { n, nn, NULL, 0 };
	struct pvclus_imbalance im;
	assert_int_equal(pvclus_imbalance(&v, &im), 0);
	return im;
}

/* ---- the score ---------------------------------------------------------- */

static void score_is_the_largest_distance_from_the_cluster_utilisation(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64 * GiB, 32), node(2, 64 * GiB, 32), node(3, 128 * GiB, 64) };
	n[0].mem_used = 48 * GiB; /* 0.75 */
	n[1].mem_used = 16 * GiB; /* 0.25 */
	n[2].mem_used = 64 * GiB; /* 0.5; cluster 128/256 = 0.5 */
	n[0].cpu_used = 8;        /* 0.25 */
	n[1].cpu_used = 8;        /* 0.25 */
	n[2].cpu_used = 48;       /* 0.75; cluster 64/128 = 0.5 */
	struct pvclus_imbalance im = score(n, 3);
	assert_near(im.mem, 0.25);
	assert_near(im.cpu, 0.25);
	assert_near(im.score, 0.25);

	n[2].cpu_used = 32;       /* cluster 48/128 = 0.375: 0.5 is 0.125 off */
	im = score(n, 3);
	assert_near(im.cpu, 0.125);
	assert_near(im.score, 0.25);

	/* only balanced nodes count */
	n[0].maintenance = true;
	im = score(n, 3);
	assert_near(im.mem, 80.0 / 192 - 16.0 / 64); /* cluster 80/192; node 2 at 0.25 */
	n[1].online = false;
	im = score(n, 3);
	assert_near(im.score, 0); /* one node: nothing to balance */
}

/* ---- planning ----------------------------------------------------------- */

static void one_big_move_beats_many_small_ones(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 32 * GiB, 16), node(2, 32 * GiB, 16) };
	struct pvclus_sched_guest g[] = {
		guest(1, 2 * GiB, 0, 1), guest(2, 2 * GiB, 0, 1), guest(3, 8 * GiB, 0, 1),
		guest(4, 2 * GiB, 0, 1), guest(5, 2 * GiB, 0, 1),
	};
	fill_used(n, 2, g, 5);
	struct plan *p = plan(n, 2, NULL, 0, g, 5, 0.1, 0, 0.01, 16);
	assert_int_equal(p->rc, 0);
	assert_near(p->r.before.score, 0.25);
	assert_int_equal(p->r.n_moves, 1);
	assert_int_equal(p->m[0].index, 2);
	assert_int_equal(p->m[0].from, 1);
	assert_int_equal(p->m[0].to, 2);
	assert_near(p->m[0].gain, 0.5); /* 0.25 off each node before, 0 after */
	assert_near(p->r.after.score, 0);
	assert_true(p->r.balanced);
}

static void skewed_start_reaches_the_goal_and_a_second_plan_moves_nothing(void **state)
{
	(void)state;
	enum { NN = 8, NG = 120 };
	struct pvclus_node n[NN];
	struct pvclus_sched_guest g[NG];
	uint64_t r = 7;
	for (uint32_t i = 0; i < NN; i++)
		n[i] = node(i + 1, 128 * GiB, 64);
	for (uint32_t i = 0; i < NG; i++)
		g[i] = guest(1000 + i, (1 + rng(&r) % 4) * GiB, 1 + (uint32_t)(rng(&r) % 2),
			     1 + i % 3); /* everything on nodes 1-3 */
	fill_used(n, NN, g, NG);

	struct plan *p = plan(n, NN, NULL, 0, g, NG, 0.10, 0.05, 0.01, 4096);
	assert_int_equal(p->rc, 0);
	assert_true(p->r.before.score > 0.10);
	assert_true(p->r.balanced);
	assert_true(p->r.after.score <= 0.05);
	assert_true(p->r.n_moves > 0);
	assert_true(p->r.n_moves < NG / 2);
	size_t first = p->r.n_moves;
	apply_moves(n, NN, g, p->m, first);
	struct pvclus_imbalance im = score(n, NN);
	assert_near(im.score, p->r.after.score);

	p = plan(n, NN, NULL, 0, g, NG, 0.10, 0.05, 0.01, 4096);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, 0);
	assert_true(p->r.balanced);
	assert_near(p->r.before.score, im.score);
	assert_near(p->r.after.score, im.score);
}

static void nothing_is_planned_at_or_below_the_threshold(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 100 * GiB, 10), node(2, 100 * GiB, 10) };
	struct pvclus_sched_guest g[] = { guest(1, 28 * GiB, 0, 1), guest(2, 20 * GiB, 0, 2),
					  guest(3, 4 * GiB, 0, 1) };
	fill_used(n, 2, g, 3);
	/* 32% and 20%: 6 points each side of the mean */
	struct plan *p = plan(n, 2, NULL, 0, g, 3, 0.07, 0.01, 0, 8);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, 0);
	assert_true(p->r.balanced);
	/* above it: moves, down to the target (28 and 24: 2 points off) */
	p = plan(n, 2, NULL, 0, g, 3, 0.05, 0.03, 0, 8);
	assert_int_equal(p->r.n_moves, 1);
	assert_int_equal(p->m[0].index, 2);
	assert_true(p->r.balanced);
}

static void moves_gaining_less_than_the_minimum_are_not_planned(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 100 * GiB, 100), node(2, 100 * GiB, 100) };
	struct pvclus_sched_guest g[40];
	for (uint32_t i = 0; i < 40; i++)
		g[i] = guest(i + 1, GiB, 0, i < 30 ? 1 : 2); /* 30% vs 10% */
	fill_used(n, 2, g, 40);
	/* each 1 GiB move gains 2 points (one off each node) */
	struct plan *p = plan(n, 2, NULL, 0, g, 40, 0.055, 0, 0.03, 64);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, 0);
	assert_false(p->r.balanced);
	assert_near(p->r.after.score, p->r.before.score);

	p = plan(n, 2, NULL, 0, g, 40, 0.055, 0, 0.019, 64);
	assert_int_equal(p->r.n_moves, 5); /* 25% vs 15%: 5 points off */
	assert_true(p->r.balanced);
	for (size_t i = 0; i < 5; i++)
		assert_near(p->m[i].gain, 0.02);
}

static void the_number_of_moves_is_capped(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 100 * GiB, 100), node(2, 100 * GiB, 100) };
	struct pvclus_sched_guest g[40];
	for (uint32_t i = 0; i < 40; i++)
		g[i] = guest(i + 1, GiB, 0, 1);
	fill_used(n, 2, g, 40);
	struct plan *p = plan(n, 2, NULL, 0, g, 40, 0.05, 0, 0, 3);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, 3);
	assert_false(p->r.balanced);
	assert_near(p->r.after.score, 0.17);
	p = plan(n, 2, NULL, 0, g, 40, 0.05, 0, 0, 0);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, 0);
}

static void maintenance_and_offline_nodes_are_neither_source_nor_target(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64 * GiB, 16), node(2, 64 * GiB, 16), node(3, 64 * GiB, 16),
				   node(4, 64 * GiB, 16) };
	struct pvclus_sched_guest g[24];
	for (uint32_t i = 0; i < 24; i++)
		g[i] = guest(i + 1, 2 * GiB, 0, i < 12 ? 1 : (i < 20 ? 3 : 4));
	fill_used(n, 4, g, 24);
	n[1].maintenance = true; /* empty, but takes nothing */
	n[2].online = false;     /* full, but cannot be drained by a rebalance */
	struct plan *p = plan(n, 4, NULL, 0, g, 24, 0.05, 0, 0, 64);
	assert_int_equal(p->rc, 0);
	assert_true(p->r.n_moves > 0);
	for (size_t i = 0; i < p->r.n_moves; i++) {
		assert_int_equal(p->m[i].from, 1);
		assert_int_equal(p->m[i].to, 4);
	}
	apply_moves(n, 4, g, p->m, p->r.n_moves);
	assert_true(p->r.balanced);
}

static void pinned_guests_and_hard_affinity_groups_stay(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64 * GiB, 16), node(2, 64 * GiB, 16) };
	struct pvclus_rule rules[] = { { .id = 3, .kind = PVCLUS_RULE_AFFINITY, .hard = true } };
	struct pvclus_sched_guest g[] = { guest(1, 16 * GiB, 0, 1), guest(2, 8 * GiB, 0, 1),
					  guest(3, 8 * GiB, 0, 1), guest(4, 4 * GiB, 0, 1) };
	g[0].pinned = true;
	g[1].rules[0] = g[2].rules[0] = 3;
	fill_used(n, 2, g, 4);
	struct plan *p = plan(n, 2, rules, 1, g, 4, 0.05, 0, 0, 8);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, 1);
	assert_int_equal(p->m[0].index, 3); /* the only one free to go */
	assert_false(p->r.balanced);
}

/* No two members of a hard anti-affinity rule share a node after the plan,
 * and no soft rule has more conflicts than before. */
static unsigned conflicts(const struct pvclus_sched_guest *g, size_t ng, uint32_t rule,
			  enum pvclus_rule_kind kind)
{
	unsigned c = 0;
	for (size_t i = 0; i < ng; i++)
		for (size_t j = i + 1; j < ng; j++) {
			bool in_i = false, in_j = false;
			for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++) {
				in_i |= g[i].rules[k] == rule;
				in_j |= g[j].rules[k] == rule;
			}
			if (!in_i || !in_j)
				continue;
			bool together = g[i].node == g[j].node;
			if (kind == PVCLUS_RULE_ANTI_AFFINITY ? together : !together)
				c++;
		}
	return c;
}

static void rules_are_never_broken_or_made_worse(void **state)
{
	(void)state;
	uint64_t r = 99;
	for (int round = 0; round < 40; round++) {
		enum { NN = 6, NG = 90 };
		struct pvclus_node n[NN];
		struct pvclus_sched_guest g[NG];
		struct pvclus_rule rules[] = {
			{ .id = 1, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true },
			{ .id = 2, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = true },
			{ .id = 3, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = false },
			{ .id = 4, .kind = PVCLUS_RULE_AFFINITY, .hard = false },
		};
		for (uint32_t i = 0; i < NN; i++)
			n[i] = node(i + 1, 96 * GiB, 48);
		uint32_t hard_at[3][NN + 1] = { { 0 } };
		for (uint32_t i = 0; i < NG; i++) {
			uint32_t on = 1 + (uint32_t)(rng(&r) % (1 + round % NN));
			g[i] = guest(i + 1, (1 + rng(&r) % 3) * GiB, (uint32_t)(rng(&r) % 3), on);
			uint32_t rule = (uint32_t)(rng(&r) % 6);
			/* hard anti-affinity members start apart */
			if (rule >= 1 && rule <= 2 && !hard_at[rule][on]) {
				hard_at[rule][on] = 1;
				g[i].rules[0] = rule;
			} else if (rule >= 3 && rule <= 4) {
				g[i].rules[0] = rule;
			}
		}
		fill_used(n, NN, g, NG);
		unsigned soft_anti = conflicts(g, NG, 3, PVCLUS_RULE_ANTI_AFFINITY);
		unsigned soft_aff = conflicts(g, NG, 4, PVCLUS_RULE_AFFINITY);
		struct plan *p = plan(n, NN, rules, 4, g, NG, 0.05, 0, 0.001, 4096);
		assert_int_equal(p->rc, 0);
		apply_moves(n, NN, g, p->m, p->r.n_moves);
		assert_int_equal(conflicts(g, NG, 1, PVCLUS_RULE_ANTI_AFFINITY), 0);
		assert_int_equal(conflicts(g, NG, 2, PVCLUS_RULE_ANTI_AFFINITY), 0);
		assert_true(conflicts(g, NG, 3, PVCLUS_RULE_ANTI_AFFINITY) <= soft_anti);
		assert_true(conflicts(g, NG, 4, PVCLUS_RULE_AFFINITY) <= soft_aff);
		assert_near(score(n, NN).score, p->r.after.score);
	}
}

static void same_plan_whatever_the_input_order(void **state)
{
	(void)state;
	enum { NN = 10, NG = 200 };
	struct pvclus_node n[NN];
	struct pvclus_sched_guest g[NG];
	struct pvclus_rule rules[] = {
		{ .id = 7, .kind = PVCLUS_RULE_ANTI_AFFINITY, .hard = false },
		{ .id = 8, .kind = PVCLUS_RULE_AFFINITY, .hard = false },
	};
	uint64_t r = 5;
	for (uint32_t i = 0; i < NN; i++)
		n[i] = node(i * 7 + 2, (64 + 32 * (i % 3)) * GiB, 32 + 16 * (i % 2));
	for (uint32_t i = 0; i < NG; i++) {
		g[i] = guest((uint32_t)(rng(&r) % 1000000) * 256 + i, (1 + rng(&r) % 8) * 512 * MiB,
			     (uint32_t)(rng(&r) % 4), n[rng(&r) % 4].id);
		if (i % 5 == 0)
			g[i].rules[0] = 7 + (uint32_t)(rng(&r) % 2);
	}
	fill_used(n, NN, g, NG);
	struct plan *p = plan(n, NN, rules, 2, g, NG, 0.05, 0.02, 0.005, 4096);
	assert_int_equal(p->rc, 0);
	assert_true(p->r.n_moves > 0);
	static struct pvclus_move first[4096];
	size_t nm = p->r.n_moves;
	struct pvclus_rebalance_result res = p->r;
	memcpy(first, p->m, nm * sizeof(*first));

	for (size_t i = NN - 1; i > 0; i--) {
		size_t j = rng(&r) % (i + 1);
		struct pvclus_node t = n[i];
		n[i] = n[j];
		n[j] = t;
	}
	for (size_t i = NG - 1; i > 0; i--) {
		size_t j = rng(&r) % (i + 1);
		struct pvclus_sched_guest t = g[i];
		g[i] = g[j];
		g[j] = t;
	}
	struct pvclus_rule t = rules[0];
	rules[0] = rules[1];
	rules[1] = t;
	p = plan(n, NN, rules, 2, g, NG, 0.05, 0.02, 0.005, 4096);
	assert_int_equal(p->rc, 0);
	assert_int_equal(p->r.n_moves, nm);
	assert_true(p->r.after.score == res.after.score); /* bit for bit */
	assert_true(p->r.before.score == res.before.score);
	for (size_t i = 0; i < nm; i++) {
		assert_memory_equal(p->m[i].uuid, first[i].uuid, 16);
		assert_int_equal(p->m[i].from, first[i].from);
		assert_int_equal(p->m[i].to, first[i].to);
		assert_true(p->m[i].gain == first[i].gain);
	}
}

/* The benchmark's cluster (tests/bench/bench_planner.c): 10,000 guests of
 * 256 MiB to 4 GiB on 24 of 32 nodes, the last 8 just added and empty. */
static void ten_thousand_guests_on_32_nodes_are_planned(void **state)
{
	(void)state;
	enum { NN = 32, NG = 10000 };
	static struct pvclus_node n[NN];
	static struct pvclus_sched_guest g[NG];
	static struct pvclus_move m[NG];
	uint64_t r = 2026;
	for (uint32_t i = 0; i < NN; i++)
		n[i] = node(i + 1, 1024 * GiB, 1024);
	for (uint32_t i = 0; i < NG; i++)
		g[i] = guest(i * 2654435761u, (256 * MiB) << (rng(&r) % 5),
			     1u << (rng(&r) % 3), 1 + (uint32_t)(rng(&r) % 24));
	fill_used(n, NN, g, NG);
	struct pvclus_view v = { n, NN, NULL, 0 };
	struct pvclus_rebalance_params pr = { .threshold = 0.10, .target = 0.05, .min_gain = 0.001,
					      .max_moves = NG };
	struct pvclus_rebalance_result res;
	assert_int_equal(pvclus_rebalance_plan(&v, g, NG, &pr, m, &res), 0);
	assert_true(res.before.score > 0.4);
	assert_true(res.balanced);
	assert_true(res.n_moves > 0 && res.n_moves < NG / 4);
	apply_moves(n, NN, g, m, res.n_moves);
	assert_near(score(n, NN).score, res.after.score);
}

/* ---- bad input ---------------------------------------------------------- */

static void bad_params_and_inconsistent_views_are_refused(void **state)
{
	(void)state;
	struct pvclus_node n[] = { node(1, 64 * GiB, 16), node(2, 64 * GiB, 16) };
	struct pvclus_sched_guest g[] = { guest(1, 8 * GiB, 2, 1) };
	fill_used(n, 2, g, 1);
	struct pvclus_view v = { n, 2, NULL, 0 };
	struct pvclus_move m[4];
	struct pvclus_rebalance_result res;
	struct pvclus_rebalance_params ok = { 0.1, 0.05, 0.01, 4 };
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &ok, m, &res), 0);

	struct pvclus_rebalance_params bad[] = {
		{ 0, 0, 0, 4 },          /* threshold 0 */
		{ -0.1, 0, 0, 4 },
		{ NAN, 0, 0, 4 },
		{ INFINITY, 0, 0, 4 },
		{ 0.1, 0.2, 0, 4 },      /* target above the threshold */
		{ 0.1, -0.01, 0, 4 },
		{ 0.1, 0, -0.01, 4 },    /* negative gain */
		{ 0.1, 0, NAN, 4 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &bad[i], m, &res), -EINVAL);
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, NULL, m, &res), -EINVAL);
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &ok, NULL, &res), -EINVAL);
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &ok, m, NULL), -EINVAL);
	assert_int_equal(pvclus_rebalance_plan(NULL, g, 1, &ok, m, &res), -EINVAL);

	/* the node's guests use more than it says */
	n[0].mem_used = 4 * GiB;
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &ok, m, &res), -EINVAL);
	n[0].mem_used = 8 * GiB;
	n[0].cpu_used = 1;
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &ok, m, &res), -EINVAL);
	n[0].cpu_used = 2;
	/* a guest on an unknown node */
	g[0].node = 3;
	assert_int_equal(pvclus_rebalance_plan(&v, g, 1, &ok, m, &res), -EINVAL);

	struct pvclus_imbalance im;
	assert_int_equal(pvclus_imbalance(&v, NULL), -EINVAL);
	assert_int_equal(pvclus_imbalance(NULL, &im), -EINVAL);
	n[1].id = 1;
	assert_int_equal(pvclus_imbalance(&v, &im), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(score_is_the_largest_distance_from_the_cluster_utilisation),
		cmocka_unit_test(one_big_move_beats_many_small_ones),
		cmocka_unit_test(skewed_start_reaches_the_goal_and_a_second_plan_moves_nothing),
		cmocka_unit_test(nothing_is_planned_at_or_below_the_threshold),
		cmocka_unit_test(moves_gaining_less_than_the_minimum_are_not_planned),
		cmocka_unit_test(the_number_of_moves_is_capped),
		cmocka_unit_test(maintenance_and_offline_nodes_are_neither_source_nor_target),
		cmocka_unit_test(pinned_guests_and_hard_affinity_groups_stay),
		cmocka_unit_test(rules_are_never_broken_or_made_worse),
		cmocka_unit_test(same_plan_whatever_the_input_order),
		cmocka_unit_test(ten_thousand_guests_on_32_nodes_are_planned),
		cmocka_unit_test(bad_params_and_inconsistent_views_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
