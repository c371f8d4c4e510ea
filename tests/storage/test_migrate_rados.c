/*
 * Live migration of a guest whose disk is on a real Ceph, with the owner lock
 * (--lock): the counter guest migrated several times keeps its log intact
 * (pvha-counter-check, no CORRUPT, every flushed record there) and the lock
 * follows it to each target's cookie; a source that let the lock go never runs
 * the guest again; a target refuses a guest that is not its disk's; a target
 * whose link to the source dies after READY runs the guest only if the lock is
 * free for it, and otherwise exits 9 having run nothing.
 *
 * Synchronisation is by polling STATUS (or a console file) with deadlines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ceph_suite.h"
#include "harness.h"
#include "proto/migrate.pb-c.h"
#include "proto/vmstate.pb-c.h"
#include "pvproto/frame.h"
#include "pvproto/link.h"
#include "pvstore/pvstore.h"
#include "vmmctl.h"

static struct ceph_fixture fx;
static struct pvstore *st;

#define VMM th_build("bin/pvha-vmm")
#define COUNTER th_build("guests/counter.elf")

#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

struct guest {
	uint8_t uuid[16];
	char id[PVSTORE_UUID_STR];
	char spec[128];
};

static void new_guest(struct guest *g, const char *name)
{
	struct pvstore_guest s;
	memset(&s, 0, sizeof(s));
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.mem_size = 16u << 20;
	s.disk_size = 4u << 20;
	assert_int_equal(pvstore_guest_create(st, &s), 0);
	memcpy(g->uuid, s.uuid, 16);
	pvstore_uuid_format(g->uuid, g->id);
	snprintf(g->spec, sizeof(g->spec), "rados:pvha/%s,size=4M", g->id);
}

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

static uint16_t start_target(struct proc *p, const char *sock, const struct guest *g,
			     const char *cookie, const char *console)
{
	char *argv[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--control", (char *)sock,
			 "--disk", (char *)g->spec, "--ceph-conf", fx.conf, "--lock", (char *)cookie,
			 "--console", (char *)console, "--migrate-key-file", (char *)th_migrate_key_file(), NULL };
	th_spawn(p, argv);
	assert_true(th_wait_for_socket(sock, 60));
	Pvha__VmmReply *r = ctl(sock, PVHA__VMM_REQUEST__OP__STATUS);
	assert_non_null(r);
	assert_string_equal(r->status->state, "incoming");
	uint16_t port = (uint16_t)r->status->incoming_port;
	pvha__vmm_reply__free_unpacked(r, NULL);
	return port;
}

static Pvha__VmmReply *wait_migration(const char *sock, int timeout_s)
{
	double end = th_now_s() + timeout_s;
	while (th_now_s() < end) {
		Pvha__VmmReply *r = ctl(sock, PVHA__VMM_REQUEST__OP__STATUS);
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

static Pvha__VmmReply *migrate(const char *sock, uint16_t port)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	assert_int_equal(vmmctl_connect(sock, 20000, &fd), 0);
	assert_int_equal(vmmctl_migrate_keyed(fd, "127.0.0.1", port, 0, 0, th_migrate_key, sizeof(th_migrate_key), &r), 0);
	close(fd);
	return r;
}

static void wait_for_seq(const char *console, int seq)
{
	char want[64];
	snprintf(want, sizeof(want), "counter: flushed seq %d\n", seq);
	assert_true(th_wait_for_text(console, want, 60));
}

static void counter_migrated_three_times_keeps_its_log_and_the_lock_follows(void **state)
{
	(void)state;
	struct guest g;
	struct proc p[4], c;
	new_guest(&g, "mig-counter");
	const char *con = th_tmp("rc.console");
	const char *socks[4] = { th_tmp("r0.sock"), th_tmp("r1.sock"), th_tmp("r2.sock"), th_tmp("r3.sock") };
	const char *cookies[4] = { "node-a", "node-b", "node-c", "node-a" };
	char *src[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--id", g.id, "--disk",
			g.spec, "--ceph-conf", fx.conf, "--lock", (char *)cookies[0], "--cmdline",
			"interval=2", "--control", (char *)socks[0], "--console", (char *)con, NULL };
	th_spawn(&p[0], src);
	assert_true(th_wait_for_socket(socks[0], 60));
	wait_for_seq(con, 10);
	char *ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, cookies[0]);
	free(ck);

	for (int i = 0; i < 3; i++) {
		uint16_t port = start_target(&p[i + 1], socks[i + 1], &g, cookies[i + 1], con);
		/* The target takes the lock only at the hand-over. */
		ck = ceph_suite_holder_cookie(st, g.uuid);
		assert_string_equal(ck, cookies[i]);
		free(ck);
		Pvha__VmmReply *r = migrate(socks[i], port);
		assert_int_equal(r->error, 0);
		pvha__vmm_reply__free_unpacked(r, NULL);
		r = wait_migration(socks[i], 60);
		if (strcmp(r->status->migration_phase, "done") != 0)
			fail_msg("hop %d failed: %s", i + 1, r->status->migration_reason);
		assert_string_equal(r->status->state, "migrated");
		assert_true(r->status->migration_released);
		print_message("hop %d: %u rounds, %llu KiB, downtime %.3f ms (lock hand-over on RADOS "
			      "included), total %llu ms\n",
			      i + 1, r->status->migration_round,
			      (unsigned long long)(r->status->migration_bytes_sent >> 10),
			      (double)r->status->migration_downtime_us / 1000.0,
			      (unsigned long long)r->status->migration_total_ms);
		uint64_t hc = r->status->hypercalls;
		pvha__vmm_reply__free_unpacked(r, NULL);
		ck = ceph_suite_holder_cookie(st, g.uuid);
		assert_string_equal(ck, cookies[i + 1]);
		free(ck);
		/* The guest goes on at the target... */
		wait_for_seq(con, th_last_flushed(con) + 10);
		/* ...and the source, which let the lock go, never ran it again. */
		r = ctl(socks[i], PVHA__VMM_REQUEST__OP__RESUME);
		assert_int_equal(r->error, -EBUSY);
		assert_int_equal(r->status->hypercalls, hc);
		assert_string_equal(r->status->state, "migrated");
		pvha__vmm_reply__free_unpacked(r, NULL);
		r = ctl(socks[i], PVHA__VMM_REQUEST__OP__STOP);
		pvha__vmm_reply__free_unpacked(r, NULL);
		assert_int_equal(th_wait(&p[i], 30), 10);
		/* its exit did not touch the lock it no longer held */
		ck = ceph_suite_holder_cookie(st, g.uuid);
		assert_string_equal(ck, cookies[i + 1]);
		free(ck);
	}
	Pvha__VmmReply *r = ctl(socks[3], PVHA__VMM_REQUEST__OP__STOP);
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(th_wait(&p[3], 30), 5);

	char *out = th_slurp(con);
	assert_null(strstr(out, "CORRUPT"));
	assert_int_equal(th_count(out, "counter: verified"), 1); /* one boot, never a restart */
	free(out);
	const char *img = th_tmp("rc-export.img");
	ceph_suite_export_disk(st, g.uuid, img);
	char *check[] = { (char *)th_build("bin/pvha-counter-check"), "--expect-flushed", (char *)con,
			  (char *)img, NULL };
	assert_int_equal(th_run(&c, 30, check), 0);
}

