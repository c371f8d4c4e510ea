/* pvhad's live migrations, drains and rebalancing: see agent_migrate.h. */
#include "agent_migrate.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qb/qbutil.h>

#include "agent.h"
#include "agent_guests.h"
#include "agent_sched.h"
#include "event_queue.h"
#include "log.h"
#include "pvcluster/sched.h"
#include "vmmctl.h"

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
#define PLAN_MAX_MOVES 64

/* What this agent knows of one guest's migration, by its slot in the table. */
struct mig {
	/* everyone: the request (MigrateRequest) and the last progress */
	uint32_t downtime_ms;
	char why[64];
	bool have_progress;
	Pvha__MigrationInfo info;
	char phase[16], error[256], src_name[64], dst_name[64];
	/* the source (this node owns the guest) */
	bool src_active;
	uint32_t src_target;
	bool handed_over_sent;
	bool stop_sent;
	bool cancel_sent;
	uint64_t last_progress_ms;
	qb_loop_timer_handle src_timer;
	/* the target */
	bool incoming;
	bool ready_sent;
	uint32_t in_source;
	uint64_t in_spawn_ms;
	qb_loop_timer_handle in_timer;
	/* the leader */
	uint64_t drain_asked_ms;
	uint64_t rebalanced_ms;
};

static struct mig migs[MAX_GUESTS];
static struct agent *ag; /* for timer callbacks */
static qb_loop_timer_handle pump_timer;
static uint64_t last_rebalance_ms;
static uint64_t rebalance_checks;
static double last_imbalance;

static struct mig *mig_of(struct agent *a, const struct guest *g)
{
	return &migs[g - a->guests->g];
}

static int node_index(const struct agent *a, uint32_t id)
{
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid == id)
			return i;
	return -1;
}

static int node_by_name(const struct agent *a, const char *name)
{
	for (int i = 0; i < a->nnodes; i++)
		if (!strcmp(a->nodes[i].name, name))
			return i;
	return -1;
}

unsigned agent_migrate_guests_on(struct agent *a, uint32_t node)
{
	unsigned n = 0;
	for (int i = 0; a->guests && i < MAX_GUESTS; i++) {
		const struct guest *g = &a->guests->g[i];
		if (g->used && (g->ha.owner == node || (g->ha.state == PVCLUS_HA_MIGRATING && g->ha.target == node)))
			n++;
	}
	return n;
}

/* ---- the scheduler's view ------------------------------------------------ */

/* The placement view (agent_sched_view: nodes, rules, every running or placed
 * guest) with only running guests free to move. */
static int view_build(struct agent *a, struct agent_view *v)
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

static void send_request(struct agent *a, struct guest *g, uint32_t target, uint32_t downtime_ms, const char *why)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__MigrateRequest r = PVHA__MIGRATE_REQUEST__INIT;
	r.uuid.data = g->spec.uuid;
	r.uuid.len = 16;
	r.target = target;
	r.downtime_ms = downtime_ms;
	r.why = (char *)why;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST;
	msg.migrate_request = &r;
	agent_send(a, &msg);
	guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_START, target, false, 0, 0);
}

