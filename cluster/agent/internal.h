/*
 * The agent object's insides (pvcluster/agent.h), shared by its parts:
 *   agent.c    membership, quorum, the leader, hellos, the node record,
 *              messages in, the cluster status and event API
 *   guests.c   the guest table: HA records, messages, this node's VMMs,
 *              tables for joiners, the guest API
 *   fence.c    the leader's fencing of nodes that left
 *   sched.c    the leader's placement decisions
 *   migrate.c  live migrations, node modes, drains, rebalancing
 *   rules.c    who may send which cluster message
 *   keys.c     each guest's own cephx user, made before its VMM starts
 *              (after table.c in the layers: docs/agent.md, "The files")
 * Private to libpvagent; one thread touches it (see agent.h).
 */
#ifndef PVCLUS_AGENT_INTERNAL_H
#define PVCLUS_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/api.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "pvcluster/agent.h"
#include "pvcluster/corosync.h"
#include "pvcluster/ha.h"
#include "pvcluster/placement.h"
#include "pvcluster/sched.h"
#include "pvstore/pvstore.h"

#define MAX_GUESTS 1024
#define HELD_MAX 4096
#define PLAN_MAX_MOVES 64
#define AGENT_VIEW_RULES_MAX (MAX_GUESTS * PVCLUS_GUEST_RULES_MAX)
#define FENCE_EXPIRE_S 3600 /* a storage fence's blocklist entry lapses after this */

/* ---- nodes ----------------------------------------------------------------- */

/* A node's maintenance mode is the storage's (pvstore_node_mode): kept in
 * RADOS so that it outlives any agent. */
#define NODE_ACTIVE PVSTORE_NODE_ACTIVE
#define NODE_DRAINING PVSTORE_NODE_DRAINING
#define NODE_MAINTENANCE PVSTORE_NODE_MAINTENANCE

struct peer {
	enum pvstore_node_mode mode;
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
	bool no_blocklist; /* its fence was confirmed without a blocklist entry (NodeFenced) */
	bool unfencing;   /* this leader sent its unfence, not yet delivered */
};

/* One fence of a node by this leader (fence.c). */
struct fence_op {
	bool active;
	uint32_t node;
	char addr[64];
	bool blocklisted;
	bool job;             /* its storage job is out */
	pid_t pid;            /* the power fence program, while it runs */
	bool timed_out;
	/* A blocklist entry of it may exist or still be committed by the
	 * monitor (this agent sent an add, or an earlier leader may have): kept
	 * across fences until a removal this agent sent after it succeeds
	 * (docs/agent.md "A fence the monitor commits late"). */
	enum { ADD_SETTLED, ADD_SENT, ADD_MAYBE_EARLIER_LEADER, ADD_TIMED_OUT } unresolved;
	int tries;
	uint64_t started_ms;
	uint64_t begun_ms;    /* when this fence began */
	uint64_t timer;
	struct pvclus_agent *agent;
};

/* The two-node tie-breaker (tiebreak.c). */
enum tb_state { TB_IDLE, TB_TRYING, TB_WON, TB_LOST };
struct tiebreak {
	enum tb_state state;
	bool job;            /* a take, yield or read is out */
	uint32_t round;      /* one per split; the cookie is "<incarnation>.<round>" */
	char cookie[64];
	char holder[64];     /* lost: the winner's cookie */
	bool yielded;        /* lost: this node's yield is written */
	bool peer_yielded;   /* won: the loser's yield names this round */
	uint64_t won_ms;
	uint64_t timer;
};
#define TB_YIELD_WAIT_MS 1000 /* the winner waits this long for the loser's yield */

/* ---- guests ---------------------------------------------------------------- */

#define HB_HISTORY_MAX PVSTORE_HEARTBEAT_RESETS_MAX

/* What this node keeps of one guest's heartbeat (heartbeat.c). */
struct hb_guest {
	uint64_t resets_ms[HB_HISTORY_MAX]; /* restarts in place here for a lost heartbeat, oldest first */
	unsigned n_resets;
	bool killing;                       /* its VMM is being killed for a lost heartbeat... */
	enum pvclus_ha_heartbeat_step step; /* ... and its exit reports this step */
};

