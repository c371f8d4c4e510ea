/*
 * The HA state machine (see pvcluster/ha.h and docs/ha-state-machine.md).
 *
 * One transition is computed on a private copy of the record (struct step):
 * the per-state handlers edit the copy, queue node/leader operations and name
 * the reason of the log entry; pvclus_ha_step() then checks the result,
 * prepends PERSIST and LOG, and only then publishes it. A handler that
 * refuses returns -EINVAL before anything is published, so a refused event
 * never changes anything.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pvcluster/ha.h"

#define OPS_MAX (PVCLUS_HA_ACTIONS_MAX - 2) /* PERSIST and LOG take two slots */

struct step {
	struct pvclus_ha_guest n; /* the record being built */
	struct pvclus_ha_action ops[OPS_MAX];
	unsigned n_ops;
	bool log;
	struct pvclus_ha_action entry; /* the LOG action, when log */
};

/* ---- building blocks ---------------------------------------------------- */

static void op(struct step *s, enum pvclus_ha_action_kind kind, uint32_t node, uint32_t peer,
	       bool force)
{
	/* No transition queues more than two operations (see the table); more
	 * is a bug in this file, not bad input. */
	if (s->n_ops >= OPS_MAX)
		abort();
	s->ops[s->n_ops++] = (struct pvclus_ha_action){
		.kind = kind, .node = node, .peer = peer, .force = force,
	};
}

static void say(struct step *s, enum pvclus_ha_reason why, uint32_t node)
{
	s->log = true;
	s->entry = (struct pvclus_ha_action){ .kind = PVCLUS_HA_ACT_LOG, .reason = why, .node = node };
}

/* Clears the fields that belong to one state only. */
static void reset_fields(struct pvclus_ha_guest *g)
{
	g->owner = 0;
	g->target = 0;
	g->handed_over = false;
	g->fence[0] = g->fence[1] = 0;
	g->peer = 0;
	g->peer_is_source = false;
	g->reason = PVCLUS_HA_R_NONE;
	g->err = 0;
}

/* No copy runs and none is wanted. `fenced` stays: a later start still has
 * to break that node's lock. */
static void to_stopped(struct step *s)
{
	reset_fields(&s->n);
	s->n.state = PVCLUS_HA_STOPPED;
	s->n.want_running = false;
	s->n.avoid = 0;
	s->n.hb_moved = false;
}

/* Wants to run, runs nowhere, may start anywhere: ask for a placement. After
 * a fence the next start is a recovery (the fenced node's lock). */
static void to_unplaced(struct step *s, uint32_t avoid)
{
	reset_fields(&s->n);
	s->n.state = s->n.fenced ? PVCLUS_HA_RECOVERING : PVCLUS_HA_STARTING;
	s->n.avoid = avoid;
	op(s, PVCLUS_HA_ACT_PLACE, avoid, 0, false);
}

static void to_running(struct step *s, uint32_t node)
{
	reset_fields(&s->n);
	s->n.state = PVCLUS_HA_RUNNING;
	s->n.owner = node;
	s->n.fenced = 0; /* node holds the lock now */
	s->n.avoid = 0;
	s->n.start_failures = 0;
	s->n.busy_failures = 0;
}

static void to_stopping(struct step *s, uint32_t node, bool force)
{
	reset_fields(&s->n);
	s->n.state = PVCLUS_HA_STOPPING;
	s->n.owner = node;
	op(s, PVCLUS_HA_ACT_STOP, node, 0, force);
}

static void to_error(struct step *s, enum pvclus_ha_reason why, int32_t err)
{
	reset_fields(&s->n);
	s->n.state = PVCLUS_HA_ERROR;
	s->n.reason = why;
	s->n.err = err;
}

/* `node` may run the guest or hold its lock and has left: nothing may start
 * anywhere until it is fenced. peer: the other party of a migration whose
 * word is still awaited (0: none). */
static void to_fence_wait(struct step *s, uint32_t node, uint32_t peer, bool peer_is_source)
{
	reset_fields(&s->n);
	s->n.state = PVCLUS_HA_FENCE_WAIT;
	s->n.fence[0] = node;
	s->n.peer = peer;
	s->n.peer_is_source = peer ? peer_is_source : false;
	op(s, PVCLUS_HA_ACT_FENCE, node, 0, false);
}

/* A migration ended with `node` holding the lock and running the guest. */
static void finish_on(struct step *s, uint32_t node)
{
	if (s->n.want_running) {
		to_running(s, node);
	} else {
		s->n.fenced = 0;
		to_stopping(s, node, false);
	}
}

/* No node runs the guest and none holds the lock (except maybe a fenced
 * one). A failed start counts toward the policy's limit. */
static void nobody_runs(struct step *s, uint32_t avoid, bool count, int32_t err)
{
	if (!s->n.want_running) {
		to_stopped(s);
		return;
	}
	if (count && pvclus_ha_transient(err)) {
		/* the lock held elsewhere, the storage silent: not the guest's
		 * fault, and usually gone in seconds (the leader paces these) */
		if (s->n.busy_failures < PVCLUS_HA_MAX_BUSY_FAILURES)
			s->n.busy_failures++;
		count = false;
	} else if (count) {
		s->n.busy_failures = 0;
	}
	if (count && s->n.start_failures < s->n.max_start_failures)
		s->n.start_failures++;
	if (s->n.start_failures >= s->n.max_start_failures || s->n.busy_failures >= PVCLUS_HA_MAX_BUSY_FAILURES) {
		to_error(s, PVCLUS_HA_R_START_FAILED_LIMIT, err);
		s->n.avoid = 0;
		return;
	}
	to_unplaced(s, avoid);
}

