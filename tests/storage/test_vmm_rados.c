/*
 * pvha-vmm with its guest's disk on a real Ceph (rados:POOL/GUEST): the counter
 * guest keeps every flushed record through a kill -9 of its VMM and a restart;
 * a VMM whose storage client is blocklisted stops its guest as "fenced"
 * (exit 4) instead of retrying; bad rados specs get clear errors.
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

#include "ceph_suite.h"
#include "harness.h"
#include "pvstore/pvstore.h"
#include "vmmctl.h"

static struct ceph_fixture fx;
static struct pvstore *st;

#define VMM th_build("bin/pvha-vmm")
#define COUNTER th_build("guests/counter.elf")

/* Fails the test unless the file holds needle (th_file_contains prints it). */
#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

static void new_guest(uint8_t uuid[16], char *spec, size_t len)
{
	char u[PVSTORE_UUID_STR];
	assert_int_equal(pvstore_uuid_generate(uuid), 0);
	pvstore_uuid_format(uuid, u);
	snprintf(spec, len, "rados:pvha/%s,size=4M", u);
}

static void counter_on_rados_keeps_flushed_records_through_kill_9(void **state)
{
	(void)state;
	uint8_t uuid[16];
	char spec[128];
	struct proc p;
	new_guest(uuid, spec, sizeof(spec));
	char *run1[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--disk", spec,
			 "--ceph-conf", fx.conf, "--cmdline", "interval=2", NULL };
	th_spawn(&p, run1);
	assert_true(th_wait_for_text(p.out_path, "counter: flushed seq 25\n", 60));
	kill(p.pid, SIGKILL);
	th_wait(&p, 30);
	int flushed = th_last_flushed(p.out_path);
	assert_true(flushed >= 25);

	struct proc q;
	char *run2[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--disk", spec,
			 "--ceph-conf", fx.conf, "--cmdline", "interval=0 count=5", NULL };
	assert_int_equal(th_run(&q, 60, run2), 0);
	char *out = th_slurp(q.out_path);
	int verified = -1;
	char *v = strstr(out, "counter: verified ");
	assert_non_null(v);
	verified = atoi(v + strlen("counter: verified "));
	free(out);
	if (verified < flushed)
		fail_msg("flushed up to %d before kill -9, only %d on disk after", flushed, verified);

	const char *img = th_tmp("rados-export.img");
	ceph_suite_export_disk(st, uuid, img);
	struct proc c;
	char *check[] = { (char *)th_build("bin/pvha-counter-check"), "--expect-flushed", p.out_path,
			  (char *)img, NULL };
	assert_int_equal(th_run(&c, 30, check), 0);
	char want[64];
	snprintf(want, sizeof(want), "last_seq %d", verified + 5);
	assert_contains(c.out_path, want);
}

static void blocklisted_vmm_stops_as_fenced(void **state)
{
	(void)state;
	uint8_t uuid[16];
	char spec[128];
	struct proc p;
	const char *sock = th_tmp("fence.sock");
	new_guest(uuid, spec, sizeof(spec));
	char *argv[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--disk", spec,
			 "--ceph-conf", fx.conf, "--cmdline", "interval=2", "--control", (char *)sock, NULL };
	th_spawn(&p, argv);
	assert_true(th_wait_for_socket(sock, 60));
	assert_true(th_wait_for_text(p.out_path, "counter: flushed seq 5\n", 60));

	int fd;
	Pvha__VmmReply *reply;
	assert_int_equal(vmmctl_connect(sock, 10000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &reply), 0);
	close(fd);
	char addr[128];
	snprintf(addr, sizeof(addr), "%s", reply->status->storage_addr);
	pvha__vmm_reply__free_unpacked(reply, NULL);
	assert_non_null(strchr(addr, '/')); /* IP:0/NONCE: this VMM alone */

	double t0 = ceph_fixture_now_ms();
	assert_int_equal(pvstore_fence(st, addr, 600), 0);
	assert_int_equal(th_wait(&p, 60), 4);
	print_message("VMM stopped %.0f ms after the fence\n", ceph_fixture_now_ms() - t0);
	assert_contains(p.err_path, "pvha-vmm: fenced: ");
	int flushed = th_last_flushed(p.out_path);

	/* Everything it was told is durable is there (our own client is not fenced). */
	const char *img = th_tmp("fenced-export.img");
	ceph_suite_export_disk(st, uuid, img);
	struct proc c;
	char *check[] = { (char *)th_build("bin/pvha-counter-check"), "--expect-flushed", p.out_path,
			  (char *)img, NULL };
	assert_int_equal(th_run(&c, 30, check), 0);
	assert_true(flushed >= 5);
	assert_int_equal(pvstore_blocklist_remove(st, addr), 0);
}

static void bad_rados_specs_get_clear_errors(void **state)
{
	(void)state;
	struct proc p;
	struct { const char *spec; const char *conf; const char *why; } cases[] = {
		{ "rados:nosuchpool/00000000-0000-4000-8000-000000000001,size=1M", fx.conf, "nosuchpool" },
		{ "rados:pvha/00000000-0000-4000-8000-000000000002", fx.conf, "add ,size=SIZE" },
		{ "rados:pvha/no-such-guest-name", fx.conf, "no guest named no-such-guest-name" },
		{ "rados:pvha/00000000-0000-4000-8000-000000000003,size=1M", "/nonexistent/ceph.conf",
		  "/nonexistent/ceph.conf" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--disk",
				 (char *)cases[i].spec, "--ceph-conf", (char *)cases[i].conf,
				 "--ceph-timeout", "5", NULL };
		assert_int_equal(th_run(&p, 60, argv), 2);
		assert_contains(p.err_path, "pvha-vmm: --disk ");
		assert_contains(p.err_path, cases[i].why);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counter_on_rados_keeps_flushed_records_through_kill_9),
		cmocka_unit_test(blocklisted_vmm_stops_as_fenced),
		cmocka_unit_test(bad_rados_specs_get_clear_errors),
	};
	const struct ceph_suite suite = {
		.name = "test_vmm_rados", .fx = &fx, .st = &st, .mount_timeout_s = 10, .osd_op_timeout_s = 10,
		.after = th_cleanup,
	};
	return ceph_suite_run(&suite, tests);
}
