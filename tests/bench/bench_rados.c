/*
 * bench_rados: libpvstore disks against raw librados on the same small Ceph,
 * in the same run, plus the time a fence takes to stop a writer.
 *
 *   4 KiB write latency (p50, p99): one synchronous write at a time, random
 *     4 KiB-aligned offsets within 4 MiB, raw rados_write vs pvstore_disk_write,
 *     in interleaved rounds so that drift hits both alike;
 *   4 MiB write throughput: whole-object writes, 8 in flight, rados_aio_write vs
 *     pvstore_disk_aio_write, interleaved rounds;
 *   fence time: a writer writes 4 KiB blocks back to back; another client calls
 *     pvstore_fence on the writer's address; from the call to the end of the
 *     writer's first rejected (-ESHUTDOWN) write. Median of 5.
 *
 * Starts its own cluster with deploy/ceph/pvha-ceph (root, Ceph packages; the
 * source tree from PVHA_SOURCE_DIR, default the one it was built from;
 * BENCH_OSDS=N for N memstore OSDs, default 1). Prints `figure NAME VALUE UNIT`.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rados/librados.h>

#include "bench_common.h"
#include "ceph_fixture.h"
#include "pvstore/pvstore.h"

#define SMALL 4096
#define BIG (4u << 20)
#define LAT_ROUNDS 4
#define LAT_PER_ROUND 500
#define TP_ROUNDS 4
#define TP_PER_ROUND 64 /* 256 MiB per round per side */
#define TP_OBJECTS 16   /* overwritten in turn: memstore keeps 64 MiB per side */
#define QD 8
#define FENCE_RUNS 5

#define GUEST_RUNS 3

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static double pct(double *v, size_t n, double p)
{
	bench_median(v, n); /* sorts */
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return v[i];
}

/* ---- 4 KiB latency ---------------------------------------------------------- */

static void lat_raw(rados_ioctx_t io, const uint8_t *buf, double *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t off = (rnd() % (BIG / SMALL)) * SMALL;
		uint64_t t0 = bench_now_ns();
		int r = rados_write(io, "bench.raw.small", (const char *)buf, SMALL, off);
		out[i] = (double)(bench_now_ns() - t0) / 1e6;
		if (r < 0) {
			fprintf(stderr, "bench_rados: raw write: %s\n", strerror(-r));
			exit(1);
		}
	}
}

static void lat_pvstore(struct pvstore_disk *d, const uint8_t *buf, double *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t off = (rnd() % (BIG / SMALL)) * SMALL;
		uint64_t t0 = bench_now_ns();
		int r = pvstore_disk_write(d, buf, off, SMALL);
		out[i] = (double)(bench_now_ns() - t0) / 1e6;
		if (r < 0) {
			fprintf(stderr, "bench_rados: pvstore write: %s\n", pvstore_errmsg());
			exit(1);
		}
	}
}

/* ---- 4 MiB throughput -------------------------------------------------------- */

/* Raw: QD whole-object aio writes in flight, refilled in submission order. */
static double tp_raw(rados_ioctx_t io, const uint8_t *buf, unsigned count)
{
	rados_completion_t c[QD];
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < count; i++) {
		unsigned slot = i % QD;
		if (i >= QD) {
			rados_aio_wait_for_complete(c[slot]);
			int r = rados_aio_get_return_value(c[slot]);
			rados_aio_release(c[slot]);
			if (r < 0) {
				fprintf(stderr, "bench_rados: raw aio write: %s\n", strerror(-r));
				exit(1);
			}
		}
		char oid[64];
		snprintf(oid, sizeof(oid), "bench.raw.big.%u", i % TP_OBJECTS);
		rados_aio_create_completion2(NULL, NULL, &c[slot]);
		rados_aio_write(io, oid, c[slot], (const char *)buf, BIG, 0);
	}
	for (unsigned i = count > QD ? count - QD : 0; i < count; i++) {
		rados_aio_wait_for_complete(c[i % QD]);
		rados_aio_release(c[i % QD]);
	}
	double s = (double)(bench_now_ns() - t0) / 1e9;
	return (double)count * BIG / (1024.0 * 1024.0) / s;
}

struct qd_gate {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned inflight;
	int err;
};

static void gate_cb(void *arg, int result)
{
	struct qd_gate *g = arg;
	pthread_mutex_lock(&g->mu);
	g->inflight--;
	if (result && !g->err)
		g->err = result;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

static double tp_pvstore(struct pvstore_disk *d, const uint8_t *buf, unsigned count)
{
	struct qd_gate g = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < count; i++) {
		pthread_mutex_lock(&g.mu);
		while (g.inflight >= QD)
			pthread_cond_wait(&g.cv, &g.mu);
		g.inflight++;
		pthread_mutex_unlock(&g.mu);
		int r = pvstore_disk_aio_write(d, buf, (uint64_t)(i % TP_OBJECTS) * BIG, BIG, gate_cb, &g);
		if (r < 0) {
			fprintf(stderr, "bench_rados: pvstore aio write: %s\n", pvstore_errmsg());
			exit(1);
		}
	}
	if (pvstore_disk_flush(d) < 0 || g.err) {
		fprintf(stderr, "bench_rados: pvstore aio writes failed: %s\n", pvstore_errmsg());
		exit(1);
	}
	double s = (double)(bench_now_ns() - t0) / 1e9;
	return (double)count * BIG / (1024.0 * 1024.0) / s;
}