/* PLACE_MIGRATION: a target away from `from` for a drained guest. */
static void place_migration(struct agent *a, struct guest *g, uint32_t from)
{
	static struct agent_view v;
	static struct pvclus_placement out[MAX_GUESTS];
	int fi = node_index(a, from);
	int err = view_build(a, &v);
	size_t k;
	for (k = 0; !err && k < v.n_guests && v.of[k] != g; k++)
		;
	if (err || k == v.n_guests || fi < 0 || v.guests[k].node != from) {
		pvlog_info("guest %s: no longer runs on %s: nothing to move", g->spec.name, agent_node_name(a, from));
		return;
	}
	/* the scheduler evacuates a node in maintenance: every guest of it, by
	 * priority, with the rules and memory of the others; this one's answer
	 * is taken */
	v.nodes[fi].maintenance = true;
	size_t nout = 0;
	err = pvclus_sched_evacuate(&v.view, v.guests, v.n_guests, from, out, &nout);
	if (err) {
		pvlog_err(err, "guest %s: the scheduler failed", g->spec.name);
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
	pvlog_info("guest %s: the scheduler left it where it is", g->spec.name);
}

/* ---- the target's side --------------------------------------------------- */

static void target_poll(void *data);

static void target_failed(struct agent *a, struct guest *g, int err)
{
	struct mig *m = mig_of(a, g);
	m->incoming = false;
	bool after = g->ha.state == PVCLUS_HA_MIGRATING && g->ha.handed_over;
	guests_send_event(a, g->spec.uuid, after ? PVCLUS_HA_EV_START_FAILED : PVCLUS_HA_EV_MIGRATE_FAILED, a->local,
			  false, err, 0);
}

static void target_begin(struct agent *a, struct guest *g, uint32_t source)
{
	struct mig *m = mig_of(a, g);
	if (g->pid > 0) {
		pvlog_warn("guest %s: a VMM already runs here: cannot receive it", g->spec.name);
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -EEXIST, 0);
		return;
	}
	char hp[96];
	snprintf(hp, sizeof(hp), "%s:0", a->cfg.address);
	m->incoming = true;
	m->ready_sent = false;
	m->in_source = source;
	m->in_spawn_ms = agent_now_ms();
	int err = guests_spawn_vmm(a, g, hp);
	if (err) {
		pvlog_err(err, "guest %s: starting the incoming VMM", g->spec.name);
		target_failed(a, g, err);
		return;
	}
	qb_loop_timer_add(a->loop, QB_LOOP_MED, 5ull * QB_TIME_NS_IN_MSEC, g, target_poll, &m->in_timer);
}

static void target_poll(void *data)
{
	struct guest *g = data;
	struct agent *a = ag;
	struct mig *m = mig_of(a, g);
	if (!g->used || !m->incoming || g->pid <= 0)
		return;
	char sock[700];
	int fd;
	guests_sock_path(a, g, sock, sizeof(sock));
	Pvha__VmmReply *rep = NULL;
	if (vmmctl_connect(sock, 1000, &fd) == 0) {
		int err = vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &rep);
		close(fd);
		if (!err && rep && rep->status) {
			const Pvha__VmmStatus *st = rep->status;
			if (!m->ready_sent && st->incoming_port) {
				Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
				Pvha__MigrateReady r = PVHA__MIGRATE_READY__INIT;
				r.uuid.data = g->spec.uuid;
				r.uuid.len = 16;
				r.target = a->local;
				r.addr = a->cfg.address;
				r.port = st->incoming_port;
				msg.body_case = PVHA__CLUSTER_MSG__BODY_MIGRATE_READY;
				msg.migrate_ready = &r;
				if (agent_send(a, &msg) == 0)
					m->ready_sent = true;
			}
			if (strcmp(st->state, "incoming") != 0 && strcmp(st->state, "stopped") != 0) {
				/* it took the lock and runs the guest: ours from now on */
				m->incoming = false;
				g->start_reported = true;
				pvha__vmm_reply__free_unpacked(rep, NULL);
				guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_DONE, a->local, false, 0, 0);
				return;
			}
		}
		if (rep)
			pvha__vmm_reply__free_unpacked(rep, NULL);
	} else if (agent_now_ms() - m->in_spawn_ms > INCOMING_DEADLINE_MS) {
		pvlog_warn("guest %s: the incoming VMM did not answer in %d ms; killing it", g->spec.name,
			   INCOMING_DEADLINE_MS);
		kill(g->pid, SIGKILL); /* reported when it is reaped */
		return;
	}
	qb_loop_timer_add(a->loop, QB_LOOP_MED, TARGET_POLL_MS * QB_TIME_NS_IN_MSEC, g, target_poll, &m->in_timer);
}

