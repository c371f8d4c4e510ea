/*
 * Fake pvha-vmm processes and fake fence programs.
 *
 * A VMM (pvha-vmm --lock COOKIE --disk rados:...) as node/vmm/vmm_main.c and
 * docs/migration.md describe it:
 *   - vmm_boot_ms after the spawn it takes the guest's owner lock with its
 *     own storage client (-EBUSY: exit 8; fenced: exit 4; no answer: exit 7
 *     after the op timeout), reads its disk, then listens (STATUS answers
 *     "running") and runs;
 *   - it is a counter guest: every vmm_io_ms it writes the next value and
 *     flushes; a flush refused as fenced stops it (exit 4); a flush that
 *     waits on the storage just waits (hv-core no longer counts it as guest
 *     run time); `set runaway MS` models the older VMM that did and stopped
 *     the guest as a runaway after MS (exit 3: campaign failure 5);
 *   - SIGTERM / STOP: it releases the lock (a clean end) and exits 5;
 *     SIGKILL, a crash, a power-off: it dies holding the lock;
 *   - migrations: the target (--incoming) listens at once and gives up after
 *     incoming_timeout_ms without a source (exit 9); the source pre-copies,
 *     stops the guest, flushes, releases the lock, the target takes it
 *     (retrying for target_lock_ms); the source exits 10 on STOP or after
 *     migrated_linger_ms. Failures follow the table in docs/migration.md.
 * Checked at every write that lands: no other VMM of the guest could write
 * at the same time (alive, believes it owns the lock, not fenced), and the
 * disk's counter goes up by one (no acknowledged write lost or overwritten).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "world.h"

enum { EXIT_GUEST = 0, EXIT_FAULT = 3, EXIT_FENCED = 4, EXIT_STOPPED = 5, EXIT_HOST = 7, EXIT_LOCKED = 8,
       EXIT_INCOMING = 9, EXIT_MIGRATED = 10, EXIT_STORAGE = 11 };

struct vmm *sim_vmm_by_pid(struct sim *w, pid_t pid)
{
	for (size_t i = 0; i < w->nvmms; i++)
		if (w->vmms[i].used && w->vmms[i].pid == pid)
			return &w->vmms[i];
	return NULL;
}

static struct vmm *vmm_at(struct sim *w, int idx)
{
	return idx >= 0 && (size_t)idx < w->nvmms ? &w->vmms[idx] : NULL;
}

static int vmm_idx(struct sim *w, const struct vmm *v)
{
	return (int)(v - w->vmms);
}

/* The live VMM of this guest on node (the newest), or NULL. */
static struct vmm *vmm_on(struct sim *w, int node, const uint8_t uuid[16])
{
	struct vmm *found = NULL;
	for (size_t i = 0; i < w->nvmms; i++) {
		struct vmm *v = &w->vmms[i];
		if (v->used && v->node == node && v->state != VMM_DEAD && !memcmp(v->uuid, uuid, 16))
			found = v;
	}
	return found;
}

struct vmm *sim_vmm_running(struct sim *w, int gi)
{
	for (size_t i = 0; i < w->nvmms; i++) {
		struct vmm *v = &w->vmms[i];
		if (v->used && v->gi == gi && v->state == VMM_RUNNING && v->owns)
			return v;
	}
	return NULL;
}

struct vmm *sim_vmm_incoming(struct sim *w, int gi)
{
	for (size_t i = 0; i < w->nvmms; i++)
		if (w->vmms[i].used && w->vmms[i].gi == gi && w->vmms[i].state == VMM_INCOMING)
			return &w->vmms[i];
	return NULL;
}

static const char *gname(struct sim *w, const struct vmm *v)
{
	return w->store.guests[v->gi].spec.name;
}

/* Schedules fn for VMM v unless its state changed meanwhile (v->gen). */
static struct sim_event *vmm_later(struct sim *w, struct vmm *v, uint64_t ms, sim_fn fn)
{
	struct sim_event *e = sim_at(w, w->now + ms, fn);
	e->u = (uint64_t)vmm_idx(w, v);
	e->v = v->gen;
	return e;
}

static struct vmm *vmm_of(struct sim *w, struct sim_event *e)
{
	struct vmm *v = vmm_at(w, (int)e->u);
	return v && v->gen == e->v && v->state != VMM_DEAD ? v : NULL;
}

