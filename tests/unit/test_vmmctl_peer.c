/*
 * vmmctl_peer_check (node/lib/vmmctl.c): an agent adopting a VMM after a
 * restart takes the VMM's pid from the kernel (SO_PEERCRED of its control
 * socket), and refuses a peer of another user or one whose STATUS reply
 * names another pid. The "VMM" here is this test process listening on a
 * unix socket in a temporary directory: its credentials are known.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmmctl.h"

struct fx {
	char dir[64];
	char path[96];
	int listener;
	int fd;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pvha-peer-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/g.sock", f->dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	f->listener = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->listener >= 0);
	assert_int_equal(bind(f->listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listener, 1), 0);
	assert_int_equal(vmmctl_connect(f->path, 1000, &f->fd), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	close(f->fd);
	close(f->listener);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_accepts_own_user_and_pid(void **state)
{
	struct fx *f = *state;
	char why[200] = "";
	pid_t pid = 0;
	assert_int_equal(vmmctl_peer_check(f->fd, geteuid(), getpid(), &pid, why, sizeof(why)), 0);
	assert_int_equal(pid, getpid());
}

static void test_refuses_another_pid(void **state)
{
	struct fx *f = *state;
	char why[200] = "";
	pid_t pid = 0;
	assert_int_equal(vmmctl_peer_check(f->fd, geteuid(), getpid() + 1, &pid, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "but its process is"));
	assert_int_equal(pid, 0);
	assert_int_equal(vmmctl_peer_check(f->fd, geteuid(), 0, &pid, why, sizeof(why)), -EPERM);
}

static void test_refuses_another_user(void **state)
{
	struct fx *f = *state;
	char why[200] = "";
	pid_t pid = 0;
	assert_int_equal(vmmctl_peer_check(f->fd, geteuid() + 1, getpid(), &pid, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "runs as uid"));
	assert_int_equal(pid, 0);
}

static void test_not_a_socket(void **state)
{
	(void)state;
	char why[200] = "";
	pid_t pid = 0;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(vmmctl_peer_check(p[0], geteuid(), getpid(), &pid, why, sizeof(why)), -ENOTSOCK);
	assert_true(why[0] != '\0');
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accepts_own_user_and_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_another_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_another_user, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_socket, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
