/*
 * Sample and misbehaving guests booted by pvha-vmm, one process each, checked
 * by exit status, console output and the one-line reason on stderr.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pvhv/hv.h"

#define VMM th_build("bin/pvha-vmm")
#define GUEST(n) th_build("guests/" n ".elf")

/* Fails the test unless the file holds needle (th_file_contains prints it). */
#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

static void hello_prints_greeting_and_boot_info(void **state)
{
	(void)state;
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "64M",
			 "--backend", "tcg", "--id", "6f1c6a52-1b0e-4d2e-9a57-0a3c1c0ffee0",
			 "--cmdline", "role=test x=1", NULL };
	assert_int_equal(th_run(&p, 30, argv), 0);
	assert_contains(p.out_path, "hello from pvha guest");
	assert_contains(p.out_path, "67108864");
	assert_contains(p.out_path, "6f1c6a52-1b0e-4d2e-9a57-0a3c1c0ffee0");
	assert_contains(p.out_path, "role=test x=1");
	assert_contains(p.err_path, "pvha-vmm: exit: guest exited with code 0");
}

static void counter_appends_and_continues_across_boots(void **state)
{
	(void)state;
	struct proc p;
	const char *disk = th_tmp("counter.img");
	char spec[600];
	snprintf(spec, sizeof(spec), "file:%s,size=4M", disk);
	char *argv1[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M",
			  "--disk", spec, "--cmdline", "interval=0 count=5", NULL };
	assert_int_equal(th_run(&p, 60, argv1), 0);
	assert_contains(p.out_path, "counter: verified 0 records");
	assert_contains(p.out_path, "counter: flushed seq 5");

	char *argv2[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M",
			  "--disk", spec, "--cmdline", "interval=1 count=3", NULL };
	assert_int_equal(th_run(&p, 60, argv2), 0);
	assert_contains(p.out_path, "counter: verified 5 records");
	assert_contains(p.out_path, "counter: flushed seq 8");

	struct proc c;
	char *check[] = { (char *)th_build("bin/pvha-counter-check"), (char *)disk, NULL };
	assert_int_equal(th_run(&c, 30, check), 0);
	assert_contains(c.out_path, "records 8");
}

static void counter_refuses_a_corrupted_log(void **state)
{
	(void)state;
	struct proc p;
	const char *disk = th_tmp("corrupt.img");
	char spec[600];
	snprintf(spec, sizeof(spec), "file:%s,size=4M", disk);
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M",
			 "--disk", spec, "--cmdline", "interval=0 count=4", NULL };
	assert_int_equal(th_run(&p, 60, argv), 0);
	/* Flip one byte inside the third record's payload. */
	FILE *f = fopen(disk, "r+b");
	assert_non_null(f);
	fseek(f, 512 + 2 * 64 + 40, SEEK_SET);
	int ch = fgetc(f);
	fseek(f, 512 + 2 * 64 + 40, SEEK_SET);
	fputc(ch ^ 0x5a, f);
	fclose(f);
	assert_int_equal(th_run(&p, 60, argv), 1);
	assert_contains(p.out_path, "counter: CORRUPT");
	assert_contains(p.err_path, "guest exited with code 2");
}

static void cpubench_prints_figures_and_checksum(void **state)
{
	(void)state;
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "16M",
			 "--cmdline", "iters=200000", NULL };
	assert_int_equal(th_run(&p, 120, argv), 0);
	assert_contains(p.out_path, "figure guest_int_ns_per_iter");
	assert_contains(p.out_path, "cpubench: checksum int=0x");
}

struct fault_case {
	const char *mode;
	const char *kind;   /* the stop kind on the last stderr line */
	const char *detail; /* and a word of its reason */
};

static const struct fault_case faults[] = {
	{ "wild-write", "memory-fault", "write to unmapped address 0x7ff000000000" },
	{ "wild-read", "memory-fault", "read from unmapped address" },
	{ "wild-jump", "memory-fault", "unmapped address" },
	{ "ud2", "illegal-instruction", "illegal instruction at rip 0x" },
	{ "div0", "cpu-exception", "divide error (vector 0)" },
	{ "bad-hypercall", "bad-hypercall", "unknown number 999" },
	{ "bad-pointer", "bad-hypercall", "console_write: buffer outside guest RAM" },
	{ "runaway", "runaway", "no hypercall for" },
	{ "hlt", "halt", "hlt at rip" },
	{ "stack-overflow", "memory-fault", "unmapped address" },
};

