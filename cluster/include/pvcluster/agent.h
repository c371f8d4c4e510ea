/*
 * The pvha agent as a library: the HA orchestration of one node (guest table,
 * HA actions, placement, fencing, migrations, drains, rebalancing, the
 * control API's answers) as one object that owns all of its state and
 * reaches the world only through an ops table.
 *
 * Inputs are calls: a membership change (CPG members, totem ring), a CPG
 * message, a quorum change, a child process's end, an API request, and the
 * timers it armed through its ops. Outputs are the ops: multicast a message,
 * arm a timer, read the clock, spawn/signal/ask a VMM, run a fence program,
 * append to the event log, log a line. The program that embeds it (pvhad: a
 * qb_loop, Corosync, librados, libqb IPC) implements the ops with real I/O;
 * the simulator (tests/sim) implements them with fakes and virtual time, and
 * runs many agents in one process.
 *
 * Storage: the agent's every libpvstore call (pvstore.h) runs as a storage
 * job (ops->storage_submit): its run function on a worker thread of the
 * embedder (pvhad: a pool of threads over its librados connection), its done
 * function back on the agent's thread. So no storage call ever blocks the
 * agent's thread, and a slow or unreachable OSD delays only the jobs that
 * need it. The simulator links a fake libpvstore with the same header and
 * runs the jobs at virtual times.
 *
 * Threading: one thread (the embedding program's loop) makes every call, and
 * every op is called from that thread. The agent never blocks on anything
 * but its storage connection.
 */
#ifndef PVCLUS_AGENT_H
#define PVCLUS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/api.pb-c.h"
#include "pvcluster/corosync.h"
#include "pvcluster/ha.h"

struct pvstore;
struct pvclus_agent;

/* What the agent needs to know of its node (pvhad reads it from its config). */
struct pvclus_agent_config {
	char node_name[64];
	char address[64];       /* what a fence of this node blocklists; migrations listen here */
	char incarnation[64];   /* this host boot's id: the owner locks' cookie */
	char pool[64];          /* the RADOS pool: the VMMs' disks are rados:POOL/UUID */
	uint64_t mem_offered;   /* memory offered to guests, bytes */
	uint32_t cpus_offered;  /* vCPUs offered to guests */
	bool fence_power;       /* a power fence agent is configured (ops->fence_spawn runs it) */
	double rebalance_threshold; /* automatic rebalancing above this imbalance; 0: off */
	/* Heartbeat monitoring's defaults for guests that do not set their own
	 * (docs/heartbeat.md); 0: PVCLUS_HB_DEFAULT_* */
	uint32_t heartbeat_max_resets;
	uint32_t heartbeat_window_s;
};

#define PVCLUS_HB_DEFAULT_MAX_RESETS 3   /* restarts in place within the window, then a move */
#define PVCLUS_HB_DEFAULT_WINDOW_S 3600  /* as vSphere VM Monitoring's reset window (1 h) */

/* A VMM to start: from the guest's image, or (incoming non-empty) as a
 * migration target that listens on incoming ("ADDR:0") for the source. */
struct pvclus_vmm_start {
	uint8_t uuid[16];
	const char *name;
	const char *image_sha256; /* the image (not for incoming): its hash... */
	const void *image;        /* ...and its bytes, read from RADOS (NULL: the
				   * embedder has it cached, see image_cached) */
	size_t image_len;
	uint64_t mem_size;
	uint64_t disk_size;       /* 0: no disk */
	const char *cmdline;
	const char *lock_cookie;  /* the owner lock's cookie (with a disk) */
	const char *incoming;     /* NULL or "" for a fresh start */
	const char *address;      /* "" or the guest's address: its sockets use it */
	const uint8_t *migrate_key; /* incoming: the migration link's secret (NULL: none) */
	size_t migrate_key_len;
	const char *ceph_key;     /* the secret of the guest's own cephx user
				   * (client.pvha-guest-<uuid>, pvstore_guest_entity): the
				   * VMM connects as that user, never as the node's.
				   * The agent always sets it; never put it in argv. */
};

