/*
 * Live migration between two pvha-vmm processes over loopback TCP (file disks,
 * no owner lock): a guest migrated mid-run, and back and forth, finishes
 * exactly like an uninterrupted run (cpubench's checksum; the counter's console
 * and disk byte for byte); a memory-writing guest keeps every word; a target
 * that dies or cuts the link before the hand-over leaves the source running,
 * one that cuts it after the source let go leaves the source migrated and
 * never running; a source that dies leaves a target that ran nothing (exit 9);
 * bad streams and bad requests are refused with the reason.
 *
 * Synchronisation is by polling STATUS (or a console file) with deadlines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proto/migrate.pb-c.h"
#include "proto/vmstate.pb-c.h"
#include "pvproto/frame.h"
#include "pvproto/link.h"
#include "vmmctl.h"

#define VMM th_build("bin/pvha-vmm")
#define GUEST(n) th_build("guests/" n ".elf")
#define GUEST_ID "0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042"

#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

/* One STATUS (or other) exchange; NULL when the VMM does not answer. */
static Pvha__VmmReply *ctl(const char *sock, Pvha__VmmRequest__Op op)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	if (vmmctl_connect(sock, 10000, &fd))
		return NULL;
	if (vmmctl_call(fd, op, NULL, &r))
		r = NULL;
	close(fd);
	return r;
}

static Pvha__VmmReply *status(const char *sock)
{
	return ctl(sock, PVHA__VMM_REQUEST__OP__STATUS);
}

/* downtime_ms 0 = the default; 1 (with a memwriter guest) = a pre-copy that
 * goes on for up to 10000 rounds: the tests that act during pre-copy use it,
 * so that it cannot end before they act, however slow the machine. */
static Pvha__VmmReply *migrate(const char *sock, uint16_t port, uint32_t downtime_ms)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	assert_int_equal(vmmctl_connect(sock, 10000, &fd), 0);
	assert_int_equal(vmmctl_migrate_keyed(fd, "127.0.0.1", port, downtime_ms, downtime_ms == 1 ? 10000 : 0,
					      th_migrate_key, sizeof(th_migrate_key), &r), 0);
	close(fd);
	return r;
}

static void stop(const char *sock)
{
	Pvha__VmmReply *r = ctl(sock, PVHA__VMM_REQUEST__OP__STOP);
	assert_non_null(r);
	pvha__vmm_reply__free_unpacked(r, NULL);
}

/* Starts a target listening on 127.0.0.1:0 with the extra arguments
 * (NULL-terminated; the tests' key unless they name a --migrate-key-file)
 * and returns its port (from STATUS). */
static uint16_t start_target_with(struct proc *p, const char *sock, const char *const extra[])
{
	char *argv[24];
	int n = 0;
	bool keyed = false;
	argv[n++] = (char *)VMM;
	argv[n++] = "--incoming";
	argv[n++] = "127.0.0.1:0";
	argv[n++] = "--control";
	argv[n++] = (char *)sock;
	for (int i = 0; extra[i]; i++)
		keyed |= !strcmp(extra[i], "--migrate-key-file");
	if (!keyed) {
		argv[n++] = "--migrate-key-file";
		argv[n++] = (char *)th_migrate_key_file();
	}
	for (int i = 0; extra[i]; i++) {
		assert_true(n < 23);
		argv[n++] = (char *)extra[i];
	}
	argv[n] = NULL;
	th_spawn(p, argv);
	assert_true(th_wait_for_socket(sock, 30));
	Pvha__VmmReply *r = status(sock);
	assert_non_null(r);
	assert_string_equal(r->status->state, "incoming");
	uint16_t port = (uint16_t)r->status->incoming_port;
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_true(port != 0);
	return port;
}

static uint16_t start_target(struct proc *p, const char *sock, const char *disk, const char *console)
{
	const char *extra[5] = { NULL };
	int n = 0;
	if (disk) {
		extra[n++] = "--disk";
		extra[n++] = disk;
	}
	if (console) {
		extra[n++] = "--console";
		extra[n++] = console;
	}
	return start_target_with(p, sock, extra);
}

/* Polls STATUS until the migration is done or failed; returns that reply. */
static Pvha__VmmReply *wait_migration(const char *sock, int timeout_s)
{
	double end = th_now_s() + timeout_s;
	while (th_now_s() < end) {
		Pvha__VmmReply *r = status(sock);
		assert_non_null(r);
		const char *ph = r->status->migration_phase;
		if (!strcmp(ph, "done") || !strcmp(ph, "failed"))
			return r;
		pvha__vmm_reply__free_unpacked(r, NULL);
		th_pause_ms(2);
	}
	fail_msg("migration from %s did not end within %d s", sock, timeout_s);
	return NULL;
}

/* Polls STATUS until pre-copy has sent something (the migration is under way). */
static void wait_precopy_started(const char *sock, int timeout_s)
{
	double end = th_now_s() + timeout_s;
	while (th_now_s() < end) {
		Pvha__VmmReply *r = status(sock);
		assert_non_null(r);
		bool started = !strcmp(r->status->migration_phase, "precopy") && r->status->migration_bytes_sent > 0;
		bool over = strcmp(r->status->migration_phase, "precopy") != 0 &&
			    strcmp(r->status->migration_phase, "") != 0;
		if (over)
			fail_msg("the migration left pre-copy (now %s: %s) before the test could act",
				 r->status->migration_phase, r->status->migration_reason);
		pvha__vmm_reply__free_unpacked(r, NULL);
		if (started)
			return;
		th_pause_ms(1);
	}
	fail_msg("pre-copy did not start within %d s", timeout_s);
}

/* Polls STATUS until the guest's hypercall count reaches n. */
static void wait_hypercalls(const char *sock, uint64_t n, int timeout_s)
{
	double end = th_now_s() + timeout_s;
	while (th_now_s() < end) {
		Pvha__VmmReply *r = status(sock);
		assert_non_null(r);
		uint64_t hc = r->status->hypercalls;
		pvha__vmm_reply__free_unpacked(r, NULL);
		if (hc >= n)
			return;
		th_pause_ms(2);
	}
	fail_msg("%s: the guest did not reach %llu hypercalls in %d s", sock, (unsigned long long)n,
		 timeout_s);
}

