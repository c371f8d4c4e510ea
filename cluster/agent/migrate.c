/*
 * Live migrations, drains and rebalancing (docs/maintenance.md):
 *
 * - A migration of guest G from x to y follows the HA machine's MIGRATING
 *   state (cluster/ha.h): on MIGRATE(x, y) the agent of y starts an incoming
 *   VMM (listening on its address, the owner lock's cookie its own
 *   incarnation) and, once it listens, multicasts MigrateReady with its port;
 *   the agent of x then asks its VMM to migrate there (with the downtime
 *   budget of the MigrateRequest), polls its progress and multicasts it
 *   (MigrateProgress), and reports MIGRATE_HANDED_OVER once the VMM let go of
 *   the lock, or MIGRATE_FAILED when it gave up before. The agent of y
 *   reports MIGRATE_DONE when its VMM runs the guest, or MIGRATE_FAILED /
 *   START_FAILED when its VMM ends before.
 * - Node modes: `pvha node drain N` writes N's mode (draining) to RADOS and
 *   multicasts NodeMode; the leader's pump (every 500 ms) asks every guest
 *   running on a draining node to move (NODE_DRAIN -> PLACE_MIGRATION -> the
 *   scheduler's evacuation target -> MIGRATE_START) and, once nothing runs or
 *   is placed there, makes it `maintenance`. `pvha node resume N` makes it
 *   active again.
 * - Rebalancing: the planner (pvclus_rebalance_plan) over the current view;
 *   `pvha cluster rebalance` shows the plan and starts its migrations; the
 *   leader runs it by itself when rebalance_threshold is set (hysteresis:
 *   the planner's threshold and target, a minimum gain, and a cool-down per
 *   guest).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PUMP_MS 500
#define DRAIN_ASK_AGAIN_MS 5000  /* a drained guest that did not move is asked again */
#define SOURCE_POLL_MS 50
#define TARGET_POLL_MS 10
#define PROGRESS_EVERY_MS 200
#define INCOMING_DEADLINE_MS 15000
#define MIGRATE_DEADLINE_MS 120000 /* a migration not handed over by then is cancelled */
#define REBALANCE_EVERY_MS 10000
#define REBALANCE_COOLDOWN_MS (10 * 60 * 1000) /* a guest the rebalancer moved stays put this long */
#define REBALANCE_DEFAULT_THRESHOLD 0.20
#define REBALANCE_MIN_GAIN 0.01

static struct mig *mig_of(struct pvclus_agent *a, const struct guest *g)
{
	return &a->migs[g - a->g];
}

unsigned agent_migrate_guests_on(struct pvclus_agent *a, uint32_t node)
{
	unsigned n = 0;
	for (int i = 0; i < MAX_GUESTS; i++) {
		const struct guest *g = &a->g[i];
		if (g->used && (g->ha.owner == node || (g->ha.state == PVCLUS_HA_MIGRATING && g->ha.target == node)))
			n++;
	}
	return n;
}

/* ---- the scheduler's view ------------------------------------------------ */

/* The placement view (agent_sched_view: nodes, rules, every running or placed
 * guest) with only running guests free to move. */
static int view_build(struct pvclus_agent *a, struct agent_view *v)
{
	int err = agent_sched_view(a, v);
	if (err)
		return err;
	for (size_t k = 0; k < v->n_guests; k++)
		if (v->of[k]->ha.state != PVCLUS_HA_RUNNING)
			v->guests[k].pinned = true;
	return 0;
}

/* ---- starting a migration ------------------------------------------------ */

static void send_request(struct pvclus_agent *a, struct guest *g, uint32_t target, uint32_t downtime_ms, const char *why)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__MigrateRequest r = PVHA__MIGRATE_REQUEST__INIT;
	r.uuid.data = g->spec.uuid;
	r.uuid.len = 16;
	r.target = target;
	r.downtime_ms = downtime_ms;
	r.why = (char *)why;
	uint8_t key[32];
	int err = a->ops->random(a->ctx, key, sizeof(key));
	if (err) {
		alog_err(a, err, "guest %s: no secret for the migration link: not migrating", g->spec.name);
		return;
	}
	r.key.data = key;
	r.key.len = sizeof(key);
	msg.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST;
	msg.migrate_request = &r;
	agent_send(a, &msg);
	guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_START, target, false, 0, 0);
}

/* PLACE_MIGRATION: a target away from `from` for a drained guest. */
static void place_migration(struct pvclus_agent *a, struct guest *g, uint32_t from)
{
	struct agent_view *v = a->mig_view;
	struct pvclus_placement *out = a->mig_out;
	int fi = agent_node_index(a, from);
	int err = view_build(a, v);
	size_t k;
	for (k = 0; !err && k < v->n_guests && v->of[k] != g; k++)
		;
	if (err || k == v->n_guests || fi < 0 || v->guests[k].node != from) {
		alog_info(a, "guest %s: no longer runs on %s: nothing to move", g->spec.name, agent_node_name(a, from));
		return;
	}
	/* the scheduler evacuates a node in maintenance: every guest of it, by
	 * priority, with the rules and memory of the others; this one's answer
	 * is taken */
	v->nodes[fi].maintenance = true;
	size_t nout = 0;
	err = pvclus_sched_evacuate(&v->view, v->guests, v->n_guests, from, out, &nout);
	if (err) {
		alog_err(a, err, "guest %s: the scheduler failed", g->spec.name);
		return;
	}
	for (size_t o = 0; o < nout; o++) {
		if (out[o].index != k)
			continue;
		if (!out[o].node) {
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_UNPLACEABLE, 0, false, 0, out[o].reason);
			return;
		}
		char why[64];
		snprintf(why, sizeof(why), "drain of %s", agent_node_name(a, from));
		send_request(a, g, out[o].node, 0, why);
		return;
	}
	alog_info(a, "guest %s: the scheduler left it where it is", g->spec.name);
}