/* What a VMM's control socket says (pvha-vmm's STATUS, the parts the agent uses). */
struct pvclus_vmm_status {
	char state[16];           /* "running", "paused", "incoming", "stopped", ... */
	uint32_t incoming_port;   /* an incoming VMM's listening port, once it listens */
	char migration_phase[16]; /* "", "precopy", "stopcopy", "handover", "restoring", "done", "failed" */
	bool migration_released;  /* the source let go of the owner lock */
	uint32_t migration_round;
	uint64_t migration_bytes_sent;
	uint64_t migration_pages_left;
	uint64_t migration_rate;
	uint64_t migration_downtime_us;
	uint64_t migration_total_ms;
	char migration_reason[256];
	uint64_t heartbeat_seq;    /* the guest's last heartbeat number; 0: none since this VMM started */
	uint64_t heartbeat_age_ms; /* guest time since that heartbeat (0 while none) */
};

/*
 * One storage job. The agent fills run, done and its own fields (it embeds
 * this struct in a larger one), and submits it. run(st, job) is called once,
 * on a thread that is not the agent's, with the node's storage connection;
 * it may only call libpvstore and touch the job: it sets job->err (0 or
 * -errno) and, when it failed, copies pvstore_errmsg() into job->errmsg.
 * done(job) is then called once on the agent's thread and owns the job.
 * Jobs of one agent may run in any order and concurrently: a job that must
 * follow another is submitted from the other's done.
 */
struct pvclus_job {
	int (*run)(struct pvstore *st, struct pvclus_job *job);
	void (*done)(struct pvclus_job *job);
	int err;
	char errmsg[256];
	const char *what; /* for logs: "fence n2", "persist g1", ... */
};

enum pvclus_log_level { PVCLUS_LOG_ERROR = 0, PVCLUS_LOG_WARN, PVCLUS_LOG_INFO, PVCLUS_LOG_DEBUG };

struct pvclus_agent_ops {
	/* Multicasts one packed Pvha__ClusterMsg to every agent (itself
	 * included) in the total order. Must not deliver before returning.
	 * Returns 0 or -errno. */
	int (*send)(void *ctx, const void *buf, size_t len);
	/* The monotonic clock, in ms. */
	uint64_t (*now_ms)(void *ctx);
	/* Calls fn(arg) once, ms from now, from the agent's thread; *id names
	 * it for timer_del. Returns 0 or -errno. */
	int (*timer_add)(void *ctx, uint64_t ms, void (*fn)(void *arg), void *arg, uint64_t *id);
	/* Forgets a timer (one that has fired or was deleted: no effect). */
	void (*timer_del)(void *ctx, uint64_t id);
	/* Runs fn(arg) once the current input is handled (before any timer). */
	int (*defer)(void *ctx, void (*fn)(void *arg), void *arg);
	/* One log line (func: the agent function that wrote it). */
	void (*log)(void *ctx, enum pvclus_log_level level, const char *func, const char *line);
	/* Appends to the event log (guest NULL: the cluster's) without blocking;
	 * a failure is the embedder's to report. */
	void (*event)(void *ctx, const uint8_t *guest, const char *what, const char *why);
	/* Runs a storage job (see struct pvclus_job). Returns 0, or -errno when
	 * it cannot be queued (done is then never called). Without a storage
	 * connection run gets st == NULL and must fail with -ENOTCONN. */
	int (*storage_submit)(void *ctx, struct pvclus_job *job);
	/* The late answer to a control-API request (pvclus_agent_api returned
	 * -EINPROGRESS for token): rep's pointers are valid during the call. */
	void (*api_reply)(void *ctx, void *token, Pvha__ApiReply *rep, const char *msg);
	/* Starts this node's VMM for a guest; its pid out. Its end comes back
	 * through pvclus_agent_child_exited. Returns 0 or -errno. */
	int (*vmm_spawn)(void *ctx, const struct pvclus_vmm_start *s, pid_t *pid);
	/* Whether this node keeps the image with this hash already (then a
	 * start does not read it from RADOS). */
	bool (*image_cached)(void *ctx, const char *sha256);
	/* Carries (up) or drops a guest's address ("A.B.C.D/P") on this node
	 * (docs/network.md). Returns 0, or -errno with the reason in why (no
	 * interface configured: -ENODEV). */
	int (*guest_address)(void *ctx, const char *address, bool up, char *why, size_t whylen);
	/* SIGTERM (force false) or SIGKILL to a VMM. */
	void (*vmm_kill)(void *ctx, pid_t pid, bool force);
	/* Whether a process (an adopted VMM, not a child) still lives. */
	bool (*vmm_alive)(void *ctx, pid_t pid);
	/* Asks the guest's VMM on this node for its status. Returns 0, or
	 * -errno when it does not answer. */
	int (*vmm_status)(void *ctx, const uint8_t uuid[16], struct pvclus_vmm_status *st);
	/* Asks the guest's VMM to migrate to addr:port within downtime_ms (0:
	 * its default), sealing the link with key (key_len 0: none; the target
	 * got the same key). Returns 0 or -errno with the VMM's reason in why. */
	int (*vmm_migrate)(void *ctx, const uint8_t uuid[16], const char *addr, uint32_t port,
			   uint32_t downtime_ms, const uint8_t *key, size_t key_len, char *why, size_t whylen);
	/* Fills buf with len unpredictable bytes (a migration's secret).
	 * Returns 0 or -errno. */
	int (*random)(void *ctx, void *buf, size_t len);
	/* Asks a migrating VMM to give up (it does unless it let go of the lock). */
	int (*vmm_migrate_cancel)(void *ctx, const uint8_t uuid[16], char *why, size_t whylen);
	/* Asks a VMM to stop through its control socket (a source that handed over). */
	int (*vmm_stop)(void *ctx, const uint8_t uuid[16]);
	/* Starts the power fence program against node (name, address): its pid
	 * out; its end comes back through pvclus_agent_child_exited. Returns 0
	 * or -errno with the reason in why. */
	int (*fence_spawn)(void *ctx, const char *node, const char *addr, pid_t *pid, char *why,
			   size_t whylen);
	/* Kills a fence program's whole process group (its deadline passed). */
	void (*fence_kill)(void *ctx, pid_t pid);
	/* The power fence program, for messages ("fence_dummy"). */
	const char *(*fence_name)(void *ctx);
	/* Seconds one run of the power fence may take. */
	unsigned (*fence_timeout_s)(void *ctx);
};

