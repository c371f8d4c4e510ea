/*
 * pvha: the command-line client. Human output by default, --json for scripts.
 * Exit status: 0 done; 1 the request was refused or failed; 2 bad usage.
 *
 * Commands so far:
 *   pvha cluster status | node list | events     ask this node's pvhad
 *   pvha vmm SOCKET status|pause|resume|stop     talk to one pvha-vmm directly
 *   pvha vmm SOCKET save FILE                     (the guest must be paused)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <qb/qbipcc.h>
#include <time.h>
#include <uuid/uuid.h>

#include "proto/api.pb-c.h"
#include "vmmctl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvha [--json] COMMAND ...\n\n"
		"  cluster status              membership, quorum, leader, as this node sees them\n"
		"  node list                   every configured node and its state\n"
		"  events [--after N] [--max N]  the cluster event log, oldest first\n"
		"  vmm SOCKET status           state of one pvha-vmm (its --control socket)\n"
		"  vmm SOCKET pause|resume     pause or resume its guest\n"
		"  vmm SOCKET save FILE        write a paused guest's state to FILE\n"
		"  vmm SOCKET stop             stop the guest and end the pvha-vmm\n\n"
		"  --json                      machine-readable output\n"
		"  -h, --help                  this text\n"
		"Exit status: 0 done, 1 refused or failed, 2 bad usage.\n");
}

static void json_str(const char *s)
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

static void print_status(const Pvha__VmmStatus *s, bool json)
{
	char id[37] = "";
	if (s->guest_id.len == 16)
		uuid_unparse(s->guest_id.data, id);
	if (json) {
		printf("{\"state\":");
		json_str(s->state);
		printf(",\"stop_kind\":");
		json_str(s->stop_kind);
		printf(",\"reason\":");
		json_str(s->reason);
		printf(",\"exit_code\":%lld,\"hypercalls\":%llu,\"guest_mono_ns\":%llu,"
		       "\"heartbeat_seq\":%llu,\"heartbeat_age_ms\":%llu,\"mem_size\":%llu,\"backend\":",
		       (long long)s->exit_code, (unsigned long long)s->hypercalls,
		       (unsigned long long)s->guest_mono_ns, (unsigned long long)s->heartbeat_seq,
		       (unsigned long long)s->heartbeat_age_ms, (unsigned long long)s->mem_size);
		json_str(s->backend);
		printf(",\"pid\":%u,\"guest_id\":", s->pid);
		json_str(id);
		printf(",\"disk\":");
		json_str(s->disk);
		printf(",\"storage_addr\":");
		json_str(s->storage_addr);
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
}

/* One request to this node's pvhad. Returns 0 and *reply, or an exit code. */
static int api_call(Pvha__ApiRequest *req, Pvha__ApiReply **reply)
{
	qb_ipcc_connection_t *c = qb_ipcc_connect("pvhad", 1u << 20);
	if (!c) {
		fprintf(stderr, "pvha: cannot reach pvhad on this node: %s%s\n", strerror(errno),
			errno == EACCES ? " (the API is for root)" : " (is pvhad running?)");
		return 1;
	}
	size_t len = pvha__api_request__get_packed_size(req);
	uint8_t *buf = malloc(sizeof(struct qb_ipc_request_header) + len);
	static uint8_t rbuf[1u << 20];
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
		fprintf(stderr, "pvha: %s\n", (*reply)->message[0] ? (*reply)->message
								: strerror(-(*reply)->error));
		pvha__api_reply__free_unpacked(*reply, NULL);
		return 1;
	}
	return 0;
}

