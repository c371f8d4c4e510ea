/* The leader's placement decisions: see internal.h and docs/placement.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RETRY_MS 2000   /* the leader tries waiting guests again this often */
#define PROMISE_MS 5000 /* a PLACED not applied by then is forgotten (and placed again) */

/* The note of g's table entry, fresh when the entry now holds another guest. */
static struct note *note_of(struct pvclus_agent *a, const struct guest *g)
{
	struct note *n = &a->notes[g - a->g];
	if (!n->used || memcmp(n->uuid, g->spec.uuid, 16)) {
		memset(n, 0, sizeof(*n));
		n->used = true;
		memcpy(n->uuid, g->spec.uuid, 16);
		n->last_sent = -1;
	}
	return n;
}

/* Wants to run and waits for a node (starting or recovering, not placed). */
static bool unplaced(const struct guest *g)
{
	return g->used && g->ha.want_running && !g->ha.owner &&
	       (g->ha.state == PVCLUS_HA_STARTING || g->ha.state == PVCLUS_HA_RECOVERING);
}

/* The node this leader placed g on whose PLACED is still on its way, or 0. */
static uint32_t promised(struct pvclus_agent *a, const struct guest *g)
{
	struct note *n = note_of(a, g);
	if (n->promised && (!unplaced(g) || agent_now_ms(a) - n->promised_ms > PROMISE_MS))
		n->promised = 0;
	return n->promised;
}

/* The first dependency of g that holds it back, or NULL. */
static struct guest *blocking_dep(struct pvclus_agent *a, const struct guest *g)
{
	for (unsigned i = 0; g->spec_loaded && i < g->spec.n_depends; i++) {
		struct guest *d = guests_find(a, g->spec.depends_on[i]);
		if (d && placement_dep_blocks(&d->ha))
			return d;
	}
	return NULL;
}

static size_t node_index(const struct agent_view *v, uint32_t id)
{
	for (size_t i = 0; i < v->view.n_nodes; i++)
		if (v->nodes[i].id == id)
			return i;
	return SIZE_MAX;
}

int agent_sched_view(struct pvclus_agent *a, struct agent_view *out)
{
	const struct pvstore_guest **specs = a->specs;
	size_t nn = 0, ns = 0;

	out->n_guests = 0;
	out->view = (struct pvclus_view){ .nodes = out->nodes, .rules = out->rules };
	for (int i = 0; i < a->nnodes && nn < PVCLUS_MAX_NODES; i++) {
		struct pvclus_node *n = &out->nodes[nn++];
		memset(n, 0, sizeof(*n));
		n->id = a->nodes[i].nodeid;
		snprintf(n->name, sizeof(n->name), "%s", a->nodes[i].name);
		n->online = agent_node_online(a, i);
		/* a node whose fence is under way, or might still land, gets nothing */
		n->fenced = agent_node_held(a, n->id);
		n->maintenance = a->peers[i].mode != NODE_ACTIVE;
		n->mem_total = a->peers[i].mem_bytes ? a->peers[i].mem_bytes : 1;
		n->cpu_total = a->peers[i].cpus ? a->peers[i].cpus : 1;
	}
	out->view.n_nodes = nn;

	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && a->g[i].spec_loaded)
			specs[ns++] = &a->g[i].spec;
	int nr = placement_rules_derive(specs, ns, out->defs, AGENT_VIEW_RULES_MAX);
	if (nr < 0)
		return nr;
	placement_rules_to_sched(out->defs, (size_t)nr, out->rules);
	out->view.n_rules = (size_t)nr;

	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->g[i];
		if (!g->used)
			continue;
		uint32_t node = g->ha.owner ? g->ha.owner : promised(a, g);
		size_t pos = node ? node_index(out, node) : SIZE_MAX;
		if (pos == SIZE_MAX)
			continue;
		struct pvclus_sched_guest *sg = &out->guests[out->n_guests];
		memset(sg, 0, sizeof(*sg));
		memcpy(sg->uuid, g->spec.uuid, 16);
		/* A guest whose spec could not be read yet still runs: count it. */
		sg->mem = g->spec_loaded && g->spec.mem_size ? g->spec.mem_size : 1;
		sg->cpu = 1;
		sg->priority = g->spec.priority;
		sg->node = node;
		sg->avoid = g->ha.avoid;
		if (g->spec_loaded)
			placement_rule_ids(out->defs, (size_t)nr, &g->spec, sg->rules);
		out->of[out->n_guests++] = g;
		out->nodes[pos].mem_used += sg->mem;
		out->nodes[pos].cpu_used += sg->cpu;
		if (g->ha.state == PVCLUS_HA_MIGRATING && g->ha.target) {
			size_t t = node_index(out, g->ha.target);
			if (t != SIZE_MAX) {
				out->nodes[t].mem_used += sg->mem;
				out->nodes[t].cpu_used += sg->cpu;
			}
		}
	}
	return 0;
}

