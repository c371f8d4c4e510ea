/*
 * pvhad's state, shared by its parts: pvhad.c (membership, quorum, leader,
 * the control API) and agent_guests.c (the guests: HA records, placement,
 * VMM supervision, fencing, recovery). One qb_loop thread touches it.
 */
#ifndef PVHA_AGENT_H
#define PVHA_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#include "agent_config.h"
#include "proto/api.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "pvcluster/corosync.h"
#include "pvstore/pvstore.h"

/* A node's maintenance mode (pvha node drain / resume), kept in its node
 * record so that it outlives any agent. */
enum node_mode {
	NODE_ACTIVE = 0,      /* takes guests */
	NODE_DRAINING = 1,    /* its guests are being migrated away; nothing new goes there */
	NODE_MAINTENANCE = 2, /* drained: runs nothing, gets nothing until resumed */
};

struct peer {
	enum node_mode mode;
	bool hello;      /* a NodeHello arrived from it in this membership */
	char name[64];
	char addr[64];   /* kept after it leaves: a fence needs it */
	char incarnation[64];
	uint64_t mem_bytes;
	uint32_t cpus;
	bool fenced;     /* fence confirmed, not yet back */
	bool has_state;  /* its last hello said its guest table is the cluster's */
	bool storage_bad; /* its last hello said it cannot write to RADOS */
	size_t n_running; /* guests its last hello said it runs */
	bool unfencing;   /* this leader sent its unfence, not yet delivered */
};

struct guest_table;

struct agent {
	qb_loop_t *loop;
	struct agent_config cfg;
	char incarnation[64];
	struct pvstore *st;
	struct event_queue *evq; /* event-log appends, off the loop */
	bool storage_ok;
	struct pvclus_cs *cs;
	qb_loop_timer_handle reconnect_timer;
	uint32_t local;
	uint32_t members[PVCLUS_MAX_NODES];  /* nodes whose agent is in the CPG group */
	size_t nmembers;
	uint32_t ring[PVCLUS_MAX_NODES];     /* nodes in the totem ring */
	size_t nring;
	bool have_ring;
	uint64_t ring_id;
	bool quorate;
	uint32_t leader;
	struct pvclus_cs_node nodes[PVCLUS_MAX_NODES];
	int nnodes;
	struct peer peers[PVCLUS_MAX_NODES]; /* by index in nodes[] */
	qb_ipcs_service_t *ipcs;
	struct guest_table *guests;
};

const char *agent_node_name(const struct agent *a, uint32_t id);

/* Recomputes the leader: the lowest member of a quorate partition that is not
 * fenced (0: none). Call it when the membership, quorum or fences change. */
void agent_update_leader(struct agent *a);

/* True when this agent is the leader and may act as one (a joiner waits for
 * the table that tells it which nodes are fenced). */
bool agent_leads(const struct agent *a);
struct peer *agent_peer(struct agent *a, uint32_t id);

/* Node i of the nodelist can take guests now: its agent is a member, said
 * hello and reaches the storage. */
bool agent_node_online(struct agent *a, int i);

/* CLOCK_MONOTONIC in ms: deadlines and timers of the agent. */
uint64_t agent_now_ms(void);
bool agent_is_member(const struct agent *a, uint32_t id);

/* Appends to the cluster event log; a failure is logged, never fatal. */
void cluster_event(struct agent *a, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Multicasts a cluster message to every agent. Returns 0 or -errno. */
int agent_send(struct agent *a, Pvha__ClusterMsg *msg);

/* Sends this node's NodeHello (its name, address, resources, the guests it
 * runs): on every membership change, and again whenever a VMM ends, so that
 * the leader sees a fenced node that has stopped running guests. */
void agent_send_hello(struct agent *a);

/* What this node offers guests: guest_mem / guest_cpus, else the host's. */
uint64_t agent_mem_offered(const struct agent *a);
uint32_t agent_cpus_offered(const struct agent *a);

/* ---- agent_guests.c ------------------------------------------------------ */

/* Loads the registry into a table of stopped records. Returns 0 or -errno. */
int guests_init(struct agent *a);

/* Nodes left the ring (down or cut off): NODE_LEFT for every guest. */
void guests_on_nodes_left(struct agent *a, const uint32_t *left, size_t nleft);

/* The agents' membership changed. An agent without the cluster's state (just
 * started, or back from a partition that lost quorum) then waits for a table
 * (see guests_on_hello). */
void guests_on_members(struct agent *a);

/* A NodeHello arrived (in CPG order): when it comes from an agent without
 * state, the lowest member with state sends its table — the state at this
 * point of the message order. */
void guests_on_hello(struct agent *a, uint32_t from, bool has_state);

/* Whether this agent's table is the cluster's (for its hello). */
bool guests_have_state(const struct agent *a);

/* This partition lost or regained quorum. */
void guests_on_quorum(struct agent *a, bool quorate);

/* A guest message from CPG (GuestAdd, GuestEvent, NodeFenced, GuestTable). */
void guests_on_message(struct agent *a, uint32_t from, const Pvha__ClusterMsg *msg);

/* Guest operations of the control API. Fills rep (its guests point into
 * static storage valid until the next call). */
void guests_api(struct agent *a, const Pvha__ApiRequest *req, Pvha__ApiReply *rep, char *msg,
		size_t msglen);

/* Reads what could not be read while the registry was out of reach: specs of
 * tabled guests, and guests registered meanwhile. */
void guests_refresh(struct agent *a);

/* pvhad.c: the storage is usable (again): (re)writes this node's record. */
void agent_storage_ready(struct agent *a);

/* Finds a guest by name or uuid. Returns 0 or -ENOENT. */
int guests_lookup(struct agent *a, const char *name_or_uuid, uint8_t uuid[16]);

/* Installs the SIGCHLD watch over this node's VMMs. */
void guests_start_supervision(struct agent *a);

/* The leader: a fenced node came back and runs no guest: lift its fence. */
void guests_unfence(struct agent *a, uint32_t node);

/* This agent just became the leader: fence again every node that a guest in
 * fence-wait still waits for (the previous leader may have died fencing). */
void guests_leader_takeover(struct agent *a);

/* The leader lifts the fence of every member whose hello says it runs no
 * guest and is fenced or cannot reach the storage (a node fenced before a
 * whole-cluster restart comes back blocklisted, and nobody remembers it). */
void agent_check_unfence(struct agent *a);

/* This node's storage works or stopped working: says so in a hello when it
 * changed. */
void agent_set_storage_ok(struct agent *a, bool ok);

/* The guests this node runs (uuids), for its NodeHello. */
size_t guests_running_here(struct agent *a, ProtobufCBinaryData *out, size_t max);

#endif
