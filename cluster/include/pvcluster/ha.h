/*
 * The HA state machine of one guest: a pure function (record, event) ->
 * (record, actions). pvhad keeps one record per guest; every agent of the
 * quorate partition applies the same CPG-ordered events to the same records
 * and so computes the same records and the same actions. Each agent then
 * carries out only the actions addressed to it (see enum pvclus_ha_action_kind):
 * the node actions name the node that executes them, the rest are the
 * leader's. docs/ha-state-machine.md has the full table and the invariants.
 *
 * Who calls it: pvhad (the CPG delivery callback and its timers), the unit
 * tests. Nothing here does I/O, allocates, logs or keeps state: the same
 * inputs give the same outputs on every node, any thread may call it.
 *
 * The "never two copies" rules this machine keeps (the storage lock and the
 * blocklist enforce them again underneath; see DESIGN.md, Safety):
 *   - a start (START, RECOVER) is asked of a node only from `starting` or
 *     `recovering` after a placement, or in place on the node that already
 *     holds the lock (a crash restart);
 *   - a node that might run the guest or hold its lock and leaves the
 *     membership puts the guest in `fence-wait`; no start anywhere is asked
 *     before that node's fence is confirmed (NODE_FENCED);
 *   - `recovering` and every RECOVER action (break the fenced node's lock,
 *     take it, start) come only after a confirmed fence;
 *   - `running` has exactly one owner; `migrating` has one owner, the source,
 *     until the target reports it took the lock and resumed.
 */
#ifndef PVCLUSTER_HA_H
#define PVCLUSTER_HA_H

#include <stdbool.h>
#include <stdint.h>

/* A node is named by its Corosync node id; 0 means "no node". */

enum pvclus_ha_state {
	PVCLUS_HA_STOPPED = 0,  /* no copy runs; the guest waits for a start request */
	PVCLUS_HA_STARTING,     /* wants to run: waits for a placement (owner 0) or for its owner to start it */
	PVCLUS_HA_RUNNING,      /* runs on owner, which holds the lock */
	PVCLUS_HA_MIGRATING,    /* runs on owner (the source) and is being moved to target */
	PVCLUS_HA_STOPPING,     /* owner is stopping it; with want_running it is placed again afterwards */
	PVCLUS_HA_FENCE_WAIT,   /* a node that may run it left: nothing starts until it is fenced */
	PVCLUS_HA_RECOVERING,   /* its node was fenced: waits for a placement, or for owner to break the lock and start it */
	PVCLUS_HA_ERROR,        /* HA gave up (reason says why); no copy runs; a start or stop request clears it */
	PVCLUS_HA_STATE_COUNT
};

enum pvclus_ha_event_type {
	PVCLUS_HA_EV_START_REQ = 0,   /* user: desired state running */
	PVCLUS_HA_EV_STOP_REQ,        /* user: desired state stopped */
	PVCLUS_HA_EV_DELETE_REQ,      /* user: remove the guest (stopped or error only) */
	PVCLUS_HA_EV_PLACED,          /* leader's scheduler: start it on node */
	PVCLUS_HA_EV_UNPLACEABLE,     /* leader's scheduler: no node can take it now (detail: enum pvclus_sched_reason) */
	PVCLUS_HA_EV_STARTED,         /* node took the lock and the guest runs there */
	PVCLUS_HA_EV_START_FAILED,    /* node could not start it (err); it neither runs it nor holds the lock */
	PVCLUS_HA_EV_STOPPED,         /* node stopped it and released the lock */
	PVCLUS_HA_EV_VMM_EXITED,      /* the VMM on node ended by itself (crashed: false = the guest powered off) */
	PVCLUS_HA_EV_RUN_STABLE,      /* it has run long enough: the restart count starts over */
	PVCLUS_HA_EV_NODE_LEFT,       /* node left the membership */
	PVCLUS_HA_EV_NODE_FENCED,     /* node's fence is confirmed (blocklisted, and powered off when configured) */
	PVCLUS_HA_EV_QUORUM_LOST,     /* this partition lost quorum; node = the local node */
	PVCLUS_HA_EV_QUORUM_REGAINED, /* this partition is quorate again */
	PVCLUS_HA_EV_NODE_DRAIN,      /* node is draining: move its guests away */
	PVCLUS_HA_EV_MIGRATE_START,   /* leader: live-migrate it to node */
	PVCLUS_HA_EV_MIGRATE_HANDED_OVER, /* the source (node) released the lock to the target; it never resumes */
	PVCLUS_HA_EV_MIGRATE_DONE,    /* the target (node) took the lock and resumed it */
	PVCLUS_HA_EV_MIGRATE_FAILED,  /* node (source or target) abandoned the migration before the handover */
	PVCLUS_HA_EV_DEADLINE,        /* the current step's deadline passed (the agent's timer) */
	PVCLUS_HA_EV_HEARTBEAT_LOST,  /* node (the owner) killed the VMM of a running guest whose heartbeat
				       * stopped; detail: what it decided (enum pvclus_ha_heartbeat_step) */
	PVCLUS_HA_EV_COUNT
};