struct guest {
	bool used;
	bool spec_loaded;      /* false: only the uuid is known (the registry was out of reach) */
	struct pvstore_guest spec;
	struct pvclus_ha_guest ha;
	/* this node's VMM, when it runs one for this guest */
	pid_t pid;
	bool start_reported;   /* STARTED sent */
	bool stopping;         /* we asked it to stop */
	bool adopted;          /* started by an earlier agent: not our child, watched by polling */
	uint64_t spawn_ms;
	uint64_t timer;
	struct pvclus_agent *agent; /* for timer callbacks */
	/* storage jobs in flight for it */
	bool loading;          /* its spec is being read */
	bool load_again;       /* ... and it changed meanwhile: read it again after */
	bool start_job;        /* a start's lock clearing (and spec read) runs */
	bool start_cancelled;  /* ... and it was stopped meanwhile: do not spawn */
	bool persisting;       /* its desired state is being written */
	bool persist_again;    /* ... and it changed meanwhile */
	bool addr_up;          /* this node carries its address (for its VMM here) */
	char ceph_key[PVSTORE_KEY_MAX]; /* its cephx user's key ("": not known here yet, keys.c) */
	bool key_job;          /* a job making or reading it is out */
	struct hb_guest hb;    /* heartbeat monitoring here (heartbeat.c) */
	/* what the API shows of its history (every node applies the same steps) */
	uint32_t migrations;   /* migrations started since this agent knew it */
	char last_step[256];   /* the latest transition, as the event log words it */
};

/* A guest message that reached a joiner before the table it waits for. */
struct held {
	uint32_t from;
	uint32_t leader; /* the leader when it was delivered (rules.c) */
	uint64_t at_ms;  /* when it was delivered */
	size_t len;
	uint8_t *data;
};

/* What the leader's scheduler keeps per table entry besides the HA record (sched.c). */
struct note {
	bool used;
	uint8_t uuid[16];
	/* leader */
	bool pending;           /* a PLACE action asked for it: answer even if nothing changed */
	uint32_t promised;      /* PLACED sent to this node, not applied yet */
	uint64_t promised_ms;
	int last_sent;          /* the last UNPLACEABLE reason sent (-1: none since it was placed) */
	bool waiting_dep;       /* "waiting" logged for waiting_on */
	uint64_t not_before_ms; /* a start failed for a reason not its own: not placed before */
	uint8_t waiting_on[16];
	/* every agent */
	uint32_t unplaceable;   /* the scheduler's last reason for it (0: none) */
	/* agent_sched_fill_info's storage */
	Pvha__GuestRule rule_msg[PVSTORE_GUEST_RULES_MAX];
	Pvha__GuestRule *rule_ptr[PVSTORE_GUEST_RULES_MAX];
	char dep_name[PVSTORE_GUEST_DEPS_MAX][PVSTORE_NAME_MAX + 1];
	char *dep_ptr[PVSTORE_GUEST_DEPS_MAX];
	char waiting[160];
};

/* What this agent knows of one guest's migration, by its slot in the table (migrate.c). */
struct mig {
	/* everyone: the request (MigrateRequest) and the last progress */
	uint32_t downtime_ms;
	uint8_t key[32];        /* the link's secret (the source and the target use it) */
	size_t key_len;
	char why[64];
	bool have_progress;
	Pvha__MigrationInfo info;
	char phase[16], error[256], src_name[64], dst_name[64];
	/* the source (this node owns the guest) */
	bool src_active;
	uint32_t src_target;
	bool handed_over_sent;
	bool stop_sent;
	bool cancel_sent;
	uint64_t last_progress_ms;
	uint64_t src_timer;
	/* the target */
	bool incoming;
	bool ready_sent;
	bool never_began_sent; /* the source left before the incoming VMM was spawned: said so */
	uint32_t in_source;
	uint64_t in_spawn_ms;
	uint64_t in_timer;
	/* the leader */
	uint64_t drain_asked_ms;
	uint64_t rebalanced_ms;
};

/*
 * The scheduler's view of the cluster as this agent sees it. view points
 * into the struct itself: fill it in place (agent_sched_view) and do not
 * copy or move it afterwards. About 1 MiB: on the heap, never on the stack.
 */
struct agent_view {
	struct pvclus_view view;       /* what pvclus_sched_* take: nodes and rules below */
	struct pvclus_node nodes[PVCLUS_MAX_NODES];
	struct pvclus_rule rules[AGENT_VIEW_RULES_MAX];
	struct placement_rule_def defs[AGENT_VIEW_RULES_MAX]; /* rules[i] is defs[i] (id i + 1) */
	/* guests[i] is the table entry of[i]; n_guests of them. */
	struct pvclus_sched_guest guests[MAX_GUESTS];
	struct guest *of[MAX_GUESTS];
	size_t n_guests;
};

