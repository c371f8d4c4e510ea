/* See metrics.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"
#include "pvcluster/ha.h"

/* ---- the buffer ------------------------------------------------------------ */

void mbuf_printf(struct mbuf *b, const char *fmt, ...)
{
	if (b->err)
		return;
	for (;;) {
		va_list ap;
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void mbuf_free(struct mbuf *b)
{
	free(b->p);
	*b = (struct mbuf){ 0 };
}

void mbuf_prom_label(struct mbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			mbuf_printf(b, "\\\\");
		else if (*s == '"')
			mbuf_printf(b, "\\\"");
		else if (*s == '\n')
			mbuf_printf(b, "\\n");
		else
			mbuf_printf(b, "%c", *s);
	}
}

void mbuf_json_str(struct mbuf *b, const char *s)
{
	mbuf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			mbuf_printf(b, "\\%c", c);
		else if (c < 0x20)
			mbuf_printf(b, "\\u%04x", c);
		else
			mbuf_printf(b, "%c", c);
	}
	mbuf_printf(b, "\"");
}

/* ---- durations ------------------------------------------------------------- */

const double metrics_bucket_le[METRICS_BUCKETS] = { 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300 };

void metrics_histogram_observe(struct metrics_histogram *h, double seconds)
{
	h->count++;
	h->sum += seconds;
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		if (seconds <= metrics_bucket_le[i]) {
			h->bucket[i]++;
			return;
		}
	}
}