int agent_sched_view_add(struct pvclus_agent *a, struct agent_view *v, struct guest *g)
{
	(void)a;
	if (!g->spec_loaded || !g->spec.mem_size)
		return -EINVAL;
	for (size_t i = 0; i < v->n_guests; i++)
		if (v->of[i] == g)
			return -EEXIST;
	if (v->n_guests == MAX_GUESTS)
		return -ENOSPC;
	struct pvclus_sched_guest *sg = &v->guests[v->n_guests];
	memset(sg, 0, sizeof(*sg));
	memcpy(sg->uuid, g->spec.uuid, 16);
	sg->mem = g->spec.mem_size;
	sg->cpu = 1;
	sg->priority = g->spec.priority;
	sg->avoid = g->ha.avoid;
	if (placement_rule_ids(v->defs, v->view.n_rules, &g->spec, sg->rules) < 0)
		return -EINVAL;
	v->of[v->n_guests] = g;
	return (int)v->n_guests++;
}

/* A guest waits for dep: say so once per dependency it waits for. */
static void note_waiting(struct pvclus_agent *a, struct guest *g, struct note *n, const struct guest *dep)
{
	if (n->waiting_dep && !memcmp(n->waiting_on, dep->spec.uuid, 16))
		return;
	char why[200];
	snprintf(why, sizeof(why), "for %s (%s) to run first", dep->spec.name,
		 pvclus_ha_state_str(dep->ha.state));
	alog_info(a, "guest %s: waiting %s", g->spec.name, why);
	guest_event(a, g->spec.uuid, "waiting", why);
	n->waiting_dep = true;
	memcpy(n->waiting_on, dep->spec.uuid, 16);
}

/*
 * The leader places every guest that waits for a node and not for a
 * dependency, in one scheduler call over the current view: highest priority
 * first, each decision counting the memory and rule members of the ones
 * before it. A guest a PLACE action asked for always gets an answer; one
 * tried again (the timer, a dependency that came up) is told UNPLACEABLE
 * only when the reason changed. O(G log G + G*N).
 */
static void place_waiting(struct pvclus_agent *a)
{
	struct agent_view *v = a->sched_view;
	struct pvclus_placement *out = a->sched_out;
	size_t nout = 0, base;
	bool any = false, paced = false;

	if (!agent_leads(a)) {
		for (int i = 0; i < MAX_GUESTS; i++)
			a->notes[i].pending = false;
		return;
	}
	for (int i = 0; i < MAX_GUESTS && !any; i++)
		any = unplaced(&a->g[i]);
	if (!any)
		return;
	int err = agent_sched_view(a, v);
	if (err) {
		alog_err(a, err, "the scheduler's view");
		return;
	}
	base = v->n_guests;
	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->g[i];
		if (!unplaced(g) || promised(a, g))
			continue;
		struct note *n = note_of(a, g);
		if (n->not_before_ms > agent_now_ms(a)) {
			paced = true; /* busy_tick places it */
			continue;
		}
		struct guest *dep = blocking_dep(a, g);
		if (dep) {
			note_waiting(a, g, n, dep);
			n->pending = false;
			continue;
		}
		if (n->waiting_dep) {
			alog_info(a, "guest %s: its dependencies run or are not wanted: placing it", g->spec.name);
			n->waiting_dep = false;
		}
		err = agent_sched_view_add(a, v, g);
		if (err < 0 && err != -EEXIST)
			alog_debug(a, "guest %s: not placed now: %s", g->spec.name,
				    err == -EINVAL ? "its spec is not loaded" : strerror(-err));
	}
	if (paced)
		agent_sched_paced(a); /* this agent may lead since the failure */
	if (v->n_guests == base)
		return;
	err = pvclus_sched_place(&v->view, v->guests, v->n_guests, out, &nout);
	if (err) {
		alog_err(a, err, "the scheduler failed for %zu guests", v->n_guests - base);
		return;
	}
	for (size_t i = 0; i < nout; i++) {
		struct guest *g = v->of[out[i].index];
		struct note *n = note_of(a, g);
		if (out[i].node) {
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_PLACED, out[i].node, false, 0, 0);
			n->promised = out[i].node;
			n->promised_ms = agent_now_ms(a);
			n->last_sent = -1;
		} else if (n->pending || n->last_sent != (int)out[i].reason) {
			alog_info(a, "guest %s: unplaceable: %s", g->spec.name,
				   pvclus_sched_reason_str(out[i].reason));
			guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_UNPLACEABLE, 0, false, 0, out[i].reason);
			n->last_sent = (int)out[i].reason;
		}
		n->pending = false;
	}
}

