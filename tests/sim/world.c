/*
 * The simulated world: virtual time (one queue ordered by time, then by the
 * order events were scheduled), the nodes, the fake Corosync and the agents'
 * ops. See sim.h and docs/simulator.md.
 *
 * Fake Corosync:
 *   - the totem ring of a node is the set of powered nodes with Corosync up
 *     that reach it (same partition label); a change is noticed after the
 *     detection delay (2.1 x token for a loss, 1.4 x token for a merge,
 *     FACTS.md) by a re-evaluation of the whole topology: a fault shorter
 *     than that is not seen;
 *   - CPG members are the nodes of the ring whose agent process exists
 *     (frozen ones too); an agent's end is seen after agent_leave_ms;
 *   - messages are delivered in one total order per ring, to every member,
 *     cpg_ms after the send and never within it; at a configuration change
 *     the old ring's undelivered messages go first, to the members that stay
 *     with their sender (virtual synchrony), then ring, members and quorum;
 *   - votequorum: quorate when the ring holds more than half the configured
 *     nodes; two_node: one node is enough once both were seen since boot.
 * Agent inputs go through the node's inbox: an agent inside a blocking
 * storage call (busy_until) or frozen takes them later, in order.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sim.h"
#include "world.h"

void sim_params_default(struct sim_params *p)
{
	*p = (struct sim_params){
		.token_ms = 500,
		.cpg_ms = 1,
		.agent_leave_ms = 5,
		.boot_ms = 3000,
		.agent_boot_ms = 200,
		.agent_restart_ms = 1000,
		.store_ms = 1,
		.osd_timeout_ms = 10000,
		.mon_timeout_ms = 10000,
		.osd_map_lag_ms = 7,
		.vmm_boot_ms = 100,
		.vmm_io_ms = 50,
		.vmm_stop_ms = 20,
		.runaway_ms = 0, /* hv-core c3f0dd0: time blocked on the disk is not guest time */
		.mig_precopy_ms = 300,
		.mig_stopcopy_ms = 20,
		.incoming_timeout_ms = 60000,
		.target_lock_ms = 5000,
		.migrated_linger_ms = 30000,
		.fence_ms = 500,
		.fence_timeout_s = 30,
		.fence_power = false,
		.two_node = false,
	};
}

/* ---- PRNG (splitmix64) ------------------------------------------------------ */