/* Migrates from the VMM at src_sock to a new target; checks the hand-over
 * and that the source ends "migrated" (exit 10). */
static void hop(struct proc *src, const char *src_sock, struct proc *dst, const char *dst_sock,
		const char *disk, const char *console)
{
	uint16_t port = start_target(dst, dst_sock, disk, console);
	Pvha__VmmReply *r = migrate(src_sock, port, 0);
	assert_int_equal(r->error, 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = wait_migration(src_sock, 60);
	if (strcmp(r->status->migration_phase, "done") != 0)
		fail_msg("migration failed: %s", r->status->migration_reason);
	if (strcmp(r->status->state, "migrated") != 0)
		fail_msg("phase done but state %s (released %d, round %u, downtime %llu us)",
			 r->status->state, r->status->migration_released, r->status->migration_round,
			 (unsigned long long)r->status->migration_downtime_us);
	assert_true(r->status->migration_released);
	assert_true(r->status->migration_downtime_us > 0);
	assert_true(r->status->migration_round >= 1);
	print_message("hop: %u rounds, %llu KiB, downtime %.3f ms, total %llu ms\n",
		      r->status->migration_round,
		      (unsigned long long)(r->status->migration_bytes_sent >> 10),
		      (double)r->status->migration_downtime_us / 1000.0,
		      (unsigned long long)r->status->migration_total_ms);
	pvha__vmm_reply__free_unpacked(r, NULL);
	/* The target runs it (or has already finished it). */
	r = status(dst_sock);
	if (r) {
		assert_string_equal(r->status->migration_phase, "done");
		assert_string_not_equal(r->status->state, "incoming");
		pvha__vmm_reply__free_unpacked(r, NULL);
	}
	stop(src_sock);
	assert_int_equal(th_wait(src, 30), 10);
	assert_contains(src->err_path, "pvha-vmm: migrated: the guest runs at 127.0.0.1:");
}

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

static void cpubench_migrated_twice_mid_run_gives_the_same_checksum(void **state)
{
	(void)state;
	struct proc a, b, c;
	const char *cmd = "iters=6000000 chunk=50000";
	char *ref[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "32M",
			"--cmdline", (char *)cmd, NULL };
	assert_int_equal(th_run(&a, 120, ref), 0);
	char *want = checksum_line(a.out_path);

	const char *sa = th_tmp("cb-a.sock"), *sb = th_tmp("cb-b.sock"), *sc = th_tmp("cb-c.sock");
	const char *con = th_tmp("cb.console");
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("cpubench"), "--mem", "32M",
			"--cmdline", (char *)cmd, "--control", (char *)sa, "--console", (char *)con, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	wait_hypercalls(sa, 40, 60);
	hop(&a, sa, &b, sb, NULL, con);
	wait_hypercalls(sb, 200, 60);
	hop(&b, sb, &c, sc, NULL, con);
	assert_int_equal(th_wait(&c, 120), 0);
	char *got = checksum_line(con);
	assert_string_equal(got, want);
	free(got);
	free(want);
}

static void write_all_of(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	*out = malloc(*len + 1);
	assert_int_equal(fread(*out, 1, *len, f), *len);
	fclose(f);
}

static void counter_migrated_back_and_forth_matches_an_uninterrupted_run(void **state)
{
	(void)state;
	struct proc p[4];
	const char *cmd = "interval=2 count=600 nonce=42";
	char refspec[600], spec[600];
	snprintf(refspec, sizeof(refspec), "file:%s,size=1M", th_tmp("mref.img"));
	char *ref[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M", "--id",
			GUEST_ID, "--disk", refspec, "--cmdline", (char *)cmd, NULL };
	assert_int_equal(th_run(&p[0], 120, ref), 0);
	char *ref_out = th_slurp(p[0].out_path);

	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("mrun.img"));
	const char *con = th_tmp("counter.console");
	const char *socks[4] = { th_tmp("c0.sock"), th_tmp("c1.sock"), th_tmp("c2.sock"),
				 th_tmp("c3.sock") };
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M", "--id",
			GUEST_ID, "--disk", spec, "--cmdline", (char *)cmd, "--control", (char *)socks[0],
			"--console", (char *)con, NULL };
	th_spawn(&p[0], src);
	assert_true(th_wait_for_socket(socks[0], 30));
	const char *at[3] = { "counter: flushed seq 30\n", "counter: flushed seq 150\n",
			      "counter: flushed seq 300\n" };
	for (int i = 0; i < 3; i++) {
		assert_true(th_wait_for_text(con, at[i], 60));
		hop(&p[i], socks[i], &p[i + 1], socks[i + 1], spec, con);
	}
	assert_int_equal(th_wait(&p[3], 120), 0);

	char *out = th_slurp(con);
	assert_string_equal(out, ref_out);
	char *d1, *d2;
	size_t l1, l2;
	write_all_of(th_tmp("mref.img"), &d1, &l1);
	write_all_of(th_tmp("mrun.img"), &d2, &l2);
	assert_int_equal(l1, l2);
	assert_memory_equal(d1, d2, l1);
	free(d1);
	free(d2);
	free(out);
	free(ref_out);
}

static void memory_writing_guest_keeps_every_word(void **state)
{
	(void)state;
	struct proc a, b;
	const char *sa = th_tmp("mw-a.sock"), *sb = th_tmp("mw-b.sock");
	const char *con = th_tmp("mw.console");
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "64M",
			"--cmdline", "mib=24 passes=80 report=10", "--control", (char *)sa, "--console",
			(char *)con, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	assert_true(th_wait_for_text(con, "memwriter: pass 10 ok\n", 60));
	hop(&a, sa, &b, sb, NULL, con);
	assert_int_equal(th_wait(&b, 120), 0);
	assert_contains(con, "memwriter: done, 80 passes ok\n");
	char *out = th_slurp(con);
	assert_null(strstr(out, "BAD"));
	free(out);
}