/* The VMM on `node`, which holds the lock, is gone by itself. */
/* Starts the guest again on node, which still holds its lock (its VMM
 * ended or was killed): no other node can be asked to start it. */
static void restart_in_place(struct step *s, uint32_t node, enum pvclus_ha_reason why)
{
	reset_fields(&s->n);
	s->n.state = PVCLUS_HA_STARTING;
	s->n.owner = node;
	s->n.fenced = 0;
	op(s, PVCLUS_HA_ACT_START, node, 0, false);
	say(s, why, node);
}

static void vmm_gone(struct step *s, uint32_t node, bool crashed)
{
	if (!crashed) {
		to_stopped(s);
		op(s, PVCLUS_HA_ACT_RELEASE_LOCK, node, 0, false);
		say(s, PVCLUS_HA_R_GUEST_POWERED_OFF, node);
	} else if (!s->n.want_running) {
		to_stopped(s);
		op(s, PVCLUS_HA_ACT_RELEASE_LOCK, node, 0, false);
		say(s, PVCLUS_HA_R_STOPPED, node);
	} else if (s->n.restarts < s->n.max_restarts) {
		restart_in_place(s, node, PVCLUS_HA_R_CRASH_RESTART);
		s->n.restarts++;
	} else {
		to_error(s, PVCLUS_HA_R_CRASH_LIMIT, 0);
		op(s, PVCLUS_HA_ACT_RELEASE_LOCK, node, 0, false);
		say(s, PVCLUS_HA_R_CRASH_LIMIT, node);
	}
}

/* The owner `node` killed the VMM of the running guest because its
 * heartbeat stopped, and decided what comes next (docs/heartbeat.md). The
 * VMM is gone but its lock may still be held (it was killed). */
static int heartbeat_lost(struct step *s, uint32_t node, uint32_t step)
{
	switch (step) {
	case PVCLUS_HA_HB_RESTART:
		restart_in_place(s, node, PVCLUS_HA_R_HEARTBEAT_RESTART);
		return 0;
	case PVCLUS_HA_HB_MOVE:
		op(s, PVCLUS_HA_ACT_RELEASE_LOCK, node, 0, false);
		to_unplaced(s, node);
		s->n.hb_moved = true;
		say(s, PVCLUS_HA_R_HEARTBEAT_MOVE, node);
		return 0;
	case PVCLUS_HA_HB_ERROR:
		to_error(s, PVCLUS_HA_R_HEARTBEAT_LIMIT, 0);
		op(s, PVCLUS_HA_ACT_RELEASE_LOCK, node, 0, false);
		say(s, PVCLUS_HA_R_HEARTBEAT_LIMIT, node);
		return 0;
	default:
		return -EINVAL;
	}
}

static bool fw_has(const struct pvclus_ha_guest *g, uint32_t node)
{
	return node && (g->fence[0] == node || g->fence[1] == node);
}

static void fw_add(struct step *s, uint32_t node)
{
	if (fw_has(&s->n, node))
		return;
	/* At most the two parties of a migration are ever fenced for one
	 * guest, and a peer only joins the set when it leaves. */
	if (!s->n.fence[0])
		s->n.fence[0] = node;
	else if (!s->n.fence[1])
		s->n.fence[1] = node;
	else
		abort();
	op(s, PVCLUS_HA_ACT_FENCE, node, 0, false);
}

static void fw_remove(struct pvclus_ha_guest *g, uint32_t node)
{
	if (g->fence[0] == node)
		g->fence[0] = 0;
	if (g->fence[1] == node)
		g->fence[1] = 0;
	if (!g->fence[0] && g->fence[1]) { /* keep the set packed */
		g->fence[0] = g->fence[1];
		g->fence[1] = 0;
	}
}

/* Every node that might run the guest is fenced and no survivor's word is
 * awaited: recover it (or leave it stopped, when that is what is wanted). */
static void fw_resolve(struct step *s)
{
	if (s->n.fence[0] || s->n.fence[1] || s->n.peer)
		return;
	if (s->n.want_running)
		to_unplaced(s, s->n.avoid);
	else
		to_stopped(s);
}

static void start_on(struct step *s, uint32_t node)
{
	s->n.owner = node;
	if (s->n.fenced)
		op(s, PVCLUS_HA_ACT_RECOVER, node, s->n.fenced, false);
	else
		op(s, PVCLUS_HA_ACT_START, node, 0, false);
}

/* ---- the states --------------------------------------------------------- */

static bool cluster_wide(enum pvclus_ha_event_type t)
{
	return t == PVCLUS_HA_EV_NODE_LEFT || t == PVCLUS_HA_EV_NODE_FENCED ||
	       t == PVCLUS_HA_EV_QUORUM_LOST || t == PVCLUS_HA_EV_QUORUM_REGAINED ||
	       t == PVCLUS_HA_EV_NODE_DRAIN;
}

/* A person's start request: the guest is wanted running, and what HA
 * counted against it since the last request (failed starts, crash
 * restarts, a move for a lost heartbeat) starts afresh. */
static void want_running(struct step *s)
{
	s->n.want_running = true;
	s->n.start_failures = 0;
	s->n.busy_failures = 0;
	s->n.restarts = 0;
	s->n.hb_moved = false;
}

static void start_requested(struct step *s)
{
	want_running(s);
	to_unplaced(s, 0);
	say(s, PVCLUS_HA_R_START_REQUESTED, 0);
}

