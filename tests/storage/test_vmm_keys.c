/*
 * pvha-vmm as its guest's own cephx user, on a real Ceph (what pvhad starts:
 * --ceph-client client.pvha-guest-<uuid> --ceph-keyring, docs/storage.md):
 * the guest runs on its disk and holds its owner lock with that key alone;
 * the key opens no other guest's disk or lock; a diskless guest holds its
 * owner lock too (--owner), so a second VMM for it is refused; a keyring
 * others may read, or a wrong key, is refused at start; storage that does
 * not answer at start ends it with its own exit status (11).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ceph_suite.h"
#include "harness.h"
#include "keyring.h"
#include "pvstore/pvstore.h"
#include "vmmctl.h"

static struct ceph_fixture fx;
static struct pvstore *st;

#define VMM th_build("bin/pvha-vmm")
#define COUNTER th_build("guests/counter.elf")
#define MEMWRITER th_build("guests/memwriter.elf")

#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

/* A guest in the registry (disk_size 0: none), its user made as the agent
 * makes it, and that user's keyring in an owner-only file. */
struct guest {
	uint8_t uuid[16];
	char id[PVSTORE_UUID_STR];
	char entity[PVSTORE_ENTITY_MAX];
	char key[PVSTORE_KEY_MAX];
	char keyring[300];
	char rados[128]; /* rados:pvha/<uuid> */
};

static void new_guest(struct guest *g, const char *name, uint64_t disk_size)
{
	struct pvstore_guest s;
	memset(&s, 0, sizeof(s));
	memset(g, 0, sizeof(*g));
	snprintf(s.name, sizeof(s.name), "%s", name);
	s.mem_size = 16u << 20;
	s.disk_size = disk_size;
	assert_int_equal(pvstore_guest_create(st, &s), 0);
	if (disk_size)
		assert_int_equal(pvstore_disk_create(st, s.uuid, disk_size), 0);
	memcpy(g->uuid, s.uuid, 16);
	pvstore_uuid_format(g->uuid, g->id);
	snprintf(g->rados, sizeof(g->rados), "rados:pvha/%s", g->id);
	assert_int_equal(pvstore_guest_entity(g->entity, sizeof(g->entity), g->uuid), 0);
	assert_int_equal(pvstore_key_guest(st, g->uuid, g->key, sizeof(g->key)), 0);
	char ring[256], file[64];
	int n = pv_keyring_format(ring, sizeof(ring), g->entity, g->key);
	assert_true(n > 0);
	snprintf(file, sizeof(file), "%s.keyring", name);
	snprintf(g->keyring, sizeof(g->keyring), "%s", th_tmp(file));
	int fd = open(g->keyring, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ring, (size_t)n), n);
	close(fd);
}

static void stop(const char *sock)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	assert_int_equal(vmmctl_connect(sock, 20000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STOP, NULL, &r), 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
}

static void guest_user_runs_its_own_disk_and_lock_only(void **state)
{
	(void)state;
	struct guest a, b;
	struct proc p, q;
	new_guest(&a, "ukey-a", 4u << 20);
	new_guest(&b, "ukey-b", 4u << 20);
	const char *sock = th_tmp("ukey-a.sock");
	char *run[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--id", a.id, "--disk", a.rados,
			"--ceph-conf", fx.conf, "--ceph-client", a.entity, "--ceph-keyring", a.keyring, "--lock",
			"node-a", "--cmdline", "interval=2", "--control", (char *)sock, NULL };
	th_spawn(&p, run);
	/* flushed records are on RADOS: written with guest a's key alone */
	assert_true(th_wait_for_text(p.out_path, "counter: flushed seq 5\n", 60));
	char *ck = ceph_suite_holder_cookie(st, a.uuid);
	assert_string_equal(ck, "node-a");
	free(ck);
	stop(sock);
	assert_int_equal(th_wait(&p, 30), 5);
	ck = ceph_suite_holder_cookie(st, a.uuid);
	assert_string_equal(ck, ""); /* a clean end gives it back */
	free(ck);

	/* a's key on b's disk: the OSDs refuse, nothing runs */
	char *other[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--id", b.id, "--disk",
			  b.rados, "--ceph-conf", fx.conf, "--ceph-client", a.entity, "--ceph-keyring", a.keyring,
			  "--lock", "node-a", NULL };
	assert_int_equal(th_run(&q, 60, other), 2);
	assert_contains(q.err_path, "Operation not permitted");
	ck = ceph_suite_holder_cookie(st, b.uuid);
	assert_string_equal(ck, "");
	free(ck);
}