static void target_killed_mid_precopy_leaves_the_source_running(void **state)
{
	(void)state;
	struct proc a, b;
	const char *sa = th_tmp("tk-a.sock"), *sb = th_tmp("tk-b.sock");
	const char *con = th_tmp("tk.console");
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "64M",
			"--cmdline", "mib=48 report=5", "--control", (char *)sa, "--console", (char *)con, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	uint16_t port = start_target(&b, sb, NULL, NULL);
	Pvha__VmmReply *r = migrate(sa, port, 1);
	assert_int_equal(r->error, 0);
	assert_string_equal(r->status->migration_phase, "precopy");
	pvha__vmm_reply__free_unpacked(r, NULL);
	wait_precopy_started(sa, 30);
	kill(b.pid, SIGKILL);
	th_wait(&b, 30);

	r = wait_migration(sa, 60);
	assert_string_equal(r->status->migration_phase, "failed");
	assert_false(r->status->migration_released);
	assert_true(strlen(r->status->migration_reason) > 0);
	print_message("source says: %s\n", r->status->migration_reason);
	assert_string_not_equal(r->status->state, "paused");
	uint64_t hc = r->status->hypercalls;
	pvha__vmm_reply__free_unpacked(r, NULL);
	/* It keeps running, and can be asked again (and refused cleanly). */
	wait_hypercalls(sa, hc + 20, 30);
	r = migrate(sa, port, 0);
	assert_int_equal(r->error, 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = wait_migration(sa, 60);
	assert_string_equal(r->status->migration_phase, "failed");
	assert_non_null(strstr(r->status->migration_reason, "connecting to 127.0.0.1:"));
	pvha__vmm_reply__free_unpacked(r, NULL);
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 5);
	char *out = th_slurp(con);
	assert_null(strstr(out, "BAD"));
	free(out);
}

static void cancel_during_precopy_keeps_the_guest_here(void **state)
{
	(void)state;
	struct proc a, b;
	const char *sa = th_tmp("cx-a.sock"), *sb = th_tmp("cx-b.sock");
	const char *con = th_tmp("cx.console");
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "64M",
			"--cmdline", "mib=48 report=5", "--control", (char *)sa, "--console", (char *)con, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	Pvha__VmmReply *r = ctl(sa, PVHA__VMM_REQUEST__OP__MIGRATE_CANCEL);
	assert_int_equal(r->error, -ESRCH);
	assert_non_null(strstr(r->message, "no migration is in progress"));
	pvha__vmm_reply__free_unpacked(r, NULL);

	uint16_t port = start_target(&b, sb, NULL, NULL);
	r = migrate(sa, port, 1);
	pvha__vmm_reply__free_unpacked(r, NULL);
	wait_precopy_started(sa, 30);
	r = ctl(sa, PVHA__VMM_REQUEST__OP__MIGRATE_CANCEL);
	assert_int_equal(r->error, 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = wait_migration(sa, 60);
	assert_string_equal(r->status->migration_phase, "failed");
	assert_string_equal(r->status->migration_reason, "cancelled: cancelled by the supervisor");
	assert_false(r->status->migration_released);
	uint64_t hc = r->status->hypercalls;
	pvha__vmm_reply__free_unpacked(r, NULL);
	wait_hypercalls(sa, hc + 20, 30);
	/* the target saw the stream cut, and ran nothing */
	assert_int_equal(th_wait(&b, 60), 9);
	assert_contains(b.err_path, "nothing ran here");
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 5);
	char *out = th_slurp(con);
	assert_null(strstr(out, "BAD"));
	free(out);
}

/* ---- a fake target, to cut the link at chosen points ------------------- */

#define MIG_V 3 /* the migration protocol's version (docs/migration.md) */

enum cut { CUT_AT_CPU_RECORD, CUT_AFTER_READY };

struct fake {
	int lfd;
	uint16_t port;
	enum cut cut;
	pthread_t thread;
	int records;
};

/* This side's MigrateAuth: a fresh nonce (returned in nonce), keyed or not. */
static void auth_out(int fd, uint8_t nonce[PVPROTO_NONCE_BYTES], bool keyed)
{
	Pvha__MigrateAuth a = PVHA__MIGRATE_AUTH__INIT;
	assert_int_equal(pvproto_random(nonce, PVPROTO_NONCE_BYTES), 0);
	a.version = MIG_V;
	a.nonce.data = nonce;
	a.nonce.len = PVPROTO_NONCE_BYTES;
	a.keyed = keyed;
	assert_int_equal(pvproto_frame_write(fd, &a.base), 0);
}

/* The other side's MigrateAuth: 0 and its nonce, or -1 (refused: its reason
 * in refused, malloc'd, when not NULL; or the link ended). */
static int auth_in(int fd, uint8_t nonce[PVPROTO_NONCE_BYTES], char **refused)
{
	ProtobufCMessage *m;
	if (pvproto_frame_read(fd, &pvha__migrate_auth__descriptor, 4096, &m) != 0) {
		if (refused)
			*refused = strdup("");
		return -1;
	}
	Pvha__MigrateAuth *a = (Pvha__MigrateAuth *)m;
	int rc = a->refuse[0] || a->nonce.len != PVPROTO_NONCE_BYTES ? -1 : 0;
	if (rc == 0)
		memcpy(nonce, a->nonce.data, PVPROTO_NONCE_BYTES);
	if (refused)
		*refused = strdup(a->refuse);
	protobuf_c_message_free_unpacked(m, NULL);
	return rc;
}

/* A test source's handshake with a target: a link, sealed when key is given;
 * NULL when the target refused (why in *refused, malloc'd). */
