/*
 * pvha-sim: several pvha agents (libpvagent, pvcluster/agent.h) in one
 * process over fakes of everything they touch, in virtual time.
 *
 *   world.c      the event queue and virtual time, the nodes, the fake
 *                Corosync (totem rings, CPG, votequorum), the agents' ops
 *   vmm.c        fake pvha-vmm processes (owner lock, disk writes,
 *                migrations, exits) and fake fence programs
 *   fake_store.c libpvstore's API (pvstore.h) over an in-memory store:
 *                registry, locks, blocklist, node records, events, disks
 *   scenario.c   the scenario format: parsing, commands, assertions
 *   random.c     random clusters and fault schedules (--random)
 *   main.c       the pvha-sim program
 *
 * Everything is deterministic: one event queue ordered by (time, sequence),
 * no wall clock, one seeded PRNG, no heap address in any output. One thread.
 * docs/simulator.md describes the model and its assumptions.
 */
#ifndef PVHA_SIM_H
#define PVHA_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pvcluster/agent.h"
#include "pvstore/pvstore.h"

#define SIM_MAX_NODES 8
#define SIM_MAX_GUESTS 64
#define SIM_PID_BASE 0x40000000 /* far above any real pid: kill(2) on one is ESRCH */

struct sim;
struct sim_event;
struct agent_ctx;
typedef void (*sim_fn)(struct sim *w, struct sim_event *e);

/* One entry of the queue. Agent inputs (node >= 0, agent true) go through
 * the node's inbox: an agent blocked in a storage call or frozen takes them
 * later, in order. */
struct sim_event {
	uint64_t time, seq;
	sim_fn fn;
	int node;            /* -1: the world's */
	uint32_t gen;        /* the agent generation it belongs to (agent inputs) */
	bool agent;          /* an agent input: through the inbox */
	bool cancelled;
	uint64_t id;         /* timers: the id timer_del names */
	void (*cb)(void *);  /* agent timers and defers */
	void *arg;
	void *p;             /* payload, freed with the event */
	struct agent_ctx *ctx; /* not owned */
	uint64_t u, v;
	struct sim_event *next; /* inbox link */
};

/* ---- timing model (docs/simulator.md) ------------------------------------- */

struct sim_params {
	unsigned token_ms;          /* totem token; detection 2.1x, merge 1.4x (FACTS.md) */
	unsigned cpg_ms;            /* CPG delivery latency */
	unsigned agent_leave_ms;    /* an agent process ends: the others see it leave */
	unsigned boot_ms;           /* power on -> corosync up */
	unsigned agent_boot_ms;     /* corosync up -> the agent starts */
	unsigned agent_restart_ms;  /* an agent restart: down this long */
	unsigned store_ms;          /* one storage op (and a job's queueing) */
	unsigned osd_timeout_ms;    /* rados_osd_op_timeout */
	unsigned mon_timeout_ms;    /* rados_mon_op_timeout */
	unsigned osd_map_lag_ms;    /* a blocklist entry reaches the OSDs after this */
	unsigned vmm_boot_ms;       /* spawn -> the VMM tries the owner lock */
	unsigned vmm_io_ms;         /* a VMM writes and flushes its counter this often */
	unsigned vmm_stop_ms;       /* SIGTERM/STOP -> exit */
	unsigned runaway_ms;        /* a VMM blocked in a flush this long stops (exit 3); 0: never */
	unsigned mig_precopy_ms;    /* a migration's pre-copy */
	unsigned mig_stopcopy_ms;   /* its stop-copy (the downtime) */
	unsigned incoming_timeout_ms; /* pvha-vmm --incoming-timeout (default 60 s) */
	unsigned target_lock_ms;    /* an incoming VMM tries the lock this long after RELEASED */
	unsigned migrated_linger_ms;  /* a source in `migrated` exits 10 after this */
	unsigned fence_ms;          /* a power fence that works takes this long */
	unsigned fence_timeout_s;   /* the agent's fence_timeout */
	bool fence_power;           /* a power fence agent is configured */
	bool two_node;
	bool members_first;         /* at a change: CPG members before ring and quorum */
	unsigned cs_gap_ms;         /* else the CPG members this long after them */
};

void sim_params_default(struct sim_params *p);

/* ---- the fake store --------------------------------------------------------- */

struct fs_event {
	uint64_t seq, time_ms;
	char node[PVSTORE_NAME_MAX + 1];
	bool has_guest;
	uint8_t guest[16];
	char what[PVSTORE_EVENT_WHAT_MAX + 1];
	char why[PVSTORE_EVENT_WHY_MAX + 1];
};

struct fs_log {
	struct fs_event *ev;
	size_t n, cap;
};

