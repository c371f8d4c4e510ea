/*
 * pvha: the command-line client. Human output by default, --json for scripts.
 * Exit status: 0 done; 1 the request was refused or failed; 2 bad usage
 * (including a guest image that cannot be sent), found before pvhad is asked.
 *
 * The commands sit in one table (commands[] below), which also writes --help:
 * cluster status|rebalance|roll, node list|drain|resume, events and guest
 * create|list|show|start|stop|delete|set|migrate ask this node's pvhad over its
 * control API (proto/api.proto; the maintenance commands are in pvha_maint.c);
 * vmm talks to one pvha-vmm directly.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <qb/qbipcc.h>
#include <uuid/uuid.h>

#include "hook.h"
#include "keyring.h"
#include "parse.h"
#include "pvha_cli.h"
#include "pvproto/link.h"
#include "pvstore/pvstore.h"
#include "proto/api.pb-c.h"
#include "vmmctl.h"

#define MiB (1ull << 20)
#define IMAGE_MAX (900u << 10)  /* GuestSpecIn.image: what one API message carries */
#define CMDLINE_MAX 1023        /* GuestSpecIn.cmdline */
#define WAIT_MAX_S 86400        /* --wait */
#define POLL_NS 100000000L      /* --wait polls GUEST_SHOW this often */

/* Prints "pvha CMD: message" to stderr and returns 2, the exit code of bad usage. */
int usage_err(const struct command *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "pvha %s%s%s: ", c->group, c->verb ? " " : "", c->verb ? c->verb : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/*
 * Sorts argv into the options of opts and at most one positional word: with
 * posname set, exactly one, stored in *pos; without, none. An option may come
 * before or after the word and may be given once. Returns 0, or 2 after a
 * message that names the argument at fault.
 */
int args_parse(const struct command *c, int argc, char **argv, const struct opt *opts,
		      const char *posname, const char **pos)
{
	bool got = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-') {
			if (!posname || got)
				return usage_err(c, "unexpected argument '%s'", a);
			*pos = a;
			got = true;
			continue;
		}
		const struct opt *o = opts;
		while (o && o->name && strcmp(o->name, a))
			o++;
		if (!o || !o->name)
			return usage_err(c, "unknown option '%s'%s", a,
					 strcmp(a, "--json") ? "" : " (--json goes before the command)");
		if (o->flag) {
			*o->flag = true;
		} else if (i + 1 >= argc) {
			return usage_err(c, "%s wants a value", a);
		} else if (*o->arg) {
			return usage_err(c, "%s given twice", a);
		} else {
			*o->arg = argv[++i];
		}
	}
	if (posname && !got)
		return usage_err(c, "missing %s", posname);
	return 0;
}

/* A whole number in lo..hi for option name, "-" allowed. Returns 0 or 2; *out is
 * the number, or 0 when it returns 2 (written on every path, so that no caller
 * depends on the compiler seeing that usage_err never returns 0). */
int num_arg(const struct command *c, const char *name, const char *s, int64_t lo, int64_t hi,
		   int64_t *out)
{
	*out = 0;
	bool neg = s[0] == '-';
	uint64_t v;
	bool ok = !pv_parse_u64(s + neg, &v) && v <= (uint64_t)INT64_MAX;
	int64_t x = ok ? (neg ? -(int64_t)v : (int64_t)v) : 0;
	if (!ok || x < lo || x > hi)
		return usage_err(c, "%s '%s': want a whole number from %lld to %lld", name, s,
				 (long long)lo, (long long)hi);
	*out = x;
	return 0;
}

/* A size (pv_parse_size) for option name in min..max and a multiple of align.
 * Returns 0 or 2; *out is the size, or 0 when it returns 2 (as num_arg). */
static int size_arg(const struct command *c, const char *name, const char *s, uint64_t min,
		    uint64_t max, uint64_t align, const char *want, uint64_t *out)
{
	uint64_t v;
	*out = 0;
	if (pv_parse_size(s, &v) || v < min || v > max || v % align)
		return usage_err(c, "%s '%s': want %s", name, s, want);
	*out = v;
	return 0;
}

/*
 * A guest as the API names it: [A-Za-z0-9._-], 1..63 bytes, not starting with
 * '.' or '-' (a uuid passes too). Returns 0 or 2 naming what (e.g. "NAME").
 */
int guest_arg(const struct command *c, const char *what, const char *s)
{
	if (!pv_name_ok(s))
		return usage_err(c, "%s '%s': want 1 to 63 of A-Z a-z 0-9 . _ -, not starting with . or -",
				 what, s);
	return 0;
}

/*
 * Reads the guest image at path into *buf (malloc'd, the caller frees) and
 * *len. Refuses, with a message and 2, a file that cannot be read, is over
 * IMAGE_MAX bytes or does not start with the ELF magic. Costs one read of at
 * most IMAGE_MAX + 1 bytes.
 */
static int image_read(const struct command *c, const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return usage_err(c, "--image '%s': %s", path, strerror(errno));
	uint8_t *b = malloc(IMAGE_MAX + 1);
	if (!b) {
		fclose(f);
		fprintf(stderr, "pvha: out of memory\n");
		return 1;
	}
	size_t n = fread(b, 1, IMAGE_MAX + 1, f);
	int rc = 0;
	if (ferror(f))
		rc = usage_err(c, "--image '%s': %s", path, strerror(errno));
	else if (n > IMAGE_MAX)
		rc = usage_err(c, "--image '%s': over %u KiB, the most one request carries", path,
			       IMAGE_MAX >> 10);
	else if (n < 4 || memcmp(b, "\x7f" "ELF", 4))
		rc = usage_err(c, "--image '%s': not an ELF file", path);
	fclose(f);
	if (rc) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = n;
	return 0;
}

void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Prints ,"key":"s" (s JSON-escaped): every field of an object but its first. */
void json_field(const char *key, const char *s)
{
	printf(",\"%s\":", key);
	json_str(s);
}

