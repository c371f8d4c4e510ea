/*
 * What the control API shows of a guest (GuestInfo: its record, placement
 * and migration), and the late answer of a request that ran a storage job.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void guests_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi, char *uuid_buf)
{
	pvha__guest_info__init(gi);
	pvstore_uuid_format(g->spec.uuid, uuid_buf);
	gi->uuid = uuid_buf;
	gi->name = (char *)g->spec.name;
	gi->state = (char *)pvclus_ha_state_str(g->ha.state);
	gi->want_running = g->ha.want_running;
	gi->owner_nodeid = g->ha.owner;
	gi->owner = (char *)(g->ha.owner ? agent_node_name(a, g->ha.owner) : "");
	gi->mem_size = g->spec.mem_size;
	gi->disk_size = g->spec.disk_size;
	gi->priority = g->spec.priority;
	gi->cmdline = (char *)g->spec.cmdline;
	gi->image_sha256 = (char *)g->spec.image_sha256;
	gi->reason = (char *)(g->ha.state == PVCLUS_HA_ERROR ? pvclus_ha_reason_str(g->ha.reason) : "");
	gi->restarts = g->ha.restarts;
	gi->address = (char *)g->spec.address;
	gi->migrations = g->migrations;
	gi->last_step = (char *)g->last_step;
	heartbeat_fill_info(a, g, gi);
	agent_sched_fill_info(a, g, gi);
	agent_migrate_fill_info(a, g, gi);
}

void guests_reply(struct pvclus_agent *a, void *token, struct guest *g, int err, const char *msg)
{
	Pvha__ApiReply rep = PVHA__API_REPLY__INIT;
	rep.error = err;
	if (!err && g) {
		guests_fill_info(a, g, &a->api.guests[0], a->api.uuids[0]);
		a->api.guest_ptrs[0] = &a->api.guests[0];
		rep.n_guests = 1;
		rep.guests = a->api.guest_ptrs;
	}
	a->ops->api_reply(a->ctx, token, &rep, msg);
}