/* ---- the source's side --------------------------------------------------- */

static void source_poll(void *data);
static void abort_source(struct agent *a, struct guest *g);

static void send_progress(struct agent *a, struct guest *g, const Pvha__VmmStatus *st, uint32_t target)
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

static void source_begin(struct agent *a, struct guest *g, const Pvha__MigrateReady *r)
{
	struct mig *m = mig_of(a, g);
	char sock[700];
	int fd, err;
	Pvha__VmmReply *rep = NULL;
	guests_sock_path(a, g, sock, sizeof(sock));
	err = vmmctl_connect(sock, 2000, &fd);
	if (!err) {
		err = vmmctl_migrate(fd, r->addr, r->port, m->downtime_ms, 0, &rep);
		close(fd);
	}
	if (!err && rep && rep->error)
		err = rep->error;
	if (err) {
		pvlog_warn("guest %s: its VMM would not migrate to %s:%u: %s", g->spec.name, r->addr, r->port,
			   rep && rep->message && rep->message[0] ? rep->message : strerror(-err));
		if (rep)
			pvha__vmm_reply__free_unpacked(rep, NULL);
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, err, 0);
		return;
	}
	pvha__vmm_reply__free_unpacked(rep, NULL);
	m->src_active = true;
	m->src_target = r->target;
	m->handed_over_sent = false;
	m->stop_sent = false;
	m->cancel_sent = false;
	m->last_progress_ms = 0;
	pvlog_info("guest %s: migrating to %s (%s:%u, downtime budget %u ms)", g->spec.name,
		   agent_node_name(a, r->target), r->addr, r->port, m->downtime_ms ? m->downtime_ms : 10);
	qb_loop_timer_add(a->loop, QB_LOOP_MED, SOURCE_POLL_MS * QB_TIME_NS_IN_MSEC, g, source_poll, &m->src_timer);
}

static void source_poll(void *data)
{
	struct guest *g = data;
	struct agent *a = ag;
	struct mig *m = mig_of(a, g);
	if (!g->used || !m->src_active || g->pid <= 0)
		return;
	char sock[700];
	int fd;
	Pvha__VmmReply *rep = NULL;
	guests_sock_path(a, g, sock, sizeof(sock));
	if (vmmctl_connect(sock, 1000, &fd) == 0) {
		int err = vmmctl_call(fd, m->stop_sent ? PVHA__VMM_REQUEST__OP__STOP : PVHA__VMM_REQUEST__OP__STATUS,
				      NULL, &rep);
		close(fd);
		if (!err && rep && rep->status && !m->stop_sent) {
			const Pvha__VmmStatus *st = rep->status;
			bool released = st->migration_released;
			bool done = !strcmp(st->migration_phase, "done");
			bool failed = !strcmp(st->migration_phase, "failed");
			uint64_t now = agent_now_ms();
			if (done || failed || released != m->handed_over_sent ||
			    now - m->last_progress_ms >= PROGRESS_EVERY_MS) {
				send_progress(a, g, st, m->src_target);
				m->last_progress_ms = now;
			}
			if (released && !m->handed_over_sent) {
				m->handed_over_sent = true;
				guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_HANDED_OVER, a->local, false, 0,
						  0);
			}
			if (failed && !released) {
				m->src_active = false;
				pvlog_warn("guest %s: migration failed: %s", g->spec.name, st->migration_reason);
				pvha__vmm_reply__free_unpacked(rep, NULL);
				guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_FAILED, a->local, false, -EIO, 0);
				return;
			}
			if (released && (done || failed))
				m->stop_sent = true; /* it never runs the guest again: let it go */
			if (!released && !m->cancel_sent && st->migration_total_ms > MIGRATE_DEADLINE_MS) {
				pvlog_warn("guest %s: migration not handed over after %d ms: cancelling it", g->spec.name,
					   MIGRATE_DEADLINE_MS);
				m->cancel_sent = true;
				abort_source(a, g);
			}
		}
		if (rep)
			pvha__vmm_reply__free_unpacked(rep, NULL);
	}
	qb_loop_timer_add(a->loop, QB_LOOP_MED, SOURCE_POLL_MS * QB_TIME_NS_IN_MSEC, g, source_poll, &m->src_timer);
}