static void migration_peer_gone(struct sim *w, struct vmm *v);

/* The process ends now with wait status ws; its parent agent hears it. */
static void vmm_die(struct sim *w, struct vmm *v, int ws, const char *why)
{
	if (v->state == VMM_DEAD)
		return;
	v->state = VMM_DEAD;
	v->owns = false;
	v->gen++;
	if (WIFEXITED(ws))
		sim_log(w, "# %s: vmm %s (pid %d) exits %d: %s", w->nodes[v->node].name, gname(w, v), (int)v->pid,
			WEXITSTATUS(ws), why);
	else
		sim_log(w, "# %s: vmm %s (pid %d) killed by signal %d: %s", w->nodes[v->node].name, gname(w, v),
			(int)v->pid, WTERMSIG(ws), why);
	migration_peer_gone(w, v);
	sim_child_exit(w, v->node, v->pid, ws);
	v->parent_gen = 0;
}

static void exit_ev(struct sim *w, struct sim_event *e)
{
	struct vmm *v = vmm_of(w, e);
	if (v)
		vmm_die(w, v, (int)e->id << 8, "as it said");
}

/* Exits with code after ms (a clean end releases the lock first). */
static void vmm_exit_later(struct sim *w, struct vmm *v, uint64_t ms, int code, bool release, const char *why)
{
	if (release && v->owns) {
		pvstore_lock_release(v->conn, v->uuid, v->cookie); /* a fenced one cannot: the lock stays */
		v->owns = false;
	}
	v->owns = false;
	v->stopping = true;
	sim_log(w, "# %s: vmm %s (pid %d) ends: %s", w->nodes[v->node].name, gname(w, v), (int)v->pid, why);
	v->gen++;
	struct sim_event *e = vmm_later(w, v, ms, exit_ev);
	e->id = (uint64_t)code;
}

void sim_child_exit(struct sim *w, int node, pid_t pid, int ws);

/* ---- disk I/O ----------------------------------------------------------------------- */

/* Whether VMM u could write now (alive, owns, not paused, not fenced). */
static bool can_write(struct sim *w, const struct vmm *u)
{
	return u->used && u->state == VMM_RUNNING && u->owns && !u->paused && !u->stopping &&
	       !w->store.down && !w->nodes[u->node].storage_cut && !fs_covered(w, u->conn->addr, true);
}

bool sim_node_can_write(struct sim *w, int node)
{
	for (size_t i = 0; i < w->nvmms; i++)
		if (w->vmms[i].node == node && can_write(w, &w->vmms[i]))
			return true;
	return false;
}

static void io_tick(struct sim *w, struct sim_event *e);

static void start_io(struct sim *w, struct vmm *v)
{
	struct sim_event *e = sim_at(w, w->now + w->p.vmm_io_ms, io_tick);
	e->u = (uint64_t)vmm_idx(w, v);
	e->v = v->gen;
}

/* One write + flush of the counter. Returns false when the VMM ended. */
static bool write_once(struct sim *w, struct vmm *v)
{
	struct fs_guest *g = &w->store.guests[v->gi];
	int err = fs_check(v->conn, true);
	if (err == -ESHUTDOWN) {
		vmm_exit_later(w, v, 0, EXIT_FENCED, false, "disk flush refused, this host is blocklisted");
		return false;
	}
	if (err) {
		if (!v->blocked_since)
			v->blocked_since = w->now;
		if (w->p.runaway_ms && w->now - v->blocked_since >= w->p.runaway_ms) {
			vmm_exit_later(w, v, 0, EXIT_FAULT, true, "runaway: blocked in a disk flush counted as guest time");
			return false;
		}
		return true;
	}
	v->blocked_since = 0;
	if (g->last_write_ms && w->now - g->last_write_ms > 2 * w->p.vmm_io_ms && w->noutages < SIM_MAX_OUTAGES)
		w->outages[w->noutages++] = w->now - g->last_write_ms;
	for (size_t i = 0; i < w->nvmms; i++) {
		struct vmm *u = &w->vmms[i];
		if (u != v && u->gi == v->gi && can_write(w, u))
			sim_violation(w, &w->bad.two_writers, "two writers: guest %s written by pid %d on %s while pid %d on %s can write too",
				      gname(w, v), (int)v->pid, w->nodes[v->node].name, (int)u->pid,
				      w->nodes[u->node].name);
	}
	if (g->value + 1 != v->next_value)
		sim_violation(w, &w->bad.lost_write, "lost write: guest %s: pid %d on %s writes %llu over %llu",
			      gname(w, v), (int)v->pid, w->nodes[v->node].name, (unsigned long long)v->next_value,
			      (unsigned long long)g->value);
	g->value = v->next_value++;
	g->writes++;
	g->last_write_ms = w->now;
	return true;
}

