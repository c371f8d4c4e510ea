/* pvclus_ha_step: every transition of the HA state machine, every refused
 * (state, event) pair leaving the record as it was, and the "never two
 * copies" invariants — the latter checked over long random walks against a
 * model of which nodes may run the guest or hold its lock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pvcluster/ha.h"

/* ---- helpers ------------------------------------------------------------ */

static struct pvclus_ha_guest base(void)
{
	struct pvclus_ha_guest g;
	pvclus_ha_init(&g);
	return g;
}

static struct pvclus_ha_guest in_state(enum pvclus_ha_state st, uint32_t owner)
{
	struct pvclus_ha_guest g = base();
	g.state = st;
	g.owner = owner;
	g.want_running = st != PVCLUS_HA_STOPPED;
	if (st == PVCLUS_HA_RECOVERING)
		g.fenced = 9;
	if (st == PVCLUS_HA_ERROR)
		g.reason = PVCLUS_HA_R_CRASH_LIMIT;
	return g;
}

static struct pvclus_ha_guest migrating(uint32_t src, uint32_t dst, bool handed_over)
{
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_MIGRATING, src);
	g.target = dst;
	g.handed_over = handed_over;
	return g;
}

static struct pvclus_ha_guest fence_wait(uint32_t node, uint32_t peer, bool peer_is_source)
{
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_FENCE_WAIT, 0);
	g.fence[0] = node;
	g.peer = peer;
	g.peer_is_source = peer_is_source;
	return g;
}

static struct pvclus_ha_event ev(enum pvclus_ha_event_type t, uint32_t node)
{
	return (struct pvclus_ha_event){ .type = t, .node = node };
}

/* The number of actions of this kind (and node, unless node is ~0u). */
static unsigned count_act(const struct pvclus_ha_actions *a, enum pvclus_ha_action_kind k,
			  uint32_t node)
{
	unsigned c = 0;
	for (unsigned i = 0; i < a->n; i++)
		if (a->a[i].kind == k && (node == ~0u || a->a[i].node == node))
			c++;
	return c;
}

static const struct pvclus_ha_action *find_act(const struct pvclus_ha_actions *a,
					       enum pvclus_ha_action_kind k)
{
	for (unsigned i = 0; i < a->n; i++)
		if (a->a[i].kind == k)
			return &a->a[i];
	return NULL;
}

static enum pvclus_ha_reason log_reason(const struct pvclus_ha_actions *a)
{
	const struct pvclus_ha_action *l = find_act(a, PVCLUS_HA_ACT_LOG);
	return l ? l->reason : PVCLUS_HA_R_NONE;
}

/* Applies e to *g in place, asserting success; returns the actions. */
static struct pvclus_ha_actions apply(struct pvclus_ha_guest *g, struct pvclus_ha_event e)
{
	struct pvclus_ha_actions out;
	struct pvclus_ha_guest next;
	assert_int_equal(pvclus_ha_step(g, &e, &next, &out), 0);
	assert_int_equal(pvclus_ha_check(&next), 0);
	*g = next;
	return out;
}

/* Asserts that e is refused in g and changes nothing. */
static void refused(struct pvclus_ha_guest g, struct pvclus_ha_event e)
{
	struct pvclus_ha_actions out = { .n = 99 };
	struct pvclus_ha_guest next = base();
	next.owner = 1234;
	assert_int_equal(pvclus_ha_step(&g, &e, &next, &out), -EINVAL);
	assert_true(pvclus_ha_equal(&next, &g));
	assert_int_equal(out.n, 0);
}

/* ---- the life of a guest ------------------------------------------------ */

static void start_request_asks_for_a_placement(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = base();
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_true(g.want_running);
	assert_int_equal(g.owner, 0);
	assert_int_equal(a.n, 3);
	assert_int_equal(a.a[0].kind, PVCLUS_HA_ACT_PERSIST);
	assert_int_equal(a.a[1].kind, PVCLUS_HA_ACT_LOG);
	assert_int_equal(a.a[1].reason, PVCLUS_HA_R_START_REQUESTED);
	assert_int_equal(a.a[2].kind, PVCLUS_HA_ACT_PLACE);
	assert_int_equal(a.a[2].node, 0);
}

static void placement_starts_on_that_node_and_started_is_running(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 0);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_PLACED, 2));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 2);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, 2), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_PLACED);

	a = apply(&g, ev(PVCLUS_HA_EV_STARTED, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 2);
	assert_int_equal(g.target, 0);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PERSIST, ~0u), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_STARTED);
}

static void failed_start_is_placed_again_avoiding_the_node_then_error(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 0);
	g.max_start_failures = 2;
	apply(&g, ev(PVCLUS_HA_EV_PLACED, 1));
	struct pvclus_ha_event f = ev(PVCLUS_HA_EV_START_FAILED, 1);
	f.err = -EIO;
	struct pvclus_ha_actions a = apply(&g, f);
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 0);
	assert_int_equal(g.avoid, 1);
	assert_int_equal(g.start_failures, 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, 1), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_START_FAILED);
	assert_int_equal(find_act(&a, PVCLUS_HA_ACT_LOG)->err, -EIO);

	apply(&g, ev(PVCLUS_HA_EV_PLACED, 2));
	f.node = 2;
	a = apply(&g, f);
	assert_int_equal(g.state, PVCLUS_HA_ERROR);
	assert_int_equal(g.reason, PVCLUS_HA_R_START_FAILED_LIMIT);
	assert_int_equal(g.err, -EIO);
	assert_int_equal(g.owner, 0);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_START_FAILED_LIMIT);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);

	/* a start request clears the error and starts over */
	a = apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.start_failures, 0);
	assert_int_equal(g.reason, PVCLUS_HA_R_NONE);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
}

static void a_successful_start_forgets_earlier_failures(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 3);
	g.start_failures = 2;
	g.busy_failures = 7;
	apply(&g, ev(PVCLUS_HA_EV_STARTED, 3));
	assert_int_equal(g.start_failures, 0);
	assert_int_equal(g.busy_failures, 0);
}

/* A lock held elsewhere (-EBUSY) or a silent storage (-ETIMEDOUT) says
 * nothing about the guest: those failures have their own, longer limit
 * (the leader paces them), and do not use up the guest's own. */