/* Reply storage of the control API: valid until the next request. */
struct api_bufs {
	Pvha__ClusterStatus status;
	Pvha__NodeInfo infos[PVCLUS_MAX_NODES];
	Pvha__NodeInfo *info_ptrs[PVCLUS_MAX_NODES];
	struct pvstore_event evs[1000];
	Pvha__EventInfo einfo[1000];
	Pvha__EventInfo *eptrs[1000];
	Pvha__GuestInfo guests[MAX_GUESTS];
	Pvha__GuestInfo *guest_ptrs[MAX_GUESTS];
	char uuids[MAX_GUESTS][PVSTORE_UUID_STR];
	Pvha__RebalancePlan plan;
	Pvha__PlannedMove moves[MAX_GUESTS];
	Pvha__PlannedMove *move_ptrs[MAX_GUESTS];
	char why[MAX_GUESTS][128];
	char *why_ptrs[MAX_GUESTS];
};

/* ---- the object ------------------------------------------------------------ */

struct pvclus_agent {
	struct pvclus_agent_config cfg;
	const struct pvclus_agent_ops *ops;
	void *ctx;
	struct pvstore *st;
	bool storage_ok;
	/* the node record's rewrite after an unfence (agent.c) */
	uint64_t storage_timer;
	bool storage_timer_armed;
	int storage_tries;

	/* membership (agent.c) */
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
	bool modes_read;
	bool was_leading;    /* agent_leads() when agent_lead_check last looked */
	bool replaying;      /* replay_held runs: the takeover waits for its end */
	bool reconciled;     /* what runs here was checked against a table (reconcile_here) */

	/* the guest table (guests.c) */
	struct guest g[MAX_GUESTS];
	bool have_state;     /* this table is the cluster's */
	bool seen_others;    /* this agent has been in a membership with another */
	bool awaiting;       /* without state, in a membership with others: a table is due */
	bool waiting_storage; /* awaiting, and the table timed out without the storage */
	uint64_t await_timer;
	uint64_t quorate_ms;  /* when quorum last came back */
	struct held held[HELD_MAX];
	size_t nheld;
	uint32_t held_leader; /* while replaying: the leader when the message replayed was delivered */

	/* fencing (fence.c) */
	struct fence_op fences[PVCLUS_MAX_NODES]; /* by index in nodes[] */
	uint64_t unfence_timer; /* the retry of a failed unfence */
	bool unfence_timer_armed;
	struct tiebreak tb;

	/* placement (sched.c) */
	struct note notes[MAX_GUESTS];
	bool place_queued;
	uint64_t retry_timer;
	uint64_t busy_timer;    /* the next paced placement (note.not_before_ms) */
	bool busy_timer_armed;
	struct agent_view *sched_view;
	struct pvclus_placement sched_out[MAX_GUESTS];

	/* migrations, modes, rebalancing (migrate.c) */
	struct mig migs[MAX_GUESTS];
	uint64_t pump_timer;
	uint64_t last_rebalance_ms;
	uint64_t rebalance_checks;
	double last_imbalance;
	struct agent_view *mig_view;
	struct pvclus_placement mig_out[MAX_GUESTS];
	struct pvclus_move mig_moves[PLAN_MAX_MOVES];
	bool mode_busy[PVCLUS_MAX_NODES];  /* a node's new mode is being written */

	/* heartbeat monitoring (heartbeat.c) */
	uint64_t hb_timer;
	bool hb_timer_armed;

	/* scratch */
	const struct pvstore_guest *specs[MAX_GUESTS];
	struct api_bufs api;
};

/* The two-node tie-breaker's state, read by the lower layers (the leader
 * choice, fencing); tiebreak.c, above guests.c, changes it. */

/* A two-node cluster whose ring holds this node only. */
static inline bool agent_tiebreak_split(const struct pvclus_agent *a)
{
	return a->nnodes == 2 && a->have_ring && a->nring == 1;
}

/* This half of a split does not hold the tie-break (yet): it acts as without
 * quorum. */
static inline bool agent_tiebreak_lost(const struct pvclus_agent *a)
{
	return a->tb.state == TB_LOST || a->tb.state == TB_TRYING;
}

enum tb_gate { TB_GATE_FENCE, TB_GATE_WAIT, TB_GATE_YIELDED };

/* Whether a fence may go on: FENCE (by the blocklist), WAIT (the tie-break
 * kicks it later: agent_fence_kick) or YIELDED (the loser runs no VMM:
 * confirmed as it is). now_ms: the agent's clock. */
static inline enum tb_gate agent_tiebreak_gate(const struct pvclus_agent *a, uint64_t now_ms)
{
	if (!agent_tiebreak_split(a) || a->tb.state == TB_IDLE)
		return TB_GATE_FENCE;
	if (a->tb.state != TB_WON)
		return TB_GATE_WAIT;
	if (a->tb.peer_yielded)
		return TB_GATE_YIELDED;
	return now_ms < a->tb.won_ms + TB_YIELD_WAIT_MS ? TB_GATE_WAIT : TB_GATE_FENCE;
}