static void print_status(const Pvha__VmmStatus *s, bool json)
{
	char id[37] = "";
	if (s->guest_id.len == 16)
		uuid_unparse(s->guest_id.data, id);
	if (json) {
		printf("{\"state\":");
		json_str(s->state);
		json_field("stop_kind", s->stop_kind);
		json_field("reason", s->reason);
		printf(",\"exit_code\":%lld,\"hypercalls\":%llu,\"guest_mono_ns\":%llu,"
		       "\"heartbeat_seq\":%llu,\"heartbeat_age_ms\":%llu,\"mem_size\":%llu",
		       (long long)s->exit_code, (unsigned long long)s->hypercalls,
		       (unsigned long long)s->guest_mono_ns, (unsigned long long)s->heartbeat_seq,
		       (unsigned long long)s->heartbeat_age_ms, (unsigned long long)s->mem_size);
		json_field("backend", s->backend);
		printf(",\"pid\":%u", s->pid);
		json_field("guest_id", id);
		json_field("disk", s->disk);
		json_field("storage_addr", s->storage_addr);
		if (s->incoming_port)
			printf(",\"incoming_port\":%u", s->incoming_port);
		if (s->net_address[0]) {
			json_field("net_address", s->net_address);
			printf(",\"net_handles\":%u,\"net_listeners\":%u", s->net_handles, s->net_listeners);
		}
		if (s->migration_phase[0]) {
			printf(",\"migration\":{\"phase\":");
			json_str(s->migration_phase);
			printf(",\"round\":%u,\"bytes_sent\":%llu,\"pages_left\":%llu,\"rate_bps\":%llu,"
			       "\"downtime_us\":%llu,\"total_ms\":%llu,\"released\":%s,\"forced\":%s",
			       s->migration_round, (unsigned long long)s->migration_bytes_sent,
			       (unsigned long long)s->migration_pages_left, (unsigned long long)s->migration_rate,
			       (unsigned long long)s->migration_downtime_us, (unsigned long long)s->migration_total_ms,
			       s->migration_released ? "true" : "false", s->migration_forced ? "true" : "false");
			json_field("peer", s->migration_peer);
			json_field("reason", s->migration_reason);
			printf("}");
		}
		printf("}\n");
		return;
	}
	printf("guest:       %s\n", id);
	printf("state:       %s%s%s\n", s->state, s->reason[0] ? " — " : "", s->reason);
	printf("backend:     %s, %llu MiB RAM, pid %u\n", s->backend,
	       (unsigned long long)(s->mem_size >> 20), s->pid);
	printf("guest time:  %.3f s, %llu hypercalls\n", (double)s->guest_mono_ns / 1e9,
	       (unsigned long long)s->hypercalls);
	if (s->heartbeat_seq)
		printf("heartbeat:   seq %llu, %llu ms ago\n", (unsigned long long)s->heartbeat_seq,
		       (unsigned long long)s->heartbeat_age_ms);
	else
		printf("heartbeat:   none yet\n");
	if (s->disk[0])
		printf("disk:        %s%s%s\n", s->disk, s->storage_addr[0] ? ", client " : "",
		       s->storage_addr);
	if (s->incoming_port)
		printf("incoming:    listening on port %u\n", s->incoming_port);
	if (s->net_address[0])
		printf("network:     %s, %u sockets open (%u listening)\n", s->net_address, s->net_handles,
		       s->net_listeners);
	if (s->migration_phase[0]) {
		printf("migration:   %s with %s: round %u, %llu bytes sent, %llu pages left, %llu bytes/s",
		       s->migration_phase, or_dash(s->migration_peer), s->migration_round,
		       (unsigned long long)s->migration_bytes_sent, (unsigned long long)s->migration_pages_left,
		       (unsigned long long)s->migration_rate);
		if (s->migration_downtime_us)
			printf(", downtime %.2f ms", (double)s->migration_downtime_us / 1000.0);
		printf("%s%s\n", s->migration_reason[0] ? ": " : "", s->migration_reason);
	}
}

/*
 * One request to this node's pvhad (version set here). Returns 0 and *reply
 * (the caller frees it), or 1 after printing why: pvhad unreachable, its
 * reply short or undecodable, or its refusal with its message.
 */
static int api_call_once(Pvha__ApiRequest *req, Pvha__ApiReply **reply, bool quiet_nodata);

/* A node that has just joined (or come back) answers guest requests only
 * once it holds the cluster's table (-ENODATA until then, a few seconds at
 * most): ask again meanwhile, for up to NODATA_WAIT_S. */
#define NODATA_WAIT_S 15

int api_call(Pvha__ApiRequest *req, Pvha__ApiReply **reply)
{
	for (int i = 0; i < NODATA_WAIT_S * 5; i++) {
		int rc = api_call_once(req, reply, true);
		if (rc != -ENODATA)
			return rc;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 200000000 };
		nanosleep(&ts, NULL);
	}
	return api_call_once(req, reply, false);
}

static int api_call_once(Pvha__ApiRequest *req, Pvha__ApiReply **reply, bool quiet_nodata)
{
	static uint8_t rbuf[1u << 20];
	req->version = 1;
	size_t len = pvha__api_request__get_packed_size(req);
	uint8_t *buf = malloc(sizeof(struct qb_ipc_request_header) + len);
	if (!buf) {
		fprintf(stderr, "pvha: out of memory\n");
		return 1;
	}
	qb_ipcc_connection_t *c = qb_ipcc_connect("pvhad", 1u << 20);
	if (!c) {
		fprintf(stderr, "pvha: cannot reach pvhad on this node: %s%s\n", strerror(errno),
			errno == EACCES ? " (the API is for root)" : " (is pvhad running?)");
		free(buf);
		return 1;
	}
	struct qb_ipc_request_header *h = (struct qb_ipc_request_header *)buf;
	h->id = 1;
	h->size = (int32_t)(sizeof(*h) + len);
	pvha__api_request__pack(req, buf + sizeof(*h));
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(*h) + len };
	ssize_t n = qb_ipcc_sendv_recv(c, &iov, 1, rbuf, sizeof(rbuf), 30000);
	free(buf);
	qb_ipcc_disconnect(c);
	if (n < (ssize_t)sizeof(struct qb_ipc_response_header)) {
		fprintf(stderr, "pvha: pvhad did not answer: %s\n", n < 0 ? strerror((int)-n) : "short reply");
		return 1;
	}
	*reply = pvha__api_reply__unpack(NULL, (size_t)n - sizeof(struct qb_ipc_response_header),
					 rbuf + sizeof(struct qb_ipc_response_header));
	if (!*reply) {
		fprintf(stderr, "pvha: pvhad's reply does not decode\n");
		return 1;
	}
	if ((*reply)->error) {
		int err = (*reply)->error;
		if (err == -ENODATA && quiet_nodata) {
			pvha__api_reply__free_unpacked(*reply, NULL);
			return -ENODATA;
		}
		fprintf(stderr, "pvha: %s\n", (*reply)->message[0] ? (*reply)->message : strerror(-err));
		pvha__api_reply__free_unpacked(*reply, NULL);
		return 1;
	}
	return 0;
}

/* api_call for a request that sets only op and guest (NULL: none). */
int api_op(Pvha__ApiRequest__Op op, const char *guest, Pvha__ApiReply **reply)
{
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	req.op = op;
	if (guest)
		req.guest = (char *)guest;
	return api_call(&req, reply);
}

/* The one guest of a GUEST_SHOW or GUEST_CREATE reply, or NULL after saying so. */
const Pvha__GuestInfo *reply_guest(const Pvha__ApiReply *rep)
{
	if (rep->n_guests == 1)
		return rep->guests[0];
	fprintf(stderr, "pvha: pvhad's reply holds %zu guests, not one\n", rep->n_guests);
	return NULL;
}