/* stopped and error: no copy runs. */
static int on_idle(struct step *s, const struct pvclus_ha_event *ev)
{
	bool error = s->n.state == PVCLUS_HA_ERROR;

	switch (ev->type) {
	case PVCLUS_HA_EV_START_REQ:
		start_requested(s);
		return 0;
	case PVCLUS_HA_EV_STOP_REQ:
		if (!error)
			return -EINVAL; /* already stopped */
		to_stopped(s);
		say(s, PVCLUS_HA_R_STOP_REQUESTED, 0);
		return 0;
	case PVCLUS_HA_EV_DELETE_REQ:
		op(s, PVCLUS_HA_ACT_DELETE, 0, 0, false);
		say(s, PVCLUS_HA_R_DELETE_REQUESTED, 0);
		return 0;
	default:
		return cluster_wide(ev->type) ? 0 : -EINVAL;
	}
}

/* starting and recovering: wants to run; placed on owner, or not yet. */
static int on_starting(struct step *s, const struct pvclus_ha_event *ev)
{
	uint32_t x = s->n.owner;

	if (!x) {
		switch (ev->type) {
		case PVCLUS_HA_EV_PLACED:
			start_on(s, ev->node);
			say(s, PVCLUS_HA_R_PLACED, ev->node);
			return 0;
		case PVCLUS_HA_EV_UNPLACEABLE:
			say(s, PVCLUS_HA_R_UNPLACEABLE, 0);
			s->entry.detail = ev->detail;
			return 0;
		case PVCLUS_HA_EV_DEADLINE:
			op(s, PVCLUS_HA_ACT_PLACE, s->n.avoid, 0, false);
			say(s, PVCLUS_HA_R_DEADLINE, 0);
			return 0;
		case PVCLUS_HA_EV_QUORUM_REGAINED:
			op(s, PVCLUS_HA_ACT_PLACE, s->n.avoid, 0, false);
			say(s, PVCLUS_HA_R_QUORUM_REGAINED, 0);
			return 0;
		case PVCLUS_HA_EV_STOP_REQ:
			to_stopped(s);
			say(s, PVCLUS_HA_R_STOP_REQUESTED, 0);
			return 0;
		default:
			return cluster_wide(ev->type) ? 0 : -EINVAL;
		}
	}

	switch (ev->type) {
	case PVCLUS_HA_EV_STARTED:
		if (ev->node != x)
			return -EINVAL;
		to_running(s, x);
		say(s, PVCLUS_HA_R_STARTED, x);
		return 0;
	case PVCLUS_HA_EV_START_FAILED:
		if (ev->node != x)
			return -EINVAL;
		nobody_runs(s, x, true, ev->err);
		say(s, s->n.state == PVCLUS_HA_ERROR ? PVCLUS_HA_R_START_FAILED_LIMIT
						     : PVCLUS_HA_R_START_FAILED, x);
		s->entry.err = ev->err;
		return 0;
	case PVCLUS_HA_EV_STOP_REQ:
		s->n.want_running = false;
		to_stopping(s, x, false);
		say(s, PVCLUS_HA_R_STOP_REQUESTED, x);
		return 0;
	case PVCLUS_HA_EV_NODE_LEFT:
		if (ev->node != x)
			return 0;
		/* x may have taken the lock already: fence it first. */
		to_fence_wait(s, x, 0, false);
		say(s, PVCLUS_HA_R_NODE_LEFT, x);
		return 0;
	case PVCLUS_HA_EV_QUORUM_LOST:
		if (ev->node != x)
			return 0;
		to_stopping(s, x, false);
		say(s, PVCLUS_HA_R_QUORUM_LOST, x);
		return 0;
	case PVCLUS_HA_EV_DEADLINE:
		/* The start is stuck: abort it on x (which may hold the lock)
		 * and count a failure; it is placed again once x says it
		 * stopped, never before. */
		if (s->n.start_failures < s->n.max_start_failures)
			s->n.start_failures++;
		s->n.avoid = x;
		to_stopping(s, x, true);
		say(s, PVCLUS_HA_R_DEADLINE, x);
		return 0;
	case PVCLUS_HA_EV_NODE_DRAIN:
		if (ev->node != x)
			return 0;
		say(s, PVCLUS_HA_R_DRAIN_WAIT, x); /* it moves once it runs */
		return 0;
	default:
		return cluster_wide(ev->type) ? 0 : -EINVAL;
	}
}

static int on_running(struct step *s, const struct pvclus_ha_event *ev)
{
	uint32_t x = s->n.owner;

	switch (ev->type) {
	case PVCLUS_HA_EV_STOP_REQ:
		s->n.want_running = false;
		to_stopping(s, x, false);
		say(s, PVCLUS_HA_R_STOP_REQUESTED, x);
		return 0;
	case PVCLUS_HA_EV_VMM_EXITED:
		if (ev->node != x)
			return -EINVAL;
		vmm_gone(s, x, ev->crashed);
		return 0;
	case PVCLUS_HA_EV_HEARTBEAT_LOST:
		if (ev->node != x)
			return -EINVAL;
		return heartbeat_lost(s, x, ev->detail);
	case PVCLUS_HA_EV_RUN_STABLE:
		if (!s->n.restarts && !s->n.start_failures && !s->n.busy_failures)
			return 0;
		s->n.restarts = 0;
		s->n.start_failures = 0;
		s->n.busy_failures = 0;
		say(s, PVCLUS_HA_R_RUN_STABLE, x);
		return 0;
	case PVCLUS_HA_EV_NODE_LEFT:
		if (ev->node != x)
			return 0;
		to_fence_wait(s, x, 0, false);
		say(s, PVCLUS_HA_R_NODE_LEFT, x);
		return 0;
	case PVCLUS_HA_EV_QUORUM_LOST:
		if (ev->node != x)
			return 0;
		to_stopping(s, x, false);
		say(s, PVCLUS_HA_R_QUORUM_LOST, x);
		return 0;
	case PVCLUS_HA_EV_MIGRATE_START:
		if (ev->node == x)
			return -EINVAL;
		s->n.state = PVCLUS_HA_MIGRATING;
		s->n.target = ev->node;
		op(s, PVCLUS_HA_ACT_MIGRATE, x, ev->node, false);
		say(s, PVCLUS_HA_R_MIGRATE_STARTED, ev->node);
		return 0;
	case PVCLUS_HA_EV_NODE_DRAIN:
		if (ev->node != x)
			return 0;
		op(s, PVCLUS_HA_ACT_PLACE_MIGRATION, x, 0, false);
		say(s, PVCLUS_HA_R_DRAIN, x);
		return 0;
	case PVCLUS_HA_EV_UNPLACEABLE: /* no target for a drain or a rebalance */
		say(s, PVCLUS_HA_R_UNPLACEABLE, x);
		s->entry.detail = ev->detail;
		return 0;
	default:
		return cluster_wide(ev->type) ? 0 : -EINVAL;
	}
}

