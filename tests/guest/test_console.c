/*
 * The console of a guest that floods it (faulty mode=flood: 4 KiB a
 * hypercall, for ever) stays bounded on disk: the VMM keeps what the rate
 * allows, rotates the file at --console-max-bytes, says how much it
 * dropped, and answers its control socket all along. Plus the token bucket
 * (node/vmm/vmm_console.c) on its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "vmm_console.h"
#include "vmmctl.h"

#define VMM th_build("bin/pvha-vmm")
#define NOTE "bytes of console output dropped: over 262144 bytes/s]"

static void bucket_keeps_the_rate(void **state)
{
	(void)state;
	struct vmm_console_bucket b = { .rate = 100000 };
	/* a full second's worth at first */
	assert_int_equal(vmm_console_admit(&b, 1000000000ull, 1u << 20), 100000);
	assert_int_equal(vmm_console_admit(&b, 1000000000ull, 10), 0);
	/* 10 ms later: 1000 bytes */
	assert_int_equal(vmm_console_admit(&b, 1010000000ull, 5000), 1000);
	/* a clock that goes back admits nothing new */
	assert_int_equal(vmm_console_admit(&b, 1000000000ull, 5000), 0);
	/* a long pause refills to the cap, no more */
	assert_int_equal(vmm_console_admit(&b, 9000000000ull, 1u << 20), 100000);
	/* a slow rate still allows a burst of the minimum */
	struct vmm_console_bucket slow = { .rate = 1024 };
	assert_int_equal(vmm_console_admit(&slow, 5, 1u << 20), VMM_CONSOLE_BURST_MIN);
	struct vmm_console_bucket none = { .rate = 0 };
	assert_int_equal(vmm_console_admit(&none, 1, 12345), 12345);
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static Pvha__VmmReply *status(const char *sock)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	if (vmmctl_connect(sock, 2000, &fd))
		return NULL;
	if (vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r))
		r = NULL;
	close(fd);
	return r;
}

static void flooding_guest_keeps_its_log_bounded_and_the_vmm_answers(void **state)
{
	(void)state;
	const char *con = th_tmp("flood.console"), *sock = th_tmp("flood.sock");
	char old[300];
	snprintf(old, sizeof(old), "%s.1", con);
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)th_build("guests/faulty.elf"), "--mem", "8M",
			 "--cmdline", "mode=flood", "--console", (char *)con, "--console-max-bytes", "128K",
			 "--console-rate", "256K", "--control", (char *)sock, NULL };
	th_spawn(&p, argv);
	assert_true(th_wait_for_socket(sock, 30));
	/* wait for a rotation and a note of what was dropped: the flood is on */
	assert_true(th_wait_for_text(con, NOTE, 30) || th_wait_for_text(old, NOTE, 30));
	double end = th_now_s() + 60;
	/* PATH.1 is there from the start (empty): a rotation fills it */
	while (file_size(old) <= 0 && th_now_s() < end)
		th_pause_ms(20);
	assert_true(file_size(old) > 0);

	/* the VMM answers while the guest floods, and the guest goes on */
	uint64_t first = 0, last = 0;
	for (int i = 0; i < 20; i++) {
		Pvha__VmmReply *r = status(sock);
		assert_non_null(r);
		assert_string_equal(r->status->state, "running");
		if (!first)
			first = r->status->hypercalls;
		last = r->status->hypercalls;
		pvha__vmm_reply__free_unpacked(r, NULL);
		long now = file_size(con), prev = file_size(old);
		/* a file passes its size by one write (4 KiB) and a note at most */
		assert_true(now <= 128 * 1024 + 4096 + 200);
		assert_true(prev <= 128 * 1024 + 4096 + 200);
		th_pause_ms(50);
	}
	assert_true(last > first);
	/* what the guest wrote is far more than what was kept */
	uint64_t written = last * 4096;
	long kept = file_size(con) + file_size(old);
	print_message("flood: guest wrote %llu MiB, %ld KiB kept\n", (unsigned long long)(written >> 20),
		      kept >> 10);
	assert_true(written > 4 * (uint64_t)kept);

	int fd;
	Pvha__VmmReply *r;
	assert_int_equal(vmmctl_connect(sock, 2000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STOP, NULL, &r), 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	assert_int_equal(th_wait(&p, 30), 5);
}

static void bad_console_options_are_refused(void **state)
{
	(void)state;
	struct proc p;
	char *small[] = { (char *)VMM, "--image", (char *)th_build("guests/hello.elf"), "--mem", "8M",
			  "--console-max-bytes", "100", NULL };
	assert_int_equal(th_run(&p, 30, small), 2);
	assert_true(th_file_contains(p.err_path, "--console-max-bytes 100: want 0 or a size of 4K or more"));
	char *rate[] = { (char *)VMM, "--image", (char *)th_build("guests/hello.elf"), "--mem", "8M",
			 "--console-rate", "fast", NULL };
	assert_int_equal(th_run(&p, 30, rate), 2);
	assert_true(th_file_contains(p.err_path, "--console-rate fast: want 0 or 1K or more bytes/s"));
	char *dir[] = { (char *)VMM, "--image", (char *)th_build("guests/hello.elf"), "--mem", "8M",
			"--console", (char *)th_tmpdir(), NULL };
	assert_int_equal(th_run(&p, 30, dir), 2);
	assert_true(th_file_contains(p.err_path, "--console "));
}

static int teardown_all(void **state)
{
	(void)state;
	th_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bucket_keeps_the_rate),
		cmocka_unit_test(flooding_guest_keeps_its_log_bounded_and_the_vmm_answers),
		cmocka_unit_test(bad_console_options_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
