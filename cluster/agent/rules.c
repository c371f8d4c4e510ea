/*
 * Who may send what (docs/agent.md, "Who may send what"): the check every
 * agent makes of a cluster message before it acts on it.
 *
 * Corosync tells each delivery's sender (its node id), and with crypto on
 * only a node holding the cluster's key can be one. What it cannot tell is
 * whether that node may say what it says: a member could stop and delete any
 * guest, change another node's fence address or make a source stream a
 * guest's RAM to it. Here each kind of message is bound to the node(s) that
 * legitimately send it.
 *
 * The decision depends only on what every agent holds alike at the same point
 * of the message order: the nodelist, the membership, the leader, the fenced
 * nodes and the guests' HA records (which change only through these same
 * messages). So every agent drops the same messages, and their tables stay
 * equal. The HA state machine (cluster/ha.c) then checks the node an event
 * names against the record's roles (owner, target, the fence-wait peer):
 * together a node can report only about its own part in a guest's life.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Fills why and returns -EPERM. */
__attribute__((format(printf, 3, 4))) static int deny(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EPERM;
}

static const struct guest *find_guest(const struct pvclus_agent *a, const ProtobufCBinaryData *uuid)
{
	if (uuid->len != 16)
		return NULL;
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && !memcmp(a->g[i].spec.uuid, uuid->data, 16))
			return &a->g[i];
	return NULL;
}

/* The leader now, or, for a message held until the table came and replayed
 * now, the leader when it was delivered: by then this agent may have learnt
 * what changed the leader since (a node's hello saying it reaches the storage
 * again, a fence lifted), and the other agents judged it back then. */
static int from_leader(const struct pvclus_agent *a, uint32_t from, const char *what, char *why, size_t whylen)
{
	if (a->leader && from == a->leader)
		return 0;
	if (a->replaying && a->held_leader && from == a->held_leader)
		return 0;
	return deny(why, whylen, "%s: only the leader (%s) sends it", what,
		    a->leader ? agent_node_name(a, a->leader) : "none now");
}

static int names_sender(const struct pvclus_agent *a, uint32_t from, uint32_t node, const char *what, char *why,
			size_t whylen)
{
	if (node == from)
		return 0;
	return deny(why, whylen, "%s about node %s: only that node reports it", what, agent_node_name(a, node));
}

static int check_event(const struct pvclus_agent *a, uint32_t from, const Pvha__GuestEvent *e, char *why,
		       size_t whylen)
{
	const char *what = e->type < PVCLUS_HA_EV_COUNT ? pvclus_ha_event_str((enum pvclus_ha_event_type)e->type)
						       : "GuestEvent";
	switch ((enum pvclus_ha_event_type)e->type) {
	case PVCLUS_HA_EV_START_REQ:
	case PVCLUS_HA_EV_STOP_REQ:
	case PVCLUS_HA_EV_DELETE_REQ:
		/* a user's request, sent by the agent whose API took it: any
		 * member; it names no node */
		if (e->node)
			return deny(why, whylen, "%s naming node %u: a request names none", what, e->node);
		return 0;
	case PVCLUS_HA_EV_PLACED:
	case PVCLUS_HA_EV_UNPLACEABLE:
	case PVCLUS_HA_EV_NODE_DRAIN:
		/* the leader's scheduler and its drain pump */
		return from_leader(a, from, what, why, whylen);
	case PVCLUS_HA_EV_MIGRATE_START:
		/* a user's `guest migrate` (any member's API) or the leader's
		 * drain and rebalancer: any member, towards a configured node */
		if (agent_node_index(a, e->node) < 0)
			return deny(why, whylen, "%s towards node %u, which is not in the nodelist", what, e->node);
		return 0;
	case PVCLUS_HA_EV_STARTED:
	case PVCLUS_HA_EV_START_FAILED:
	case PVCLUS_HA_EV_STOPPED:
	case PVCLUS_HA_EV_VMM_EXITED:
	case PVCLUS_HA_EV_MIGRATE_HANDED_OVER:
	case PVCLUS_HA_EV_MIGRATE_DONE:
	case PVCLUS_HA_EV_MIGRATE_FAILED:
	case PVCLUS_HA_EV_HEARTBEAT_LOST:
		/* what a node's own VMM did: the node it names reports it (the
		 * HA machine then checks that node's role in the record) */
		return names_sender(a, from, e->node, what, why, whylen);
	case PVCLUS_HA_EV_RUN_STABLE:
	case PVCLUS_HA_EV_NODE_LEFT:
	case PVCLUS_HA_EV_NODE_FENCED:
	case PVCLUS_HA_EV_QUORUM_LOST:
	case PVCLUS_HA_EV_QUORUM_REGAINED:
	case PVCLUS_HA_EV_DEADLINE:
		/* each agent derives these itself (Corosync, its timers, a
		 * NodeFenced message): never sent */
		return deny(why, whylen, "%s: an event no agent sends", what);
	case PVCLUS_HA_EV_COUNT:
		break;
	}
	return deny(why, whylen, "GuestEvent of unknown type %u", e->type);
}

