/* cluster/placement.c: the scheduler's rules derived from guests' specs (the
 * same ids whatever the order of the specs, hard unless every member is
 * soft), the ids of one guest's rules, which dependency states hold a guest
 * back, the dependency cycle check, and the derived rules driving the real
 * scheduler (a hard anti-affinity group's third member on two nodes is
 * unplaceable with its reason; an affinity pair shares a node). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pvcluster/placement.h"

#define MiB (1ull << 20)
#define MAXS 16

static struct pvstore_guest specs[MAXS];

static struct pvstore_guest *mk(int k, const char *name)
{
	struct pvstore_guest *g = &specs[k];
	memset(g, 0, sizeof(*g));
	g->uuid[0] = 0xa0;
	g->uuid[15] = (uint8_t)k;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->mem_size = 64 * MiB;
	return g;
}

static void rule(struct pvstore_guest *g, const char *group, bool anti, bool soft)
{
	struct pvstore_rule *r = &g->rules[g->n_rules++];
	snprintf(r->group, sizeof(r->group), "%s", group);
	r->anti = anti;
	r->soft = soft;
}

static void depends(struct pvstore_guest *g, const struct pvstore_guest *on)
{
	memcpy(g->depends_on[g->n_depends++], on->uuid, 16);
}

static void rules_are_sorted_and_numbered_from_one(void **state)
{
	(void)state;
	rule(mk(0, "a"), "web", true, false);
	rule(&specs[0], "db", false, true);
	rule(mk(1, "b"), "web", true, true);
	rule(&specs[1], "app", false, false);
	rule(mk(2, "c"), "db", false, true);
	rule(&specs[2], "web", false, false); /* web as affinity too: another rule */
	const struct pvstore_guest *p[] = { &specs[0], NULL, &specs[1], &specs[2] };
	struct placement_rule_def d[8];
	int n = placement_rules_derive(p, 4, d, 8);
	assert_int_equal(n, 4);
	/* affinity first, then by group */
	assert_string_equal(d[0].group, "app");
	assert_false(d[0].anti);
	assert_string_equal(d[1].group, "db");
	assert_false(d[1].anti);
	assert_string_equal(d[2].group, "web");
	assert_false(d[2].anti);
	assert_string_equal(d[3].group, "web");
	assert_true(d[3].anti);
	for (int i = 0; i < n; i++)
		assert_int_equal(d[i].id, (uint32_t)i + 1);
	/* hard unless every member is soft */
	assert_true(d[0].hard);
	assert_false(d[1].hard);
	assert_int_equal(d[1].members, 2);
	assert_true(d[3].hard);
	assert_int_equal(d[3].members, 2);

	struct pvclus_rule r[8];
	placement_rules_to_sched(d, (size_t)n, r);
	assert_int_equal(r[3].id, 4);
	assert_int_equal(r[3].kind, PVCLUS_RULE_ANTI_AFFINITY);
	assert_true(r[3].hard);
	assert_int_equal(r[1].kind, PVCLUS_RULE_AFFINITY);
	assert_false(r[1].hard);

	uint32_t ids[PVCLUS_GUEST_RULES_MAX];
	assert_int_equal(placement_rule_ids(d, (size_t)n, &specs[2], ids), 0);
	assert_int_equal(ids[0], 2);
	assert_int_equal(ids[1], 3);
	assert_int_equal(ids[2], 0);
	assert_int_equal(ids[3], 0);

	struct pvstore_guest *other = mk(3, "d");
	rule(other, "elsewhere", true, false);
	assert_int_equal(placement_rule_ids(d, (size_t)n, other, ids), -ENOENT);
}

