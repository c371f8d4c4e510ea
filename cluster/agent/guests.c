/*
 * The agent's guests: the table of HA records (cluster/ha.h), the same on every
 * agent because every agent applies the same CPG-ordered events to it; the
 * actions each step asks for, carried out by the leader (persist, log, place,
 * fence, delete) or by the node they name (start, recover, stop, release the
 * lock); the supervision of this node's pvha-vmm processes once they run;
 * the cluster's guest messages and table; the guest part of the control API.
 * The lower halves are table.c (lookups, events sent, spawning), registry.c
 * (specs read), info.c and set.c (the API's answers and `guest set`).
 *
 * Ownership on this node: a pvha-vmm takes the guest's owner lock itself
 * (--lock, cookie = this node's incarnation) before the guest's first
 * instruction, so the lock lives exactly as long as the process that writes
 * the disk. A VMM that died without releasing it leaves a lock with our cookie
 * held by a dead client: before anything starts the guest again, that exact
 * client (IP:0/NONCE) is blocklisted and the lock broken, so none of its
 * in-flight writes can land after the new copy's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"

#define TABLE_WAIT_MS 3000
#define TABLE_RECHECK_MS 100
#define ADOPTED_POLL_MS 200


/* ---- this node's VMMs ---------------------------------------------------- */

/* What clearing a guest's owner lock needs of the agent's state, copied for
 * the storage worker. */
struct lock_ctx {
	uint8_t uuid[16];
	char name[PVSTORE_NAME_MAX + 1];
	char fenced_addr[64];             /* "" or a fenced node's address (recovery) */
	char incarnation[64];             /* this boot's */
	char live[PVCLUS_MAX_NODES][64];  /* the current incarnation of every node that said hello */
	size_t nlive;
	char note[300];                   /* what it did, for the log */
};

static void lock_ctx_fill(struct pvclus_agent *a, const struct guest *g, const char *fenced_addr,
			  struct lock_ctx *c)
{
	memcpy(c->uuid, g->spec.uuid, 16);
	snprintf(c->name, sizeof(c->name), "%s", g->spec.name);
	snprintf(c->fenced_addr, sizeof(c->fenced_addr), "%s", fenced_addr ? fenced_addr : "");
	snprintf(c->incarnation, sizeof(c->incarnation), "%s", a->cfg.incarnation);
	c->nlive = 0;
	for (int i = 0; i < a->nnodes; i++)
		if (a->peers[i].hello)
			snprintf(c->live[c->nlive++], sizeof(c->live[0]), "%s", a->peers[i].incarnation);
}

/* (On a storage worker.) Makes the owner lock free for a new start on this
 * node: a lock with our cookie whose holder is not a VMM of ours that lives
 * is a dead VMM's; fence that exact client, then break it. A fenced node's
 * address (recovery) covers locks of a fenced node. Returns 0 or -errno. */
static int clear_lock_run(struct pvstore *st, struct lock_ctx *c, struct pvclus_job *j)
{
	struct pvstore_lock_holder h;
	int err = pvstore_lock_holder(st, c->uuid, &h);
	if (err == -ENOENT)
		return 0;
	if (err)
		goto fail;
	if (c->fenced_addr[0]) {
		err = pvstore_fence_and_break(st, c->fenced_addr, FENCE_EXPIRE_S, c->uuid, NULL);
		goto out;
	}
	size_t o = 0;
	if (strcmp(h.cookie, c->incarnation) != 0) {
		/* Another boot's: if that boot is some member's current one, the guest
		 * runs there. If it is nobody's, the host rebooted or is gone: fencing
		 * the holder's exact client keeps any write of it out, then it may go. */
		for (size_t i = 0; i < c->nlive; i++) {
			if (!strcmp(c->live[i], h.cookie)) {
				j->err = -EBUSY;
				snprintf(j->errmsg, sizeof(j->errmsg), "the owner lock is held by a live boot (%s)",
					 h.cookie);
				return -EBUSY;
			}
		}
		o = (size_t)snprintf(c->note, sizeof(c->note), "lock of a past boot (%.64s) taken over; ", h.cookie);
	}
	const char *addr = h.addr;
	if (!strncmp(addr, "v1:", 3) || !strncmp(addr, "v2:", 3))
		addr += 3;
	if (o < sizeof(c->note))
		snprintf(c->note + o, sizeof(c->note) - o, "broke the lock of a dead VMM (%.80s)", addr);
	err = pvstore_fence_and_break(st, addr, FENCE_EXPIRE_S, c->uuid, h.cookie);
out:
	if (!err)
		return 0;
fail:
	agent_job_fail(j, err);
	return err;
}

/* Frees the owner lock (RELEASE_LOCK, or after this node killed its VMM),
 * then, with send_stopped, reports the guest stopped here. */
struct release_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	bool send_stopped;
	bool send_hb_lost;     /* or HEARTBEAT_LOST with hb_step */
	enum pvclus_ha_heartbeat_step hb_step;
	bool quiet_busy; /* a lock of another boot is not an error */
	struct lock_ctx lc;
};

static int release_run(struct pvstore *st, struct pvclus_job *j)
{
	struct release_job *r = (struct release_job *)j;
	if (!st) {
		agent_job_fail(j, -ENOTCONN);
		return -ENOTCONN;
	}
	return clear_lock_run(st, &r->lc, j);
}

static void release_done(struct pvclus_job *j)
{
	struct release_job *r = (struct release_job *)j;
	struct pvclus_agent *a = r->a;
	if (r->lc.note[0])
		alog_info(a, "guest %s: %s", r->lc.name, r->lc.note);
	if (j->err && !(j->err == -EBUSY && r->quiet_busy))
		alog_warn(a, "guest %s: clearing its owner lock: %s", r->lc.name, j->errmsg);
	if (r->send_stopped)
		guests_send_event(a, r->lc.uuid, PVCLUS_HA_EV_STOPPED, a->local, false, 0, 0);
	if (r->send_hb_lost)
		guests_send_event(a, r->lc.uuid, PVCLUS_HA_EV_HEARTBEAT_LOST, a->local, false, 0, r->hb_step);
	free(r);
}

/* quiet_busy: a lock of another boot is not an error; hb_step: NULL, or
 * report HEARTBEAT_LOST with *hb_step once it is done. */
static void release_lock(struct pvclus_agent *a, struct guest *g, bool send_stopped, bool quiet_busy,
			 const enum pvclus_ha_heartbeat_step *hb_step)
{
	struct release_job *r = calloc(1, sizeof(*r));
	if (!r) {
		alog_err(a, -ENOMEM, "guest %s: clearing its owner lock", g->spec.name);
		if (send_stopped)
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STOPPED, a->local, false, 0, 0);
		if (hb_step)
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_HEARTBEAT_LOST, a->local, false, 0, *hb_step);
		return;
	}
	r->j = (struct pvclus_job){ .run = release_run, .done = release_done, .what = "release lock" };
	r->a = a;
	r->send_stopped = send_stopped;
	r->send_hb_lost = hb_step != NULL;
	r->hb_step = hb_step ? *hb_step : PVCLUS_HA_HB_RESTART;
	r->quiet_busy = quiet_busy;
	lock_ctx_fill(a, g, NULL, &r->lc);
	agent_submit(a, &r->j);
}

