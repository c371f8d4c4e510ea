/* See ceph_suite.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ceph_suite.h"

int ceph_suite_run_tests(const struct ceph_suite *s, const struct CMUnitTest *tests, size_t n)
{
	const char *skip = ceph_fixture_skip_reason();
	if (skip) {
		fprintf(stderr, "%s: skipped: %s\n", s->name, skip);
		return 77;
	}
	if (ceph_fixture_up(s->fx, 1) < 0) {
		fprintf(stderr, "%s: the cluster did not come up\n", s->name);
		return 1;
	}
	if (s->st)
		*s->st = ceph_fixture_connect(s->fx, s->mount_timeout_s, s->osd_op_timeout_s);
	/* cmocka_run_group_tests is this call with the array's name and size */
	int rc = _cmocka_run_group_tests(s->name, tests, n, s->setup, s->teardown);
	if (s->st) {
		pvstore_disconnect(*s->st);
		*s->st = NULL;
	}
	ceph_fixture_down(s->fx);
	if (s->after)
		s->after();
	return rc;
}

void ceph_suite_guest(struct pvstore *st, struct pvstore_guest *g, const char *name)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->mem_size = 32u << 20;
	g->disk_size = 8u << 20;
	assert_int_equal(pvstore_guest_create(st, g), 0);
}

void ceph_suite_rados(const struct ceph_fixture *f, rados_t *cl, rados_ioctx_t *io)
{
	assert_int_equal(rados_create2(cl, "ceph", "client.admin", 0), 0);
	assert_int_equal(rados_conf_read_file(*cl, f->conf), 0);
	assert_int_equal(rados_connect(*cl), 0);
	if (io)
		assert_int_equal(rados_ioctx_create(*cl, "pvha", io), 0);
}

struct racer {
	void (*fn)(void *);
	void *arg;
	pthread_barrier_t *go;
};

static void *racer_run(void *p)
{
	struct racer *r = p;
	pthread_barrier_wait(r->go);
	r->fn(r->arg);
	return NULL;
}

void ceph_suite_race(void (*fn)(void *), void *a, void *b)
{
	pthread_barrier_t go;
	struct racer ra = { fn, a, &go }, rb = { fn, b, &go };
	pthread_t ta, tb;
	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	assert_int_equal(pthread_create(&ta, NULL, racer_run, &ra), 0);
	assert_int_equal(pthread_create(&tb, NULL, racer_run, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&go);
}

char *ceph_suite_holder_cookie(struct pvstore *st, const uint8_t uuid[16])
{
	struct pvstore_lock_holder h;
	int r = pvstore_lock_holder(st, uuid, &h);
	if (r == -ENOENT)
		return strdup(""); /* free: only a query that says so */
	if (r != 0)
		fail_msg("the owner lock's holder: %d (%s)", r, pvstore_errmsg());
	return strdup(h.cookie);
}

void ceph_suite_export_disk(struct pvstore *st, const uint8_t uuid[16], const char *path)
{
	struct pvstore_disk *d;
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	uint64_t size = pvstore_disk_size(d);
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	assert_int_equal(pvstore_disk_read(d, buf, 0, size), 0);
	pvstore_disk_close(d);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, size, f), size);
	fclose(f);
	free(buf);
}

/* The process's state letter from /proc/PID/stat ('T' = stopped), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

void ceph_suite_signal(const struct ceph_fixture *f, const char *name, int sig)
{
	pid_t pid = ceph_fixture_pid(f, name);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, sig), 0);
	if (sig != SIGSTOP)
		return;
	for (int i = 0; i < 2000 && proc_state(pid) != 'T'; i++)
		usleep(1000);
	assert_int_equal(proc_state(pid), 'T');
}
