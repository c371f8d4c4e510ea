/* The leader's placement decisions: see agent_sched.h. */
#include "agent_sched.h"

#include <stdio.h>
#include <string.h>

#include "agent_guests.h"
#include "log.h"
#include "pvcluster/sched.h"

void agent_place(struct agent *a, struct guest *target)
{
	static struct pvclus_node nodes[PVCLUS_MAX_NODES];
	static struct pvclus_sched_guest sg[MAX_GUESTS];
	static struct pvclus_placement out[MAX_GUESTS];
	size_t nn = 0, ng = 0, nout = 0;
	for (int i = 0; i < a->nnodes; i++) {
		struct pvclus_node *n = &nodes[nn++];
		memset(n, 0, sizeof(*n));
		n->id = a->nodes[i].nodeid;
		snprintf(n->name, sizeof(n->name), "%s", a->nodes[i].name);
		n->online = agent_is_member(a, n->id) && a->peers[i].hello && !a->peers[i].storage_bad;
		n->fenced = a->peers[i].fenced;
		n->maintenance = a->peers[i].mode != NODE_ACTIVE;
		n->mem_total = a->peers[i].mem_bytes ? a->peers[i].mem_bytes : 1;
		n->cpu_total = a->peers[i].cpus ? a->peers[i].cpus : 1;
	}
	/* What the other guests use or are promised. */
	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->guests->g[i];
		if (!g->used || g == target || !g->ha.owner)
			continue;
		for (size_t j = 0; j < nn; j++)
			if (nodes[j].id == g->ha.owner)
				nodes[j].mem_used += g->spec.mem_size;
	}
	memset(&sg[0], 0, sizeof(sg[0]));
	memcpy(sg[0].uuid, target->spec.uuid, 16);
	sg[0].mem = target->spec.mem_size;
	sg[0].cpu = 1;
	sg[0].priority = target->spec.priority;
	sg[0].avoid = target->ha.avoid;
	ng = 1;
	struct pvclus_view v = { .nodes = nodes, .n_nodes = nn };
	int err = pvclus_sched_place(&v, sg, ng, out, &nout);
	if (err || nout != 1) {
		pvlog_err(err, "guest %s: the scheduler failed", target->spec.name);
		return;
	}
	if (out[0].node)
		guests_send_event(a, target->spec.uuid, PVCLUS_HA_EV_PLACED, out[0].node, false, 0, 0);
	else
		guests_send_event(a, target->spec.uuid, PVCLUS_HA_EV_UNPLACEABLE, 0, false, 0, out[0].reason);
}