/* A start here (START or RECOVER): the spec if it is not read yet, the
 * owner lock cleared, the image read unless cached (a storage job), then the
 * VMM spawned on the agent's thread. */
struct start_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	bool read_spec;
	struct pvstore_guest spec;
	bool fetch_image;
	void *image;
	size_t image_len;
	struct lock_ctx lc;
	char key[PVSTORE_KEY_MAX]; /* the guest's cephx user's (keys.c) */
};

static int start_run(struct pvstore *st, struct pvclus_job *j)
{
	struct start_job *sj = (struct start_job *)j;
	int err = st ? 0 : -ENOTCONN;
	if (!err && sj->read_spec)
		err = pvstore_guest_read(st, sj->lc.uuid, &sj->spec);
	if (err) {
		agent_job_fail(j, err);
		return err;
	}
	err = clear_lock_run(st, &sj->lc, j);
	if (err)
		return err;
	if (sj->fetch_image) {
		err = pvstore_image_get(st, sj->spec.image_sha256, &sj->image, &sj->image_len);
		if (err) {
			agent_job_fail(j, err);
			return err;
		}
	}
	return sj->key[0] ? 0 : agent_key_run(st, sj->lc.uuid, sj->key, j);
}

static void start_done(struct pvclus_job *j)
{
	struct start_job *sj = (struct start_job *)j;
	struct pvclus_agent *a = sj->a;
	struct guest *g = guests_find(a, sj->lc.uuid);
	if (!g)
		goto out;
	g->start_job = false;
	if (sj->read_spec && !j->err) {
		g->spec = sj->spec;
		g->spec_loaded = true;
	}
	agent_key_keep(g, sj->key);
	if (g->start_cancelled) {
		g->start_cancelled = false;
		goto out;
	}
	bool still = g->ha.owner == a->local && g->pid <= 0 &&
		     (g->ha.state == PVCLUS_HA_STARTING || g->ha.state == PVCLUS_HA_RECOVERING);
	if (!still)
		goto out;
	if (sj->lc.note[0])
		alog_info(a, "guest %s: %s", g->spec.name, sj->lc.note);
	int err = j->err;
	if (!err)
		err = guests_address(a, g, true); /* before the guest's first instruction */
	if (!err)
		err = guests_spawn_vmm(a, g, NULL, sj->image, sj->image_len);
	if (err && g->addr_up)
		guests_address(a, g, false);
	if (err) {
		alog_err(a, err, "guest %s: start%s%s", g->spec.name, j->err ? ": " : "", j->err ? j->errmsg : "");
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_START_FAILED, a->local, false, err, 0);
	}
out:
	memset(sj->key, 0, sizeof(sj->key));
	free(sj->image);
	free(sj);
}

static void start_here(struct pvclus_agent *a, struct guest *g, const char *fenced_addr)
{
	struct start_job *sj = calloc(1, sizeof(*sj));
	if (!sj) {
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_START_FAILED, a->local, false, -ENOMEM, 0);
		return;
	}
	sj->j = (struct pvclus_job){ .run = start_run, .done = start_done, .what = "start" };
	sj->a = a;
	sj->read_spec = !g->spec_loaded;
	if (g->spec_loaded)
		sj->spec = g->spec;
	sj->fetch_image = sj->read_spec || !a->ops->image_cached(a->ctx, g->spec.image_sha256);
	lock_ctx_fill(a, g, fenced_addr, &sj->lc);
	memcpy(sj->key, g->ceph_key, sizeof(sj->key));
	g->start_job = true;
	g->start_cancelled = false;
	agent_submit(a, &sj->j);
}

static void stop_vmm(struct pvclus_agent *a, struct guest *g, bool force)
{
	if (g->pid <= 0) {
		/* Nothing runs here: say so, so that the record moves on (and a
		 * start whose storage work is still running spawns nothing). */
		if (g->start_job)
			g->start_cancelled = true;
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STOPPED, a->local, false, 0, 0);
		return;
	}
	g->stopping = true;
	a->ops->vmm_kill(a->ctx, g->pid, force);
}

/* A VMM of this node ended with exit status code (-1: killed by a signal, or
 * unknown for an adopted one): report what that means for its guest. */
static void vmm_ended(struct pvclus_agent *a, struct guest *g, int code)
{
	/* Its address leaves with it (an adopted one's was put up by an earlier
	 * agent of this boot). */
	if (g->addr_up || (g->adopted && g->spec.address[0]))
		guests_address(a, g, false);
	g->pid = 0;
	g->adopted = false;
	enum pvclus_ha_heartbeat_step hb_step;
	if (agent_migrate_vmm_ended(a, g, code))
		return;
	if (heartbeat_vmm_ended(a, g, &hb_step)) {
		if (hb_step == PVCLUS_HA_HB_RESTART) { /* here: the restart takes over its own boot's lock */
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_HEARTBEAT_LOST, a->local, false, 0, hb_step);
			return;
		}
		/* it leaves this node: the killed VMM's lock first, then the word */
		release_lock(a, g, false, false, &hb_step);
		return;
	}
	if (g->stopping) {
		if (code != 0 && code != 1 && code != PVCLUS_VMM_EXIT_STOPPED)
			release_lock(a, g, true, false, NULL); /* killed: its lock is a dead client's; then STOPPED */
		else
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STOPPED, a->local, false, 0, 0);
	} else if (!g->start_reported) {
		g->ceph_key[0] = '\0'; /* a stale key (its user remade by hand)? read it again next time */
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_START_FAILED, a->local, false,
				  agent_vmm_start_error(code), 0);
	} else {
		/* exit 0: the guest powered itself off; anything else is a crash */
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_VMM_EXITED, a->local, code != 0, 0, 0);
	}
}

/* An adopted VMM is not our child: poll whether it still lives. */
static void watch_adopted(void *data)
{
	struct guest *g = data;
	struct pvclus_agent *a = g->agent;
	if (!g->used || !g->adopted || g->pid <= 0)
		return;
	if (!a->ops->vmm_alive(a->ctx, g->pid)) {
		alog_info(a, "guest %s: adopted pvha-vmm %d ended", g->spec.name, (int)g->pid);
		vmm_ended(a, g, -1);
		return;
	}
	agent_timer(a, ADOPTED_POLL_MS, watch_adopted, g, &g->timer);
}