static struct pvproto_link *source_handshake(int fd, const uint8_t *key, size_t klen, char **refused)
{
	uint8_t mine[PVPROTO_NONCE_BYTES], theirs[PVPROTO_NONCE_BYTES];
	auth_out(fd, mine, key != NULL);
	char *why = NULL;
	if (auth_in(fd, theirs, &why) != 0) {
		*refused = why;
		return NULL;
	}
	free(why);
	struct pvproto_link *l = pvproto_link_create(fd);
	assert_non_null(l);
	if (key)
		assert_int_equal(pvproto_link_seal(l, key, klen, PVPROTO_LABEL_MIGRATE, mine, theirs, true), 0);
	*refused = NULL;
	return l;
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->lfd, NULL, NULL);
	ProtobufCMessage *m;
	uint8_t theirs[PVPROTO_NONCE_BYTES], mine[PVPROTO_NONCE_BYTES];
	if (fd < 0)
		return NULL;
	if (auth_in(fd, theirs, NULL) != 0) {
		close(fd);
		return NULL;
	}
	auth_out(fd, mine, false);
	if (pvproto_frame_read(fd, &pvha__migrate_hello__descriptor, 4096, &m) == 0)
		protobuf_c_message_free_unpacked(m, NULL);
	Pvha__MigrateMsg acc = PVHA__MIGRATE_MSG__INIT;
	acc.version = MIG_V;
	acc.kind = PVHA__MIGRATE_MSG__KIND__ACCEPT;
	pvproto_frame_write(fd, &acc.base);
	for (;;) {
		if (pvproto_frame_read(fd, &pvha__state_record__descriptor, 2u << 20, &m) != 0)
			break;
		Pvha__StateRecord *rec = (Pvha__StateRecord *)m;
		int body = rec->body_case;
		protobuf_c_message_free_unpacked(m, NULL);
		f->records++;
		if (body == PVHA__STATE_RECORD__BODY_CPU && f->cut == CUT_AT_CPU_RECORD)
			break;
		if (body == PVHA__STATE_RECORD__BODY_END) {
			/* the connection records' end (the guest has none) */
			if (pvproto_frame_read(fd, &pvha__migrate_conn__descriptor, 4096, &m) == 0)
				protobuf_c_message_free_unpacked(m, NULL);
			Pvha__MigrateMsg ready = PVHA__MIGRATE_MSG__INIT;
			ready.version = MIG_V;
			ready.kind = PVHA__MIGRATE_MSG__KIND__READY;
			pvproto_frame_write(fd, &ready.base);
			/* wait for RELEASED, then vanish without RUNNING */
			if (pvproto_frame_read(fd, &pvha__migrate_msg__descriptor, 4096, &m) == 0)
				protobuf_c_message_free_unpacked(m, NULL);
			break;
		}
	}
	close(fd);
	return NULL;
}

/* MIGRATE to a fake target: it speaks the plain link (a source still may,
 * only a real target refuses to), so no key. */
static Pvha__VmmReply *migrate_to_fake(const char *sock, uint16_t port)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	assert_int_equal(vmmctl_connect(sock, 10000, &fd), 0);
	assert_int_equal(vmmctl_migrate(fd, "127.0.0.1", port, 0, 0, &r), 0);
	close(fd);
	return r;
}

static void fake_start(struct fake *f, enum cut cut)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	memset(f, 0, sizeof(*f));
	f->cut = cut;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	getsockname(f->lfd, (struct sockaddr *)&sa, &len);
	f->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_end(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
}

static void link_cut_during_stopcopy_resumes_the_source(void **state)
{
	(void)state;
	struct proc a, c;
	struct fake f;
	char spec[600], next[64];
	const char *sa = th_tmp("cut-a.sock");
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("cut.img"));
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M", "--disk", spec,
			"--cmdline", "interval=2", "--control", (char *)sa, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	assert_true(th_wait_for_text(a.out_path, "counter: flushed seq 5\n", 30));

	fake_start(&f, CUT_AT_CPU_RECORD);
	Pvha__VmmReply *r = migrate_to_fake(sa, f.port);
	assert_int_equal(r->error, 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = wait_migration(sa, 60);
	fake_end(&f);
	assert_string_equal(r->status->migration_phase, "failed");
	assert_false(r->status->migration_released);
	print_message("source says: %s\n", r->status->migration_reason);
	/* cut while we send the final records, or while we wait for READY */
	assert_true(strstr(r->status->migration_reason, "final state") ||
		    strstr(r->status->migration_reason, "READY"));
	pvha__vmm_reply__free_unpacked(r, NULL);
	/* resumed: new records keep coming */
	snprintf(next, sizeof(next), "counter: flushed seq %d\n", th_last_flushed(a.out_path) + 5);
	assert_true(th_wait_for_text(a.out_path, next, 30));
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 5);
	char *check[] = { (char *)th_build("bin/pvha-counter-check"), "--expect-flushed", a.out_path,
			  (char *)th_tmp("cut.img"), NULL };
	assert_int_equal(th_run(&c, 30, check), 0);
}

static void link_cut_after_the_release_leaves_the_source_migrated(void **state)
{
	(void)state;
	struct proc a;
	struct fake f;
	const char *sa = th_tmp("rel-a.sock");
	char spec[600];
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("rel.img"));
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "16M", "--disk", spec,
			"--cmdline", "interval=2", "--control", (char *)sa, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	assert_true(th_wait_for_text(a.out_path, "counter: flushed seq 5\n", 30));

	fake_start(&f, CUT_AFTER_READY);
	Pvha__VmmReply *r = migrate_to_fake(sa, f.port);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = wait_migration(sa, 60);
	fake_end(&f);
	assert_string_equal(r->status->migration_phase, "failed");
	assert_true(r->status->migration_released);
	assert_string_equal(r->status->state, "migrated");
	print_message("source says: %s\n", r->status->migration_reason);
	pvha__vmm_reply__free_unpacked(r, NULL);
	/* It never runs the guest again: no record after this point, and the
	 * requests that would run it are refused. */
	char *before = th_slurp(a.out_path);
	Pvha__VmmReply *q = ctl(sa, PVHA__VMM_REQUEST__OP__RESUME);
	assert_int_equal(q->error, -EBUSY);
	pvha__vmm_reply__free_unpacked(q, NULL);
	q = ctl(sa, PVHA__VMM_REQUEST__OP__STATUS);
	uint64_t hc = q->status->hypercalls;
	pvha__vmm_reply__free_unpacked(q, NULL);
	/* Not synchronisation: a window in which a guest wrongly run would
	 * make hypercalls (the counter makes one every 2 ms). */
	th_pause_ms(100);
	q = ctl(sa, PVHA__VMM_REQUEST__OP__STATUS);
	assert_int_equal(q->status->hypercalls, hc);
	pvha__vmm_reply__free_unpacked(q, NULL);
	char *after = th_slurp(a.out_path);
	assert_string_equal(before, after);
	free(before);
	free(after);
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 10);
	assert_contains(a.err_path, "pvha-vmm: migrated: owner lock released to 127.0.0.1:");
}

