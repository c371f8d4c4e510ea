/*
 * Live migration for pvha-vmm (wire protocol and choices: docs/migration.md).
 *
 * Source side: mig_source_start() starts a sender thread that pre-copies the
 * guest's RAM over TCP while the main loop keeps running the guest (a page the
 * guest changes while it is being read is dirty again and goes in a later
 * round). When what is left fits the downtime budget, the thread asks the main
 * loop for the machine (mig_source_poll() says MIG_WANT_PAUSE); the main loop
 * pauses the guest and lends it with mig_source_paused(). The thread flushes
 * the disk, sends the rest and the CPU and device state, waits for the
 * target's READY, releases the owner lock, sends RELEASED and waits for
 * RUNNING. A failure before the release gives the machine back (the guest
 * resumes here); after the release the machine is never run here again.
 *
 * Both sides first exchange nonces (MigrateAuth); when they hold the
 * per-migration secret, every later frame is encrypted and authenticated
 * (AES-256-GCM) under a key derived from it and both nonces
 * (pvproto/link.h), so an altered, replayed or foreign frame fails the
 * migration before it is believed, and RAM is not readable on the wire.
 *
 * Target side: mig_target_start() starts a receiver thread on an accepted
 * connection: it checks the hello, builds the machine from the stream, says
 * READY, waits for RELEASED, takes the owner lock and only then offers the
 * machine to the main loop (mig_target_take()), and says RUNNING.
 *
 * Threading: each side has one thread and one mutex; every call below may be
 * made from the main loop at any time, none blocks except *_destroy (joins).
 * The thread writes 1 to the eventfd notify_fd whenever it has news for the
 * main loop. The machine is the main loop's, except while lent (source: from
 * mig_source_paused() to the end of the thread; target: until taken).
 */
#ifndef PVHA_VMM_MIGRATE_H
#define PVHA_VMM_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "pvhv/hv.h"

struct privsep; /* privsep.h */

/* MIG_RESTORING: target only, the lock taken and the connections built,
 * frozen, until the guest's address is on this host (docs/migration.md
 * "Connections"): the agent's cue to put it up. */
enum mig_phase { MIG_NONE = 0, MIG_PRECOPY, MIG_STOPCOPY, MIG_HANDOVER, MIG_DONE, MIG_FAILED, MIG_RESTORING };

/* "", "precopy", "stopcopy", "handover", "done", "failed", "restoring". */
const char *mig_phase_name(enum mig_phase p);

/* What STATUS reports (vmm.proto VmmStatus.migration_*). */
struct mig_progress {
	enum mig_phase phase;
	uint32_t round;       /* pre-copy rounds done */
	uint64_t bytes_sent;  /* page bytes sent */
	uint64_t pages_left;  /* dirtied during the last round */
	uint64_t rate;        /* bytes/s while sending */
	uint64_t downtime_us; /* pause here -> RUNNING received */
	uint64_t total_ms;    /* start -> end (or now) */
	bool released;        /* the owner lock was let go: never run here again */
	bool forced;          /* stop-copy forced: round cap or no progress */
	char reason[256];     /* failed: why; else a note or "" */
	char peer[300];       /* HOST:PORT of the other side */
};

/* ---- source --------------------------------------------------------------- */

struct mig_source;

struct mig_source_params {
	const char *host;         /* the target */
	uint16_t port;
	uint32_t downtime_ms;     /* 0: 10 */
	uint32_t max_rounds;      /* 0: 30, and stop early after 3 rounds without
				   * progress; N: up to N rounds, no early stop */
	struct hv_machine *m;     /* running; lent to the thread only after mig_source_paused */
	const struct hv_machine_stats *stats; /* of m, taken by its thread: id, RAM, backend */
	struct hv_disk *disk;     /* may be NULL */
	struct hv_disk *owner;    /* holds the owner lock: disk, or a lock-only handle (diskless guest) */
	struct hv_net *net;       /* m's sockets (NULL: none): its connections are carried */
	const char *disk_spec;    /* for the hello; may be NULL */
	const char *lock_cookie;  /* the owner lock held (rados disks), or NULL */
	const uint8_t *key;       /* the per-migration secret (copied), or NULL */
	size_t key_len;           /* 0 (no key: an unauthenticated link) or 16..256 */
	int notify_fd;            /* eventfd */
	/* the privileged helper and the nft runner (privsep_ops.h) that do
	 * the connections' privileged steps; lent, live as long as the thread */
	struct privsep *privsep, *privsep_nft;
};