uint64_t sim_rand(struct sim *w)
{
	uint64_t z = (w->rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- output ----------------------------------------------------------------- */

static void vlog_line(struct sim *w, const char *prefix, const char *fmt, va_list ap)
{
	if (!w->out)
		return;
	fprintf(w->out, "%8llu %s", (unsigned long long)w->now, prefix);
	vfprintf(w->out, fmt, ap);
	fputc('\n', w->out);
}

void sim_log(struct sim *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog_line(w, "", fmt, ap);
	va_end(ap);
}

void sim_violation(struct sim *w, unsigned *counter, const char *fmt, ...)
{
	va_list ap;
	/* the first few of each kind tell the story; the count says the rest */
	if (++*counter > 20)
		return;
	va_start(ap, fmt);
	vlog_line(w, "!! ", fmt, ap);
	va_end(ap);
}

void sim_grow(void *arr, size_t n, size_t *cap, size_t size)
{
	void **p = arr;
	if (n < *cap)
		return;
	size_t c = *cap ? 2 * *cap : 16;
	void *np = realloc(*p, c * size);
	if (!np)
		abort();
	*p = np;
	*cap = c;
}

/* ---- the queue (a binary heap on (time, seq)) -------------------------------- */

static bool before(const struct sim_event *a, const struct sim_event *b)
{
	return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

static void heap_push(struct sim *w, struct sim_event *e)
{
	sim_grow(&w->heap, w->nheap, &w->capheap, sizeof(*w->heap));
	size_t i = w->nheap++;
	while (i > 0 && before(e, w->heap[(i - 1) / 2])) {
		w->heap[i] = w->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->heap[i] = e;
}

static struct sim_event *heap_pop(struct sim *w)
{
	struct sim_event *top = w->heap[0], *last = w->heap[--w->nheap];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= w->nheap)
			break;
		if (c + 1 < w->nheap && before(w->heap[c + 1], w->heap[c]))
			c++;
		if (!before(w->heap[c], last))
			break;
		w->heap[i] = w->heap[c];
		i = c;
	}
	if (w->nheap)
		w->heap[i] = last;
	return top;
}

struct sim_event *sim_at(struct sim *w, uint64_t at, sim_fn fn)
{
	struct sim_event *e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	e->time = at < w->now ? w->now : at;
	e->seq = ++w->seq;
	e->fn = fn;
	e->node = -1;
	heap_push(w, e);
	return e;
}

static void event_free(struct sim_event *e)
{
	free(e->p);
	free(e);
}

/* ---- agents: contexts, inboxes ------------------------------------------------ */

struct agent_ctx *ctx_of(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	return n->agent_up ? n->cur : NULL;
}

static void pump(struct sim *w, int node);
static void job_done_input(struct sim *w, struct sim_event *e);

static void pump_event(struct sim *w, struct sim_event *e)
{
	w->nodes[e->node].pump_armed = false;
	pump(w, e->node);
}

static void run_defers(struct agent_ctx *c)
{
	while (c->ndefer) {
		struct defer d = c->defer[0];
		memmove(c->defer, c->defer + 1, (c->ndefer - 1) * sizeof(c->defer[0]));
		c->ndefer--;
		d.fn(d.arg);
	}
}

/* Hands the inbox to the agent while it can take it. */
static void pump(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	while (n->inbox) {
		struct agent_ctx *c = ctx_of(w, node);
		if (!c) {
			/* no agent: inputs for a dead one are dropped, but its
			 * jobs' done still runs (on the dead agent) to free them */
			while (n->inbox) {
				struct sim_event *e = n->inbox;
				n->inbox = e->next;
				if (e->fn == job_done_input)
					job_done_input(w, e);
				event_free(e);
			}
			n->inbox_tail = NULL;
			return;
		}
		if (n->frozen)
			return;
		if (n->busy_until > w->now) {
			if (!n->pump_armed) {
				struct sim_event *p = sim_at(w, n->busy_until, pump_event);
				p->node = node;
				n->pump_armed = true;
			}
			return;
		}
		struct sim_event *e = n->inbox;
		n->inbox = e->next;
		if (!n->inbox)
			n->inbox_tail = NULL;
		if (e->fn == job_done_input || (e->gen == c->gen && !e->cancelled)) {
			e->fn(w, e);
			if (ctx_of(w, node) == c)
				run_defers(c);
		}
		event_free(e);
	}
}

/* An agent input for node's current agent at time at. */
struct sim_event *sim_input(struct sim *w, int node, uint64_t at, sim_fn fn)
{
	struct agent_ctx *c = ctx_of(w, node);
	struct sim_event *e = sim_at(w, at, fn);
	e->node = node;
	e->agent = true;
	e->gen = c ? c->gen : 0;
	return e;
}

static void dispatch(struct sim *w, struct sim_event *e)
{
	if (e->cancelled) {
		event_free(e);
		return;
	}
	if (!e->agent) {
		e->fn(w, e);
		event_free(e);
		return;
	}
	struct sim_node *n = &w->nodes[e->node];
	struct agent_ctx *c = ctx_of(w, e->node);
	if (!c || c->gen != e->gen) {
		if (e->fn == job_done_input)
			job_done_input(w, e);
		event_free(e);
		return;
	}
	e->next = NULL;
	if (n->inbox_tail)
		n->inbox_tail->next = e;
	else
		n->inbox = e;
	n->inbox_tail = e;
	pump(w, e->node);
}

void sim_run_until(struct sim *w, uint64_t t)
{
	while (w->nheap && w->heap[0]->time <= t) {
		struct sim_event *e = heap_pop(w);
		w->now = e->time;
		dispatch(w, e);
	}
	if (w->now < t)
		w->now = t;
}

/* ---- the agents' ops ---------------------------------------------------------- */

static bool live(const struct agent_ctx *c)
{
	return !c->dead;
}

static int op_send(void *ctx, const void *buf, size_t len)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	if (!live(c))
		return 0;
	struct sim_node *n = &w->nodes[c->node];
	if (!n->cs_up || n->ring < 0)
		return -ENOTCONN;
	cs_send(w, c->node, buf, len);
	return 0;
}

static uint64_t op_now(void *ctx)
{
	struct agent_ctx *c = ctx;
	return c->w->now;
}

static void timer_fire(struct sim *w, struct sim_event *e)
{
	(void)w;
	e->cb(e->arg);
}

static int op_timer_add(void *ctx, uint64_t ms, void (*fn)(void *), void *arg, uint64_t *id)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	*id = ++w->next_timer;
	if (!live(c))
		return 0;
	struct sim_event *e = sim_input(w, c->node, w->now + ms, timer_fire);
	e->gen = c->gen;
	e->cb = fn;
	e->arg = arg;
	e->id = *id;
	return 0;
}

