/*
 * Owner locks and blocklist fencing on a real Ceph: lock semantics, two
 * clients racing for one lock (exactly one holds it), a writer fenced while
 * writing (every write after the fence fails with -ESHUTDOWN and no write the
 * fence should have stopped is on the disk), fence refusing to break a lock
 * it does not cover, blocklist add/list/remove.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ceph_suite.h"
#include "pvstore/pvstore.h"

static struct ceph_fixture fx;
static struct pvstore *st;

static void test_lock_acquire_release_holder_break(void **state)
{
	(void)state;
	struct pvstore_guest g;
	struct pvstore_lock_holder h;
	struct pvstore *other = ceph_fixture_connect(&fx, 0, 0);
	char me[64], addr[128];

	ceph_suite_guest(st, &g, "lock-basics");
	assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), -ENOENT);
	assert_int_equal(pvstore_lock_acquire(st, g.uuid, "inc-1"), 0);
	assert_int_equal(pvstore_lock_acquire(st, g.uuid, "inc-1"), 0); /* already ours */
	assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), 0);
	assert_string_equal(h.cookie, "inc-1");
	assert_int_equal(pvstore_client_entity(st, me, sizeof(me)), 0);
	assert_string_equal(h.client, me);
	assert_int_equal(pvstore_client_addr(st, addr, sizeof(addr)), 0);
	assert_true(pvstore_addr_covers(addr, h.addr));

	/* another client, even with the same cookie, is refused */
	assert_int_equal(pvstore_lock_acquire(other, g.uuid, "inc-2"), -EBUSY);
	assert_non_null(strstr(pvstore_errmsg(), "inc-1"));
	assert_int_equal(pvstore_lock_acquire(other, g.uuid, "inc-1"), -EBUSY);
	assert_int_equal(pvstore_lock_release(other, g.uuid, "inc-1"), -ENOENT);
	/* a held guest cannot be deleted */
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 0), -EBUSY);

	assert_int_equal(pvstore_lock_release(st, g.uuid, "inc-1"), 0);
	assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), -ENOENT);
	assert_int_equal(pvstore_lock_release(st, g.uuid, "inc-1"), -ENOENT);

	/* break: the other client breaks our lock and takes it */
	assert_int_equal(pvstore_lock_acquire(st, g.uuid, "inc-1"), 0);
	assert_int_equal(pvstore_lock_holder(other, g.uuid, &h), 0);
	assert_int_equal(pvstore_lock_break(other, g.uuid, &h), 0);
	assert_int_equal(pvstore_lock_break(other, g.uuid, &h), -ENOENT);
	assert_int_equal(pvstore_lock_acquire(other, g.uuid, "inc-2"), 0);
	assert_int_equal(pvstore_lock_release(other, g.uuid, "inc-2"), 0);

	/* bad cookies, missing guests */
	assert_int_equal(pvstore_lock_acquire(st, g.uuid, ""), -EINVAL);
	assert_int_equal(pvstore_lock_acquire(st, g.uuid, "has space"), -EINVAL);
	uint8_t missing[16];
	pvstore_uuid_generate(missing);
	assert_int_equal(pvstore_lock_acquire(st, missing, "inc-1"), -ENOENT);
	struct pvstore_guest r;
	assert_int_equal(pvstore_guest_read(st, missing, &r), -ENOENT); /* no object appeared */

	assert_int_equal(pvstore_guest_delete(st, g.uuid, 0), 0);
	pvstore_disconnect(other);
}

struct lock_racer {
	struct pvstore *st;
	const uint8_t *uuid;
	const char *cookie;
	int result;
};

static void lock_race(void *arg)
{
	struct lock_racer *r = arg;
	r->result = pvstore_lock_acquire(r->st, r->uuid, r->cookie);
}

static void test_two_clients_race_for_lock_exactly_one_holds(void **state)
{
	(void)state;
	struct pvstore *a = ceph_fixture_connect(&fx, 0, 0), *b = ceph_fixture_connect(&fx, 0, 0);
	struct pvstore_guest g;
	int a_wins = 0;

	ceph_suite_guest(st, &g, "lock-race");
	for (int round = 0; round < 30; round++) {
		struct lock_racer ra = {a, g.uuid, "node-a", 0}, rb = {b, g.uuid, "node-b", 0};
		ceph_suite_race(lock_race, &ra, &rb);
		if (!((ra.result == 0 && rb.result == -EBUSY) || (ra.result == -EBUSY && rb.result == 0)))
			fail_msg("round %d: %d and %d, want exactly one 0 and one -EBUSY", round, ra.result,
				 rb.result);
		struct pvstore_lock_holder h;
		assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), 0);
		assert_string_equal(h.cookie, ra.result == 0 ? "node-a" : "node-b");
		a_wins += ra.result == 0;
		assert_int_equal(pvstore_lock_release(ra.result == 0 ? a : b, g.uuid, h.cookie), 0);
	}
	print_message("lock race: A won %d of 30\n", a_wins);
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 0), 0);
	pvstore_disconnect(a);
	pvstore_disconnect(b);
}