static void diskless_guest_holds_its_lock_and_a_second_vmm_is_refused(void **state)
{
	(void)state;
	struct guest g, h;
	struct proc a, b, c;
	new_guest(&g, "ukey-diskless", 0);
	new_guest(&h, "ukey-other", 0);
	const char *sock = th_tmp("ukey-dl.sock");
	char *first[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--id", g.id, "--owner",
			  g.rados, "--ceph-conf", fx.conf, "--ceph-client", g.entity, "--ceph-keyring", g.keyring,
			  "--lock", "node-a", "--cmdline", "mib=1 passes=1 hold", "--control", (char *)sock, NULL };
	th_spawn(&a, first);
	assert_true(th_wait_for_socket(sock, 60));
	assert_true(th_wait_for_text(a.out_path, "memwriter: done, 1 passes ok\n", 60));
	char *ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, "node-a");
	free(ck);

	/* a second copy of the same guest, from another node: refused before
	 * its first instruction (exit 8), the first one untouched */
	char *second[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--id", g.id, "--owner",
			   g.rados, "--ceph-conf", fx.conf, "--ceph-client", g.entity, "--ceph-keyring", g.keyring,
			   "--lock", "node-b", "--cmdline", "mib=1 passes=1 hold", NULL };
	assert_int_equal(th_run(&b, 60, second), 8);
	assert_contains(b.err_path, "pvha-vmm: owner lock: ");
	char *out = th_slurp(b.out_path);
	assert_null(strstr(out, "memwriter:")); /* not one instruction of it ran */
	free(out);
	ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, "node-a");
	free(ck);

	/* g's key cannot take another guest's lock */
	char *theirs[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--id", h.id, "--owner",
			   h.rados, "--ceph-conf", fx.conf, "--ceph-client", g.entity, "--ceph-keyring", g.keyring,
			   "--lock", "node-b", NULL };
	assert_int_equal(th_run(&c, 60, theirs), 7);
	assert_contains(c.err_path, "Operation not permitted");
	ck = ceph_suite_holder_cookie(st, h.uuid);
	assert_string_equal(ck, "");
	free(ck);

	stop(sock);
	assert_int_equal(th_wait(&a, 30), 5);
	ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, "");
	free(ck);
	/* --owner is for a guest without a disk, and needs --lock */
	char *both[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--owner", g.rados, NULL };
	assert_int_equal(th_run(&c, 30, both), 2);
	assert_contains(c.err_path, "--owner is for a guest without --disk, with --lock");
}

