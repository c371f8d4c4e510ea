/*
 * A dead or missing cluster gives an error, never a hang: a missing conf or
 * pool is named; with the monitor stopped (SIGSTOP: it neither answers nor
 * closes connections) connect fails within the mount timeout; with the OSD
 * or the monitor stopped, OSD ops and mon commands fail within their
 * timeouts. The daemons are continued afterwards and the cluster serves
 * again, on the same connection.
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
#include "pvstore/pvstore.h"

#define TIMEOUT_S 3
/* what a call may take beyond its timeout: librados's tick granularity */
#define SLACK_MS 2500.0

static struct ceph_fixture fx;

static void test_missing_pool_is_named(void **state)
{
	(void)state;
	struct pvstore_config cfg = {.conf_path = fx.conf, .pool = "no-such-pool"};
	struct pvstore *st = NULL;
	assert_int_equal(pvstore_connect(&cfg, &st), -ENOENT);
	assert_null(st);
	assert_non_null(strstr(pvstore_errmsg(), "no-such-pool"));
}

static void test_missing_conf_is_named(void **state)
{
	(void)state;
	struct pvstore_config cfg = {.conf_path = "/nonexistent/ceph.conf"};
	struct pvstore *st = NULL;
	int r = pvstore_connect(&cfg, &st);
	assert_true(r < 0);
	assert_null(st);
	assert_non_null(strstr(pvstore_errmsg(), "/nonexistent/ceph.conf"));
	struct pvstore_config none = {0};
	assert_int_equal(pvstore_connect(&none, &st), -EINVAL);
	struct pvstore_config badclient = {.conf_path = fx.conf, .client_name = "admin"};
	assert_int_equal(pvstore_connect(&badclient, &st), -EINVAL);
}

static void test_connect_with_monitor_stopped_fails_within_timeout(void **state)
{
	(void)state;
	struct pvstore_config cfg = {.conf_path = fx.conf, .mount_timeout_s = TIMEOUT_S};
	struct pvstore *st = NULL;

	ceph_suite_signal(&fx, "mon.a", SIGSTOP);
	double t0 = ceph_fixture_now_ms();
	int r = pvstore_connect(&cfg, &st);
	double took = ceph_fixture_now_ms() - t0;
	ceph_suite_signal(&fx, "mon.a", SIGCONT);

	print_message("connect with the mon stopped: %d (%s) after %.0f ms\n", r, pvstore_errmsg(), took);
	assert_int_equal(r, -ETIMEDOUT);
	assert_null(st);
	assert_true(took < TIMEOUT_S * 1000.0 + SLACK_MS);
	assert_non_null(strstr(pvstore_errmsg(), "no monitor"));
}

static double timed(int (*fn)(void *), void *arg, int *r)
{
	double t0 = ceph_fixture_now_ms();
	*r = fn(arg);
	return ceph_fixture_now_ms() - t0;
}

struct io_ctx {
	struct pvstore *st;
	struct pvstore_disk *d;
	uint8_t uuid[16];
	uint8_t buf[4096];
};

static int do_write(void *arg)
{
	struct io_ctx *c = arg;
	return pvstore_disk_write(c->d, c->buf, 8192, sizeof(c->buf));
}

static int do_read(void *arg)
{
	struct io_ctx *c = arg;
	return pvstore_disk_read(c->d, c->buf, 0, sizeof(c->buf));
}

static int do_guest_read(void *arg)
{
	struct io_ctx *c = arg;
	struct pvstore_guest g;
	return pvstore_guest_read(c->st, c->uuid, &g);
}

static int do_blocklist_ls(void *arg)
{
	struct io_ctx *c = arg;
	struct pvstore_blocklist_entry *bl = NULL;
	size_t n;
	int r = pvstore_blocklist_list(c->st, &bl, &n);
	free(bl);
	return r;
}

