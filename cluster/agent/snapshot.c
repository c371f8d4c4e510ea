/*
 * A read-only picture of the agent for status pages and metrics
 * (pvclus_agent_snapshot in pvcluster/agent.h): copies, never pointers into
 * the agent, so that the embedder may hand it to another thread.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

_Static_assert(PVCLUS_SNAPSHOT_GUESTS_MAX >= MAX_GUESTS, "a snapshot holds the whole guest table");

static void snapshot_node(const struct pvclus_agent *a, int i, struct pvclus_snapshot_node *n)
{
	const struct peer *p = &a->peers[i];
	uint32_t id = a->nodes[i].nodeid;
	bool local = id == a->local;

	n->id = id;
	snprintf(n->name, sizeof(n->name), "%s", a->nodes[i].name);
	snprintf(n->addr, sizeof(n->addr), "%s", p->addr[0] ? p->addr : a->nodes[i].addr);
	n->member = agent_is_member(a, id);
	n->in_ring = a->have_ring && agent_in_ring(a, id);
	n->storage_ok = local ? a->storage_ok : !p->storage_bad;
	n->online = agent_node_online(a, i); /* what the scheduler places by */
	n->fenced = p->fenced;
	n->fencing = a->fences[i].active;
	n->mode = pvstore_node_mode_str(p->mode);
	n->mem_offered = local ? a->cfg.mem_offered : p->mem_bytes;
	n->cpus_offered = local ? a->cfg.cpus_offered : p->cpus;
}

void pvclus_agent_snapshot(const struct pvclus_agent *a, struct pvclus_snapshot *out)
{
	out->local = a->local;
	out->leader = a->leader;
	out->quorate = a->quorate;
	out->leads = agent_leads(a);
	out->have_state = a->have_state;
	out->storage_ok = a->storage_ok;
	out->n_nodes = 0;
	for (int i = 0; i < a->nnodes && i < PVCLUS_MAX_NODES; i++) {
		struct pvclus_snapshot_node *n = &out->nodes[out->n_nodes++];
		memset(n, 0, sizeof(*n));
		snapshot_node(a, i, n);
	}
	out->n_guests = 0;
	for (size_t i = 0; i < MAX_GUESTS; i++) {
		const struct guest *g = &a->g[i];
		if (!g->used)
			continue;
		struct pvclus_snapshot_guest *s = &out->guests[out->n_guests++];
		memset(s, 0, sizeof(*s));
		memcpy(s->uuid, g->spec.uuid, sizeof(s->uuid));
		if (g->spec_loaded) {
			snprintf(s->name, sizeof(s->name), "%s", g->spec.name);
			s->mem_size = g->spec.mem_size;
			s->heartbeat_timeout_s = g->spec.heartbeat_timeout_s;
		}
		s->heartbeat_resets = g->hb.n_resets;
		s->state = g->ha.state;
		s->want_running = g->ha.want_running;
		s->owner = g->ha.owner;
		s->target = g->ha.target;
		s->restarts = g->ha.restarts;
		s->start_failures = g->ha.start_failures;
		s->reason = g->ha.reason;
		s->pid = g->pid;
		for (size_t k = 0; k < out->n_nodes; k++)
			if (out->nodes[k].id && (out->nodes[k].id == g->ha.owner || out->nodes[k].id == g->ha.target))
				out->nodes[k].guests++;
	}
}