static void print_cluster(const Pvha__ClusterStatus *s, bool nodes_only, bool json)
{
	if (json) {
		printf("{\"local\":");
		json_str(s->local_name);
		printf(",\"local_nodeid\":%u,\"quorate\":%s", s->local_nodeid, s->quorate ? "true" : "false");
		json_field("leader", s->leader_name);
		printf(",\"leader_nodeid\":%u,\"ring_id\":%llu,\"storage_ok\":%s",
		       s->leader_nodeid, (unsigned long long)s->ring_id, s->storage_ok ? "true" : "false");
		json_field("incarnation", s->incarnation);
		printf(",\"rebalance_auto\":%s,\"rebalance_threshold\":%.4f,\"rebalance_checks\":%llu,"
		       "\"imbalance\":%.4f", s->rebalance_auto ? "true" : "false", s->rebalance_threshold,
		       (unsigned long long)s->rebalance_checks, s->imbalance);
		printf(",\"nodes\":[");
		for (size_t i = 0; i < s->n_nodes; i++) {
			const Pvha__NodeInfo *n = s->nodes[i];
			printf("%s{\"nodeid\":%u", i ? "," : "", n->nodeid);
			json_field("name", n->name);
			printf(",\"member\":%s,\"leader\":%s,\"local\":%s",
			       n->member ? "true" : "false", n->leader ? "true" : "false",
			       n->local ? "true" : "false");
			json_field("addr", n->addr);
			json_field("incarnation", n->incarnation);
			json_field("mode", n->mode);
			printf(",\"guests\":%u", n->guests);
			printf(",\"mem_bytes\":%llu,\"cpus\":%u}", (unsigned long long)n->mem_bytes, n->cpus);
		}
		printf("]}\n");
		return;
	}
	if (!nodes_only) {
		printf("node:     %s (id %u)\n", s->local_name, s->local_nodeid);
		printf("quorum:   %s\n", s->quorate ? "quorate" : "NOT quorate: guests here must stop");
		printf("leader:   %s\n", s->leader_nodeid ? s->leader_name : "none");
		printf("storage:  %s\n", s->storage_ok ? "reachable" : "NOT reachable");
		if (s->rebalance_auto)
			printf("balance:  automatic above %.2f%s\n", s->rebalance_threshold,
			       s->rebalance_checks ? "" : " (this node has not led a check yet)");
		else
			printf("balance:  by hand (pvha cluster rebalance)\n");
		printf("\n");
	}
	printf("%-4s %-12s %-8s %-12s %6s %-16s %s\n", "ID", "NODE", "STATE", "MODE", "GUESTS", "ADDRESS", "ROLE");
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Pvha__NodeInfo *n = s->nodes[i];
		printf("%-4u %-12s %-8s %-12s %6u %-16s %s%s\n", n->nodeid, n->name, n->member ? "online" : "offline",
		       or_dash(n->mode), n->guests, n->addr[0] ? n->addr : "-", n->leader ? "leader" : "",
		       n->local ? (n->leader ? ", this node" : "this node") : "");
	}
}

/* A guest's rules and dependencies on one line: "anti-affinity web, affinity
 * db (soft); after db" (compact: "anti:web aff:db:soft after:db"); "-" when
 * it has none. */
static void print_placement(const Pvha__GuestInfo *g, bool compact)
{
	if (!g->n_rules && !g->n_depends_on) {
		printf("-");
		return;
	}
	for (size_t i = 0; i < g->n_rules; i++) {
		const Pvha__GuestRule *r = g->rules[i];
		if (compact)
			printf("%s%s:%s%s", i ? " " : "", r->anti ? "anti" : "aff", r->group, r->soft ? ":soft" : "");
		else
			printf("%s%s %s%s", i ? ", " : "", r->anti ? "anti-affinity" : "affinity", r->group,
			       r->soft ? " (soft)" : "");
	}
	for (size_t i = 0; i < g->n_depends_on; i++) {
		if (compact)
			printf("%safter:%s", i || g->n_rules ? " " : "", g->depends_on[i]);
		else
			printf("%s%s", i ? ", " : (g->n_rules ? "; after " : "after "), g->depends_on[i]);
	}
}

/* One GuestInfo as a JSON object, every field, no newline. */
static void print_guest_json(const Pvha__GuestInfo *g)
{
	printf("{\"uuid\":");
	json_str(g->uuid);
	json_field("name", g->name);
	json_field("state", g->state);
	printf(",\"want_running\":%s,\"owner_nodeid\":%u", g->want_running ? "true" : "false",
	       g->owner_nodeid);
	json_field("owner", g->owner);
	printf(",\"mem_size\":%llu,\"disk_size\":%llu,\"priority\":%d",
	       (unsigned long long)g->mem_size, (unsigned long long)g->disk_size, (int)g->priority);
	json_field("cmdline", g->cmdline);
	json_field("image_sha256", g->image_sha256);
	json_field("reason", g->reason);
	printf(",\"restarts\":%u", g->restarts);
	printf(",\"rules\":[");
	for (size_t i = 0; i < g->n_rules; i++) {
		printf("%s{\"group\":", i ? "," : "");
		json_str(g->rules[i]->group);
		printf(",\"anti\":%s,\"soft\":%s}", g->rules[i]->anti ? "true" : "false",
		       g->rules[i]->soft ? "true" : "false");
	}
	printf("],\"depends_on\":[");
	for (size_t i = 0; i < g->n_depends_on; i++) {
		printf("%s", i ? "," : "");
		json_str(g->depends_on[i]);
	}
	printf("]");
	json_field("waiting", g->waiting);
	json_field("address", g->address);
	json_field("last_step", g->last_step);
	printf(",\"migrations\":%u", g->migrations);
	printf(",\"heartbeat_timeout_s\":%u,\"heartbeat_max_resets\":%u,\"heartbeat_window_s\":%u,"
	       "\"heartbeat_moved\":%s",
	       g->heartbeat_timeout_s, g->heartbeat_max_resets, g->heartbeat_window_s,
	       g->heartbeat_moved ? "true" : "false");
	if (g->target_nodeid) {
		json_field("target", g->target);
		printf(",\"target_nodeid\":%u", g->target_nodeid);
	}
	if (g->migration) {
		const Pvha__MigrationInfo *m = g->migration;
		printf(",\"migration\":{\"phase\":");
		json_str(m->phase);
		json_field("source", m->source);
		json_field("target", m->target);
		printf(",\"round\":%u,\"bytes_sent\":%llu,\"pages_left\":%llu,\"rate_bps\":%llu,"
		       "\"downtime_us\":%llu,\"total_ms\":%llu",
		       m->round, (unsigned long long)m->bytes_sent, (unsigned long long)m->pages_left,
		       (unsigned long long)m->rate_bps, (unsigned long long)m->downtime_us,
		       (unsigned long long)m->total_ms);
		json_field("error", m->error);
		printf("}");
	}
	printf("}");
}

/* A string field for the human listings: "-" when empty. */
const char *or_dash(const char *s)
{
	return s[0] ? s : "-";
}

/* One GuestInfo, every field, one per line (json: one object). */
static void print_guest(const Pvha__GuestInfo *g, bool json)
{
	if (json) {
		print_guest_json(g);
		putchar('\n');
		return;
	}
	printf("name:       %s\n", g->name);
	printf("uuid:       %s\n", g->uuid);
	printf("state:      %s\n", g->state);
	printf("desired:    %s\n", g->want_running ? "running" : "stopped");
	if (g->owner_nodeid)
		printf("node:       %s (id %u)\n", or_dash(g->owner), g->owner_nodeid);
	else
		printf("node:       -\n");
	printf("memory:     %llu MiB\n", (unsigned long long)(g->mem_size / MiB));
	if (g->disk_size % MiB)
		printf("disk:       %llu bytes\n", (unsigned long long)g->disk_size);
	else if (g->disk_size)
		printf("disk:       %llu MiB\n", (unsigned long long)(g->disk_size / MiB));
	else
		printf("disk:       none\n");
	printf("priority:   %d\n", (int)g->priority);
	printf("address:    %s\n", or_dash(g->address));
	if (g->heartbeat_timeout_s)
		printf("heartbeat:  timeout %u s; %u restart(s) in place in %u s, then a move%s\n", g->heartbeat_timeout_s,
		       g->heartbeat_max_resets, g->heartbeat_window_s, g->heartbeat_moved ? " (moved already)" : "");
	else
		printf("heartbeat:  not monitored\n");
	printf("cmdline:    %s\n", or_dash(g->cmdline));
	printf("image:      sha256 %s\n", or_dash(g->image_sha256));
	printf("restarts:   %u\n", g->restarts);
	printf("reason:     %s\n", or_dash(g->reason));
	printf("placement:  ");
	print_placement(g, false);
	printf("\n");
	printf("waiting:    %s\n", or_dash(g->waiting));
	printf("last step:  %s\n", or_dash(g->last_step));
	if (g->target_nodeid)
		printf("moving to:  %s (id %u)\n", or_dash(g->target), g->target_nodeid);
	if (g->migration) {
		const Pvha__MigrationInfo *m = g->migration;
		printf("migration:  %s -> %s: %s, %u rounds, %llu bytes sent", m->source, m->target, m->phase, m->round,
		       (unsigned long long)m->bytes_sent);
		if (!strcmp(m->phase, "done"))
			printf(", downtime %.2f ms, %llu ms in all", (double)m->downtime_us / 1000.0,
			       (unsigned long long)m->total_ms);
		printf("%s%s\n", m->error[0] ? ": " : "", m->error);
	}
}