static void op_timer_del(void *ctx, uint64_t id)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	for (size_t i = 0; i < w->nheap; i++)
		if (w->heap[i]->id == id && w->heap[i]->agent)
			w->heap[i]->cancelled = true;
	for (struct sim_event *e = w->nodes[c->node].inbox; e; e = e->next)
		if (e->id == id)
			e->cancelled = true;
}

static int op_defer(void *ctx, void (*fn)(void *), void *arg)
{
	struct agent_ctx *c = ctx;
	if (!live(c))
		return 0;
	if (c->ndefer == sizeof(c->defer) / sizeof(c->defer[0]))
		return -ENOBUFS;
	c->defer[c->ndefer++] = (struct defer){ fn, arg };
	return 0;
}

static void op_log(void *ctx, enum pvclus_log_level level, const char *func, const char *line)
{
	struct agent_ctx *c = ctx;
	static const char *const lv[] = { "error", "warn", "info", "debug" };
	if (c->w->verbose && live(c) && (level <= PVCLUS_LOG_INFO || c->w->debug))
		sim_log(c->w, "   %s %s %s: %s", c->w->nodes[c->node].name, lv[level], func, line);
}

/* pvhad appends events on a worker thread, one after the other: so here,
 * store_ms apart, each at the time its turn comes. */
static void event_append(struct sim *w, struct sim_event *e)
{
	struct event_job *j = e->p;
	struct agent_ctx *c = j->ctx;
	w->in_job = true;
	w->job_cost = 0;
	int err = pvstore_event_append(c->conn, j->has_guest ? j->guest : NULL, w->nodes[c->node].name, j->what,
				       j->why, NULL);
	w->in_job = false;
	if (err) {
		sim_log(w, "%s %s %s: %s [not stored: %s]", w->nodes[c->node].name,
			j->has_guest ? fs_guest_name(w, j->guest) : "cluster", j->what, j->why, pvstore_errmsg());
		if (live(c)) {
			struct sim_event *f = sim_input(w, c->node, w->now + w->job_cost, agent_storage_failed_ev);
			f->gen = c->gen;
		}
	}
	if (w->now + w->job_cost > c->events_busy)
		c->events_busy = w->now + w->job_cost;
	ctx_release(w, c);
}

static void op_event(void *ctx, const uint8_t *guest, const char *what, const char *why)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	if (!live(c))
		return;
	uint64_t at = (c->events_busy > w->now ? c->events_busy : w->now) + w->p.store_ms;
	c->events_busy = at;
	struct event_job *j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->ctx = c;
	if (guest) {
		j->has_guest = true;
		memcpy(j->guest, guest, 16);
	}
	snprintf(j->what, sizeof(j->what), "%s", what);
	snprintf(j->why, sizeof(j->why), "%s", why);
	c->refs++;
	struct sim_event *e = sim_at(w, at, event_append);
	e->p = j;
}

/* A storage job's done, on the agent's thread (a dead agent's: at once, so
 * that it frees the job). */
static void job_done_input(struct sim *w, struct sim_event *e)
{
	struct pvclus_job *job = e->arg;
	struct agent_ctx *c = e->ctx;
	c->jobs--;
	job->done(job);
	ctx_release(w, c);
}

static void job_done(struct sim *w, struct sim_event *e)
{
	struct agent_ctx *c = e->ctx;
	if (c->dead) {
		job_done_input(w, e);
		return;
	}
	struct sim_event *d = sim_input(w, c->node, w->now, job_done_input);
	d->gen = c->gen;
	d->arg = e->arg;
	d->ctx = c;
}

static void job_run(struct sim *w, struct sim_event *e)
{
	struct pvclus_job *job = e->arg;
	struct agent_ctx *c = e->ctx;
	w->in_job = true;
	w->job_cost = 0;
	job->err = job->run(c->conn, job);
	if (job->err)
		snprintf(job->errmsg, sizeof(job->errmsg), "%s", pvstore_errmsg());
	w->in_job = false;
	struct sim_event *d = sim_at(w, w->now + w->job_cost, job_done);
	d->arg = job;
	d->ctx = c;
}

