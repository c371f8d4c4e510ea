/*
 * pvha: the command-line client. Human output by default, --json for scripts.
 * Exit status: 0 done; 1 the request was refused or failed; 2 bad usage.
 *
 * Commands so far:
 *   pvha vmm SOCKET status|pause|resume|stop   talk to one pvha-vmm directly
 *   pvha vmm SOCKET save FILE                   (the guest must be paused)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "vmmctl.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvha [--json] COMMAND ...\n\n"
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
	fprintf(stderr, "pvha: unknown command '%s' (see pvha --help)\n", argv[i]);
	return 2;
}