/* ---- the target's side --------------------------------------------------- */

static void target_poll(void *data);

/* This node receives g, and g's source left before it let go of the lock:
 * the guest waits in fence-wait for this target's word. */
static bool source_left(struct pvclus_agent *a, const struct guest *g)
{
	return g->ha.state == PVCLUS_HA_FENCE_WAIT && g->ha.peer == a->local && !g->ha.peer_is_source;
}

static void target_failed(struct pvclus_agent *a, struct guest *g, int err)
{
	struct mig *m = mig_of(a, g);
	m->incoming = false;
	bool after = g->ha.state == PVCLUS_HA_MIGRATING && g->ha.handed_over;
	guests_send_event(a, g->spec.uuid, after ? PVCLUS_HA_EV_START_FAILED : PVCLUS_HA_EV_MIGRATE_FAILED, a->local,
			  false, err, 0);
}

void agent_migrate_watch_incoming(struct pvclus_agent *a, struct guest *g)
{
	struct mig *m = mig_of(a, g);
	if (m->incoming)
		return;
	m->incoming = true;
	m->ready_sent = false; /* said again if it still listens: a source that sends ignores it */
	m->in_source = g->ha.owner;
	m->in_spawn_ms = agent_now_ms(a);
	alog_info(a, "guest %s: watching the adopted incoming VMM again", g->spec.name);
	agent_timer(a, TARGET_POLL_MS, target_poll, g, &m->in_timer);
}

static void target_begin(struct pvclus_agent *a, struct guest *g, uint32_t source);

/* The guest's cephx key is known now (keys.c): begin, if this node is still
 * the migration's target and has not begun. */
static void target_keyed(struct pvclus_agent *a, struct guest *g, int err)
{
	struct mig *m = mig_of(a, g);
	if (g->ha.state != PVCLUS_HA_MIGRATING || g->ha.target != a->local || g->ha.handed_over || m->incoming ||
	    g->pid > 0)
		return;
	if (err) {
		target_failed(a, g, err);
		return;
	}
	target_begin(a, g, g->ha.owner);
}

static void target_begin(struct pvclus_agent *a, struct guest *g, uint32_t source)
{
	struct mig *m = mig_of(a, g);
	m->never_began_sent = false;
	if (!agent_key_then(a, g, target_keyed))
		return; /* target_keyed begins */
	if (g->pid > 0) {
		alog_warn(a, "guest %s: a VMM already runs here: cannot receive it", g->spec.name);
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -EEXIST, 0);
		return;
	}
	char hp[96];
	snprintf(hp, sizeof(hp), "%s:0", a->cfg.address);
	m->incoming = true;
	m->ready_sent = false;
	m->in_source = source;
	m->in_spawn_ms = agent_now_ms(a);
	int err = guests_spawn_incoming(a, g, hp, m->key, m->key_len);
	if (err) {
		alog_err(a, err, "guest %s: starting the incoming VMM", g->spec.name);
		target_failed(a, g, err);
		return;
	}
	agent_timer(a, 5, target_poll, g, &m->in_timer);
}

static void target_poll(void *data)
{
	struct guest *g = data;
	struct pvclus_agent *a = g->agent;
	struct mig *m = mig_of(a, g);
	if (!g->used || !m->incoming || g->pid <= 0)
		return;
	struct pvclus_vmm_status st;
	if (a->ops->vmm_status(a->ctx, g->spec.uuid, &st) == 0) {
		if (source_left(a, g) && !strcmp(st.state, "incoming")) {
			/* The source is gone before this VMM ran the guest: nothing
			 * more comes. Giving up now (the guest is then recovered
			 * from its disk once the source is fenced) instead of at
			 * the VMM's own incoming deadline. */
			alog_info(a, "guest %s: the migration source left: the incoming VMM gives up", g->spec.name);
			a->ops->vmm_kill(a->ctx, g->pid, true); /* reported when it is reaped */
			return;
		}
		if (!m->ready_sent && st.incoming_port) {
			Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
			Pvha__MigrateReady r = PVHA__MIGRATE_READY__INIT;
			r.uuid.data = g->spec.uuid;
			r.uuid.len = 16;
			r.target = a->local;
			r.addr = a->cfg.address;
			r.port = st.incoming_port;
			msg.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_READY;
			msg.migrate_ready = &r;
			if (agent_send(a, &msg) == 0)
				m->ready_sent = true;
		}
		if (!strcmp(st.state, "incoming") && !strcmp(st.migration_phase, "restoring") &&
		    !g->addr_up) {
			/* It took the lock (the source let the guest go and never
			 * runs it again) and holds the connections frozen until the
			 * address is here: put it up now, so that the peers' next
			 * segments come here (docs/migration.md "Connections"). */
			guests_address(a, g, true);
		}
		if (strcmp(st.state, "incoming") != 0 && strcmp(st.state, "stopped") != 0) {
			/* it took the lock and runs the guest: ours from now on, and
			 * so is its address (the source drops it when its VMM ends) */
			m->incoming = false;
			g->start_reported = true;
			if (!g->addr_up)
				guests_address(a, g, true);
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_DONE, a->local, false, 0, 0);
			return;
		}
	} else if (agent_now_ms(a) - m->in_spawn_ms > INCOMING_DEADLINE_MS) {
		alog_warn(a, "guest %s: the incoming VMM did not answer in %d ms; killing it", g->spec.name,
			  INCOMING_DEADLINE_MS);
		a->ops->vmm_kill(a->ctx, g->pid, true); /* reported when it is reaped */
		return;
	}
	agent_timer(a, TARGET_POLL_MS, target_poll, g, &m->in_timer);
}

/* ---- the source's side --------------------------------------------------- */