static void test_io_with_osd_or_mon_stopped_fails_within_timeout(void **state)
{
	(void)state;
	struct pvstore_config cfg = {.conf_path = fx.conf,
				     .mount_timeout_s = TIMEOUT_S,
				     .osd_op_timeout_s = TIMEOUT_S,
				     .mon_op_timeout_s = TIMEOUT_S};
	struct io_ctx c;
	struct pvstore_guest g = {.name = "timeouts", .mem_size = 16u << 20};
	int r;

	assert_int_equal(pvstore_connect(&cfg, &c.st), 0);
	assert_int_equal(pvstore_guest_create(c.st, &g), 0);
	memcpy(c.uuid, g.uuid, 16);
	assert_int_equal(pvstore_disk_create(c.st, c.uuid, 1u << 20), 0);
	assert_int_equal(pvstore_disk_open(c.st, c.uuid, &c.d), 0);
	memset(c.buf, 7, sizeof(c.buf));
	assert_int_equal(do_write(&c), 0);

	/* The OSD is stopped only briefly: one paused for longer than its PGs'
	 * read lease (about 16 s) keeps them "waiting for readable" for a
	 * while after it continues. */
	struct {
		const char *what;
		const char *daemon;
		int (*fn)(void *);
	} calls[] = {{"disk write", "osd.0", do_write},
		     {"guest read", "osd.0", do_guest_read},
		     {"blocklist ls", "mon.a", do_blocklist_ls}};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		ceph_suite_signal(&fx, calls[i].daemon, SIGSTOP);
		double took = timed(calls[i].fn, &c, &r);
		ceph_suite_signal(&fx, calls[i].daemon, SIGCONT);
		print_message("%s with %s stopped: %d after %.0f ms\n", calls[i].what, calls[i].daemon, r, took);
		if (r != -ETIMEDOUT)
			fail_msg("%s: %d (%s), want -ETIMEDOUT", calls[i].what, r, pvstore_errmsg());
		assert_true(took < TIMEOUT_S * 1000.0 + SLACK_MS);
		if (i == 0) /* the failed write is reported by the next flush */
			assert_int_equal(pvstore_disk_flush(c.d), -ETIMEDOUT);
	}

	/* the cluster serves again, on this connection too */
	double t0 = ceph_fixture_now_ms();
	do {
		r = do_write(&c);
	} while (r == -ETIMEDOUT && ceph_fixture_now_ms() - t0 < 30000);
	assert_int_equal(r, 0);
	assert_int_equal(pvstore_disk_flush(c.d), 0);
	assert_int_equal(do_read(&c), 0);
	pvstore_disk_close(c.d);
	assert_int_equal(pvstore_disk_delete(c.st, c.uuid), 0);
	assert_int_equal(pvstore_guest_delete(c.st, c.uuid, 0), 0);
	pvstore_disconnect(c.st);
}

static bool listed(struct pvstore *st, const char *addr)
{
	struct pvstore_blocklist_entry *e = NULL;
	size_t n = 0;
	bool found = false;
	if (pvstore_blocklist_list(st, &e, &n) != 0)
		return false;
	for (size_t i = 0; i < n; i++)
		found |= strstr(e[i].addr, addr) != NULL;
	free(e);
	return found;
}

/* A fence the monitor did not confirm in time must not land later (after
 * the partition that justified it healed): it is withdrawn. */
static void test_fence_not_confirmed_is_withdrawn(void **state)
{
	(void)state;
	const char *addr = "10.250.0.9";
	struct pvstore_config cfg = {.conf_path = fx.conf,
				     .mount_timeout_s = TIMEOUT_S,
				     .osd_op_timeout_s = TIMEOUT_S,
				     .mon_op_timeout_s = TIMEOUT_S};
	struct pvstore *st;
	assert_int_equal(pvstore_connect(&cfg, &st), 0);
	assert_false(listed(st, addr));

	ceph_suite_signal(&fx, "mon.a", SIGSTOP);
	int r = pvstore_fence(st, addr, 600);
	ceph_suite_signal(&fx, "mon.a", SIGCONT);
	print_message("fence with the mon stopped: %d (%s)\n", r, pvstore_errmsg());
	assert_int_equal(r, -ETIMEDOUT);
	assert_non_null(strstr(pvstore_errmsg(), "withdrawn"));

	/* whatever the monitor does with the queued requests now, the address
	 * ends up unfenced: watch it for a while (an observation window) */
	double t0 = ceph_fixture_now_ms();
	bool seen = false;
	while (ceph_fixture_now_ms() - t0 < 10000) {
		seen |= listed(st, addr);
		usleep(200000);
	}
	print_message("%s listed meanwhile: %s\n", addr, seen ? "yes" : "no");
	assert_false(listed(st, addr));
	pvstore_disconnect(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_pool_is_named),
		cmocka_unit_test(test_missing_conf_is_named),
		cmocka_unit_test(test_connect_with_monitor_stopped_fails_within_timeout),
		cmocka_unit_test(test_io_with_osd_or_mon_stopped_fails_within_timeout),
		cmocka_unit_test(test_fence_not_confirmed_is_withdrawn),
	};
	const struct ceph_suite suite = { .name = "test_store_timeouts", .fx = &fx };
	return ceph_suite_run(&suite, tests);
}
