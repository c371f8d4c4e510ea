/*
 * A full cluster: Ceph makes writes to a full OSD wait, not fail, so without
 * care a guest's write would just time out. libpvstore turns such a timeout
 * into -ENOSPC with a message naming the full cluster, and pvha-vmm hands the
 * guest -ENOSPC (the counter guest reports its flush failed and exits 5).
 * The OSD is made full by lowering the full ratios below what it stores.
 */
#include <errno.h>
#include <setjmp.h>
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

#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

static struct ceph_fixture fx;
static struct pvstore *st;

/* Runs `ceph ARGS` on the fixture's cluster; its output in out (when given),
 * printed when it fails. Returns its exit status. */
static int ceph_cli(const char *args, char *out, size_t outlen)
{
	char cmd[1024], buf[4096];
	snprintf(cmd, sizeof(cmd), "timeout 15 ceph -c %s %s 2>&1", fx.conf, args);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, p);
	buf[n] = '\0';
	int rc = pclose(p);
	if (out)
		snprintf(out, outlen, "%s", buf);
	if (rc)
		fprintf(stderr, "ceph %s: exit %d: %s\n", args, rc, buf);
	return rc;
}

/* Waits (up to 60 s, polling the monitors) until Ceph reports a full OSD. */
static bool wait_full(void)
{
	char buf[4096];
	for (int i = 0; i < 600; i++) {
		if (ceph_cli("health", buf, sizeof(buf)) == 0 && strstr(buf, "full osd"))
			return true;
		usleep(100 * 1000);
	}
	fprintf(stderr, "ceph health never reported a full OSD: %s\n", buf);
	return false;
}

static void writes_to_a_full_cluster_fail_with_enospc(void **state)
{
	(void)state;
	uint8_t uuid[16], vm_uuid[16];
	char u[PVSTORE_UUID_STR], spec[128];
	struct pvstore_disk *d;
	uint8_t block[4096];
	memset(block, 0x5a, sizeof(block));

	assert_int_equal(pvstore_uuid_generate(uuid), 0);
	assert_int_equal(pvstore_disk_create(st, uuid, 1 << 20), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	assert_int_equal(pvstore_disk_write(d, block, 0, sizeof(block)), 0);
	/* Enough data that the OSD holds more than the tiny full ratio below allows. */
	uint8_t *big = calloc(1, 2u << 20);
	uint8_t filler[16];
	assert_int_equal(pvstore_uuid_generate(filler), 0);
	struct pvstore_disk *fd;
	assert_int_equal(pvstore_disk_create(st, filler, 2u << 20), 0);
	assert_int_equal(pvstore_disk_open(st, filler, &fd), 0);
	assert_int_equal(pvstore_disk_write(fd, big, 0, 2u << 20), 0);
	pvstore_disk_close(fd);
	free(big);
	/* a disk for the guest, made while there is room */
	assert_int_equal(pvstore_uuid_generate(vm_uuid), 0);
	assert_int_equal(pvstore_disk_create(st, vm_uuid, 1 << 20), 0);
	pvstore_uuid_format(vm_uuid, u);
	snprintf(spec, sizeof(spec), "rados:pvha/%s", u);

	assert_int_equal(ceph_cli("osd set-nearfull-ratio 0.0001", NULL, 0), 0);
	assert_int_equal(ceph_cli("osd set-backfillfull-ratio 0.0001", NULL, 0), 0);
	assert_int_equal(ceph_cli("osd set-full-ratio 0.0001", NULL, 0), 0);
	assert_true(wait_full());

	/* Health says full before the OSD map that flags it has reached every
	 * OSD and this client: a write may still land in that moment. Retry
	 * (the data does not matter) until the flag is everywhere. */
	int r = 0;
	for (int i = 0; i < 100 && r == 0; i++) {
		r = pvstore_disk_write(d, block, 4096, sizeof(block));
		if (r == 0)
			usleep(100 * 1000);
	}
	assert_int_equal(r, -ENOSPC);
	if (!strstr(pvstore_errmsg(), "an OSD is full"))
		fail_msg("message: %s", pvstore_errmsg());
	/* What was written before is still there to read. */
	uint8_t back[4096];
	assert_int_equal(pvstore_disk_read(d, back, 0, sizeof(back)), 0);
	assert_memory_equal(back, block, sizeof(block));
	pvstore_disk_close(d);

	struct proc p;
	char *argv[] = { (char *)th_build("bin/pvha-vmm"), "--image", (char *)th_build("guests/counter.elf"),
			 "--mem", "16M", "--disk", spec, "--ceph-conf", fx.conf, "--ceph-timeout", "3",
			 "--cmdline", "interval=0 count=3", NULL };
	assert_int_equal(th_run(&p, 120, argv), 1);
	assert_contains(p.out_path, "counter: disk");
	assert_contains(p.out_path, "failed");
	assert_contains(p.err_path, "guest exited with code 5");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writes_to_a_full_cluster_fail_with_enospc),
	};
	const struct ceph_suite suite = {
		.name = "test_store_full", .fx = &fx, .st = &st, .mount_timeout_s = 10, .osd_op_timeout_s = 3,
		.after = th_cleanup,
	};
	return ceph_suite_run(&suite, tests);
}