struct fs_guest {
	bool used;
	struct pvstore_guest spec;
	/* the owner lock (cls_lock, exclusive) */
	bool locked;
	struct pvstore_lock_holder holder;
	/* the disk: a counter guest's one block; landed writes are kept */
	bool has_disk;
	uint64_t disk_size;
	uint64_t value;          /* the last value that landed */
	uint64_t writes;         /* how many landed */
	uint64_t last_write_ms;
	struct fs_log events;
};

struct fs_blocklist {
	bool used;
	char addr[64];
	uint64_t added_ms, effective_ms, expires_ms;
};

struct fs_node {
	bool used;
	struct pvstore_node rec;
	bool has_rec;
	enum pvstore_node_mode mode;
};

/* A guest's cephx user (pvstore_key_guest): its key, by the guest's uuid. */
struct fs_user {
	bool used;
	uint8_t uuid[16];
	char key[PVSTORE_KEY_MAX];
};

struct fake_store {
	struct fs_guest guests[SIM_MAX_GUESTS];
	struct fs_user users[SIM_MAX_GUESTS * 2];
	uint64_t next_key;
	struct fs_node nodes[SIM_MAX_NODES];
	struct fs_blocklist bl[64];
	char images[SIM_MAX_GUESTS][65];
	size_t nimages;
	struct fs_log cluster_events;
	uint64_t next_client;  /* client.<id> and nonces */
	/* faults */
	bool down;             /* every op times out */
	unsigned slow_ms;      /* every op takes this much longer */
	unsigned mon_delay_ms; /* blocklist add/rm commit after this (timed out past mon_timeout) */
	uint64_t mon_backlog_ms; /* the last monitor command committed then: they commit in order */
	/* the two-node tie-breaker: a cls_lock with a duration, and the yields */
	bool tb_locked;
	struct pvstore_lock_holder tb_holder;
	uint64_t tb_expires_ms;
	char tb_yield_node[SIM_MAX_NODES][64];
	char tb_yield_cookie[SIM_MAX_NODES][64];
};

/* A client connection (struct pvstore): one per agent, one per VMM. */
struct pvstore {
	struct sim *w;
	int node;              /* the host it runs on */
	bool is_agent;
	char addr[64];         /* "IP:0/NONCE" */
	char entity[32];       /* "client.ID" */
};

/* The connection of a client of node's host (agent true: the agent's). */
struct pvstore *fs_connect(struct sim *w, int node, bool is_agent);
void fs_disconnect(struct pvstore *st);
/* 0, or -ETIMEDOUT / -ESHUTDOWN as an op of st would fail now (write: a
 * data write, which the OSD map lag lets through for a moment). */
int fs_check(struct pvstore *st, bool write);
struct fs_guest *fs_guest(struct sim *w, const uint8_t uuid[16]);
const char *fs_guest_name(struct sim *w, const uint8_t uuid[16]);
/* Whether key is guest uuid's user's key (a VMM connecting with it gets in). */
bool fs_key_ok(struct sim *w, const uint8_t uuid[16], const char *key);
bool fs_covered(struct sim *w, const char *client_addr, bool write);
void fs_store_free(struct fake_store *s);
/* Commits a blocklist change now on behalf of node by's client;
 * effective_ms: when it binds writes. */
/* by_gen: the generation of by's agent that sent it (a node's connection outlives its agent). */
void fs_blocklist_commit(struct sim *w, int by, uint32_t by_gen, const char *addr, bool add, uint64_t effective_ms);
/* A monitor command the caller gave up on, committed at time at (world.c). */
/* wait_map: its caller waits for the map too, so it binds at the commit, not osd-map-lag later. */
void sim_blocklist_later(struct sim *w, int by, uint32_t by_gen, const char *addr, bool add, uint64_t at,
			 bool wait_map);

/* ---- fake VMMs and fence programs (vmm.c) ------------------------------------ */

enum vmm_state {
	VMM_BOOTING,   /* spawned, not listening yet */
	VMM_RUNNING,   /* owns the lock, runs and writes */
	VMM_INCOMING,  /* a migration target: listens, no guest yet */
	VMM_MIGRATED,  /* a source after the hand-over */
	VMM_DEAD,
};