static void source_poll(void *data);
static void abort_source(struct pvclus_agent *a, struct guest *g);

static void send_progress(struct pvclus_agent *a, struct guest *g, struct pvclus_vmm_status *st, uint32_t target)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__MigrateProgress p = PVHA__MIGRATE_PROGRESS__INIT;
	p.uuid.data = g->spec.uuid;
	p.uuid.len = 16;
	p.source = a->local;
	p.target = target;
	p.phase = st->migration_phase;
	p.round = st->migration_round;
	p.bytes_sent = st->migration_bytes_sent;
	p.pages_left = st->migration_pages_left;
	p.rate_bps = st->migration_rate;
	p.downtime_us = st->migration_downtime_us;
	p.total_ms = st->migration_total_ms;
	p.error = st->migration_reason;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_PROGRESS;
	msg.migrate_progress = &p;
	agent_send(a, &msg);
}

static void source_begin(struct pvclus_agent *a, struct guest *g, const Pvha__MigrateReady *r)
{
	struct mig *m = mig_of(a, g);
	char why[256] = "";
	int err = a->ops->vmm_migrate(a->ctx, g->spec.uuid, r->addr, r->port, m->downtime_ms, m->key, m->key_len, why,
				      sizeof(why));
	if (err) {
		alog_warn(a, "guest %s: its VMM would not migrate to %s:%u: %s", g->spec.name, r->addr, r->port,
			  why[0] ? why : strerror(-err));
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, err, 0);
		return;
	}
	m->src_active = true;
	m->src_target = r->target;
	m->handed_over_sent = false;
	m->stop_sent = false;
	m->cancel_sent = false;
	m->last_progress_ms = 0;
	alog_info(a, "guest %s: migrating to %s (%s:%u, downtime budget %u ms)", g->spec.name,
		  agent_node_name(a, r->target), r->addr, r->port, m->downtime_ms ? m->downtime_ms : 10);
	agent_timer(a, SOURCE_POLL_MS, source_poll, g, &m->src_timer);
}

static void source_poll(void *data)
{
	struct guest *g = data;
	struct pvclus_agent *a = g->agent;
	struct mig *m = mig_of(a, g);
	struct pvclus_vmm_status st;
	if (!g->used || !m->src_active || g->pid <= 0)
		return;
	if (m->stop_sent) {
		a->ops->vmm_stop(a->ctx, g->spec.uuid);
	} else if (a->ops->vmm_status(a->ctx, g->spec.uuid, &st) == 0) {
		bool released = st.migration_released;
		bool done = !strcmp(st.migration_phase, "done");
		bool failed = !strcmp(st.migration_phase, "failed");
		uint64_t now = agent_now_ms(a);
		if (done || failed || released != m->handed_over_sent ||
		    now - m->last_progress_ms >= PROGRESS_EVERY_MS) {
			send_progress(a, g, &st, m->src_target);
			m->last_progress_ms = now;
		}
		if (released && !m->handed_over_sent) {
			m->handed_over_sent = true;
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_HANDED_OVER, a->local, false, 0, 0);
		}
		if (failed && !released) {
			m->src_active = false;
			alog_warn(a, "guest %s: migration failed: %s", g->spec.name, st.migration_reason);
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -EIO, 0);
			return;
		}
		if (released && (done || failed))
			m->stop_sent = true; /* it never runs the guest again: let it go */
		if (!released && !m->cancel_sent && st.migration_total_ms > MIGRATE_DEADLINE_MS) {
			alog_warn(a, "guest %s: migration not handed over after %d ms: cancelling it", g->spec.name,
				  MIGRATE_DEADLINE_MS);
			m->cancel_sent = true;
			abort_source(a, g);
		}
	}
	agent_timer(a, SOURCE_POLL_MS, source_poll, g, &m->src_timer);
}

/* ABORT_MIGRATION while the VMM sends: it gives up unless it has already let
 * go of the lock (then the handover goes on and is reported as such). */
static void abort_source(struct pvclus_agent *a, struct guest *g)
{
	char why[256] = "";
	int err = a->ops->vmm_migrate_cancel(a->ctx, g->spec.uuid, why, sizeof(why));
	if (err)
		alog_warn(a, "guest %s: its VMM did not take the cancel: %s", g->spec.name,
			  why[0] ? why : strerror(-err));
	/* source_poll reports what the VMM did: failed (kept the lock) or handed over */
}

void agent_migrate_forget(struct pvclus_agent *a, const struct guest *g)
{
	struct mig *m = mig_of(a, g);
	if (m->src_active)
		agent_timer_del(a, &m->src_timer);
	if (m->incoming)
		agent_timer_del(a, &m->in_timer);
	memset(m, 0, sizeof(*m));
}