static int op_storage_submit(void *ctx, struct pvclus_job *job)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	c->jobs++;
	c->refs++;
	struct sim_event *e = sim_at(w, w->now + w->p.store_ms, job_run);
	e->arg = job;
	e->ctx = c;
	return 0;
}

static bool op_image_cached(void *ctx, const char *sha256);
static void op_api_reply(void *ctx, void *token, Pvha__ApiReply *rep, const char *msg);

static int op_vmm_spawn(void *ctx, const struct pvclus_vmm_start *s, pid_t *pid)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	if (!live(c))
		return -ESRCH;
	struct fs_guest *g = fs_guest(w, s->uuid);
	if (!g)
		return -ENOENT;
	int gi = (int)(g - w->store.guests);
	bool incoming = s->incoming && s->incoming[0];
	if (!incoming && !s->image && !op_image_cached(ctx, s->image_sha256))
		return -ENOENT;
	if (!incoming)
		w->nodes[c->node].image_cached[gi] = true; /* pvhad writes it to its cache */
	*pid = w->next_pid++;
	vmm_spawn_fake(w, c->node, s, *pid, gi);
	struct vmm *v = sim_vmm_by_pid(w, *pid);
	v->parent_gen = c->gen;
	return 0;
}

static bool op_image_cached(void *ctx, const char *sha256)
{
	struct agent_ctx *c = ctx;
	struct sim *w = c->w;
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		if (w->nodes[c->node].image_cached[i] && w->store.guests[i].used &&
		    !strcmp(w->store.guests[i].spec.image_sha256, sha256))
			return true;
	return false;
}

static void op_vmm_kill(void *ctx, pid_t pid, bool force)
{
	struct agent_ctx *c = ctx;
	struct vmm *v = sim_vmm_by_pid(c->w, pid);
	if (live(c) && v && v->node == c->node)
		vmm_kill_fake(c->w, v, force);
}

static bool op_vmm_alive(void *ctx, pid_t pid)
{
	struct agent_ctx *c = ctx;
	struct vmm *v = sim_vmm_by_pid(c->w, pid);
	return v && v->node == c->node && v->state != VMM_DEAD;
}

static int op_vmm_status(void *ctx, const uint8_t uuid[16], struct pvclus_vmm_status *st)
{
	struct agent_ctx *c = ctx;
	return vmm_status_fake(c->w, c->node, uuid, st);
}

static int op_vmm_migrate(void *ctx, const uint8_t uuid[16], const char *addr, uint32_t port, uint32_t downtime_ms,
			  const uint8_t *key, size_t key_len, char *why, size_t whylen)
{
	struct agent_ctx *c = ctx;
	(void)downtime_ms;
	(void)key; /* the fake link is not sealed: the lab's test_migrate proves the real one */
	(void)key_len;
	return vmm_migrate_fake(c->w, c->node, uuid, addr, port, why, whylen);
}

static int op_vmm_cancel(void *ctx, const uint8_t uuid[16], char *why, size_t whylen)
{
	struct agent_ctx *c = ctx;
	return vmm_cancel_fake(c->w, c->node, uuid, why, whylen);
}

static int op_vmm_stop(void *ctx, const uint8_t uuid[16])
{
	struct agent_ctx *c = ctx;
	return vmm_stop_fake(c->w, c->node, uuid);
}

static int op_fence_spawn(void *ctx, const char *node, const char *addr, pid_t *pid, char *why, size_t whylen)
{
	struct agent_ctx *c = ctx;
	(void)addr;
	if (!live(c)) {
		snprintf(why, whylen, "the agent is gone");
		return -ESRCH;
	}
	int err = fence_spawn_fake(c->w, c->node, node, pid);
	if (err)
		snprintf(why, whylen, "no node %s to fence", node);
	return err;
}

static void op_fence_kill(void *ctx, pid_t pid)
{
	struct agent_ctx *c = ctx;
	fence_kill_fake(c->w, pid);
}

static const char *op_fence_name(void *ctx)
{
	(void)ctx;
	return "fence_sim";
}

static unsigned op_fence_timeout(void *ctx)
{
	struct agent_ctx *c = ctx;
	return c->w->p.fence_timeout_s;
}