/*
 * Creates an agent. st is the node's storage connection (NULL: none; the
 * node then runs no guest and never leads). Call pvclus_agent_set_nodelist,
 * then pvclus_agent_start (which writes the node record, reads the guest
 * registry and arms the timers), before any other input. Returns 0 or -errno.
 */
int pvclus_agent_create(const struct pvclus_agent_config *cfg, const struct pvclus_agent_ops *ops,
			void *ctx, struct pvstore *st, struct pvclus_agent **out);
/* Frees the agent. Storage jobs still out point into it: the embedder must
 * first make sure no done of the agent's jobs will run (pvhad stops its
 * workers before, dropping unfinished jobs; the simulator keeps a dead agent
 * until its jobs' done has run). Timers it armed must not fire after. */
void pvclus_agent_destroy(struct pvclus_agent *a);

/* The configured nodes (Corosync's nodelist) and this node's id. Called
 * again after a reconnection to Corosync. */
void pvclus_agent_set_nodelist(struct pvclus_agent *a, uint32_t local, const struct pvclus_cs_node *nodes,
			       size_t n);

/* Writes this node's record, reads the registry, reads the node modes and
 * arms the agent's timers. Returns 0, or -errno when the registry could not
 * be read (the agent runs on with no guests tabled until it can). */
int pvclus_agent_start(struct pvclus_agent *a);

/* Inputs from Corosync (see cluster/corosync.h for their meaning). */
void pvclus_agent_on_members(struct pvclus_agent *a, const uint32_t *ids, size_t n, uint64_t ring_id);
void pvclus_agent_on_ring(struct pvclus_agent *a, const uint32_t *ids, size_t n);
void pvclus_agent_on_quorum(struct pvclus_agent *a, bool quorate, size_t members);
void pvclus_agent_on_deliver(struct pvclus_agent *a, uint32_t from, const void *data, size_t len);
/* The local Corosync went away: no membership, no quorum until it is back. */
void pvclus_agent_on_lost(struct pvclus_agent *a);

/* The exit statuses of pvha-vmm that the agent reads (pvha-vmm(8), EXIT
 * STATUS); any other ends a start as a failure of the guest's own. */
enum pvclus_vmm_exit {
	PVCLUS_VMM_EXIT_STOPPED = 5,  /* stopped from outside */
	PVCLUS_VMM_EXIT_LOCKED = 8,   /* the owner lock is held elsewhere: -EBUSY */
	PVCLUS_VMM_EXIT_MIGRATED = 10, /* handed the guest over */
	PVCLUS_VMM_EXIT_STORAGE = 11, /* the storage did not answer in time, nothing ran: -ETIMEDOUT */
};