static void print_cluster(const Pvha__ClusterStatus *s, bool nodes_only, bool json)
{
	if (json) {
		printf("{\"local\":");
		json_str(s->local_name);
		printf(",\"local_nodeid\":%u,\"quorate\":%s,\"leader\":", s->local_nodeid,
		       s->quorate ? "true" : "false");
		json_str(s->leader_name);
		printf(",\"leader_nodeid\":%u,\"ring_id\":%llu,\"storage_ok\":%s,\"incarnation\":",
		       s->leader_nodeid, (unsigned long long)s->ring_id, s->storage_ok ? "true" : "false");
		json_str(s->incarnation);
		printf(",\"nodes\":[");
		for (size_t i = 0; i < s->n_nodes; i++) {
			const Pvha__NodeInfo *n = s->nodes[i];
			printf("%s{\"nodeid\":%u,\"name\":", i ? "," : "", n->nodeid);
			json_str(n->name);
			printf(",\"member\":%s,\"leader\":%s,\"local\":%s,\"addr\":",
			       n->member ? "true" : "false", n->leader ? "true" : "false",
			       n->local ? "true" : "false");
			json_str(n->addr);
			printf(",\"incarnation\":");
			json_str(n->incarnation);
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
		printf("\n");
	}
	printf("%-4s %-12s %-8s %-16s %s\n", "ID", "NODE", "STATE", "ADDRESS", "ROLE");
	for (size_t i = 0; i < s->n_nodes; i++) {
		const Pvha__NodeInfo *n = s->nodes[i];
		printf("%-4u %-12s %-8s %-16s %s%s\n", n->nodeid, n->name, n->member ? "online" : "offline",
		       n->addr[0] ? n->addr : "-", n->leader ? "leader" : "",
		       n->local ? (n->leader ? ", this node" : "this node") : "");
	}
}

static int cmd_api(int argc, char **argv, bool json)
{
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	bool nodes_only = false, events = false;
	req.version = 1;
	if (argc >= 2 && !strcmp(argv[0], "cluster") && !strcmp(argv[1], "status") && argc == 2) {
		req.op = PVHA__API_REQUEST__OP__CLUSTER_STATUS;
	} else if (argc >= 2 && !strcmp(argv[0], "node") && !strcmp(argv[1], "list") && argc == 2) {
		req.op = PVHA__API_REQUEST__OP__NODE_LIST;
		nodes_only = true;
	} else if (!strcmp(argv[0], "events")) {
		req.op = PVHA__API_REQUEST__OP__EVENTS;
		events = true;
		for (int i = 1; i < argc; i++) {
			char *end;
			unsigned long long v = 0;
			if (i + 1 < argc)
				v = strtoull(argv[i + 1], &end, 10);
			if (i + 1 >= argc || !*argv[i + 1] || *end) {
				fprintf(stderr, "pvha events: want --after N and --max N (numbers)\n");
				return 2;
			}
			if (!strcmp(argv[i], "--after"))
				req.after = v;
			else if (!strcmp(argv[i], "--max") && v <= 1000)
				req.max = (uint32_t)v;
			else {
				fprintf(stderr, "pvha events: unknown option '%s' (or --max over 1000)\n", argv[i]);
				return 2;
			}
			i++;
		}
	} else {
		fprintf(stderr, "pvha: unknown command (see pvha --help)\n");
		return 2;
	}
	int rc = api_call(&req, &rep);
	if (rc)
		return rc;
	if (!events) {
		if (rep->status)
			print_cluster(rep->status, nodes_only, json);
	} else {
		if (json)
			printf("[");
		for (size_t i = 0; i < rep->n_events; i++) {
			const Pvha__EventInfo *e = rep->events[i];
			if (json) {
				printf("%s{\"seq\":%llu,\"time_ms\":%llu,\"node\":", i ? "," : "",
				       (unsigned long long)e->seq, (unsigned long long)e->time_ms);
				json_str(e->node);
				printf(",\"what\":");
				json_str(e->what);
				printf(",\"why\":");
				json_str(e->why);
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
	}
	pvha__api_reply__free_unpacked(rep, NULL);
	return 0;
}

static int cmd_vmm(int argc, char **argv, bool json)
{
	Pvha__VmmRequest__Op op;
	Pvha__VmmReply *reply;
	const char *path = NULL;
	int fd;

	if (argc < 2 || vmmctl_op_parse(argv[1], &op)) {
		fprintf(stderr, "pvha vmm: want SOCKET status|pause|resume|save FILE|stop\n");
		return 2;
	}
	if (op == PVHA__VMM_REQUEST__OP__SAVE) {
		if (argc != 3) {
			fprintf(stderr, "pvha vmm: save needs exactly one FILE\n");
			return 2;
		}
		path = argv[2];
	} else if (argc != 2) {
		fprintf(stderr, "pvha vmm: unexpected argument '%s'\n", argv[2]);
		return 2;
	}
	int err = vmmctl_connect(argv[0], 30000, &fd);
	if (err) {
		fprintf(stderr, "pvha vmm: cannot reach %s: %s\n", argv[0], strerror(-err));
		return 1;
	}
	err = vmmctl_call(fd, op, path, &reply);
	close(fd);
	if (err) {
		fprintf(stderr, "pvha vmm: %s: %s\n", argv[0], strerror(-err));
		return 1;
	}
	int rc = 0;
	if (reply->error) {
		fprintf(stderr, "pvha vmm: %s refused: %s\n", argv[1],
			reply->message[0] ? reply->message : strerror(-reply->error));
		rc = 1;
	}
	if (reply->status)
		print_status(reply->status, json);
	pvha__vmm_reply__free_unpacked(reply, NULL);
	return rc;
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
	if (strcmp(argv[i], "vmm") == 0)
		return cmd_vmm(argc - i - 1, argv + i + 1, json);
	if (!strcmp(argv[i], "cluster") || !strcmp(argv[i], "node") || !strcmp(argv[i], "events"))
		return cmd_api(argc - i, argv + i, json);
	fprintf(stderr, "pvha: unknown command '%s' (see pvha --help)\n", argv[i]);
	return 2;
}
