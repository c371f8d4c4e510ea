/*
 * Save and restore: a guest interrupted at several points and resumed in a
 * fresh pvha-vmm process finishes exactly like an uninterrupted run (cpubench's
 * checksums; the counter's console and disk, byte for byte). Also the control
 * socket (pause, status, save, stop), SIGTERM with --save, and hostile state
 * files.
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
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define VMM th_build("bin/pvha-vmm")
#define PVHA th_build("bin/pvha")
#define GUEST(n) th_build("guests/" n ".elf")

/* Fails the test unless the file holds needle (th_file_contains prints it). */
#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

/* The "cpubench: checksum ..." line of a console log (malloc'd). */
static char *checksum_line(const char *path)
{
	char *s = th_slurp(path);
	char *p = strstr(s, "cpubench: checksum");
	if (!p)
		fail_msg("no checksum line in %s:\n%s", path, s);
	char *nl = strchr(p, '\n');
	if (nl)
		*nl = '\0';
	char *line = strdup(p);
	free(s);
	return line;
}

static void cpubench_resumes_to_the_same_result(void **state)
{
	(void)state;
	struct proc p;
	const char *cmd = "iters=300000";
	char *ref[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "16M",
			"--cmdline", (char *)cmd, NULL };
	assert_int_equal(th_run(&p, 120, ref), 0);
	char *want = checksum_line(p.out_path);

	const char *points[] = { "1", "2", "5", "9", "14" };
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		const char *st = th_tmp("cpubench.state");
		char *save[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "16M",
				 "--cmdline", (char *)cmd, "--save", (char *)st, "--save-after",
				 (char *)points[i], NULL };
		assert_int_equal(th_run(&p, 120, save), 6);
		assert_contains(p.err_path, "pvha-vmm: saved: after hypercall");
		char *restore[] = { (char *)VMM, "--restore", (char *)st, NULL };
		assert_int_equal(th_run(&p, 120, restore), 0);
		char *got = checksum_line(p.out_path);
		assert_string_equal(got, want);
		free(got);
	}
	free(want);
}

static void counter_resumes_byte_for_byte(void **state)
{
	(void)state;
	struct proc p;
	const char *cmd = "interval=0 count=12 nonce=42";
	char refspec[600], spec[600];
	snprintf(refspec, sizeof(refspec), "file:%s,size=1M", th_tmp("ref.img"));
	char *ref[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "8M",
			"--id", "0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0001", "--disk", refspec,
			"--cmdline", (char *)cmd, NULL };
	assert_int_equal(th_run(&p, 60, ref), 0);
	char *ref_out = th_slurp(p.out_path);
	char *ref_disk = NULL;
	{
		FILE *f = fopen(th_tmp("ref.img"), "rb");
		ref_disk = malloc(1 << 20);
		assert_int_equal(fread(ref_disk, 1, 1 << 20, f), 1 << 20);
		fclose(f);
	}

	const char *points[] = { "3", "8", "17", "30" };
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		char img[64];
		snprintf(img, sizeof(img), "run%zu.img", i);
		snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp(img));
		const char *st = th_tmp("counter.state");
		char *save[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "8M",
				 "--id", "0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0001", "--disk", spec,
				 "--cmdline", (char *)cmd, "--save", (char *)st, "--save-after",
				 (char *)points[i], NULL };
		assert_int_equal(th_run(&p, 60, save), 6);
		char *out1 = th_slurp(p.out_path);
		char *restore[] = { (char *)VMM, "--restore", (char *)st, "--disk", spec, NULL };
		assert_int_equal(th_run(&p, 60, restore), 0);
		char *out2 = th_slurp(p.out_path);
		char *joined = malloc(strlen(out1) + strlen(out2) + 1);
		strcpy(joined, out1);
		strcat(joined, out2);
		assert_string_equal(joined, ref_out);
		FILE *f = fopen(th_tmp(img), "rb");
		char *disk = malloc(1 << 20);
		assert_int_equal(fread(disk, 1, 1 << 20, f), 1 << 20);
		fclose(f);
		assert_memory_equal(disk, ref_disk, 1 << 20);
		free(disk);
		free(joined);
		free(out1);
		free(out2);
	}
	free(ref_out);
	free(ref_disk);
}