static void target_refuses_a_guest_that_is_not_its_disks(void **state)
{
	(void)state;
	struct guest g1, g2;
	struct proc a, b;
	new_guest(&g1, "mig-one");
	new_guest(&g2, "mig-two");
	const char *sa = th_tmp("w-a.sock"), *sb = th_tmp("w-b.sock");
	const char *con = th_tmp("w.console");
	char *src[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--id", g1.id, "--disk",
			g1.spec, "--ceph-conf", fx.conf, "--lock", "node-a", "--cmdline", "interval=2",
			"--control", (char *)sa, "--console", (char *)con, NULL };
	th_spawn(&a, src);
	assert_true(th_wait_for_socket(sa, 60));
	wait_for_seq(con, 3);
	/* the same size of disk, but another guest's */
	uint16_t port = start_target(&b, sb, &g2, "node-b", th_tmp("w-b.console"));
	Pvha__VmmReply *r = migrate(sa, port);
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = wait_migration(sa, 60);
	assert_string_equal(r->status->migration_phase, "failed");
	assert_non_null(strstr(r->status->migration_reason, "the target refused the guest"));
	assert_non_null(strstr(r->status->migration_reason, "is the disk of guest"));
	assert_false(r->status->migration_released);
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(th_wait(&b, 30), 9);
	assert_contains(b.err_path, "nothing ran here");
	char *ck = ceph_suite_holder_cookie(st, g1.uuid);
	assert_string_equal(ck, "node-a");
	free(ck);
	ck = ceph_suite_holder_cookie(st, g2.uuid);
	assert_string_equal(ck, ""); /* the refusing target never took its lock */
	free(ck);
	wait_for_seq(con, th_last_flushed(con) + 3); /* the source runs on */
	r = ctl(sa, PVHA__VMM_REQUEST__OP__STOP);
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(th_wait(&a, 30), 5);
}