/* Guests' addresses: the simulated guests have none (scenarios give no
 * address), so this is never asked; the lab tests carry real ones
 * (tests/cluster/test_service.sh). Refusing keeps a future scenario from
 * passing by accident before it is modelled. */
static int op_guest_address(void *ctx, const char *address, bool up, char *why, size_t whylen)
{
	(void)ctx;
	(void)up;
	snprintf(why, whylen, "the simulator does not model addresses (%s)", address);
	return -ENOSYS;
}

/* The simulation's own PRNG: the same seed gives the same secrets. */
static int op_random(void *ctx, void *buf, size_t len)
{
	struct agent_ctx *c = ctx;
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)sim_rand(c->w);
	return 0;
}

static const struct pvclus_agent_ops sim_ops = {
	.send = op_send,
	.now_ms = op_now,
	.timer_add = op_timer_add,
	.timer_del = op_timer_del,
	.defer = op_defer,
	.log = op_log,
	.event = op_event,
	.storage_submit = op_storage_submit,
	.api_reply = op_api_reply,
	.image_cached = op_image_cached,
	.vmm_spawn = op_vmm_spawn,
	.vmm_kill = op_vmm_kill,
	.guest_address = op_guest_address,
	.random = op_random,
	.vmm_alive = op_vmm_alive,
	.vmm_status = op_vmm_status,
	.vmm_migrate = op_vmm_migrate,
	.vmm_migrate_cancel = op_vmm_cancel,
	.vmm_stop = op_vmm_stop,
	.fence_spawn = op_fence_spawn,
	.fence_kill = op_fence_kill,
	.fence_name = op_fence_name,
	.fence_timeout_s = op_fence_timeout,
};

/* ---- agent life ------------------------------------------------------------------ */

/* Drops one reference of a context; a dead one with none left is destroyed. */
void ctx_release(struct sim *w, struct agent_ctx *c)
{
	(void)w;
	if (--c->refs > 0)
		return;
	pvclus_agent_destroy(c->agent);
	fs_disconnect(c->conn);
	free(c);
}

static void agent_kill(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	if (!n->agent_up)
		return;
	struct agent_ctx *c = n->cur;
	n->agent_up = false;
	n->frozen = false;
	n->cur = NULL;
	n->conn = NULL;
	c->dead = true;
	c->ndefer = 0;
	pump(w, node); /* drops the inbox */
	ctx_release(w, c);
}

void agent_storage_failed_ev(struct sim *w, struct sim_event *e)
{
	pvclus_agent_storage_failed(ctx_of(w, e->node)->agent);
}

static void agent_boot(struct sim *w, struct sim_event *e)
{
	int node = e->node;
	struct sim_node *n = &w->nodes[node];
	if (!n->powered || n->agent_up || e->u != n->boots)
		return;
	struct agent_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		abort();
	c->w = w;
	c->node = node;
	c->gen = ++n->gen;
	c->refs = 1;
	c->conn = fs_connect(w, node, true);
	struct pvclus_agent_config cfg = { 0 };
	snprintf(cfg.node_name, sizeof(cfg.node_name), "%s", n->name);
	snprintf(cfg.address, sizeof(cfg.address), "%s", n->ip);
	snprintf(cfg.incarnation, sizeof(cfg.incarnation), "%s-boot%u", n->name, n->boots);
	snprintf(cfg.pool, sizeof(cfg.pool), "pvha");
	cfg.mem_offered = n->mem;
	cfg.cpus_offered = n->cpus;
	cfg.fence_power = w->p.fence_power;
	cfg.rebalance_threshold = w->rebalance_threshold;
	if (pvclus_agent_create(&cfg, &sim_ops, c, c->conn, &c->agent) != 0)
		abort();
	n->cur = c;
	n->conn = c->conn;
	n->agent_up = true;
	n->frozen = false;
	n->busy_until = w->now;
	pvclus_agent_set_nodelist(c->agent, n->id, w->nodelist, (size_t)w->nnodes);
	sim_log(w, "# %s: agent starts", n->name);
	pvclus_agent_start(c->agent);
	run_defers(c);
	/* pvhad adopts the VMMs of this boot that still run */
	for (size_t i = 0; i < w->nvmms; i++) {
		struct vmm *v = &w->vmms[i];
		if (v->used && v->node == node && v->state != VMM_DEAD) {
			pvclus_agent_adopt(c->agent, v->uuid, v->pid);
			run_defers(c);
		}
	}
	cs_agent_joined(w, node);
}