/* Starts the sender thread (it connects). Returns 0 or -errno (-EINVAL: bad
 * parameters, with nothing started). */
int mig_source_start(const struct mig_source_params *p, struct mig_source **out);

enum mig_source_want {
	MIG_WANT_NOTHING, /* keep running the guest */
	MIG_WANT_PAUSE,   /* pause the guest and call mig_source_paused (once) */
	MIG_WANT_JOIN,    /* the thread has finished: read the progress, destroy */
};
enum mig_source_want mig_source_poll(struct mig_source *s);

/* The main loop paused the guest at pause_ns (CLOCK_MONOTONIC) and lends the
 * machine to the thread. */
void mig_source_paused(struct mig_source *s, uint64_t pause_ns);

void mig_source_progress(struct mig_source *s, struct mig_progress *out);

/* Asks the thread to give up (why: for the reason); it ends soon, the
 * migration failed and the machine given back. Returns false, changing
 * nothing, once the owner lock was let go (or the thread has finished): the
 * hand-over then runs to its end. */
bool mig_source_cancel(struct mig_source *s, const char *why);

/* Joins the thread (cancelling it unless it has finished), copies its last
 * progress to *last (when not NULL) and frees it. */
void mig_source_destroy(struct mig_source *s, struct mig_progress *last);

/* ---- target --------------------------------------------------------------- */

/* Listens on "HOST:PORT" ("[V6]:PORT"; PORT 0 = any free one). Returns a
 * listening socket (non-blocking, close-on-exec) and the port, or -errno with
 * a one-line reason. */
int mig_listen(const char *hostport, uint16_t *port, char *why, size_t whylen);

struct mig_target;

struct mig_target_params {
	int fd;                   /* the accepted connection; the thread owns it */
	struct hv_config cfg;     /* backend, disk, console, budget for the machine;
				   * mem_size 0 = any the hello offers, else only it */
	const char *lock_cookie;  /* take the owner lock with it (rados disk), or NULL */
	struct hv_disk *owner;    /* ... on this handle: cfg.disk, or a lock-only one */
	bool have_id;             /* --id given: the guest must be this one */
	uint8_t id[16];
	const uint8_t *key;       /* the per-migration secret (copied), or NULL */
	size_t key_len;           /* 0: accept only an unauthenticated source; 16..256:
				   * only a source that proves it holds this key */
	int notify_fd;            /* eventfd */
	/* the privileged helper and the nft runner (privsep_ops.h) that do
	 * the connections' privileged steps; lent, live as long as the thread */
	struct privsep *privsep, *privsep_nft;
};

/* Starts the receiver thread on p->fd. Returns 0 or -errno (-EINVAL: a key of
 * a bad length). */
int mig_target_start(const struct mig_target_params *p, struct mig_target **out);

/* The machine once it may run (owner lock taken): the caller owns it from
 * then on. NULL while not yet; *failed true when the migration failed (the
 * reason is in the progress), nothing having run. */
struct hv_machine *mig_target_take(struct mig_target *t, bool *failed);

/* True when the thread has finished (joining will not wait). */
bool mig_target_finished(struct mig_target *t);

void mig_target_progress(struct mig_target *t, struct mig_progress *out);

/* Asks the thread to give up before it takes the lock. */
void mig_target_cancel(struct mig_target *t, const char *why);

/* Joins (cancelling), copies the last progress to *last (when not NULL) and
 * frees; a machine not taken is destroyed. */
void mig_target_destroy(struct mig_target *t, struct mig_progress *last);

#endif /* PVHA_VMM_MIGRATE_H */