void agent_migrate_after_step(struct pvclus_agent *a, struct guest *g)
{
	struct mig *m = mig_of(a, g);
	if (m->incoming && source_left(a, g)) {
		/* see target_poll: ask the VMM now rather than at the next poll */
		agent_timer_del(a, &m->in_timer);
		target_poll(g);
		if (!g->used)
			return;
	} else if (!m->incoming && g->pid <= 0 && source_left(a, g) && !m->never_began_sent) {
		/* The source left before this target spawned its incoming VMM
		 * (its key job was still out, the storage silent: random seeds
		 * 7527, 8960). Nothing of the guest runs here, and target_keyed
		 * begins nothing any more: say so now, or the guest waits in
		 * fence-wait for this target's word for ever. */
		alog_info(a, "guest %s: the migration source left before this target began: giving it up",
			  g->spec.name);
		m->never_began_sent = true;
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -ECANCELED, 0);
	} else if (m->incoming && g->pid > 0 && !(g->ha.state == PVCLUS_HA_MIGRATING && g->ha.target == a->local)) {
		/* The cluster no longer moves g here (the source failed or
		 * cancelled before it sent anything, its VMM crashed and the
		 * guest restarts in place, ...): an incoming VMM that has not
		 * taken the guest waits for nobody. Left alone it would hold
		 * the guest's slot here until its own incoming deadline, and
		 * refuse the next migration to this node (campaign failure 9). */
		struct pvclus_vmm_status st;
		if (a->ops->vmm_status(a->ctx, g->spec.uuid, &st) == 0 && !strcmp(st.state, "incoming")) {
			alog_info(a, "guest %s: the migration here was given up: the incoming VMM ends",
				  g->spec.name);
			agent_timer_del(a, &m->in_timer);
			a->ops->vmm_kill(a->ctx, g->pid, true); /* reported when it is reaped */
		}
	}
	if (g->ha.state == PVCLUS_HA_FENCE_WAIT && g->ha.peer == a->local && g->ha.peer_is_source &&
	    !m->handed_over_sent && !m->cancel_sent && g->pid > 0) {
		alog_info(a, "guest %s: the migration target left: giving the migration up", g->spec.name);
		m->cancel_sent = true;
		if (m->src_active)
			abort_source(a, g); /* source_poll reports what the VMM did */
		else /* the VMM was never asked (the target never said where): it keeps the guest */
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -ECANCELED,
					  0);
	}
}

bool agent_migrate_vmm_ended(struct pvclus_agent *a, struct guest *g, int code)
{
	struct mig *m = mig_of(a, g);
	if (m->incoming) {
		alog_warn(a, "guest %s: the incoming VMM ended (exit %d) before it ran the guest", g->spec.name, code);
		target_failed(a, g, agent_vmm_start_error(code));
		return true;
	}
	if (m->src_active) {
		m->src_active = false;
		agent_timer_del(a, &m->src_timer);
		if (code == PVCLUS_VMM_EXIT_MIGRATED && !m->handed_over_sent) {
			/* it handed over between two polls */
			m->handed_over_sent = true;
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_HANDED_OVER, a->local, false, 0, 0);
		}
		if (m->handed_over_sent) {
			alog_info(a, "guest %s: the source VMM ended (exit %d) after the handover", g->spec.name, code);
			return true;
		}
		/* before the handover: an ordinary end of the source (crash policy) */
	}
	if (code == PVCLUS_VMM_EXIT_MIGRATED)
		return true; /* a source that handed over: the target runs the guest */
	return false;
}

/* ---- actions and messages ------------------------------------------------- */

void agent_migrate_action(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_action *act, bool leader)
{
	switch (act->kind) {
	case PVCLUS_HA_ACT_PLACE_MIGRATION:
		if (leader)
			place_migration(a, g, act->node);
		break;
	case PVCLUS_HA_ACT_MIGRATE:
		if (act->peer == a->local)
			target_begin(a, g, act->node);
		/* the source starts once the target says where it listens */
		break;
	case PVCLUS_HA_ACT_ABORT_MIGRATION:
		if (act->node != a->local)
			break;
		if (!mig_of(a, g)->src_active) {
			/* the VMM was never asked: it keeps the guest and the lock */
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -ECANCELED, 0);
			break;
		}
		abort_source(a, g);
		break;
	default:
		break;
	}
}

static void set_mode(struct pvclus_agent *a, int i, enum pvstore_node_mode mode)
{
	if (a->peers[i].mode == mode)
		return;
	a->peers[i].mode = mode;
	alog_info(a, "node %s: %s", a->nodes[i].name, pvstore_node_mode_str((enum pvstore_node_mode)mode));
}

