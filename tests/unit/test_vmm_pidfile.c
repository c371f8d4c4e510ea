/*
 * pvhad's records of the VMMs it spawned (node/pvhad/vmm_pidfile.c): a
 * record names a live process only while that very process (pid and start
 * time) runs; a reused pid, a process gone, or a record that is not
 * "PID STARTTIME\n" never counts.
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm_pidfile.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/pvha-pidfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *text)
{
	char path[200];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void a_record_of_a_running_process_reads_back_alive(void **state)
{
	(void)state;
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(vmm_pidfile_write(dir, "5e000000-0000-0000-0000-000000000001", child), 0);
	char path[200];
	snprintf(path, sizeof(path), "%s/5e000000-0000-0000-0000-000000000001.pid", dir);
	pid_t pid;
	unsigned long long start, now;
	assert_int_equal(vmm_pidfile_read(path, &pid, &start), 0);
	assert_int_equal(pid, child);
	assert_int_equal(vmm_proc_starttime(child, &now), 0);
	assert_true(start == now);
	assert_true(vmm_pidfile_alive(pid, start));
	/* the same pid with another start time is another process */
	assert_false(vmm_pidfile_alive(pid, start + 1));
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	assert_false(vmm_pidfile_alive(pid, start));
	/* a record of a process that is gone cannot be written */
	assert_int_equal(vmm_pidfile_write(dir, "5e000000-0000-0000-0000-000000000002", child), -ENOENT);
}

static void this_process_has_a_start_time(void **state)
{
	(void)state;
	unsigned long long a, b;
	assert_int_equal(vmm_proc_starttime(getpid(), &a), 0);
	assert_int_equal(vmm_proc_starttime(getpid(), &b), 0);
	assert_true(a == b);
	assert_int_equal(vmm_proc_starttime(0x7ffffff0, &a), -ENOENT);
}

static void bad_records_are_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "\n", "123\n", "123 456", "abc 456\n", "123 def\n", "-5 456\n", "0 456\n", "1 456\n",
		"99999999999 1\n",
	};
	char path[200];
	snprintf(path, sizeof(path), "%s/bad.pid", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pid_t pid;
		unsigned long long start;
		put("bad.pid", bad[i]);
		assert_int_equal(vmm_pidfile_read(path, &pid, &start), -EINVAL);
	}
	pid_t pid;
	unsigned long long start;
	snprintf(path, sizeof(path), "%s/none.pid", dir);
	assert_int_equal(vmm_pidfile_read(path, &pid, &start), -ENOENT);
	put("good.pid", "4242 777\n");
	snprintf(path, sizeof(path), "%s/good.pid", dir);
	assert_int_equal(vmm_pidfile_read(path, &pid, &start), 0);
	assert_int_equal(pid, 4242);
	assert_true(start == 777);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_record_of_a_running_process_reads_back_alive),
		cmocka_unit_test(this_process_has_a_start_time),
		cmocka_unit_test(bad_records_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