/* ---- the fenced writer ------------------------------------------------------ */

#define BLOCK 4096
#define NBLOCKS 256 /* 1 MiB: in object 0 and 1 when offset by 3.5 MiB */
#define DISK_OFF (7u << 19)
#define MAX_WRITES 200000

struct write_rec {
	double start_ms, end_ms;
	int result;
};

struct writer {
	struct pvstore *st;
	struct pvstore_disk *d;
	struct write_rec *recs;
	atomic_int count;       /* writes done */
	atomic_int ok;          /* acknowledged writes */
	atomic_bool stop;       /* set once the new owner has written */
	int after_first_fail;   /* writes tried after the first -ESHUTDOWN */
	int flush_result;
	int read_result;
};

static void make_block(uint8_t *b, const char *tag, uint64_t seq)
{
	memset(b, 0, BLOCK);
	snprintf((char *)b, BLOCK, "%s %" PRIu64, tag, seq);
}

static void *writer_loop(void *arg)
{
	struct writer *w = arg;
	uint8_t b[BLOCK];
	int fails = 0;
	double give_up = ceph_fixture_now_ms() + 30000;

	for (uint64_t seq = 1; seq < MAX_WRITES && ceph_fixture_now_ms() < give_up; seq++) {
		struct write_rec *rec = &w->recs[seq - 1];
		make_block(b, "OLD", seq);
		rec->start_ms = ceph_fixture_now_ms();
		rec->result = pvstore_disk_write(w->d, b, DISK_OFF + (seq % NBLOCKS) * BLOCK, BLOCK);
		rec->end_ms = ceph_fixture_now_ms();
		atomic_store(&w->count, (int)seq);
		if (rec->result == 0) {
			atomic_fetch_add(&w->ok, 1);
		} else {
			/* keep trying until the new owner is done: none may land */
			fails++;
			if (atomic_load(&w->stop))
				break;
			usleep(500);
		}
	}
	w->after_first_fail = fails;
	w->flush_result = pvstore_disk_flush(w->d);
	w->read_result = pvstore_disk_read(w->d, b, DISK_OFF, BLOCK);
	return NULL;
}

