/*
 * bench_migrate: live migration of a 64 MiB guest between two pvha-vmm
 * processes on this host (loopback TCP), as the source's STATUS reports it:
 *
 *   downtime  guest paused on the source -> the target's RUNNING received
 *             there (the target has the owner lock and runs the guest);
 *   total     MIGRATE received -> RUNNING received.
 *
 * Guests (memwriter, 64 MiB of RAM, a 1 MiB disk):
 *   idle      48 MiB written once, then asleep (a check every second, loads
 *             only): pre-copy moves 48 MiB, the stop-copy almost nothing;
 *   writing   rewrites 16 MiB without pause (a word every 64 bytes, about
 *             1 GB/s of dirtied pages on the software CPU).
 * Default downtime budget (10 ms). Medians of RUNS runs, file disk first, on
 * the authenticated link (a migration key on both sides, every frame sealed
 * with AES-256-GCM: names with _keyed; pvha-vmm refuses an unkeyed target,
 * so there is no plain link to compare with any more); then,
 * where this machine can run a Ceph (root, Ceph packages: see bench_rados), the
 * same on a RADOS disk with the owner lock handed over (--lock), names ending
 * in _rados. Prints `figure NAME VALUE UNIT`.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "ceph_fixture.h"
#include "harness.h"
#include "pvstore/pvstore.h"
#include "vmmctl.h"

#define RUNS 7

static struct ceph_fixture fx;
static struct pvstore *st;

static Pvha__VmmReply *ctl(const char *sock, Pvha__VmmRequest__Op op)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	if (vmmctl_connect(sock, 20000, &fd))
		return NULL;
	if (vmmctl_call(fd, op, NULL, &r))
		r = NULL;
	close(fd);
	return r;
}

static void stop_and_wait(struct proc *p, const char *sock)
{
	Pvha__VmmReply *r = ctl(sock, PVHA__VMM_REQUEST__OP__STOP);
	if (r)
		pvha__vmm_reply__free_unpacked(r, NULL);
	th_wait(p, 30);
}

struct run {
	double downtime_ms, total_ms;
	unsigned rounds;
	double mib;
	bool forced;
};

/* One migration of the memwriter guest; disk = the disk spec, lock = the
 * cookies (NULL: no lock). Returns 0 or -1 (said why on stderr). */