int agent_msg_check(const struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg, char *why,
		    size_t whylen)
{
	if (agent_node_index(a, from) < 0)
		return deny(why, whylen, "node %u is not in the nodelist", from);
	switch (msg->body_case) {
	case PVHA__CLUSTER_MSG__BODY_HELLO:
		/* about its sender only (it is filed under the sender's id) */
		return 0;
	case PVHA__CLUSTER_MSG__BODY_GUEST_ADD:
		/* any member's API registered or changed a guest; what it says
		 * is read from the registry, not from the message */
		return 0;
	case PVHA__CLUSTER_MSG__BODY_GUEST_EVENT:
		return check_event(a, from, msg->guest_event, why, whylen);
	case PVHA__CLUSTER_MSG__BODY_NODE_FENCED: {
		const Pvha__NodeFenced *f = msg->node_fenced;
		const char *what = f->unfenced ? "unfence" : "fence";
		if (agent_node_index(a, f->nodeid) < 0)
			return deny(why, whylen, "%s of node %u, which is not in the nodelist", what, f->nodeid);
		/* The node it names may have a view of its own (cut off, it may
		 * lead in it: the two halves of a two-node cluster both stay
		 * quorate); this message is what brings it back in line (it
		 * kills its VMMs, or drops its table for the cluster's), so it
		 * takes it from any other member. (The leader may name itself:
		 * back with no guest, its fence is confirmed without a blocklist.) */
		if (f->nodeid == a->local && from != a->local)
			return 0;
		return from_leader(a, from, what, why, whylen);
	}
	case PVHA__CLUSTER_MSG__BODY_TABLE: {
		/* the lowest member with state answers a joiner; the joiner
		 * cannot know which member that was, but a node fenced in its
		 * view has a stale table -- unless the view is the stale one: a
		 * node that waits for a table kept the fences it knew before
		 * (cut off, it missed the unfence), and a sender whose hello
		 * says it reaches the storage is no longer blocklisted (random
		 * seed 2207: the table was refused and the registry taken) */
		int i = agent_node_index(a, from);
		const struct peer *p = &a->peers[i];
		if (from == a->local)
			return 0; /* its own: ignored anyway (it has the state) */
		/* The sender must be a member in this view. At a heal the new
		 * ring's messages may come before this agent's CPG members
		 * (random seed 8073): a minority that took the majority's table
		 * then led in its own stale membership, where the majority's
		 * leader is not a member, and lifted fences that the majority,
		 * judging by its own leader, never heard of. The table comes
		 * again once the membership does (the hello it sends then). */
		if (!agent_is_member(a, from))
			return deny(why, whylen, "guest table from node %s, not a member in this view",
				    agent_node_name(a, from));
		if (p->fenced && !(a->awaiting && p->hello && p->has_state && !p->storage_bad))
			return deny(why, whylen, "guest table from a fenced node");
		return 0;
	}
	case PVHA__CLUSTER_MSG__BODY_NODE_MODE: {
		const Pvha__NodeMode *m = msg->node_mode;
		if (agent_node_index(a, m->nodeid) < 0)
			return deny(why, whylen, "node mode of node %u, which is not in the nodelist", m->nodeid);
		if (m->mode > NODE_MAINTENANCE)
			return deny(why, whylen, "node mode %u", m->mode);
		/* drain and resume: any member's API; maintenance: the leader,
		 * once a drain is done */
		if (m->mode == NODE_MAINTENANCE)
			return from_leader(a, from, "maintenance mode", why, whylen);
		return 0;
	}
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_READY: {
		const Pvha__MigrateReady *r = msg->migrate_ready;
		const struct guest *g = find_guest(a, &r->uuid);
		if (r->target != from)
			return deny(why, whylen, "MigrateReady naming node %s as the target: only the target sends it",
				    agent_node_name(a, r->target));
		if (!g)
			return deny(why, whylen, "MigrateReady for a guest not in the table");
		if (g->ha.state != PVCLUS_HA_MIGRATING || g->ha.target != from || g->ha.handed_over)
			return deny(why, whylen, "MigrateReady for guest %s, which is not migrating to the sender",
				    g->spec.name);
		return 0;
	}
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_PROGRESS:
		/* the source reads it from its VMM (until after the handover, when
		 * the record already names the target as owner) */
		return names_sender(a, from, msg->migrate_progress->source, "MigrateProgress", why, whylen);
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST:
		/* precedes a MIGRATE_START: the same senders */
		if (agent_node_index(a, msg->migrate_request->target) < 0)
			return deny(why, whylen, "MigrateRequest towards node %u, which is not in the nodelist",
				    msg->migrate_request->target);
		return 0;
	case PVHA__CLUSTER_MSG__BODY__NOT_SET:
	default:
		break;
	}
	return deny(why, whylen, "message of unknown kind %d", (int)msg->body_case);
}

static const char *kind_str(const Pvha__ClusterMsg *msg)
{
	switch (msg->body_case) {
	case PVHA__CLUSTER_MSG__BODY_HELLO: return "NodeHello";
	case PVHA__CLUSTER_MSG__BODY_GUEST_ADD: return "GuestAdd";
	case PVHA__CLUSTER_MSG__BODY_GUEST_EVENT: return "GuestEvent";
	case PVHA__CLUSTER_MSG__BODY_NODE_FENCED: return "NodeFenced";
	case PVHA__CLUSTER_MSG__BODY_TABLE: return "GuestTable";
	case PVHA__CLUSTER_MSG__BODY_NODE_MODE: return "NodeMode";
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_READY: return "MigrateReady";
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_PROGRESS: return "MigrateProgress";
	case PVHA__CLUSTER_MSG__BODY_MIGRATE_REQUEST: return "MigrateRequest";
	default: return "unknown";
	}
}

bool agent_msg_allowed(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg)
{
	char why[200];
	if (agent_msg_check(a, from, msg, why, sizeof(why)) == 0)
		return true;
	alog_warn(a, "cpg: %s from node %s (%u) dropped: %s", kind_str(msg), agent_node_name(a, from), from, why);
	return false;
}

void agent_fence_addr(const struct pvclus_agent *a, int i, char *out, size_t outlen)
{
	struct in6_addr buf;
	const char *addr = a->nodes[i].addr;
	out[0] = '\0';
	if (inet_pton(AF_INET, addr, &buf) == 1 || inet_pton(AF_INET6, addr, &buf) == 1)
		snprintf(out, outlen, "%s", addr);
}