/*
 * migrating: the source x holds the lock until it hands it over; the target
 * y runs the guest only once it took it. The agents' contract:
 *   - the source reports MIGRATE_FAILED if it abandons before releasing the
 *     lock (it resumes), MIGRATE_HANDED_OVER when it released it (it never
 *     resumes), VMM_EXITED only for an exit before the handover;
 *   - the target reports MIGRATE_FAILED if it gives up before it has the
 *     whole state, START_FAILED if it has it but could not take the lock or
 *     resume, MIGRATE_DONE once it holds the lock and runs the guest.
 * Before the handover only the source's word says who runs the guest.
 */
static int on_migrating(struct step *s, const struct pvclus_ha_event *ev)
{
	uint32_t x = s->n.owner, y = s->n.target;
	bool h = s->n.handed_over;

	switch (ev->type) {
	case PVCLUS_HA_EV_MIGRATE_DONE:
		if (!y || ev->node != y)
			return -EINVAL;
		finish_on(s, y);
		say(s, PVCLUS_HA_R_MIGRATED, y);
		return 0;
	case PVCLUS_HA_EV_MIGRATE_FAILED:
		if (h)
			return -EINVAL; /* nobody abandons after the handover */
		if (ev->node == x) {
			finish_on(s, x);
			say(s, PVCLUS_HA_R_MIGRATE_FAILED, x);
			return 0;
		}
		if (!y || ev->node != y)
			return -EINVAL;
		goto target_gave_up;
	case PVCLUS_HA_EV_START_FAILED:
		if (!y || ev->node != y)
			return -EINVAL;
		if (h) {
			/* The source released the lock and the target could
			 * not take it or resume: nobody runs it. */
			nobody_runs(s, y, true, ev->err);
			say(s, PVCLUS_HA_R_MIGRATE_TARGET_FAILED, y);
			s->entry.err = ev->err;
			return 0;
		}
		goto target_gave_up;
	case PVCLUS_HA_EV_MIGRATE_HANDED_OVER:
		if (ev->node != x || h)
			return -EINVAL;
		if (!y) {
			/* The target gave up after the source let go. */
			nobody_runs(s, s->n.avoid, true, 0);
			say(s, PVCLUS_HA_R_MIGRATE_TARGET_FAILED, x);
			return 0;
		}
		s->n.handed_over = true;
		say(s, PVCLUS_HA_R_MIGRATE_HANDED_OVER, x);
		return 0;
	case PVCLUS_HA_EV_VMM_EXITED:
		if (ev->node != x || h)
			return -EINVAL;
		if (y)
			op(s, PVCLUS_HA_ACT_ABORT_MIGRATION, x, y, false);
		vmm_gone(s, x, ev->crashed);
		return 0;
	case PVCLUS_HA_EV_HEARTBEAT_LOST:
		/* x killed its VMM while the guest still ran there, and the
		 * migration was started before that word came (random seed
		 * 8580): as vmm-exited(x). The source never began (its VMM was
		 * gone), so nothing to abort there; the target's incoming VMM
		 * ends once the record no longer moves the guest to it. */
		if (ev->node != x || h)
			return -EINVAL;
		return heartbeat_lost(s, x, ev->detail);
	case PVCLUS_HA_EV_NODE_LEFT:
		if (ev->node == x) {
			if (h) { /* x let go: the guest's fate is y's */
				say(s, PVCLUS_HA_R_NODE_LEFT, x);
				return 0;
			}
			to_fence_wait(s, x, y, false);
			say(s, PVCLUS_HA_R_NODE_LEFT, x);
			return 0;
		}
		if (y && ev->node == y) {
			to_fence_wait(s, y, h ? 0 : x, true);
			say(s, PVCLUS_HA_R_NODE_LEFT, y);
			return 0;
		}
		return 0;
	case PVCLUS_HA_EV_QUORUM_LOST:
		if (ev->node == x && !h) {
			if (y)
				op(s, PVCLUS_HA_ACT_ABORT_MIGRATION, x, y, false);
			to_stopping(s, x, false);
			say(s, PVCLUS_HA_R_QUORUM_LOST, x);
			return 0;
		}
		if (y && ev->node == y) {
			if (h) {
				to_stopping(s, y, false);
			} else {
				op(s, PVCLUS_HA_ACT_STOP, y, 0, false);
				s->n.target = 0;
				s->n.avoid = y;
			}
			say(s, PVCLUS_HA_R_QUORUM_LOST, y);
			return 0;
		}
		return 0;
	case PVCLUS_HA_EV_STOP_REQ:
		if (!s->n.want_running)
			return -EINVAL;
		s->n.want_running = false;
		if (!h && y)
			op(s, PVCLUS_HA_ACT_ABORT_MIGRATION, x, y, false);
		say(s, PVCLUS_HA_R_STOP_REQUESTED, x);
		return 0;
	case PVCLUS_HA_EV_START_REQ:
		if (s->n.want_running)
			return -EINVAL;
		want_running(s);
		say(s, PVCLUS_HA_R_START_REQUESTED, x);
		return 0;
	case PVCLUS_HA_EV_DEADLINE:
		if (!h && y)
			op(s, PVCLUS_HA_ACT_ABORT_MIGRATION, x, y, false);
		say(s, PVCLUS_HA_R_DEADLINE, h ? y : x);
		return 0;
	case PVCLUS_HA_EV_NODE_DRAIN:
		if (!y || ev->node != y)
			return 0;
		if (!h)
			op(s, PVCLUS_HA_ACT_ABORT_MIGRATION, x, y, false);
		say(s, PVCLUS_HA_R_DRAIN_WAIT, y);
		return 0;
	default:
		return cluster_wide(ev->type) ? 0 : -EINVAL;
	}

target_gave_up:
	/* The target does not run it; the source still decides whether it
	 * resumes (MIGRATE_FAILED) or had let go (MIGRATE_HANDED_OVER). */
	op(s, PVCLUS_HA_ACT_ABORT_MIGRATION, x, y, false);
	s->n.target = 0;
	s->n.avoid = y;
	say(s, PVCLUS_HA_R_MIGRATE_TARGET_FAILED, y);
	s->entry.err = ev->err;
	return 0;
}