static void busy_or_timed_out_starts_have_their_own_longer_limit(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RECOVERING, 0);
	g.want_running = true;
	assert_true(pvclus_ha_transient(-EBUSY));
	assert_true(pvclus_ha_transient(-ETIMEDOUT));
	assert_false(pvclus_ha_transient(-EIO));
	assert_false(pvclus_ha_transient(-ESHUTDOWN));
	for (unsigned i = 1; i < PVCLUS_HA_MAX_BUSY_FAILURES; i++) {
		uint32_t node = 1 + i % 3;
		apply(&g, ev(PVCLUS_HA_EV_PLACED, node));
		struct pvclus_ha_event f = ev(PVCLUS_HA_EV_START_FAILED, node);
		f.err = i % 2 ? -EBUSY : -ETIMEDOUT;
		struct pvclus_ha_actions a = apply(&g, f);
		assert_int_equal(g.state, PVCLUS_HA_RECOVERING);
		assert_int_equal(g.owner, 0);
		assert_int_equal(g.start_failures, 0);
		assert_int_equal(g.busy_failures, i);
		assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, node), 1);
		assert_int_equal(pvclus_ha_check(&g), 0);
	}
	/* one of the guest's own resets the busy row and counts */
	apply(&g, ev(PVCLUS_HA_EV_PLACED, 2));
	struct pvclus_ha_event f = ev(PVCLUS_HA_EV_START_FAILED, 2);
	f.err = -EIO;
	apply(&g, f);
	assert_int_equal(g.busy_failures, 0);
	assert_int_equal(g.start_failures, 1);
	/* and a full row of busy ones is an error, with the last error */
	for (unsigned i = 1; i <= PVCLUS_HA_MAX_BUSY_FAILURES; i++) {
		apply(&g, ev(PVCLUS_HA_EV_PLACED, 3));
		f = ev(PVCLUS_HA_EV_START_FAILED, 3);
		f.err = -EBUSY;
		struct pvclus_ha_actions a = apply(&g, f);
		if (i < PVCLUS_HA_MAX_BUSY_FAILURES) {
			assert_int_equal(g.state, PVCLUS_HA_RECOVERING);
			continue;
		}
		assert_int_equal(g.state, PVCLUS_HA_ERROR);
		assert_int_equal(g.reason, PVCLUS_HA_R_START_FAILED_LIMIT);
		assert_int_equal(g.err, -EBUSY);
		assert_int_equal(log_reason(&a), PVCLUS_HA_R_START_FAILED_LIMIT);
	}
	assert_int_equal(pvclus_ha_check(&g), 0);
	/* a start request starts over */
	apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_int_equal(g.busy_failures, 0);
	/* a record past the limit is refused */
	struct pvclus_ha_guest bad = g;
	bad.busy_failures = PVCLUS_HA_MAX_BUSY_FAILURES + 1;
	assert_int_equal(pvclus_ha_check(&bad), -EINVAL);
}

static void unplaceable_is_logged_with_the_reason_and_waits(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 0), before = g;
	struct pvclus_ha_event e = ev(PVCLUS_HA_EV_UNPLACEABLE, 0);
	e.detail = 2;
	struct pvclus_ha_actions a = apply(&g, e);
	assert_true(pvclus_ha_equal(&g, &before));
	assert_int_equal(a.n, 1);
	assert_int_equal(a.a[0].kind, PVCLUS_HA_ACT_LOG);
	assert_int_equal(a.a[0].reason, PVCLUS_HA_R_UNPLACEABLE);
	assert_int_equal(a.a[0].detail, 2);

	/* the deadline and a regained quorum ask the scheduler again */
	a = apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_REGAINED, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
	assert_true(pvclus_ha_equal(&g, &before));
}

static void stop_of_a_running_guest_goes_through_stopping(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_false(g.want_running);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 1), 1);
	assert_false(find_act(&a, PVCLUS_HA_ACT_STOP)->force);

	/* a deadline forces it */
	a = apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_true(find_act(&a, PVCLUS_HA_ACT_STOP)->force);

	a = apply(&g, ev(PVCLUS_HA_EV_STOPPED, 1));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);
	assert_int_equal(g.owner, 0);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_STOPPED);
}

static void stop_while_starting_stops_on_the_placed_node(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 0);
	apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);

	g = in_state(PVCLUS_HA_STARTING, 2);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 2), 1);
}

static void start_request_while_stopping_places_it_again_after_the_stop(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STOPPING, 1);
	g.want_running = false;
	apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_true(g.want_running);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_STOPPED, 1));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
}

static void stuck_start_is_aborted_and_counted_before_placing_again(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 2);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0));
	/* node 2 may hold the lock: it must say it stopped before anything
	 * else starts */
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_int_equal(g.owner, 2);
	assert_true(g.want_running);
	assert_int_equal(g.start_failures, 1);
	assert_true(find_act(&a, PVCLUS_HA_ACT_STOP)->force);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);

	a = apply(&g, ev(PVCLUS_HA_EV_STOPPED, 2));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, 2), 1);

	/* at the limit, the stop ends in error */
	g = in_state(PVCLUS_HA_STARTING, 2);
	g.max_start_failures = 1;
	apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0));
	apply(&g, ev(PVCLUS_HA_EV_STOPPED, 2));
	assert_int_equal(g.state, PVCLUS_HA_ERROR);
	assert_int_equal(g.reason, PVCLUS_HA_R_START_FAILED_LIMIT);
}

static void crash_restarts_in_place_up_to_the_limit_then_error(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	g.max_restarts = 2;
	struct pvclus_ha_event crash = ev(PVCLUS_HA_EV_VMM_EXITED, 1);
	crash.crashed = true;
	for (int i = 1; i <= 2; i++) {
		struct pvclus_ha_actions a = apply(&g, crash);
		assert_int_equal(g.state, PVCLUS_HA_STARTING);
		assert_int_equal(g.owner, 1); /* in place: node 1 keeps the lock */
		assert_int_equal(g.restarts, i);
		assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, 1), 1);
		assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
		assert_int_equal(log_reason(&a), PVCLUS_HA_R_CRASH_RESTART);
		apply(&g, ev(PVCLUS_HA_EV_STARTED, 1));
	}
	struct pvclus_ha_actions a = apply(&g, crash);
	assert_int_equal(g.state, PVCLUS_HA_ERROR);
	assert_int_equal(g.reason, PVCLUS_HA_R_CRASH_LIMIT);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RELEASE_LOCK, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, ~0u), 0);

	/* a stop request clears the error */
	apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);
	assert_int_equal(g.reason, PVCLUS_HA_R_NONE);
}

static void no_restarts_policy_goes_to_error_at_the_first_crash(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	g.max_restarts = 0;
	struct pvclus_ha_event crash = ev(PVCLUS_HA_EV_VMM_EXITED, 1);
	crash.crashed = true;
	apply(&g, crash);
	assert_int_equal(g.state, PVCLUS_HA_ERROR);
}

static void a_stable_run_resets_the_restart_count(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	g.restarts = 2;
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_RUN_STABLE, 0));
	assert_int_equal(g.restarts, 0);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_RUN_STABLE);
	/* nothing to reset: nothing to do */
	a = apply(&g, ev(PVCLUS_HA_EV_RUN_STABLE, 0));
	assert_int_equal(a.n, 0);
}

static void guest_power_off_is_a_stop_not_a_crash(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 3);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_VMM_EXITED, 3));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);
	assert_false(g.want_running);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RELEASE_LOCK, 3), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_GUEST_POWERED_OFF);
}

static void delete_only_when_no_copy_runs(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = base();
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_DELETE_REQ, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_DELETE, ~0u), 1);
	g = in_state(PVCLUS_HA_ERROR, 0);
	a = apply(&g, ev(PVCLUS_HA_EV_DELETE_REQ, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_DELETE, ~0u), 1);
	refused(in_state(PVCLUS_HA_RUNNING, 1), ev(PVCLUS_HA_EV_DELETE_REQ, 0));
	refused(in_state(PVCLUS_HA_STARTING, 0), ev(PVCLUS_HA_EV_DELETE_REQ, 0));
	refused(fence_wait(1, 0, false), ev(PVCLUS_HA_EV_DELETE_REQ, 0));
}

/* ---- failures ----------------------------------------------------------- */