void agent_migrate_message(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg)
{
	switch (msg->body_case) {
	case PVHA__CLUSTER_MSG__BODY_NODE_MODE: {
		int i = agent_node_index(a, msg->node_mode->nodeid);
		if (i >= 0 && msg->node_mode->mode <= NODE_MAINTENANCE)
			set_mode(a, i, (enum pvstore_node_mode)msg->node_mode->mode);
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST: {
		const Pvha__MigrateRequest *r = msg->migrate_request;
		struct guest *g = r->uuid.len == 16 ? guests_find(a, r->uuid.data) : NULL;
		if (!g)
			break;
		struct mig *m = mig_of(a, g);
		m->downtime_ms = r->downtime_ms;
		snprintf(m->why, sizeof(m->why), "%s", r->why);
		m->key_len = r->key.len == sizeof(m->key) ? sizeof(m->key) : 0;
		if (m->key_len)
			memcpy(m->key, r->key.data, m->key_len);
		m->have_progress = false;
		if (!m->src_active) /* a new migration: the last one's word is said */
			m->cancel_sent = m->handed_over_sent = false;
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_READY: {
		const Pvha__MigrateReady *r = msg->migrate_ready;
		struct guest *g = r->uuid.len == 16 ? guests_find(a, r->uuid.data) : NULL;
		if (!g || g->ha.state != PVCLUS_HA_MIGRATING || g->ha.target != r->target || g->ha.handed_over)
			break;
		if (!r->addr[0] || r->port == 0 || r->port > 65535) {
			alog_warn(a, "guest %s: MigrateReady from node %u with address '%.64s' port %u: ignored",
				   g->spec.name, from, r->addr, r->port);
			break;
		}
		if (g->ha.owner == a->local && g->pid > 0 && !mig_of(a, g)->src_active)
			source_begin(a, g, r);
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_PROGRESS: {
		const Pvha__MigrateProgress *p = msg->migrate_progress;
		struct guest *g = p->uuid.len == 16 ? guests_find(a, p->uuid.data) : NULL;
		if (!g)
			break;
		struct mig *m = mig_of(a, g);
		pvha__migration_info__init(&m->info);
		snprintf(m->phase, sizeof(m->phase), "%s", p->phase);
		snprintf(m->error, sizeof(m->error), "%s", p->error);
		snprintf(m->src_name, sizeof(m->src_name), "%s", agent_node_name(a, p->source));
		snprintf(m->dst_name, sizeof(m->dst_name), "%s", agent_node_name(a, p->target));
		m->info.phase = m->phase;
		m->info.error = m->error;
		m->info.source = m->src_name;
		m->info.target = m->dst_name;
		m->info.round = p->round;
		m->info.bytes_sent = p->bytes_sent;
		m->info.pages_left = p->pages_left;
		m->info.rate_bps = p->rate_bps;
		m->info.downtime_us = p->downtime_us;
		m->info.total_ms = p->total_ms;
		m->have_progress = true;
		bool done = !strcmp(p->phase, "done"), failed = !strcmp(p->phase, "failed");
		if ((done || failed) && agent_leads(a)) {
			char why[256];
			if (done)
				snprintf(why, sizeof(why),
					 "%s -> %s (%s): downtime %.1f ms, %u rounds, %.1f MiB in %llu ms%s%s",
					 m->src_name, m->dst_name, m->why[0] ? m->why : "requested",
					 (double)p->downtime_us / 1000.0, p->round, (double)p->bytes_sent / 1048576.0,
					 (unsigned long long)p->total_ms, p->error[0] ? "; " : "", p->error);
			else
				snprintf(why, sizeof(why), "%s -> %s failed after %llu ms: %s", m->src_name, m->dst_name,
					 (unsigned long long)p->total_ms, p->error);
			alog_info(a, "guest %s: migration %s", g->spec.name, why);
			guest_event(a, g->spec.uuid, done ? "migrated" : "migration-failed", why);
		}
		break;
	}
	default:
		break;
	}
}

void agent_migrate_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi)
{
	struct mig *m = mig_of(a, g);
	if (g->ha.state == PVCLUS_HA_MIGRATING && g->ha.target) {
		gi->target_nodeid = g->ha.target;
		gi->target = (char *)agent_node_name(a, g->ha.target);
	}
	if (m->have_progress)
		gi->migration = &m->info;
}

/* ---- node modes ------------------------------------------------------------ */

struct modes_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	size_t n;
	struct {
		char name[PVSTORE_NAME_MAX + 1];
		enum pvstore_node_mode mode;
	} e[PVCLUS_MAX_NODES];
};

static int mode_entry(void *ctx, const char *name, enum pvstore_node_mode mode)
{
	struct modes_job *m = ctx;
	if (m->n == PVCLUS_MAX_NODES)
		return 0; /* not a node of a cluster this size */
	snprintf(m->e[m->n].name, sizeof(m->e[m->n].name), "%s", name);
	m->e[m->n].mode = mode;
	m->n++;
	return 0;
}

static int modes_run(struct pvstore *st, struct pvclus_job *j)
{
	int err = st ? pvstore_node_modes(st, mode_entry, j) : -ENOTCONN;
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void modes_done(struct pvclus_job *j)
{
	struct modes_job *m = (struct modes_job *)j;
	struct pvclus_agent *a = m->a;
	if (j->err) {
		alog_warn(a, "reading the node modes: %s", j->errmsg);
	} else {
		enum pvstore_node_mode want[PVCLUS_MAX_NODES];
		for (int i = 0; i < a->nnodes; i++)
			want[i] = NODE_ACTIVE;
		for (size_t k = 0; k < m->n; k++) {
			int i = agent_node_by_name(a, m->e[k].name);
			if (i >= 0)
				want[i] = m->e[k].mode;
		}
		for (int i = 0; i < a->nnodes; i++)
			set_mode(a, i, want[i]);
	}
	free(m);
}

void agent_migrate_reload_modes(struct pvclus_agent *a)
{
	if (!a->st)
		return;
	struct modes_job *m = calloc(1, sizeof(*m));
	if (!m)
		return;
	m->j = (struct pvclus_job){ .run = modes_run, .done = modes_done, .what = "node modes" };
	m->a = a;
	agent_submit(a, &m->j);
}

/* A node's new mode: written to RADOS (a storage job), then multicast
 * (NodeMode), logged, and (for an API request) answered. */
enum mode_why { MODE_DRAIN, MODE_RESUME, MODE_DRAINED };

static int drain_plan(struct pvclus_agent *a, int i, Pvha__ApiReply *rep, size_t *unplaceable);

struct mode_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	void *token;
	enum mode_why why;
	uint32_t node;
	char name[PVSTORE_NAME_MAX + 1];
	enum pvstore_node_mode mode;
	size_t to_move;
};

static int mode_run(struct pvstore *st, struct pvclus_job *j)
{
	struct mode_job *m = (struct mode_job *)j;
	int err = st ? pvstore_node_mode_set(st, m->name, m->mode) : -ENOTCONN;
	if (err) {
		j->err = err;
		snprintf(j->errmsg, sizeof(j->errmsg), "writing the mode of %s: %s", m->name,
			 st ? pvstore_errmsg() : "no storage");
	}
	return err;
}

static void mode_done(struct pvclus_job *j)
{
	struct mode_job *m = (struct mode_job *)j;
	struct pvclus_agent *a = m->a;
	int i = agent_node_index(a, m->node);
	int err = j->err;
	if (i >= 0)
		a->mode_busy[i] = false;
	if (!err) {
		Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
		Pvha__NodeMode nm = PVHA__NODE_MODE__INIT;
		nm.nodeid = m->node;
		nm.mode = m->mode;
		msg.body_case = PVHA__CLUSTER_MSG__BODY_NODE_MODE;
		msg.node_mode = &nm;
		err = agent_send(a, &msg);
	}
	if (!err && m->why == MODE_DRAIN)
		cluster_event(a, "drain", "node %s: draining (%zu guest(s) to move)", m->name, m->to_move);
	else if (!err && m->why == MODE_RESUME)
		cluster_event(a, "resume", "node %s: active again", m->name);
	else if (!err)
		cluster_event(a, "maintenance", "node %s is drained: in maintenance", m->name);
	else if (m->why == MODE_DRAINED)
		alog_warn(a, "%s", j->errmsg);
	if (m->why != MODE_DRAINED) {
		Pvha__ApiReply rep = PVHA__API_REPLY__INIT;
		size_t nu = 0;
		rep.error = err;
		if (!err && m->why == MODE_DRAIN && i >= 0)
			drain_plan(a, i, &rep, &nu); /* what the drain moves, for the answer */
		a->ops->api_reply(a->ctx, m->token, &rep, err ? (j->err ? j->errmsg : strerror(-err)) : "");
	}
	free(m);
}

static int announce_mode(struct pvclus_agent *a, int i, enum pvstore_node_mode mode, enum mode_why why,
			 void *token, size_t to_move, char *msg, size_t msglen)
{
	if (a->mode_busy[i]) {
		snprintf(msg, msglen, "the mode of %s is being written: try again", a->nodes[i].name);
		return -EBUSY;
	}
	struct mode_job *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	m->j = (struct pvclus_job){ .run = mode_run, .done = mode_done, .what = "node mode" };
	m->a = a;
	m->token = token;
	m->why = why;
	m->node = a->nodes[i].nodeid;
	snprintf(m->name, sizeof(m->name), "%s", a->nodes[i].name);
	m->mode = mode;
	m->to_move = to_move;
	a->mode_busy[i] = true;
	agent_submit(a, &m->j);
	return -EINPROGRESS;
}

/* ---- the leader's pump: drains and automatic rebalancing ----------------- */

static int plan(struct pvclus_agent *a, double threshold, struct pvclus_move *moves, struct pvclus_rebalance_result *res,
		struct agent_view *v, bool skip_recent)
{
	int err = view_build(a, v);
	if (err)
		return err;
	uint64_t now = agent_now_ms(a);
	for (size_t k = 0; skip_recent && k < v->n_guests; k++) {
		struct mig *m = mig_of(a, v->of[k]);
		if (m->rebalanced_ms && now - m->rebalanced_ms < REBALANCE_COOLDOWN_MS)
			v->guests[k].pinned = true;
	}
	struct pvclus_rebalance_params p = {
		.threshold = threshold,
		.target = threshold / 2,
		.min_gain = REBALANCE_MIN_GAIN,
		.max_moves = PLAN_MAX_MOVES,
	};
	return pvclus_rebalance_plan(&v->view, v->guests, v->n_guests, &p, moves, res);
}

static void start_moves(struct pvclus_agent *a, struct agent_view *v, const struct pvclus_move *moves, size_t n,
			const char *why)
{
	uint64_t now = agent_now_ms(a);
	for (size_t i = 0; i < n; i++) {
		struct guest *g = v->of[moves[i].index];
		mig_of(a, g)->rebalanced_ms = now;
		send_request(a, g, moves[i].to, 0, why);
	}
}

static void auto_rebalance(struct pvclus_agent *a)
{
	struct agent_view *v = a->mig_view;
	struct pvclus_move *moves = a->mig_moves;
	double threshold = a->cfg.rebalance_threshold;
	if (threshold <= 0 || agent_now_ms(a) - a->last_rebalance_ms < REBALANCE_EVERY_MS)
		return;
	a->last_rebalance_ms = agent_now_ms(a);
	for (int i = 0; i < a->nnodes; i++)
		if (a->peers[i].mode == NODE_DRAINING)
			return;
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && a->g[i].ha.state == PVCLUS_HA_MIGRATING)
			return;
	struct pvclus_rebalance_result res;
	if (plan(a, threshold, moves, &res, v, true) != 0)
		return;
	a->rebalance_checks++;
	a->last_imbalance = res.before.score;
	if (!res.n_moves)
		return;
	cluster_event(a, "rebalance", "imbalance %.3f above %.3f: %zu migration(s), %.3f after", res.before.score,
		      threshold, res.n_moves, res.after.score);
	start_moves(a, v, moves, res.n_moves, "rebalance");
}

