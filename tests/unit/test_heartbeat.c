/* heartbeat_decide and heartbeat_policy (cluster/agent/heartbeat.c): what the
 * node that runs a guest does when its heartbeat stops — restart in place,
 * move, or error — from its restarts in the window; and which policy is in
 * effect (the guest's, the node's, the defaults). Pure: nothing runs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static const struct hb_policy P = { .timeout_s = 5, .max_resets = 3, .window_s = 600 };

static enum pvclus_ha_heartbeat_step decide(const struct hb_policy *p, const uint64_t *t, size_t n, uint64_t now,
					    bool moved, unsigned *recent)
{
	enum pvclus_ha_heartbeat_step step = 0;
	assert_int_equal(heartbeat_decide(p, t, n, now, moved, &step, recent), 0);
	return step;
}

static void restarts_in_place_until_the_limit_then_moves(void **state)
{
	(void)state;
	uint64_t t[3] = { 100000, 200000, 300000 };
	unsigned recent = 99;
	assert_int_equal(decide(&P, NULL, 0, 400000, false, &recent), PVCLUS_HA_HB_RESTART);
	assert_int_equal(recent, 0);
	assert_int_equal(decide(&P, t, 1, 400000, false, &recent), PVCLUS_HA_HB_RESTART);
	assert_int_equal(recent, 1);
	assert_int_equal(decide(&P, t, 2, 400000, false, &recent), PVCLUS_HA_HB_RESTART);
	assert_int_equal(recent, 2);
	assert_int_equal(decide(&P, t, 3, 400000, false, &recent), PVCLUS_HA_HB_MOVE);
	assert_int_equal(recent, 3);
}

static void after_a_move_the_limit_is_an_error(void **state)
{
	(void)state;
	uint64_t t[3] = { 100000, 200000, 300000 };
	/* moved: the node it moved to still restarts it in place first */
	assert_int_equal(decide(&P, t, 2, 400000, true, NULL), PVCLUS_HA_HB_RESTART);
	assert_int_equal(decide(&P, t, 3, 400000, true, NULL), PVCLUS_HA_HB_ERROR);
}

static void restarts_older_than_the_window_do_not_count(void **state)
{
	(void)state;
	/* window 600 s: at 700 s, a restart at 100 s is exactly 600 s old (out),
	 * one at 100.001 s is still in */
	uint64_t t[3] = { 100000, 200000, 300000 };
	unsigned recent;
	assert_int_equal(decide(&P, t, 3, 700000, false, &recent), PVCLUS_HA_HB_RESTART);
	assert_int_equal(recent, 2);
	t[0] = 100001;
	assert_int_equal(decide(&P, t, 3, 700000, false, &recent), PVCLUS_HA_HB_MOVE);
	assert_int_equal(recent, 3);
	/* all long ago: a fresh start, even after a move */
	assert_int_equal(decide(&P, t, 3, 10000000, true, &recent), PVCLUS_HA_HB_RESTART);
	assert_int_equal(recent, 0);
	/* order does not matter */
	uint64_t u[3] = { 300000, 100001, 200000 };
	assert_int_equal(decide(&P, u, 3, 700000, false, NULL), PVCLUS_HA_HB_MOVE);
}

static void one_reset_allowed_moves_at_the_second_loss(void **state)
{
	(void)state;
	struct hb_policy p = { .timeout_s = 1, .max_resets = 1, .window_s = 1 };
	uint64_t t[1] = { 5000 };
	assert_int_equal(decide(&p, NULL, 0, 5000, false, NULL), PVCLUS_HA_HB_RESTART);
	assert_int_equal(decide(&p, t, 1, 5999, false, NULL), PVCLUS_HA_HB_MOVE);
	assert_int_equal(decide(&p, t, 1, 6000, false, NULL), PVCLUS_HA_HB_RESTART);
	assert_int_equal(decide(&p, t, 1, 5000, true, NULL), PVCLUS_HA_HB_ERROR); /* same ms counts */
}