static void test_fenced_writer_every_later_write_fails_and_none_lands(void **state)
{
	(void)state;
	struct pvstore_guest g;
	struct writer w = {0};
	pthread_t t;
	char waddr[128];

	ceph_suite_guest(st, &g, "fenced");
	assert_int_equal(pvstore_disk_create(st, g.uuid, 8u << 20), 0);
	w.st = ceph_fixture_connect(&fx, 0, 0);
	w.recs = calloc(MAX_WRITES, sizeof(*w.recs));
	assert_int_equal(pvstore_lock_acquire(w.st, g.uuid, "old-boot"), 0);
	assert_int_equal(pvstore_disk_open(w.st, g.uuid, &w.d), 0);
	/* the writer's own address: IP:0/NONCE fences this client only */
	assert_int_equal(pvstore_client_addr(w.st, waddr, sizeof(waddr)), 0);
	assert_non_null(strchr(waddr, '/'));

	pthread_create(&t, NULL, writer_loop, &w);
	while (atomic_load(&w.ok) < 200)
		usleep(1000);

	/* the new owner: fence, wait for the map, break, take the lock */
	struct pvstore *owner = ceph_fixture_connect(&fx, 0, 0);
	double t0 = ceph_fixture_now_ms();
	int r = pvstore_fence_and_break(owner, waddr, 600, g.uuid, "old-boot");
	double t1 = ceph_fixture_now_ms();
	if (r)
		fail_msg("fence_and_break: %d %s", r, pvstore_errmsg());
	assert_int_equal(pvstore_lock_acquire(owner, g.uuid, "new-boot"), 0);
	/* the new owner's writes, over every block the old one used */
	struct pvstore_disk *nd;
	uint8_t b[BLOCK], got[BLOCK];
	assert_int_equal(pvstore_disk_open(owner, g.uuid, &nd), 0);
	for (uint64_t i = 0; i < NBLOCKS; i++) {
		make_block(b, "NEW", i);
		assert_int_equal(pvstore_disk_write(nd, b, DISK_OFF + i * BLOCK, BLOCK), 0);
	}
	assert_int_equal(pvstore_disk_flush(nd), 0);
	usleep(20000); /* a few more attempts of the old writer */
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);

	int n = atomic_load(&w.count), rejected_after = 0, first_reject = -1;
	for (int i = 0; i < n; i++) {
		struct write_rec *rec = &w.recs[i];
		if (rec->result && first_reject < 0)
			first_reject = i;
		if (rec->start_ms >= t1) {
			/* started after the fence returned: must have failed, fenced */
			if (rec->result != -ESHUTDOWN)
				fail_msg("write %d started %.2f ms after the fence returned and got %d", i + 1,
					 rec->start_ms - t1, rec->result);
			rejected_after++;
		} else if (rec->result && rec->result != -ESHUTDOWN) {
			fail_msg("write %d failed with %d, not -ESHUTDOWN", i + 1, rec->result);
		}
	}
	assert_true(first_reject >= 0);
	assert_true(w.after_first_fail >= 10);
	assert_true(rejected_after > 0);
	/* after the fence a flush reports it, and reads fail too */
	assert_int_equal(w.flush_result, -ESHUTDOWN);
	assert_int_equal(w.read_result, -ESHUTDOWN);
	print_message("fence: %d writes acknowledged before it; fence_and_break took %.1f ms; "
		      "first rejected write ended %.1f ms after the fence call\n",
		      atomic_load(&w.ok), t1 - t0, w.recs[first_reject].end_ms - t0);

	/* no old write landed over the new owner's: every block is NEW */
	struct pvstore *reader = ceph_fixture_connect(&fx, 0, 0);
	struct pvstore_disk *rd;
	assert_int_equal(pvstore_disk_open(reader, g.uuid, &rd), 0);
	for (uint64_t i = 0; i < NBLOCKS; i++) {
		make_block(b, "NEW", i);
		assert_int_equal(pvstore_disk_read(rd, got, DISK_OFF + i * BLOCK, BLOCK), 0);
		if (memcmp(got, b, BLOCK) != 0)
			fail_msg("block %" PRIu64 " holds '%.20s' after the new owner wrote it", i, (char *)got);
	}
	pvstore_disk_close(rd);
	pvstore_disconnect(reader);

	/* the fenced client is fenced for everything, not just its disk */
	struct pvstore_guest gr;
	assert_int_equal(pvstore_guest_read(w.st, g.uuid, &gr), -ESHUTDOWN);
	assert_int_equal(pvstore_lock_acquire(w.st, g.uuid, "old-boot"), -ESHUTDOWN);
	struct pvstore_lock_holder h;
	assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), 0);
	assert_string_equal(h.cookie, "new-boot");

	/* listed, then removed by the exact address the OSD map carries */
	struct pvstore_blocklist_entry *bl;
	size_t nb;
	int found = 0;
	assert_int_equal(pvstore_blocklist_list(st, &bl, &nb), 0);
	for (size_t i = 0; i < nb; i++)
		found += strcmp(bl[i].addr, waddr) == 0;
	free(bl);
	assert_int_equal(found, 1);
	assert_int_equal(pvstore_blocklist_remove(st, waddr), 0);

	pvstore_disk_close(w.d);
	pvstore_disconnect(w.st);
	pvstore_disk_close(nd);
	assert_int_equal(pvstore_lock_release(owner, g.uuid, "new-boot"), 0);
	pvstore_disconnect(owner);
	assert_int_equal(pvstore_disk_delete(st, g.uuid), 0);
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 0), 0);
	free(w.recs);
}