static void pump(void *data)
{
	struct pvclus_agent *a = data;
	if (agent_leads(a)) {
		uint64_t now = agent_now_ms(a);
		for (int i = 0; i < a->nnodes; i++) {
			if (a->peers[i].mode != NODE_DRAINING)
				continue;
			uint32_t id = a->nodes[i].nodeid;
			unsigned busy = 0;
			for (int k = 0; k < MAX_GUESTS; k++) {
				struct guest *g = &a->g[k];
				if (!g->used || !(g->ha.owner == id ||
						  (g->ha.state == PVCLUS_HA_MIGRATING && g->ha.target == id)))
					continue;
				busy++;
				struct mig *m = mig_of(a, g);
				if (g->ha.state == PVCLUS_HA_RUNNING && g->ha.owner == id &&
				    now - m->drain_asked_ms >= DRAIN_ASK_AGAIN_MS) {
					m->drain_asked_ms = now;
					guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_NODE_DRAIN, id, false, 0, 0);
				}
			}
			if (!busy) {
				char msg[256];
				if (!a->mode_busy[i])
					announce_mode(a, i, NODE_MAINTENANCE, MODE_DRAINED, NULL, 0, msg, sizeof(msg));
			}
		}
		auto_rebalance(a);
	}
	agent_timer(a, PUMP_MS, pump, a, &a->pump_timer);
}

void agent_migrate_status(struct pvclus_agent *a, Pvha__ClusterStatus *s)
{
	s->rebalance_auto = a->cfg.rebalance_threshold > 0;
	s->rebalance_threshold = a->cfg.rebalance_threshold;
	s->rebalance_checks = a->rebalance_checks;
	s->imbalance = a->last_imbalance;
}