static void saved_state_can_be_saved_again_after_restore(void **state)
{
	(void)state;
	struct proc p;
	const char *cmd = "iters=200000";
	char *ref[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "16M",
			"--cmdline", (char *)cmd, NULL };
	assert_int_equal(th_run(&p, 120, ref), 0);
	char *want = checksum_line(p.out_path);
	const char *a = th_tmp("hop-a.state"), *b = th_tmp("hop-b.state");
	char *first[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "16M",
			  "--cmdline", (char *)cmd, "--save", (char *)a, "--save-after", "3", NULL };
	assert_int_equal(th_run(&p, 120, first), 6);
	/* hypercalls are counted from boot, and the count travels in the state */
	char *second[] = { (char *)VMM, "--restore", (char *)a, "--save", (char *)b,
			   "--save-after", "7", NULL };
	assert_int_equal(th_run(&p, 120, second), 6);
	char *third[] = { (char *)VMM, "--restore", (char *)b, NULL };
	assert_int_equal(th_run(&p, 120, third), 0);
	char *got = checksum_line(p.out_path);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static int pvha_vmm(const char *sock, const char *op, const char *arg, struct proc *p)
{
	char *argv[] = { (char *)PVHA, "--json", "vmm", (char *)sock, (char *)op, (char *)arg, NULL };
	return th_run(p, 30, argv);
}

static void control_socket_pauses_saves_and_stops(void **state)
{
	(void)state;
	struct proc vmm, c;
	char spec[600];
	const char *sock = th_tmp("vmm.sock");
	const char *st = th_tmp("ctl.state");
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("ctl.img"));
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "8M",
			 "--disk", spec, "--cmdline", "interval=5", "--control", (char *)sock, NULL };
	th_spawn(&vmm, argv);
	assert_true(th_wait_for_socket(sock, 30));
	assert_true(th_wait_for_text(vmm.out_path, "counter: flushed seq 3\n", 30));

	assert_int_equal(pvha_vmm(sock, "save", st, &c), 1); /* not paused yet */
	assert_contains(c.err_path, "pause the guest before saving it");
	assert_int_equal(pvha_vmm(sock, "pause", NULL, &c), 0);
	assert_contains(c.out_path, "\"state\":\"paused\"");
	/* Paused means paused: no record is added while we look. */
	char *before = th_slurp(vmm.out_path);
	assert_int_equal(pvha_vmm(sock, "status", NULL, &c), 0);
	assert_contains(c.out_path, "\"state\":\"paused\"");
	assert_int_equal(pvha_vmm(sock, "save", st, &c), 0);
	char *after = th_slurp(vmm.out_path);
	assert_string_equal(before, after);
	int last = th_count(after, "counter: flushed seq");
	free(before);
	free(after);
	assert_int_equal(pvha_vmm(sock, "stop", NULL, &c), 0);
	assert_int_equal(th_wait(&vmm, 30), 5);
	assert_contains(vmm.err_path, "pvha-vmm: killed: stopped by its supervisor");
	assert_int_equal(access(sock, F_OK), -1); /* the socket is gone */

	/* The saved guest carries on from the next record, with no new boot. */
	char next[64];
	snprintf(next, sizeof(next), "counter: flushed seq %d\n", last + 1);
	char *restore[] = { (char *)VMM, "--restore", (char *)st, "--disk", spec, "--control",
			    (char *)sock, NULL };
	th_spawn(&vmm, restore);
	assert_true(th_wait_for_text(vmm.out_path, next, 30));
	char *out = th_slurp(vmm.out_path);
	assert_null(strstr(out, "verified"));
	free(out);
	kill(vmm.pid, SIGTERM);
	assert_int_equal(th_wait(&vmm, 30), 5);
	assert_contains(vmm.err_path, "pvha-vmm: killed: stopped by signal 15");

	/* A socket that is not a pvha-vmm, or none at all. */
	assert_int_equal(pvha_vmm(th_tmp("nothing.sock"), "status", NULL, &c), 1);
	assert_contains(c.err_path, "cannot reach");
	assert_int_equal(pvha_vmm(sock, "explode", NULL, &c), 2);
}