static void place_job(void *data)
{
	struct pvclus_agent *a = data;
	a->place_queued = false;
	place_waiting(a);
}

static void queue_placement(struct pvclus_agent *a)
{
	if (a->place_queued)
		return;
	if (a->ops->defer(a->ctx, place_job, a) == 0)
		a->place_queued = true;
	else
		place_waiting(a); /* cannot defer: place now */
}

void agent_sched_kick(struct pvclus_agent *a)
{
	queue_placement(a);
}

void agent_place(struct pvclus_agent *a, struct guest *target)
{
	note_of(a, target)->pending = true;
	queue_placement(a);
}

static void busy_tick(void *data)
{
	struct pvclus_agent *a = data;
	a->busy_timer_armed = false;
	queue_placement(a);
	agent_sched_paced(a);
}

/* Armed for the earliest paced placement still ahead. */
void agent_sched_paced(struct pvclus_agent *a)
{
	uint64_t now = agent_now_ms(a), next = 0;
	if (a->busy_timer_armed)
		return;
	for (int i = 0; i < MAX_GUESTS; i++) {
		const struct note *n = &a->notes[i];
		if (n->used && n->not_before_ms > now && (!next || n->not_before_ms < next))
			next = n->not_before_ms;
	}
	if (!next)
		return;
	a->busy_timer_armed = true;
	agent_timer(a, next - now, busy_tick, a, &a->busy_timer);
}

static void retry_tick(void *data)
{
	struct pvclus_agent *a = data;
	if (agent_leads(a))
		place_waiting(a);
	agent_timer(a, RETRY_MS, retry_tick, a, &a->retry_timer);
}

void agent_sched_init(struct pvclus_agent *a)
{
	agent_timer(a, RETRY_MS, retry_tick, a, &a->retry_timer);
}

void agent_sched_on_step(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_guest *next,
			 const struct pvclus_ha_event *ev)
{
	const struct pvclus_ha_guest *old = &g->ha;
	struct note *n = note_of(a, g);
	/* A placement took effect (or the guest needs none any more): the
	 * promise is kept, and must not hold back the next placement of the
	 * guest, which may follow at once (its start failed, its node died). */
	if (next->owner || !next->want_running)
		n->promised = 0;
	/* A start that failed for a reason not the guest's own (its lock held
	 * elsewhere, the storage silent) is tried again after a pause that
	 * grows to RETRY_MS (the first one at once: the node whose dead VMM
	 * holds the lock clears it as soon as it hears of the failure); retried
	 * at once every time, they ran into the limit within milliseconds. */
	if (ev->type == PVCLUS_HA_EV_START_FAILED && pvclus_ha_transient(ev->err) && !next->owner &&
	    next->want_running) {
		static const uint64_t pause[] = { 0, RETRY_MS / 4, RETRY_MS / 2 }; /* then RETRY_MS */
		size_t k = next->busy_failures ? next->busy_failures - 1u : 0;
		n->not_before_ms = agent_now_ms(a) + (k < sizeof(pause) / sizeof(pause[0]) ? pause[k] : RETRY_MS);
		if (agent_leads(a))
			agent_sched_paced(a);
	} else if (next->owner || !next->want_running) {
		n->not_before_ms = 0;
	}
	if (ev->type == PVCLUS_HA_EV_UNPLACEABLE)
		n->unplaceable = ev->detail;
	else if (next->owner || !(next->state == PVCLUS_HA_STARTING || next->state == PVCLUS_HA_RECOVERING))
		n->unplaceable = 0;
	/* What a dependent may wait for changed: it runs now, or is no longer wanted. */
	bool came_up = next->state == PVCLUS_HA_RUNNING && old->state != PVCLUS_HA_RUNNING;
	bool let_go = old->want_running && (!next->want_running || next->state == PVCLUS_HA_ERROR);
	if ((came_up || let_go) && agent_leads(a))
		queue_placement(a);
}

/* ---- the API --------------------------------------------------------------- */

