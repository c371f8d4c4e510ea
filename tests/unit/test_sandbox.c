/*
 * pvha-vmm's seccomp filters and fd hygiene (node/vmm/sandbox.h): each test
 * forks a child that loads the very filter the VMM (or its helper) loads,
 * then makes one call; what the VMM needs works, a forbidden syscall kills
 * the child with SIGSYS, a fork is refused with EPERM.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

enum probe {
	P_ALLOWED,     /* what a VMM does all day */
	P_MOUNT,       /* never */
	P_EXECVE,      /* never */
	P_SETUID,      /* never */
	P_UNSHARE,     /* never */
	P_NETLINK,     /* socket(AF_NETLINK) */
	P_KILL_OTHER,  /* a signal to another process */
	P_FORK,        /* refused: exits 0 when fork failed with EPERM */
	P_OPEN,        /* a file: the VMM may, the helper may not */
};

static void *thread_fn(void *arg)
{
	return arg;
}

/* Runs in the child, under the filter; returns only when the call was let
 * through: the exit status says how it went. */
static int probe(enum probe p)
{
	switch (p) {
	case P_ALLOWED: {
		int fds[2];
		pthread_t t;
		if (pipe2(fds, O_CLOEXEC) || write(fds[1], "x", 1) != 1 || getpid() <= 0)
			return 2;
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || close(s))
			return 3;
		if (pthread_create(&t, NULL, thread_fn, NULL) || pthread_join(t, NULL))
			return 4;
		void *m = malloc(1 << 20);
		free(m);
		return 0;
	}
	case P_MOUNT:
		mount("none", "/mnt", "tmpfs", 0, NULL);
		return 0;
	case P_EXECVE: {
		char *argv[] = { "/bin/true", NULL };
		execve(argv[0], argv, NULL);
		return 0;
	}
	case P_SETUID:
		syscall(SYS_setresuid, 0, 0, 0);
		return 0;
	case P_UNSHARE:
		syscall(SYS_unshare, 0);
		return 0;
	case P_NETLINK:
		socket(AF_NETLINK, SOCK_RAW, 0);
		return 0;
	case P_KILL_OTHER:
		kill(getppid(), 0);
		return 0;
	case P_FORK: {
		pid_t pid = (pid_t)syscall(SYS_fork);
		if (pid == 0)
			_exit(9);
		return pid < 0 && errno == EPERM ? 0 : 5;
	}
	case P_OPEN:
		return open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0 ? 0 : 6;
	}
	return 7;
}

/* Forks, loads the filter in the child, probes; returns the wait status. */
static int run(enum sandbox_filter which, enum probe p)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandbox_load_filter(which, false))
			_exit(100);
		_exit(probe(p));
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void assert_exit0(int st)
{
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void assert_sigsys(int st)
{
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void vmm_filter_lets_the_vmm_work(void **state)
{
	(void)state;
	assert_exit0(run(SANDBOX_FILTER_VMM, P_ALLOWED));
	assert_exit0(run(SANDBOX_FILTER_VMM, P_OPEN));
}

static void vmm_filter_kills_on_forbidden_syscalls(void **state)
{
	(void)state;
	assert_sigsys(run(SANDBOX_FILTER_VMM, P_MOUNT));
	assert_sigsys(run(SANDBOX_FILTER_VMM, P_EXECVE));
	assert_sigsys(run(SANDBOX_FILTER_VMM, P_SETUID));
	assert_sigsys(run(SANDBOX_FILTER_VMM, P_UNSHARE));
	assert_sigsys(run(SANDBOX_FILTER_VMM, P_NETLINK));
	if (!ASAN) /* LeakSanitizer needs these two (sandbox.h) */
		assert_sigsys(run(SANDBOX_FILTER_VMM, P_KILL_OTHER));
}

static void vmm_filter_refuses_fork(void **state)
{
	(void)state;
	if (ASAN)
		skip(); /* LeakSanitizer's tracer is a non-thread clone */
	assert_exit0(run(SANDBOX_FILTER_VMM, P_FORK));
}

static void helper_filter_is_narrower(void **state)
{
	(void)state;
	assert_sigsys(run(SANDBOX_FILTER_HELPER, P_MOUNT));
	assert_sigsys(run(SANDBOX_FILTER_HELPER, P_EXECVE));
	assert_sigsys(run(SANDBOX_FILTER_HELPER, P_NETLINK));
	if (!ASAN) { /* ASan's reports open /proc files */
		assert_sigsys(run(SANDBOX_FILTER_HELPER, P_OPEN));
		assert_sigsys(run(SANDBOX_FILTER_HELPER, P_FORK)); /* no threads, no forks */
	}
}

/* Two fds from "exec" (not close-on-exec) go, a library's (close-on-exec)
 * and the standard three stay. */
static void inherited_fds_are_closed(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int a = open("/dev/null", O_RDONLY), b = open("/dev/null", O_RDONLY);
		int lib = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (a < 3 || b < 3 || lib < 3)
			_exit(2);
		if (sandbox_close_inherited() < 2)
			_exit(3);
		if (fcntl(a, F_GETFD) != -1 || errno != EBADF || fcntl(b, F_GETFD) != -1)
			_exit(4);
		if (fcntl(lib, F_GETFD) < 0 || fcntl(0, F_GETFD) < 0 || fcntl(2, F_GETFD) < 0)
			_exit(5);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_exit0(st);
}

static void user_lookup_refuses_what_is_no_sandbox(void **state)
{
	(void)state;
	struct sandbox_user u;
	char why[256];
	if (geteuid() != 0) {
		/* not root: the caller stays who it is */
		assert_int_equal(sandbox_user_lookup("nobody-such", &u, why, sizeof(why)), 0);
		assert_false(u.change);
		assert_int_equal(u.uid, geteuid());
		return;
	}
	assert_int_equal(sandbox_user_lookup("pvha-no-such-user", &u, why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "no user pvha-no-such-user"));
	assert_int_equal(sandbox_user_lookup("root", &u, why, sizeof(why)), -EINVAL);
	/* deploy/install-deps (and the package) make the default user */
	assert_int_equal(sandbox_user_lookup(NULL, &u, why, sizeof(why)), 0);
	assert_true(u.change);
	assert_true(u.uid != 0 && u.gid != 0);
	assert_string_equal(u.name, SANDBOX_USER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(vmm_filter_lets_the_vmm_work),
		cmocka_unit_test(vmm_filter_kills_on_forbidden_syscalls),
		cmocka_unit_test(vmm_filter_refuses_fork),
		cmocka_unit_test(helper_filter_is_narrower),
		cmocka_unit_test(inherited_fds_are_closed),
		cmocka_unit_test(user_lookup_refuses_what_is_no_sandbox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