static void bad_keyrings_are_refused_at_start(void **state)
{
	(void)state;
	struct guest g;
	struct proc p;
	new_guest(&g, "ukey-bad", 0);
	char *run[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--owner", g.rados,
			"--ceph-conf", fx.conf, "--ceph-client", g.entity, "--ceph-keyring", g.keyring,
			"--lock", "node-a", "--cmdline", "mib=1 passes=1", NULL };
	assert_int_equal(chmod(g.keyring, 0644), 0);
	assert_int_equal(th_run(&p, 30, run), 2);
	assert_contains(p.err_path, "readable by others than its owner");
	assert_int_equal(chmod(g.keyring, 0600), 0);
	/* the keyring of another user than --ceph-client */
	char *other[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--owner", g.rados,
			  "--ceph-conf", fx.conf, "--ceph-client", "client.admin", "--ceph-keyring", g.keyring,
			  "--lock", "node-a", NULL };
	assert_int_equal(th_run(&p, 30, other), 2);
	assert_contains(p.err_path, "no key for client.admin in it");
	/* the user deleted (its guest was): its key no longer gets in, where
	 * the same command ran the guest just before */
	assert_int_equal(th_run(&p, 60, run), 0);
	assert_contains(p.out_path, "memwriter: done, 1 passes ok");
	assert_int_equal(pvstore_key_remove(st, g.entity), 0);
	assert_int_equal(th_run(&p, 60, run), 2);
	assert_contains(p.err_path, "pvha-vmm: --owner ");
	char *ck = ceph_suite_holder_cookie(st, g.uuid);
	assert_string_equal(ck, "");
	free(ck);
}
/* The storage silent at start (the OSD stopped): the VMM gives up after
 * its --ceph-timeout with exit 11, "the storage did not answer", before
 * the guest's first instruction and holding no lock (pvhad then tries the
 * start again: not the guest's fault); a guest with a disk stops at the
 * disk, a diskless one at its owner lock. Once the OSD is back the same
 * command runs the guest. */
static void silent_storage_at_start_exits_11(void **state)
{
	(void)state;
	struct guest g, h;
	struct proc p, q;
	new_guest(&g, "ukey-silent", 4u << 20);
	new_guest(&h, "ukey-silent-dl", 0);
	const char *sock = th_tmp("ukey-silent.sock");
	char *disk[] = { (char *)VMM, "--image", (char *)COUNTER, "--mem", "16M", "--id", g.id, "--disk", g.rados,
			 "--ceph-conf", fx.conf, "--ceph-client", g.entity, "--ceph-keyring", g.keyring, "--lock",
			 "node-a", "--ceph-timeout", "3", "--control", (char *)sock, NULL };
	char *diskless[] = { (char *)VMM, "--image", (char *)MEMWRITER, "--mem", "16M", "--id", h.id, "--owner",
			     h.rados, "--ceph-conf", fx.conf, "--ceph-client", h.entity, "--ceph-keyring",
			     h.keyring, "--lock", "node-a", "--ceph-timeout", "3", NULL };
	ceph_suite_signal(&fx, "osd.0", SIGSTOP);
	int rc_disk = th_run(&p, 60, disk);
	int rc_diskless = th_run(&q, 60, diskless);
	ceph_suite_signal(&fx, "osd.0", SIGCONT);

	assert_int_equal(rc_disk, 11);
	assert_contains(p.err_path, "pvha-vmm: --disk ");
	assert_contains(p.err_path, "timed out");
	char *out = th_slurp(p.out_path);
	assert_null(strstr(out, "counter:"));
	free(out);
	assert_int_equal(rc_diskless, 11);
	assert_contains(q.err_path, "pvha-vmm: owner lock: ");
	assert_contains(q.err_path, "timed out");
	out = th_slurp(q.out_path);
	assert_null(strstr(out, "memwriter:"));
	free(out);
	char *ck = ceph_suite_holder_cookie(st, h.uuid);
	assert_string_equal(ck, "");
	free(ck);

	/* the storage back: the same command runs the guest */
	th_spawn(&p, disk);
	assert_true(th_wait_for_text(p.out_path, "counter: flushed seq 1\n", 60));
	stop(sock);
	assert_int_equal(th_wait(&p, 30), 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(guest_user_runs_its_own_disk_and_lock_only),
		cmocka_unit_test(diskless_guest_holds_its_lock_and_a_second_vmm_is_refused),
		cmocka_unit_test(bad_keyrings_are_refused_at_start),
		cmocka_unit_test(silent_storage_at_start_exits_11),
	};
	const struct ceph_suite suite = {
		.name = "test_vmm_keys", .fx = &fx, .st = &st, .mount_timeout_s = 10, .osd_op_timeout_s = 10,
		.after = th_cleanup,
	};
	return ceph_suite_run(&suite, tests);
}