static int on_stopping(struct step *s, const struct pvclus_ha_event *ev)
{
	uint32_t x = s->n.owner;

	switch (ev->type) {
	case PVCLUS_HA_EV_STOPPED:
		if (ev->node != x)
			return -EINVAL;
		/* With want_running, this stop was a quorum loss, an aborted
		 * start or a start request after a stop: place it again. */
		nobody_runs(s, s->n.avoid, false, 0);
		say(s, PVCLUS_HA_R_STOPPED, x);
		return 0;
	case PVCLUS_HA_EV_STOP_REQ:
		if (!s->n.want_running)
			return -EINVAL;
		s->n.want_running = false;
		say(s, PVCLUS_HA_R_STOP_REQUESTED, x);
		return 0;
	case PVCLUS_HA_EV_START_REQ:
		if (s->n.want_running)
			return -EINVAL;
		want_running(s);
		say(s, PVCLUS_HA_R_START_REQUESTED, x);
		return 0;
	case PVCLUS_HA_EV_NODE_LEFT:
		if (ev->node != x)
			return 0;
		to_fence_wait(s, x, 0, false);
		say(s, PVCLUS_HA_R_NODE_LEFT, x);
		return 0;
	case PVCLUS_HA_EV_DEADLINE:
		op(s, PVCLUS_HA_ACT_STOP, x, 0, true);
		say(s, PVCLUS_HA_R_DEADLINE, x);
		return 0;
	default:
		return cluster_wide(ev->type) ? 0 : -EINVAL;
	}
}

static int on_fence_wait(struct step *s, const struct pvclus_ha_event *ev)
{
	uint32_t p = s->n.peer;
	bool src = s->n.peer_is_source;

	switch (ev->type) {
	case PVCLUS_HA_EV_NODE_LEFT:
		if (!p || ev->node != p)
			return 0;
		s->n.peer = 0;
		s->n.peer_is_source = false;
		fw_add(s, p);
		say(s, PVCLUS_HA_R_NODE_LEFT, p);
		return 0;
	case PVCLUS_HA_EV_NODE_FENCED:
		if (!fw_has(&s->n, ev->node))
			return 0; /* the peer's fence is composed in pvclus_ha_step */
		fw_remove(&s->n, ev->node);
		s->n.fenced = ev->node;
		say(s, PVCLUS_HA_R_FENCE_CONFIRMED, ev->node);
		fw_resolve(s);
		return 0;
	case PVCLUS_HA_EV_MIGRATE_DONE:
		if (!p || src || ev->node != p)
			return -EINVAL;
		finish_on(s, p);
		say(s, PVCLUS_HA_R_MIGRATED, p);
		return 0;
	case PVCLUS_HA_EV_START_FAILED:
		if (!p || src || ev->node != p)
			return -EINVAL;
		goto peer_does_not_run;
	case PVCLUS_HA_EV_MIGRATE_FAILED:
		if (!p || ev->node != p)
			return -EINVAL;
		if (src) { /* the source kept the lock and resumed */
			finish_on(s, p);
			say(s, PVCLUS_HA_R_MIGRATE_FAILED, p);
			return 0;
		}
		goto peer_does_not_run;
	case PVCLUS_HA_EV_MIGRATE_HANDED_OVER:
		if (!p || !src || ev->node != p)
			return -EINVAL;
		s->n.peer = 0;
		s->n.peer_is_source = false;
		say(s, PVCLUS_HA_R_MIGRATE_HANDED_OVER, p);
		fw_resolve(s);
		return 0;
	case PVCLUS_HA_EV_VMM_EXITED:
		/* The source's VMM ended before the handover: the source
		 * holds the lock, the departed target never had it. */
		if (!p || !src || ev->node != p)
			return -EINVAL;
		s->n.fence[0] = s->n.fence[1] = 0;
		s->n.peer = 0;
		s->n.peer_is_source = false;
		s->n.fenced = 0;
		vmm_gone(s, p, ev->crashed);
		return 0;
	case PVCLUS_HA_EV_STOP_REQ:
		if (!s->n.want_running)
			return -EINVAL;
		s->n.want_running = false;
		say(s, PVCLUS_HA_R_STOP_REQUESTED, 0);
		return 0;
	case PVCLUS_HA_EV_START_REQ:
		if (s->n.want_running)
			return -EINVAL;
		want_running(s);
		say(s, PVCLUS_HA_R_START_REQUESTED, 0);
		return 0;
	case PVCLUS_HA_EV_DEADLINE:
	case PVCLUS_HA_EV_QUORUM_REGAINED:
		if (ev->type == PVCLUS_HA_EV_QUORUM_REGAINED && !s->n.fence[0])
			return 0;
		for (int i = 0; i < 2; i++)
			if (s->n.fence[i])
				op(s, PVCLUS_HA_ACT_FENCE, s->n.fence[i], 0, false);
		say(s, ev->type == PVCLUS_HA_EV_DEADLINE ? PVCLUS_HA_R_DEADLINE
							 : PVCLUS_HA_R_QUORUM_REGAINED,
		    s->n.fence[0] ? s->n.fence[0] : p);
		return 0;
	case PVCLUS_HA_EV_QUORUM_LOST:
		if (!p || ev->node != p)
			return 0;
		/* The local node is the surviving party: stop its copy. */
		op(s, PVCLUS_HA_ACT_STOP, p, 0, false);
		s->n.peer = 0;
		s->n.peer_is_source = false;
		say(s, PVCLUS_HA_R_QUORUM_LOST, p);
		fw_resolve(s);
		return 0;
	default:
		return cluster_wide(ev->type) ? 0 : -EINVAL;
	}

peer_does_not_run:
	/* The surviving target gave up: only the departed source may hold the
	 * lock, and it is (being) fenced. */
	s->n.peer = 0;
	s->n.peer_is_source = false;
	s->n.avoid = p;
	say(s, PVCLUS_HA_R_MIGRATE_TARGET_FAILED, p);
	s->entry.err = ev->err;
	fw_resolve(s);
	return 0;
}