static void test_fence_does_not_break_lock_it_does_not_cover(void **state)
{
	(void)state;
	struct pvstore_guest g;
	struct pvstore_lock_holder h;
	struct pvstore *holder = ceph_fixture_connect(&fx, 0, 0);

	ceph_suite_guest(st, &g, "not-covered");
	assert_int_equal(pvstore_lock_acquire(holder, g.uuid, "boot-a"), 0);
	/* fencing some other host does not free this lock */
	assert_int_equal(pvstore_fence_and_break(st, "10.213.0.9", 60, g.uuid, NULL), -EBUSY);
	assert_non_null(strstr(pvstore_errmsg(), "does not cover"));
	assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), 0);
	assert_string_equal(h.cookie, "boot-a");
	assert_int_equal(pvstore_blocklist_remove(st, "10.213.0.9"), 0);
	/* nor does a fence that names another incarnation */
	char addr[128];
	assert_int_equal(pvstore_client_addr(holder, addr, sizeof(addr)), 0);
	assert_int_equal(pvstore_fence_and_break(st, addr, 60, g.uuid, "boot-b"), -EBUSY);
	assert_int_equal(pvstore_lock_holder(st, g.uuid, &h), 0);
	assert_int_equal(pvstore_blocklist_remove(st, addr), 0);
	pvstore_disconnect(holder);
	/* and a guest nobody holds is simply free after a fence */
	assert_int_equal(pvstore_lock_break(st, g.uuid, &h), 0);
	assert_int_equal(pvstore_fence_and_break(st, "10.213.0.10", 60, g.uuid, NULL), 0);
	assert_int_equal(pvstore_blocklist_remove(st, "10.213.0.10"), 0);
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 0), 0);
}

static void test_blocklist_add_list_remove(void **state)
{
	(void)state;
	struct pvstore_blocklist_entry *bl;
	size_t n;
	int found = 0;

	assert_int_equal(pvstore_blocklist_add(st, "10.200.0.1", 120), 0);
	assert_int_equal(pvstore_blocklist_add(st, "10.200.0.2:0/12345", 120), 0);
	assert_int_equal(pvstore_blocklist_list(st, &bl, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(bl[i].addr, "10.200.0.1:0/0") || !strcmp(bl[i].addr, "10.200.0.2:0/12345")) {
			found++;
			assert_true(strlen(bl[i].until) > 10);
		}
	}
	free(bl);
	assert_int_equal(found, 2);
	assert_int_equal(pvstore_blocklist_remove(st, "10.200.0.1"), 0);
	assert_int_equal(pvstore_blocklist_remove(st, "10.200.0.1"), -ENOENT);
	assert_int_equal(pvstore_blocklist_remove(st, "10.200.0.2:0/12345"), 0);

	assert_int_equal(pvstore_blocklist_add(st, "bogus", 10), -EINVAL);
	assert_int_equal(pvstore_blocklist_add(st, "10.0.0.1:x/1", 10), -EINVAL);
	assert_int_equal(pvstore_blocklist_add(st, "10.0.0.1; rm -rf", 10), -EINVAL);
	assert_int_equal(pvstore_blocklist_add(st, "10.200.0.3", 0), -EINVAL);
	assert_int_equal(pvstore_blocklist_add(st, "10.200.0.3", 31u * 24 * 3600), -EINVAL);
	assert_int_equal(pvstore_blocklist_remove(st, "\"}"), -EINVAL);
}

static void test_addr_covers(void **state)
{
	(void)state;
	assert_true(pvstore_addr_covers("10.1.2.3", "v1:10.1.2.3:0/555"));
	assert_true(pvstore_addr_covers("10.1.2.3", "10.1.2.3:0/555"));
	assert_true(pvstore_addr_covers("10.1.2.3:0/0", "v1:10.1.2.3:0/555"));
	assert_true(pvstore_addr_covers("10.1.2.3:0/555", "v1:10.1.2.3:0/555"));
	assert_false(pvstore_addr_covers("10.1.2.3:0/556", "v1:10.1.2.3:0/555"));
	assert_false(pvstore_addr_covers("10.1.2.3", "v1:10.1.2.30:0/555"));
	assert_false(pvstore_addr_covers("10.1.2.30", "v1:10.1.2.3:0/555"));
	assert_true(pvstore_addr_covers("[fd00::1]", "v2:[fd00::1]:0/7"));
	assert_false(pvstore_addr_covers("[fd00::1]:0/8", "v2:[fd00::1]:0/7"));
	assert_false(pvstore_addr_covers("[fd00::1", "v2:[fd00::1]:0/7"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_covers),
		cmocka_unit_test(test_lock_acquire_release_holder_break),
		cmocka_unit_test(test_two_clients_race_for_lock_exactly_one_holds),
		cmocka_unit_test(test_blocklist_add_list_remove),
		cmocka_unit_test(test_fence_does_not_break_lock_it_does_not_cover),
		cmocka_unit_test(test_fenced_writer_every_later_write_fails_and_none_lands),
	};
	const struct ceph_suite suite = { .name = "test_store_lock_fence", .fx = &fx, .st = &st };
	return ceph_suite_run(&suite, tests);
}
