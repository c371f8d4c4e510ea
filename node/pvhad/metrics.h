/*
 * pvhad's metrics (docs/metrics.md): the durations of failovers, fences,
 * recoveries and migrations, measured from the agent's event log as this
 * node's agent writes it (the event op), the recent events, and the
 * rendering of a snapshot of the agent (pvclus_agent_snapshot) as
 * Prometheus text (/metrics) and as JSON (/api/state, the dashboard's).
 *
 * Threading: a tracker belongs to one thread (pvhad's loop feeds it). The
 * renderers are pure: they read what they are given and write to a buffer,
 * on any thread.
 */
#ifndef PVHAD_METRICS_H
#define PVHAD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "pvcluster/agent.h"

/* ---- a growing text buffer ------------------------------------------------- */

struct mbuf {
	char *p;
	size_t len, cap;
	int err; /* the first failure (-ENOMEM); later appends do nothing */
};

/* Appends printf-style text; on failure sets b->err. */
void mbuf_printf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mbuf_free(struct mbuf *b);

/* Appends s as the inside of a Prometheus label value: \ " and newline
 * escaped (\\ \" \n). */
void mbuf_prom_label(struct mbuf *b, const char *s);
/* Appends s as a JSON string, quotes included: " \ and control characters
 * escaped; bytes >= 0x80 pass through (the names are UTF-8 or ASCII). */
void mbuf_json_str(struct mbuf *b, const char *s);

/* ---- durations ------------------------------------------------------------- */

enum metrics_duration {
	METRICS_FAILOVER = 0, /* a running guest's node left (fence-wait) .. it runs again */
	METRICS_FENCE,        /* a node left .. its fence is confirmed */
	METRICS_RECOVERY,     /* its node's fence confirmed (recovering) .. the guest runs again */
	METRICS_MIGRATION,    /* a live migration started (migrating) .. the guest runs on */
	METRICS_DURATIONS
};

#define METRICS_BUCKETS 11

/* Upper bounds (seconds) of the histograms' buckets, +Inf not included. */
extern const double metrics_bucket_le[METRICS_BUCKETS];

struct metrics_histogram {
	uint64_t count;
	double sum;                        /* seconds */
	uint64_t bucket[METRICS_BUCKETS];  /* observations <= metrics_bucket_le[i] and > the one before */
};

/* Adds one observation. O(buckets). */
void metrics_histogram_observe(struct metrics_histogram *h, double seconds);

#define METRICS_EVENTS 50

struct metrics_event {
	time_t at;          /* wall clock */
	bool has_guest;
	uint8_t guest[16];
	char what[32];
	char why[256];
};

struct metrics_tracker_guest {
	bool used;
	uint8_t uuid[16];
	char state[16];      /* the last state event seen */
	uint64_t failover_ms; /* when it went from running to fence-wait (0: none) */
	uint64_t recover_ms;  /* when it entered recovering */
	uint64_t migrate_ms;  /* when it entered migrating */
};

struct metrics_tracker {
	bool fence_power;    /* a fence is confirmed by "power-fenced", not "fenced" */
	struct metrics_histogram h[METRICS_DURATIONS];
	uint64_t events_total;
	struct metrics_event events[METRICS_EVENTS]; /* a ring: the newest at (next - 1) */
	size_t next, n_events;
	struct { char name[64]; uint64_t left_ms; } nodes[PVCLUS_MAX_NODES];
	struct metrics_tracker_guest guests[PVCLUS_SNAPSHOT_GUESTS_MAX];
};

/*
 * One event of the agent's event log (the event op: guest NULL for the
 * cluster's), at monotonic now_ms and wall-clock time at. Guest events whose
 * what is an HA state ("running", "fence-wait", "recovering", "migrating",
 * ...) time the guest's failover, recovery and migration; "node-left",
 * "fenced" and "power-fenced" (whose why starts "node NAME") time fences.
 * Every event goes to the recent-events ring. O(G) for G tracked guests.
 */
void metrics_tracker_event(struct metrics_tracker *t, uint64_t now_ms, time_t at, const uint8_t *guest,
			   const char *what, const char *why);

/* ---- rendering ------------------------------------------------------------- */

/* What this node knows of a guest's VMM here: /proc (valid) and its
 * control socket's STATUS (has_heartbeat: the guest sent one; has_disk). */
struct metrics_vmm {
	bool valid;
	double cpu_seconds;   /* user + system */
	uint64_t rss_bytes;
	uint64_t vm_bytes;
	bool has_heartbeat;
	uint64_t heartbeat_seq;
	double heartbeat_age_s; /* guest monotonic time since its last heartbeat */
	bool has_disk;          /* the guest has a disk: its calls, as the VMM counts them */
	uint64_t disk_reads, disk_writes, disk_flushes;
	uint64_t disk_read_bytes, disk_write_bytes;
	double disk_read_s, disk_write_s, disk_flush_s; /* host time spent in them */
};

/* Reads pid's CPU time (/proc/PID/stat) and memory (/proc/PID/status).
 * Returns 0, or -errno (-ESRCH: it is gone; -EINVAL: unreadable text). */
int metrics_vmm_proc(pid_t pid, struct metrics_vmm *out);
/* The same from the files' text (for tests): stat is /proc/PID/stat's line,
 * status /proc/PID/status, ticks the clock ticks per second. */
int metrics_vmm_parse(const char *stat, const char *status, long ticks, struct metrics_vmm *out);

/* What the renderers read: the snapshot, vmm[i] for snap->guests[i] (NULL:
 * none), the histograms and the recent events (oldest first). */
struct metrics_view {
	const struct pvclus_snapshot *snap;
	const struct metrics_vmm *vmm;
	const struct metrics_histogram *h; /* METRICS_DURATIONS of them */
	uint64_t events_total;
	const struct metrics_event *events;
	size_t n_events;
	time_t now;
};

/* Prometheus text exposition format 0.0.4 (docs/metrics.md lists the
 * metrics). O(N + G) lines. Errors in b->err. */
void metrics_render_prom(const struct metrics_view *v, struct mbuf *b);
/* The dashboard's JSON: this node, the nodes, the guests, the events. */
void metrics_render_json(const struct metrics_view *v, struct mbuf *b);

/* Copies the tracker's events into out (oldest first, at most METRICS_EVENTS).
 * Returns how many. */
size_t metrics_tracker_events(const struct metrics_tracker *t, struct metrics_event *out);

#endif