static void misbehaving_guest_stops_with_reason(void **state)
{
	const struct fault_case *fc = *state;
	struct proc p;
	char cmdline[64], expect[160];
	snprintf(cmdline, sizeof(cmdline), "mode=%s", fc->mode);
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("faulty"), "--mem", "16M",
			 "--backend", "tcg", "--budget", "300", "--cmdline", cmdline, NULL };
	assert_int_equal(th_run(&p, 60, argv), 3);
	snprintf(expect, sizeof(expect), "pvha-vmm: %s: ", fc->kind);
	assert_contains(p.err_path, expect);
	assert_contains(p.err_path, fc->detail);
	char banner[64];
	snprintf(banner, sizeof(banner), "faulty: mode %s", fc->mode);
	assert_contains(p.out_path, banner);
}

static int fault_setup(void **state)
{
	static size_t next;
	*state = (void *)&faults[next++];
	return 0;
}

struct usage_case {
	const char *args[12];
	const char *message;
};

static void bad_usage_is_refused_with_a_clear_message(void **state)
{
	(void)state;
	const char *notelf = th_tmp("not-an-elf");
	FILE *f = fopen(notelf, "w");
	fputs("this is not an ELF image\n", f);
	fclose(f);
	const char *hello = GUEST("hello");
	const struct usage_case cases[] = {
		{ { "--image", hello }, "--image needs --mem" },
		{ { "--image", hello, "--mem", "3" }, "--mem 3: want a whole number of MiB" },
		{ { "--image", hello, "--mem", "64Q" }, "--mem 64Q" },
		{ { "--image", hello, "--mem", "8G" }, "--mem 8G" },
		{ { "--mem", "64M" }, "exactly one of --image and --restore" },
		{ { "--image", "/nonexistent/x.elf", "--mem", "64M" }, "No such file" },
		{ { "--image", notelf, "--mem", "64M" }, "image:" },
		{ { "--image", hello, "--mem", "64M", "--backend", "qemu" }, "want tcg, kvm or auto" },
		{ { "--image", hello, "--mem", "64M", "--disk", "nfs:/x" }, "want file:PATH" },
		{ { "--image", hello, "--mem", "64M", "--disk", "file:/nonexistent/d.img" }, "does not exist" },
		{ { "--image", hello, "--mem", "64M", "--save-after", "3" }, "--save-after needs --save" },
		{ { "--image", hello, "--mem", "64M", "--id", "not-a-uuid" }, "not a UUID" },
		{ { "--image", hello, "--mem", "64M", "stray" }, "unexpected argument" },
		{ { "--image", hello, "--mem", "64M", "--save", "/nonexistent/s" }, "not writable" },
		{ { "--image", "/tmp", "--mem", "64M" }, "not a regular file" },
		{ { "--image", hello, "--mem", "64M", "--control", notelf }, "not a socket" },
		{ { "--restore", notelf }, "not a pvha saved state" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[16] = { (char *)VMM };
		int n = 1;
		for (int j = 0; cases[i].args[j]; j++)
			argv[n++] = (char *)cases[i].args[j];
		argv[n] = NULL;
		struct proc p;
		assert_int_equal(th_run(&p, 30, argv), 2);
		assert_contains(p.err_path, cases[i].message);
	}
}

static void kvm_backend_without_dev_kvm_is_a_clear_error(void **state)
{
	(void)state;
	if (hv_kvm_available()) {
		print_message("kvm: /dev/kvm is available here; the kvm tests cover it\n");
		skip();
	}
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "64M",
			 "--backend", "kvm", NULL };
	assert_int_equal(th_run(&p, 30, argv), 2);
	assert_contains(p.err_path, "/dev/kvm");
	/* auto falls back to tcg */
	char *argv2[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "64M", NULL };
	assert_int_equal(th_run(&p, 30, argv2), 0);
}