/* ABORT_MIGRATION while the VMM sends: it gives up unless it has already let
 * go of the lock (then the handover goes on and is reported as such). */
static void abort_source(struct agent *a, struct guest *g)
{
	char sock[700];
	int fd;
	Pvha__VmmReply *rep = NULL;
	guests_sock_path(a, g, sock, sizeof(sock));
	if (vmmctl_connect(sock, 1000, &fd) == 0) {
		int err = vmmctl_call(fd, PVHA__VMM_REQUEST__OP__MIGRATE_CANCEL, NULL, &rep);
		close(fd);
		if (err || !rep || rep->error)
			pvlog_warn("guest %s: its VMM did not take the cancel: %s", g->spec.name,
				   rep && rep->message[0] ? rep->message : strerror(err ? -err : EIO));
		if (rep)
			pvha__vmm_reply__free_unpacked(rep, NULL);
	}
	/* source_poll reports what the VMM did: failed (kept the lock) or handed over */
}

void agent_migrate_forget(struct agent *a, const struct guest *g)
{
	struct mig *m = mig_of(a, g);
	if (m->src_active)
		qb_loop_timer_del(a->loop, m->src_timer);
	if (m->incoming)
		qb_loop_timer_del(a->loop, m->in_timer);
	memset(m, 0, sizeof(*m));
}

void agent_migrate_after_step(struct agent *a, struct guest *g)
{
	struct mig *m = mig_of(a, g);
	if (g->ha.state == PVCLUS_HA_FENCE_WAIT && g->ha.peer == a->local && g->ha.peer_is_source && m->src_active &&
	    !m->handed_over_sent && !m->cancel_sent) {
		pvlog_info("guest %s: the migration target left: giving the migration up", g->spec.name);
		m->cancel_sent = true;
		abort_source(a, g);
	}
}

bool agent_migrate_vmm_ended(struct agent *a, struct guest *g, int code)
{
	struct mig *m = mig_of(a, g);
	if (m->incoming) {
		pvlog_warn("guest %s: the incoming VMM ended (exit %d) before it ran the guest", g->spec.name, code);
		target_failed(a, g, code == 8 ? -EBUSY : -EIO);
		return true;
	}
	if (m->src_active) {
		m->src_active = false;
		qb_loop_timer_del(a->loop, m->src_timer);
		if (code == 10 && !m->handed_over_sent) {
			/* it handed over between two polls */
			m->handed_over_sent = true;
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_MIGRATE_HANDED_OVER, a->local, false, 0, 0);
		}
		if (m->handed_over_sent) {
			pvlog_info("guest %s: the source VMM ended (exit %d) after the handover", g->spec.name, code);
			return true;
		}
		/* before the handover: an ordinary end of the source (crash policy) */
	}
	if (code == 10)
		return true; /* a source that handed over: the target runs the guest */
	return false;
}

/* ---- actions and messages ------------------------------------------------- */

void agent_migrate_action(struct agent *a, struct guest *g, const struct pvclus_ha_action *act, bool leader)
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

static void set_mode(struct agent *a, int i, enum node_mode mode)
{
	if (a->peers[i].mode == mode)
		return;
	a->peers[i].mode = mode;
	pvlog_info("node %s: %s", a->nodes[i].name, pvstore_node_mode_str((enum pvstore_node_mode)mode));
}

