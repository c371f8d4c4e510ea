/*
 * A real Ceph for one storage test program: deploy/ceph/pvha-ceph up in a
 * fresh temporary directory, on an address of its own in 127.0.0.0/8 (so that
 * test programs running side by side, or a developer's cluster on 127.0.0.1,
 * never share ports), and down again at the end.
 *
 * A reaper process, started before the cluster, stops the cluster and removes
 * the directory when the test program ends in any way (return, crash, kill by
 * the ctest timeout): a failed test never leaves daemons behind. Set
 * PVHA_KEEP_CEPH=1 to keep the directory (logs) for a look.
 *
 * Needs root and the Ceph packages; ceph_fixture_skip_reason() says when a
 * test program should exit 77 (ctest: skipped) instead.
 */
#ifndef PVHA_TEST_CEPH_FIXTURE_H
#define PVHA_TEST_CEPH_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "pvstore/pvstore.h"

struct ceph_fixture {
	char top[256];    /* the temporary directory */
	char dir[300];    /* the cluster directory, top/ceph */
	char conf[340];   /* dir/ceph.conf */
	char addr[32];    /* the monitor's address */
	char script[512]; /* deploy/ceph/pvha-ceph */
	int reaper_fd;    /* write end of the reaper's pipe; -1 when none */
	pid_t reaper;
};

/* NULL when this machine can run the cluster, else why not (not root, no
 * ceph-mon on PATH, no pvha-ceph script). */
const char *ceph_fixture_skip_reason(void);

/* Starts a cluster of `osds` memstore OSDs with the pool "pvha", and the
 * reaper. Prints what went wrong (and the tail of the logs) and returns -1 on
 * failure; 0 when the pool is writable. At most about 90 s. */
int ceph_fixture_up(struct ceph_fixture *f, int osds);

/* Stops the cluster and removes its directory (idempotent). */
void ceph_fixture_down(struct ceph_fixture *f);

/* PID of one daemon ("mon.a", "osd.0"), or -1. */
pid_t ceph_fixture_pid(const struct ceph_fixture *f, const char *daemon);

/* A libpvstore connection to the fixture's pool with the given timeouts
 * (0: libpvstore's defaults). Fails the test on error. */
struct pvstore *ceph_fixture_connect(const struct ceph_fixture *f, unsigned mount_timeout_s,
				     unsigned osd_op_timeout_s);

/* CLOCK_MONOTONIC in ms. */
double ceph_fixture_now_ms(void);

#endif