static void source_killed_mid_migration_leaves_a_target_that_ran_nothing(void **state)
{
	(void)state;
	struct proc a, b;
	const char *sa = th_tmp("sk-a.sock"), *sb = th_tmp("sk-b.sock");
	const char *con = th_tmp("sk-b.console");
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "64M",
			"--cmdline", "mib=48", "--control", (char *)sa, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	uint16_t port = start_target(&b, sb, NULL, con);
	Pvha__VmmReply *r = migrate(sa, port, 1);
	pvha__vmm_reply__free_unpacked(r, NULL);
	wait_precopy_started(sa, 30);
	kill(a.pid, SIGKILL);
	th_wait(&a, 30);
	assert_int_equal(th_wait(&b, 60), 9);
	assert_contains(b.err_path, "pvha-vmm: migration failed: ");
	assert_contains(b.err_path, "nothing ran here");
	char *out = th_slurp(con);
	assert_string_equal(out, "");
	free(out);
}

/* Sends raw bytes to a fresh target and returns what it answered (malloc'd
 * reason of a REFUSE or FAIL, or "" for none); the target's exit is checked
 * by the caller. */
static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* handshake: do the handshake with the tests' key first, then send hello
 * sealed (or, hello NULL, the raw bytes); else the bytes are the first thing
 * the target reads. */
static char *feed(uint16_t port, bool handshake, const void *bytes, size_t len, const ProtobufCMessage *hello,
		  const ProtobufCMessage *then)
{
	int fd = connect_to(port);
	ProtobufCMessage *m;
	char *reason = strdup("");
	struct pvproto_link *l = pvproto_link_create(fd);
	if (handshake) {
		char *refused = NULL;
		pvproto_link_destroy(l);
		l = source_handshake(fd, th_migrate_key, sizeof(th_migrate_key), &refused);
		assert_non_null(l);
	}
	if (hello)
		assert_int_equal(pvproto_link_write(l, hello), 0);
	else if (len)
		assert_int_equal(pvproto_write_all(fd, bytes, len), 0);
	len += hello != NULL;
	for (int i = 0; len && i < 2; i++) {
		if (pvproto_link_read(l, &pvha__migrate_msg__descriptor, 4096, &m) != 0)
			break;
		Pvha__MigrateMsg *msg = (Pvha__MigrateMsg *)m;
		bool accept = msg->kind == PVHA__MIGRATE_MSG__KIND__ACCEPT;
		if (!accept) {
			free(reason);
			reason = strdup(msg->reason);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (!accept || !then)
			break;
		assert_int_equal(pvproto_link_write(l, then), 0);
		then = NULL;
	}
	pvproto_link_destroy(l);
	close(fd);
	return reason;
}

static size_t pack_framed(const ProtobufCMessage *m, uint8_t *buf)
{
	size_t n = protobuf_c_message_pack(m, buf + 4);
	buf[0] = (uint8_t)n;
	buf[1] = (uint8_t)(n >> 8);
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 24);
	return n + 4;
}

static void bad_streams_to_incoming_are_refused(void **state)
{
	(void)state;
	uint8_t id[16] = { 0x0d, 0x1f, 0x7a, 0x5e, 0x55, 0xaa, 0x4b, 0x8e,
			   0x9d, 0x1e, 0x2b, 0x7c, 0x3a, 0x9e, 0x00, 0x42 };
	uint8_t buf[4096];
	char spec[600];
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp("bad.img"));
	struct {
		const char *name;
		const char *answer; /* in the REFUSE/FAIL reason ("" none) */
		const char *exit_why;
	} cases[] = {
		{ "garbage", "", "reading the source's handshake: a truncated or undecodable message" },
		{ "closed", "", "reading the source's handshake: the other side closed the connection" },
		{ "garbage-hello", "", "reading the source's hello: a message that failed authentication" },
		{ "version", "migration protocol version 7 is not supported",
		  "migration protocol version 7 is not supported" },
		{ "other-guest", "the source sends guest 0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e00ff",
		  "but this VMM was started for guest 0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042" },
		{ "disk-size", "the guest's disk is 2097152 bytes, --disk here is 1048576",
		  "the guest's disk is 2097152 bytes" },
		{ "mem-size", "guest RAM of 12345 bytes", "guest RAM of 12345 bytes" },
		{ "bad-state", "the state stream: state version 2 is not supported",
		  "the state stream: state version 2 is not supported" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct proc t;
		const char *sock = th_tmp("bad.sock");
		char *argv[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--control", (char *)sock,
				 "--disk", spec, "--id", GUEST_ID, "--migrate-key-file", (char *)th_migrate_key_file(), NULL };
		th_spawn(&t, argv);
		assert_true(th_wait_for_socket(sock, 30));
		Pvha__VmmReply *r = status(sock);
		uint16_t port = (uint16_t)r->status->incoming_port;
		pvha__vmm_reply__free_unpacked(r, NULL);

		Pvha__MigrateHello h = PVHA__MIGRATE_HELLO__INIT;
		h.version = MIG_V;
		h.guest_id.data = id;
		h.guest_id.len = 16;
		h.mem_size = 16u << 20;
		h.disk_size = 1u << 20;
		const char *n = cases[i].name;
		size_t len = 0;
		const ProtobufCMessage *then = NULL;
		uint8_t junk[64] = { 60 - PVPROTO_TAG_BYTES, 0, 0, 0 }; /* a whole frame, sealed or not */
		Pvha__StateRecord rec = PVHA__STATE_RECORD__INIT;
		Pvha__StateHeader sh = PVHA__STATE_HEADER__INIT;
		uint8_t other[16];
		if (!strncmp(n, "garbage", 7)) {
			memset(junk + 4, 0xff, sizeof(junk) - 4);
			memcpy(buf, junk, sizeof(junk));
			len = sizeof(junk);
		} else if (!strcmp(n, "closed")) {
			len = 0;
		} else {
			if (!strcmp(n, "version"))
				h.version = 7;
			if (!strcmp(n, "other-guest")) {
				memcpy(other, id, 16);
				other[15] = 0xff;
				h.guest_id.data = other;
			}
			if (!strcmp(n, "disk-size"))
				h.disk_size = 2u << 20;
			if (!strcmp(n, "mem-size"))
				h.mem_size = 12345;
			if (!strcmp(n, "bad-state")) {
				/* a state header of an unknown version */
				sh.version = 2;
				sh.mem_size = 16u << 20;
				sh.page_size = 4096;
				sh.guest_id.data = id;
				sh.guest_id.len = 16;
				rec.body_case = PVHA__STATE_RECORD__BODY_HEADER;
				rec.header = &sh;
				then = &rec.base;
			}
		}
		bool sealed = strcmp(n, "garbage") && strcmp(n, "closed");
		char *answer = feed(port, sealed, buf, len, sealed && strcmp(n, "garbage-hello") ? &h.base : NULL,
				    then);
		if (cases[i].answer[0] && !strstr(answer, cases[i].answer))
			fail_msg("%s: the target answered \"%s\", want \"%s\"", n, answer, cases[i].answer);
		free(answer);
		assert_int_equal(th_wait(&t, 30), 9);
		assert_contains(t.err_path, "pvha-vmm: migration failed: ");
		assert_contains(t.err_path, cases[i].exit_why);
		assert_contains(t.err_path, "nothing ran here");
	}
}