static void owner_left_is_fenced_before_anything_starts_elsewhere(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 1));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(g.fence[0], 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);

	/* nothing that is not the fence moves it on */
	refused(g, ev(PVCLUS_HA_EV_PLACED, 2));
	refused(g, ev(PVCLUS_HA_EV_STARTED, 2));
	refused(g, ev(PVCLUS_HA_EV_MIGRATE_START, 2));
	struct pvclus_ha_guest before = g;
	a = apply(&g, ev(PVCLUS_HA_EV_NODE_FENCED, 2)); /* another node's fence */
	assert_true(pvclus_ha_equal(&g, &before));
	assert_int_equal(a.n, 0);
	a = apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0)); /* fence overdue: ask again */
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, 1), 1);
	assert_true(pvclus_ha_equal(&g, &before));

	a = apply(&g, ev(PVCLUS_HA_EV_NODE_FENCED, 1));
	assert_int_equal(g.state, PVCLUS_HA_RECOVERING);
	assert_int_equal(g.fenced, 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_FENCE_CONFIRMED);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);

	a = apply(&g, ev(PVCLUS_HA_EV_PLACED, 2));
	const struct pvclus_ha_action *rec = find_act(&a, PVCLUS_HA_ACT_RECOVER);
	assert_non_null(rec);
	assert_int_equal(rec->node, 2);
	assert_int_equal(rec->peer, 1); /* break node 1's lock */
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, ~0u), 0);

	apply(&g, ev(PVCLUS_HA_EV_STARTED, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 2);
	assert_int_equal(g.fenced, 0);
}

static void a_node_left_while_starting_is_fenced_too(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STARTING, 3);
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 3));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	g = in_state(PVCLUS_HA_STOPPING, 3);
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 3));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	g = in_state(PVCLUS_HA_RECOVERING, 3);
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 3));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	/* an unplaced guest does not care */
	g = in_state(PVCLUS_HA_STARTING, 0);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 3));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(a.n, 0);
}

static void fence_of_a_guest_not_wanted_running_leaves_it_stopped(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_STOPPING, 2);
	g.want_running = false;
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 2));
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_FENCED, 2));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);
	assert_int_equal(g.fenced, 2);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
	/* its next start is a recovery: node 2's lock may still be there */
	apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_RECOVERING);
	a = apply(&g, ev(PVCLUS_HA_EV_PLACED, 3));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RECOVER, 3), 1);
}

static void stop_request_during_fence_wait_ends_stopped_after_the_fence(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = fence_wait(1, 0, false);
	apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	apply(&g, ev(PVCLUS_HA_EV_NODE_FENCED, 1));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);
}

static void a_fence_confirmed_without_a_leave_is_leave_then_fence(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_FENCED, 1));
	assert_int_equal(g.state, PVCLUS_HA_RECOVERING);
	assert_int_equal(g.fenced, 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, ~0u), 0); /* already fenced */
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_FENCE_CONFIRMED);

	/* unrelated: nothing */
	g = in_state(PVCLUS_HA_RUNNING, 1);
	a = apply(&g, ev(PVCLUS_HA_EV_NODE_FENCED, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(a.n, 0);
}

static void quorum_loss_stops_only_the_local_copy(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_LOST, 1));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_true(g.want_running); /* the desired state does not change */
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 1), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_QUORUM_LOST);

	g = in_state(PVCLUS_HA_RUNNING, 2);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_LOST, 1));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(a.n, 0);

	g = in_state(PVCLUS_HA_STARTING, 1);
	apply(&g, ev(PVCLUS_HA_EV_QUORUM_LOST, 1));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);

	g = migrating(1, 2, false);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_LOST, 1));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 1), 1);

	g = migrating(1, 2, true);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_LOST, 2));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_int_equal(g.owner, 2);

	g = migrating(1, 2, false);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_LOST, 2));
	assert_int_equal(g.state, PVCLUS_HA_MIGRATING);
	assert_int_equal(g.target, 0);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 2), 1);
}

static void quorum_regained_asks_again_for_what_was_pending(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = fence_wait(3, 0, false);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_REGAINED, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, 3), 1);
	g = in_state(PVCLUS_HA_RECOVERING, 0);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_REGAINED, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
	g = in_state(PVCLUS_HA_RUNNING, 1);
	a = apply(&g, ev(PVCLUS_HA_EV_QUORUM_REGAINED, 0));
	assert_int_equal(a.n, 0);
}

/* ---- migration and drain ------------------------------------------------ */

static void migration_hands_the_lock_over_then_runs_on_the_target(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_MIGRATE_START, 2));
	assert_int_equal(g.state, PVCLUS_HA_MIGRATING);
	assert_int_equal(g.owner, 1);
	assert_int_equal(g.target, 2);
	const struct pvclus_ha_action *m = find_act(&a, PVCLUS_HA_ACT_MIGRATE);
	assert_non_null(m);
	assert_int_equal(m->node, 1);
	assert_int_equal(m->peer, 2);

	apply(&g, ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 1));
	assert_true(g.handed_over);
	assert_int_equal(g.owner, 1);
	a = apply(&g, ev(PVCLUS_HA_EV_MIGRATE_DONE, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 2);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_MIGRATED);

	/* the target's word may come before the source's */
	g = migrating(1, 2, false);
	apply(&g, ev(PVCLUS_HA_EV_MIGRATE_DONE, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 2);
	refused(g, ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 1)); /* stale now */

	refused(in_state(PVCLUS_HA_RUNNING, 1), ev(PVCLUS_HA_EV_MIGRATE_START, 1));
}

static void migration_abandoned_by_the_source_keeps_it_there(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_MIGRATE_FAILED, 1));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_MIGRATE_FAILED);
	/* after the handover nobody abandons */
	refused(migrating(1, 2, true), ev(PVCLUS_HA_EV_MIGRATE_FAILED, 1));
	refused(migrating(1, 2, true), ev(PVCLUS_HA_EV_MIGRATE_FAILED, 2));
}

static void target_giving_up_waits_for_the_source_word(void **state)
{
	(void)state;
	/* before the handover: the source decides */
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_START_FAILED, 2));
	assert_int_equal(g.state, PVCLUS_HA_MIGRATING);
	assert_int_equal(g.target, 0);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
	struct pvclus_ha_guest h = g;
	apply(&g, ev(PVCLUS_HA_EV_MIGRATE_FAILED, 1));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 1);
	/* or the source had let go: nobody runs it, place it again */
	a = apply(&h, ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 1));
	assert_int_equal(h.state, PVCLUS_HA_STARTING);
	assert_int_equal(h.avoid, 2);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, 2), 1);

	/* after the handover: nobody runs it */
	g = migrating(1, 2, true);
	a = apply(&g, ev(PVCLUS_HA_EV_START_FAILED, 2));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 0);
	assert_int_equal(g.start_failures, 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, 2), 1);

	/* the target's early give-up */
	g = migrating(1, 2, false);
	apply(&g, ev(PVCLUS_HA_EV_MIGRATE_FAILED, 2));
	assert_int_equal(g.state, PVCLUS_HA_MIGRATING);
	assert_int_equal(g.target, 0);
}

static void source_crash_mid_migration_restarts_in_place(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_event crash = ev(PVCLUS_HA_EV_VMM_EXITED, 1);
	crash.crashed = true;
	struct pvclus_ha_actions a = apply(&g, crash);
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, 1), 1);
	refused(migrating(1, 2, true), crash);
	crash.node = 2;
	refused(migrating(1, 2, false), crash);
}