void pvclus_agent_adopt(struct pvclus_agent *a, const uint8_t uuid[16], pid_t pid)
{
	struct guest *g = guests_find(a, uuid);
	if (!g)
		g = guests_load(a, uuid, NULL);
	if (!g)
		return;
	g->pid = pid;
	g->adopted = true;
	g->start_reported = true;
	alog_info(a, "guest %s: adopted its running pvha-vmm (pid %d)", g->spec.name, (int)g->pid);
	agent_timer(a, ADOPTED_POLL_MS, watch_adopted, g, &g->timer);
}

/* A VMM of this node that is our child ended: report it. */
bool guests_reaped(struct pvclus_agent *a, pid_t pid, int status)
{
	struct guest *g = NULL;
	for (int i = 0; i < MAX_GUESTS && !g; i++)
		if (a->g[i].used && a->g[i].pid == pid)
			g = &a->g[i];
	if (!g)
		return false;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	alog_info(a, "guest %s: pvha-vmm %d ended (%s %d)", g->spec.name, (int)pid, code >= 0 ? "exit" : "signal",
		  code >= 0 ? code : WTERMSIG(status));
	vmm_ended(a, g, code);
	agent_send_hello(a);
	return true;
}

/* ---- the leader's work --------------------------------------------------- */

struct persist_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	uint8_t uuid[16];
	enum pvstore_desired want;
};

static int persist_run(struct pvstore *st, struct pvclus_job *j)
{
	struct persist_job *p = (struct persist_job *)j;
	int err = st ? -ECANCELED : -ENOTCONN;
	for (int tries = 0; tries < 3 && err == -ECANCELED; tries++) {
		struct pvstore_guest cur;
		err = pvstore_guest_read(st, p->uuid, &cur);
		if (err || cur.desired == p->want)
			break;
		cur.desired = p->want;
		err = pvstore_guest_update(st, &cur);
	}
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void persist(struct pvclus_agent *a, struct guest *g);

static void persist_done(struct pvclus_job *j)
{
	struct persist_job *p = (struct persist_job *)j;
	struct pvclus_agent *a = p->a;
	struct guest *g = guests_find(a, p->uuid);
	if (g) {
		g->persisting = false;
		if (!j->err)
			g->spec.desired = p->want;
		else
			alog_warn(a, "guest %s: writing its desired state: %s", g->spec.name, j->errmsg);
		if (g->persist_again) {
			g->persist_again = false;
			persist(a, g);
		}
	}
	free(p);
}

/* Writes the desired state to the registry (a storage job; one at a time per
 * guest, the latest wins). */
static void persist(struct pvclus_agent *a, struct guest *g)
{
	enum pvstore_desired want = g->ha.want_running ? PVSTORE_DESIRED_RUNNING : PVSTORE_DESIRED_STOPPED;
	if (g->persisting) {
		g->persist_again = true;
		return;
	}
	if (g->spec_loaded && g->spec.desired == want)
		return;
	struct persist_job *p = calloc(1, sizeof(*p));
	if (!p)
		return;
	p->j = (struct pvclus_job){ .run = persist_run, .done = persist_done, .what = "persist" };
	p->a = a;
	memcpy(p->uuid, g->spec.uuid, 16);
	p->want = want;
	g->persisting = true;
	agent_submit(a, &p->j);
}

struct delete_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	uint8_t uuid[16];
	char name[PVSTORE_NAME_MAX + 1];
};

static int delete_run(struct pvstore *st, struct pvclus_job *j)
{
	struct delete_job *d = (struct delete_job *)j;
	int err = st ? pvstore_disk_delete(st, d->uuid) : -ENOTCONN;
	if (!err || err == -ENOENT)
		err = pvstore_guest_delete(st, d->uuid, 0);
	if (err)
		agent_job_fail(j, err);
	else /* a deleted guest's key must not outlive it */
		err = agent_key_remove_run(st, d->uuid, j);
	return err;
}

static void delete_done(struct pvclus_job *j)
{
	struct delete_job *d = (struct delete_job *)j;
	if (j->err)
		alog_warn(d->a, "guest %s: deleting it from the registry: %s", d->name, j->errmsg);
	free(d);
}

static void delete_stored(struct pvclus_agent *a, struct guest *g)
{
	struct delete_job *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->j = (struct pvclus_job){ .run = delete_run, .done = delete_done, .what = "delete" };
	d->a = a;
	memcpy(d->uuid, g->spec.uuid, 16);
	snprintf(d->name, sizeof(d->name), "%s", g->spec.name);
	agent_submit(a, &d->j);
}

static void log_step(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_action *act)
{
	char why[256];
	snprintf(why, sizeof(why), "%s%s%s -> %s%s%s%s%s", pvclus_ha_reason_str(act->reason),
		 act->reason == PVCLUS_HA_R_UNPLACEABLE ? ": " : "",
		 act->reason == PVCLUS_HA_R_UNPLACEABLE ? pvclus_sched_reason_str(act->detail) : "",
		 pvclus_ha_state_str(g->ha.state), g->ha.owner ? " on " : "",
		 g->ha.owner ? agent_node_name(a, g->ha.owner) : "", act->err ? ": " : "",
		 act->err ? strerror(-act->err) : "");
	if (act->reason == PVCLUS_HA_R_MIGRATE_STARTED)
		g->migrations++;
	snprintf(g->last_step, sizeof(g->last_step), "%s", why);
	if (!agent_leads(a))
		return; /* the leader writes the event log */
	alog_info(a, "guest %s: %s", g->spec.name, why);
	guest_event(a, g->spec.uuid, pvclus_ha_state_str(g->ha.state), why);
}

/* ---- applying events ----------------------------------------------------- */

static void do_actions(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_actions *acts)
{
	bool leader = agent_leads(a);
	for (unsigned i = 0; i < acts->n; i++) {
		const struct pvclus_ha_action *act = &acts->a[i];
		bool mine = act->node == a->local;
		switch (act->kind) {
		case PVCLUS_HA_ACT_PERSIST:
			if (leader)
				persist(a, g);
			break;
		case PVCLUS_HA_ACT_LOG:
			log_step(a, g, act);
			break;
		case PVCLUS_HA_ACT_PLACE:
			if (leader)
				agent_place(a, g);
			break;
		case PVCLUS_HA_ACT_FENCE:
			if (leader)
				agent_fence(a, act->node);
			break;
		case PVCLUS_HA_ACT_DELETE:
			if (leader && a->st)
				delete_stored(a, g);
			agent_migrate_forget(a, g);
			g->used = false;
			return;
		case PVCLUS_HA_ACT_START:
		case PVCLUS_HA_ACT_RECOVER: {
			if (!mine)
				break;
			const char *fenced_addr = NULL;
			/* The fenced node's locks are broken under its fence; when this
			 * node is the one that was fenced (it came back, and recovers its
			 * own guest), its old boot's lock is a past boot's like any other
			 * (lock clearing fences that exact dead client, never this
			 * node's address). */
			if (act->kind == PVCLUS_HA_ACT_RECOVER && act->peer && act->peer != a->local) {
				struct peer *p = agent_peer(a, act->peer);
				/* A fenced node that is back, unfenced and a member again
				 * (it runs no guest: that is why it was unfenced) must not
				 * be blocklisted anew: its old boot's lock is a past
				 * boot's, and clearing it fences that dead client only. */
				bool back = p && !p->fenced && agent_is_member(a, act->peer);
				/* One fenced without a blocklist runs no VMM of it (or stops
				 * them: NodeFenced): its locks are a dead VMM's or a live
				 * boot's, cleared client by client, never by its address. */
				fenced_addr = p && p->addr[0] && !back && !p->no_blocklist ? p->addr : NULL;
			}
			start_here(a, g, fenced_addr);
			break;
		}
		case PVCLUS_HA_ACT_STOP:
			if (mine)
				stop_vmm(a, g, act->force);
			break;
		case PVCLUS_HA_ACT_RELEASE_LOCK:
			if (mine)
				release_lock(a, g, false, false, NULL);
			break;
		case PVCLUS_HA_ACT_MIGRATE:
		case PVCLUS_HA_ACT_ABORT_MIGRATION:
		case PVCLUS_HA_ACT_PLACE_MIGRATION:
			agent_migrate_action(a, g, act, leader);
			break;
		default:
			break;
		}
	}
}