static int teardown_all(void **state)
{
	(void)state;
	th_cleanup();
	return 0;
}

/* The heartbeat line of `pvha vmm SOCK status`: seq and age (seq 0: none
 * yet). False when the VMM did not answer. */
static bool heartbeat_of(const char *sock, unsigned long *seq, unsigned long *age_ms)
{
	struct proc q;
	char *argv[] = { (char *)th_build("bin/pvha"), "vmm", (char *)sock, "status", NULL };
	if (th_run(&q, 10, argv) != 0)
		return false;
	char *out = th_slurp(q.out_path);
	char *h = strstr(out, "heartbeat:");
	*seq = *age_ms = 0;
	bool ok = h && (sscanf(h, "heartbeat: seq %lu, %lu ms ago", seq, age_ms) == 2 || strstr(h, "none yet"));
	free(out);
	return ok;
}

/* hbstop sends heartbeats for 1 s, then none, and runs on: the VMM's status
 * shows the last one getting older while the guest lives (what heartbeat
 * monitoring acts on, docs/heartbeat.md). */
static void hbstop_stops_its_heartbeats_and_runs_on(void **state)
{
	(void)state;
	struct proc p;
	const char *sock = th_tmp("hb.sock"), *con = th_tmp("hb.console");
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("hbstop"), "--mem", "8M", "--backend", "tcg",
			 "--cmdline", "beat_ms=1000 period=100", "--control", (char *)sock, "--console", (char *)con,
			 NULL };
	th_spawn(&p, argv);
	assert_true(th_wait_for_text(con, "hbstop: heartbeats stop now", 30));
	unsigned long seq = 0, age = 0, seq2 = 0, age2 = 0;
	assert_true(heartbeat_of(sock, &seq, &age));
	assert_true(seq >= 5);
	double end = th_now_s() + 30;
	while (heartbeat_of(sock, &seq2, &age2) && age2 < 1500 && th_now_s() < end)
		th_pause_ms(100);
	assert_int_equal(seq2, seq); /* no heartbeat since */
	assert_true(age2 >= 1500);
	assert_int_equal(kill(p.pid, 0), 0); /* and the guest runs on */
	kill(p.pid, SIGKILL);
	th_wait(&p, 10);
}

/* The long-running sample guests heartbeat: memwriter after every pass and
 * every re-check while it holds (counter and kvstore did already). */
static void memwriter_sends_heartbeats(void **state)
{
	(void)state;
	struct proc p;
	const char *sock = th_tmp("mw.sock"), *con = th_tmp("mw.console");
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "16M", "--backend", "tcg",
			 "--cmdline", "mib=1 passes=3 hold", "--control", (char *)sock, "--console", (char *)con, NULL };
	th_spawn(&p, argv);
	assert_true(th_wait_for_text(con, "memwriter: done, 3 passes ok", 30));
	unsigned long seq = 0, age = 0;
	double end = th_now_s() + 30;
	while (heartbeat_of(sock, &seq, &age) && seq < 4 && th_now_s() < end)
		th_pause_ms(100);
	assert_true(seq >= 4); /* 3 passes, then at least one re-check */
	kill(p.pid, SIGKILL);
	th_wait(&p, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hello_prints_greeting_and_boot_info),
		cmocka_unit_test(counter_appends_and_continues_across_boots),
		cmocka_unit_test(counter_refuses_a_corrupted_log),
		cmocka_unit_test(cpubench_prints_figures_and_checksum),
		cmocka_unit_test(bad_usage_is_refused_with_a_clear_message),
		cmocka_unit_test(kvm_backend_without_dev_kvm_is_a_clear_error),
		cmocka_unit_test(hbstop_stops_its_heartbeats_and_runs_on),
		cmocka_unit_test(memwriter_sends_heartbeats),
#define FAULT(i) cmocka_unit_test_setup(misbehaving_guest_stops_with_reason, fault_setup)
		FAULT(0), FAULT(1), FAULT(2), FAULT(3), FAULT(4),
		FAULT(5), FAULT(6), FAULT(7), FAULT(8), FAULT(9),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