static void io_tick(struct sim *w, struct sim_event *e)
{
	struct vmm *v = vmm_of(w, e);
	if (!v || v->state != VMM_RUNNING)
		return;
	if (v->owns && !v->paused && !v->stopping && w->store.guests[v->gi].has_disk && !write_once(w, v))
		return;
	start_io(w, v);
}

/* The VMM owns the guest now: read the counter, run, write. */
static int take_over(struct sim *w, struct vmm *v)
{
	int err = fs_check(v->conn, false);
	if (err)
		return err;
	v->next_value = w->store.guests[v->gi].value + 1;
	v->state = VMM_RUNNING;
	v->owns = true;
	v->blocked_since = 0;
	v->gen++;
	start_io(w, v);
	return 0;
}

/* ---- heartbeats ---------------------------------------------------------------------- */

#define HB_BOOT_MS 300   /* a fresh guest's first heartbeat, after its VMM runs it */
#define HB_PERIOD_MS 100

/* A fresh start: the guest boots, then heartbeats (for hb_hang's time only). */
static void hb_fresh(struct sim *w, struct vmm *v)
{
	uint64_t hang = w->hb_hang[v->gi];
	v->hb_first_ms = hang == 1 ? 0 : w->now + HB_BOOT_MS;
	v->hb_stop_ms = hang > 1 ? w->now + HB_BOOT_MS + (hang - 1) : UINT64_MAX;
}

void vmm_heartbeat_stop(struct sim *w, struct vmm *v)
{
	v->hb_stop_ms = w->now;
}

/* What STATUS says of the heartbeat: the last one sent by now. */
static void hb_status(struct sim *w, const struct vmm *v, struct pvclus_vmm_status *st)
{
	uint64_t last = w->now < v->hb_stop_ms ? w->now : v->hb_stop_ms;
	if (!v->hb_first_ms || last < v->hb_first_ms)
		return; /* none yet */
	st->heartbeat_seq = (last - v->hb_first_ms) / HB_PERIOD_MS + 1;
	st->heartbeat_age_ms = w->now - (v->hb_first_ms + (st->heartbeat_seq - 1) * HB_PERIOD_MS);
}

/* ---- start --------------------------------------------------------------------------- */

static void boot_ev(struct sim *w, struct sim_event *e)
{
	struct vmm *v = vmm_of(w, e);
	if (!v || v->state != VMM_BOOTING)
		return;
	/* every guest, diskless ones too, holds its owner lock */
	int err = pvstore_lock_acquire(v->conn, v->uuid, v->cookie);
	if (err == -EBUSY) {
		vmm_exit_later(w, v, 0, EXIT_LOCKED, false, "the owner lock is held by someone else");
		return;
	}
	if (err == -ESHUTDOWN) {
		vmm_exit_later(w, v, 0, EXIT_FENCED, false, "taking the owner lock: this host is blocklisted");
		return;
	}
	if (!err)
		err = take_over(w, v);
	if (!err)
		hb_fresh(w, v);
	if (err == -ETIMEDOUT) {
		vmm_exit_later(w, v, w->p.osd_timeout_ms, EXIT_STORAGE, false, "the storage did not answer in time");
		return;
	}
	if (err)
		vmm_exit_later(w, v, 0, EXIT_HOST, false, "the storage refused");
}

static void incoming_timeout(struct sim *w, struct sim_event *e)
{
	struct vmm *v = vmm_of(w, e);
	if (v && v->state == VMM_INCOMING && v->mig_source < 0)
		vmm_exit_later(w, v, 0, EXIT_INCOMING, false, "no source connected within 60 s");
}

