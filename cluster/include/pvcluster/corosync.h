/*
 * The Corosync glue of pvhad: one CPG group (ordered messages, membership),
 * votequorum (may this partition act?) and cmap (node ids and names), all
 * dispatched from the caller's qb_loop — no threads. cs_error_t results are
 * turned into -errno in exactly one place (pvclus_cs_errno); CS_ERR_TRY_AGAIN
 * is retried here, with a bound.
 *
 * Who calls it: pvhad only. When the local corosync dies, the `lost` callback
 * runs once and the handle is dead: close it and open a new one later.
 */
#ifndef PVCLUSTER_COROSYNC_H
#define PVCLUSTER_COROSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <qb/qbloop.h>

#define PVCLUS_MAX_NODES 64

struct pvclus_cs_callbacks {
	/* The CPG membership changed: ids of the members now (sorted), those
	 * that joined with this change (every member gets the same lists), and
	 * the ring it belongs to. */
	void (*members)(void *ctx, const uint32_t *ids, size_t n, const uint32_t *joined,
			size_t n_joined, uint64_t ring_id);
	/* The totem ring changed: the nodes (not agents) of this ring, sorted.
	 * In CPG order with the messages; the first call is the initial ring. A
	 * node that leaves the ring is down or cut off; an agent that leaves the
	 * CPG group while its node stays in the ring has only restarted. */
	void (*ring)(void *ctx, const uint32_t *ids, size_t n, uint64_t ring_id);
	/* votequorum's view: whether this partition is quorate, and how many
	 * nodes it counts as members. */
	void (*quorum)(void *ctx, bool quorate, size_t members);
	/* One message of the group, in total order (our own ones too). */
	void (*deliver)(void *ctx, uint32_t nodeid, uint32_t pid, const void *msg, size_t len);
	/* The local corosync went away. */
	void (*lost)(void *ctx);
};

struct pvclus_cs;

/* Connects to the local corosync, joins the CPG group and starts tracking
 * quorum; the fds are added to loop. Returns 0 and *out, or -errno
 * (-ENOTCONN when corosync is not running). */
int pvclus_cs_open(qb_loop_t *loop, const char *group, const struct pvclus_cs_callbacks *cb,
		   void *ctx, struct pvclus_cs **out);

/* Leaves the group and closes every handle (NULL is allowed). */
void pvclus_cs_close(struct pvclus_cs *cs);

/* This node's corosync node id. */
uint32_t pvclus_cs_local_nodeid(const struct pvclus_cs *cs);

/* Multicasts msg to the group (agreed order). Retries CS_ERR_TRY_AGAIN for up
 * to about a second. Returns 0 or -errno. */
int pvclus_cs_send(struct pvclus_cs *cs, const void *msg, size_t len);

/* The configured nodes (cmap nodelist): ids, names and ring0 addresses,
 * sorted by id. Returns the count (at most max) or -errno. */
struct pvclus_cs_node {
	uint32_t nodeid;
	char name[64];
	char addr[64]; /* nodelist.node.N.ring0_addr ("" when absent): what a fence blocklists */
};
int pvclus_cs_nodelist(struct pvclus_cs *cs, struct pvclus_cs_node *out, size_t max);

/* What the local corosync says of this node, asked without a loop or a CPG
 * group (`pvha cluster init` and `node join` ask it once). */
struct pvclus_cs_probe {
	uint32_t nodeid;
	struct pvclus_cs_node self; /* this node's nodelist entry */
	uint32_t configured;        /* nodes in the nodelist */
	bool quorate;
	uint32_t total_votes, expected_votes, quorum;
};

/* Connects to the local corosync's cmap and votequorum, fills *out and
 * disconnects. Returns 0, or -ENOTCONN (corosync is not running here, or
 * this user may not talk to it), -ENOPROTOOPT (its quorum provider is not
 * votequorum), -ENOENT (this node has no entry in the nodelist) or -errno.
 * Blocks about a second at most while corosync answers TRY_AGAIN. */
int pvclus_cs_probe(struct pvclus_cs_probe *out);

/* cs_error_t (CS_OK == 1) to 0 / -errno. */
int pvclus_cs_errno(int cs_error);

#endif /* PVCLUSTER_COROSYNC_H */
