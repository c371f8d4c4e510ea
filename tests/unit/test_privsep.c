/*
 * The privsep channel (node/vmm/privsep.h) with the VMM's request table: a
 * real helper process (forked, entered into its sandbox: as root the user
 * pvha-vmm with CAP_NET_ADMIN only), requests and fds both ways, every
 * kind of bad request refused with its -errno while the helper serves on,
 * and the in-process fallback answering the same.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "privsep.h"
#include "privsep_ops.h"
#include "sandbox.h"

#define CAP_NET_ADMIN_BIT (1ull << 12)

struct fx {
	struct sandbox_user user;
	struct privsep ps;
	struct privsep_reply rep;
};

static int setup_helper(void **state)
{
	char why[256] = "";
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	int err = sandbox_user_lookup(NULL, &f->user, why, sizeof(why));
	if (err) {
		/* root on a host without the user: install-deps makes it */
		print_message("no sandbox user: %s\n", why);
		free(f);
		return -1;
	}
	struct privsep_opts o = { .ops = privsep_vmm_ops, .nops = privsep_vmm_nops,
				  .enter = sandbox_enter_helper, .enter_ctx = &f->user };
	assert_int_equal(privsep_start(&o, &f->ps, why, sizeof(why)), 0);
	*state = f;
	return 0;
}

static int setup_inprocess(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	privsep_inprocess(privsep_vmm_ops, privsep_vmm_nops, NULL, &f->ps);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	privsep_destroy(&f->ps);
	free(f);
	return 0;
}

static char *proc_status_line(pid_t pid, const char *key)
{
	static char line[256];
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *fp = fopen(path, "re");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
			fclose(fp);
			return line + strlen(key) + 1;
		}
	}
	fclose(fp);
	fail_msg("no %s in %s", key, path);
	return NULL;
}

static void helper_holds_net_admin_only_under_seccomp(void **state)
{
	struct fx *f = *state;
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_CAPS, NULL, &f->rep), 0);
	assert_int_equal(f->rep.len, sizeof(uint64_t));
	uint64_t caps;
	memcpy(&caps, f->rep.data, sizeof(caps));
	/* as root the helper keeps CAP_NET_ADMIN and nothing else; started
	 * by another user it has nothing to keep */
	assert_int_equal(caps, geteuid() == 0 ? CAP_NET_ADMIN_BIT : 0);

	pid_t pid = privsep_helper_pid(&f->ps);
	assert_true(pid > 0);
	assert_int_equal(atoi(proc_status_line(pid, "Seccomp")), 2);
	assert_int_equal(atoi(proc_status_line(pid, "NoNewPrivs")), 1);
	unsigned uid = (unsigned)strtoul(proc_status_line(pid, "Uid"), NULL, 10);
	if (geteuid() == 0)
		assert_int_equal(uid, f->user.uid);
	assert_true(uid != 0);
}

/* An fd goes to the handler and a copy comes back: the same open file. */
static void socktype_passes_fds_both_ways(void **state)
{
	struct fx *f = *state;
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	for (size_t i = 0; i < 2; i++) {
		int s = socket(AF_INET, types[i] | SOCK_CLOEXEC, 0);
		assert_true(s >= 0);
		struct privsep_msg req = { .fds = &s, .nfds = 1 };
		assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_SOCKTYPE, &req, &f->rep), 0);
		int32_t t;
		assert_int_equal(f->rep.len, sizeof(t));
		memcpy(&t, f->rep.data, sizeof(t));
		assert_int_equal(t, types[i]);
		assert_int_equal(f->rep.nfds, 1);
		struct stat a, b;
		assert_int_equal(fstat(s, &a), 0);
		assert_int_equal(fstat(f->rep.fds[0], &b), 0);
		assert_int_equal(a.st_ino, b.st_ino);
		assert_true(f->rep.fds[0] != s);
		close(f->rep.fds[0]);
		close(s);
	}
}