/* The files below are layered: each calls only the ones listed before it
 * (docs/agent.md, "The files"). */

/* ---- core.c: ops, nodes, peers, who leads, events, sending --------------- */

void agent_log(struct pvclus_agent *a, enum pvclus_log_level lvl, const char *func, int err, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
#define alog_err(a, err, ...) agent_log((a), PVCLUS_LOG_ERROR, __func__, (err), __VA_ARGS__)
#define alog_warn(a, ...) agent_log((a), PVCLUS_LOG_WARN, __func__, 0, __VA_ARGS__)
#define alog_info(a, ...) agent_log((a), PVCLUS_LOG_INFO, __func__, 0, __VA_ARGS__)
#define alog_debug(a, ...) agent_log((a), PVCLUS_LOG_DEBUG, __func__, 0, __VA_ARGS__)

/* Submits a storage job; when it cannot be queued, its done runs at once
 * with the error. */
void agent_submit(struct pvclus_agent *a, struct pvclus_job *j);
/* In a job's run: records a failed pvstore call (err, pvstore_errmsg). */
void agent_job_fail(struct pvclus_job *j, int err);

/* The ops, with the context. */
uint64_t agent_now_ms(struct pvclus_agent *a);
/* What a VMM that ended before it ran the guest (exit status code) says
 * of the start: -EBUSY (the owner lock is held elsewhere), -ETIMEDOUT (the
 * storage did not answer): neither is the guest's fault (pvclus_ha_transient);
 * anything else -EIO. */
int agent_vmm_start_error(int code);
void agent_timer(struct pvclus_agent *a, uint64_t ms, void (*fn)(void *), void *arg, uint64_t *id);
void agent_timer_del(struct pvclus_agent *a, uint64_t *id);

const char *agent_node_name(const struct pvclus_agent *a, uint32_t id);
/* The index of a node in nodes[] by id or name, or -1. */
int agent_node_index(const struct pvclus_agent *a, uint32_t id);
int agent_node_by_name(const struct pvclus_agent *a, const char *name);
struct peer *agent_peer(struct pvclus_agent *a, uint32_t id);
bool agent_is_member(const struct pvclus_agent *a, uint32_t id);
/* Whether node id is in the totem ring (true before the first ring is known:
 * the ring may say a node is gone before CPG does). */
bool agent_in_ring(const struct pvclus_agent *a, uint32_t id);
bool agent_in_list(const uint32_t *ids, size_t n, uint32_t id);

/* True when this agent is the leader and may act as one: it holds the
 * cluster's table (a joiner waits for the table that tells it which nodes are
 * fenced). */
bool agent_leads(const struct pvclus_agent *a);

/* Node i of the nodelist can take guests now: it is in the ring, its agent is a member, said
 * hello and reaches the storage. */
bool agent_node_online(const struct pvclus_agent *a, int i);

/* Appends to the cluster event log (and this node's log). */
void cluster_event(struct pvclus_agent *a, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Appends to a guest's event log (and this node's log). */
void guest_event(struct pvclus_agent *a, const uint8_t uuid[16], const char *what, const char *why);

/* Multicasts a cluster message to every agent. Returns 0 or -errno. */
int agent_send(struct pvclus_agent *a, Pvha__ClusterMsg *msg);

/* ---- rules.c: who may send which cluster message ------------------------- */

/*
 * Whether node `from` may send msg, judged on what every agent shares at this
 * point of the message order (nodelist, membership, leader, fences, HA
 * records): 0, or -EPERM with the reason in why. The rules are in
 * docs/agent.md, "Who may send what". Pure; O(G) for a MigrateReady (G
 * tabled guests), O(N) otherwise.
 */
int agent_msg_check(const struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg, char *why,
		    size_t whylen);

/* agent_msg_check, with one log line naming the sender and the kind of a
 * dropped message. True: act on it. */
bool agent_msg_allowed(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg);

/* The address a fence of node i (its index in nodes[]) blocklists: its
 * ring0_addr in Corosync's nodelist when that is an IP address (the static
 * configuration, never what a hello or a NodeFenced message says), else ""
 * (the fence then reads it from the node's record in RADOS). */
void agent_fence_addr(const struct pvclus_agent *a, int i, char *out, size_t outlen);

/* ---- table.c: lookups, events sent, addresses, VMMs spawned, the hello --- */

/* Tables a guest with this spec (stopped; its spec loaded), or returns the
 * one tabled with its uuid; NULL when the table is full. */
struct guest *guests_add(struct pvclus_agent *a, const struct pvstore_guest *spec);

/* Sends this node's NodeHello (its name, address, resources, the guests it
 * runs): on every membership change, and again whenever a VMM ends, so that
 * the leader sees a fenced node that has stopped running guests. */
void agent_send_hello(struct pvclus_agent *a);

/* Carries (up) or drops g's address on this node, when it has one. Returns
 * 0, or -errno when it could not be carried (logged). */
int guests_address(struct pvclus_agent *a, struct guest *g, bool up);

/* 0 when spec's address is none or valid and no other tabled guest has it;
 * else -EINVAL / -EEXIST with a message. */
int guests_address_free(struct pvclus_agent *a, const struct pvstore_guest *spec, char *msg, size_t msglen);

/* Has every agent table the guest and (re)read its spec (GuestAdd). */
void guests_announce(struct pvclus_agent *a, const struct pvstore_guest *spec);

/* Finds a guest by name or uuid. Returns 0 or -ENOENT. */
int guests_lookup(struct pvclus_agent *a, const char *name_or_uuid, uint8_t uuid[16]);

/* The guest with this uuid / this name or uuid (text), or NULL. */
struct guest *guests_find(struct pvclus_agent *a, const uint8_t uuid[16]);
struct guest *guests_by_name(struct pvclus_agent *a, const char *name_or_uuid);

/* Starts this node's pvha-vmm for the guest (its pid in g->pid): a fresh
 * start from its image (its bytes when read from RADOS for this start, else
 * NULL: the embedder has it cached), or with incoming ("HOST:PORT") a migration target
 * that waits for the source (watched by migrate.c, not by the start
 * check). Returns 0 or -errno. */
int guests_spawn_vmm(struct pvclus_agent *a, struct guest *g, const char *incoming, const void *image,
		     size_t image_len);
/* The same for a migration target, with the link's secret. */
int guests_spawn_incoming(struct pvclus_agent *a, struct guest *g, const char *incoming, const uint8_t *key,
			  size_t key_len);

/* Multicasts one HA event of a guest (applied by every agent in CPG order). */
void guests_send_event(struct pvclus_agent *a, const uint8_t uuid[16], enum pvclus_ha_event_type type,
		       uint32_t node, bool crashed, int err, uint32_t detail);

/* The guests this node runs (uuids), for its NodeHello. */
size_t guests_running_here(struct pvclus_agent *a, ProtobufCBinaryData *out, size_t max);

/* ---- keys.c: each guest's cephx user ------------------------------------ */

/* (On a storage worker.) Makes guest uuid's user, or reads its key when it
 * exists, into key. Returns 0 or -errno (the job's errmsg says why). */
int agent_key_run(struct pvstore *st, const uint8_t uuid[16], char key[PVSTORE_KEY_MAX], struct pvclus_job *j);
/* Keeps a key a job read in g's entry (an empty one: nothing). */
void agent_key_keep(struct guest *g, const char key[PVSTORE_KEY_MAX]);
/* (On a storage worker.) Deletes guest uuid's user (none: fine). */
int agent_key_remove_run(struct pvstore *st, const uint8_t uuid[16], struct pvclus_job *j);
/* True when g's key is known here. Else submits a job that makes or reads
 * it (one at a time per guest) and returns false; that job's done calls
 * then(a, g, err) with g's key kept (err 0) or not, if g is still tabled. */
bool agent_key_then(struct pvclus_agent *a, struct guest *g,
		    void (*then)(struct pvclus_agent *a, struct guest *g, int err));

/* ---- fence.c: fencing and unfencing nodes -------------------------------- */

/* The leader: a fenced node came back and runs no guest: lift its fence. */
void agent_unfence(struct pvclus_agent *a, uint32_t node);
/* The leader lifts the fence of every member whose hello says it runs no
 * guest and is fenced or cannot reach the storage or is held (a node fenced before a
 * whole-cluster restart comes back blocklisted, and nobody remembers it). */
void agent_check_unfence(struct pvclus_agent *a);
/* Whether this leader holds node out of placement: a fence of it is under
 * way, or a blocklist add of it may still be committed by the monitor. */
bool agent_fence_holds(const struct pvclus_agent *a, uint32_t node);
/* The same, or fenced and not lifted: nothing may be placed on it. */
bool agent_node_held(const struct pvclus_agent *a, uint32_t node);

/* This agent just became the leader: fence again every node that a guest in
 * fence-wait still waits for (the previous leader may have died fencing). */
void agent_fence_takeover(struct pvclus_agent *a);

/* Starts fencing node (a no-op while a fence of it is in progress). */
void agent_fence(struct pvclus_agent *a, uint32_t node);

/* Steps on every fence waiting for the tie-break. */
void agent_fence_kick(struct pvclus_agent *a);

/* A child ended: true when it was a fence program (then handled). */
bool agent_fence_reaped(struct pvclus_agent *a, pid_t pid, int wait_status);

/* ---- sched.c: placement (the leader's scheduler) ------------------------- */

/*
 * Fills *out from the agent's state:
 *  - nodes: every configured node by Corosync id; online = an agent member
 *    that said hello and reaches the storage, fenced = fence confirmed and
 *    not lifted, maintenance = draining or in maintenance; capacity from its
 *    hello (1 byte / 1 CPU when unknown: such a node is offline anyway);
 *    mem_used and cpu_used = the guests below plus every migration target's
 *    incoming guest (1 CPU per guest);
 *  - rules: derived from the specs of every guest in the table
 *    (placement_rules_derive: distinct (anti, group) pairs, sorted, ids
 *    1..N; hard unless every member says soft);
 *  - guests: every guest that runs or is placed (its HA owner; a migrating
 *    guest at its source), plus those this leader placed whose PLACED is
 *    not yet delivered, each with node set, its rules, memory, 1 CPU, its
 *    priority and avoid node; pinned false. Unplaced guests are not in it:
 *    add the ones to place with agent_sched_view_add().
 * Returns 0, or -ENOSPC / -ENOMEM (rule derivation; cannot happen with the
 * table's limits). O(G log G + N) for G guests, N nodes.
 */
int agent_sched_view(struct pvclus_agent *a, struct agent_view *out);

/*
 * Appends g to v->guests with node 0 (to be placed), its rules resolved
 * against v's rules. Returns its index, or -EINVAL (its spec is not loaded:
 * it cannot be placed yet), -EEXIST (already in the view) or -ENOSPC. O(G).
 */
int agent_sched_view_add(struct pvclus_agent *a, struct agent_view *v, struct guest *g);

/* PLACE action (leader): target waits for a node. Placement runs once the
 * current input is handled, for every guest waiting then, in one scheduler
 * call; the outcome is multicast (PLACED, or UNPLACEABLE with the
 * scheduler's reason). */
void agent_place(struct pvclus_agent *a, struct guest *target);

/* Places the waiting guests once the current input is handled (leader). */
void agent_sched_kick(struct pvclus_agent *a);

/* Arms the timer for the earliest placement paced after a failed start
 * (note.not_before_ms): a new leader calls it, so do place_waiting and the
 * failure itself. */
void agent_sched_paced(struct pvclus_agent *a);

/* Starts the leader's retry timer (every 2 s: guests still waiting for a node
 * or a dependency are tried again). */
void agent_sched_init(struct pvclus_agent *a);

/* Every agent, before g->ha becomes next (the step of ev): keeps the
 * scheduler's last reason for the guest's `waiting` info, and on the leader
 * places the guests waiting for g when g starts running or stops being
 * wanted. O(1); the placement runs after the current input. */
void agent_sched_on_step(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_guest *next,
			 const struct pvclus_ha_event *ev);

/* Adds rules, dependencies and `waiting` to a guest's info (its pointers stay
 * valid until the next call for the same table entry). */
void agent_sched_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi);