/* Why a transition happened: the reason of every event-log entry, and of an
 * `error` state. */
enum pvclus_ha_reason {
	PVCLUS_HA_R_NONE = 0,
	PVCLUS_HA_R_START_REQUESTED,
	PVCLUS_HA_R_STOP_REQUESTED,
	PVCLUS_HA_R_DELETE_REQUESTED,
	PVCLUS_HA_R_PLACED,
	PVCLUS_HA_R_UNPLACEABLE,
	PVCLUS_HA_R_STARTED,
	PVCLUS_HA_R_START_FAILED,
	PVCLUS_HA_R_START_FAILED_LIMIT, /* error: too many failed starts in a row */
	PVCLUS_HA_R_STOPPED,
	PVCLUS_HA_R_GUEST_POWERED_OFF,
	PVCLUS_HA_R_CRASH_RESTART,
	PVCLUS_HA_R_CRASH_LIMIT,        /* error: crashed more often than the policy restarts */
	PVCLUS_HA_R_RUN_STABLE,
	PVCLUS_HA_R_NODE_LEFT,
	PVCLUS_HA_R_FENCE_CONFIRMED,
	PVCLUS_HA_R_QUORUM_LOST,
	PVCLUS_HA_R_QUORUM_REGAINED,
	PVCLUS_HA_R_DRAIN,
	PVCLUS_HA_R_DRAIN_WAIT,
	PVCLUS_HA_R_MIGRATE_STARTED,
	PVCLUS_HA_R_MIGRATE_HANDED_OVER,
	PVCLUS_HA_R_MIGRATED,
	PVCLUS_HA_R_MIGRATE_FAILED,
	PVCLUS_HA_R_MIGRATE_TARGET_FAILED,
	PVCLUS_HA_R_DEADLINE,
	PVCLUS_HA_R_HEARTBEAT_RESTART,  /* its heartbeat stopped: restarted in place */
	PVCLUS_HA_R_HEARTBEAT_MOVE,     /* ... too often on one node: moved to another */
	PVCLUS_HA_R_HEARTBEAT_LIMIT,    /* error: ... too often again after it was moved */
	PVCLUS_HA_R_COUNT
};

struct pvclus_ha_event {
	enum pvclus_ha_event_type type;
	uint32_t node;   /* the node the event names (see the list above); 0 where none */
	bool crashed;    /* VMM_EXITED: true = crash, false = the guest powered itself off */
	int32_t err;     /* START_FAILED: the node's -errno (0: unknown); never positive */
	uint32_t detail; /* UNPLACEABLE: the scheduler's reason, copied to the log */
};

/* What the owner of a guest whose heartbeat stopped decided (the detail of a
 * HEARTBEAT_LOST event; the decision is the owner's, docs/heartbeat.md). */
enum pvclus_ha_heartbeat_step {
	PVCLUS_HA_HB_RESTART = 1, /* restart it in place */
	PVCLUS_HA_HB_MOVE,        /* start it on another node */
	PVCLUS_HA_HB_ERROR,       /* give up: error, no copy runs */
};

#define PVCLUS_HA_DEFAULT_MAX_START_FAILURES 3
/* Failed starts that say nothing about the guest (its owner lock is held
 * elsewhere, -EBUSY; the storage did not answer, -ETIMEDOUT): the leader
 * tries again every 2 s, and only this many of them in a row (about a
 * minute) are an error (docs/ha-state-machine.md, "place again"). */
#define PVCLUS_HA_MAX_BUSY_FAILURES 30
#define PVCLUS_HA_DEFAULT_MAX_RESTARTS 3

/* Whether a failed start's error is one that says nothing about the guest
 * (counted in busy_failures, not start_failures). */
bool pvclus_ha_transient(int32_t err);

/* The HA record of one guest, persisted (PERSIST) as part of its status.
 * Which fields mean something in which state is part of the contract; it is
 * checked by pvclus_ha_check(). */