void vmm_spawn_fake(struct sim *w, int node, const struct pvclus_vmm_start *s, pid_t pid, int gi)
{
	sim_grow(&w->vmms, w->nvmms, &w->capvmms, sizeof(*w->vmms));
	struct vmm *v = &w->vmms[w->nvmms++];
	memset(v, 0, sizeof(*v));
	v->used = true;
	v->pid = pid;
	v->node = node;
	v->gi = gi;
	memcpy(v->uuid, s->uuid, 16);
	snprintf(v->cookie, sizeof(v->cookie), "%s", s->lock_cookie ? s->lock_cookie : "");
	v->conn = fs_connect(w, node, false);
	v->mig_target = -1;
	v->mig_source = -1;
	v->spawned_ms = w->now;
	bool incoming = s->incoming && s->incoming[0];
	sim_log(w, "# %s: vmm %s (pid %d) spawned%s", w->nodes[node].name, gname(w, v), (int)pid,
		incoming ? " to receive a migration" : "");
	if (incoming) {
		v->state = VMM_INCOMING;
		v->port = 41000 + (uint32_t)(w->nvmms % 20000);
		vmm_later(w, v, w->p.incoming_timeout_ms, incoming_timeout);
	} else {
		v->state = VMM_BOOTING;
		vmm_later(w, v, w->p.vmm_boot_ms, boot_ev);
	}
	/* it connects as the guest's own cephx user (pvha-vmm --ceph-keyring):
	 * without that user's key the cluster lets it do nothing */
	if (!fs_key_ok(w, s->uuid, s->ceph_key))
		vmm_exit_later(w, v, 0, incoming ? EXIT_INCOMING : EXIT_HOST, false,
			       "cephx: not the key of the guest's own user");
}

/* ---- signals -------------------------------------------------------------------------- */

static void kill_ev(struct sim *w, struct sim_event *e)
{
	struct vmm *v = vmm_at(w, (int)e->u);
	if (v && v->state != VMM_DEAD)
		vmm_die(w, v, (int)e->id, e->id == SIGKILL ? "SIGKILL" : "crashed");
}

void vmm_kill_fake(struct sim *w, struct vmm *v, bool force)
{
	if (v->state == VMM_DEAD)
		return;
	if (force) {
		v->gen++;
		struct sim_event *e = sim_at(w, w->now + 1, kill_ev);
		e->u = (uint64_t)vmm_idx(w, v);
		e->id = SIGKILL;
		return;
	}
	if (v->stopping)
		return;
	if (v->state == VMM_MIGRATED)
		vmm_exit_later(w, v, w->p.vmm_stop_ms, EXIT_MIGRATED, false, "SIGTERM after the hand-over");
	else
		vmm_exit_later(w, v, w->p.vmm_stop_ms, EXIT_STOPPED, true, "SIGTERM");
}

void vmm_crash(struct sim *w, struct vmm *v)
{
	if (v->state == VMM_DEAD)
		return;
	v->gen++;
	struct sim_event *e = sim_at(w, w->now, kill_ev);
	e->u = (uint64_t)vmm_idx(w, v);
	e->id = SIGSEGV;
}

void vmm_power_off_node(struct sim *w, int node)
{
	for (size_t i = 0; i < w->nvmms; i++) {
		struct vmm *v = &w->vmms[i];
		if (v->used && v->node == node && v->state != VMM_DEAD) {
			v->parent_gen = 0; /* nobody hears it */
			vmm_die(w, v, SIGKILL, "power off");
		}
	}
	for (size_t i = 0; i < sizeof(w->fences) / sizeof(w->fences[0]); i++)
		if (w->fences[i].used && w->fences[i].node == node)
			w->fences[i].used = false;
}

/* ---- STATUS ------------------------------------------------------------------------------ */