/* cluster status, node list. */
static int cmd_cluster(const struct command *c, int argc, char **argv, bool json)
{
	Pvha__ApiReply *rep;
	int rc = args_parse(c, argc, argv, NULL, NULL, NULL);
	if (rc || (rc = api_op(c->op, NULL, &rep)))
		return rc;
	if (rep->status)
		print_cluster(rep->status, c->op == PVHA__API_REQUEST__OP__NODE_LIST, json);
	pvha__api_reply__free_unpacked(rep, NULL);
	return 0;
}

/* events [--guest G] [--after N] [--max N]. */
static int cmd_events(const struct command *c, int argc, char **argv, bool json)
{
	const char *after = NULL, *max = NULL, *guest = NULL;
	const struct opt opts[] = {
		{ "--guest", &guest, NULL }, { "--after", &after, NULL }, { "--max", &max, NULL },
		{ NULL, NULL, NULL },
	};
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	int64_t v;
	int rc = args_parse(c, argc, argv, opts, NULL, NULL);
	if (rc)
		return rc;
	req.op = c->op;
	if (after) {
		if ((rc = num_arg(c, "--after", after, 0, INT64_MAX, &v)))
			return rc;
		req.after = (uint64_t)v;
	}
	if (max) {
		if ((rc = num_arg(c, "--max", max, 1, 1000, &v)))
			return rc;
		req.max = (uint32_t)v;
	}
	if (guest) {
		if ((rc = guest_arg(c, "--guest", guest)))
			return rc;
		req.guest = (char *)guest;
	}
	if ((rc = api_call(&req, &rep)))
		return rc;
	if (json)
		printf("[");
	for (size_t i = 0; i < rep->n_events; i++) {
		const Pvha__EventInfo *e = rep->events[i];
		if (json) {
			printf("%s{\"seq\":%llu,\"time_ms\":%llu", i ? "," : "",
			       (unsigned long long)e->seq, (unsigned long long)e->time_ms);
			json_field("node", e->node);
			json_field("what", e->what);
			json_field("why", e->why);
			printf("}");
		} else {
			time_t t = (time_t)(e->time_ms / 1000);
			struct tm tm;
			char when[32];
			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			printf("%6llu %s.%03llu %-6s %-16s %s\n", (unsigned long long)e->seq, when,
			       (unsigned long long)(e->time_ms % 1000), e->node, e->what, e->why);
		}
	}
	if (json)
		printf("]\n");
	pvha__api_reply__free_unpacked(rep, NULL);
	return 0;
}

double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Polls GUEST_SHOW for guest every 100 ms, for at most wait_s seconds, until
 * its state is want; then prints it and returns 0. Returns 1 on a timeout, on
 * a refusal, or at once when the guest reaches the error state, unless
 * was_error: a guest in error before the request counts only once it has left
 * that state, since pvhad may answer the request before it applies it.
 */
static int guest_wait(const struct command *c, const char *guest, const char *want, bool was_error,
		      uint64_t wait_s, bool json)
{
	const struct timespec tick = { 0, POLL_NS };
	double t0 = mono_s();
	for (;;) {
		Pvha__ApiReply *rep;
		int rc = api_op(PVHA__API_REQUEST__OP__GUEST_SHOW, guest, &rep);
		if (rc)
			return rc;
		const Pvha__GuestInfo *g = reply_guest(rep);
		bool error = g && !strcmp(g->state, "error");
		rc = -1;
		if (!g) {
			rc = 1;
		} else if (!strcmp(g->state, want)) {
			if (json)
				print_guest(g, true);
			else
				printf("%s: %s%s%s\n", g->name, g->state, g->owner_nodeid ? " on " : "",
				       g->owner_nodeid ? g->owner : "");
			rc = 0;
		} else if (error && !was_error) {
			fprintf(stderr, "pvha %s %s: %s: error: %s\n", c->group, c->verb, g->name,
				or_dash(g->reason));
			rc = 1;
		} else if (mono_s() - t0 >= (double)wait_s) {
			fprintf(stderr, "pvha %s %s: %s: timed out after %llu s: state %s%s%s\n", c->group,
				c->verb, g->name, (unsigned long long)wait_s, g->state,
				error ? ", " : "", error ? g->reason : "");
			rc = 1;
		}
		was_error = was_error && error;
		pvha__api_reply__free_unpacked(rep, NULL);
		if (rc >= 0)
			return rc;
		nanosleep(&tick, NULL);
	}
}

#define RULES_MAX 4 /* placement rules per guest (GuestSpecIn.rules) */
#define DEPS_MAX 8  /* dependencies per guest (GuestSpecIn.depends_on) */

/* The repeatable placement options of guest create and guest set. */
struct placement_args {
	Pvha__GuestRule rule[RULES_MAX];
	Pvha__GuestRule *rule_ptr[RULES_MAX];
	char group[RULES_MAX][64];
	size_t n_rules;
	char *dep[DEPS_MAX];
	size_t n_deps;
};

/* GROUP[:soft] of --affinity or --anti-affinity (opt) into p. Returns 0 or 2. */
static int rule_arg(const struct command *c, const char *opt, const char *s, bool anti,
		    struct placement_args *p)
{
	const char *colon = strchr(s, ':');
	size_t glen = colon ? (size_t)(colon - s) : strlen(s);
	if (colon && strcmp(colon + 1, "soft") && strcmp(colon + 1, "hard"))
		return usage_err(c, "%s '%s': want GROUP or GROUP:soft (or GROUP:hard)", opt, s);
	if (glen == 0 || glen > 63)
		return usage_err(c, "%s '%s': the group wants 1 to 63 of A-Z a-z 0-9 . _ -, not starting with . or -",
				 opt, s);
	if (p->n_rules == RULES_MAX)
		return usage_err(c, "%s '%s': at most %d placement rules (--affinity and --anti-affinity together)",
				 opt, s, RULES_MAX);
	char *g = p->group[p->n_rules];
	memcpy(g, s, glen);
	g[glen] = '\0';
	int rc = guest_arg(c, opt, g);
	if (rc)
		return rc;
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rule[i].anti == anti && !strcmp(p->rule[i].group, g))
			return usage_err(c, "%s %s given twice", opt, g);
	Pvha__GuestRule *r = &p->rule[p->n_rules];
	pvha__guest_rule__init(r);
	r->group = g;
	r->anti = anti;
	r->soft = colon && !strcmp(colon + 1, "soft");
	p->rule_ptr[p->n_rules++] = r;
	return 0;
}