void agent_sched_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi)
{
	struct note *n = note_of(a, g);
	for (unsigned i = 0; g->spec_loaded && i < g->spec.n_rules; i++) {
		pvha__guest_rule__init(&n->rule_msg[i]);
		n->rule_msg[i].group = (char *)g->spec.rules[i].group;
		n->rule_msg[i].anti = g->spec.rules[i].anti;
		n->rule_msg[i].soft = g->spec.rules[i].soft;
		n->rule_ptr[i] = &n->rule_msg[i];
	}
	gi->n_rules = g->spec_loaded ? g->spec.n_rules : 0;
	gi->rules = n->rule_ptr;
	for (unsigned i = 0; g->spec_loaded && i < g->spec.n_depends; i++) {
		const struct guest *d = guests_find(a, g->spec.depends_on[i]);
		if (d && d->spec_loaded)
			snprintf(n->dep_name[i], sizeof(n->dep_name[i]), "%s", d->spec.name);
		else
			pvstore_uuid_format(g->spec.depends_on[i], n->dep_name[i]);
		n->dep_ptr[i] = n->dep_name[i];
	}
	gi->n_depends_on = g->spec_loaded ? g->spec.n_depends : 0;
	gi->depends_on = n->dep_ptr;
	n->waiting[0] = '\0';
	if (unplaced(g)) {
		const struct guest *d = blocking_dep(a, g);
		if (d)
			snprintf(n->waiting, sizeof(n->waiting), "for %s (%s)", d->spec.name,
				 pvclus_ha_state_str(d->ha.state));
		else if (n->unplaceable)
			snprintf(n->waiting, sizeof(n->waiting), "unplaceable: %s",
				 pvclus_sched_reason_str((enum pvclus_sched_reason)n->unplaceable));
		else
			snprintf(n->waiting, sizeof(n->waiting), "for a node");
	}
	gi->waiting = n->waiting;
}

static int set_rules(struct pvstore_guest *spec, Pvha__GuestRule *const *rules, size_t n, char *msg,
		     size_t msglen)
{
	if (n > PVSTORE_GUEST_RULES_MAX) {
		snprintf(msg, msglen, "%zu placement rules: at most %d", n, PVSTORE_GUEST_RULES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *grp = rules[i]->group;
		if (!grp[0] || strlen(grp) > PVSTORE_NAME_MAX) {
			snprintf(msg, msglen, "placement group '%.63s': want 1 to 63 of A-Z a-z 0-9 . _ -", grp);
			return -EINVAL;
		}
		snprintf(spec->rules[i].group, sizeof(spec->rules[i].group), "%s", grp);
		spec->rules[i].anti = rules[i]->anti;
		spec->rules[i].soft = rules[i]->soft;
	}
	spec->n_rules = (unsigned)n;
	return 0;
}

static int set_deps(struct pvclus_agent *a, struct pvstore_guest *spec, char *const *deps, size_t n, char *msg,
		    size_t msglen)
{
	if (n > PVSTORE_GUEST_DEPS_MAX) {
		snprintf(msg, msglen, "%zu dependencies: at most %d", n, PVSTORE_GUEST_DEPS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t u[16];
		if (!strcmp(deps[i], spec->name)) {
			snprintf(msg, msglen, "guest %s cannot depend on itself", spec->name);
			return -EINVAL;
		}
		if (guests_lookup(a, deps[i], u) < 0) {
			snprintf(msg, msglen, "dependency '%.63s': no such guest", deps[i]);
			return -ENOENT;
		}
		if (!memcmp(u, spec->uuid, 16)) {
			snprintf(msg, msglen, "guest %s cannot depend on itself", spec->name);
			return -EINVAL;
		}
		for (size_t j = 0; j < i; j++)
			if (!memcmp(spec->depends_on[j], u, 16)) {
				snprintf(msg, msglen, "dependency '%.63s' named twice", deps[i]);
				return -EINVAL;
			}
		memcpy(spec->depends_on[i], u, 16);
	}
	spec->n_depends = (unsigned)n;
	/* A cycle through spec: cheap to see, since every other guest is tabled. */
	const struct pvstore_guest **specs = a->specs;
	size_t ns = 0;
	uint8_t via[16];
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && a->g[i].spec_loaded)
			specs[ns++] = &a->g[i].spec;
	int err = placement_deps_cycle(specs, ns, spec, via);
	if (err == -ELOOP) {
		const struct guest *d = guests_find(a, via);
		snprintf(msg, msglen, "dependency '%s' would make a cycle: it depends on %s, directly or not",
			 d ? d->spec.name : "?", spec->name);
	} else if (err) {
		snprintf(msg, msglen, "checking for a dependency cycle: %s", strerror(-err));
	}
	return err;
}

int agent_sched_spec_from_api(struct pvclus_agent *a, struct pvstore_guest *spec, bool with_rules,
			      Pvha__GuestRule *const *rules, size_t n_rules, bool with_deps,
			      char *const *deps, size_t n_deps, char *msg, size_t msglen)
{
	int err = 0;
	if (with_rules && (err = set_rules(spec, rules, n_rules, msg, msglen)))
		return err;
	if (with_deps && (err = set_deps(a, spec, deps, n_deps, msg, msglen)))
		return err;
	/* Group names, pairs named twice: the registry's own check says it. */
	if (pvstore_guest_check(spec) < 0) {
		snprintf(msg, msglen, "%s", pvstore_errmsg());
		return -EINVAL;
	}
	return 0;
}