static void sigterm_with_save_writes_a_restorable_state(void **state)
{
	(void)state;
	struct proc vmm;
	char spec[600];
	const char *st = th_tmp("term.state");
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("term.img"));
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "8M",
			 "--disk", spec, "--cmdline", "interval=2 count=40", "--save", (char *)st, NULL };
	th_spawn(&vmm, argv);
	assert_true(th_wait_for_text(vmm.out_path, "counter: flushed seq 5\n", 30));
	kill(vmm.pid, SIGTERM);
	assert_int_equal(th_wait(&vmm, 30), 6);
	assert_contains(vmm.err_path, "pvha-vmm: saved: signal 15; state written to");
	char *restore[] = { (char *)VMM, "--restore", (char *)st, "--disk", spec, NULL };
	assert_int_equal(th_run(&vmm, 60, restore), 0);
	assert_contains(vmm.out_path, "counter: flushed seq 40\n");
	struct proc c;
	char *check[] = { (char *)th_build("bin/pvha-counter-check"), (char *)th_tmp("term.img"), NULL };
	assert_int_equal(th_run(&c, 30, check), 0);
	assert_contains(c.out_path, "records 40");
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void hostile_state_files_are_refused(void **state)
{
	(void)state;
	struct proc p;
	const char *good = th_tmp("good.state");
	char *save[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "8M",
			 "--save", (char *)good, "--save-after", "1", NULL };
	assert_int_equal(th_run(&p, 30, save), 6);
	FILE *f = fopen(good, "rb");
	fseek(f, 0, SEEK_END);
	size_t len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(len);
	assert_int_equal(fread(buf, 1, len, f), len);
	fclose(f);

	struct { const char *name; const char *why; } cases[] = {
		{ "empty", "empty: not a saved state" },
		{ "garbage", "not a pvha saved state (state record truncated or not decodable)" },
		{ "huge-length", "not a pvha saved state (state record larger than" },
		{ "truncated", "" },
		{ "version", "state version 2 is not supported" },
		{ "no-end", "ends before its end record" },
	};
	const char *bad = th_tmp("bad.state");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *n = cases[i].name;
		if (!strcmp(n, "empty")) {
			write_file(bad, "", 0);
		} else if (!strcmp(n, "garbage")) {
			uint8_t g[64];
			memset(g, 0xff, sizeof(g));
			g[0] = 60; g[1] = 0; g[2] = 0; g[3] = 0;
			write_file(bad, g, sizeof(g));
		} else if (!strcmp(n, "huge-length")) {
			uint8_t g[8] = { 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4 };
			write_file(bad, g, sizeof(g));
		} else if (!strcmp(n, "truncated")) {
			write_file(bad, buf, len / 2);
		} else if (!strcmp(n, "version")) {
			/* frame length, 0x0a (field 1, header), its length, 0x08 (version) 0x01 */
			uint8_t *c = malloc(len);
			memcpy(c, buf, len);
			assert_int_equal(c[4], 0x0a);
			assert_int_equal(c[6], 0x08);
			assert_int_equal(c[7], 0x01);
			c[7] = 0x02;
			write_file(bad, c, len);
			free(c);
		} else {
			/* drop the last frame (the end record) */
			size_t off = 0, last = 0;
			while (off + 4 <= len) {
				uint32_t l = buf[off] | buf[off + 1] << 8 | buf[off + 2] << 16 |
					     (uint32_t)buf[off + 3] << 24;
				last = off;
				off += 4 + l;
			}
			write_file(bad, buf, last);
		}
		char *restore[] = { (char *)VMM, "--restore", (char *)bad, NULL };
		assert_int_equal(th_run(&p, 30, restore), 2);
		assert_contains(p.err_path, "pvha-vmm: --restore");
		assert_contains(p.err_path, cases[i].why);
	}
	/* A disk the saved guest did not have. */
	char spec[600];
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("extra.img"));
	char *restore[] = { (char *)VMM, "--restore", (char *)good, "--disk", spec, NULL };
	assert_int_equal(th_run(&p, 30, restore), 2);
	assert_contains(p.err_path, "the saved guest had no disk");
	/* And the good one still restores. */
	char *ok[] = { (char *)VMM, "--restore", (char *)good, NULL };
	assert_int_equal(th_run(&p, 30, ok), 0);
	assert_contains(p.out_path, "hello: cmdline");
	free(buf);
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
		cmocka_unit_test(cpubench_resumes_to_the_same_result),
		cmocka_unit_test(counter_resumes_byte_for_byte),
		cmocka_unit_test(saved_state_can_be_saved_again_after_restore),
		cmocka_unit_test(control_socket_pauses_saves_and_stops),
		cmocka_unit_test(sigterm_with_save_writes_a_restorable_state),
		cmocka_unit_test(hostile_state_files_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