static void source_left_before_handover_fences_it_and_hears_the_target(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 1));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(g.fence[0], 1);
	assert_int_equal(g.peer, 2);
	assert_false(g.peer_is_source);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, 1), 1);

	/* the target had taken the lock and resumed: it runs there */
	struct pvclus_ha_guest h = g;
	apply(&h, ev(PVCLUS_HA_EV_MIGRATE_DONE, 2));
	assert_int_equal(h.state, PVCLUS_HA_RUNNING);
	assert_int_equal(h.owner, 2);

	/* the fence comes first: still wait for the target's word */
	h = g;
	a = apply(&h, ev(PVCLUS_HA_EV_NODE_FENCED, 1));
	assert_int_equal(h.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(h.fence[0], 0);
	assert_int_equal(h.fenced, 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
	struct pvclus_ha_guest k = h;
	a = apply(&h, ev(PVCLUS_HA_EV_MIGRATE_FAILED, 2));
	assert_int_equal(h.state, PVCLUS_HA_RECOVERING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, 2), 1);
	apply(&k, ev(PVCLUS_HA_EV_MIGRATE_DONE, 2));
	assert_int_equal(k.state, PVCLUS_HA_RUNNING);
	assert_int_equal(k.fenced, 0);

	/* the target gives up before the fence: keep waiting for the fence */
	h = g;
	apply(&h, ev(PVCLUS_HA_EV_START_FAILED, 2));
	assert_int_equal(h.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(h.peer, 0);
	apply(&h, ev(PVCLUS_HA_EV_NODE_FENCED, 1));
	assert_int_equal(h.state, PVCLUS_HA_RECOVERING);

	/* the target leaves too: both are fenced before anything starts */
	h = g;
	a = apply(&h, ev(PVCLUS_HA_EV_NODE_LEFT, 2));
	assert_int_equal(h.fence[0], 1);
	assert_int_equal(h.fence[1], 2);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, 2), 1);
	apply(&h, ev(PVCLUS_HA_EV_NODE_FENCED, 1));
	assert_int_equal(h.state, PVCLUS_HA_FENCE_WAIT);
	a = apply(&h, ev(PVCLUS_HA_EV_NODE_FENCED, 2));
	assert_int_equal(h.state, PVCLUS_HA_RECOVERING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 1);
}

static void source_left_after_handover_is_the_target_business(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, true);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 1));
	assert_int_equal(g.state, PVCLUS_HA_MIGRATING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_FENCE, ~0u), 0);
	apply(&g, ev(PVCLUS_HA_EV_MIGRATE_DONE, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_int_equal(g.owner, 2);
}

static void target_left_mid_migration_hears_the_source(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 2));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(g.fence[0], 2);
	assert_int_equal(g.peer, 1);
	assert_true(g.peer_is_source);

	/* the source kept the lock: it runs there, fence or not */
	struct pvclus_ha_guest h = g;
	apply(&h, ev(PVCLUS_HA_EV_MIGRATE_FAILED, 1));
	assert_int_equal(h.state, PVCLUS_HA_RUNNING);
	assert_int_equal(h.owner, 1);

	/* the source had let go: the target may hold the lock, fence it */
	h = g;
	apply(&h, ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 1));
	assert_int_equal(h.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(h.peer, 0);
	apply(&h, ev(PVCLUS_HA_EV_NODE_FENCED, 2));
	assert_int_equal(h.state, PVCLUS_HA_RECOVERING);
	assert_int_equal(h.fenced, 2);

	/* the source crashed before the handover: restart it there */
	h = g;
	struct pvclus_ha_event crash = ev(PVCLUS_HA_EV_VMM_EXITED, 1);
	crash.crashed = true;
	apply(&h, crash);
	assert_int_equal(h.state, PVCLUS_HA_STARTING);
	assert_int_equal(h.owner, 1);

	/* after the handover only the target matters */
	g = migrating(1, 2, true);
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 2));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	assert_int_equal(g.peer, 0);
}

static void stop_request_during_migration_aborts_it_then_stops(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_MIGRATING);
	assert_false(g.want_running);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, 1), 1);
	a = apply(&g, ev(PVCLUS_HA_EV_MIGRATE_FAILED, 1));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 1), 1);

	g = migrating(1, 2, true);
	a = apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, ~0u), 0);
	a = apply(&g, ev(PVCLUS_HA_EV_MIGRATE_DONE, 2));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_int_equal(g.owner, 2);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_STOP, 2), 1);
}

static void migration_deadline_aborts_only_before_the_handover(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, 1), 1);
	g = migrating(1, 2, true);
	a = apply(&g, ev(PVCLUS_HA_EV_DEADLINE, 0));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, ~0u), 0);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_DEADLINE);
}

static void drain_asks_for_a_migration_target(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1), before = g;
	struct pvclus_ha_actions a = apply(&g, ev(PVCLUS_HA_EV_NODE_DRAIN, 1));
	assert_true(pvclus_ha_equal(&g, &before));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE_MIGRATION, 1), 1);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_DRAIN);
	/* another node's drain: nothing */
	a = apply(&g, ev(PVCLUS_HA_EV_NODE_DRAIN, 2));
	assert_int_equal(a.n, 0);
	/* starting there: it moves once it runs */
	g = in_state(PVCLUS_HA_STARTING, 1);
	a = apply(&g, ev(PVCLUS_HA_EV_NODE_DRAIN, 1));
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_DRAIN_WAIT);
	/* migrating onto the draining node: abandon it */
	g = migrating(1, 2, false);
	a = apply(&g, ev(PVCLUS_HA_EV_NODE_DRAIN, 2));
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, 1), 1);
	/* a drain with no target is logged with the scheduler's reason */
	g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_event u = ev(PVCLUS_HA_EV_UNPLACEABLE, 0);
	u.detail = 3;
	a = apply(&g, u);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_UNPLACEABLE);
	assert_int_equal(find_act(&a, PVCLUS_HA_ACT_LOG)->detail, 3);
}

/* ---- heartbeat monitoring ------------------------------------------------ */

static struct pvclus_ha_event hb_lost(uint32_t node, enum pvclus_ha_heartbeat_step step)
{
	struct pvclus_ha_event e = ev(PVCLUS_HA_EV_HEARTBEAT_LOST, node);
	e.detail = step;
	return e;
}

static void heartbeat_lost_restarts_in_place_then_moves_then_gives_up(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);

	/* restart in place: node 1 keeps the lock; crash restarts untouched */
	struct pvclus_ha_actions a = apply(&g, hb_lost(1, PVCLUS_HA_HB_RESTART));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 1);
	assert_int_equal(g.restarts, 0);
	assert_false(g.hb_moved);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_HEARTBEAT_RESTART);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RELEASE_LOCK, ~0u), 0);
	apply(&g, ev(PVCLUS_HA_EV_STARTED, 1));

	/* move: the lock is let go before the placement, which avoids node 1 */
	a = apply(&g, hb_lost(1, PVCLUS_HA_HB_MOVE));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 0);
	assert_int_equal(g.avoid, 1);
	assert_true(g.hb_moved);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_HEARTBEAT_MOVE);
	assert_int_equal(a.a[2].kind, PVCLUS_HA_ACT_RELEASE_LOCK);
	assert_int_equal(a.a[2].node, 1);
	assert_int_equal(a.a[3].kind, PVCLUS_HA_ACT_PLACE);
	assert_int_equal(a.a[3].node, 1); /* the node to avoid */
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, ~0u), 0);
	apply(&g, ev(PVCLUS_HA_EV_PLACED, 2));
	apply(&g, ev(PVCLUS_HA_EV_STARTED, 2));
	assert_int_equal(g.state, PVCLUS_HA_RUNNING);
	assert_true(g.hb_moved); /* a start that HA made keeps it */

	/* error: no copy runs, the lock is let go, the reason is kept */
	a = apply(&g, hb_lost(2, PVCLUS_HA_HB_ERROR));
	assert_int_equal(g.state, PVCLUS_HA_ERROR);
	assert_int_equal(g.reason, PVCLUS_HA_R_HEARTBEAT_LIMIT);
	assert_int_equal(g.owner, 0);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_HEARTBEAT_LIMIT);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RELEASE_LOCK, 2), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, ~0u), 0);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
	assert_string_equal(pvclus_ha_reason_str(g.reason), "heartbeat lost too often, also after a move");

	/* a person's start clears the error and the move */
	apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_false(g.hb_moved);
}