int vmm_status_fake(struct sim *w, int node, const uint8_t uuid[16], struct pvclus_vmm_status *st)
{
	struct vmm *v = vmm_on(w, node, uuid);
	if (!v || v->state == VMM_BOOTING || v->stopping)
		return -ECONNREFUSED;
	memset(st, 0, sizeof(*st));
	static const char *const names[] = { "booting", "running", "incoming", "migrated", "stopped" };
	snprintf(st->state, sizeof(st->state), "%s", names[v->state]);
	if (v->state == VMM_RUNNING && v->paused)
		snprintf(st->state, sizeof(st->state), "paused");
	st->incoming_port = v->state == VMM_INCOMING ? v->port : 0;
	snprintf(st->migration_phase, sizeof(st->migration_phase), "%s", v->mig_phase);
	st->migration_released = v->mig_released;
	st->migration_round = v->mig_round;
	st->migration_total_ms = v->mig_phase[0] ? w->now - v->mig_start_ms : 0;
	st->migration_downtime_us = v->mig_released ? w->p.mig_stopcopy_ms * 1000ull : 0;
	snprintf(st->migration_reason, sizeof(st->migration_reason), "%s", v->mig_reason);
	if (v->state == VMM_RUNNING)
		hb_status(w, v, st);
	return 0;
}

/* ---- migrations -------------------------------------------------------------------------- */

static void mig_fail(struct sim *w, struct vmm *src, const char *why)
{
	snprintf(src->mig_phase, sizeof(src->mig_phase), "failed");
	snprintf(src->mig_reason, sizeof(src->mig_reason), "%s", why);
	src->paused = false;
	struct vmm *t = vmm_at(w, src->mig_target);
	src->mig_target = -1;
	if (t && t->state == VMM_INCOMING) {
		t->mig_source = -1;
		vmm_exit_later(w, t, 1, EXIT_INCOMING, false, why);
	}
}

static void target_lock(struct sim *w, struct sim_event *e);

static void mig_step(struct sim *w, struct sim_event *e)
{
	struct vmm *s = vmm_of(w, e);
	if (!s || s->state != VMM_RUNNING || strcmp(s->mig_phase, e->id ? "stopcopy" : "precopy"))
		return;
	struct vmm *t = vmm_at(w, s->mig_target);
	if (!t || t->state != VMM_INCOMING || !sim_linked(w, s->node, t->node)) {
		mig_fail(w, s, "the link to the target broke");
		return;
	}
	if (!e->id) {
		/* pre-copy done: stop the guest, flush its disk, send the rest */
		s->paused = true;
		s->mig_round = 3;
		snprintf(s->mig_phase, sizeof(s->mig_phase), "stopcopy");
		struct sim_event *n = vmm_later(w, s, w->p.mig_stopcopy_ms, mig_step);
		n->id = 1;
		return;
	}
	/* READY came: flush, then release the lock and hand over */
	int err = fs_check(s->conn, true);
	if (!err)
		err = pvstore_lock_release(s->conn, s->uuid, s->cookie);
	if (err) {
		mig_fail(w, s, err == -ESHUTDOWN ? "the disk flush was refused: fenced" : "releasing the owner lock failed");
		if (err == -ESHUTDOWN)
			vmm_exit_later(w, s, 0, EXIT_FENCED, false, "disk flush refused, this host is blocklisted");
		return;
	}
	s->owns = false;
	s->mig_released = true;
	s->state = VMM_MIGRATED;
	s->gen++;
	snprintf(s->mig_phase, sizeof(s->mig_phase), "handover");
	struct sim_event *n = vmm_later(w, s, w->p.migrated_linger_ms, exit_ev);
	n->id = EXIT_MIGRATED;
	/* the target takes the lock, retrying */
	struct sim_event *l = vmm_later(w, t, 1, target_lock);
	l->id = w->now;
}

static void target_lock(struct sim *w, struct sim_event *e)
{
	struct vmm *t = vmm_of(w, e);
	if (!t || t->state != VMM_INCOMING)
		return;
	struct vmm *s = vmm_at(w, t->mig_source);
	int err = pvstore_lock_acquire(t->conn, t->uuid, t->cookie);
	if (!err)
		err = take_over(w, t);
	if (!err) {
		sim_log(w, "# %s: vmm %s (pid %d) runs the migrated guest", w->nodes[t->node].name, gname(w, t),
			(int)t->pid);
		if (s) { /* the guest's state, its heartbeats' too, came with it */
			t->hb_first_ms = s->hb_first_ms;
			t->hb_stop_ms = s->hb_stop_ms;
		}
		if (s && s->state == VMM_MIGRATED) {
			bool heard = sim_linked(w, s->node, t->node);
			snprintf(s->mig_phase, sizeof(s->mig_phase), "%s", heard ? "done" : "failed");
			if (!heard)
				snprintf(s->mig_reason, sizeof(s->mig_reason), "no word from the target after the hand-over");
		}
		t->mig_source = -1;
		return;
	}
	if (w->now - e->id < w->p.target_lock_ms) {
		struct sim_event *n = vmm_later(w, t, 100, target_lock);
		n->id = e->id;
		return;
	}
	if (s && s->state == VMM_MIGRATED) {
		snprintf(s->mig_phase, sizeof(s->mig_phase), "failed");
		snprintf(s->mig_reason, sizeof(s->mig_reason), "the target could not take the owner lock");
	}
	vmm_exit_later(w, t, 0, EXIT_INCOMING, false, "could not take the owner lock after the hand-over");
}