/* A source that sends a saved state file as its stream, waits for READY and
 * then drops the link without a word: the target must decide by the lock. */
static void fake_source_drops_after_ready(uint16_t port, const struct guest *g, const char *state_path)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	/* the handshake, then everything sealed with the tests' migration key */
	uint8_t nonce[PVPROTO_NONCE_BYTES], theirs[PVPROTO_NONCE_BYTES];
	Pvha__MigrateAuth au = PVHA__MIGRATE_AUTH__INIT;
	assert_int_equal(pvproto_random(nonce, sizeof(nonce)), 0);
	au.version = 3; /* the migration protocol's version (docs/migration.md) */
	au.nonce.data = nonce;
	au.nonce.len = sizeof(nonce);
	au.keyed = true;
	assert_int_equal(pvproto_frame_write(fd, &au.base), 0);
	ProtobufCMessage *m;
	assert_int_equal(pvproto_frame_read(fd, &pvha__migrate_auth__descriptor, 4096, &m), 0);
	assert_string_equal(((Pvha__MigrateAuth *)m)->refuse, "");
	assert_int_equal(((Pvha__MigrateAuth *)m)->nonce.len, PVPROTO_NONCE_BYTES);
	memcpy(theirs, ((Pvha__MigrateAuth *)m)->nonce.data, sizeof(theirs));
	protobuf_c_message_free_unpacked(m, NULL);
	struct pvproto_link *l = pvproto_link_create(fd);
	assert_non_null(l);
	assert_int_equal(pvproto_link_seal(l, th_migrate_key, sizeof(th_migrate_key), PVPROTO_LABEL_MIGRATE, nonce,
					   theirs, true),
			 0);
	Pvha__MigrateHello h = PVHA__MIGRATE_HELLO__INIT;
	h.version = 3;
	h.guest_id.data = (uint8_t *)g->uuid;
	h.guest_id.len = 16;
	h.mem_size = 16u << 20;
	h.disk_size = 4u << 20;
	assert_int_equal(pvproto_link_write(l, &h.base), 0);
	assert_int_equal(pvproto_link_read(l, &pvha__migrate_msg__descriptor, 4096, &m), 0);
	assert_int_equal(((Pvha__MigrateMsg *)m)->kind, PVHA__MIGRATE_MSG__KIND__ACCEPT);
	protobuf_c_message_free_unpacked(m, NULL);
	/* the saved state, record by record, each sealed */
	int sf = open(state_path, O_RDONLY | O_CLOEXEC);
	assert_true(sf >= 0);
	int records = 0;
	while (pvproto_frame_read(sf, &pvha__state_record__descriptor, 4u << 20, &m) == 0) {
		assert_int_equal(pvproto_link_write(l, m), 0);
		protobuf_c_message_free_unpacked(m, NULL);
		records++;
	}
	close(sf);
	assert_true(records > 2);
	Pvha__MigrateConn end = PVHA__MIGRATE_CONN__INIT; /* no connections */
	end.version = 3;
	end.end = true;
	assert_int_equal(pvproto_link_write(l, &end.base), 0);
	assert_int_equal(pvproto_link_read(l, &pvha__migrate_msg__descriptor, 4096, &m), 0);
	assert_int_equal(((Pvha__MigrateMsg *)m)->kind, PVHA__MIGRATE_MSG__KIND__READY);
	protobuf_c_message_free_unpacked(m, NULL);
	pvproto_link_destroy(l);
	close(fd);
}