/* Running on node 2 after a move from node 1 for a lost heartbeat. */
static struct pvclus_ha_guest moved_to_2(void)
{
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	apply(&g, hb_lost(1, PVCLUS_HA_HB_MOVE));
	apply(&g, ev(PVCLUS_HA_EV_PLACED, 2));
	apply(&g, ev(PVCLUS_HA_EV_STARTED, 2));
	assert_true(g.hb_moved);
	return g;
}

static void a_stop_forgets_the_heartbeat_move(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = moved_to_2();
	apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	apply(&g, ev(PVCLUS_HA_EV_STOPPED, 2));
	assert_int_equal(g.state, PVCLUS_HA_STOPPED);
	assert_false(g.hb_moved);

	/* started again before the stop was done (stopping): the request
	 * starts afresh all the same, its failures and restarts too */
	g = moved_to_2();
	g.start_failures = 2;
	g.restarts = 1;
	apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	assert_int_equal(g.state, PVCLUS_HA_STOPPING);
	assert_true(g.hb_moved);
	apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_true(g.want_running);
	assert_false(g.hb_moved);
	assert_int_equal(g.start_failures, 0);
	assert_int_equal(g.restarts, 0);

	/* its node lost while stopping (fence-wait), then started again */
	g = moved_to_2();
	apply(&g, ev(PVCLUS_HA_EV_STOP_REQ, 0));
	apply(&g, ev(PVCLUS_HA_EV_NODE_LEFT, 2));
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	apply(&g, ev(PVCLUS_HA_EV_START_REQ, 0));
	assert_true(g.want_running);
	assert_false(g.hb_moved);
}

/* The source killed its VMM for a lost heartbeat while the guest still ran
 * there, and a drain's migration was started before its word came (random
 * seed 8580): the source never began, so its decision applies, and the
 * migration is over (the target's incoming VMM ends by itself). */
static void heartbeat_lost_from_the_source_before_the_handover_applies(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = migrating(1, 2, false);
	struct pvclus_ha_actions a = apply(&g, hb_lost(1, PVCLUS_HA_HB_RESTART));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 1);
	assert_int_equal(g.target, 0);
	assert_int_equal(log_reason(&a), PVCLUS_HA_R_HEARTBEAT_RESTART);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_START, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_ABORT_MIGRATION, ~0u), 0);

	g = migrating(1, 2, false);
	a = apply(&g, hb_lost(1, PVCLUS_HA_HB_MOVE));
	assert_int_equal(g.state, PVCLUS_HA_STARTING);
	assert_int_equal(g.owner, 0);
	assert_int_equal(g.target, 0);
	assert_int_equal(g.avoid, 1);
	assert_true(g.hb_moved);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RELEASE_LOCK, 1), 1);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_PLACE, 1), 1);

	g = migrating(1, 2, false);
	a = apply(&g, hb_lost(1, PVCLUS_HA_HB_ERROR));
	assert_int_equal(g.state, PVCLUS_HA_ERROR);
	assert_int_equal(g.target, 0);
	assert_int_equal(count_act(&a, PVCLUS_HA_ACT_RELEASE_LOCK, 1), 1);
}

static void heartbeat_lost_only_from_the_owner_of_a_running_guest(void **state)
{
	(void)state;
	refused(in_state(PVCLUS_HA_RUNNING, 1), hb_lost(2, PVCLUS_HA_HB_RESTART));
	refused(in_state(PVCLUS_HA_RUNNING, 1), hb_lost(1, (enum pvclus_ha_heartbeat_step)0));
	refused(in_state(PVCLUS_HA_RUNNING, 1), hb_lost(1, (enum pvclus_ha_heartbeat_step)4));
	refused(in_state(PVCLUS_HA_RUNNING, 1), hb_lost(0, PVCLUS_HA_HB_RESTART));
	refused(in_state(PVCLUS_HA_STARTING, 1), hb_lost(1, PVCLUS_HA_HB_RESTART));
	refused(migrating(1, 2, false), hb_lost(2, PVCLUS_HA_HB_MOVE));
	refused(migrating(1, 2, true), hb_lost(1, PVCLUS_HA_HB_MOVE));
	refused(migrating(1, 2, true), hb_lost(2, PVCLUS_HA_HB_MOVE));
	refused(in_state(PVCLUS_HA_STOPPING, 1), hb_lost(1, PVCLUS_HA_HB_ERROR));
	refused(in_state(PVCLUS_HA_ERROR, 0), hb_lost(1, PVCLUS_HA_HB_ERROR));
}

/* ---- refusals ----------------------------------------------------------- */

/* Sample records, one per situation, and the node the events name. */
struct sample {
	const char *name;
	struct pvclus_ha_guest g;
	uint32_t p; /* the node most events name: owner, source, the one to fence, the peer */
	uint32_t q; /* the node MIGRATE_DONE names: the target or the awaited target */
};

static struct sample samples[12];

static void make_samples(void)
{
	struct pvclus_ha_guest w;
	samples[0] = (struct sample){ "stopped", base(), 1, 2 };
	samples[1] = (struct sample){ "starting", in_state(PVCLUS_HA_STARTING, 0), 1, 2 };
	samples[2] = (struct sample){ "starting@1", in_state(PVCLUS_HA_STARTING, 1), 1, 2 };
	samples[3] = (struct sample){ "running@1", in_state(PVCLUS_HA_RUNNING, 1), 1, 2 };
	samples[4] = (struct sample){ "migrating1>2", migrating(1, 2, false), 1, 2 };
	samples[5] = (struct sample){ "migrating1>2 handed over", migrating(1, 2, true), 1, 2 };
	w = in_state(PVCLUS_HA_STOPPING, 1);
	w.want_running = false;
	samples[6] = (struct sample){ "stopping@1", w, 1, 2 };
	samples[7] = (struct sample){ "fence-wait 1", fence_wait(1, 0, false), 1, 2 };
	samples[8] = (struct sample){ "fence-wait 1, target 2 awaited", fence_wait(1, 2, false), 2, 2 };
	samples[9] = (struct sample){ "recovering", in_state(PVCLUS_HA_RECOVERING, 0), 1, 2 };
	samples[10] = (struct sample){ "recovering@2", in_state(PVCLUS_HA_RECOVERING, 2), 2, 2 };
	samples[11] = (struct sample){ "error", in_state(PVCLUS_HA_ERROR, 0), 1, 2 };
}

