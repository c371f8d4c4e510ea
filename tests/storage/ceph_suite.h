/*
 * The frame of a cmocka test program on a real Ceph (ceph_fixture.h), and
 * the checks its tests share. main() lists its tests and hands them to
 * ceph_suite_run(): the program is skipped (exit 77) where this machine
 * cannot run a cluster; otherwise a cluster comes up, the program's
 * libpvstore connection is made, the tests run as one cmocka group, and it
 * all goes down again (the fixture's reaper sees to that however the
 * program ends).
 *
 * For test programs only: the helpers fail the running test on error. Call
 * them from the thread that runs the tests.
 */
#ifndef PVHA_TEST_CEPH_SUITE_H
#define PVHA_TEST_CEPH_SUITE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <rados/librados.h>

#include "ceph_fixture.h"
#include "pvstore/pvstore.h"

/* What a test program runs on. fx and st point at the program's own
 * variables (its tests read them); ceph_suite_run fills them in. */
struct ceph_suite {
	const char *name;           /* the program, for its messages */
	struct ceph_fixture *fx;    /* the cluster: one memstore OSD */
	struct pvstore **st;        /* the tests' connection; NULL: none made */
	unsigned mount_timeout_s;   /* *st's timeouts (0: libpvstore's defaults) */
	unsigned osd_op_timeout_s;
	CMFixtureFunction setup;    /* the program's own, once *st is there; or NULL */
	CMFixtureFunction teardown; /* the program's own, before *st goes; or NULL */
	void (*after)(void);        /* once the cluster is down (th_cleanup); or NULL */
};

/* Runs tests[0..n) on a fresh cluster, as the cmocka group s->name. Returns
 * main's exit status: 77 when this machine cannot run a cluster (the reason
 * on stderr), 1 when the cluster did not come up, else cmocka's (0: all
 * passed). The cluster takes at most about 90 s to come up. */
int ceph_suite_run_tests(const struct ceph_suite *s, const struct CMUnitTest *tests, size_t n);

/* ceph_suite_run_tests over the whole array tests. */
#define ceph_suite_run(s, tests) ceph_suite_run_tests((s), (tests), sizeof(tests) / sizeof((tests)[0]))

/* Registers the guest name (32 MiB of memory, an 8 MiB disk in its record;
 * the disk itself is not made) and fills *g with its record, uuid included. */
void ceph_suite_guest(struct pvstore *st, struct pvstore_guest *g, const char *name);

/* A plain librados connection to the fixture's cluster as client.admin, and
 * (when io is not NULL) a handle on the pool "pvha": for what libpvstore
 * would refuse to do. Free with rados_ioctx_destroy and rados_shutdown. */
void ceph_suite_rados(const struct ceph_fixture *f, rados_t *cl, rados_ioctx_t *io);

/* Runs fn(a) and fn(b) in two threads let go at once (a barrier), for two
 * clients racing for one thing; returns when both are done. fn records its
 * result in its argument for the test to check: cmocka's checks belong to
 * the test's own thread. */
void ceph_suite_race(void (*fn)(void *), void *a, void *b);

/* The cookie of the owner lock on the guest's disk (malloc'd; "" when the
 * lock is free). */
char *ceph_suite_holder_cookie(struct pvstore *st, const uint8_t uuid[16]);

/* Copies the guest's RADOS disk into the local file path (for
 * pvha-counter-check). O(disk size) in memory. */
void ceph_suite_export_disk(struct pvstore *st, const uint8_t uuid[16], const char *path);

/* Sends sig to the fixture's daemon name ("mon.a", "osd.0"); for SIGSTOP,
 * returns only once every thread of it has stopped (kill returns before a
 * multi-threaded daemon is actually stopped, and an I/O slipping through
 * would make a test pass or fail by luck). */
void ceph_suite_signal(const struct ceph_fixture *f, const char *name, int sig);

#endif