static void bad_input_is_refused(void **state)
{
	(void)state;
	enum pvclus_ha_heartbeat_step step = PVCLUS_HA_HB_MOVE;
	uint64_t t[HB_HISTORY_MAX + 1] = { 0 };
	struct hb_policy p = P;
	assert_int_equal(heartbeat_decide(NULL, t, 0, 1000, false, &step, NULL), -EINVAL);
	assert_int_equal(heartbeat_decide(&P, t, 0, 1000, false, NULL, NULL), -EINVAL);
	assert_int_equal(heartbeat_decide(&P, NULL, 1, 1000, false, &step, NULL), -EINVAL);
	assert_int_equal(heartbeat_decide(&P, t, HB_HISTORY_MAX + 1, 1000, false, &step, NULL), -EINVAL);
	p.max_resets = 0;
	assert_int_equal(heartbeat_decide(&p, t, 0, 1000, false, &step, NULL), -EINVAL);
	p.max_resets = HB_HISTORY_MAX + 1;
	assert_int_equal(heartbeat_decide(&p, t, 0, 1000, false, &step, NULL), -EINVAL);
	p = P;
	p.window_s = 0;
	assert_int_equal(heartbeat_decide(&p, t, 0, 1000, false, &step, NULL), -EINVAL);
	t[0] = 2000; /* a restart after now */
	assert_int_equal(heartbeat_decide(&P, t, 1, 1000, false, &step, NULL), -EINVAL);
	assert_int_equal(step, PVCLUS_HA_HB_MOVE); /* untouched on refusal */
	/* the full record is fine */
	for (size_t i = 0; i < HB_HISTORY_MAX; i++)
		t[i] = i;
	p = P;
	p.max_resets = HB_HISTORY_MAX;
	assert_int_equal(heartbeat_decide(&p, t, HB_HISTORY_MAX, 1000, false, &step, NULL), 0);
	assert_int_equal(step, PVCLUS_HA_HB_MOVE);
}

static void the_policy_is_the_guests_else_the_nodes_else_the_default(void **state)
{
	(void)state;
	struct pvclus_agent_config cfg;
	struct pvstore_guest spec;
	struct hb_policy p;
	memset(&cfg, 0, sizeof(cfg));
	memset(&spec, 0, sizeof(spec));
	heartbeat_policy(&cfg, &spec, &p);
	assert_int_equal(p.timeout_s, 0); /* off by default */
	assert_int_equal(p.max_resets, PVCLUS_HB_DEFAULT_MAX_RESETS);
	assert_int_equal(p.window_s, PVCLUS_HB_DEFAULT_WINDOW_S);
	assert_int_equal(PVCLUS_HB_DEFAULT_MAX_RESETS, 3);
	assert_int_equal(PVCLUS_HB_DEFAULT_WINDOW_S, 3600);
	cfg.heartbeat_max_resets = 5;
	cfg.heartbeat_window_s = 120;
	spec.heartbeat_timeout_s = 10;
	heartbeat_policy(&cfg, &spec, &p);
	assert_int_equal(p.timeout_s, 10);
	assert_int_equal(p.max_resets, 5);
	assert_int_equal(p.window_s, 120);
	spec.heartbeat_max_resets = 1;
	spec.heartbeat_window_s = 60;
	heartbeat_policy(&cfg, &spec, &p);
	assert_int_equal(p.max_resets, 1);
	assert_int_equal(p.window_s, 60);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(restarts_in_place_until_the_limit_then_moves),
		cmocka_unit_test(after_a_move_the_limit_is_an_error),
		cmocka_unit_test(restarts_older_than_the_window_do_not_count),
		cmocka_unit_test(one_reset_allowed_moves_at_the_second_loss),
		cmocka_unit_test(bad_input_is_refused),
		cmocka_unit_test(the_policy_is_the_guests_else_the_nodes_else_the_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