static struct pvclus_ha_event sample_event(const struct sample *s, enum pvclus_ha_event_type t)
{
	switch (t) {
	case PVCLUS_HA_EV_PLACED:
	case PVCLUS_HA_EV_MIGRATE_START:
		return ev(t, 3);
	case PVCLUS_HA_EV_MIGRATE_DONE:
		return ev(t, s->q);
	case PVCLUS_HA_EV_HEARTBEAT_LOST: {
		struct pvclus_ha_event e = ev(t, s->p);
		e.detail = PVCLUS_HA_HB_RESTART;
		return e;
	}
	case PVCLUS_HA_EV_START_REQ:
	case PVCLUS_HA_EV_STOP_REQ:
	case PVCLUS_HA_EV_DELETE_REQ:
	case PVCLUS_HA_EV_UNPLACEABLE:
	case PVCLUS_HA_EV_RUN_STABLE:
	case PVCLUS_HA_EV_QUORUM_REGAINED:
	case PVCLUS_HA_EV_DEADLINE:
		return ev(t, 0);
	default:
		return ev(t, s->p);
	}
}

/*
 * Which (sample, event) pairs are accepted: 'V'. '-' is refused with -EINVAL.
 * Columns in enum order:
 *   start stop delete placed unplaceable started start-failed stopped
 *   vmm-exited run-stable node-left node-fenced quorum-lost quorum-regained
 *   node-drain migrate-start handed-over migrate-done migrate-failed deadline
 *   heartbeat-lost
 * The cluster-wide events (node-left .. node-drain) are always accepted.
 */
static const char *const valid[12] = {
	/*                      s s d p u s s s v r l f q q d m h d f d h */
	/* stopped       */ "V-V-------VVVVV------",
	/* starting      */ "-V-VV-----VVVVV----V-",
	/* starting@1    */ "-V---VV---VVVVV----V-",
	/* running@1     */ "-V--V---VVVVVVVV----V",
	/* migrating     */ "-V------V-VVVVV-VVVVV",
	/* mig. handed   */ "-V--------VVVVV--V-V-",
	/* stopping@1    */ "V------V--VVVVV----V-",
	/* fence-wait 1  */ "-V--------VVVVV----V-",
	/* fw, peer tgt  */ "-V----V---VVVVV--VVV-",
	/* recovering    */ "-V-VV-----VVVVV----V-",
	/* recovering@2  */ "-V---VV---VVVVV----V-",
	/* error         */ "VVV-------VVVVV------",
};

static void every_refused_pair_changes_nothing(void **state)
{
	(void)state;
	make_samples();
	for (size_t i = 0; i < 12; i++) {
		struct sample *s = &samples[i];
		assert_int_equal(pvclus_ha_check(&s->g), 0);
		for (int t = 0; t < PVCLUS_HA_EV_COUNT; t++) {
			struct pvclus_ha_event e = sample_event(s, (enum pvclus_ha_event_type)t);
			struct pvclus_ha_actions out = { .n = 99 };
			struct pvclus_ha_guest next;
			int rc = pvclus_ha_step(&s->g, &e, &next, &out);
			int want = valid[i][t] == 'V' ? 0 : -EINVAL;
			if (rc != want)
				print_error("%s + %s: got %d, want %d\n", s->name,
					    pvclus_ha_event_str(e.type), rc, want);
			assert_int_equal(rc, want);
			if (rc < 0) {
				assert_true(pvclus_ha_equal(&next, &s->g));
				assert_int_equal(out.n, 0);
			} else {
				assert_int_equal(pvclus_ha_check(&next), 0);
			}
		}
	}
}

static void events_from_the_wrong_node_are_refused(void **state)
{
	(void)state;
	refused(in_state(PVCLUS_HA_STARTING, 1), ev(PVCLUS_HA_EV_STARTED, 2));
	refused(in_state(PVCLUS_HA_STARTING, 1), ev(PVCLUS_HA_EV_START_FAILED, 2));
	refused(in_state(PVCLUS_HA_RUNNING, 1), ev(PVCLUS_HA_EV_VMM_EXITED, 2));
	refused(in_state(PVCLUS_HA_STOPPING, 1), ev(PVCLUS_HA_EV_STOPPED, 2));
	refused(migrating(1, 2, false), ev(PVCLUS_HA_EV_MIGRATE_DONE, 3));
	refused(migrating(1, 2, false), ev(PVCLUS_HA_EV_MIGRATE_DONE, 1));
	refused(migrating(1, 2, false), ev(PVCLUS_HA_EV_MIGRATE_FAILED, 3));
	refused(migrating(1, 2, false), ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 2));
	refused(migrating(1, 2, true), ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 1));
	refused(fence_wait(1, 2, false), ev(PVCLUS_HA_EV_MIGRATE_DONE, 3));
	refused(fence_wait(1, 2, false), ev(PVCLUS_HA_EV_MIGRATE_HANDED_OVER, 2));
	refused(fence_wait(2, 1, true), ev(PVCLUS_HA_EV_MIGRATE_DONE, 1));
	refused(fence_wait(2, 1, true), ev(PVCLUS_HA_EV_START_FAILED, 1));
}

static void malformed_events_and_records_are_refused(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	/* node events without a node */
	refused(g, ev(PVCLUS_HA_EV_NODE_LEFT, 0));
	refused(g, ev(PVCLUS_HA_EV_VMM_EXITED, 0));
	refused(g, ev(PVCLUS_HA_EV_MIGRATE_START, 0));
	refused(g, ev(PVCLUS_HA_EV_QUORUM_LOST, 0));
	refused(in_state(PVCLUS_HA_STARTING, 0), ev(PVCLUS_HA_EV_PLACED, 0));
	/* unknown type, positive errno */
	refused(g, ev(PVCLUS_HA_EV_COUNT, 1));
	refused(g, ev((enum pvclus_ha_event_type)-1, 1));
	struct pvclus_ha_event f = ev(PVCLUS_HA_EV_START_FAILED, 1);
	f.err = EIO;
	refused(in_state(PVCLUS_HA_STARTING, 1), f);

	/* records the machine never reaches */
	struct pvclus_ha_guest bad[16];
	int nb = 0;
	bad[nb] = in_state(PVCLUS_HA_RUNNING, 0); nb++;          /* running with no owner */
	bad[nb] = in_state(PVCLUS_HA_RUNNING, 1); bad[nb].target = 2; nb++; /* two nodes */
	bad[nb] = in_state(PVCLUS_HA_RUNNING, 1); bad[nb].want_running = false; nb++;
	bad[nb] = migrating(1, 1, false); nb++;
	bad[nb] = migrating(1, 0, true); nb++;
	bad[nb] = base(); bad[nb].owner = 3; nb++;
	bad[nb] = in_state(PVCLUS_HA_RECOVERING, 0); bad[nb].fenced = 0; nb++; /* no fence */
	bad[nb] = fence_wait(0, 0, false); nb++;
	bad[nb] = fence_wait(1, 1, false); nb++;
	bad[nb] = in_state(PVCLUS_HA_ERROR, 0); bad[nb].reason = PVCLUS_HA_R_NONE; nb++;
	bad[nb] = base(); bad[nb].state = PVCLUS_HA_STATE_COUNT; nb++;
	bad[nb] = base(); bad[nb].max_start_failures = 0; nb++;
	bad[nb] = base(); bad[nb].restarts = 9; nb++;
	bad[nb] = in_state(PVCLUS_HA_RUNNING, 1); bad[nb].fence[0] = 2; nb++;
	bad[nb] = in_state(PVCLUS_HA_STOPPING, 0); nb++;
	for (int i = 0; i < nb; i++) {
		assert_int_equal(pvclus_ha_check(&bad[i]), -EINVAL);
		refused(bad[i], ev(PVCLUS_HA_EV_STOP_REQ, 0));
		refused(bad[i], ev(PVCLUS_HA_EV_NODE_LEFT, 1));
	}

	/* NULLs */
	struct pvclus_ha_actions out = { .n = 5 };
	struct pvclus_ha_guest next;
	struct pvclus_ha_event e = ev(PVCLUS_HA_EV_STOP_REQ, 0);
	assert_int_equal(pvclus_ha_step(NULL, &e, &next, &out), -EINVAL);
	assert_int_equal(out.n, 0);
	assert_int_equal(pvclus_ha_step(&g, NULL, &next, &out), -EINVAL);
	assert_true(pvclus_ha_equal(&next, &g));
	assert_int_equal(pvclus_ha_step(&g, &e, NULL, &out), -EINVAL);
	assert_int_equal(pvclus_ha_step(&g, &e, &next, NULL), -EINVAL);
	assert_int_equal(pvclus_ha_check(NULL), -EINVAL);
}