static int one(const char *cmdline, const char *wait_text, const char *disk, const char *id,
	       const char *cookie_a, const char *cookie_b, bool keyed, struct run *out)
{
	static int seq;
	char sa[300], sb[300], con[300], name[64], keyf[300];
	uint8_t key[32];
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	snprintf(name, sizeof(name), "k%d.key", seq);
	snprintf(keyf, sizeof(keyf), "%s", th_tmp(name));
	if (keyed) {
		FILE *f = fopen(keyf, "wb");
		if (!f || fwrite(key, 1, sizeof(key), f) != sizeof(key) || fclose(f) || chmod(keyf, 0600)) {
			fprintf(stderr, "bench_migrate: cannot write %s\n", keyf);
			return -1;
		}
	}
	snprintf(name, sizeof(name), "a%d.sock", seq);
	snprintf(sa, sizeof(sa), "%s", th_tmp(name));
	snprintf(name, sizeof(name), "b%d.sock", seq);
	snprintf(sb, sizeof(sb), "%s", th_tmp(name));
	snprintf(name, sizeof(name), "c%d.console", seq++);
	snprintf(con, sizeof(con), "%s", th_tmp(name));
	const char *conf = st ? fx.conf : "/dev/null";

	char *src[24];
	int n = 0;
	src[n++] = (char *)bench_path("bin/pvha-vmm");
	src[n++] = "--backend";
	src[n++] = "tcg";
	src[n++] = "--image";
	src[n++] = (char *)bench_path("guests/memwriter.elf");
	src[n++] = "--mem";
	src[n++] = "64M";
	src[n++] = "--cmdline";
	src[n++] = (char *)cmdline;
	src[n++] = "--disk";
	src[n++] = (char *)disk;
	src[n++] = "--control";
	src[n++] = sa;
	src[n++] = "--console";
	src[n++] = con;
	if (cookie_a) {
		src[n++] = "--id";
		src[n++] = (char *)id;
		src[n++] = "--ceph-conf";
		src[n++] = (char *)conf;
		src[n++] = "--lock";
		src[n++] = (char *)cookie_a;
	}
	src[n] = NULL;
	char *dst[24];
	n = 0;
	dst[n++] = (char *)bench_path("bin/pvha-vmm");
	dst[n++] = "--backend";
	dst[n++] = "tcg";
	dst[n++] = "--incoming";
	dst[n++] = "127.0.0.1:0";
	dst[n++] = "--disk";
	dst[n++] = (char *)disk;
	dst[n++] = "--control";
	dst[n++] = sb;
	dst[n++] = "--console";
	dst[n++] = con;
	if (keyed) {
		dst[n++] = "--migrate-key-file";
		dst[n++] = keyf;
	}
	if (cookie_b) {
		dst[n++] = "--ceph-conf";
		dst[n++] = (char *)conf;
		dst[n++] = "--lock";
		dst[n++] = (char *)cookie_b;
	}
	dst[n] = NULL;

	struct proc a, b;
	int rc = -1;
	th_spawn(&a, src);
	th_spawn(&b, dst);
	if (!th_wait_for_socket(sa, 60) || !th_wait_for_socket(sb, 60) ||
	    !th_wait_for_text(con, wait_text, 60)) {
		char *ea = th_slurp(a.err_path), *eb = th_slurp(b.err_path), *ec = th_slurp(con);
		fprintf(stderr, "bench_migrate: the VMMs did not come up\nsource: %s\ntarget: %s\nconsole: %.300s\n",
			ea, eb, ec);
		free(ea);
		free(eb);
		free(ec);
		goto out;
	}
	Pvha__VmmReply *r = ctl(sb, PVHA__VMM_REQUEST__OP__STATUS);
	if (!r)
		goto out;
	uint32_t port = r->status->incoming_port;
	pvha__vmm_reply__free_unpacked(r, NULL);
	int fd;
	if (vmmctl_connect(sa, 20000, &fd) || vmmctl_migrate_keyed(fd, "127.0.0.1", port, 0, 0, keyed ? key : NULL,
							     keyed ? sizeof(key) : 0, &r)) {
		fprintf(stderr, "bench_migrate: MIGRATE request failed\n");
		goto out;
	}
	close(fd);
	pvha__vmm_reply__free_unpacked(r, NULL);
	for (int i = 0; i < 60000; i++) {
		r = ctl(sa, PVHA__VMM_REQUEST__OP__STATUS);
		if (!r)
			goto out;
		const char *ph = r->status->migration_phase;
		if (!strcmp(ph, "done")) {
			out->downtime_ms = (double)r->status->migration_downtime_us / 1000.0;
			out->total_ms = (double)r->status->migration_total_ms;
			out->rounds = r->status->migration_round;
			out->mib = (double)r->status->migration_bytes_sent / (1 << 20);
			out->forced = r->status->migration_forced;
			rc = 0;
		} else if (!strcmp(ph, "failed")) {
			fprintf(stderr, "bench_migrate: migration failed: %s\n", r->status->migration_reason);
		}
		bool over = !strcmp(ph, "done") || !strcmp(ph, "failed");
		pvha__vmm_reply__free_unpacked(r, NULL);
		if (over)
			break;
		th_pause_ms(1);
	}
	char *text = th_slurp(con);
	if (strstr(text, "BAD")) {
		fprintf(stderr, "bench_migrate: the guest found a bad word after migration\n");
		rc = -1;
	}
	free(text);
out:
	stop_and_wait(&a, sa);
	stop_and_wait(&b, sb);
	return rc;
}