static void bad_requests_are_refused_and_the_helper_serves_on(void **state)
{
	struct fx *f = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct privsep_msg req = { .fds = p, .nfds = 1 };
	/* not a socket: the handler's own check */
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_SOCKTYPE, &req, &f->rep), -ENOTSOCK);
	assert_int_equal(f->rep.nfds, 0);
	/* no fd, or a payload the request does not take */
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_SOCKTYPE, NULL, &f->rep), -EINVAL);
	uint8_t byte = 1;
	struct privsep_msg extra = { .data = &byte, .len = 1 };
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_CAPS, &extra, &f->rep), -EINVAL);
	/* a request nobody serves (the repair ops are reserved, not here yet) */
	assert_int_equal(privsep_call(&f->ps, 999, NULL, &f->rep), -EOPNOTSUPP);
	assert_int_equal(privsep_call(&f->ps, 0, NULL, &f->rep), -EOPNOTSUPP);
	/* over the channel's limits: refused before anything is sent */
	static uint8_t big[PRIVSEP_MSG_MAX + 1];
	struct privsep_msg huge = { .data = big, .len = sizeof(big) };
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_CAPS, &huge, &f->rep), -EMSGSIZE);
	int many[PRIVSEP_FDS_MAX + 1];
	for (unsigned i = 0; i < PRIVSEP_FDS_MAX + 1; i++)
		many[i] = p[0];
	struct privsep_msg crowd = { .fds = many, .nfds = PRIVSEP_FDS_MAX + 1 };
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_SOCKTYPE, &crowd, &f->rep), -EINVAL);
	struct privsep_msg nodata = { .data = NULL, .len = 4 };
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_CAPS, &nodata, &f->rep), -EINVAL);
	/* and it still answers */
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_CAPS, NULL, &f->rep), 0);
	close(p[0]);
	close(p[1]);
}

/* A message that breaks the protocol (shorter than its header) gets
 * -EPROTO, and the loop goes on. */
static void malformed_message_gets_eproto(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(privsep_serve(sv[1], privsep_vmm_ops, privsep_vmm_nops, NULL) ? 1 : 0);
	}
	close(sv[1]);
	struct { int32_t res; uint32_t len; } h;
	assert_int_equal(send(sv[0], "xy", 2, 0), 2);
	assert_int_equal(recv(sv[0], &h, sizeof(h), 0), (ssize_t)sizeof(h));
	assert_int_equal(h.res, -EPROTO);
	/* a header whose length is not what came */
	struct { uint32_t op, len; } lie = { PRIVSEP_OP_CAPS, 100 };
	assert_int_equal(send(sv[0], &lie, sizeof(lie), 0), (ssize_t)sizeof(lie));
	assert_int_equal(recv(sv[0], &h, sizeof(h), 0), (ssize_t)sizeof(h));
	assert_int_equal(h.res, -EPROTO);
	/* EOF: the helper's loop ends cleanly */
	close(sv[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void helper_ends_when_the_channel_closes(void **state)
{
	struct fx *f = *state;
	pid_t pid = privsep_helper_pid(&f->ps);
	privsep_destroy(&f->ps); /* closes and reaps */
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static void inprocess_fallback_answers_the_same(void **state)
{
	struct fx *f = *state;
	assert_int_equal(privsep_helper_pid(&f->ps), 0);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct privsep_msg req = { .fds = &s, .nfds = 1 };
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_SOCKTYPE, &req, &f->rep), 0);
	int32_t t;
	memcpy(&t, f->rep.data, sizeof(t));
	assert_int_equal(t, SOCK_DGRAM);
	assert_int_equal(f->rep.nfds, 1);
	assert_true(f->rep.fds[0] != s);
	close(f->rep.fds[0]);
	close(s);
	assert_int_equal(privsep_call(&f->ps, 999, NULL, &f->rep), -EOPNOTSUPP);
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_SOCKTYPE, NULL, &f->rep), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(helper_holds_net_admin_only_under_seccomp, setup_helper,
						teardown),
		cmocka_unit_test_setup_teardown(socktype_passes_fds_both_ways, setup_helper, teardown),
		cmocka_unit_test_setup_teardown(bad_requests_are_refused_and_the_helper_serves_on,
						setup_helper, teardown),
		cmocka_unit_test(malformed_message_gets_eproto),
		cmocka_unit_test_setup_teardown(helper_ends_when_the_channel_closes, setup_helper, teardown),
		cmocka_unit_test_setup_teardown(inprocess_fallback_answers_the_same, setup_inprocess, teardown),
		cmocka_unit_test_setup_teardown(socktype_passes_fds_both_ways, setup_inprocess, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