void sim_agent_crash(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	if (!n->agent_up)
		return;
	agent_kill(w, node);
	if (n->ring >= 0)
		cs_cpg_changed(w, n->ring, w->p.agent_leave_ms);
}

static void agent_restart_ev(struct sim *w, struct sim_event *e)
{
	struct sim_node *n = &w->nodes[e->node];
	if (n->powered && !n->agent_up && e->u == n->boots) {
		struct sim_event *b = sim_at(w, w->now, agent_boot);
		b->node = e->node;
		b->u = n->boots;
	}
}

void sim_agent_restart(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	sim_agent_crash(w, node);
	struct sim_event *e = sim_at(w, w->now + w->p.agent_restart_ms, agent_restart_ev);
	e->node = node;
	e->u = n->boots;
}

void sim_agent_start(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	if (!n->cs_up || n->agent_up)
		return;
	struct sim_event *b = sim_at(w, w->now, agent_boot);
	b->node = node;
	b->u = n->boots;
}

uint32_t sim_agent_leader(struct sim *w, int node)
{
	struct agent_ctx *c = ctx_of(w, node);
	return c ? pvclus_agent_leader(c->agent) : 0;
}

bool sim_agent_quorate(struct sim *w, int node)
{
	struct agent_ctx *c = ctx_of(w, node);
	return c && pvclus_agent_quorate(c->agent);
}

bool sim_agent_holds(struct sim *w, int node, uint32_t id)
{
	struct agent_ctx *c = ctx_of(w, node);
	return c && pvclus_agent_node_held(c->agent, id);
}

bool sim_agent_is(struct sim *w, int node, uint32_t gen)
{
	struct agent_ctx *c = ctx_of(w, node);
	return c && c->gen == gen;
}

bool sim_ring_leader_holds(struct sim *w, int node, uint32_t id)
{
	int ring = w->nodes[node].ring;
	for (int i = 0; ring >= 0 && i < w->nnodes; i++) {
		struct agent_ctx *c = ctx_of(w, i);
		if (w->nodes[i].ring == ring && c && pvclus_agent_leader(c->agent) == w->nodes[i].id)
			return pvclus_agent_node_held(c->agent, id);
	}
	return true;
}

void sim_agent_freeze(struct sim *w, int node, bool frozen)
{
	struct sim_node *n = &w->nodes[node];
	if (!n->agent_up)
		return;
	n->frozen = frozen;
	if (!frozen)
		pump(w, node);
}

/* ---- power ---------------------------------------------------------------------- */

static void cs_boot(struct sim *w, struct sim_event *e)
{
	struct sim_node *n = &w->nodes[e->node];
	if (!n->powered || e->u != n->boots)
		return;
	n->cs_up = true;
	n->seen_all = false;
	sim_net_changed(w, true);
	struct sim_event *b = sim_at(w, w->now + w->p.agent_boot_ms, agent_boot);
	b->node = e->node;
	b->u = n->boots;
}

void sim_power_on(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	if (n->powered)
		return;
	n->powered = true;
	n->boots++;
	memset(n->image_cached, 0, sizeof(n->image_cached));
	struct sim_event *e = sim_at(w, w->now + w->p.boot_ms, cs_boot);
	e->node = node;
	e->u = n->boots;
}

void sim_power_off(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	if (!n->powered)
		return;
	n->powered = false;
	n->cs_up = false;
	agent_kill(w, node);
	vmm_power_off_node(w, node);
	n->ring = -1;
	n->quorate = false;
	sim_net_changed(w, false);
}

void sim_storage_cut(struct sim *w, int node, bool cut)
{
	w->nodes[node].storage_cut = cut;
}

/* ---- the control API ------------------------------------------------------------- */

int sim_api(struct sim *w, int node, const Pvha__ApiRequest *req, void *token, char *msg, size_t msglen,
	    Pvha__ApiReply **rep)
{
	struct agent_ctx *c = ctx_of(w, node);
	Pvha__ApiReply *r = &w->api_reply;
	if (!c) {
		snprintf(msg, msglen, "no agent runs on %s", w->nodes[node].name);
		return -EHOSTDOWN;
	}
	pvha__api_reply__init(r);
	msg[0] = '\0';
	int err = pvclus_agent_api(c->agent, req, token, r, msg, msglen);
	run_defers(c);
	*rep = r;
	return err ? err : r->error;
}