static struct metrics_tracker_guest *tracked(struct metrics_tracker *t, const uint8_t uuid[16])
{
	struct metrics_tracker_guest *free_slot = NULL;
	for (size_t i = 0; i < PVCLUS_SNAPSHOT_GUESTS_MAX; i++) {
		struct metrics_tracker_guest *g = &t->guests[i];
		if (g->used && memcmp(g->uuid, uuid, 16) == 0)
			return g;
		if (!g->used && !free_slot)
			free_slot = g;
	}
	if (free_slot) {
		*free_slot = (struct metrics_tracker_guest){ .used = true };
		memcpy(free_slot->uuid, uuid, 16);
	}
	return free_slot;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void observe_ms(struct metrics_tracker *t, enum metrics_duration d, uint64_t from, uint64_t now_ms)
{
	if (from && now_ms >= from)
		metrics_histogram_observe(&t->h[d], (double)(now_ms - from) / 1000.0);
}

/* A guest's HA step (what: its new state; why: "REASON -> STATE on NODE"). */
static void guest_step(struct metrics_tracker *t, const uint8_t uuid[16], uint64_t now_ms, const char *what,
		       const char *why)
{
	bool is_state = false;
	for (int s = 0; s < PVCLUS_HA_STATE_COUNT; s++)
		is_state |= strcmp(what, pvclus_ha_state_str((enum pvclus_ha_state)s)) == 0;
	if (!is_state)
		return;
	struct metrics_tracker_guest *g = tracked(t, uuid);
	if (!g)
		return;
	if (!strcmp(what, "fence-wait") && !g->failover_ms &&
	    (!strcmp(g->state, "running") || !strcmp(g->state, "migrating") || !g->state[0]))
		g->failover_ms = now_ms;
	else if (!strcmp(what, "recovering") && !g->recover_ms)
		g->recover_ms = now_ms;
	else if (!strcmp(what, "migrating") && !g->migrate_ms)
		g->migrate_ms = now_ms;
	else if (!strcmp(what, "running") || !strcmp(what, "stopped") || !strcmp(what, "error")) {
		if (!strcmp(what, "running") && starts_with(why, pvclus_ha_reason_str(PVCLUS_HA_R_MIGRATED)))
			observe_ms(t, METRICS_MIGRATION, g->migrate_ms, now_ms);
		if (!strcmp(what, "running") && starts_with(why, pvclus_ha_reason_str(PVCLUS_HA_R_STARTED))) {
			observe_ms(t, METRICS_FAILOVER, g->failover_ms, now_ms);
			observe_ms(t, METRICS_RECOVERY, g->recover_ms, now_ms);
		}
		g->failover_ms = g->recover_ms = g->migrate_ms = 0;
	}
	if (!strcmp(what, "stopped") || !strcmp(what, "error")) {
		/* Nothing to time until it runs again: the slot is free (a guest is
		 * stopped before it is deleted, so the table never fills up). */
		*g = (struct metrics_tracker_guest){ 0 };
		return;
	}
	snprintf(g->state, sizeof(g->state), "%s", what);
}

/* The node a cluster event names: its why starts "node NAME" (NAME ends at a
 * space, ':' or '('). Returns false when it does not. */
static bool event_node(const char *why, char *name, size_t len)
{
	if (!starts_with(why, "node "))
		return false;
	const char *s = why + 5;
	size_t n = strcspn(s, " :(");
	if (n == 0 || n >= len)
		return false;
	memcpy(name, s, n);
	name[n] = '\0';
	return true;
}

static void node_step(struct metrics_tracker *t, uint64_t now_ms, const char *what, const char *why)
{
	bool left = !strcmp(what, "node-left"), joined = !strcmp(what, "node-joined");
	bool fenced = !strcmp(what, t->fence_power ? "power-fenced" : "fenced");
	char name[64];
	if (!(left || joined || fenced) || !event_node(why, name, sizeof(name)))
		return;
	int slot = -1;
	for (int i = 0; i < PVCLUS_MAX_NODES; i++) {
		if (!strcmp(t->nodes[i].name, name)) {
			slot = i;
			break;
		}
		if (slot < 0 && !t->nodes[i].name[0])
			slot = i;
	}
	if (slot < 0)
		return;
	snprintf(t->nodes[slot].name, sizeof(t->nodes[slot].name), "%s", name);
	if (left && !t->nodes[slot].left_ms)
		t->nodes[slot].left_ms = now_ms;
	else if (fenced) {
		observe_ms(t, METRICS_FENCE, t->nodes[slot].left_ms, now_ms);
		t->nodes[slot].left_ms = 0;
	} else if (joined)
		t->nodes[slot].left_ms = 0;
}

void metrics_tracker_event(struct metrics_tracker *t, uint64_t now_ms, time_t at, const uint8_t *guest,
			   const char *what, const char *why)
{
	struct metrics_event *e = &t->events[t->next];
	*e = (struct metrics_event){ .at = at, .has_guest = guest != NULL };
	if (guest)
		memcpy(e->guest, guest, 16);
	snprintf(e->what, sizeof(e->what), "%s", what);
	snprintf(e->why, sizeof(e->why), "%s", why ? why : "");
	t->next = (t->next + 1) % METRICS_EVENTS;
	if (t->n_events < METRICS_EVENTS)
		t->n_events++;
	t->events_total++;
	if (guest)
		guest_step(t, guest, now_ms, what, e->why);
	else
		node_step(t, now_ms, what, e->why);
}

size_t metrics_tracker_events(const struct metrics_tracker *t, struct metrics_event *out)
{
	size_t first = (t->next + METRICS_EVENTS - t->n_events) % METRICS_EVENTS;
	for (size_t i = 0; i < t->n_events; i++)
		out[i] = t->events[(first + i) % METRICS_EVENTS];
	return t->n_events;
}

/* ---- /proc ------------------------------------------------------------------ */

int metrics_vmm_parse(const char *stat, const char *status, long ticks, struct metrics_vmm *out)
{
	*out = (struct metrics_vmm){ 0 };
	/* The command may hold spaces and parentheses: the fields follow the last ')'. */
	const char *s = strrchr(stat, ')');
	if (!s || ticks <= 0)
		return -EINVAL;
	unsigned long long utime, stime;
	/* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(s + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
		return -EINVAL;
	out->cpu_seconds = (double)(utime + stime) / (double)ticks;
	const char *rss = strstr(status, "\nVmRSS:"), *vm = strstr(status, "\nVmSize:");
	unsigned long long kb;
	if (rss && sscanf(rss + 7, " %llu kB", &kb) == 1)
		out->rss_bytes = kb * 1024;
	if (vm && sscanf(vm + 8, " %llu kB", &kb) == 1)
		out->vm_bytes = kb * 1024;
	out->valid = true;
	return 0;
}

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = read(fd, buf, len - 1);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	buf[n] = '\0';
	return 0;
}

int metrics_vmm_proc(pid_t pid, struct metrics_vmm *out)
{
	char path[64], stat[1024], status[4096];
	*out = (struct metrics_vmm){ 0 };
	if (pid <= 0)
		return -ESRCH;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int err = read_text(path, stat, sizeof(stat));
	if (err)
		return err;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	err = read_text(path, status, sizeof(status));
	if (err)
		return err;
	return metrics_vmm_parse(stat, status, sysconf(_SC_CLK_TCK), out);
}

/* ---- rendering: Prometheus ----------------------------------------------------- */

static const char *node_name(const struct pvclus_snapshot *s, uint32_t id)
{
	for (size_t i = 0; i < s->n_nodes; i++)
		if (s->nodes[i].id == id)
			return s->nodes[i].name;
	return "";
}

static void uuid_str(const uint8_t u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2],
		 u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static void help(struct mbuf *b, const char *name, const char *type, const char *text)
{
	mbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* name{node="..."} value, one line per node. */
static void node_gauge(struct mbuf *b, const struct pvclus_snapshot *s, const char *name, const char *text,
		       size_t field_off)
{
	help(b, name, "gauge", text);
	for (size_t i = 0; i < s->n_nodes; i++) {
		const struct pvclus_snapshot_node *n = &s->nodes[i];
		bool v = *(const bool *)((const char *)n + field_off);
		mbuf_printf(b, "%s{node=\"", name);
		mbuf_prom_label(b, n->name);
		mbuf_printf(b, "\"} %d\n", v ? 1 : 0);
	}
}

static void guest_labels(struct mbuf *b, const struct pvclus_snapshot_guest *g)
{
	char u[37];
	uuid_str(g->uuid, u);
	mbuf_printf(b, "guest=\"");
	mbuf_prom_label(b, g->name[0] ? g->name : u);
	mbuf_printf(b, "\",uuid=\"%s\"", u);
}

static const char *const duration_name[METRICS_DURATIONS] = {
	[METRICS_FAILOVER] = "pvha_failover_duration_seconds",
	[METRICS_FENCE] = "pvha_fence_duration_seconds",
	[METRICS_RECOVERY] = "pvha_recovery_duration_seconds",
	[METRICS_MIGRATION] = "pvha_migration_duration_seconds",
};
static const char *const duration_help[METRICS_DURATIONS] = {
	[METRICS_FAILOVER] = "From a running guest's node leaving to the guest running again, as this node's agent logged it.",
	[METRICS_FENCE] = "From a node leaving to its fence being confirmed, as this node's agent logged it.",
	[METRICS_RECOVERY] = "From a guest's node fence being confirmed to the guest running again.",
	[METRICS_MIGRATION] = "From a live migration's start to the guest running on its target.",
};

static void render_histograms(const struct metrics_view *v, struct mbuf *b)
{
	for (int d = 0; d < METRICS_DURATIONS; d++) {
		const struct metrics_histogram *h = &v->h[d];
		const char *n = duration_name[d];
		help(b, n, "histogram", duration_help[d]);
		uint64_t cum = 0;
		for (size_t i = 0; i < METRICS_BUCKETS; i++) {
			cum += h->bucket[i];
			mbuf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", n, metrics_bucket_le[i], (unsigned long long)cum);
		}
		mbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", n, (unsigned long long)h->count);
		mbuf_printf(b, "%s_sum %.3f\n%s_count %llu\n", n, h->sum, n, (unsigned long long)h->count);
	}
}

/* The guests' disk counters, from their VMMs on this node. */
static void render_disks(const struct metrics_view *v, struct mbuf *b)
{
	static const struct {
		const char *name, *help;
		size_t off;
		bool seconds;
	} c[] = {
		{ "pvha_guest_disk_reads_total", "Disk reads of the guest (its VMM on this node).",
		  offsetof(struct metrics_vmm, disk_reads), false },
		{ "pvha_guest_disk_writes_total", "Disk writes of the guest.", offsetof(struct metrics_vmm, disk_writes),
		  false },
		{ "pvha_guest_disk_flushes_total", "Disk flushes of the guest.",
		  offsetof(struct metrics_vmm, disk_flushes), false },
		{ "pvha_guest_disk_read_bytes_total", "Bytes the guest read from its disk.",
		  offsetof(struct metrics_vmm, disk_read_bytes), false },
		{ "pvha_guest_disk_written_bytes_total", "Bytes the guest wrote to its disk.",
		  offsetof(struct metrics_vmm, disk_write_bytes), false },
		{ "pvha_guest_disk_read_seconds_total", "Host time spent in the guest's disk reads.",
		  offsetof(struct metrics_vmm, disk_read_s), true },
		{ "pvha_guest_disk_write_seconds_total",
		  "Host time spent in the guest's disk writes (a rados write returns once queued).",
		  offsetof(struct metrics_vmm, disk_write_s), true },
		{ "pvha_guest_disk_flush_seconds_total", "Host time spent in the guest's disk flushes.",
		  offsetof(struct metrics_vmm, disk_flush_s), true },
	};
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		help(b, c[k].name, "counter", c[k].help);
		for (size_t i = 0; v->vmm && i < v->snap->n_guests; i++) {
			const struct metrics_vmm *m = &v->vmm[i];
			if (!m->has_disk)
				continue;
			const char *field = (const char *)m + c[k].off;
			mbuf_printf(b, "%s{", c[k].name);
			guest_labels(b, &v->snap->guests[i]);
			if (c[k].seconds)
				mbuf_printf(b, "} %.6f\n", *(const double *)field);
			else
				mbuf_printf(b, "} %llu\n", (unsigned long long)*(const uint64_t *)field);
		}
	}
}

/* The guests' gauges read straight from the snapshot. */
enum guest_field { GF_WANT_RUNNING, GF_RESTARTS, GF_START_FAILURES, GF_HB_TIMEOUT, GF_HB_RESETS, GF_MEM_SIZE };

static const struct {
	const char *name, *help;
	enum guest_field field;
	bool monitored_only; /* only guests whose heartbeat is monitored */
} guest_gauges[] = {
	{ "pvha_guest_want_running", "The guest's desired state: 1 running, 0 stopped.", GF_WANT_RUNNING, false },
	{ "pvha_guest_restarts", "Crash restarts since the guest's last stable run.", GF_RESTARTS, false },
	{ "pvha_guest_start_failures", "Failed starts of the guest in a row.", GF_START_FAILURES, false },
	{ "pvha_guest_heartbeat_timeout_seconds", "The guest's heartbeat timeout (guests whose heartbeat is monitored).",
	  GF_HB_TIMEOUT, true },
	{ "pvha_guest_heartbeat_resets",
	  "Restarts in place this node made for the guest's lost heartbeat, within its window history.", GF_HB_RESETS,
	  true },
	{ "pvha_guest_memory_size_bytes", "The guest's configured memory.", GF_MEM_SIZE, false },
};

static uint64_t guest_value(const struct pvclus_snapshot_guest *g, enum guest_field f)
{
	switch (f) {
	case GF_WANT_RUNNING: return g->want_running ? 1 : 0;
	case GF_RESTARTS: return g->restarts;
	case GF_START_FAILURES: return g->start_failures;
	case GF_HB_TIMEOUT: return g->heartbeat_timeout_s;
	case GF_HB_RESETS: return g->heartbeat_resets;
	case GF_MEM_SIZE: return g->mem_size;
	}
	return 0;
}

static void render_guests(const struct metrics_view *v, struct mbuf *b)
{
	const struct pvclus_snapshot *s = v->snap;
	help(b, "pvha_guest_state", "gauge", "1 for the guest's HA state, 0 for the others.");
	for (size_t i = 0; i < s->n_guests; i++) {
		for (int st = 0; st < PVCLUS_HA_STATE_COUNT; st++) {
			mbuf_printf(b, "pvha_guest_state{");
			guest_labels(b, &s->guests[i]);
			mbuf_printf(b, ",state=\"%s\"} %d\n", pvclus_ha_state_str((enum pvclus_ha_state)st),
				    (int)s->guests[i].state == st);
		}
	}
	help(b, "pvha_guest_owner", "gauge", "1 on the node that runs (or is placed to run) the guest.");
	for (size_t i = 0; i < s->n_guests; i++) {
		if (!s->guests[i].owner)
			continue;
		mbuf_printf(b, "pvha_guest_owner{");
		guest_labels(b, &s->guests[i]);
		mbuf_printf(b, ",node=\"");
		mbuf_prom_label(b, node_name(s, s->guests[i].owner));
		mbuf_printf(b, "\"} 1\n");
	}
	for (size_t k = 0; k < sizeof(guest_gauges) / sizeof(guest_gauges[0]); k++) {
		help(b, guest_gauges[k].name, "gauge", guest_gauges[k].help);
		for (size_t i = 0; i < s->n_guests; i++) {
			if (guest_gauges[k].monitored_only && !s->guests[i].heartbeat_timeout_s)
				continue;
			mbuf_printf(b, "%s{", guest_gauges[k].name);
			guest_labels(b, &s->guests[i]);
			mbuf_printf(b, "} %llu\n", (unsigned long long)guest_value(&s->guests[i], guest_gauges[k].field));
		}
	}
	/* The VMM's own figures: only the node that runs it has them. */
	static const char *const vmm[3][3] = {
		{ "pvha_guest_vmm_cpu_seconds_total", "counter", "CPU time (user + system) of the guest's VMM on this node." },
		{ "pvha_guest_vmm_resident_memory_bytes", "gauge", "Resident memory of the guest's VMM on this node." },
		{ "pvha_guest_vmm_virtual_memory_bytes", "gauge", "Virtual memory of the guest's VMM on this node." },
	};
	for (int m = 0; m < 3; m++) {
		help(b, vmm[m][0], vmm[m][1], vmm[m][2]);
		for (size_t i = 0; v->vmm && i < s->n_guests; i++) {
			const struct metrics_vmm *p = &v->vmm[i];
			if (!p->valid)
				continue;
			mbuf_printf(b, "%s{", vmm[m][0]);
			guest_labels(b, &s->guests[i]);
			if (m == 0)
				mbuf_printf(b, "} %.2f\n", p->cpu_seconds);
			else
				mbuf_printf(b, "} %llu\n", (unsigned long long)(m == 1 ? p->rss_bytes : p->vm_bytes));
		}
	}
	render_disks(v, b);
	help(b, "pvha_guest_heartbeat_age_seconds", "gauge",
	     "Guest time since the guest's last heartbeat, from its VMM on this node (guests that send them).");
	for (size_t i = 0; v->vmm && i < s->n_guests; i++) {
		if (!v->vmm[i].has_heartbeat)
			continue;
		mbuf_printf(b, "pvha_guest_heartbeat_age_seconds{");
		guest_labels(b, &s->guests[i]);
		mbuf_printf(b, "} %.3f\n", v->vmm[i].heartbeat_age_s);
	}
}

void metrics_render_prom(const struct metrics_view *v, struct mbuf *b)
{
	const struct pvclus_snapshot *s = v->snap;
	help(b, "pvha_agent_up", "gauge", "1: this node's agent answers; the node label names it.");
	mbuf_printf(b, "pvha_agent_up{node=\"");
	mbuf_prom_label(b, node_name(s, s->local));
	mbuf_printf(b, "\"} 1\n");
	help(b, "pvha_agent_quorate", "gauge", "1 while this node's partition is quorate.");
	mbuf_printf(b, "pvha_agent_quorate %d\n", s->quorate ? 1 : 0);
	help(b, "pvha_agent_leader", "gauge", "1 while this node's agent acts as the cluster's leader.");
	mbuf_printf(b, "pvha_agent_leader %d\n", s->leads ? 1 : 0);
	help(b, "pvha_agent_has_state", "gauge", "1 when this node's guest table is the cluster's.");
	mbuf_printf(b, "pvha_agent_has_state %d\n", s->have_state ? 1 : 0);
	help(b, "pvha_agent_events_total", "counter", "Event-log entries this node's agent wrote since it started.");
	mbuf_printf(b, "pvha_agent_events_total %llu\n", (unsigned long long)v->events_total);

	node_gauge(b, s, "pvha_node_member", "1 while the node's agent is in the cluster's group.",
		   offsetof(struct pvclus_snapshot_node, member));
	node_gauge(b, s, "pvha_node_online", "1 while the node can take guests (member, hello, storage).",
		   offsetof(struct pvclus_snapshot_node, online));
	node_gauge(b, s, "pvha_node_fenced", "1 while the node's fence is confirmed and not lifted.",
		   offsetof(struct pvclus_snapshot_node, fenced));
	node_gauge(b, s, "pvha_node_storage_reachable", "1 while the node says it can write to RADOS.",
		   offsetof(struct pvclus_snapshot_node, storage_ok));
	help(b, "pvha_node_leader", "gauge", "1 for the node this agent sees as the leader.");
	for (size_t i = 0; i < s->n_nodes; i++) {
		mbuf_printf(b, "pvha_node_leader{node=\"");
		mbuf_prom_label(b, s->nodes[i].name);
		mbuf_printf(b, "\"} %d\n", s->nodes[i].id == s->leader && s->leader ? 1 : 0);
	}
	help(b, "pvha_node_mode", "gauge", "1 for the node's maintenance mode, 0 for the others.");
	static const char *const modes[] = { "active", "draining", "maintenance" };
	for (size_t i = 0; i < s->n_nodes; i++) {
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
			mbuf_printf(b, "pvha_node_mode{node=\"");
			mbuf_prom_label(b, s->nodes[i].name);
			mbuf_printf(b, "\",mode=\"%s\"} %d\n", modes[m],
				    s->nodes[i].mode && !strcmp(s->nodes[i].mode, modes[m]));
		}
	}
	help(b, "pvha_node_guests", "gauge", "Guests whose HA record names the node (owner or migration target).");
	for (size_t i = 0; i < s->n_nodes; i++) {
		mbuf_printf(b, "pvha_node_guests{node=\"");
		mbuf_prom_label(b, s->nodes[i].name);
		mbuf_printf(b, "\"} %u\n", s->nodes[i].guests);
	}
	render_guests(v, b);
	render_histograms(v, b);
}

/* ---- rendering: JSON ------------------------------------------------------------ */

static const char *json_bool(bool v)
{
	return v ? "true" : "false";
}

void metrics_render_json(const struct metrics_view *v, struct mbuf *b)
{
	const struct pvclus_snapshot *s = v->snap;
	mbuf_printf(b, "{\"node\":");
	mbuf_json_str(b, node_name(s, s->local));
	mbuf_printf(b, ",\"leader\":");
	mbuf_json_str(b, node_name(s, s->leader));
	mbuf_printf(b, ",\"quorate\":%s,\"has_state\":%s,\"now\":%lld,\"nodes\":[", json_bool(s->quorate),
		    json_bool(s->have_state), (long long)v->now);
	for (size_t i = 0; i < s->n_nodes; i++) {
		const struct pvclus_snapshot_node *n = &s->nodes[i];
		mbuf_printf(b, "%s{\"name\":", i ? "," : "");
		mbuf_json_str(b, n->name);
		mbuf_printf(b, ",\"id\":%u,\"address\":", n->id);
		mbuf_json_str(b, n->addr);
		mbuf_printf(b, ",\"member\":%s,\"online\":%s,\"fenced\":%s,\"fencing\":%s,\"storage\":%s,"
			       "\"leader\":%s,\"mode\":",
			    json_bool(n->member), json_bool(n->online), json_bool(n->fenced), json_bool(n->fencing),
			    json_bool(n->storage_ok), json_bool(n->id == s->leader && s->leader));
		mbuf_json_str(b, n->mode ? n->mode : "");
		mbuf_printf(b, ",\"guests\":%u}", n->guests);
	}
	mbuf_printf(b, "],\"guests\":[");
	for (size_t i = 0; i < s->n_guests; i++) {
		const struct pvclus_snapshot_guest *g = &s->guests[i];
		char u[37];
		uuid_str(g->uuid, u);
		mbuf_printf(b, "%s{\"name\":", i ? "," : "");
		mbuf_json_str(b, g->name[0] ? g->name : u);
		mbuf_printf(b, ",\"uuid\":\"%s\",\"state\":\"%s\",\"want_running\":%s,\"owner\":", u,
			    pvclus_ha_state_str(g->state), json_bool(g->want_running));
		mbuf_json_str(b, node_name(s, g->owner));
		mbuf_printf(b, ",\"target\":");
		mbuf_json_str(b, node_name(s, g->target));
		mbuf_printf(b, ",\"restarts\":%u,\"mem_size\":%llu", g->restarts, (unsigned long long)g->mem_size);
		if (v->vmm && v->vmm[i].valid)
			mbuf_printf(b, ",\"vmm_cpu_seconds\":%.2f,\"vmm_rss_bytes\":%llu", v->vmm[i].cpu_seconds,
				    (unsigned long long)v->vmm[i].rss_bytes);
		if (v->vmm && v->vmm[i].has_heartbeat)
			mbuf_printf(b, ",\"heartbeat_age_s\":%.3f", v->vmm[i].heartbeat_age_s);
		mbuf_printf(b, "}");
	}
	mbuf_printf(b, "],\"events\":[");
	for (size_t i = 0; i < v->n_events; i++) {
		const struct metrics_event *e = &v->events[i];
		mbuf_printf(b, "%s{\"at\":%lld,\"guest\":", i ? "," : "", (long long)e->at);
		const char *gname = "";
		char u[37] = "";
		if (e->has_guest) {
			uuid_str(e->guest, u);
			gname = u;
			for (size_t k = 0; k < s->n_guests; k++)
				if (!memcmp(s->guests[k].uuid, e->guest, 16) && s->guests[k].name[0])
					gname = s->guests[k].name;
		}
		mbuf_json_str(b, gname);
		mbuf_printf(b, ",\"what\":");
		mbuf_json_str(b, e->what);
		mbuf_printf(b, ",\"why\":");
		mbuf_json_str(b, e->why);
		mbuf_printf(b, "}");
	}
	mbuf_printf(b, "]}\n");
}