static void bad_incoming_usage_and_requests_are_refused(void **state)
{
	(void)state;
	struct proc p;
	char *cmdline[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--cmdline", "x", NULL };
	assert_int_equal(th_run(&p, 30, cmdline), 2);
	assert_contains(p.err_path, "--cmdline comes from the migration stream with --incoming");
	char *both[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--image", (char *)GUEST("hello"), NULL };
	assert_int_equal(th_run(&p, 30, both), 2);
	char *spec[] = { (char *)VMM, "--incoming", "nonsense", "--migrate-key-file", (char *)th_migrate_key_file(), NULL };
	assert_int_equal(th_run(&p, 30, spec), 2);
	assert_contains(p.err_path, "pvha-vmm: --incoming nonsense: want HOST:PORT");
	char *port[] = { (char *)VMM, "--incoming", "127.0.0.1:99999", "--migrate-key-file", (char *)th_migrate_key_file(),
			 NULL };
	assert_int_equal(th_run(&p, 30, port), 2);
	assert_contains(p.err_path, "port '99999' is not 0..65535");
	char *lonely[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--incoming-timeout", "1",
			   "--migrate-key-file", (char *)th_migrate_key_file(), NULL };
	assert_int_equal(th_run(&p, 30, lonely), 9);
	assert_contains(p.err_path, "no source connected within 1 s; nothing ran here");

	/* An incoming VMM stopped before anything arrived ran nothing. */
	struct proc t;
	const char *st = th_tmp("inc-stop.sock");
	start_target(&t, st, NULL, NULL);
	Pvha__VmmReply *r = ctl(st, PVHA__VMM_REQUEST__OP__PAUSE);
	assert_int_equal(r->error, -EBUSY);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = ctl(st, PVHA__VMM_REQUEST__OP__STOP);
	assert_string_equal(r->status->state, "stopped");
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(th_wait(&t, 30), 5);
	assert_contains(t.err_path, "before the incoming guest arrived; nothing ran here");

	/* MIGRATE requests a running VMM refuses. */
	struct proc a;
	const char *sa = th_tmp("req.sock");
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "16M",
			"--cmdline", "mib=4", "--control", (char *)sa, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 30));
	int fd;
	assert_int_equal(vmmctl_connect(sa, 10000, &fd), 0);
	assert_int_equal(vmmctl_migrate(fd, "", 1234, 0, 0, &r), 0);
	assert_int_equal(r->error, -EINVAL);
	assert_non_null(strstr(r->message, "needs the target's host and port"));
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__PAUSE, NULL, &r), 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(vmmctl_migrate(fd, "127.0.0.1", 1234, 0, 0, &r), 0);
	assert_int_equal(r->error, -EBUSY);
	assert_non_null(strstr(r->message, "paused"));
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 5);
}

/* ---- the authenticated link (docs/migration.md, docs/security.md) ------- */

/* Writes a key file (owner-only) of n bytes, each seed + i. */
static const char *key_file(const char *name, uint8_t seed, uint8_t *key, size_t n)
{
	const char *path = th_tmp(name);
	for (size_t i = 0; i < n; i++)
		key[i] = (uint8_t)(seed + i);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(key, 1, n, f), n);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	return path;
}

/* Starts a target for GUEST_ID with --mem 16M, keyed with keyf (NULL: the
 * tests' key), and up to two more arguments; returns its port. */
static uint16_t start_keyed_target(struct proc *p, const char *sock, const char *keyf,
				   const char *extra1, const char *extra2)
{
	const char *extra[9] = { "--id", GUEST_ID, "--mem", "16M" };
	int n = 4;
	if (keyf) {
		extra[n++] = "--migrate-key-file";
		extra[n++] = keyf;
	}
	extra[n++] = extra1;
	extra[n] = extra1 ? extra2 : NULL;
	return start_target_with(p, sock, extra);
}

static void start_memwriter(struct proc *a, const char *sock)
{
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("memwriter"), "--mem", "16M",
			"--cmdline", "mib=4", "--id", GUEST_ID, "--control", (char *)sock, NULL };
	th_spawn(a, src);
	assert_true(th_wait_for_socket(sock, 30));
}

/* MIGRATE with a key (NULL: none); waits for the end; returns the reason
 * when it failed (malloc'd), NULL when it was done. */
static char *migrate_keyed(const char *sock, uint16_t port, const uint8_t *key, size_t klen)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	assert_int_equal(vmmctl_connect(sock, 10000, &fd), 0);
	assert_int_equal(vmmctl_migrate_keyed(fd, "127.0.0.1", port, 0, 0, key, klen, &r), 0);
	assert_int_equal(r->error, 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	r = wait_migration(sock, 60);
	char *why = strcmp(r->status->migration_phase, "done") ? strdup(r->status->migration_reason) : NULL;
	pvha__vmm_reply__free_unpacked(r, NULL);
	return why;
}