/*
 * Takes --affinity GROUP[:soft], --anti-affinity GROUP[:soft] and
 * --depends-on GUEST (each may be repeated) out of argv into p, leaving the
 * rest, in order, for args_parse (*argc updated). opts are the command's
 * other options: the value of one of those is never taken for ours. Returns
 * 0, or 2 after a message naming the argument at fault.
 */
static int placement_args_take(const struct command *c, int *argc, char **argv, const struct opt *opts,
			       struct placement_args *p)
{
	int n = 0, rc;
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < *argc; i++) {
		const char *a = argv[i];
		bool aff = !strcmp(a, "--affinity"), anti = !strcmp(a, "--anti-affinity");
		bool dep = !strcmp(a, "--depends-on");
		if (!aff && !anti && !dep) {
			argv[n++] = argv[i];
			for (const struct opt *o = opts; o && o->name; o++)
				if (o->arg && !strcmp(o->name, a) && i + 1 < *argc) {
					argv[n++] = argv[++i]; /* its value, whatever it looks like */
					break;
				}
			continue;
		}
		if (i + 1 >= *argc)
			return usage_err(c, "%s wants a value", a);
		const char *v = argv[++i];
		if (!dep) {
			if ((rc = rule_arg(c, a, v, anti, p)))
				return rc;
			continue;
		}
		if ((rc = guest_arg(c, "--depends-on", v)))
			return rc;
		if (p->n_deps == DEPS_MAX)
			return usage_err(c, "--depends-on '%s': at most %d dependencies", v, DEPS_MAX);
		for (size_t k = 0; k < p->n_deps; k++)
			if (!strcmp(p->dep[k], v))
				return usage_err(c, "--depends-on %s given twice", v);
		p->dep[p->n_deps++] = (char *)v;
	}
	*argc = n;
	return 0;
}

/* The heartbeat options of guest create and set (docs/heartbeat.md):
 * --heartbeat-timeout S|off, --heartbeat-max-resets N|default,
 * --heartbeat-window S|default (NULL: not given). val[] gets the numbers
 * (0: off / the node's default), given[] which were given. Returns 0 or 2. */
static int heartbeat_args(const struct command *c, const char *const text[3], uint32_t val[3], bool given[3])
{
	static const char *const names[3] = { "--heartbeat-timeout", "--heartbeat-max-resets", "--heartbeat-window" };
	static const char *const zero[3] = { "off", "default", "default" };
	static const int64_t hi[3] = { PVSTORE_HEARTBEAT_TIMEOUT_MAX, PVSTORE_HEARTBEAT_RESETS_MAX,
				       PVSTORE_HEARTBEAT_WINDOW_MAX };
	for (int i = 0; i < 3; i++) {
		int64_t v = 0;
		int rc;
		given[i] = text[i] != NULL;
		val[i] = 0;
		if (!text[i] || !strcmp(text[i], zero[i]))
			continue;
		if ((rc = num_arg(c, names[i], text[i], 1, hi[i], &v)))
			return rc;
		val[i] = (uint32_t)v;
	}
	return 0;
}

/*
 * guest set G [--priority N] [--affinity GROUP[:soft]]... [--anti-affinity
 * GROUP[:soft]]... | --no-rules] [--depends-on GUEST... | --no-depends]:
 * rules given replace the guest's rules, dependencies given replace its
 * dependencies; what is not named stays.
 */
static int cmd_guest_set(const struct command *c, int argc, char **argv, bool json)
{
	const char *guest = NULL, *prio = NULL, *address = NULL, *hb_text[3] = { NULL, NULL, NULL };
	uint32_t hb[3];
	bool no_rules = false, no_deps = false, hb_given[3];
	const struct opt opts[] = {
		{ "--priority", &prio, NULL },
		{ "--no-rules", NULL, &no_rules },
		{ "--no-depends", NULL, &no_deps },
		{ "--address", &address, NULL },
		{ "--heartbeat-timeout", &hb_text[0], NULL },
		{ "--heartbeat-max-resets", &hb_text[1], NULL },
		{ "--heartbeat-window", &hb_text[2], NULL },
		{ NULL, NULL, NULL },
	};
	struct placement_args pa;
	Pvha__GuestSetIn set = PVHA__GUEST_SET_IN__INIT;
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	int64_t p;
	int rc;

	if ((rc = placement_args_take(c, &argc, argv, opts, &pa)) ||
	    (rc = args_parse(c, argc, argv, opts, "G", &guest)) || (rc = guest_arg(c, "G", guest)))
		return rc;
	if (no_rules && pa.n_rules)
		return usage_err(c, "--no-rules and --affinity/--anti-affinity exclude each other");
	if (no_deps && pa.n_deps)
		return usage_err(c, "--no-depends and --depends-on exclude each other");
	if (prio) {
		if ((rc = num_arg(c, "--priority", prio, -1000, 1000, &p)))
			return rc;
		set.set_priority = true;
		set.priority = (int32_t)p;
	}
	set.set_rules = no_rules || pa.n_rules;
	set.n_rules = pa.n_rules;
	set.rules = pa.rule_ptr;
	set.set_depends_on = no_deps || pa.n_deps;
	set.n_depends_on = pa.n_deps;
	set.depends_on = pa.dep;
	if (address) {
		if (strcmp(address, "none") && !pvstore_address_ok(address))
			return usage_err(c, "--address '%s': want IP/PREFIX (e.g. 10.99.0.100/24) or none", address);
		set.set_address = true;
		set.address = (char *)(strcmp(address, "none") ? address : "");
	}
	if ((rc = heartbeat_args(c, hb_text, hb, hb_given)))
		return rc;
	set.set_heartbeat_timeout = hb_given[0];
	set.heartbeat_timeout_s = hb[0];
	set.set_heartbeat_max_resets = hb_given[1];
	set.heartbeat_max_resets = hb[1];
	set.set_heartbeat_window = hb_given[2];
	set.heartbeat_window_s = hb[2];
	if (!set.set_priority && !set.set_rules && !set.set_depends_on && !set.set_address && !hb_given[0] &&
	    !hb_given[1] && !hb_given[2])
		return usage_err(c, "nothing to change: give --priority, --affinity, --anti-affinity, "
				    "--no-rules, --depends-on, --no-depends, --address or a --heartbeat-* option");
	req.op = c->op;
	req.guest = (char *)guest;
	req.set = &set;
	if ((rc = api_call(&req, &rep)))
		return rc;
	const Pvha__GuestInfo *g = reply_guest(rep);
	if (!g) {
		rc = 1;
	} else if (json) {
		print_guest(g, true);
	} else {
		printf("%s: priority %d, placement ", g->name, (int)g->priority);
		print_placement(g, false);
		printf("\n");
	}
	pvha__api_reply__free_unpacked(rep, NULL);
	return rc;
}

/*
 * guest create NAME --image FILE --mem SIZE [--disk SIZE] [--cmdline STR]
 * [--priority N] [--affinity GROUP[:soft]]... [--anti-affinity
 * GROUP[:soft]]... [--depends-on GUEST]... [--start [--wait S]].
 */