static void link_lost_after_ready_the_lock_decides(void **state)
{
	(void)state;
	struct guest g;
	struct proc s, t;
	new_guest(&g, "mig-ready");
	const char *st_path = th_tmp("ready.state");
	char *save[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--id", g.id, "--disk",
			 g.spec, "--ceph-conf", fx.conf, "--cmdline", "interval=0", "--save",
			 (char *)st_path, "--save-after", "40", NULL };
	assert_int_equal(th_run(&s, 60, save), 6);

	/* The lock is still the (fake) source's: the target runs nothing. */
	assert_int_equal(pvstore_lock_acquire(st, g.uuid, "fake-source"), 0);
	const char *sock = th_tmp("lr.sock"), *con = th_tmp("lr.console");
	uint16_t port = start_target(&t, sock, &g, "node-b", con);
	double t0 = th_now_s();
	fake_source_drops_after_ready(port, &g, st_path);
	assert_int_equal(th_wait(&t, 60), 9);
	print_message("target gave up %.1f s after the link died\n", th_now_s() - t0);
	assert_contains(t.err_path, "the link to the source was lost after READY");
	assert_contains(t.err_path, "owner lock stayed with it");
	assert_contains(t.err_path, "nothing ran here");
	char *out = th_slurp(con);
	assert_string_equal(out, "");
	free(out);
	char *ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, "fake-source");
	free(ck);

	/* The source had let it go: the target takes it and runs the guest. */
	assert_int_equal(pvstore_lock_release(st, g.uuid, "fake-source"), 0);
	port = start_target(&t, sock, &g, "node-b", con);
	fake_source_drops_after_ready(port, &g, st_path);
	wait_for_seq(con, th_last_flushed(s.out_path) + 5);
	ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, "node-b");
	free(ck);
	Pvha__VmmReply *r = ctl(sock, PVHA__VMM_REQUEST__OP__STATUS);
	assert_string_equal(r->status->migration_phase, "done");
	assert_non_null(strstr(r->status->migration_reason, "had released the owner lock"));
	pvha__vmm_reply__free_unpacked(r, NULL);
	r = ctl(sock, PVHA__VMM_REQUEST__OP__STOP);
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(th_wait(&t, 30), 5);
	out = th_slurp(con);
	assert_null(strstr(out, "CORRUPT"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(counter_migrated_three_times_keeps_its_log_and_the_lock_follows),
		cmocka_unit_test(target_refuses_a_guest_that_is_not_its_disks),
		cmocka_unit_test(link_lost_after_ready_the_lock_decides),
	};
	const struct ceph_suite suite = {
		.name = "test_migrate_rados", .fx = &fx, .st = &st, .mount_timeout_s = 10, .osd_op_timeout_s = 10,
		.after = th_cleanup,
	};
	return ceph_suite_run(&suite, tests);
}