static void assert_still_running(const char *sock)
{
	Pvha__VmmReply *r = status(sock);
	assert_non_null(r);
	if (strcmp(r->status->state, "running") && strcmp(r->status->state, "sleeping"))
		fail_msg("the source is %s, not running", r->status->state);
	assert_false(r->status->migration_released);
	pvha__vmm_reply__free_unpacked(r, NULL);
}

static void wrong_or_missing_key_is_refused_and_the_right_one_migrates(void **state)
{
	(void)state;
	uint8_t good[32], bad[32];
	const char *kf = key_file("mig.key", 7, good, sizeof(good));
	key_file("other.key", 99, bad, sizeof(bad));
	struct proc a, t;
	const char *sa = th_tmp("key-a.sock"), *st = th_tmp("key-t.sock");
	start_memwriter(&a, sa);

	/* another key: the target cannot verify the hello, the source cannot
	 * verify the answer; nothing is built, the guest runs on at the source */
	uint16_t port = start_keyed_target(&t, st, kf, NULL, NULL);
	char *why = migrate_keyed(sa, port, bad, sizeof(bad));
	assert_non_null(why);
	if (!strstr(why, "failed authentication"))
		fail_msg("wrong key: the source says \"%s\"", why);
	free(why);
	assert_int_equal(th_wait(&t, 30), 9);
	assert_contains(t.err_path, "reading the source's hello: a message that failed authentication");
	assert_still_running(sa);

	/* no key at all: a keyed target refuses in the handshake */
	port = start_keyed_target(&t, st, kf, NULL, NULL);
	why = migrate_keyed(sa, port, NULL, 0);
	assert_non_null(why);
	if (!strstr(why, "the target refused the migration: this target takes only an authenticated migration"))
		fail_msg("no key: the source says \"%s\"", why);
	free(why);
	assert_int_equal(th_wait(&t, 30), 9);
	assert_contains(t.err_path, "takes only an authenticated migration");
	assert_still_running(sa);

	/* a target without a key: refused at start, nothing listens */
	struct proc nk;
	char *no_key[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--id", GUEST_ID, NULL };
	assert_int_equal(th_run(&nk, 30, no_key), 2);
	assert_contains(nk.err_path, "--incoming needs --migrate-key-file: an unauthenticated migration is refused");
	assert_still_running(sa);

	/* the right key: the guest moves */
	port = start_keyed_target(&t, st, kf, NULL, NULL);
	why = migrate_keyed(sa, port, good, sizeof(good));
	if (why)
		fail_msg("the keyed migration failed: %s", why);
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 10);
	Pvha__VmmReply *r = status(st);
	assert_non_null(r);
	assert_string_equal(r->status->migration_phase, "done");
	assert_string_equal(r->status->state, "running");
	pvha__vmm_reply__free_unpacked(r, NULL);
	stop(st);
	assert_int_equal(th_wait(&t, 30), 5);

	/* a key file others may read, or of a bad length, is refused at start */
	struct proc p;
	assert_int_equal(chmod(kf, 0644), 0);
	char *open_key[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--migrate-key-file", (char *)kf, NULL };
	assert_int_equal(th_run(&p, 30, open_key), 2);
	assert_contains(p.err_path, "readable by others than its owner");
	uint8_t shortk[8];
	const char *sk = key_file("short.key", 1, shortk, sizeof(shortk));
	char *short_key[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--migrate-key-file", (char *)sk, NULL };
	assert_int_equal(th_run(&p, 30, short_key), 2);
	assert_contains(p.err_path, "holds 8 bytes; a key is 16 to 256 bytes");
}

/* A man in the middle that flips one bit of the source's stream at byte
 * flip_at and otherwise forwards both ways. */
struct mitm {
	int lfd;
	uint16_t port, to;
	size_t flip_at;
	pthread_t thread;
	bool flipped;
};

static void *mitm_main(void *arg)
{
	struct mitm *x = arg;
	int a = accept(x->lfd, NULL, NULL);
	if (a < 0)
		return NULL;
	int b = connect_to(x->to);
	size_t seen = 0;
	uint8_t buf[65536];
	for (;;) {
		struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
		if (poll(p, 2, 60000) <= 0)
			break;
		if (p[0].revents) {
			ssize_t n = read(a, buf, sizeof(buf));
			if (n <= 0)
				break;
			if (!x->flipped && seen + (size_t)n > x->flip_at) {
				buf[x->flip_at - seen] ^= 0x01;
				x->flipped = true;
			}
			seen += (size_t)n;
			if (pvproto_write_all(b, buf, (size_t)n))
				break;
		}
		if (p[1].revents) {
			ssize_t n = read(b, buf, sizeof(buf));
			if (n <= 0 || pvproto_write_all(a, buf, (size_t)n))
				break;
		}
	}
	close(a);
	close(b);
	return NULL;
}

static void flipped_bit_in_the_stream_fails_the_migration(void **state)
{
	(void)state;
	uint8_t key[32];
	const char *kf = key_file("flip.key", 3, key, sizeof(key));
	struct proc a, t;
	const char *sa = th_tmp("flip-a.sock"), *st = th_tmp("flip-t.sock");
	start_memwriter(&a, sa);
	struct mitm x = { .flip_at = 300000 }; /* inside the first pre-copy round's pages */
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	x.to = start_keyed_target(&t, st, kf, NULL, NULL);
	x.lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(x.lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(x.lfd, 1), 0);
	getsockname(x.lfd, (struct sockaddr *)&sin, &len);
	x.port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&x.thread, NULL, mitm_main, &x), 0);

	char *why = migrate_keyed(sa, x.port, key, sizeof(key));
	pthread_join(x.thread, NULL);
	close(x.lfd);
	assert_true(x.flipped);
	assert_non_null(why);
	if (!strstr(why, "failed authentication"))
		fail_msg("flipped bit: the source says \"%s\"", why);
	free(why);
	assert_int_equal(th_wait(&t, 30), 9);
	assert_contains(t.err_path, "the state stream: state record");
	assert_contains(t.err_path, "failed authentication (altered on the way, or sent with another key)");
	assert_still_running(sa);
	stop(sa);
	assert_int_equal(th_wait(&a, 30), 5);
}