/*
 * Sets spec's rules (with_rules) and dependencies (with_deps) from the API
 * (GuestSpecIn, GuestSetIn): at most 4 rules, each group a valid name, no
 * (group, anti) pair twice; at most 8 dependencies, each a tabled guest (name
 * or uuid), not spec itself, none twice, and no cycle through spec. Then the
 * whole spec must pass pvstore_guest_check. Returns 0, or -EINVAL / -ENOENT /
 * -ELOOP with a message in msg naming what was wrong (spec may then be half
 * changed). O(G log G) for G tabled guests (the cycle check).
 */
int agent_sched_spec_from_api(struct pvclus_agent *a, struct pvstore_guest *spec, bool with_rules,
			      Pvha__GuestRule *const *rules, size_t n_rules, bool with_deps,
			      char *const *deps, size_t n_deps, char *msg, size_t msglen);

/* ---- migrate.c: live migrations, node modes, rebalancing ----------------- */

/* Starts the leader's pump. */
void agent_migrate_init(struct pvclus_agent *a);

/* The migration actions of a step (MIGRATE, ABORT_MIGRATION, PLACE_MIGRATION). */
void agent_migrate_action(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_action *act,
			  bool leader);

/* After every HA step of a guest: a source still sending to a target that
 * left the membership (the guest waits in fence-wait for the source's word)
 * gives the migration up, so that the guest runs on here. */