static void apply(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_event *ev)
{
	struct pvclus_ha_guest next;
	struct pvclus_ha_actions acts;
	int err = pvclus_ha_step(&g->ha, ev, &next, &acts);
	if (err) {
		alog_debug(a, "guest %s: %s refused in state %s", g->spec.name, pvclus_ha_event_str(ev->type),
			    pvclus_ha_state_str(g->ha.state));
		return;
	}
	agent_sched_on_step(a, g, &next, ev);
	g->ha = next;
	do_actions(a, g, &acts);
	agent_migrate_after_step(a, g);
	if (g->used)
		heartbeat_after_step(a, g, ev);
}

static void apply_all(struct pvclus_agent *a, const struct pvclus_ha_event *ev)
{
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used)
			apply(a, &a->g[i], ev);
}

static void record_to_msg(const struct guest *g, Pvha__HaRecord *r, uint32_t *fence)
{
	const struct pvclus_ha_guest *h = &g->ha;
	pvha__ha_record__init(r);
	r->uuid.data = (uint8_t *)g->spec.uuid;
	r->uuid.len = 16;
	r->state = h->state;
	r->want_running = h->want_running;
	r->owner = h->owner;
	r->target = h->target;
	r->handed_over = h->handed_over;
	fence[0] = h->fence[0];
	fence[1] = h->fence[1];
	r->n_fence = 2;
	r->fence = fence;
	r->peer = h->peer;
	r->peer_is_source = h->peer_is_source;
	r->fenced = h->fenced;
	r->avoid = h->avoid;
	r->start_failures = h->start_failures;
	r->busy_failures = h->busy_failures;
	r->restarts = h->restarts;
	r->max_start_failures = h->max_start_failures;
	r->max_restarts = h->max_restarts;
	r->reason = h->reason;
	r->err = h->err;
	r->hb_moved = h->hb_moved;
}

static int msg_to_record(const Pvha__HaRecord *r, struct pvclus_ha_guest *h)
{
	if (r->n_fence != 2 || r->state >= PVCLUS_HA_STATE_COUNT || r->reason >= PVCLUS_HA_R_COUNT ||
	    r->start_failures > 0xffff || r->busy_failures > 0xffff || r->restarts > 0xffff || r->max_start_failures > 0xffff ||
	    r->max_restarts > 0xffff)
		return -EBADMSG;
	memset(h, 0, sizeof(*h));
	h->state = (enum pvclus_ha_state)r->state;
	h->want_running = r->want_running;
	h->owner = r->owner;
	h->target = r->target;
	h->handed_over = r->handed_over;
	h->fence[0] = r->fence[0];
	h->fence[1] = r->fence[1];
	h->peer = r->peer;
	h->peer_is_source = r->peer_is_source;
	h->fenced = r->fenced;
	h->avoid = r->avoid;
	h->start_failures = (uint16_t)r->start_failures;
	h->busy_failures = (uint16_t)r->busy_failures;
	h->restarts = (uint16_t)r->restarts;
	h->max_start_failures = (uint16_t)r->max_start_failures;
	h->max_restarts = (uint16_t)r->max_restarts;
	h->reason = (enum pvclus_ha_reason)r->reason;
	h->err = r->err;
	h->hb_moved = r->hb_moved;
	return pvclus_ha_check(h);
}

static void send_table(struct pvclus_agent *a)
{
	Pvha__HaRecord *recs = calloc(MAX_GUESTS, sizeof(*recs));
	Pvha__HaRecord **ptrs = calloc(MAX_GUESTS, sizeof(*ptrs));
	uint32_t (*fences)[2] = calloc(MAX_GUESTS, sizeof(*fences));
	if (!recs || !ptrs || !fences) {
		alog_err(a, -ENOMEM, "sending the guest table");
		goto out_free;
	}
	uint32_t fenced[PVCLUS_MAX_NODES];
	size_t n = 0, nf = 0;
	for (int i = 0; i < MAX_GUESTS; i++) {
		if (!a->g[i].used)
			continue;
		record_to_msg(&a->g[i], &recs[n], fences[n]);
		ptrs[n] = &recs[n];
		n++;
	}
	for (int i = 0; i < a->nnodes; i++)
		if (a->peers[i].fenced)
			fenced[nf++] = a->nodes[i].nodeid;
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__GuestTable t = PVHA__GUEST_TABLE__INIT;
	t.n_guests = n;
	t.guests = ptrs;
	t.n_fenced_nodes = nf;
	t.fenced_nodes = fenced;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_TABLE;
	msg.table = &t;
	agent_send(a, &msg);
out_free:
	free(recs);
	free(ptrs);
	free(fences);
}

/* A whole-cluster start: nobody kept a table, so the registry's desired
 * states are the truth, and the leader starts what should run. (A guest
 * whose VMM an agent adopted here is left alone.) */
static void start_desired(struct pvclus_agent *a)
{
	if (!agent_leads(a))
		return;
	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->g[i];
		if (g->used && g->spec_loaded && g->pid <= 0 && g->spec.desired == PVSTORE_DESIRED_RUNNING &&
		    g->ha.state == PVCLUS_HA_STOPPED) {
			alog_info(a, "guest %s: desired running after a whole-cluster start", g->spec.name);
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_START_REQ, 0, false, 0, 0);
		}
	}
}

/* A start here whose VMM the agent before this one spawned and this one
 * adopted: that agent ended before it saw the VMM answer, so nobody said
 * STARTED (random seed 4454: a recovery here, the agent restarted 80 ms after
 * the spawn, the guest in recovering for good). It answers: it runs and owns
 * the guest (it takes the lock before it listens). It does not (still
 * booting), or it is no start's (an incoming VMM left by a migration): it
 * is killed and its end reported as a failed start. */
