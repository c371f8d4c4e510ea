/*
 * Guest heartbeat monitoring (docs/heartbeat.md), as vSphere's VM
 * Monitoring: the node that runs a guest with a heartbeat timeout polls its
 * VMM; when the guest's heartbeat has stopped for that long, the node kills
 * the VMM and decides, from its own record of restarts, what comes next:
 * restart in place, move to another node, or (moved once already) give up
 * with an error. The kill's exit is then reported as one HEARTBEAT_LOST event
 * that carries the decision, so every agent applies the same step
 * (cluster/ha.c).
 *
 * Whose clock: the restarts counted against the window all happened on this
 * node (they are in place), so this node's clock measures them; after a move
 * the new node starts a record of its own, and the HA record's hb_moved (the
 * same on every agent) says that the next give-up is an error, not a move.
 *
 * What is not a lost heartbeat: a VMM that has not sent its first heartbeat
 * (it boots; a restarted VMM starts from none, so the timeout counts from
 * its start); a VMM that is not running (paused, migrating away or
 * arriving); a guest that is not `running` here. The VMM measures the age in
 * guest time, which a migration carries over, so the target sees the age the
 * source saw.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define HB_POLL_MS 500

void heartbeat_policy(const struct pvclus_agent_config *cfg, const struct pvstore_guest *spec,
		      struct hb_policy *out)
{
	out->timeout_s = spec->heartbeat_timeout_s;
	out->max_resets = spec->heartbeat_max_resets   ? spec->heartbeat_max_resets
			  : cfg->heartbeat_max_resets ? cfg->heartbeat_max_resets
						       : PVCLUS_HB_DEFAULT_MAX_RESETS;
	out->window_s = spec->heartbeat_window_s   ? spec->heartbeat_window_s
			: cfg->heartbeat_window_s ? cfg->heartbeat_window_s
						   : PVCLUS_HB_DEFAULT_WINDOW_S;
}

int heartbeat_decide(const struct hb_policy *p, const uint64_t *resets_ms, size_t n, uint64_t now_ms, bool moved,
		     enum pvclus_ha_heartbeat_step *step, unsigned *recent)
{
	if (!p || !step || (n && !resets_ms) || n > HB_HISTORY_MAX || !p->max_resets ||
	    p->max_resets > HB_HISTORY_MAX || !p->window_s)
		return -EINVAL;
	uint64_t window_ms = (uint64_t)p->window_s * 1000;
	unsigned count = 0;
	for (size_t i = 0; i < n; i++) {
		if (resets_ms[i] > now_ms)
			return -EINVAL; /* a restart in the future: not this node's clock */
		if (now_ms - resets_ms[i] < window_ms)
			count++;
	}
	if (recent)
		*recent = count;
	if (count < p->max_resets)
		*step = PVCLUS_HA_HB_RESTART;
	else
		*step = moved ? PVCLUS_HA_HB_ERROR : PVCLUS_HA_HB_MOVE;
	return 0;
}

/* Whether this node watches g's heartbeat now: it runs g (running, here, a
 * VMM that said it started, not being stopped or migrated) and g has a
 * timeout. */
static bool watched(struct pvclus_agent *a, const struct guest *g)
{
	if (!g->used || !g->spec_loaded || !g->spec.heartbeat_timeout_s)
		return false;
	if (g->ha.state != PVCLUS_HA_RUNNING || g->ha.owner != a->local)
		return false;
	const struct mig *m = &a->migs[g - a->g];
	return g->pid > 0 && g->start_reported && !g->stopping && !g->hb.killing && !m->src_active &&
	       !m->incoming;
}

/* Remembers a restart in place at now (the oldest goes when the record is full). */
static void remember_reset(struct hb_guest *h, uint64_t now)
{
	if (h->n_resets == HB_HISTORY_MAX) {
		memmove(h->resets_ms, h->resets_ms + 1, (HB_HISTORY_MAX - 1) * sizeof(h->resets_ms[0]));
		h->n_resets--;
	}
	h->resets_ms[h->n_resets++] = now;
}

static const char *step_str(enum pvclus_ha_heartbeat_step s)
{
	return s == PVCLUS_HA_HB_RESTART ? "restarting it in place"
	       : s == PVCLUS_HA_HB_MOVE  ? "moving it to another node"
					 : "giving up (error)";
}

/* The heartbeat of g, which this node watches, stopped: decide, say why in
 * its event log, and kill its VMM (the exit sends the decision). */