static void the_same_specs_in_any_order_give_the_same_ids(void **state)
{
	(void)state;
	const char *groups[] = { "z", "a", "m", "a.b", "A", "_", "m-1" };
	for (int k = 0; k < 7; k++) {
		rule(mk(k, "g"), groups[k], k % 2, k % 3 == 0);
		rule(&specs[k], groups[(k + 3) % 7], (k + 1) % 2, false);
	}
	const struct pvstore_guest *p[7];
	struct placement_rule_def want[32], got[32];
	for (int k = 0; k < 7; k++)
		p[k] = &specs[k];
	int n = placement_rules_derive(p, 7, want, 32);
	assert_true(n > 0);
	/* every rotation and the reversal */
	for (int rot = 1; rot < 7; rot++) {
		for (int k = 0; k < 7; k++)
			p[k] = &specs[(k + rot) % 7];
		assert_int_equal(placement_rules_derive(p, 7, got, 32), n);
		assert_memory_equal(got, want, (size_t)n * sizeof(want[0]));
	}
	for (int k = 0; k < 7; k++)
		p[k] = &specs[6 - k];
	assert_int_equal(placement_rules_derive(p, 7, got, 32), n);
	assert_memory_equal(got, want, (size_t)n * sizeof(want[0]));
}

static void too_many_rules_for_the_room_is_enospc(void **state)
{
	(void)state;
	rule(mk(0, "a"), "g1", false, false);
	rule(&specs[0], "g2", false, false);
	rule(&specs[0], "g3", false, false);
	const struct pvstore_guest *p[] = { &specs[0] };
	struct placement_rule_def d[3];
	assert_int_equal(placement_rules_derive(p, 1, d, 2), -ENOSPC);
	assert_int_equal(placement_rules_derive(p, 1, d, 3), 3);
	specs[0].n_rules = PVSTORE_GUEST_RULES_MAX + 1;
	assert_int_equal(placement_rules_derive(p, 1, d, 3), -EINVAL);
	assert_int_equal(placement_rules_derive(p, 0, d, 3), 0);
}