struct vmm {
	bool used;
	pid_t pid;
	int node;
	int gi;                  /* index in the store's guests */
	uint8_t uuid[16];
	char cookie[64];
	struct pvstore *conn;
	enum vmm_state state;
	bool owns;               /* believes it holds the owner lock */
	bool stopping;
	bool paused;             /* stop-copy */
	uint64_t next_value;
	uint64_t blocked_since;  /* a flush waits on the storage since (0: not) */
	uint32_t port;           /* incoming: its listening port */
	/* migration (source) */
	int mig_target;          /* vmm index of the target (-1 none) */
	char mig_phase[16];
	char mig_reason[128];
	bool mig_released;
	uint64_t mig_start_ms;
	uint32_t mig_round;
	/* migration (target) */
	int mig_source;          /* vmm index of the source (-1: none connected) */
	uint64_t spawned_ms;
	uint32_t parent_gen;     /* the agent that spawned it: its exit goes there */
	uint32_t gen;            /* bumps on every state change: stale timers check it */
	/* the guest's heartbeats, in virtual time (the fake guest sends one every
	 * 100 ms from hb_first_ms until hb_stop_ms) */
	uint64_t hb_first_ms;    /* 0: it sends none */
	uint64_t hb_stop_ms;     /* UINT64_MAX: never stops */
};

/* ---- nodes and the fake Corosync -------------------------------------------- */

struct sim_msg {
	uint64_t seq;
	int from;
	uint64_t at;
	size_t len;
	uint8_t *data;
};

struct sim_ring {
	uint64_t id;
	int nodes[SIM_MAX_NODES];
	int n;
	bool live;
	struct sim_msg *q;     /* sent, not yet delivered (FIFO) */
	size_t nq, capq;
	uint64_t members_at;   /* when its CPG members are told (no message before) */
};

struct sim_node {
	int idx;
	uint32_t id;
	char name[16];
	char ip[32];
	uint64_t mem;
	uint32_t cpus;
	bool powered;
	bool cs_up;            /* corosync runs */
	bool agent_up;         /* the agent process exists (frozen or not) */
	bool frozen;
	int net;               /* partition label: equal labels reach each other */
	bool storage_cut;      /* this host cannot reach the storage */
	unsigned boots;
	bool seen_all;         /* two_node wait_for_all: saw the other node since boot */
	struct agent_ctx *cur;  /* the agent process (NULL: none) */
	uint32_t gen;
	struct pvstore *conn;   /* its storage connection */
	int ring;              /* index in w->rings, -1: none */
	bool quorate;          /* what votequorum told this node last */
	uint64_t busy_until;   /* the agent is inside a blocking storage call */
	struct sim_event *inbox, *inbox_tail;
	bool pump_armed;
	bool image_cached[SIM_MAX_GUESTS];
};

struct sim_fence {
	bool used;
	pid_t pid;
	int node;       /* the node whose agent runs it */
	uint32_t gen;
	int target;     /* the node it powers off */
	bool done;
};

/* ---- the world --------------------------------------------------------------- */

#define SIM_MAX_OUTAGES 512

struct sim_violation_counts {
	unsigned two_writers, lost_write, fenced_member, stuck, not_running;
};

struct sim {
	struct sim_params p;
	uint64_t now;
	uint64_t seq;
	struct sim_event **heap;
	size_t nheap, capheap;
	uint64_t next_timer;
	uint64_t rng;
	/* nodes */
	struct sim_node nodes[SIM_MAX_NODES];
	int nnodes;
	struct pvclus_cs_node nodelist[SIM_MAX_NODES];
	struct pvclus_agent_ops ops;
	/* corosync */
	struct sim_ring *rings;
	size_t nrings, caprings;
	uint64_t ring_ids;
	uint64_t msg_seq;
	/* processes */
	struct vmm *vmms;
	size_t nvmms, capvmms;
	struct sim_fence fences[64];
	pid_t next_pid;
	int fence_mode;         /* 0 works, 1 fails, 2 hangs */
	/* storage */
	struct fake_store store;
	bool in_job;
	uint64_t job_cost;
	/* output */
	FILE *out;              /* the log (events, commands, checks) */
	bool verbose;           /* agents' log lines too */
	bool debug;             /* and their debug lines */
	struct sim_violation_counts bad;
	/* gaps in a guest's writes longer than 2 I/O periods (outages), ms */
	uint64_t outages[SIM_MAX_OUTAGES];
	unsigned noutages;
	double rebalance_threshold;
	uint64_t hb_hang[SIM_MAX_GUESTS]; /* heartbeat-hang: 0 off, else 1 + ms of heartbeats per VMM */
	Pvha__ApiReply api_reply; /* sim_api's answer: valid until the next call */
};

/* Makes room for one more element in *arr (n used of *cap, each size
 * bytes), doubling; aborts when memory runs out (the simulator cannot go on
 * without it). O(1) amortised. */
void sim_grow(void *arr, size_t n, size_t *cap, size_t size);

int sim_init(struct sim *w, const struct sim_params *p, uint64_t seed, FILE *out);
void sim_fini(struct sim *w);
uint64_t sim_rand(struct sim *w);