struct pvclus_ha_guest {
	enum pvclus_ha_state state;
	bool want_running;      /* the desired state */
	uint32_t owner;         /* starting/recovering: placed node (0: not yet); running, stopping: its node;
				 * migrating: the source; else 0 */
	uint32_t target;        /* migrating: the target (0: the target gave up, the source's word awaited) */
	bool handed_over;       /* migrating: the source released the lock to the target */
	uint32_t fence[2];      /* fence-wait: nodes still to be fenced before anything starts (0: free slot) */
	uint32_t peer;          /* fence-wait: the surviving migration party whose word is awaited (0: none) */
	bool peer_is_source;    /* fence-wait: peer is the migration's source (else its target) */
	uint32_t fenced;        /* a fenced node that may still hold the lock: the next start breaks it */
	uint32_t avoid;         /* the node of the last failed start, for the scheduler to avoid */
	uint16_t start_failures;      /* failed starts in a row */
	uint16_t busy_failures;       /* of which -EBUSY/-ETIMEDOUT, in a row (<= PVCLUS_HA_MAX_BUSY_FAILURES) */
	uint16_t restarts;            /* crash restarts since the last stable run */
	uint16_t max_start_failures;  /* policy: this many failed starts in a row is an error (>= 1) */
	uint16_t max_restarts;        /* policy: crash restarts in place before error (0: none) */
	enum pvclus_ha_reason reason; /* error: why; else PVCLUS_HA_R_NONE */
	int32_t err;                  /* error: the -errno that led there (0: none) */
	bool hb_moved;                /* moved for a lost heartbeat since the last start or stop request */
};

enum pvclus_ha_action_kind {
	/* the leader's */
	PVCLUS_HA_ACT_PERSIST = 0,  /* write the new record to RADOS */
	PVCLUS_HA_ACT_LOG,          /* append an event-log entry: reason, node, err, detail */
	PVCLUS_HA_ACT_PLACE,        /* run the scheduler for it; node = a node to avoid (0: none) */
	PVCLUS_HA_ACT_PLACE_MIGRATION, /* find it a migration target away from node */
	PVCLUS_HA_ACT_FENCE,        /* fence node (blocklist, then the fence agent when configured) */
	PVCLUS_HA_ACT_DELETE,       /* remove the guest's records */
	/* node's own: only the agent on `node` carries these out */
	PVCLUS_HA_ACT_START,        /* take the lock (this node may already hold it) and start the guest */
	PVCLUS_HA_ACT_RECOVER,      /* break the lock if a fenced node (peer) holds it, take it, start from disk */
	PVCLUS_HA_ACT_STOP,         /* stop the VMM (force: kill it now) and release the lock */
	PVCLUS_HA_ACT_RELEASE_LOCK, /* the VMM is gone: release the lock */
	PVCLUS_HA_ACT_MIGRATE,      /* live-migrate from node to peer */
	PVCLUS_HA_ACT_ABORT_MIGRATION, /* source node: abandon the migration to peer if the lock is still here */
	PVCLUS_HA_ACT_COUNT
};

struct pvclus_ha_action {
	enum pvclus_ha_action_kind kind;
	uint32_t node;
	uint32_t peer;
	bool force;
	enum pvclus_ha_reason reason; /* LOG */
	int32_t err;                  /* LOG */
	uint32_t detail;              /* LOG */
};

#define PVCLUS_HA_ACTIONS_MAX 6

/* The actions of one step, in the order to carry them out: PERSIST first
 * (when the record changed), then LOG (whenever the step changed the record
 * or asks for anything), then the operations. */
struct pvclus_ha_actions {
	unsigned n;
	struct pvclus_ha_action a[PVCLUS_HA_ACTIONS_MAX];
};

/* A stopped guest with the default policy. */
void pvclus_ha_init(struct pvclus_ha_guest *g);

/* Checks that a record (e.g. one read from RADOS) is one this machine can
 * reach: fields in range and the per-state rules of the header comment of
 * struct pvclus_ha_guest. Returns 0 or -EINVAL. O(1). */
int pvclus_ha_check(const struct pvclus_ha_guest *g);

/* One transition: applies ev to g, writes the new record to *next and what
 * to do to *out. next may be g. Returns 0, or -EINVAL when g is not a valid
 * record, ev is malformed (unknown type, missing node, positive err), or the
 * event makes no sense in this state (a stale or duplicate report, a start of
 * a running guest): then *next is a copy of *g and out->n is 0 — nothing
 * changes, and the caller logs the refusal. A valid event that concerns
 * another guest's node (a NODE_LEFT of an unrelated node, say) returns 0
 * with no actions. O(1), no allocation. */
int pvclus_ha_step(const struct pvclus_ha_guest *g, const struct pvclus_ha_event *ev,
		   struct pvclus_ha_guest *next, struct pvclus_ha_actions *out);

/* Names for logs and the CLI ("fence-wait", "node-left", ...); "?" when out
 * of range. */
/* Whether two records are the same, field by field (every field the state
 * machine keeps). */
bool pvclus_ha_equal(const struct pvclus_ha_guest *a, const struct pvclus_ha_guest *b);

const char *pvclus_ha_state_str(enum pvclus_ha_state s);
const char *pvclus_ha_event_str(enum pvclus_ha_event_type t);
const char *pvclus_ha_reason_str(enum pvclus_ha_reason r);
const char *pvclus_ha_action_str(enum pvclus_ha_action_kind k);

#endif