void agent_migrate_message(struct agent *a, uint32_t from, const Pvha__ClusterMsg *msg)
{
	switch (msg->body_case) {
	case PVHA__CLUSTER_MSG__BODY_NODE_MODE: {
		int i = node_index(a, msg->node_mode->nodeid);
		if (i >= 0 && msg->node_mode->mode <= NODE_MAINTENANCE)
			set_mode(a, i, (enum node_mode)msg->node_mode->mode);
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
		m->have_progress = false;
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_READY: {
		const Pvha__MigrateReady *r = msg->migrate_ready;
		struct guest *g = r->uuid.len == 16 ? guests_find(a, r->uuid.data) : NULL;
		if (!g || g->ha.state != PVCLUS_HA_MIGRATING || g->ha.target != r->target || g->ha.handed_over)
			break;
		if (!r->addr[0] || r->port == 0 || r->port > 65535) {
			pvlog_warn("guest %s: MigrateReady from node %u with address '%.64s' port %u: ignored",
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
			pvlog_info("guest %s: migration %s", g->spec.name, why);
			event_queue_push(a->evq, g->spec.uuid, done ? "migrated" : "migration-failed", why);
		}
		break;
	}
	default:
		break;
	}
}

void agent_migrate_fill_info(struct agent *a, const struct guest *g, Pvha__GuestInfo *gi)
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

static int mode_entry(void *ctx, const char *name, enum pvstore_node_mode mode)
{
	struct agent *a = ctx;
	int i = node_by_name(a, name);
	if (i >= 0)
		set_mode(a, i, (enum node_mode)mode);
	return 0;
}

void agent_migrate_reload_modes(struct agent *a)
{
	if (!a->st || !a->storage_ok)
		return;
	enum node_mode before[PVCLUS_MAX_NODES];
	for (int i = 0; i < a->nnodes; i++) {
		before[i] = a->peers[i].mode;
		a->peers[i].mode = NODE_ACTIVE;
	}
	if (pvstore_node_modes(a->st, mode_entry, a) != 0) {
		pvlog_warn("reading the node modes: %s", pvstore_errmsg());
		for (int i = 0; i < a->nnodes; i++)
			a->peers[i].mode = before[i];
	}
}

static int announce_mode(struct agent *a, int i, enum node_mode mode, char *msg, size_t msglen)
{
	int err = a->st ? pvstore_node_mode_set(a->st, a->nodes[i].name, (enum pvstore_node_mode)mode) : -ENOTCONN;
	if (err) {
		snprintf(msg, msglen, "writing the mode of %s: %s", a->nodes[i].name,
			 a->st ? pvstore_errmsg() : "no storage");
		return err;
	}
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeMode nm = PVHA__NODE_MODE__INIT;
	nm.nodeid = a->nodes[i].nodeid;
	nm.mode = mode;
	m.body_case = PVHA__CLUSTER_MSG__BODY_NODE_MODE;
	m.node_mode = &nm;
	return agent_send(a, &m);
}

/* ---- the leader's pump: drains and automatic rebalancing ----------------- */

static int plan(struct agent *a, double threshold, struct pvclus_move *moves, struct pvclus_rebalance_result *res,
		struct agent_view *v, bool skip_recent)
{
	int err = view_build(a, v);
	if (err)
		return err;
	uint64_t now = agent_now_ms();
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

static void start_moves(struct agent *a, struct agent_view *v, const struct pvclus_move *moves, size_t n,
			const char *why)
{
	uint64_t now = agent_now_ms();
	for (size_t i = 0; i < n; i++) {
		struct guest *g = v->of[moves[i].index];
		mig_of(a, g)->rebalanced_ms = now;
		send_request(a, g, moves[i].to, 0, why);
	}
}

static void auto_rebalance(struct agent *a)
{
	static struct agent_view v;
	static struct pvclus_move moves[PLAN_MAX_MOVES];
	double threshold = a->cfg.rebalance_threshold;
	if (threshold <= 0 || agent_now_ms() - last_rebalance_ms < REBALANCE_EVERY_MS)
		return;
	last_rebalance_ms = agent_now_ms();
	for (int i = 0; i < a->nnodes; i++)
		if (a->peers[i].mode == NODE_DRAINING)
			return;
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->guests->g[i].used && a->guests->g[i].ha.state == PVCLUS_HA_MIGRATING)
			return;
	struct pvclus_rebalance_result res;
	if (plan(a, threshold, moves, &res, &v, true) != 0)
		return;
	rebalance_checks++;
	last_imbalance = res.before.score;
	if (!res.n_moves)
		return;
	cluster_event(a, "rebalance", "imbalance %.3f above %.3f: %zu migration(s), %.3f after", res.before.score,
		      threshold, res.n_moves, res.after.score);
	start_moves(a, &v, moves, res.n_moves, "rebalance");
}

static void pump(void *data)
{
	struct agent *a = data;
	if (agent_leads(a)) {
		uint64_t now = agent_now_ms();
		for (int i = 0; i < a->nnodes; i++) {
			if (a->peers[i].mode != NODE_DRAINING)
				continue;
			uint32_t id = a->nodes[i].nodeid;
			unsigned busy = 0;
			for (int k = 0; k < MAX_GUESTS; k++) {
				struct guest *g = &a->guests->g[k];
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
				if (announce_mode(a, i, NODE_MAINTENANCE, msg, sizeof(msg)) == 0)
					cluster_event(a, "maintenance", "node %s is drained: in maintenance",
						      a->nodes[i].name);
				else
					pvlog_warn("%s", msg);
			}
		}
		auto_rebalance(a);
	}
	qb_loop_timer_add(a->loop, QB_LOOP_LOW, PUMP_MS * QB_TIME_NS_IN_MSEC, a, pump, &pump_timer);
}

void agent_migrate_status(struct agent *a, Pvha__ClusterStatus *s)
{
	s->rebalance_auto = a->cfg.rebalance_threshold > 0;
	s->rebalance_threshold = a->cfg.rebalance_threshold;
	s->rebalance_checks = rebalance_checks;
	s->imbalance = last_imbalance;
}

void agent_migrate_init(struct agent *a)
{
	ag = a;
	agent_migrate_reload_modes(a);
	qb_loop_timer_add(a->loop, QB_LOOP_LOW, PUMP_MS * QB_TIME_NS_IN_MSEC, a, pump, &pump_timer);
}

/* ---- the control API ------------------------------------------------------ */

static void fill_plan(struct agent *a, Pvha__ApiReply *rep, const struct pvclus_rebalance_result *res,
		      double threshold, struct agent_view *v, const struct pvclus_move *moves, size_t n)
{
	static Pvha__RebalancePlan p;
	static Pvha__PlannedMove pm[PLAN_MAX_MOVES];
	static Pvha__PlannedMove *pp[PLAN_MAX_MOVES];
	pvha__rebalance_plan__init(&p);
	p.mem_before = res->before.mem;
	p.cpu_before = res->before.cpu;
	p.score_before = res->before.score;
	p.mem_after = res->after.mem;
	p.cpu_after = res->after.cpu;
	p.score_after = res->after.score;
	p.balanced = res->balanced;
	p.threshold = threshold;
	for (size_t i = 0; i < n && i < PLAN_MAX_MOVES; i++) {
		pvha__planned_move__init(&pm[i]);
		pm[i].guest = v->of[moves[i].index]->spec.name;
		pm[i].from = (char *)agent_node_name(a, moves[i].from);
		pm[i].to = (char *)agent_node_name(a, moves[i].to);
		pm[i].gain = moves[i].gain;
		pp[i] = &pm[i];
	}
	p.n_moves = n;
	p.moves = pp;
	rep->plan = &p;
}

/* Where the guests of node i would go if it drained now; *unplaceable counts
 * those with no place. */
static int drain_plan(struct agent *a, int i, Pvha__ApiReply *rep, size_t *unplaceable)
{
	static struct agent_view v;
	static struct pvclus_placement out[MAX_GUESTS];
	static Pvha__RebalancePlan p;
	static Pvha__PlannedMove pm[MAX_GUESTS];
	static Pvha__PlannedMove *pp[MAX_GUESTS];
	static char why[MAX_GUESTS][128];
	static char *whyp[MAX_GUESTS];
	int err = view_build(a, &v);
	if (err)
		return err;
	v.nodes[i].maintenance = true;
	size_t nout = 0;
	err = pvclus_sched_evacuate(&v.view, v.guests, v.n_guests, a->nodes[i].nodeid, out, &nout);
	if (err)
		return err;
	pvha__rebalance_plan__init(&p);
	size_t nm = 0, nu = 0;
	for (size_t k = 0; k < nout; k++) {
		struct guest *g = v.of[out[k].index];
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
	p.n_moves = nm;
	p.moves = pp;
	p.n_unplaceable = nu;
	p.unplaceable = whyp;
	rep->plan = &p;
	*unplaceable = nu;
	return 0;
}

/* Whether moving g to node `to` would break one of its hard rules (v from
 * view_build); says which in msg. */
static bool breaks_hard_rule(struct agent *a, const struct agent_view *v, const struct guest *g, uint32_t to,
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

void agent_migrate_api(struct agent *a, const Pvha__ApiRequest *req, Pvha__ApiReply *rep, char *msg,
		       size_t msglen)
{
	static struct agent_view v;
	static struct pvclus_move moves[PLAN_MAX_MOVES];
	if (!a->quorate || !a->leader) {
		rep->error = -EAGAIN;
		snprintf(msg, msglen, "this node's partition has no quorum (or no leader yet): no change can be made here");
		return;
	}
	int ni = -1;
	if (req->op != PVHA__API_REQUEST__OP__CLUSTER_REBALANCE) {
		ni = req->node && req->node[0] ? node_by_name(a, req->node) : -1;
		if (ni < 0) {
			rep->error = -ENOENT;
			snprintf(msg, msglen, "no node '%s' in the cluster", req->node ? req->node : "");
			return;
		}
	}
	switch (req->op) {
	case PVHA__API_REQUEST__OP__NODE_DRAIN: {
		if (a->peers[ni].mode != NODE_ACTIVE) {
			snprintf(msg, msglen, "node %s is already %s", a->nodes[ni].name,
				 pvstore_node_mode_str((enum pvstore_node_mode)a->peers[ni].mode));
			return;
		}
		size_t nu = 0;
		int err = drain_plan(a, ni, rep, &nu);
		if (err) {
			rep->error = err;
			snprintf(msg, msglen, "the scheduler failed: %s", strerror(-err));
			return;
		}
		if (nu && !req->force) {
			rep->error = -ENOSPC;
			snprintf(msg, msglen, "%zu guest(s) of %s would have no place to run: nothing changed (--force drains anyway: they stay until a place frees up)",
				 nu, a->nodes[ni].name);
			return;
		}
		rep->error = announce_mode(a, ni, NODE_DRAINING, msg, msglen);
		if (!rep->error)
			cluster_event(a, "drain", "node %s: draining (%zu guest(s) to move)", a->nodes[ni].name,
				      rep->plan->n_moves + nu);
		return;
	}
	case PVHA__API_REQUEST__OP__NODE_RESUME:
		if (a->peers[ni].mode == NODE_ACTIVE) {
			snprintf(msg, msglen, "node %s is already active", a->nodes[ni].name);
			return;
		}
		rep->error = announce_mode(a, ni, NODE_ACTIVE, msg, msglen);
		if (!rep->error)
			cluster_event(a, "resume", "node %s: active again", a->nodes[ni].name);
		return;
	case PVHA__API_REQUEST__OP__GUEST_MIGRATE: {
		struct guest *g = req->guest && req->guest[0] ? guests_by_name(a, req->guest) : NULL;
		if (!g) {
			rep->error = -ENOENT;
			snprintf(msg, msglen, "no guest '%s'", req->guest ? req->guest : "");
			return;
		}
		uint32_t to = a->nodes[ni].nodeid;
		if (g->ha.state != PVCLUS_HA_RUNNING) {
			rep->error = -EBUSY;
			snprintf(msg, msglen, "guest %s is %s: only a running guest migrates", g->spec.name,
				 pvclus_ha_state_str(g->ha.state));
			return;
		}
		if (g->ha.owner == to) {
			rep->error = -EINVAL;
			snprintf(msg, msglen, "guest %s already runs on %s", g->spec.name, a->nodes[ni].name);
			return;
		}
		if (!agent_node_online(a, ni) || a->peers[ni].fenced) {
			rep->error = -EHOSTUNREACH;
			snprintf(msg, msglen, "node %s is not up in this partition (or cannot reach the storage)",
				 a->nodes[ni].name);
			return;
		}
		if (a->peers[ni].mode != NODE_ACTIVE) {
			rep->error = -EBUSY;
			snprintf(msg, msglen, "node %s is %s: it takes no guests", a->nodes[ni].name,
				 pvstore_node_mode_str((enum pvstore_node_mode)a->peers[ni].mode));
			return;
		}
		if (view_build(a, &v) == 0 && v.nodes[ni].mem_used + g->spec.mem_size > v.nodes[ni].mem_total) {
			rep->error = -ENOSPC;
			snprintf(msg, msglen, "node %s has %llu MiB free, guest %s needs %llu MiB", a->nodes[ni].name,
				 (unsigned long long)((v.nodes[ni].mem_total - v.nodes[ni].mem_used) >> 20),
				 g->spec.name, (unsigned long long)(g->spec.mem_size >> 20));
			return;
		}
		if (breaks_hard_rule(a, &v, g, to, msg, msglen)) {
			rep->error = -EPERM;
			return;
		}
		if (req->downtime_ms > 60000) {
			rep->error = -EINVAL;
			snprintf(msg, msglen, "a downtime budget of %u ms is beyond 60000", req->downtime_ms);
			return;
		}
		send_request(a, g, to, req->downtime_ms, "requested");
		snprintf(msg, msglen, "guest %s: migrating from %s to %s", g->spec.name, agent_node_name(a, g->ha.owner),
			 a->nodes[ni].name);
		return;
	}
	case PVHA__API_REQUEST__OP__CLUSTER_REBALANCE: {
		double threshold = req->threshold > 0 ? req->threshold
			: a->cfg.rebalance_threshold > 0 ? a->cfg.rebalance_threshold : REBALANCE_DEFAULT_THRESHOLD;
		if (threshold >= 1.0) {
			rep->error = -EINVAL;
			snprintf(msg, msglen, "threshold %.3f: want a fraction in (0, 1)", threshold);
			return;
		}
		for (int i = 0; i < MAX_GUESTS; i++) {
			if (a->guests->g[i].used && a->guests->g[i].ha.state == PVCLUS_HA_MIGRATING && !req->dry_run) {
				rep->error = -EBUSY;
				snprintf(msg, msglen, "guest %s is migrating: rebalance once it is done",
					 a->guests->g[i].spec.name);
				return;
			}
		}
		struct pvclus_rebalance_result res;
		int err = plan(a, threshold, moves, &res, &v, false);
		if (err) {
			rep->error = err;
			snprintf(msg, msglen, "the planner failed: %s", strerror(-err));
			return;
		}
		fill_plan(a, rep, &res, threshold, &v, moves, res.n_moves);
		if (!req->dry_run && res.n_moves) {
			cluster_event(a, "rebalance", "requested: imbalance %.3f, %zu migration(s), %.3f after",
				      res.before.score, res.n_moves, res.after.score);
			start_moves(a, &v, moves, res.n_moves, "rebalance");
		}
		return;
	}
	default:
		rep->error = -EINVAL;
		snprintf(msg, msglen, "unknown operation %d", req->op);
	}
}