static int dispatch(struct step *s, const struct pvclus_ha_event *ev)
{
	switch (s->n.state) {
	case PVCLUS_HA_STOPPED:
	case PVCLUS_HA_ERROR:
		return on_idle(s, ev);
	case PVCLUS_HA_STARTING:
	case PVCLUS_HA_RECOVERING:
		return on_starting(s, ev);
	case PVCLUS_HA_RUNNING:
		return on_running(s, ev);
	case PVCLUS_HA_MIGRATING:
		return on_migrating(s, ev);
	case PVCLUS_HA_STOPPING:
		return on_stopping(s, ev);
	case PVCLUS_HA_FENCE_WAIT:
		return on_fence_wait(s, ev);
	default:
		return -EINVAL;
	}
}

/* ---- the public face ---------------------------------------------------- */

bool pvclus_ha_transient(int32_t err)
{
	return err == -EBUSY || err == -ETIMEDOUT;
}

void pvclus_ha_init(struct pvclus_ha_guest *g)
{
	memset(g, 0, sizeof(*g));
	g->state = PVCLUS_HA_STOPPED;
	g->reason = PVCLUS_HA_R_NONE;
	g->max_start_failures = PVCLUS_HA_DEFAULT_MAX_START_FAILURES;
	g->max_restarts = PVCLUS_HA_DEFAULT_MAX_RESTARTS;
}

int pvclus_ha_check(const struct pvclus_ha_guest *g)
{
	if (!g || (unsigned)g->state >= PVCLUS_HA_STATE_COUNT ||
	    (unsigned)g->reason >= PVCLUS_HA_R_COUNT || g->max_start_failures < 1 ||
	    g->start_failures > g->max_start_failures || g->busy_failures > PVCLUS_HA_MAX_BUSY_FAILURES ||
	    g->restarts > g->max_restarts ||
	    g->err > 0)
		return -EINVAL;

	bool fw = g->state == PVCLUS_HA_FENCE_WAIT;
	if (!fw && (g->fence[0] || g->fence[1] || g->peer || g->peer_is_source))
		return -EINVAL;
	if (g->state != PVCLUS_HA_MIGRATING && (g->target || g->handed_over))
		return -EINVAL;
	if ((g->state == PVCLUS_HA_ERROR) != (g->reason != PVCLUS_HA_R_NONE))
		return -EINVAL;
	if (g->state != PVCLUS_HA_ERROR && g->err)
		return -EINVAL;

	switch (g->state) {
	case PVCLUS_HA_STOPPED:
		return g->owner || g->want_running ? -EINVAL : 0;
	case PVCLUS_HA_ERROR:
		return g->owner ? -EINVAL : 0;
	case PVCLUS_HA_STARTING:
		return !g->want_running || g->fenced ? -EINVAL : 0;
	case PVCLUS_HA_RECOVERING:
		return !g->want_running || !g->fenced ? -EINVAL : 0;
	case PVCLUS_HA_RUNNING:
		/* exactly one owner, holding the lock */
		return !g->want_running || !g->owner || g->fenced ? -EINVAL : 0;
	case PVCLUS_HA_MIGRATING:
		if (!g->owner || g->target == g->owner || g->fenced)
			return -EINVAL;
		return !g->target && g->handed_over ? -EINVAL : 0;
	case PVCLUS_HA_STOPPING:
		return g->owner ? 0 : -EINVAL;
	case PVCLUS_HA_FENCE_WAIT:
		if (g->owner)
			return -EINVAL;
		if (!g->fence[0] && g->fence[1])
			return -EINVAL;
		if (g->fence[0] && g->fence[0] == g->fence[1])
			return -EINVAL;
		if (!g->fence[0] && !g->peer)
			return -EINVAL; /* nothing to wait for */
		if (g->peer && (g->peer == g->fence[0] || g->peer == g->fence[1]))
			return -EINVAL;
		if (g->peer && g->fence[1])
			return -EINVAL; /* a peer joins the set only by leaving */
		if (g->peer && !g->fence[0] && !g->fenced)
			return -EINVAL; /* a peer is awaited only after the other party left */
		if (!g->peer && g->peer_is_source)
			return -EINVAL;
		return 0;
	default:
		return -EINVAL;
	}
}