/* keyed: the link authenticated (a migration key on both sides), as label_keyed. */
static int series(const char *label, const char *cmdline, const char *wait_text, bool rados,
		  bool keyed)
{
	char keyed_label[32];
	snprintf(keyed_label, sizeof(keyed_label), "%s%s", label, keyed ? "_keyed" : "");
	label = keyed_label;
	double down[RUNS], total[RUNS];
	struct run r = { 0 };
	for (int i = 0; i < RUNS; i++) {
		char disk[600], id[PVSTORE_UUID_STR] = "";
		if (rados) {
			struct pvstore_guest g;
			memset(&g, 0, sizeof(g));
			snprintf(g.name, sizeof(g.name), "bench-%s-%d", label, i);
			g.mem_size = 64u << 20;
			g.disk_size = 1u << 20;
			if (pvstore_guest_create(st, &g)) {
				fprintf(stderr, "bench_migrate: guest create: %s\n", pvstore_errmsg());
				return -1;
			}
			pvstore_uuid_format(g.uuid, id);
			snprintf(disk, sizeof(disk), "rados:pvha/%s,size=1M", id);
		} else {
			char name[64];
			snprintf(name, sizeof(name), "%s-%d.img", label, i);
			/* made here: both VMMs creating it at once race (one sees it
			 * empty before the other has sized it) */
			const char *path = th_tmp(name);
			FILE *f = fopen(path, "w");
			if (!f || ftruncate(fileno(f), 1 << 20) != 0) {
				fprintf(stderr, "bench_migrate: cannot make %s\n", path);
				return -1;
			}
			fclose(f);
			snprintf(disk, sizeof(disk), "file:%s,size=1M", path);
		}
		if (one(cmdline, wait_text, disk, id, rados ? "bench-a" : NULL, rados ? "bench-b" : NULL, keyed,
			&r))
			return -1;
		down[i] = r.downtime_ms;
		total[i] = r.total_ms;
		fprintf(stderr, "bench_migrate: %s%s run %d: downtime %.3f ms, total %.0f ms, %u rounds, "
				"%.1f MiB%s\n",
			label, rados ? " (rados)" : "", i + 1, r.downtime_ms, r.total_ms, r.rounds, r.mib,
			r.forced ? ", stop-copy forced" : "");
	}
	char name[128];
	const char *sfx = rados ? "_rados" : "";
	snprintf(name, sizeof(name), "migrate_downtime_%s_64m%s", label, sfx);
	bench_figure(name, bench_median(down, RUNS), "ms");
	snprintf(name, sizeof(name), "migrate_downtime_%s_64m%s_max", label, sfx);
	bench_figure(name, down[RUNS - 1], "ms"); /* sorted by the median */
	snprintf(name, sizeof(name), "migrate_total_%s_64m%s", label, sfx);
	bench_figure(name, bench_median(total, RUNS), "ms");
	return 0;
}

static int all(bool rados, bool keyed)
{
	if (series("idle", "mib=48 passes=1 hold", "memwriter: done, 1 passes ok\n", rados, keyed))
		return -1;
	return series("writing", "mib=16 report=1", "memwriter: pass 3 ok\n", rados, keyed);
}

int main(void)
{
	setenv("PVHA_BUILD_DIR", getenv("BUILD_DIR") && *getenv("BUILD_DIR") ? getenv("BUILD_DIR") : "build", 1);
	if (access(bench_path("guests/memwriter.elf"), R_OK) != 0) {
		fprintf(stderr, "bench_migrate: %s missing (is %s built?)\n", bench_path("guests/memwriter.elf"),
			bench_path(""));
		return 1;
	}
	/* Every migration is authenticated (a target without a key refuses to
	 * start): the sealed link only, file disks then RADOS. */
	int rc = all(false, true) ? 1 : 0;
	const char *skip = ceph_fixture_skip_reason();
	if (skip) {
		fprintf(stderr, "bench_migrate: no RADOS figures: %s\n", skip);
	} else if (ceph_fixture_up(&fx, 1) == 0) {
		st = ceph_fixture_connect(&fx, 10, 10);
		if (all(true, true))
			rc = 1;
		pvstore_disconnect(st);
		ceph_fixture_down(&fx);
	} else {
		fprintf(stderr, "bench_migrate: no RADOS figures: the Ceph did not come up\n");
		rc = 1;
	}
	th_cleanup();
	return rc;
}