static void only_a_dependency_on_its_way_up_holds_a_guest_back(void **state)
{
	(void)state;
	struct pvclus_ha_guest h;
	pvclus_ha_init(&h);
	static const struct {
		enum pvclus_ha_state s;
		bool want, blocks;
	} cases[] = {
		{ PVCLUS_HA_STOPPED, false, false },   { PVCLUS_HA_STARTING, true, true },
		{ PVCLUS_HA_RUNNING, true, false },    { PVCLUS_HA_MIGRATING, true, false },
		{ PVCLUS_HA_STOPPING, true, true },    { PVCLUS_HA_STOPPING, false, false },
		{ PVCLUS_HA_FENCE_WAIT, true, true },  { PVCLUS_HA_RECOVERING, true, true },
		{ PVCLUS_HA_ERROR, true, false },      { PVCLUS_HA_ERROR, false, false },
		{ PVCLUS_HA_FENCE_WAIT, false, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		h.state = cases[i].s;
		h.want_running = cases[i].want;
		if (placement_dep_blocks(&h) != cases[i].blocks) {
			print_error("state %s, want_running %d: blocks %d, want %d\n",
				    pvclus_ha_state_str(cases[i].s), cases[i].want, !cases[i].blocks,
				    cases[i].blocks);
			fail();
		}
	}
}

static void a_dependency_cycle_is_found(void **state)
{
	(void)state;
	struct pvstore_guest *a = mk(0, "a"), *b = mk(1, "b"), *c = mk(2, "c"), *d = mk(3, "d");
	depends(b, a);
	depends(c, b);
	const struct pvstore_guest *p[] = { a, b, c, d, NULL };
	uint8_t via[16];

	/* a depends on c: c -> b -> a, a cycle through c */
	struct pvstore_guest a2 = *a;
	depends(&a2, d);
	depends(&a2, c);
	memset(via, 0, 16);
	assert_int_equal(placement_deps_cycle(p, 5, &a2, via), -ELOOP);
	assert_memory_equal(via, c->uuid, 16);

	/* the stored a is replaced by a2, never walked as itself */
	struct pvstore_guest a3 = *a;
	depends(&a3, d);
	assert_int_equal(placement_deps_cycle(p, 5, &a3, NULL), 0);

	/* a diamond is no cycle: d -> b, d -> c, c -> b */
	struct pvstore_guest d2 = *d;
	depends(&d2, b);
	depends(&d2, c);
	assert_int_equal(placement_deps_cycle(p, 5, &d2, NULL), 0);

	/* a dependency on a guest not among the specs ends there */
	struct pvstore_guest e = *mk(4, "e");
	depends(&e, mk(9, "gone"));
	assert_int_equal(placement_deps_cycle(p, 5, &e, NULL), 0);
	assert_int_equal(placement_deps_cycle(p, 0, &e, NULL), 0);
}

/* The derived rules drive the real scheduler: nodes 1..3 with 1 GiB each. */
static void derived_rules_bind_the_scheduler(void **state)
{
	(void)state;
	struct pvclus_node nodes[3];
	for (uint32_t i = 0; i < 3; i++) {
		nodes[i] = (struct pvclus_node){ .id = i + 1, .online = true, .mem_total = 1024 * MiB,
						 .cpu_total = 4 };
		snprintf(nodes[i].name, sizeof(nodes[i].name), "n%u", i + 1);
	}
	nodes[2].online = false; /* n3 is down */
	struct pvstore_guest *aa1 = mk(0, "aa1"), *aa2 = mk(1, "aa2"), *aa3 = mk(2, "aa3");
	struct pvstore_guest *f1 = mk(3, "f1"), *f2 = mk(4, "f2");
	rule(aa1, "ha", true, false);
	rule(aa2, "ha", true, false);
	rule(aa3, "ha", true, false);
	rule(f1, "pair", false, false);
	rule(f2, "pair", false, false);
	const struct pvstore_guest *p[] = { aa1, aa2, aa3, f1, f2 };
	struct placement_rule_def d[8];
	struct pvclus_rule r[8];
	int n = placement_rules_derive(p, 5, d, 8);
	assert_int_equal(n, 2);
	placement_rules_to_sched(d, (size_t)n, r);

	/* aa1 runs on n1, aa2 on n2; aa3, f1 and f2 to place */
	struct pvclus_sched_guest g[5];
	memset(g, 0, sizeof(g));
	for (int i = 0; i < 5; i++) {
		memcpy(g[i].uuid, p[i]->uuid, 16);
		g[i].mem = p[i]->mem_size;
		g[i].cpu = 1;
		assert_int_equal(placement_rule_ids(d, (size_t)n, p[i], g[i].rules), 0);
	}
	g[0].node = 1;
	g[1].node = 2;
	nodes[0].mem_used = nodes[1].mem_used = 64 * MiB;
	nodes[1].mem_used += 256 * MiB; /* n2 has more free memory: f1 alone would go to n1 */
	struct pvclus_view v = { nodes, 3, r, (size_t)n };
	struct pvclus_placement out[5];
	size_t nout = 0;
	assert_int_equal(pvclus_sched_place(&v, g, 5, out, &nout), 0);
	assert_int_equal(nout, 3);
	uint32_t where[5] = { 1, 2, 0, 0, 0 };
	for (size_t i = 0; i < nout; i++) {
		where[out[i].index] = out[i].node;
		if (out[i].index == 2)
			assert_int_equal(out[i].reason, PVCLUS_SCHED_ANTI_AFFINITY);
	}
	assert_int_equal(where[2], 0);
	assert_int_not_equal(where[3], 0);
	assert_int_equal(where[3], where[4]);
}

static int reset(void **state)
{
	(void)state;
	memset(specs, 0, sizeof(specs));
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(rules_are_sorted_and_numbered_from_one, reset),
		cmocka_unit_test_setup(the_same_specs_in_any_order_give_the_same_ids, reset),
		cmocka_unit_test_setup(too_many_rules_for_the_room_is_enospc, reset),
		cmocka_unit_test_setup(only_a_dependency_on_its_way_up_holds_a_guest_back, reset),
		cmocka_unit_test_setup(a_dependency_cycle_is_found, reset),
		cmocka_unit_test_setup(derived_rules_bind_the_scheduler, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