static int cmd_guest_create(const struct command *c, int argc, char **argv, bool json)
{
	const char *name = NULL, *image = NULL, *mem = NULL, *disk = NULL, *cmdline = NULL, *prio = NULL;
	const char *wait_str = NULL, *address = NULL, *hb_text[3] = { NULL, NULL, NULL };
	uint32_t hb[3];
	bool hb_given[3];
	bool start = false;
	const struct opt opts[] = {
		{ "--image", &image, NULL },   { "--mem", &mem, NULL },
		{ "--disk", &disk, NULL },     { "--cmdline", &cmdline, NULL },
		{ "--priority", &prio, NULL }, { "--start", NULL, &start },
		{ "--wait", &wait_str, NULL }, { "--address", &address, NULL },
		{ "--heartbeat-timeout", &hb_text[0], NULL },
		{ "--heartbeat-max-resets", &hb_text[1], NULL },
		{ "--heartbeat-window", &hb_text[2], NULL },
		{ NULL, NULL, NULL },
	};
	Pvha__GuestSpecIn spec = PVHA__GUEST_SPEC_IN__INIT;
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	uint8_t *img = NULL;
	int64_t p, wait_s = 0;
	struct placement_args pa;

	int rc = placement_args_take(c, &argc, argv, opts, &pa);
	if (rc || (rc = args_parse(c, argc, argv, opts, "NAME", &name)))
		return rc;
	if ((rc = guest_arg(c, "NAME", name)))
		return rc;
	for (size_t i = 0; i < pa.n_deps; i++)
		if (!strcmp(pa.dep[i], name))
			return usage_err(c, "--depends-on %s: a guest cannot depend on itself", name);
	spec.n_rules = pa.n_rules;
	spec.rules = pa.rule_ptr;
	spec.n_depends_on = pa.n_deps;
	spec.depends_on = pa.dep;
	if (!image)
		return usage_err(c, "missing --image FILE");
	if (!mem)
		return usage_err(c, "missing --mem SIZE");
	if ((rc = size_arg(c, "--mem", mem, PVSTORE_MEM_MIN, PVSTORE_MEM_MAX, MiB, "whole MiB from 2M to 4G",
			   &spec.mem_size)))
		return rc;
	if (disk && (rc = size_arg(c, "--disk", disk, 0, UINT64_MAX, 512,
				   "a multiple of 512 bytes (0: no disk)", &spec.disk_size)))
		return rc;
	if (prio) {
		if ((rc = num_arg(c, "--priority", prio, -1000, 1000, &p)))
			return rc;
		spec.priority = (int32_t)p;
	}
	if (address) {
		if (!pvstore_address_ok(address))
			return usage_err(c, "--address '%s': want IP/PREFIX (e.g. 10.99.0.100/24)", address);
		spec.address = (char *)address;
	}
	if ((rc = heartbeat_args(c, hb_text, hb, hb_given)))
		return rc;
	spec.heartbeat_timeout_s = hb[0];
	spec.heartbeat_max_resets = hb[1];
	spec.heartbeat_window_s = hb[2];
	if (wait_str && !start)
		return usage_err(c, "--wait wants --start");
	if (wait_str && (rc = num_arg(c, "--wait", wait_str, 0, WAIT_MAX_S, &wait_s)))
		return rc;
	if (cmdline) {
		if (strlen(cmdline) > CMDLINE_MAX)
			return usage_err(c, "--cmdline: %zu bytes, at most %d", strlen(cmdline), CMDLINE_MAX);
		spec.cmdline = (char *)cmdline;
	}
	/* Last of the checks: it reads up to 900 KiB. */
	if ((rc = image_read(c, image, &img, &spec.image.len)))
		return rc;
	spec.image.data = img;
	spec.name = (char *)name;
	spec.start = start;
	req.op = c->op;
	req.spec = &spec;
	rc = api_call(&req, &rep);
	free(img);
	if (rc)
		return rc;
	const Pvha__GuestInfo *g = reply_guest(rep);
	if (!g)
		rc = 1;
	else if (!json)
		printf("created guest %s, uuid %s%s\n", g->name, g->uuid, start ? ", starting" : "");
	else if (!wait_str) /* with --wait, the object printed is the running guest */
		print_guest(g, true);
	pvha__api_reply__free_unpacked(rep, NULL);
	if (!rc && wait_str)
		rc = guest_wait(c, name, "running", false, (uint64_t)wait_s, json);
	return rc;
}

/* guest list: a table, or a JSON array of GuestInfo objects. */
static int cmd_guest_list(const struct command *c, int argc, char **argv, bool json)
{
	Pvha__ApiReply *rep;
	int rc = args_parse(c, argc, argv, NULL, NULL, NULL);
	if (rc || (rc = api_op(c->op, NULL, &rep)))
		return rc;
	if (rep->message[0]) /* a node without quorum: its own view */
		fprintf(stderr, "pvha: warning: %s\n", rep->message);
	if (json)
		printf("[");
	else
		printf("%-16s %-36s %-10s %-8s %6s %5s %s\n", "NAME", "UUID", "STATE", "NODE", "MEM", "PRIO",
		       "PLACEMENT");
	for (size_t i = 0; i < rep->n_guests; i++) {
		const Pvha__GuestInfo *g = rep->guests[i];
		if (json) {
			printf("%s", i ? "," : "");
			print_guest_json(g);
		} else {
			printf("%-16s %-36s %-10s %-8s %6llu %5d ", g->name, g->uuid, g->state,
			       g->owner_nodeid ? or_dash(g->owner) : "-",
			       (unsigned long long)(g->mem_size / MiB), (int)g->priority);
			print_placement(g, true);
			printf("\n");
		}
	}
	if (json)
		printf("]\n");
	pvha__api_reply__free_unpacked(rep, NULL);
	return 0;
}

/* guest show G. */
static int cmd_guest_show(const struct command *c, int argc, char **argv, bool json)
{
	const char *guest = NULL;
	Pvha__ApiReply *rep;
	int rc = args_parse(c, argc, argv, NULL, "G", &guest);
	if (rc || (rc = guest_arg(c, "G", guest)) || (rc = api_op(c->op, guest, &rep)))
		return rc;
	if (rep->message[0]) /* a node without quorum: its own view */
		fprintf(stderr, "pvha: warning: %s\n", rep->message);
	const Pvha__GuestInfo *g = reply_guest(rep);
	if (g)
		print_guest(g, json);
	pvha__api_reply__free_unpacked(rep, NULL);
	return g ? 0 : 1;
}

/* guest start G [--wait S], guest stop G [--force] [--wait S], guest delete G. */
static int cmd_guest_op(const struct command *c, int argc, char **argv, bool json)
{
	const char *guest = NULL, *wait_str = NULL;
	bool force = false, stop = c->op == PVHA__API_REQUEST__OP__GUEST_STOP;
	struct opt opts[3] = { { NULL, NULL, NULL } };
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	bool was_error = false;
	int64_t wait_s = 0;
	int n = 0, rc;

	if (c->op != PVHA__API_REQUEST__OP__GUEST_DELETE)
		opts[n++] = (struct opt){ "--wait", &wait_str, NULL };
	if (stop)
		opts[n++] = (struct opt){ "--force", NULL, &force };
	if ((rc = args_parse(c, argc, argv, opts, "G", &guest)) || (rc = guest_arg(c, "G", guest)))
		return rc;
	if (wait_str && (rc = num_arg(c, "--wait", wait_str, 0, WAIT_MAX_S, &wait_s)))
		return rc;
	if (wait_str) {
		/* Its state before the request: see guest_wait on was_error. */
		if ((rc = api_op(PVHA__API_REQUEST__OP__GUEST_SHOW, guest, &rep)))
			return rc;
		const Pvha__GuestInfo *g = reply_guest(rep);
		if (g)
			was_error = !strcmp(g->state, "error");
		pvha__api_reply__free_unpacked(rep, NULL);
		if (!g)
			return 1;
	}
	req.op = c->op;
	req.guest = (char *)guest;
	req.force = force;
	if ((rc = api_call(&req, &rep)))
		return rc;
	pvha__api_reply__free_unpacked(rep, NULL);
	if (wait_str)
		return guest_wait(c, guest, stop ? "stopped" : "running", was_error, (uint64_t)wait_s, json);
	if (!json)
		printf("%s: %s requested\n", guest, c->verb);
	return 0;
}