static void adopted_start(struct pvclus_agent *a, struct guest *g)
{
	struct pvclus_vmm_status st;
	if (a->ops->vmm_status(a->ctx, g->spec.uuid, &st) == 0 && strcmp(st.state, "incoming") != 0 &&
	    strcmp(st.state, "migrated") != 0 && strcmp(st.state, "stopped") != 0) {
		alog_info(a, "guest %s: its start here came up while no agent watched", g->spec.name);
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STARTED, a->local, false, 0, 0);
		return;
	}
	alog_info(a, "guest %s: its start here does not answer: killing it", g->spec.name);
	g->start_reported = false;
	a->ops->vmm_kill(a->ctx, g->pid, true);
}

/* Each time this agent takes the cluster's table: what the table says of
 * this node against what runs here (it may have been down meanwhile, or a
 * start placed here while it waited for the table never ran: the table
 * already holds it, so the held PLACED replays as refused). A guest running
 * here on paper whose VMM is gone ended while no agent watched: report it,
 * so that HA restarts it. The first time, a migration target here whose
 * adopted VMM runs (or still receives) the guest is watched again, so that
 * its end is reported, and a start here whose adopted VMM runs is reported
 * (adopted_start). */
static void reconcile_here(struct pvclus_agent *a)
{
	bool first = !a->reconciled;
	a->reconciled = true;
	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->g[i];
		if (!g->used || g->start_job)
			continue;
		const struct pvclus_ha_guest *h = &g->ha;
		bool target_here = h->state == PVCLUS_HA_MIGRATING && h->target == a->local;
		if (target_here && g->pid > 0) {
			if (first)
				agent_migrate_watch_incoming(a, g);
			continue;
		}
		bool start_here = (h->state == PVCLUS_HA_STARTING || h->state == PVCLUS_HA_RECOVERING) &&
				  h->owner == a->local;
		if (start_here && g->pid > 0 && g->adopted) {
			if (first)
				adopted_start(a, g);
			continue;
		}
		if (g->pid > 0)
			continue;
		if (target_here) {
			alog_info(a, "guest %s: this node's incoming VMM is gone", g->spec.name);
			guests_send_event(a, g->spec.uuid,
					  h->handed_over ? PVCLUS_HA_EV_START_FAILED : PVCLUS_HA_EV_MIGRATE_FAILED,
					  a->local, false, -EIO, 0);
		} else if (h->owner != a->local) {
			continue;
		} else if (h->state == PVCLUS_HA_RUNNING ||
			   (h->state == PVCLUS_HA_MIGRATING && !h->handed_over)) {
			alog_info(a, "guest %s: its VMM here ended while no agent watched", g->spec.name);
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_VMM_EXITED, a->local, true, 0, 0);
		} else if (h->state == PVCLUS_HA_STARTING || h->state == PVCLUS_HA_RECOVERING) {
			alog_info(a, "guest %s: its start here never ran (lost with the agent, or placed while this node waited for the table)",
				  g->spec.name);
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_START_FAILED, a->local, false, -EIO, 0);
		} else if (h->state == PVCLUS_HA_STOPPING) {
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STOPPED, a->local, false, 0, 0);
		}
	}
}

/* Forgets the messages held for a table that is no longer awaited as such. */
static void drop_held(struct pvclus_agent *a)
{
	for (size_t i = 0; i < a->nheld; i++)
		free(a->held[i].data);
	a->nheld = 0;
}

/* Forgets the messages held before since_ms. */
static void drop_held_before(struct pvclus_agent *a, uint64_t since_ms)
{
	size_t n = 0;
	for (size_t i = 0; i < a->nheld; i++) {
		if (a->held[i].at_ms < since_ms)
			free(a->held[i].data);
		else
			a->held[n++] = a->held[i];
	}
	a->nheld = n;
}

static void replay_held(struct pvclus_agent *a)
{
	bool gained = !a->have_state;
	a->awaiting = false;
	a->waiting_storage = false;
	a->have_state = true;
	a->replaying = true;
	agent_update_leader(a);
	/* Taken off the agent first: a replayed message may start another wait
	 * for a table (this node's fence lifted while it kept a table of its
	 * own), which holds messages anew; the rest of these are then older
	 * than that table and dropped. */
	size_t n = a->nheld;
	struct held *list = n ? malloc(n * sizeof(*list)) : NULL;
	if (n && !list) {
		alog_err(a, -ENOMEM, "replaying %zu held messages: dropped", n);
		drop_held(a);
		n = 0;
	} else if (n) {
		memcpy(list, a->held, n * sizeof(*list));
		a->nheld = 0;
	}
	for (size_t i = 0; i < n; i++) {
		Pvha__ClusterMsg *m = a->awaiting ? NULL
			: pvha__cluster_msg__unpack(NULL, list[i].len, list[i].data);
		if (m) {
			a->held_leader = list[i].leader; /* rules.c */
			guests_on_message(a, list[i].from, m);
			pvha__cluster_msg__free_unpacked(m, NULL);
		}
		free(list[i].data);
	}
	free(list);
	a->replaying = false;
	if (!a->awaiting)
		reconcile_here(a);
	agent_lead_check(a);
	agent_check_unfence(a);
	/* Say so: the others answer joiners' hellos by who has state (the
	 * lowest such member sends the table, guests_on_hello). */
	if (gained && !a->awaiting)
		agent_send_hello(a);
}

/* Whether every node of the ring has its agent in the CPG group. */
static bool ring_all_members(const struct pvclus_agent *a)
{
	for (size_t i = 0; a->have_ring && i < a->nring; i++)
		if (!agent_is_member(a, a->ring[i]))
			return false;
	return true;
}

/* No table came: every member joined at once (a whole-cluster start), so the
 * registry this agent read is the state. */
static void table_timeout(void *data)
{
	struct pvclus_agent *a = data;
	if (!a->awaiting)
		return;
	if (!a->storage_ok) {
		/* Without the registry this node has no state to offer: it keeps
		 * waiting for a table (the leader lifts a stale fence, and the
		 * hello this node then sends asks for one). The held messages
		 * are older than any table that comes. */
		if (!a->waiting_storage)
			alog_info(a, "no guest table came and the storage is out of reach: waiting for both");
		a->waiting_storage = true;
		drop_held(a);
		agent_timer(a, TABLE_WAIT_MS, table_timeout, a, &a->await_timer);
		return;
	}
	if (!a->quorate) {
		/* A partition without quorum never takes the registry as the
		 * truth: the majority may be deciding meanwhile. It waits for a
		 * table, or for quorum. */
		agent_timer(a, TABLE_WAIT_MS, table_timeout, a, &a->await_timer);
		return;
	}
	if (agent_now_ms(a) - a->quorate_ms < TABLE_WAIT_MS && !ring_all_members(a)) {
		/* Quorum just came back (a heal) and the CPG membership that goes
		 * with the ring has not come yet: the others' agents, one of which
		 * may hold the table, are about to join. */
		agent_timer(a, TABLE_RECHECK_MS, table_timeout, a, &a->await_timer);
		return;
	}
	alog_info(a, "no guest table came in %d ms: starting from the registry", TABLE_WAIT_MS);
	/* Nobody kept the cluster's table: whatever this agent's records say is
	 * its own old view (nodes it saw leave, fences it heard of). The
	 * registry's desired states are the truth now; only a VMM that runs
	 * here keeps its record. */
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && a->g[i].pid <= 0)
			pvclus_ha_init(&a->g[i].ha);
	for (int i = 0; i < a->nnodes; i++)
		a->peers[i].fenced = false;
	/* Against the registry goes only what was held since quorum came
	 * back: what the agents that took it before this one sent. An older
	 * message is of a view nobody kept (random seed 9084: a placement on
	 * this node by a leader that lost quorum since, replayed here, started
	 * guests that the leader's table, taken from the registry later, did
	 * not know: the tables disagreed). */
	drop_held_before(a, a->quorate_ms);
	guests_refresh(a);
	replay_held(a);
	start_desired(a);
}