/* ---- fence time ----------------------------------------------------------------- */

struct fence_writer {
	struct pvstore_disk *d;
	atomic_bool started;
	atomic_bool stop;
	uint64_t first_reject_end_ns;
};

static void *fence_writer_loop(void *arg)
{
	struct fence_writer *w = arg;
	uint8_t buf[SMALL];
	memset(buf, 0x33, sizeof(buf));
	for (uint64_t i = 0; !atomic_load(&w->stop); i++) {
		int r = pvstore_disk_write(w->d, buf, (i % 256) * SMALL, SMALL);
		atomic_store(&w->started, true);
		if (r == -ESHUTDOWN) {
			w->first_reject_end_ns = bench_now_ns();
			break;
		}
	}
	return NULL;
}

static void fence_once(const struct ceph_fixture *fx, struct pvstore *fencer, const uint8_t uuid[16],
		       double *to_reject_ms, double *call_ms)
{
	struct pvstore *wst = ceph_fixture_connect(fx, 0, 0);
	struct fence_writer w = {0};
	char addr[128];
	pthread_t t;

	if (pvstore_disk_open(wst, uuid, &w.d) < 0 || pvstore_client_addr(wst, addr, sizeof(addr)) < 0) {
		fprintf(stderr, "bench_rados: fence writer: %s\n", pvstore_errmsg());
		exit(1);
	}
	pthread_create(&t, NULL, fence_writer_loop, &w);
	while (!atomic_load(&w.started))
		usleep(100);
	usleep(50000); /* writing steadily */
	uint64_t t0 = bench_now_ns();
	int r = pvstore_fence(fencer, addr, 300);
	uint64_t t1 = bench_now_ns();
	if (r < 0) {
		fprintf(stderr, "bench_rados: fence: %s\n", pvstore_errmsg());
		exit(1);
	}
	/* the writer stops by itself at its first rejected write */
	uint64_t deadline = bench_now_ns() + 20ull * 1000000000ull;
	while (!w.first_reject_end_ns && bench_now_ns() < deadline)
		usleep(100);
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	if (!w.first_reject_end_ns) {
		fprintf(stderr, "bench_rados: the fenced writer was never rejected\n");
		exit(1);
	}
	*to_reject_ms = (double)(w.first_reject_end_ns - t0) / 1e6;
	*call_ms = (double)(t1 - t0) / 1e6;
	pvstore_blocklist_remove(fencer, addr);
	pvstore_disk_close(w.d);
	pvstore_disconnect(wst);
}

/* Runs the diskbench guest under pvha-vmm on a RADOS disk of its own; fills the
 * guest's 4 KiB write+flush p50 (ms) and 4 MiB write throughput (MiB/s). */
static int guest_disk(const struct ceph_fixture *fx, double *lat_ms, double *mib_s)
{
	uint8_t uuid[16];
	char u[PVSTORE_UUID_STR], cmd[2048], line[256];
	pvstore_uuid_generate(uuid);
	pvstore_uuid_format(uuid, u);
	snprintf(cmd, sizeof(cmd),
		 "%s --backend tcg --image %s --mem 16M --disk rados:pvha/%s,size=128M --ceph-conf %s"
		 " --cmdline 'lat_ops=300 tput_mib=256 tput_region_mib=64' 2>&1",
		 bench_path("bin/pvha-vmm"), bench_path("guests/diskbench.elf"), u, fx->conf);
	FILE *p = popen(cmd, "r");
	int got = 0;
	while (p && fgets(line, sizeof(line), p)) {
		double v;
		if (sscanf(line, "figure guest_write_4k_flush_p50_us %lf", &v) == 1)
			*lat_ms = v / 1000, got |= 1;
		else if (sscanf(line, "figure guest_write_4m_mib_s %lf", &v) == 1)
			*mib_s = v, got |= 2;
		else if (!strstr(line, "figure"))
			fprintf(stderr, "bench_rados: diskbench: %s", line);
	}
	int rc = p ? pclose(p) : -1;
	return got == 3 && rc == 0 ? 0 : -1;
}