static void step_may_update_a_record_in_place(void **state)
{
	(void)state;
	struct pvclus_ha_guest g = in_state(PVCLUS_HA_RUNNING, 1);
	struct pvclus_ha_actions out;
	struct pvclus_ha_event e = ev(PVCLUS_HA_EV_NODE_LEFT, 1);
	assert_int_equal(pvclus_ha_step(&g, &e, &g, &out), 0);
	assert_int_equal(g.state, PVCLUS_HA_FENCE_WAIT);
	e = ev(PVCLUS_HA_EV_PLACED, 2);
	struct pvclus_ha_guest before = g;
	assert_int_equal(pvclus_ha_step(&g, &e, &g, &out), -EINVAL);
	assert_true(pvclus_ha_equal(&g, &before));
}

static void every_name_is_spelled(void **state)
{
	(void)state;
	for (int i = 0; i < PVCLUS_HA_STATE_COUNT; i++)
		assert_string_not_equal(pvclus_ha_state_str((enum pvclus_ha_state)i), "?");
	for (int i = 0; i < PVCLUS_HA_EV_COUNT; i++)
		assert_string_not_equal(pvclus_ha_event_str((enum pvclus_ha_event_type)i), "?");
	for (int i = 0; i < PVCLUS_HA_R_COUNT; i++)
		assert_string_not_equal(pvclus_ha_reason_str((enum pvclus_ha_reason)i), "?");
	for (int i = 0; i < PVCLUS_HA_ACT_COUNT; i++)
		assert_string_not_equal(pvclus_ha_action_str((enum pvclus_ha_action_kind)i), "?");
	assert_string_equal(pvclus_ha_state_str(PVCLUS_HA_STATE_COUNT), "?");
	assert_string_equal(pvclus_ha_state_str(PVCLUS_HA_FENCE_WAIT), "fence-wait");
	assert_string_equal(pvclus_ha_event_str(PVCLUS_HA_EV_COUNT), "?");
	assert_string_equal(pvclus_ha_reason_str(PVCLUS_HA_R_COUNT), "?");
	assert_string_equal(pvclus_ha_action_str(PVCLUS_HA_ACT_COUNT), "?");
}

/* ---- invariants over random walks --------------------------------------- */

#define NODES 4 /* node ids 1..NODES */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: deterministic across runs and machines */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

/*
 * The model: `may` is the set of nodes that may run the guest or hold its
 * lock, as the agents' reports (by their contract, ha.c's comment over
 * on_migrating) tell. A start may be asked of node Y only when no other node
 * is in it; a migration only from the one node in it.
 */
struct model {
	bool may[NODES + 1];
	bool fenced_ever[NODES + 1]; /* a fence was confirmed for it */
};

static void may_only(struct model *m, uint32_t n)
{
	for (int i = 0; i <= NODES; i++)
		m->may[i] = (uint32_t)i == n;
}

static void model_event(struct model *m, const struct pvclus_ha_guest *g,
			const struct pvclus_ha_event *e)
{
	switch (e->type) {
	case PVCLUS_HA_EV_START_FAILED:
	case PVCLUS_HA_EV_STOPPED:
	case PVCLUS_HA_EV_MIGRATE_HANDED_OVER:
		m->may[e->node] = false;
		break;
	case PVCLUS_HA_EV_NODE_FENCED:
		m->may[e->node] = false;
		m->fenced_ever[e->node] = true;
		break;
	case PVCLUS_HA_EV_MIGRATE_DONE:
		may_only(m, e->node); /* the target holds the lock */
		break;
	case PVCLUS_HA_EV_MIGRATE_FAILED:
		if ((g->state == PVCLUS_HA_MIGRATING && e->node == g->owner) ||
		    (g->state == PVCLUS_HA_FENCE_WAIT && g->peer_is_source))
			may_only(m, e->node); /* the source kept the lock */
		else
			m->may[e->node] = false; /* the target gave up */
		break;
	case PVCLUS_HA_EV_VMM_EXITED:
		/* a source that ends before the handover still holds the
		 * lock; its target never got it */
		if (g->state == PVCLUS_HA_MIGRATING || g->state == PVCLUS_HA_FENCE_WAIT)
			may_only(m, e->node);
		break;
	case PVCLUS_HA_EV_HEARTBEAT_LOST:
		/* the same: the source killed its VMM before it began */
		if (g->state == PVCLUS_HA_MIGRATING)
			may_only(m, e->node);
		break;
	default:
		break;
	}
}

static void check_actions(struct model *m, const struct pvclus_ha_guest *g,
			  const struct pvclus_ha_guest *next, const struct pvclus_ha_actions *a)
{
	bool changed = !pvclus_ha_equal(g, next);
	bool logged = false, asks = false;

	for (unsigned i = 0; i < a->n; i++) {
		const struct pvclus_ha_action *x = &a->a[i];
		if (x->kind == PVCLUS_HA_ACT_LOG)
			logged = true;
		if (x->kind != PVCLUS_HA_ACT_LOG && x->kind != PVCLUS_HA_ACT_PERSIST)
			asks = true;
		if (x->kind == PVCLUS_HA_ACT_PERSIST)
			assert_true(changed);
		switch (x->kind) {
		case PVCLUS_HA_ACT_START:
		case PVCLUS_HA_ACT_RECOVER:
			/* never two copies: nobody else may run it */
			for (uint32_t n = 1; n <= NODES; n++)
				if (n != x->node)
					assert_false(m->may[n]);
			if (x->kind == PVCLUS_HA_ACT_RECOVER)
				assert_true(m->fenced_ever[x->peer]); /* recovery after a fence */
			m->may[x->node] = true;
			break;
		case PVCLUS_HA_ACT_MIGRATE:
			for (uint32_t n = 1; n <= NODES; n++)
				if (n != x->node)
					assert_false(m->may[n]);
			m->may[x->peer] = true;
			break;
		case PVCLUS_HA_ACT_RELEASE_LOCK:
			m->may[x->node] = false;
			break;
		case PVCLUS_HA_ACT_PLACE:
			/* a placement only once nobody may run it */
			for (uint32_t n = 1; n <= NODES; n++)
				assert_false(m->may[n]);
			break;
		default:
			break;
		}
	}
	/* every change and every request is logged, and persisted when it
	 * changed the record */
	if (changed || asks)
		assert_true(logged);
	if (changed)
		assert_int_equal(a->a[0].kind, PVCLUS_HA_ACT_PERSIST);
	/* running: exactly one owner, the one node that may run it */
	if (next->state == PVCLUS_HA_RUNNING) {
		assert_int_not_equal(next->owner, 0);
		assert_int_equal(next->target, 0);
		for (uint32_t n = 1; n <= NODES; n++)
			if (n != next->owner)
				assert_false(m->may[n]);
	}
	/* while a fence is pending, nothing is placed or started */
	if (next->state == PVCLUS_HA_FENCE_WAIT) {
		assert_int_equal(count_act(a, PVCLUS_HA_ACT_PLACE, ~0u), 0);
		assert_int_equal(count_act(a, PVCLUS_HA_ACT_START, ~0u), 0);
		assert_int_equal(count_act(a, PVCLUS_HA_ACT_RECOVER, ~0u), 0);
	}
}