/* A VMM died: its migration peer learns it (the stream broke). */
static void migration_peer_gone(struct sim *w, struct vmm *v)
{
	struct vmm *t = vmm_at(w, v->mig_target);
	if (t && t->mig_source == vmm_idx(w, v) && t->state == VMM_INCOMING && !v->mig_released) {
		/* before RELEASED: the target tries the lock (the source may
		 * have let it go), else gives up */
		if (!strcmp(v->mig_phase, "stopcopy")) {
			struct sim_event *l = vmm_later(w, t, 1, target_lock);
			l->id = w->now;
		} else {
			t->mig_source = -1;
			vmm_exit_later(w, t, 1, EXIT_INCOMING, false, "the source went away before the hand-over");
		}
	}
	struct vmm *s = vmm_at(w, v->mig_source);
	if (s && s->mig_target == vmm_idx(w, v) && s->state == VMM_RUNNING && !s->mig_released)
		mig_fail(w, s, "the target went away");
}

static void mig_connect(struct sim *w, struct sim_event *e)
{
	struct vmm *s = vmm_of(w, e);
	if (!s || s->state != VMM_RUNNING || strcmp(s->mig_phase, "precopy"))
		return;
	struct vmm *t = vmm_at(w, s->mig_target);
	if (!t || t->state != VMM_INCOMING || t->mig_source >= 0 || !sim_linked(w, s->node, t->node)) {
		mig_fail(w, s, "connecting to the target: Connection refused");
		return;
	}
	t->mig_source = vmm_idx(w, s);
	vmm_later(w, s, w->p.mig_precopy_ms, mig_step);
}

int vmm_migrate_fake(struct sim *w, int node, const uint8_t uuid[16], const char *addr, uint32_t port, char *why,
		     size_t whylen)
{
	struct vmm *s = vmm_on(w, node, uuid);
	if (!s || s->state != VMM_RUNNING) {
		snprintf(why, whylen, "no running guest here");
		return -ECONNREFUSED;
	}
	if (!strcmp(s->mig_phase, "precopy") || !strcmp(s->mig_phase, "stopcopy")) {
		snprintf(why, whylen, "a migration is in progress");
		return -EBUSY;
	}
	s->mig_target = -1;
	for (size_t i = 0; i < w->nvmms; i++) {
		struct vmm *t = &w->vmms[i];
		if (t->used && t->state == VMM_INCOMING && t->port == port && !strcmp(w->nodes[t->node].ip, addr))
			s->mig_target = (int)i;
	}
	snprintf(s->mig_phase, sizeof(s->mig_phase), "precopy");
	s->mig_reason[0] = '\0';
	s->mig_released = false;
	s->mig_round = 0;
	s->mig_start_ms = w->now;
	vmm_later(w, s, 1, mig_connect);
	return 0;
}

int vmm_cancel_fake(struct sim *w, int node, const uint8_t uuid[16], char *why, size_t whylen)
{
	struct vmm *s = vmm_on(w, node, uuid);
	if (!s || (strcmp(s->mig_phase, "precopy") && strcmp(s->mig_phase, "stopcopy") && !s->mig_released)) {
		snprintf(why, whylen, "no migration");
		return -ESRCH;
	}
	if (s->mig_released) {
		snprintf(why, whylen, "the owner lock was let go: the hand-over goes on");
		return -EALREADY;
	}
	s->gen++; /* the pending step is void */
	mig_fail(w, s, "cancelled");
	start_io(w, s);
	return 0;
}