void guests_on_hello(struct pvclus_agent *a, uint32_t from, bool has_state)
{
	if (has_state || from == a->local || !a->have_state)
		return;
	/* The lowest member with state answers a hello without it. */
	for (size_t i = 0; i < a->nmembers; i++) {
		uint32_t id = a->members[i];
		struct peer *p = agent_peer(a, id);
		if (id == a->local || (p && p->has_state)) {
			if (id == a->local) {
				alog_debug(a, "node %u has no state: sending the table", from);
				send_table(a);
			}
			return;
		}
	}
}

void guests_await_table(struct pvclus_agent *a)
{
	if (a->have_state || a->awaiting)
		return;
	a->awaiting = true;
	drop_held(a);
	agent_timer(a, TABLE_WAIT_MS, table_timeout, a, &a->await_timer);
}

/* Whether an agent alone and quorate may take the registry now. In a
 * two-node cluster not before it knows the ring (Corosync delivers the CPG
 * members before the first ring, and quorum on a descriptor of its own): a
 * split makes it contend for the tie-break first, and it does not while its
 * half does not hold it (random seed 7781: restarted during a split, it
 * led alone from the registry and kept that table after the heal). */
static bool alone_ok(const struct pvclus_agent *a)
{
	return !agent_tiebreak_lost(a) && (a->nnodes != 2 || a->have_ring);
}

/* The only agent of the CPG group, quorate, without a table: alone in the
 * ring, the registry is all there is. With other nodes in the ring their
 * agents may hold the cluster's table (this one restarted while cut off, and
 * is back; the quorum callback may come before the CPG members): wait for
 * it, and take the registry only if none comes. */
static void start_alone(struct pvclus_agent *a)
{
	if (a->have_ring && a->nring > 1) {
		guests_await_table(a);
		return;
	}
	a->have_state = true;
	agent_lead_check(a);
	start_desired(a);
}

void guests_on_nodes_left(struct pvclus_agent *a, const uint32_t *left, size_t nleft)
{
	for (size_t i = 0; i < nleft; i++) {
		struct pvclus_ha_event ev = { .type = PVCLUS_HA_EV_NODE_LEFT, .node = left[i] };
		apply_all(a, &ev);
	}
}

void guests_on_members(struct pvclus_agent *a)
{
	bool await = !a->have_state && !a->awaiting && a->nmembers > 1;
	if (a->nmembers > 1)
		a->seen_others = true;
	if (!a->have_state && !a->seen_others && a->nmembers == 1 && a->quorate && alone_ok(a)) {
		a->have_state = true; /* alone and quorate: the registry is all there is */
		agent_lead_check(a);
		start_desired(a);
	}
	alog_debug(a, "membership: state %d, await table %d", a->have_state, await);
	if (await) {
		a->awaiting = true;
		drop_held(a);
		agent_timer(a, TABLE_WAIT_MS, table_timeout, a, &a->await_timer);
	}
	agent_lead_check(a);
}

/* Whether a migration may start towards node: its agent is a member and
 * its node in the ring, not fenced (the same answer on every agent at the
 * same point of the message order). */
static bool migration_target_ok(struct pvclus_agent *a, uint32_t node)
{
	struct peer *p = agent_peer(a, node);
	return p && !p->fenced && agent_is_member(a, node) && agent_in_ring(a, node);
}

static void hold(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg)
{
	if (a->nheld == HELD_MAX) {
		alog_err(a, -ENOBUFS, "too many messages before the table: dropping one");
		return;
	}
	size_t len = pvha__cluster_msg__get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return;
	pvha__cluster_msg__pack(msg, buf);
	a->held[a->nheld++] = (struct held){ .from = from, .leader = a->leader, .at_ms = agent_now_ms(a), .len = len,
					     .data = buf };
}

void guests_on_quorum(struct pvclus_agent *a, bool quorate)
{
	struct pvclus_ha_event ev = {
		.type = quorate ? PVCLUS_HA_EV_QUORUM_REGAINED : PVCLUS_HA_EV_QUORUM_LOST,
		.node = a->local,
	};
	apply_all(a, &ev);
	if (quorate)
		a->quorate_ms = agent_now_ms(a);
	if (quorate && !a->have_state && !a->seen_others && a->nmembers == 1 &&
	    !a->awaiting && alone_ok(a))
		start_alone(a);
	if (!quorate) {
		/* The majority decides what happened meanwhile: take its table when
		 * this node is back. */
		a->have_state = false;
		agent_lead_check(a);
		/* Whatever the records say: no guest runs in a partition without quorum. */
		for (int i = 0; i < MAX_GUESTS; i++) {
			struct guest *g = &a->g[i];
			if (g->used && g->pid > 0) {
				alog_warn(a, "guest %s: quorum lost, killing its VMM", g->spec.name);
				g->stopping = true;
				kill(g->pid, SIGKILL);
			}
		}
	}
}