/* A child process ended (a VMM or a fence program); wait_status as from
 * waitpid. Returns true when it was one of the agent's. */
bool pvclus_agent_child_exited(struct pvclus_agent *a, pid_t pid, int wait_status);

/* A VMM that an earlier agent of this boot started still runs (its control
 * socket answered with this guest's id): this agent watches it again. */
void pvclus_agent_adopt(struct pvclus_agent *a, const uint8_t uuid[16], pid_t pid);

/* The storage stopped working (an event-log append failed): say so. */
void pvclus_agent_storage_failed(struct pvclus_agent *a);

/*
 * Answers one control-API request. Most requests are answered at once: rep
 * and msg are filled and 0 is returned; rep's pointers stay valid until the
 * next call. Requests that need the storage (guest create and set, node
 * drain and resume, events) are answered later: -EINPROGRESS is returned,
 * what the request needs is kept, and ops->api_reply(ctx, token, ...) is
 * called once, on the agent's thread, with the answer. The request's
 * version is checked here.
 */
int pvclus_agent_api(struct pvclus_agent *a, const Pvha__ApiRequest *req, void *token, Pvha__ApiReply *rep,
		     char *msg, size_t msglen);

/* For status lines and tests. */
uint32_t pvclus_agent_leader(const struct pvclus_agent *a);
bool pvclus_agent_quorate(const struct pvclus_agent *a);
/* Whether this agent keeps node out of the cluster: fenced and not lifted,
 * a fence of it under way, or a blocklist add of it that may still land. */
bool pvclus_agent_node_held(const struct pvclus_agent *a, uint32_t node);

/* ---- a read-only picture of the agent (snapshot.c) ------------------------ */

#define PVCLUS_SNAPSHOT_GUESTS_MAX 1024

/* One configured node as this agent sees it. */
struct pvclus_snapshot_node {
	uint32_t id;
	char name[64];
	char addr[64];
	bool member;       /* its agent is in the CPG group */
	bool in_ring;      /* in the totem ring */
	bool online;       /* member, said hello, reaches the storage: it can take guests */
	bool fenced;       /* fence confirmed, not yet back */
	bool fencing;      /* this leader fences it now */
	bool storage_ok;   /* it can write to RADOS (its last hello; this node: its own view) */
	const char *mode;  /* "active", "draining", "maintenance" (a static string) */
	uint64_t mem_offered; /* from its hello; 0: unknown */
	uint32_t cpus_offered;
	uint32_t guests;   /* guests whose HA record names it (owner or target) */
};

/* One guest of the table. */
struct pvclus_snapshot_guest {
	uint8_t uuid[16];
	char name[64];       /* "" while its spec is unread */
	enum pvclus_ha_state state;
	bool want_running;
	uint32_t owner;      /* see struct pvclus_ha_guest */
	uint32_t target;
	uint16_t restarts;   /* crash restarts since its last stable run */
	uint16_t start_failures;
	enum pvclus_ha_reason reason; /* error: why */
	uint64_t mem_size;   /* bytes (0 while its spec is unread) */
	pid_t pid;           /* this node's VMM for it, 0: none here */
	uint32_t heartbeat_timeout_s; /* its heartbeat monitoring (docs/heartbeat.md); 0: off */
	uint32_t heartbeat_resets;    /* restarts in place this node made for a lost heartbeat (its history) */
};

struct pvclus_snapshot {
	uint32_t local;      /* this node's id */
	uint32_t leader;     /* 0: none */
	bool quorate;
	bool leads;          /* this agent acts as the leader */
	bool have_state;     /* this agent's table is the cluster's */
	bool storage_ok;     /* this node reaches the storage */
	size_t n_nodes;
	struct pvclus_snapshot_node nodes[PVCLUS_MAX_NODES];
	size_t n_guests;
	struct pvclus_snapshot_guest guests[PVCLUS_SNAPSHOT_GUESTS_MAX];
};

/*
 * Fills *out with what the agent knows now: its nodes (nodelist order) and
 * its guests (table order). Reads only; on the agent's thread like every
 * call. About 100 KiB: keep it on the heap. O(N x G) for N nodes (<= 64), G guests.
 */
void pvclus_agent_snapshot(const struct pvclus_agent *a, struct pvclus_snapshot *out);

#endif