void agent_migrate_init(struct pvclus_agent *a)
{
	agent_migrate_reload_modes(a);
	agent_timer(a, PUMP_MS, pump, a, &a->pump_timer);
}

/* ---- the control API ------------------------------------------------------ */

static void fill_plan(struct pvclus_agent *a, Pvha__ApiReply *rep, const struct pvclus_rebalance_result *res,
		      double threshold, struct agent_view *v, const struct pvclus_move *moves, size_t n)
{
	Pvha__RebalancePlan *p = &a->api.plan;
	Pvha__PlannedMove *pm = a->api.moves;
	Pvha__PlannedMove **pp = a->api.move_ptrs;
	pvha__rebalance_plan__init(p);
	p->mem_before = res->before.mem;
	p->cpu_before = res->before.cpu;
	p->score_before = res->before.score;
	p->mem_after = res->after.mem;
	p->cpu_after = res->after.cpu;
	p->score_after = res->after.score;
	p->balanced = res->balanced;
	p->threshold = threshold;
	for (size_t i = 0; i < n && i < PLAN_MAX_MOVES; i++) {
		pvha__planned_move__init(&pm[i]);
		pm[i].guest = v->of[moves[i].index]->spec.name;
		pm[i].from = (char *)agent_node_name(a, moves[i].from);
		pm[i].to = (char *)agent_node_name(a, moves[i].to);
		pm[i].gain = moves[i].gain;
		pp[i] = &pm[i];
	}
	p->n_moves = n;
	p->moves = pp;
	rep->plan = p;
}

/* Where the guests of node i would go if it drained now; *unplaceable counts
 * those with no place. */
static int drain_plan(struct pvclus_agent *a, int i, Pvha__ApiReply *rep, size_t *unplaceable)
{
	struct agent_view *v = a->mig_view;
	struct pvclus_placement *out = a->mig_out;
	Pvha__RebalancePlan *p = &a->api.plan;
	Pvha__PlannedMove *pm = a->api.moves;
	Pvha__PlannedMove **pp = a->api.move_ptrs;
	char (*why)[128] = a->api.why;
	char **whyp = a->api.why_ptrs;
	int err = view_build(a, v);
	if (err)
		return err;
	v->nodes[i].maintenance = true;
	size_t nout = 0;
	err = pvclus_sched_evacuate(&v->view, v->guests, v->n_guests, a->nodes[i].nodeid, out, &nout);
	if (err)
		return err;
	pvha__rebalance_plan__init(p);
	size_t nm = 0, nu = 0;
	for (size_t k = 0; k < nout; k++) {
		struct guest *g = v->of[out[k].index];
		if (out[k].node) {
			pvha__planned_move__init(&pm[nm]);
			pm[nm].guest = g->spec.name;
			pm[nm].from = a->nodes[i].name;
			pm[nm].to = (char *)agent_node_name(a, out[k].node);
			pp[nm] = &pm[nm];
			nm++;
		} else {
			snprintf(why[nu], sizeof(why[nu]), "%s: %s", g->spec.name, pvclus_sched_reason_str(out[k].reason));
			whyp[nu] = why[nu];
			nu++;
		}
	}
	p->n_moves = nm;
	p->moves = pp;
	p->n_unplaceable = nu;
	p->unplaceable = whyp;
	rep->plan = p;
	*unplaceable = nu;
	return 0;
}

/* Whether moving g to node `to` would break one of its hard rules (v from
 * view_build); says which in msg. */
static bool breaks_hard_rule(struct pvclus_agent *a, const struct agent_view *v, const struct guest *g, uint32_t to,
			     char *msg, size_t msglen)
{
	size_t kg;
	for (kg = 0; kg < v->n_guests && v->of[kg] != g; kg++)
		;
	if (kg == v->n_guests)
		return false;
	for (int r = 0; r < PVCLUS_GUEST_RULES_MAX; r++) {
		uint32_t id = v->guests[kg].rules[r];
		if (!id || !v->defs[id - 1].hard)
			continue;
		bool anti = v->defs[id - 1].anti;
		for (size_t k = 0; k < v->n_guests; k++) {
			if (k == kg || !v->guests[k].node)
				continue;
			bool member = false;
			for (int q = 0; q < PVCLUS_GUEST_RULES_MAX; q++)
				member |= v->guests[k].rules[q] == id;
			if (!member)
				continue;
			if (anti && v->guests[k].node == to) {
				snprintf(msg, msglen, "guest %s: hard anti-affinity '%s': %s runs on %s", g->spec.name,
					 v->defs[id - 1].group, v->of[k]->spec.name, agent_node_name(a, to));
				return true;
			}
			if (!anti && v->guests[k].node != to) {
				snprintf(msg, msglen, "guest %s: hard affinity '%s': %s runs on %s", g->spec.name,
					 v->defs[id - 1].group, v->of[k]->spec.name,
					 agent_node_name(a, v->guests[k].node));
				return true;
			}
		}
	}
	return false;
}