int vmm_stop_fake(struct sim *w, int node, const uint8_t uuid[16])
{
	struct vmm *v = vmm_on(w, node, uuid);
	if (!v || v->state == VMM_BOOTING)
		return -ECONNREFUSED;
	vmm_kill_fake(w, v, false);
	return 0;
}

static void crash_loop_ev(struct sim *w, struct sim_event *e)
{
	struct vmm *v = sim_vmm_running(w, (int)e->u);
	if (v) {
		sim_log(w, "# crash-loop: vmm %s (pid %d) crashes", gname(w, v), (int)v->pid);
		vmm_crash(w, v);
	}
}

void sim_crash_loop(struct sim *w, int gi, unsigned period, unsigned count)
{
	for (unsigned k = 0; k < count; k++) {
		struct sim_event *e = sim_at(w, w->now + (uint64_t)k * period, crash_loop_ev);
		e->u = (uint64_t)gi;
	}
}

/* ---- fence programs ------------------------------------------------------------------------ */

static struct sim_fence *fence_by_pid(struct sim *w, pid_t pid)
{
	for (size_t i = 0; i < sizeof(w->fences) / sizeof(w->fences[0]); i++)
		if (w->fences[i].used && w->fences[i].pid == pid)
			return &w->fences[i];
	return NULL;
}

static void fence_end(struct sim *w, struct sim_fence *f, int ws)
{
	sim_child_exit(w, f->node, f->pid, ws);
	f->used = false;
}

static void fence_ev(struct sim *w, struct sim_event *e)
{
	struct sim_fence *f = fence_by_pid(w, (pid_t)e->u);
	if (!f)
		return;
	if (w->fence_mode == 1) {
		sim_log(w, "# fence_sim %s: the fence device refused", w->nodes[f->target].name);
		fence_end(w, f, 1 << 8);
		return;
	}
	sim_log(w, "# fence_sim: %s powered off", w->nodes[f->target].name);
	sim_power_off(w, f->target);
	fence_end(w, f, 0);
}

int fence_spawn_fake(struct sim *w, int node, const char *target, pid_t *pid)
{
	int t = sim_node_by_name(w, target);
	if (t < 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(w->fences) / sizeof(w->fences[0]); i++) {
		struct sim_fence *f = &w->fences[i];
		if (f->used)
			continue;
		*f = (struct sim_fence){ .used = true, .pid = w->next_pid++, .node = node, .target = t,
					 .gen = w->nodes[node].gen };
		*pid = f->pid;
		if (w->fence_mode != 2) {
			struct sim_event *e = sim_at(w, w->now + w->p.fence_ms, fence_ev);
			e->u = (uint64_t)f->pid;
		}
		return 0;
	}
	return -EAGAIN;
}

static void fence_kill_ev(struct sim *w, struct sim_event *e)
{
	struct sim_fence *f = fence_by_pid(w, (pid_t)e->u);
	if (f)
		fence_end(w, f, SIGKILL);
}

void fence_kill_fake(struct sim *w, pid_t pid)
{
	struct sim_event *e = sim_at(w, w->now + 1, fence_kill_ev);
	e->u = (uint64_t)pid;
}

/* ---- exits to the agents ------------------------------------------------------------------------ */

static void child_ev(struct sim *w, struct sim_event *e)
{
	pvclus_agent_child_exited(ctx_of(w, e->node)->agent, (pid_t)e->u, (int)e->v);
}

void sim_child_exit(struct sim *w, int node, pid_t pid, int ws)
{
	struct agent_ctx *c = ctx_of(w, node);
	struct vmm *v = sim_vmm_by_pid(w, pid);
	struct sim_fence *f = fence_by_pid(w, pid);
	uint32_t parent = v ? v->parent_gen : f ? f->gen : 0;
	/* only the agent that spawned it reaps it: a later one watches it by
	 * polling (adopted), and an exit while no agent runs goes unheard */
	if (!c || c->gen != parent)
		return;
	struct sim_event *e = sim_input(w, node, w->now + 1, child_ev);
	e->u = (uint64_t)pid;
	e->v = (uint64_t)(unsigned)ws;
}

void vmm_fini(struct sim *w)
{
	for (size_t i = 0; i < w->nvmms; i++)
		if (w->vmms[i].used)
			fs_disconnect(w->vmms[i].conn);
	free(w->vmms);
}