void agent_migrate_after_step(struct pvclus_agent *a, struct guest *g);

/* This node is g's migration target and runs an adopted VMM for it (the
 * agent restarted mid-migration): watch it as an incoming VMM again, so that
 * MIGRATE_DONE (or its failure) is reported. */
void agent_migrate_watch_incoming(struct pvclus_agent *a, struct guest *g);

/* The guest is gone from the table: its slot starts afresh. */
void agent_migrate_forget(struct pvclus_agent *a, const struct guest *g);

/* A VMM of this node ended: true when it belonged to a migration and was
 * reported here. */
bool agent_migrate_vmm_ended(struct pvclus_agent *a, struct guest *g, int code);

/* NodeMode, MigrateReady, MigrateProgress, MigrateRequest. */
void agent_migrate_message(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg);

/* Adds the migration fields to a guest's info (the pointers stay valid until
 * the next call for the same guest). */
void agent_migrate_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi);

/* NODE_DRAIN, NODE_RESUME, GUEST_MIGRATE, CLUSTER_REBALANCE. */
int agent_migrate_api(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep,
		      char *msg, size_t msglen);

/* The automatic rebalancer's part of the cluster status. */
void agent_migrate_status(struct pvclus_agent *a, Pvha__ClusterStatus *s);

/* Re-reads the node modes from RADOS (after this agent took a table). */
void agent_migrate_reload_modes(struct pvclus_agent *a);