int agent_migrate_api(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep,
		      char *msg, size_t msglen)
{
	struct agent_view *v = a->mig_view;
	struct pvclus_move *moves = a->mig_moves;
	if (!a->quorate || !a->leader) {
		rep->error = -EAGAIN;
		snprintf(msg, msglen, "this node's partition has no quorum (or no leader yet): no change can be made here");
		return 0;
	}
	int ni = -1;
	if (req->op != PVHA__API_REQUEST__OP__CLUSTER_REBALANCE) {
		ni = req->node && req->node[0] ? agent_node_by_name(a, req->node) : -1;
		if (ni < 0) {
			rep->error = -ENOENT;
			snprintf(msg, msglen, "no node '%s' in the cluster", req->node ? req->node : "");
			return 0;
		}
	}
	switch (req->op) {
	case PVHA__API_REQUEST__OP__NODE_DRAIN: {
		if (a->peers[ni].mode != NODE_ACTIVE) {
			snprintf(msg, msglen, "node %s is already %s", a->nodes[ni].name,
				 pvstore_node_mode_str((enum pvstore_node_mode)a->peers[ni].mode));
			return 0;
		}
		size_t nu = 0;
		int err = drain_plan(a, ni, rep, &nu);
		if (err) {
			rep->error = err;
			snprintf(msg, msglen, "the scheduler failed: %s", strerror(-err));
			return 0;
		}
		if (nu && !req->force) {
			rep->error = -ENOSPC;
			snprintf(msg, msglen, "%zu guest(s) of %s would have no place to run: nothing changed (--force drains anyway: they stay until a place frees up)",
				 nu, a->nodes[ni].name);
			return 0;
		}
		rep->error = announce_mode(a, ni, NODE_DRAINING, MODE_DRAIN, token, rep->plan->n_moves + nu, msg, msglen);
		return rep->error == -EINPROGRESS ? -EINPROGRESS : 0;
	}
	case PVHA__API_REQUEST__OP__NODE_RESUME:
		if (a->peers[ni].mode == NODE_ACTIVE) {
			snprintf(msg, msglen, "node %s is already active", a->nodes[ni].name);
			return 0;
		}
		rep->error = announce_mode(a, ni, NODE_ACTIVE, MODE_RESUME, token, 0, msg, msglen);
		return rep->error == -EINPROGRESS ? -EINPROGRESS : 0;
	case PVHA__API_REQUEST__OP__GUEST_MIGRATE: {
		struct guest *g = req->guest && req->guest[0] ? guests_by_name(a, req->guest) : NULL;
		if (!g) {
			rep->error = -ENOENT;
			snprintf(msg, msglen, "no guest '%s'", req->guest ? req->guest : "");
			return 0;
		}
		uint32_t to = a->nodes[ni].nodeid;
		if (g->ha.state != PVCLUS_HA_RUNNING) {
			rep->error = -EBUSY;
			snprintf(msg, msglen, "guest %s is %s: only a running guest migrates", g->spec.name,
				 pvclus_ha_state_str(g->ha.state));
			return 0;
		}
		if (g->ha.owner == to) {
			rep->error = -EINVAL;
			snprintf(msg, msglen, "guest %s already runs on %s", g->spec.name, a->nodes[ni].name);
			return 0;
		}
		if (!agent_node_online(a, ni) || a->peers[ni].fenced) {
			rep->error = -EHOSTUNREACH;
			snprintf(msg, msglen, "node %s is not up in this partition (or cannot reach the storage)",
				 a->nodes[ni].name);
			return 0;
		}
		if (a->peers[ni].mode != NODE_ACTIVE) {
			rep->error = -EBUSY;
			snprintf(msg, msglen, "node %s is %s: it takes no guests", a->nodes[ni].name,
				 pvstore_node_mode_str((enum pvstore_node_mode)a->peers[ni].mode));
			return 0;
		}
		if (view_build(a, v) == 0 && v->nodes[ni].mem_used + g->spec.mem_size > v->nodes[ni].mem_total) {
			rep->error = -ENOSPC;
			snprintf(msg, msglen, "node %s has %llu MiB free, guest %s needs %llu MiB", a->nodes[ni].name,
				 (unsigned long long)((v->nodes[ni].mem_total - v->nodes[ni].mem_used) >> 20),
				 g->spec.name, (unsigned long long)(g->spec.mem_size >> 20));
			return 0;
		}
		if (breaks_hard_rule(a, v, g, to, msg, msglen)) {
			rep->error = -EPERM;
			return 0;
		}
		if (req->downtime_ms > 60000) {
			rep->error = -EINVAL;
			snprintf(msg, msglen, "a downtime budget of %u ms is beyond 60000", req->downtime_ms);
			return 0;
		}
		send_request(a, g, to, req->downtime_ms, "requested");
		snprintf(msg, msglen, "guest %s: migrating from %s to %s", g->spec.name, agent_node_name(a, g->ha.owner),
			 a->nodes[ni].name);
		return 0;
	}
	case PVHA__API_REQUEST__OP__CLUSTER_REBALANCE: {
		double threshold = req->threshold > 0 ? req->threshold
			: a->cfg.rebalance_threshold > 0 ? a->cfg.rebalance_threshold : REBALANCE_DEFAULT_THRESHOLD;
		if (threshold >= 1.0) {
			rep->error = -EINVAL;
			snprintf(msg, msglen, "threshold %.3f: want a fraction in (0, 1)", threshold);
			return 0;
		}
		for (int i = 0; i < MAX_GUESTS; i++) {
			if (a->g[i].used && a->g[i].ha.state == PVCLUS_HA_MIGRATING && !req->dry_run) {
				rep->error = -EBUSY;
				snprintf(msg, msglen, "guest %s is migrating: rebalance once it is done",
					 a->g[i].spec.name);
				return 0;
			}
		}
		struct pvclus_rebalance_result res;
		int err = plan(a, threshold, moves, &res, v, false);
		if (err) {
			rep->error = err;
			snprintf(msg, msglen, "the planner failed: %s", strerror(-err));
			return 0;
		}
		fill_plan(a, rep, &res, threshold, v, moves, res.n_moves);
		if (!req->dry_run && res.n_moves) {
			cluster_event(a, "rebalance", "requested: imbalance %.3f, %zu migration(s), %.3f after",
				      res.before.score, res.n_moves, res.after.score);
			start_moves(a, v, moves, res.n_moves, "rebalance");
		}
		return 0;
	}
	default:
		rep->error = -EINVAL;
		snprintf(msg, msglen, "unknown operation %d", req->op);
	}
	return 0;
}