static bool needs_node(enum pvclus_ha_event_type t)
{
	switch (t) {
	case PVCLUS_HA_EV_START_REQ:
	case PVCLUS_HA_EV_STOP_REQ:
	case PVCLUS_HA_EV_DELETE_REQ:
	case PVCLUS_HA_EV_UNPLACEABLE:
	case PVCLUS_HA_EV_RUN_STABLE:
	case PVCLUS_HA_EV_QUORUM_REGAINED:
	case PVCLUS_HA_EV_DEADLINE:
		return false;
	default:
		return true;
	}
}

bool pvclus_ha_equal(const struct pvclus_ha_guest *a, const struct pvclus_ha_guest *b)
{
	return a->state == b->state && a->want_running == b->want_running &&
	       a->owner == b->owner && a->target == b->target &&
	       a->handed_over == b->handed_over && a->fence[0] == b->fence[0] &&
	       a->fence[1] == b->fence[1] && a->peer == b->peer &&
	       a->peer_is_source == b->peer_is_source && a->fenced == b->fenced &&
	       a->avoid == b->avoid && a->start_failures == b->start_failures &&
	       a->busy_failures == b->busy_failures &&
	       a->restarts == b->restarts && a->max_start_failures == b->max_start_failures &&
	       a->max_restarts == b->max_restarts && a->reason == b->reason && a->err == b->err &&
	       a->hb_moved == b->hb_moved;
}

static int run(const struct pvclus_ha_guest *g, const struct pvclus_ha_event *ev, struct step *s)
{
	memset(s, 0, sizeof(*s));
	s->n = *g;
	return dispatch(s, ev);
}

int pvclus_ha_step(const struct pvclus_ha_guest *g, const struct pvclus_ha_event *ev,
		   struct pvclus_ha_guest *next, struct pvclus_ha_actions *out)
{
	struct step s;
	int rc;

	if (out)
		out->n = 0;
	if (!g || !next || !out)
		return -EINVAL;
	if (!ev || pvclus_ha_check(g) < 0 || (unsigned)ev->type >= PVCLUS_HA_EV_COUNT ||
	    (needs_node(ev->type) && !ev->node) || ev->err > 0)
		goto refuse;

	if (ev->type == PVCLUS_HA_EV_NODE_FENCED &&
	    !(g->state == PVCLUS_HA_FENCE_WAIT && fw_has(g, ev->node))) {
		/* A fence confirmed for a node the guest was not yet waiting
		 * on (fenced by the operator, or a surviving migration party)
		 * is the node leaving and then its fence: compose the two,
		 * keeping only the second step's actions. */
		struct pvclus_ha_event left = *ev;
		struct step first;

		left.type = PVCLUS_HA_EV_NODE_LEFT;
		if (run(g, &left, &first) < 0)
			goto refuse;
		if (first.n.state != PVCLUS_HA_FENCE_WAIT || !fw_has(&first.n, ev->node)) {
			*next = *g; /* the fence does not concern this guest */
			return 0;
		}
		rc = run(&first.n, ev, &s);
	} else {
		rc = run(g, ev, &s);
	}
	if (rc < 0)
		goto refuse;

	bool changed = !pvclus_ha_equal(g, &s.n);
	/* A step that changed the record or asks for something without a log
	 * entry, or that reaches a record the machine must never reach, is a
	 * bug in this file: stop rather than act on it. */
	if (((changed || s.n_ops) && !s.log) || pvclus_ha_check(&s.n) < 0)
		abort();

	if (changed)
		out->a[out->n++] = (struct pvclus_ha_action){ .kind = PVCLUS_HA_ACT_PERSIST };
	if (s.log)
		out->a[out->n++] = s.entry;
	for (unsigned i = 0; i < s.n_ops; i++)
		out->a[out->n++] = s.ops[i];
	*next = s.n;
	return 0;

refuse:
	if (next != g)
		*next = *g;
	return -EINVAL;
}

/* ---- names -------------------------------------------------------------- */

const char *pvclus_ha_state_str(enum pvclus_ha_state st)
{
	static const char *const names[PVCLUS_HA_STATE_COUNT] = {
		[PVCLUS_HA_STOPPED] = "stopped",       [PVCLUS_HA_STARTING] = "starting",
		[PVCLUS_HA_RUNNING] = "running",       [PVCLUS_HA_MIGRATING] = "migrating",
		[PVCLUS_HA_STOPPING] = "stopping",     [PVCLUS_HA_FENCE_WAIT] = "fence-wait",
		[PVCLUS_HA_RECOVERING] = "recovering", [PVCLUS_HA_ERROR] = "error",
	};
	return (unsigned)st < PVCLUS_HA_STATE_COUNT ? names[st] : "?";
}