int main(void)
{
	struct ceph_fixture fx;
	const char *skip = ceph_fixture_skip_reason();
	const char *osds_env = getenv("BENCH_OSDS");
	int osds = osds_env ? atoi(osds_env) : 1;
	if (skip) {
		fprintf(stderr, "bench_rados: cannot run: %s\n", skip);
		return 1;
	}
	if (osds < 1 || osds > 3) {
		fprintf(stderr, "bench_rados: BENCH_OSDS must be 1..3\n");
		return 2;
	}
	if (ceph_fixture_up(&fx, osds) < 0)
		return 1;

	struct pvstore *st = ceph_fixture_connect(&fx, 0, 0);
	rados_t cl;
	rados_ioctx_t io;
	if (rados_create2(&cl, "ceph", "client.admin", 0) < 0 || rados_conf_read_file(cl, fx.conf) < 0 ||
	    rados_conf_set(cl, "rados_osd_op_timeout", "10") < 0 || rados_connect(cl) < 0 ||
	    rados_ioctx_create(cl, "pvha", &io) < 0) {
		fprintf(stderr, "bench_rados: raw librados connection failed\n");
		ceph_fixture_down(&fx);
		return 1;
	}

	uint8_t uuid[16];
	struct pvstore_disk *d;
	pvstore_uuid_generate(uuid);
	if (pvstore_disk_create(st, uuid, (uint64_t)TP_OBJECTS * BIG) < 0 ||
	    pvstore_disk_open(st, uuid, &d) < 0) {
		fprintf(stderr, "bench_rados: %s\n", pvstore_errmsg());
		ceph_fixture_down(&fx);
		return 1;
	}
	uint8_t *buf = malloc(BIG);
	for (size_t i = 0; i < BIG; i++)
		buf[i] = (uint8_t)rnd();

	/* warm both paths (objects exist, connections to the OSDs are up) */
	double warm[64];
	lat_raw(io, buf, warm, 64);
	lat_pvstore(d, buf, warm, 64);

	static double lr[LAT_ROUNDS * LAT_PER_ROUND], lp[LAT_ROUNDS * LAT_PER_ROUND];
	for (int round = 0; round < LAT_ROUNDS; round++) {
		lat_raw(io, buf, lr + round * LAT_PER_ROUND, LAT_PER_ROUND);
		lat_pvstore(d, buf, lp + round * LAT_PER_ROUND, LAT_PER_ROUND);
	}
	size_t nl = LAT_ROUNDS * LAT_PER_ROUND;
	double raw_p50 = pct(lr, nl, 0.5), raw_p99 = pct(lr, nl, 0.99);
	double pv_p50 = pct(lp, nl, 0.5), pv_p99 = pct(lp, nl, 0.99);
	bench_figure("rados_raw_write_4k_p50", raw_p50, "ms");
	bench_figure("pvstore_disk_write_4k_p50", pv_p50, "ms");
	bench_figure("rados_raw_write_4k_p99", raw_p99, "ms");
	bench_figure("pvstore_disk_write_4k_p99", pv_p99, "ms");
	bench_figure("pvstore_vs_raw_write_4k_p50_ratio", pv_p50 / raw_p50, "x");

	tp_raw(io, buf, TP_OBJECTS); /* objects written once before timing */
	double tr[TP_ROUNDS], tpv[TP_ROUNDS];
	for (int round = 0; round < TP_ROUNDS; round++) {
		tr[round] = tp_raw(io, buf, TP_PER_ROUND);
		tpv[round] = tp_pvstore(d, buf, TP_PER_ROUND);
	}
	double raw_tp = bench_median(tr, TP_ROUNDS), pv_tp = bench_median(tpv, TP_ROUNDS);
	bench_figure("rados_raw_write_4m_qd8_throughput", raw_tp, "MiB/s");
	bench_figure("pvstore_disk_write_4m_qd8_throughput", pv_tp, "MiB/s");
	bench_figure("pvstore_vs_raw_write_4m_throughput_ratio", pv_tp / raw_tp, "x");

	/* The same cluster, seen from inside a guest: pvha-vmm's rados disk. */
	double gl[GUEST_RUNS], gt[GUEST_RUNS];
	for (int i = 0; i < GUEST_RUNS; i++) {
		if (guest_disk(&fx, &gl[i], &gt[i]) < 0) {
			fprintf(stderr, "bench_rados: the diskbench guest failed (is %s built?)\n",
				bench_path("bin/pvha-vmm"));
			ceph_fixture_down(&fx);
			return 1;
		}
	}
	double g_lat = bench_median(gl, GUEST_RUNS), g_tp = bench_median(gt, GUEST_RUNS);
	bench_figure("guest_write_4k_flush_p50", g_lat, "ms");
	bench_figure("guest_vs_raw_write_4k_p50_ratio", g_lat / raw_p50, "x");
	bench_figure("guest_write_4m_throughput", g_tp, "MiB/s");
	bench_figure("guest_vs_raw_write_4m_throughput_ratio", g_tp / raw_tp, "x");

	double fr[FENCE_RUNS], fc[FENCE_RUNS];
	for (int i = 0; i < FENCE_RUNS; i++)
		fence_once(&fx, st, uuid, &fr[i], &fc[i]);
	bench_figure("fence_to_first_rejected_write_p50", bench_median(fr, FENCE_RUNS), "ms");
	bench_figure("fence_call_p50", bench_median(fc, FENCE_RUNS), "ms");

	pvstore_disk_close(d);
	pvstore_disk_delete(st, uuid);
	pvstore_disconnect(st);
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	free(buf);
	ceph_fixture_down(&fx);
	return 0;
}