/* One control request to the pvha-vmm at sock (MIGRATE with host, port and
 * downtime; SAVE with path), its refusal on stderr and its status printed.
 * Returns 0, or 1 when it could not be asked or refused. */
static int vmm_ask(const char *sock, const char *what, Pvha__VmmRequest__Op op, const char *path,
		   const char *host, uint32_t port, uint32_t downtime_ms, const uint8_t *key, size_t key_len,
		   bool json)
{
	int fd, err = vmmctl_connect(sock, 30000, &fd);
	if (err) {
		fprintf(stderr, "pvha vmm: cannot reach %s: %s\n", sock, strerror(-err));
		return 1;
	}
	Pvha__VmmReply *reply;
	err = op == PVHA__VMM_REQUEST__OP__MIGRATE ? vmmctl_migrate_keyed(fd, host, port, downtime_ms, 0, key, key_len, &reply)
						    : vmmctl_call(fd, op, path, &reply);
	close(fd);
	if (err) {
		fprintf(stderr, "pvha vmm: %s: %s\n", sock, strerror(-err));
		return 1;
	}
	int rc = 0;
	if (reply->error) {
		fprintf(stderr, "pvha vmm: %s refused: %s\n", what,
			reply->message[0] ? reply->message : strerror(-reply->error));
		rc = 1;
	}
	if (reply->status)
		print_status(reply->status, json);
	pvha__vmm_reply__free_unpacked(reply, NULL);
	return rc;
}

/* vmm SOCKET migrate HOST:PORT --key-file F [--downtime MS], vmm SOCKET
 * cancel: by hand, what pvhad does for a migration (the target: pvha-vmm
 * --incoming --migrate-key-file with the same key). */
static int vmm_migrate(const struct command *c, int argc, char **argv, bool json)
{
	int64_t down = 0;
	char host[256] = "";
	uint64_t port = 0;
	const char *key_file = NULL, *down_arg = NULL;
	if (!strcmp(argv[1], "cancel")) {
		if (argc != 2)
			return usage_err(c, "cancel takes nothing more");
		return vmm_ask(argv[0], argv[1], PVHA__VMM_REQUEST__OP__MIGRATE_CANCEL, NULL, NULL, 0, 0, NULL, 0,
			       json);
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--key-file") && !key_file)
			key_file = argv[i + 1];
		else if (!strcmp(argv[i], "--downtime") && !down_arg)
			down_arg = argv[i + 1];
		else
			return usage_err(c, "want SOCKET migrate HOST:PORT --key-file F [--downtime MS]");
	}
	if (argc < 3 || argc % 2 == 0 || !key_file)
		return usage_err(c, "want SOCKET migrate HOST:PORT --key-file F [--downtime MS]");
	const char *colon = strrchr(argv[2], ':');
	if (!colon || colon == argv[2] || (size_t)(colon - argv[2]) >= sizeof(host) || pv_parse_u64(colon + 1, &port) ||
	    port == 0 || port > 65535)
		return usage_err(c, "HOST:PORT '%s': want a host and a port from 1 to 65535", argv[2]);
	memcpy(host, argv[2], (size_t)(colon - argv[2]));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	int rc;
	if (down_arg && (rc = num_arg(c, "--downtime", down_arg, 1, 60000, &down)))
		return rc;
	/* the key the target was started with (its --migrate-key-file) */
	uint8_t key[PVPROTO_KEY_MAX];
	size_t key_len = 0;
	char why[200];
	int err = pv_secret_read(key_file, key, sizeof(key), &key_len, why, sizeof(why));
	if (err || key_len < PVPROTO_KEY_MIN) {
		fprintf(stderr, "pvha vmm: --key-file %s: %s\n", key_file,
			err && err != -EFBIG ? why : "a migration key is 16 to 256 bytes");
		return 2;
	}
	rc = vmm_ask(argv[0], argv[1], PVHA__VMM_REQUEST__OP__MIGRATE, NULL, host, (uint32_t)port, (uint32_t)down,
		     key, key_len, json);
	memset(key, 0, sizeof(key));
	return rc;
}

/* vmm SOCKET status|pause|resume|stop, vmm SOCKET save FILE. */
static int cmd_vmm(const struct command *c, int argc, char **argv, bool json)
{
	Pvha__VmmRequest__Op op;
	const char *path = NULL;

	if (argc >= 2 && (!strcmp(argv[1], "migrate") || !strcmp(argv[1], "cancel")))
		return vmm_migrate(c, argc, argv, json);
	if (argc < 2 || vmmctl_op_parse(argv[1], &op))
		return usage_err(c, "want SOCKET status|pause|resume|save FILE|stop|migrate HOST:PORT|cancel");
	if (op == PVHA__VMM_REQUEST__OP__SAVE) {
		if (argc != 3)
			return usage_err(c, "save needs exactly one FILE");
		path = argv[2];
	} else if (argc != 2) {
		return usage_err(c, "unexpected argument '%s'", argv[2]);
	}
	return vmm_ask(argv[0], argv[1], op, path, NULL, 0, 0, NULL, 0, json);
}