const char *pvclus_ha_event_str(enum pvclus_ha_event_type t)
{
	static const char *const names[PVCLUS_HA_EV_COUNT] = {
		[PVCLUS_HA_EV_START_REQ] = "start-requested",
		[PVCLUS_HA_EV_STOP_REQ] = "stop-requested",
		[PVCLUS_HA_EV_DELETE_REQ] = "delete-requested",
		[PVCLUS_HA_EV_PLACED] = "placed",
		[PVCLUS_HA_EV_UNPLACEABLE] = "unplaceable",
		[PVCLUS_HA_EV_STARTED] = "started",
		[PVCLUS_HA_EV_START_FAILED] = "start-failed",
		[PVCLUS_HA_EV_STOPPED] = "stopped",
		[PVCLUS_HA_EV_VMM_EXITED] = "vmm-exited",
		[PVCLUS_HA_EV_RUN_STABLE] = "run-stable",
		[PVCLUS_HA_EV_NODE_LEFT] = "node-left",
		[PVCLUS_HA_EV_NODE_FENCED] = "node-fenced",
		[PVCLUS_HA_EV_QUORUM_LOST] = "quorum-lost",
		[PVCLUS_HA_EV_QUORUM_REGAINED] = "quorum-regained",
		[PVCLUS_HA_EV_NODE_DRAIN] = "node-drain",
		[PVCLUS_HA_EV_MIGRATE_START] = "migrate-start",
		[PVCLUS_HA_EV_MIGRATE_HANDED_OVER] = "migrate-handed-over",
		[PVCLUS_HA_EV_MIGRATE_DONE] = "migrate-done",
		[PVCLUS_HA_EV_MIGRATE_FAILED] = "migrate-failed",
		[PVCLUS_HA_EV_DEADLINE] = "deadline",
		[PVCLUS_HA_EV_HEARTBEAT_LOST] = "heartbeat-lost",
	};
	return (unsigned)t < PVCLUS_HA_EV_COUNT ? names[t] : "?";
}

const char *pvclus_ha_reason_str(enum pvclus_ha_reason r)
{
	static const char *const names[PVCLUS_HA_R_COUNT] = {
		[PVCLUS_HA_R_NONE] = "none",
		[PVCLUS_HA_R_START_REQUESTED] = "start requested",
		[PVCLUS_HA_R_STOP_REQUESTED] = "stop requested",
		[PVCLUS_HA_R_DELETE_REQUESTED] = "delete requested",
		[PVCLUS_HA_R_PLACED] = "placed by the scheduler",
		[PVCLUS_HA_R_UNPLACEABLE] = "no node can take it now",
		[PVCLUS_HA_R_STARTED] = "started",
		[PVCLUS_HA_R_START_FAILED] = "start failed, placing it again",
		[PVCLUS_HA_R_START_FAILED_LIMIT] = "start failed too many times in a row",
		[PVCLUS_HA_R_STOPPED] = "stopped",
		[PVCLUS_HA_R_GUEST_POWERED_OFF] = "the guest powered itself off",
		[PVCLUS_HA_R_CRASH_RESTART] = "crashed, restarting in place",
		[PVCLUS_HA_R_CRASH_LIMIT] = "crashed more often than the policy restarts",
		[PVCLUS_HA_R_RUN_STABLE] = "ran long enough, restart count reset",
		[PVCLUS_HA_R_NODE_LEFT] = "its node left the membership, fencing it",
		[PVCLUS_HA_R_FENCE_CONFIRMED] = "fence confirmed",
		[PVCLUS_HA_R_QUORUM_LOST] = "quorum lost, stopping the local copy",
		[PVCLUS_HA_R_QUORUM_REGAINED] = "quorum regained, asking again",
		[PVCLUS_HA_R_DRAIN] = "its node is draining, finding a migration target",
		[PVCLUS_HA_R_DRAIN_WAIT] = "the node is draining, it moves once settled",
		[PVCLUS_HA_R_MIGRATE_STARTED] = "migration started",
		[PVCLUS_HA_R_MIGRATE_HANDED_OVER] = "the source handed the lock over",
		[PVCLUS_HA_R_MIGRATED] = "migrated",
		[PVCLUS_HA_R_MIGRATE_FAILED] = "migration abandoned, the source runs it",
		[PVCLUS_HA_R_MIGRATE_TARGET_FAILED] = "the migration target gave up",
		[PVCLUS_HA_R_DEADLINE] = "a step missed its deadline",
		[PVCLUS_HA_R_HEARTBEAT_RESTART] = "heartbeat lost, restarting in place",
		[PVCLUS_HA_R_HEARTBEAT_MOVE] = "heartbeat lost too often on its node, moving it",
		[PVCLUS_HA_R_HEARTBEAT_LIMIT] = "heartbeat lost too often, also after a move",
	};
	return (unsigned)r < PVCLUS_HA_R_COUNT ? names[r] : "?";
}

const char *pvclus_ha_action_str(enum pvclus_ha_action_kind k)
{
	static const char *const names[PVCLUS_HA_ACT_COUNT] = {
		[PVCLUS_HA_ACT_PERSIST] = "persist",
		[PVCLUS_HA_ACT_LOG] = "log",
		[PVCLUS_HA_ACT_PLACE] = "place",
		[PVCLUS_HA_ACT_PLACE_MIGRATION] = "place-migration",
		[PVCLUS_HA_ACT_FENCE] = "fence",
		[PVCLUS_HA_ACT_DELETE] = "delete",
		[PVCLUS_HA_ACT_START] = "start",
		[PVCLUS_HA_ACT_RECOVER] = "recover",
		[PVCLUS_HA_ACT_STOP] = "stop",
		[PVCLUS_HA_ACT_RELEASE_LOCK] = "release-lock",
		[PVCLUS_HA_ACT_MIGRATE] = "migrate",
		[PVCLUS_HA_ACT_ABORT_MIGRATION] = "abort-migration",
	};
	return (unsigned)k < PVCLUS_HA_ACT_COUNT ? names[k] : "?";
}