/* A source that holds the key but offers 2 MiB in its hello, then a state
 * header of 4 GiB; and one whose hello differs from the target's --mem. */
static void oversized_state_or_ram_is_refused_before_building(void **state)
{
	(void)state;
	uint8_t key[32];
	const char *kf = key_file("big.key", 5, key, sizeof(key));
	uint8_t id[16] = { 0x0d, 0x1f, 0x7a, 0x5e, 0x55, 0xaa, 0x4b, 0x8e,
			   0x9d, 0x1e, 0x2b, 0x7c, 0x3a, 0x9e, 0x00, 0x42 };
	const char *st = th_tmp("big-t.sock");
	for (int round = 0; round < 2; round++) {
		struct proc t;
		/* round 0: the target was told nothing of the RAM; round 1: --mem 16M */
		const char *no_mem[] = { "--id", GUEST_ID, "--migrate-key-file", kf, NULL };
		uint16_t port = round == 0 ? start_target_with(&t, st, no_mem)
					   : start_keyed_target(&t, st, kf, NULL, NULL);
		int fd = connect_to(port);
		char *refused = NULL;
		struct pvproto_link *l = source_handshake(fd, key, sizeof(key), &refused);
		assert_non_null(l);
		Pvha__MigrateHello h = PVHA__MIGRATE_HELLO__INIT;
		h.version = MIG_V;
		h.guest_id.data = id;
		h.guest_id.len = 16;
		h.mem_size = round == 0 ? 2u << 20 : 32u << 20;
		assert_int_equal(pvproto_link_write(l, &h.base), 0);
		ProtobufCMessage *m;
		assert_int_equal(pvproto_link_read(l, &pvha__migrate_msg__descriptor, 4096, &m), 0);
		Pvha__MigrateMsg *msg = (Pvha__MigrateMsg *)m;
		if (round == 1) {
			assert_int_equal(msg->kind, PVHA__MIGRATE_MSG__KIND__REFUSE);
			assert_non_null(strstr(msg->reason, "the source offers 32 MiB of guest RAM, this VMM was told 16 MiB"));
		} else {
			assert_int_equal(msg->kind, PVHA__MIGRATE_MSG__KIND__ACCEPT);
			Pvha__StateRecord rec = PVHA__STATE_RECORD__INIT;
			Pvha__StateHeader sh = PVHA__STATE_HEADER__INIT;
			sh.version = 1;
			sh.mem_size = 4ull << 30;
			sh.page_size = 4096;
			sh.guest_id.data = id;
			sh.guest_id.len = 16;
			rec.body_case = PVHA__STATE_RECORD__BODY_HEADER;
			rec.header = &sh;
			assert_int_equal(pvproto_link_write(l, &rec.base), 0);
			ProtobufCMessage *f;
			assert_int_equal(pvproto_link_read(l, &pvha__migrate_msg__descriptor, 4096, &f), 0);
			assert_int_equal(((Pvha__MigrateMsg *)f)->kind, PVHA__MIGRATE_MSG__KIND__FAIL);
			assert_non_null(strstr(((Pvha__MigrateMsg *)f)->reason,
					       "the state header says 4294967296 bytes of RAM, 2097152 were expected"));
			protobuf_c_message_free_unpacked(f, NULL);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		pvproto_link_destroy(l);
		close(fd);
		assert_int_equal(th_wait(&t, 30), 9);
		assert_contains(t.err_path, "nothing ran here");
	}
}

/* A source that sends its handshake one byte every 200 ms: each read makes
 * progress, so only the deadline from accept ends it. */
static void slow_source_is_cut_off_at_the_deadline(void **state)
{
	(void)state;
	struct proc t;
	const char *st = th_tmp("slow-t.sock");
	uint16_t port = start_keyed_target(&t, st, NULL, "--incoming-deadline", "2");
	int fd = connect_to(port);
	uint8_t frame[64];
	Pvha__MigrateAuth a = PVHA__MIGRATE_AUTH__INIT;
	uint8_t nonce[PVPROTO_NONCE_BYTES] = { 0 };
	a.version = MIG_V;
	a.nonce.data = nonce;
	a.nonce.len = sizeof(nonce);
	size_t len = pack_framed(&a.base, frame);
	double t0 = th_now_s();
	bool cut = false;
	/* all but the last byte, one every 200 ms (about 8 s, each within the
	 * link's 10 s stall limit); then wait for the target to hang up */
	for (size_t i = 0; i + 1 < len && !cut; i++) {
		cut = send(fd, &frame[i], 1, MSG_NOSIGNAL) != 1;
		th_pause_ms(200);
	}
	struct timeval tv = { .tv_sec = 60 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char c;
	if (!cut)
		cut = recv(fd, &c, 1, 0) <= 0 && th_now_s() - t0 < 60;
	close(fd);
	assert_true(cut);
	assert_int_equal(th_wait(&t, 30), 9);
	assert_contains(t.err_path, "did not complete the migration within 2 s of connecting");
	assert_contains(t.err_path, "nothing ran here");
	assert_true(th_now_s() - t0 < 30);
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
		cmocka_unit_test(cpubench_migrated_twice_mid_run_gives_the_same_checksum),
		cmocka_unit_test(counter_migrated_back_and_forth_matches_an_uninterrupted_run),
		cmocka_unit_test(memory_writing_guest_keeps_every_word),
		cmocka_unit_test(target_killed_mid_precopy_leaves_the_source_running),
		cmocka_unit_test(cancel_during_precopy_keeps_the_guest_here),
		cmocka_unit_test(link_cut_during_stopcopy_resumes_the_source),
		cmocka_unit_test(link_cut_after_the_release_leaves_the_source_migrated),
		cmocka_unit_test(source_killed_mid_migration_leaves_a_target_that_ran_nothing),
		cmocka_unit_test(bad_streams_to_incoming_are_refused),
		cmocka_unit_test(bad_incoming_usage_and_requests_are_refused),
		cmocka_unit_test(wrong_or_missing_key_is_refused_and_the_right_one_migrates),
		cmocka_unit_test(flipped_bit_in_the_stream_fails_the_migration),
		cmocka_unit_test(oversized_state_or_ram_is_refused_before_building),
		cmocka_unit_test(slow_source_is_cut_off_at_the_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