void guests_on_message(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg)
{
	if (msg->body_case == PVHA__CLUSTER_MSG__BODY_TABLE) {
		alog_debug(a, "table of %zu guests from node %u (%s)", msg->table->n_guests, from,
			    a->awaiting ? "taking it" : "ignored: this node has the state");
		if (!a->awaiting)
			return; /* a member that was there already has this state */
	} else if (a->awaiting) {
		/* A node fenced before it started waits for a table that only
		 * comes once it can reach the storage again: its unfence cannot
		 * wait in the queue. */
		if (msg->body_case == PVHA__CLUSTER_MSG__BODY_NODE_FENCED && msg->node_fenced->unfenced &&
		    msg->node_fenced->nodeid == a->local && !a->storage_ok) {
			alog_info(a, "this node's fence was lifted");
			agent_storage_ready(a);
		}
		hold(a, from, msg);
		return;
	}
	if (!agent_msg_allowed(a, from, msg))
		return; /* checked when applied: a held message against the table it waited for */
	switch (msg->body_case) {
	case PVHA__CLUSTER_MSG__BODY_GUEST_ADD:
		if (msg->guest_add->uuid.len == 16)
			guests_load(a, msg->guest_add->uuid.data, msg->guest_add->name);
		break;
	case PVHA__CLUSTER_MSG__BODY_GUEST_EVENT: {
		const Pvha__GuestEvent *e = msg->guest_event;
		struct guest *g = e->uuid.len == 16 ? guests_find(a, e->uuid.data) : NULL;
		if (!g && e->uuid.len == 16)
			g = guests_load(a, e->uuid.data, NULL);
		if (!g || e->type >= PVCLUS_HA_EV_COUNT)
			break;
		struct pvclus_ha_event ev = { .type = (enum pvclus_ha_event_type)e->type, .node = e->node,
					      .crashed = e->crashed, .err = e->err, .detail = e->detail };
		if (ev.type == PVCLUS_HA_EV_MIGRATE_START && !migration_target_ok(a, ev.node)) {
			/* It left (or was fenced) after the leader chose it, before
			 * this point of the message order: every agent drops the
			 * start here alike, and the guest runs on where it is. */
			if (agent_leads(a)) {
				char why[160];
				snprintf(why, sizeof(why), "migration to %s not started: it is no longer in the cluster",
					 agent_node_name(a, ev.node));
				alog_info(a, "guest %s: %s", g->spec.name, why);
				guest_event(a, g->spec.uuid, "migration-failed", why);
			}
			break;
		}
		apply(a, g, &ev);
		if (ev.type == PVCLUS_HA_EV_START_FAILED && ev.err == -EBUSY && ev.node != a->local &&
		    g->pid <= 0 && !g->start_job && a->st) {
			/* The owner lock may be a dead VMM's of this boot (its own
			 * release failed: the storage was out when it ended): a live
			 * boot's lock only this node can clear. Nothing of the guest
			 * runs here, so clearing it (fencing that exact client) is
			 * safe; a lock of another boot is left alone. */
			alog_debug(a, "guest %s: a start on node %u found its lock held: clearing ours, if it is",
				   g->spec.name, ev.node);
			release_lock(a, g, false, true, NULL);
		}
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_NODE_FENCED: {
		struct peer *p = agent_peer(a, msg->node_fenced->nodeid);
		if (p && msg->node_fenced->unfenced) {
			p->fenced = false;
			p->unfencing = false;
			p->no_blocklist = false;
			agent_update_leader(a);
			if (msg->node_fenced->nodeid == a->local) {
				alog_info(a, "this node's fence was lifted");
				agent_storage_ready(a);
				if (a->storage_ok)
					guests_refresh(a);
				if (a->have_state && a->nmembers > 1) {
					/* Fenced, it went on with a view of its own (the
					 * two halves of a two-node cluster both stay
					 * quorate): the cluster's table replaces it. */
					alog_info(a, "taking the cluster's guest table: this node's is older");
					a->have_state = false;
					guests_on_members(a);
					agent_send_hello(a);
				}
			}
			break;
		}
		if (p) {
			p->fenced = true;
			p->no_blocklist = msg->node_fenced->no_blocklist;
			agent_update_leader(a); /* its addr is not taken: fences use the nodelist's */
		}
		if (msg->node_fenced->nodeid == a->local) {
			/* The cluster fenced this node and recovers its guests
			 * elsewhere: none of them may run on here, whether its VMM
			 * met the fence at the storage yet or not (one that did not
			 * write meanwhile would write again once the fence is
			 * lifted). */
			for (int i = 0; i < MAX_GUESTS; i++) {
				struct guest *lg = &a->g[i];
				if (lg->used && lg->pid > 0) {
					alog_warn(a, "guest %s: this node was fenced: killing its VMM", lg->spec.name);
					lg->stopping = true;
					a->ops->vmm_kill(a->ctx, lg->pid, true);
				}
			}
		}
		struct pvclus_ha_event ev = { .type = PVCLUS_HA_EV_NODE_FENCED, .node = msg->node_fenced->nodeid };
		apply_all(a, &ev);
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_TABLE: {
		const Pvha__GuestTable *tb = msg->table;
		for (size_t i = 0; i < tb->n_guests; i++) {
			const Pvha__HaRecord *r = tb->guests[i];
			struct pvclus_ha_guest h;
			if (r->uuid.len != 16 || msg_to_record(r, &h) != 0)
				continue;
			struct guest *g = guests_find(a, r->uuid.data);
			if (!g)
				g = guests_load(a, r->uuid.data, NULL);
			if (g) {
				g->ha = h;
				heartbeat_watch(a, g); /* an adopted VMM's guest runs here */
			}
		}
		for (int i = 0; i < a->nnodes; i++) {
			a->peers[i].fenced = false;
			for (size_t j = 0; j < tb->n_fenced_nodes; j++)
				if (tb->fenced_nodes[j] == a->nodes[i].nodeid)
					a->peers[i].fenced = true;
		}
		agent_migrate_reload_modes(a);
		/* Then what was delivered after the point the table describes. */
		agent_timer_del(a, &a->await_timer);
		replay_held(a);
		break;
	}
	case PVHA__CLUSTER_MSG__BODY_NODE_MODE:
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_READY:
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_PROGRESS:
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST:
		agent_migrate_message(a, from, msg);
		break;
	default:
		break;
	}
}

/* ---- the control API ----------------------------------------------------- */

/* GUEST_CREATE after its checks: the image, the record, the disk and the
 * "created" event in RADOS (a storage job), then the guest is tabled,
 * announced, started when asked, and the request answered. */
struct create_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	void *token;
	bool start;
	struct pvstore_guest spec;
	char node[64];
	size_t image_len;
	uint8_t image[];
};

static int create_run(struct pvstore *st, struct pvclus_job *j)
{
	struct create_job *c = (struct create_job *)j;
	char u[PVSTORE_UUID_STR];
	int err = st ? pvstore_image_put(st, c->image, c->image_len, c->spec.image_sha256) : -ENOTCONN;
	if (!err)
		err = pvstore_guest_check(&c->spec);
	if (!err)
		err = pvstore_guest_create(st, &c->spec);
	if (!err && c->spec.disk_size)
		err = pvstore_disk_create(st, c->spec.uuid, c->spec.disk_size);
	if (err) {
		agent_job_fail(j, err);
		return err;
	}
	pvstore_uuid_format(c->spec.uuid, u);
	pvstore_event_append(st, c->spec.uuid, c->node, "created", u, NULL);
	return 0;
}

static void create_done(struct pvclus_job *j)
{
	struct create_job *c = (struct create_job *)j;
	struct pvclus_agent *a = c->a;
	struct guest *g = NULL;
	if (!j->err) {
		g = guests_add(a, &c->spec);
		guests_announce(a, &c->spec);
		if (c->start)
			guests_send_event(a, c->spec.uuid, PVCLUS_HA_EV_START_REQ, 0, false, 0, 0);
	}
	guests_reply(a, c->token, g, j->err, j->err ? j->errmsg : "");
	free(c);
}

static int create(struct pvclus_agent *a, const Pvha__GuestSpecIn *in, void *token, char *msg, size_t msglen)
{
	struct pvstore_guest spec = { 0 };
	int err;
	if (!in || !in->name) {
		snprintf(msg, msglen, "create needs a spec");
		return -EINVAL;
	}
	if (strlen(in->name) > PVSTORE_NAME_MAX || strlen(in->cmdline) > PVSTORE_CMDLINE_MAX) {
		snprintf(msg, msglen, "name or cmdline too long");
		return -EINVAL;
	}
	if (in->image.len < 4 || memcmp(in->image.data, "\x7f" "ELF", 4) != 0) {
		snprintf(msg, msglen, "the image is not an ELF file");
		return -EINVAL;
	}
	snprintf(spec.name, sizeof(spec.name), "%s", in->name);
	snprintf(spec.cmdline, sizeof(spec.cmdline), "%s", in->cmdline);
	if (in->address && strlen(in->address) > PVSTORE_ADDR_MAX) {
		snprintf(msg, msglen, "address '%.40s' is too long", in->address);
		return -EINVAL;
	}
	snprintf(spec.address, sizeof(spec.address), "%s", in->address ? in->address : "");
	if ((err = guests_address_free(a, &spec, msg, msglen)))
		return err;
	spec.mem_size = in->mem_size;
	spec.disk_size = in->disk_size;
	spec.priority = in->priority;
	spec.desired = PVSTORE_DESIRED_STOPPED;
	spec.heartbeat_timeout_s = in->heartbeat_timeout_s;
	spec.heartbeat_max_resets = in->heartbeat_max_resets;
	spec.heartbeat_window_s = in->heartbeat_window_s;
	if ((err = agent_sched_spec_from_api(a, &spec, true, in->rules, in->n_rules, true, in->depends_on,
					     in->n_depends_on, msg, msglen)))
		return err;
	if (!a->st) {
		snprintf(msg, msglen, "this node has no storage connection");
		return -ENOTCONN;
	}
	struct create_job *c = calloc(1, sizeof(*c) + in->image.len);
	if (!c) {
		snprintf(msg, msglen, "out of memory for an image of %zu bytes", in->image.len);
		return -ENOMEM;
	}
	c->j = (struct pvclus_job){ .run = create_run, .done = create_done, .what = "create" };
	c->a = a;
	c->token = token;
	c->start = in->start;
	c->spec = spec;
	snprintf(c->node, sizeof(c->node), "%s", a->cfg.node_name);
	c->image_len = in->image.len;
	memcpy(c->image, in->image.data, in->image.len);
	agent_submit(a, &c->j);
	return -EINPROGRESS;
}

int guests_api(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep, char *msg,
	       size_t msglen)
{
	Pvha__GuestInfo *infos = a->api.guests;
	Pvha__GuestInfo **ptrs = a->api.guest_ptrs;
	char (*uuids)[PVSTORE_UUID_STR] = a->api.uuids;
	struct guest *g = NULL;
	size_t n = 0;

	if (a->awaiting) {
		/* Its table is not the cluster's yet (it just joined or came
		 * back): whatever it would say could be wrong. */
		rep->error = -ENODATA; /* pvha asks again for a while (node/cli) */
		snprintf(msg, msglen, "node %s has not received the cluster's guest table yet: ask again in a "
			 "moment (or ask another node)", a->cfg.node_name);
		return 0;
	}
	if (req->op != PVHA__API_REQUEST__OP__GUEST_LIST && req->op != PVHA__API_REQUEST__OP__GUEST_CREATE) {
		g = req->guest && req->guest[0] ? guests_by_name(a, req->guest) : NULL;
		if (!g) {
			rep->error = -ENOENT;
			snprintf(msg, msglen, "no guest '%s'", req->guest ? req->guest : "");
			return 0;
		}
	}
	if (req->op != PVHA__API_REQUEST__OP__GUEST_LIST && req->op != PVHA__API_REQUEST__OP__GUEST_SHOW &&
	    !a->quorate) {
		rep->error = -EAGAIN;
		snprintf(msg, msglen, "this node's partition has no quorum: no change can be made here");
		return 0;
	}
	/* A list or a show still answers, from this node's own table: say that
	 * it is not the cluster's (a guest the majority runs may show here as
	 * waiting for a fence of the very node that runs it). */
	if ((req->op == PVHA__API_REQUEST__OP__GUEST_LIST || req->op == PVHA__API_REQUEST__OP__GUEST_SHOW) &&
	    (!a->quorate || agent_tiebreak_lost(a)))
		snprintf(msg, msglen, "%s: this is its own view, which may be out of date; ask a node of the "
			 "quorate partition", a->quorate ? "this node lost the two-node tie-break"
						       : "this node's partition has no quorum");
	switch (req->op) {
	case PVHA__API_REQUEST__OP__GUEST_CREATE:
		rep->error = create(a, req->spec, token, msg, msglen);
		return rep->error == -EINPROGRESS ? -EINPROGRESS : 0;
	case PVHA__API_REQUEST__OP__GUEST_LIST:
		for (int i = 0; i < MAX_GUESTS; i++) {
			if (!a->g[i].used)
				continue;
			guests_fill_info(a, &a->g[i], &infos[n], uuids[n]);
			ptrs[n] = &infos[n];
			n++;
		}
		rep->n_guests = n;
		rep->guests = ptrs;
		return 0;
	case PVHA__API_REQUEST__OP__GUEST_SHOW:
		break;
	case PVHA__API_REQUEST__OP__GUEST_START:
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_START_REQ, 0, false, 0, 0);
		break;
	case PVHA__API_REQUEST__OP__GUEST_STOP:
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STOP_REQ, 0, req->force, 0, 0);
		break;
	case PVHA__API_REQUEST__OP__GUEST_SET:
		rep->error = guests_set(a, g, req->set, token, msg, msglen);
		return rep->error == -EINPROGRESS ? -EINPROGRESS : 0;
	case PVHA__API_REQUEST__OP__GUEST_DELETE:
		if (g->ha.state != PVCLUS_HA_STOPPED && g->ha.state != PVCLUS_HA_ERROR) {
			rep->error = -EBUSY;
			snprintf(msg, msglen, "guest %s is %s: stop it first", g->spec.name,
				 pvclus_ha_state_str(g->ha.state));
			return 0;
		}
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_DELETE_REQ, 0, false, 0, 0);
		break;
	default:
		rep->error = -EINVAL;
		return 0;
	}
	guests_fill_info(a, g, &infos[0], uuids[0]);
	ptrs[0] = &infos[0];
	rep->n_guests = 1;
	rep->guests = ptrs;
	return 0;
}