/* The number of guests whose HA record names the node (owner or target). */
unsigned agent_migrate_guests_on(struct pvclus_agent *a, uint32_t node);

/* ---- heartbeat.c: guest heartbeat monitoring (docs/heartbeat.md) --------- */

/* A guest's heartbeat policy, resolved: its own settings, else this node's
 * (pvhad.conf), else PVCLUS_HB_DEFAULT_*. timeout_s 0: not monitored. */
struct hb_policy {
	uint32_t timeout_s;
	uint32_t max_resets; /* restarts in place within window_s before a move */
	uint32_t window_s;
};

void heartbeat_policy(const struct pvclus_agent_config *cfg, const struct pvstore_guest *spec,
		      struct hb_policy *out);

/*
 * Pure: what to do with a guest whose heartbeat stopped at now_ms, given the
 * times of the n restarts in place this node made for it (resets_ms, any
 * order, this node's clock) and whether it was moved for a lost heartbeat
 * since the last start request (moved): RESTART while fewer than
 * p->max_resets of those restarts lie within the last p->window_s seconds,
 * else MOVE, or ERROR when it was moved already. *recent (may be NULL) gets
 * that count. Returns 0, or -EINVAL (NULL policy or step, n above
 * HB_HISTORY_MAX, max_resets 0 or above HB_HISTORY_MAX, window 0, a restart
 * after now_ms). O(n).
 */
int heartbeat_decide(const struct hb_policy *p, const uint64_t *resets_ms, size_t n, uint64_t now_ms, bool moved,
		     enum pvclus_ha_heartbeat_step *step, unsigned *recent);

/* Starts watching g's heartbeat when this node should: g runs here with a
 * timeout (one timer for all guests, every 500 ms, only while one is
 * watched). Called after each HA step of g and when its spec is read again
 * (the timeout may be new). */
void heartbeat_watch(struct pvclus_agent *a, struct guest *g);

/* After every HA step of g (guests.c's apply): heartbeat_watch, and a start
 * or stop request forgets the restarts counted. */
void heartbeat_after_step(struct pvclus_agent *a, struct guest *g, const struct pvclus_ha_event *ev);

/* g's VMM ended: true when this node killed it for a lost heartbeat; then
 * *step is its decision, which the caller reports as HEARTBEAT_LOST (nothing
 * else is to be reported), after clearing the killed VMM's owner lock when
 * the guest leaves this node (another node cannot break the lock of a live
 * member's boot). */
bool heartbeat_vmm_ended(struct pvclus_agent *a, struct guest *g, enum pvclus_ha_heartbeat_step *step);

/* GUEST_SET: applies the heartbeat settings `in` gives to want (when not
 * NULL). True when it gives any. */
bool heartbeat_set_from_api(struct pvstore_guest *want, const Pvha__GuestSetIn *in);

/* Copies the heartbeat settings of src to dst. */
void heartbeat_copy_settings(struct pvstore_guest *dst, const struct pvstore_guest *src);

/* "; heartbeat timeout T s, N restart(s) in W s" (the policy in effect) into buf. */
void heartbeat_describe(struct pvclus_agent *a, const struct pvstore_guest *spec, char *buf, size_t len);

/* Adds the heartbeat policy in effect and hb_moved to a guest's info. */
void heartbeat_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi);

/* ---- registry.c: the table filled from the registry ---------------------- */