/* Schedules fn at time at (>= now). Returns the event (owned by the queue). */
struct sim_event *sim_at(struct sim *w, uint64_t at, sim_fn fn);
/* An agent input for node's current agent at time at: it goes through the
 * node's inbox (a busy or frozen agent takes it later, in order). */
struct sim_event *sim_input(struct sim *w, int node, uint64_t at, sim_fn fn);
/* Runs events up to and including time t. */
void sim_run_until(struct sim *w, uint64_t t);

/* Prints one line of the log: "%8llu " then the text. */
void sim_log(struct sim *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An invariant broke: counted and logged with "!! ". */
void sim_violation(struct sim *w, unsigned *counter, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Nodes and guests of the initial state (before sim_start). */
int sim_add_node(struct sim *w, const char *name, uint64_t mem, uint32_t cpus);
int sim_node_by_name(struct sim *w, const char *name);
int sim_add_guest(struct sim *w, const struct pvstore_guest *spec);
int sim_guest_index(struct sim *w, const char *name);

/* Commands (scenario.c calls them): faults and their repair, at the current time. */
void sim_power_on(struct sim *w, int n);
void sim_power_off(struct sim *w, int n);
void sim_partition(struct sim *w, const int *label);
void sim_agent_restart(struct sim *w, int n);
void sim_agent_crash(struct sim *w, int n);
void sim_agent_freeze(struct sim *w, int n, bool frozen);
void sim_agent_start(struct sim *w, int n);
/* What node n's agent says (0 / false without an agent). */
uint32_t sim_agent_leader(struct sim *w, int n);
bool sim_agent_quorate(struct sim *w, int n);
/* Whether node n's agent (alive) keeps node id out (pvclus_agent_node_held). */
bool sim_agent_holds(struct sim *w, int n, uint32_t id);
/* Whether node n's agent is generation gen and alive. */
bool sim_agent_is(struct sim *w, int n, uint32_t gen);
/* Whether the agent that leads node n's ring (as it sees itself) holds id;
 * true when no agent there leads (nobody places anything). */
bool sim_ring_leader_holds(struct sim *w, int n, uint32_t id);
/* Whether some VMM on node n could write to its guest's disk now. */
bool sim_node_can_write(struct sim *w, int n);
/* Guest gi's VMM crashes every period ms, count times (when one runs). */
void sim_crash_loop(struct sim *w, int gi, unsigned period, unsigned count);
/* The guest in v goes on running but sends no more heartbeats. */
void vmm_heartbeat_stop(struct sim *w, struct vmm *v);
void sim_storage_cut(struct sim *w, int n, bool cut);
void sim_net_changed(struct sim *w, bool heal);
/* A control API request on node n's agent (none: -EHOSTDOWN). Returns its
 * error, or -EINPROGRESS: the answer comes later through
 * sim_api_answer(token) (scenario.c). */
int sim_api(struct sim *w, int n, const Pvha__ApiRequest *req, void *token, char *msg, size_t msglen,
	    Pvha__ApiReply **rep);
void sim_api_answer(struct sim *w, void *token, Pvha__ApiReply *rep, const char *msg);

/* VMMs */
struct vmm *sim_vmm_by_pid(struct sim *w, pid_t pid);
/* The live VMM of guest gi that runs it (state running, owns), or NULL. */
struct vmm *sim_vmm_running(struct sim *w, int gi);
/* The live incoming (migration target) VMM of guest gi, or NULL. */
struct vmm *sim_vmm_incoming(struct sim *w, int gi);
void vmm_spawn_fake(struct sim *w, int node, const struct pvclus_vmm_start *s, pid_t pid, int gi);
void vmm_kill_fake(struct sim *w, struct vmm *v, bool force);
void vmm_crash(struct sim *w, struct vmm *v);
void vmm_power_off_node(struct sim *w, int node);
int vmm_status_fake(struct sim *w, int node, const uint8_t uuid[16], struct pvclus_vmm_status *st);
int vmm_migrate_fake(struct sim *w, int node, const uint8_t uuid[16], const char *addr, uint32_t port,
		     char *why, size_t whylen);
int vmm_cancel_fake(struct sim *w, int node, const uint8_t uuid[16], char *why, size_t whylen);
int vmm_stop_fake(struct sim *w, int node, const uint8_t uuid[16]);
int fence_spawn_fake(struct sim *w, int node, const char *target, pid_t *pid);
void fence_kill_fake(struct sim *w, pid_t pid);
/* A child of node's agent ended: deliver it to the agent. */
void sim_child_exit(struct sim *w, int node, pid_t pid, int wait_status);

/* Whether nodes a and b reach each other (powered, same partition). */
bool sim_linked(struct sim *w, int a, int b);

#endif