static void random_walks_never_run_two_copies(void **state)
{
	(void)state;
	unsigned long accepted = 0, refusals = 0, states_seen = 0;
	bool seen[PVCLUS_HA_STATE_COUNT] = { false };

	for (uint64_t seed = 1; seed <= 300; seed++) {
		uint64_t r = seed * 0x9E3779B97F4A7C15ull;
		struct pvclus_ha_guest g = base();
		struct model m = { { false }, { false } };
		g.max_restarts = (uint16_t)(rng_next(&r) % 3);
		g.max_start_failures = (uint16_t)(1 + rng_next(&r) % 3);

		for (int step = 0; step < 2000; step++) {
			struct pvclus_ha_event e = {
				.type = (enum pvclus_ha_event_type)(rng_next(&r) % PVCLUS_HA_EV_COUNT),
				.node = (uint32_t)(1 + rng_next(&r) % NODES),
				.crashed = rng_next(&r) % 2,
				.err = -(int32_t)(rng_next(&r) % 5),
				.detail = (uint32_t)(rng_next(&r) % 4), /* HEARTBEAT_LOST: 0 bad, else a step */
			};
			/* QUORUM_LOST is this partition's alone and its
			 * records are discarded on a merge: walk the quorate
			 * side only. */
			if (e.type == PVCLUS_HA_EV_QUORUM_LOST)
				continue;
			/* a node does not report on a guest after its fence
			 * unless it was given the guest again */
			if (m.fenced_ever[e.node] && !m.may[e.node] &&
			    e.type != PVCLUS_HA_EV_PLACED && e.type != PVCLUS_HA_EV_MIGRATE_START &&
			    e.type != PVCLUS_HA_EV_NODE_LEFT && e.type != PVCLUS_HA_EV_NODE_FENCED &&
			    e.type != PVCLUS_HA_EV_NODE_DRAIN)
				continue;

			struct pvclus_ha_actions a;
			struct pvclus_ha_guest next;
			int rc = pvclus_ha_step(&g, &e, &next, &a);
			if (rc < 0) {
				assert_int_equal(rc, -EINVAL);
				assert_true(pvclus_ha_equal(&next, &g));
				assert_int_equal(a.n, 0);
				refusals++;
				continue;
			}
			accepted++;
			assert_int_equal(pvclus_ha_check(&next), 0);
			model_event(&m, &g, &e);
			check_actions(&m, &g, &next, &a);
			if (!seen[next.state]) {
				seen[next.state] = true;
				states_seen++;
			}
			g = next;
		}
	}
	/* the walks went everywhere */
	assert_int_equal(states_seen, PVCLUS_HA_STATE_COUNT);
	for (int i = 0; i < PVCLUS_HA_STATE_COUNT; i++)
		assert_true(seen[i]);
	assert_true(accepted > 10000);
	assert_true(refusals > 10000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(start_request_asks_for_a_placement),
		cmocka_unit_test(placement_starts_on_that_node_and_started_is_running),
		cmocka_unit_test(failed_start_is_placed_again_avoiding_the_node_then_error),
		cmocka_unit_test(a_successful_start_forgets_earlier_failures),
		cmocka_unit_test(busy_or_timed_out_starts_have_their_own_longer_limit),
		cmocka_unit_test(unplaceable_is_logged_with_the_reason_and_waits),
		cmocka_unit_test(stop_of_a_running_guest_goes_through_stopping),
		cmocka_unit_test(stop_while_starting_stops_on_the_placed_node),
		cmocka_unit_test(start_request_while_stopping_places_it_again_after_the_stop),
		cmocka_unit_test(stuck_start_is_aborted_and_counted_before_placing_again),
		cmocka_unit_test(crash_restarts_in_place_up_to_the_limit_then_error),
		cmocka_unit_test(no_restarts_policy_goes_to_error_at_the_first_crash),
		cmocka_unit_test(a_stable_run_resets_the_restart_count),
		cmocka_unit_test(guest_power_off_is_a_stop_not_a_crash),
		cmocka_unit_test(delete_only_when_no_copy_runs),
		cmocka_unit_test(owner_left_is_fenced_before_anything_starts_elsewhere),
		cmocka_unit_test(a_node_left_while_starting_is_fenced_too),
		cmocka_unit_test(fence_of_a_guest_not_wanted_running_leaves_it_stopped),
		cmocka_unit_test(stop_request_during_fence_wait_ends_stopped_after_the_fence),
		cmocka_unit_test(a_fence_confirmed_without_a_leave_is_leave_then_fence),
		cmocka_unit_test(quorum_loss_stops_only_the_local_copy),
		cmocka_unit_test(quorum_regained_asks_again_for_what_was_pending),
		cmocka_unit_test(migration_hands_the_lock_over_then_runs_on_the_target),
		cmocka_unit_test(migration_abandoned_by_the_source_keeps_it_there),
		cmocka_unit_test(target_giving_up_waits_for_the_source_word),
		cmocka_unit_test(source_crash_mid_migration_restarts_in_place),
		cmocka_unit_test(source_left_before_handover_fences_it_and_hears_the_target),
		cmocka_unit_test(source_left_after_handover_is_the_target_business),
		cmocka_unit_test(target_left_mid_migration_hears_the_source),
		cmocka_unit_test(stop_request_during_migration_aborts_it_then_stops),
		cmocka_unit_test(migration_deadline_aborts_only_before_the_handover),
		cmocka_unit_test(drain_asks_for_a_migration_target),
		cmocka_unit_test(heartbeat_lost_restarts_in_place_then_moves_then_gives_up),
		cmocka_unit_test(a_stop_forgets_the_heartbeat_move),
		cmocka_unit_test(heartbeat_lost_from_the_source_before_the_handover_applies),
		cmocka_unit_test(heartbeat_lost_only_from_the_owner_of_a_running_guest),
		cmocka_unit_test(every_refused_pair_changes_nothing),
		cmocka_unit_test(events_from_the_wrong_node_are_refused),
		cmocka_unit_test(malformed_events_and_records_are_refused),
		cmocka_unit_test(step_may_update_a_record_in_place),
		cmocka_unit_test(every_name_is_spelled),
		cmocka_unit_test(random_walks_never_run_two_copies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