static void lost(struct pvclus_agent *a, struct guest *g, const struct pvclus_vmm_status *st)
{
	struct hb_policy p;
	enum pvclus_ha_heartbeat_step step;
	unsigned recent = 0;
	uint64_t now = agent_now_ms(a);
	heartbeat_policy(&a->cfg, &g->spec, &p);
	int err = heartbeat_decide(&p, g->hb.resets_ms, g->hb.n_resets, now, g->ha.hb_moved, &step, &recent);
	if (err) {
		/* the record holds a time ahead of the clock: start it afresh */
		alog_warn(a, "guest %s: heartbeat record unusable, starting it afresh", g->spec.name);
		g->hb.n_resets = 0;
		step = PVCLUS_HA_HB_RESTART;
		recent = 0;
	}
	char why[256];
	snprintf(why, sizeof(why),
		 "no heartbeat for %llu ms (last #%llu, timeout %u s) on %s; %u of %u restarts in place used in %u s%s; %s",
		 (unsigned long long)st->heartbeat_age_ms, (unsigned long long)st->heartbeat_seq, p.timeout_s,
		 a->cfg.node_name, recent, p.max_resets, p.window_s, g->ha.hb_moved ? ", moved once already" : "",
		 step_str(step));
	alog_warn(a, "guest %s: %s", g->spec.name, why);
	guest_event(a, g->spec.uuid, "heartbeat-lost", why);
	g->hb.killing = true;
	g->hb.step = step;
	a->ops->vmm_kill(a->ctx, g->pid, true);
}

static void poll_all(void *data)
{
	struct pvclus_agent *a = data;
	bool any = false;
	a->hb_timer_armed = false;
	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->g[i];
		struct pvclus_vmm_status st;
		if (!watched(a, g))
			continue;
		any = true;
		if (a->ops->vmm_status(a->ctx, g->spec.uuid, &st) != 0 ||
		    (strcmp(st.state, "running") != 0 && strcmp(st.state, "sleeping") != 0))
			continue; /* not answering (its end is reported by itself), or paused, migrated, stopped */
		if (!st.heartbeat_seq)
			continue; /* boot: no heartbeat yet */
		if (st.heartbeat_age_ms >= (uint64_t)g->spec.heartbeat_timeout_s * 1000)
			lost(a, g, &st);
	}
	if (any) {
		a->hb_timer_armed = true;
		agent_timer(a, HB_POLL_MS, poll_all, a, &a->hb_timer);
	}
}

void heartbeat_watch(struct pvclus_agent *a, struct guest *g)
{
	if (!a->hb_timer_armed && watched(a, g)) {
		a->hb_timer_armed = true;
		agent_timer(a, HB_POLL_MS, poll_all, a, &a->hb_timer);
	}
}

void heartbeat_after_step(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_event *ev)
{
	/* A person's start or stop begins the record afresh (hb_moved too, in ha.c). */
	if (ev->type == PVCLUS_HA_EV_START_REQ || ev->type == PVCLUS_HA_EV_STOP_REQ)
		g->hb.n_resets = 0;
	heartbeat_watch(a, g);
}

bool heartbeat_vmm_ended(struct pvclus_agent *a, struct guest *g, enum pvclus_ha_heartbeat_step *step)
{
	if (!g->hb.killing)
		return false;
	g->hb.killing = false;
	/* Anything that came meanwhile (a stop, a migration, a quorum loss)
	 * owns the VMM's end: report it the usual way. */
	if (g->stopping || g->ha.state != PVCLUS_HA_RUNNING || g->ha.owner != a->local)
		return false;
	if (g->hb.step == PVCLUS_HA_HB_RESTART)
		remember_reset(&g->hb, agent_now_ms(a));
	else
		g->hb.n_resets = 0; /* it leaves this node */
	*step = g->hb.step;
	return true;
}

bool heartbeat_set_from_api(struct pvstore_guest *want, const Pvha__GuestSetIn *in)
{
	if (want && in->set_heartbeat_timeout)
		want->heartbeat_timeout_s = in->heartbeat_timeout_s;
	if (want && in->set_heartbeat_max_resets)
		want->heartbeat_max_resets = in->heartbeat_max_resets;
	if (want && in->set_heartbeat_window)
		want->heartbeat_window_s = in->heartbeat_window_s;
	return in->set_heartbeat_timeout || in->set_heartbeat_max_resets || in->set_heartbeat_window;
}

void heartbeat_copy_settings(struct pvstore_guest *dst, const struct pvstore_guest *src)
{
	dst->heartbeat_timeout_s = src->heartbeat_timeout_s;
	dst->heartbeat_max_resets = src->heartbeat_max_resets;
	dst->heartbeat_window_s = src->heartbeat_window_s;
}

void heartbeat_describe(struct pvclus_agent *a, const struct pvstore_guest *spec, char *buf, size_t len)
{
	struct hb_policy p;
	heartbeat_policy(&a->cfg, spec, &p);
	snprintf(buf, len, "; heartbeat timeout %u s, %u restart(s) in %u s", p.timeout_s, p.max_resets, p.window_s);
}

void heartbeat_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi)
{
	struct hb_policy p;
	heartbeat_policy(&a->cfg, &g->spec, &p);
	gi->heartbeat_timeout_s = p.timeout_s;
	gi->heartbeat_max_resets = p.max_resets;
	gi->heartbeat_window_s = p.window_s;
	gi->heartbeat_moved = g->ha.hb_moved;
}