/* Tables a guest by its uuid (and name, when known) and reads its spec from
 * the registry (a storage job). Returns the entry, or NULL (table full). */
struct guest *guests_load(struct pvclus_agent *a, const uint8_t uuid[16], const char *name);

/* Loads the registry into a table of stopped records. Returns 0 or -errno. */
int guests_init(struct pvclus_agent *a);

/* Reads what could not be read while the registry was out of reach: specs of
 * tabled guests, and guests registered meanwhile. */
void guests_refresh(struct pvclus_agent *a);

/* ---- leader.c: the leader choice, this node's record and standing -------- */

/* Writes this node's record (a storage job): the storage is usable once it
 * lands; with retry, tried again until it does. */
void agent_put_node_record(struct pvclus_agent *a, bool retry);

/* Recomputes the leader: the lowest member of a quorate partition that is not
 * fenced (0: none). Call it when the membership, quorum or fences change. */
void agent_update_leader(struct pvclus_agent *a);

/* When this agent has just begun to act as the leader (whatever made it so:
 * the membership, a table received, quorum), it fences again every node that
 * guests in fence-wait wait for and lifts stale fences. Call it after
 * anything that can change agent_leads(). */
void agent_lead_check(struct pvclus_agent *a);

/* The storage is usable (again): (re)writes this node's record, retrying
 * for a while (after an unfence the OSDs may hold the old map a moment). */
void agent_storage_ready(struct pvclus_agent *a);

/* This node's storage works or stopped working: says so in a hello when it
 * changed. */
void agent_set_storage_ok(struct pvclus_agent *a, bool ok);


/* ---- info.c: GuestInfo and late answers ---------------------------------- */

/* Fills gi with g's record, placement and migration; gi's strings point
 * into g and into uuid_buf (PVSTORE_UUID_STR bytes). */
void guests_fill_info(struct pvclus_agent *a, const struct guest *g, Pvha__GuestInfo *gi, char *uuid_buf);

/* The late answer to an API request about g (NULL, or err, for none). */
void guests_reply(struct pvclus_agent *a, void *token, struct guest *g, int err, const char *msg);

/* ---- set.c: guest set ---------------------------------------------------- */

/*
 * GUEST_SET: checks the change against the table, then (a storage job)
 * changes g's priority, rules or dependencies in its spec by compare-and-set
 * (re-read and retried on a race), has every agent reload it (GuestAdd) and
 * answers through ops->api_reply. A running guest is not moved; the new
 * rules bind its next placement. Returns -EINPROGRESS, or -errno with a
 * message in msg when the change is refused at once.
 */
int guests_set(struct pvclus_agent *a, struct guest *g, const Pvha__GuestSetIn *in, void *token,
			  char *msg, size_t msglen);

/* ---- guests.c: the HA steps, cluster messages, the guest API ------------- */

/* Nodes left the ring (down or cut off): NODE_LEFT for every guest. */
void guests_on_nodes_left(struct pvclus_agent *a, const uint32_t *left, size_t nleft);

/* The agents' membership changed. An agent without the cluster's state (just
 * started, or back from a partition that lost quorum) then waits for a table
 * (see guests_on_hello). */
void guests_on_members(struct pvclus_agent *a);

/* A NodeHello arrived (in CPG order): when it comes from an agent without
 * state, the lowest member with state sends its table — the state at this
 * point of the message order. */
void guests_on_hello(struct pvclus_agent *a, uint32_t from, bool has_state);

/* This partition lost or regained quorum. */
void guests_on_quorum(struct pvclus_agent *a, bool quorate);

/* Without the cluster's table: wait TABLE_WAIT_MS for one, then (quorate)
 * start from the registry. */
void guests_await_table(struct pvclus_agent *a);

/* A guest message from CPG (GuestAdd, GuestEvent, NodeFenced, GuestTable, ...). */
void guests_on_message(struct pvclus_agent *a, uint32_t from, const Pvha__ClusterMsg *msg);

/* Guest operations of the control API. */
int guests_api(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep,
	       char *msg, size_t msglen);

/* A child ended: true when it was one of this node's VMMs (then reported). */
bool guests_reaped(struct pvclus_agent *a, pid_t pid, int wait_status);

/* ---- tiebreak.c: the two-node tie-breaker -------------------------------- */

/* After each ring change (old_nring: the ring's size before): a two-node
 * split starts a round (both halves try the lock), a heal ends it. */
void agent_tiebreak_on_ring(struct pvclus_agent *a, size_t old_nring);

/* After quorum came: an agent that started during a split (quorate, its ring
 * holding it only) contends too. */
void agent_tiebreak_on_quorum(struct pvclus_agent *a);

#endif