static void op_api_reply(void *ctx, void *token, Pvha__ApiReply *rep, const char *msg)
{
	struct agent_ctx *c = ctx;
	sim_api_answer(c->w, token, rep, msg);
}

/* ---- delayed monitor commands ----------------------------------------------------- */

static void blocklist_commit_ev(struct sim *w, struct sim_event *e)
{
	bool add = e->u & 1, wait_map = e->u & 2;
	sim_log(w, "# monitor: a timed-out blocklist %s of %s is committed now", add ? "add" : "rm", (const char *)e->p);
	fs_blocklist_commit(w, (int)e->v, e->gen, e->p, add, wait_map ? w->now : w->now + w->p.osd_map_lag_ms);
}

void sim_blocklist_later(struct sim *w, int by, uint32_t by_gen, const char *addr, bool add, uint64_t at,
			 bool wait_map)
{
	struct sim_event *e = sim_at(w, at, blocklist_commit_ev);
	e->gen = by_gen;
	e->p = strdup(addr);
	if (!e->p)
		abort();
	e->u = (add ? 1u : 0u) | (wait_map ? 2u : 0u);
	e->v = (uint64_t)by;
}

/* ---- setup ------------------------------------------------------------------------ */

int sim_init(struct sim *w, const struct sim_params *p, uint64_t seed, FILE *out)
{
	memset(w, 0, sizeof(*w));
	w->p = *p;
	w->rng = seed;
	w->out = out;
	w->next_pid = SIM_PID_BASE;
	return 0;
}

int sim_add_node(struct sim *w, const char *name, uint64_t mem, uint32_t cpus)
{
	if (w->nnodes == SIM_MAX_NODES)
		return -ENOSPC;
	if (sim_node_by_name(w, name) >= 0 || strlen(name) >= sizeof(w->nodes[0].name))
		return -EEXIST;
	int i = w->nnodes++;
	struct sim_node *n = &w->nodes[i];
	memset(n, 0, sizeof(*n));
	n->idx = i;
	n->id = (uint32_t)i + 1;
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->ip, sizeof(n->ip), "10.0.0.%d", i + 1);
	n->mem = mem;
	n->cpus = cpus;
	n->ring = -1;
	w->nodelist[i].nodeid = n->id;
	snprintf(w->nodelist[i].name, sizeof(w->nodelist[i].name), "%s", name);
	snprintf(w->nodelist[i].addr, sizeof(w->nodelist[i].addr), "10.0.0.%d", i + 1); /* ring0_addr: its ip */
	return i;
}

int sim_node_by_name(struct sim *w, const char *name)
{
	for (int i = 0; i < w->nnodes; i++)
		if (!strcmp(w->nodes[i].name, name))
			return i;
	return -1;
}

int sim_guest_index(struct sim *w, const char *name)
{
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		if (w->store.guests[i].used && !strcmp(w->store.guests[i].spec.name, name))
			return i;
	return -1;
}

/* A guest in the registry before the cluster starts (as `pvha guest create`
 * left it): record, image, disk. */
int sim_add_guest(struct sim *w, const struct pvstore_guest *spec)
{
	struct pvstore *st = fs_connect(w, 0, false);
	struct pvstore_guest g = *spec;
	static const char image[] = "\x7f" "ELF sim guest";
	int err = pvstore_image_put(st, image, sizeof(image), g.image_sha256);
	if (!err)
		err = pvstore_guest_create(st, &g);
	if (!err && g.disk_size)
		err = pvstore_disk_create(st, g.uuid, g.disk_size);
	fs_disconnect(st);
	return err ? err : sim_guest_index(w, g.name);
}

void sim_fini(struct sim *w)
{
	w->out = NULL;
	for (int i = 0; i < w->nnodes; i++) {
		w->nodes[i].powered = false;
		agent_kill(w, i);
	}
	/* the dead agents' jobs and appends complete, so that they free */
	while (w->nheap) {
		struct sim_event *e = heap_pop(w);
		if (e->fn == job_run || e->fn == job_done || e->fn == event_append || e->fn == job_done_input)
			e->fn(w, e);
		event_free(e);
	}
	free(w->heap);
	cs_fini(w);
	vmm_fini(w);
	fs_store_free(&w->store);
}