/* args and help may hold newlines: --help indents what follows each one. */
static const struct command commands[] = {
	{ "cluster", "init", cmd_cluster_init, 0,
	  "--ceph-conf FILE [--pool P] [--keyring K]\n[--ceph-client NAME] [--config FILE]\n"
	  "[--address IP] [--timeout S]",
	  "bootstrap: check corosync is quorate, make\n"
	  "or adopt pool P (default pvha) and its\n"
	  "registry, make this node's Ceph user, write\n"
	  "its keyring, a ceph.conf and pvhad.conf\n"
	  "(default /etc/pvha/pvhad.conf; the others go\n"
	  "beside it); needs a Ceph admin (client.admin\n"
	  "or --ceph-client); running it again changes\n"
	  "nothing" },
	{ "node", "join", cmd_node_join, 0,
	  "[--ceph-conf FILE] [--pool P] [--keyring K]\n[--ceph-client NAME] [--config FILE]\n"
	  "[--address IP] [--timeout S]",
	  "the same on another node, for the pool init\n"
	  "made (without --ceph-conf: the Ceph and pool\n"
	  "its config names)" },
	{ "cluster", "status", cmd_cluster, PVHA__API_REQUEST__OP__CLUSTER_STATUS, "",
	  "membership, quorum and leader, seen from here" },
	{ "node", "list", cmd_cluster, PVHA__API_REQUEST__OP__NODE_LIST, "",
	  "every configured node and its state" },
	{ "guest", "create", cmd_guest_create, PVHA__API_REQUEST__OP__GUEST_CREATE,
	  "NAME --image FILE --mem SIZE\n[--disk SIZE] [--cmdline STR] [--priority N]\n"
	  "[--affinity GROUP[:soft]] [--anti-affinity GROUP[:soft]]\n[--depends-on G]\n"
	  "[--address IP/PREFIX] [--heartbeat-timeout S]\n"
	  "[--heartbeat-max-resets N] [--heartbeat-window S]\n[--start [--wait S]]",
	  "register a guest: an ELF image of at most\n"
	  "900 KiB, memory in whole MiB from 2M to 4G,\n"
	  "a disk a multiple of 512 bytes (default none),\n"
	  "priority -1000..1000 (default 0, higher\n"
	  "first); --affinity: run with the GROUP's other\n"
	  "guests, --anti-affinity: never with them\n"
	  "(:soft: when it can be; up to 4 rules);\n"
	  "--depends-on: start only once G runs (up to 8);\n"
	  "--address: the guest's IPv4 address, carried\n"
	  "by the node that runs it (unique);\n"
	  "--heartbeat-timeout: restart it when its\n"
	  "heartbeat stops for S s (default off); after\n"
	  "N restarts (default 3) in S s (default 3600)\n"
	  "move it, then error (docs/heartbeat.md);\n"
	  "--start: want it running; --wait: until\nit runs, at most S seconds" },
	{ "guest", "set", cmd_guest_set, PVHA__API_REQUEST__OP__GUEST_SET,
	  "G [--priority N]\n[--affinity GROUP[:soft]]... [--anti-affinity GROUP[:soft]]...\n"
	  "[--no-rules] [--depends-on G]... [--no-depends]\n[--address IP/PREFIX|none]\n"
	  "[--heartbeat-timeout S|off] [--heartbeat-max-resets N|default]\n"
	  "[--heartbeat-window S|default]",
	  "change a guest's priority, rules (those given\n"
	  "replace its rules), dependencies, address or\n"
	  "heartbeat monitoring (from the next poll);\n"
	  "a running guest stays where it is (a new\n"
	  "address counts from its next start)" },
	{ "guest", "list", cmd_guest_list, PVHA__API_REQUEST__OP__GUEST_LIST, "",
	  "every guest: state, node, memory, priority" },
	{ "guest", "show", cmd_guest_show, PVHA__API_REQUEST__OP__GUEST_SHOW, "G",
	  "every field of one guest" },
	{ "guest", "start", cmd_guest_op, PVHA__API_REQUEST__OP__GUEST_START, "G [--wait S]",
	  "want it running; --wait: until it runs,\nat most S seconds" },
	{ "guest", "stop", cmd_guest_op, PVHA__API_REQUEST__OP__GUEST_STOP, "G [--force] [--wait S]",
	  "want it stopped; --force: kill it at once;\n--wait: until it is stopped" },
	{ "guest", "delete", cmd_guest_op, PVHA__API_REQUEST__OP__GUEST_DELETE, "G",
	  "remove a stopped guest, its disk and records" },
	{ "guest", "migrate", cmd_guest_migrate, PVHA__API_REQUEST__OP__GUEST_MIGRATE,
	  "G NODE [--downtime MS] [--wait S | --no-wait]",
	  "live-migrate a running guest to NODE, showing\n"
	  "each round; at the end the downtime (budget\n"
	  "--downtime, default 10 ms); --wait: give up\n"
	  "following after S seconds (default 600)" },
	{ "node", "drain", cmd_node_drain, PVHA__API_REQUEST__OP__NODE_DRAIN,
	  "N [--force] [--wait S | --no-wait]",
	  "migrate every guest away from N and place\n"
	  "nothing new there: draining, then maintenance\n"
	  "(kept in RADOS); refused when a guest would\n"
	  "have no place, unless --force" },
	{ "node", "resume", cmd_node_resume, PVHA__API_REQUEST__OP__NODE_RESUME, "N",
	  "end N's drain or maintenance" },
	{ "cluster", "rebalance", cmd_cluster_rebalance, PVHA__API_REQUEST__OP__CLUSTER_REBALANCE,
	  "[--dry-run] [--threshold X] [--no-wait]",
	  "plan the fewest migrations that bring the\n"
	  "memory and CPU imbalance under X (default\n"
	  "0.20, or pvhad's rebalance setting), show the\n"
	  "scores before and after, and make them" },
	{ "cluster", "roll", cmd_cluster_roll, 0, "--hook CMD | --wait-operator [--nodes N,N...]",
	  "rolling maintenance: per node drain, run CMD\n"
	  "(PVHA_NODE=the node) or wait for Enter,\n"
	  "resume once it is back, then the next" },
	{ "events", NULL, cmd_events, PVHA__API_REQUEST__OP__EVENTS, "[--guest G] [--after N] [--max N]",
	  "the cluster's event log, or one guest's,\noldest first; --max 1..1000 (default 100)" },
	{ "vmm", NULL, cmd_vmm, 0, "SOCKET status|pause|resume|stop",
	  "ask one pvha-vmm at its --control socket" },
	/* For --help only: the entry above runs every vmm command. */
	{ "vmm", NULL, cmd_vmm, 0, "SOCKET save FILE", "write a paused guest's state to FILE" },
	{ "vmm", NULL, cmd_vmm, 0, "SOCKET migrate HOST:PORT --key-file F [--downtime MS]",
	  "live-migrate its guest to a pvha-vmm started\nwith --incoming HOST:PORT --migrate-key-file F\n(the same key; status shows the progress)" },
	{ "vmm", NULL, cmd_vmm, 0, "SOCKET cancel", "give its running migration up" },
};

#define HELP_COL 34

/* Writes s, indenting what follows each newline by indent. Returns the width of its last line. */
static int put_indented(FILE *f, const char *s, int indent)
{
	int col = 0;
	for (; *s; s++) {
		fputc(*s, f);
		col++;
		if (*s == '\n')
			col = fprintf(f, "%*s", indent, "");
	}
	return col;
}

/* --help, from commands[]: a synopsis per command, its help beside or below it. */
static void usage(FILE *f)
{
	fprintf(f, "usage: pvha [--json] COMMAND ...\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];
		int n = fprintf(f, "  %s%s%s%s", c->group, c->verb ? " " : "", c->verb ? c->verb : "",
				c->args[0] ? " " : "");
		n += put_indented(f, c->args, 6);
		if (n >= HELP_COL)
			fprintf(f, "\n%*s", HELP_COL, "");
		else
			fprintf(f, "%*s", HELP_COL - n, "");
		put_indented(f, c->help, HELP_COL);
		fputc('\n', f);
	}
	fprintf(f, "\n"
		   "  --json                          machine-readable output (before the command)\n"
		   "  -h, --help                      this text\n"
		   "G is a guest's name or uuid; SIZE is bytes, or a number with K, M or G.\n"
		   "Exit status: 0 done, 1 refused or failed, 2 bad usage.\n");
}

int main(int argc, char **argv)
{
	bool json = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "pvha: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const char *group = argv[i], *verb = i + 1 < argc ? argv[i + 1] : NULL;
	bool known = false;
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++) {
		const struct command *c = &commands[k];
		if (strcmp(c->group, group))
			continue;
		known = true;
		if (!c->verb)
			return c->run(c, argc - i - 1, argv + i + 1, json);
		if (verb && !strcmp(c->verb, verb))
			return c->run(c, argc - i - 2, argv + i + 2, json);
	}
	if (known && verb)
		fprintf(stderr, "pvha %s: unknown subcommand '%s' (see pvha --help)\n", group, verb);
	else if (known)
		fprintf(stderr, "pvha %s: missing subcommand (see pvha --help)\n", group);
	else
		fprintf(stderr, "pvha: unknown command '%s' (see pvha --help)\n", group);
	return 2;
}
