/*
 * The fake store behaves as FACTS.md and tests/storage/ found the real one
 * to behave (docs/simulator.md, "The store"): cls_lock's answers, the
 * blocklist's reach (one client, a whole host, the same handle after the
 * removal), the OSD map lag and the fence that waits it out, timeouts, and a
 * monitor command committed after its caller gave up.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

struct fix {
	struct sim w;
	struct pvstore *a, *b, *c; /* a, b on node 0; c on node 1 */
	struct pvstore_guest g;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct sim_params p;
	sim_params_default(&p);
	sim_init(&f->w, &p, 1, NULL);
	assert_int_equal(sim_add_node(&f->w, "n1", 1ull << 30, 4), 0);
	assert_int_equal(sim_add_node(&f->w, "n2", 1ull << 30, 4), 1);
	f->a = fs_connect(&f->w, 0, false);
	f->b = fs_connect(&f->w, 0, false);
	f->c = fs_connect(&f->w, 1, false);
	memset(&f->g, 0, sizeof(f->g));
	snprintf(f->g.name, sizeof(f->g.name), "g1");
	f->g.mem_size = 64ull << 20;
	f->g.desired = PVSTORE_DESIRED_STOPPED;
	f->g.uuid[15] = 1;
	assert_int_equal(pvstore_guest_create(f->a, &f->g), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	fs_disconnect(f->a);
	fs_disconnect(f->b);
	fs_disconnect(f->c);
	sim_fini(&f->w);
	free(f);
	return 0;
}

static void test_lock_answers_like_cls_lock(void **state)
{
	struct fix *f = *state;
	struct pvstore_lock_holder h;
	uint8_t none[16] = { 9 };
	assert_int_equal(pvstore_lock_holder(f->a, f->g.uuid, &h), -ENOENT);
	assert_int_equal(pvstore_lock_acquire(f->a, f->g.uuid, "boot1"), 0);
	assert_int_equal(pvstore_lock_acquire(f->a, f->g.uuid, "boot1"), 0); /* again: success */
	assert_int_equal(pvstore_lock_acquire(f->b, f->g.uuid, "boot1"), -EBUSY);
	assert_int_equal(pvstore_lock_acquire(f->c, f->g.uuid, "boot2"), -EBUSY);
	assert_int_equal(pvstore_lock_acquire(f->a, none, "boot1"), -ENOENT);
	assert_int_equal(pvstore_lock_acquire(f->a, f->g.uuid, "bad cookie"), -EINVAL);
	assert_int_equal(pvstore_lock_release(f->b, f->g.uuid, "boot1"), -ENOENT);
	assert_int_equal(pvstore_lock_holder(f->c, f->g.uuid, &h), 0);
	assert_string_equal(h.cookie, "boot1");
	assert_int_equal(pvstore_guest_delete(f->c, f->g.uuid, 0), -EBUSY);
	assert_int_equal(pvstore_lock_break(f->c, f->g.uuid, &h), 0);
	assert_int_equal(pvstore_lock_break(f->c, f->g.uuid, &h), -ENOENT);
	assert_int_equal(pvstore_lock_acquire(f->c, f->g.uuid, "boot2"), 0);
}

static void test_blocklist_one_client_host_and_same_handle_after(void **state)
{
	struct fix *f = *state;
	struct pvstore_guest out;
	/* one client */
	assert_int_equal(pvstore_fence(f->c, f->a->addr, 3600), 0);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), -ESHUTDOWN);
	assert_int_equal(pvstore_guest_read(f->b, f->g.uuid, &out), 0);
	/* removed: the SAME handle works again */
	assert_int_equal(pvstore_blocklist_remove(f->c, f->a->addr), 0);
	assert_int_equal(pvstore_blocklist_remove(f->c, f->a->addr), -ENOENT);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), 0);
	/* a bare IP: every client of the host, a new one too */
	assert_int_equal(pvstore_fence(f->c, "10.0.0.1", 3600), 0);
	struct pvstore *fresh = fs_connect(&f->w, 0, false);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), -ESHUTDOWN);
	assert_int_equal(pvstore_guest_read(f->b, f->g.uuid, &out), -ESHUTDOWN);
	assert_int_equal(pvstore_lock_acquire(fresh, f->g.uuid, "boot3"), -ESHUTDOWN);
	assert_int_equal(pvstore_guest_read(f->c, f->g.uuid, &out), 0);
	assert_int_equal(pvstore_blocklist_add(f->c, "not an address", 3600), -EINVAL);
	assert_int_equal(pvstore_blocklist_add(f->c, "10.0.0.9", 0), -EINVAL);
	fs_disconnect(fresh);
}

static void test_osd_map_lag_and_the_fence_that_waits(void **state)
{
	struct fix *f = *state;
	/* a plain blocklist add: a data write still lands for the lag */
	assert_int_equal(pvstore_blocklist_add(f->c, f->a->addr, 3600), 0);
	assert_int_equal(fs_check(f->a, true), 0);
	assert_int_equal(fs_check(f->a, false), -ESHUTDOWN);
	sim_run_until(&f->w, f->w.now + f->w.p.osd_map_lag_ms);
	assert_int_equal(fs_check(f->a, true), -ESHUTDOWN);
	/* pvstore_fence waited for the map: at once */
	assert_int_equal(pvstore_fence(f->c, f->b->addr, 3600), 0);
	assert_int_equal(fs_check(f->b, true), -ESHUTDOWN);
}

static void test_fence_and_break_breaks_only_what_it_covers(void **state)
{
	struct fix *f = *state;
	assert_int_equal(pvstore_lock_acquire(f->a, f->g.uuid, "boot1"), 0);
	assert_int_equal(pvstore_fence_and_break(f->c, "10.0.0.9", 3600, f->g.uuid, NULL), -EBUSY);
	assert_int_equal(pvstore_fence_and_break(f->c, "10.0.0.1", 3600, f->g.uuid, "other"), -EBUSY);
	assert_int_equal(pvstore_fence_and_break(f->c, "10.0.0.1", 3600, f->g.uuid, "boot1"), 0);
	assert_int_equal(pvstore_lock_acquire(f->c, f->g.uuid, "boot2"), 0);
	assert_true(pvstore_addr_covers("10.0.0.1", "v1:10.0.0.1:0/1002"));
	assert_false(pvstore_addr_covers("10.0.0.1", "v1:10.0.0.11:0/1002"));
	assert_false(pvstore_addr_covers("10.0.0.1:0/1001", "v1:10.0.0.1:0/1002"));
}

static void test_timeouts_and_a_late_monitor_commit(void **state)
{
	struct fix *f = *state;
	struct pvstore_guest out;
	f->w.store.down = true;
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), -ETIMEDOUT);
	f->w.store.down = false;
	f->w.nodes[0].storage_cut = true;
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), -ETIMEDOUT);
	assert_int_equal(pvstore_guest_read(f->c, f->g.uuid, &out), 0);
	f->w.nodes[0].storage_cut = false;
	/* the monitor answers after the caller's timeout: -ETIMEDOUT, and a
	 * plain add lands later all the same */
	f->w.store.mon_delay_ms = f->w.p.mon_timeout_ms + 5000;
	assert_int_equal(pvstore_blocklist_add(f->c, "10.0.0.1", 3600), -ETIMEDOUT);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), 0);
	sim_run_until(&f->w, f->w.now + f->w.store.mon_delay_ms + f->w.p.osd_map_lag_ms);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), -ESHUTDOWN);
	/* a fence withdraws its unconfirmed request: nothing is left later */
	f->w.store.mon_delay_ms = 0;
	assert_int_equal(pvstore_blocklist_remove(f->c, "10.0.0.1"), 0);
	f->w.store.mon_delay_ms = f->w.p.mon_timeout_ms + 5000;
	assert_int_equal(pvstore_fence(f->c, "10.0.0.1", 3600), -ETIMEDOUT);
	sim_run_until(&f->w, f->w.now + 2 * f->w.store.mon_delay_ms);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &out), 0);
}

/* As tests/storage/test_store_tiebreak.c finds cls_lock with a duration. */
static void test_tiebreak_like_cls_lock_with_a_duration(void **state)
{
	struct fix *f = *state;
	struct pvstore_lock_holder h;
	char out[64];
	assert_int_equal(pvstore_tiebreak_take(f->a, "boot-a.1", 4, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(f->a, "boot-a.1", 4, &h), 0); /* renewed */
	assert_int_equal(pvstore_tiebreak_take(f->a, "boot-a.2", 4, &h), -EBUSY);
	assert_int_equal(pvstore_tiebreak_take(f->c, "boot-a.1", 4, &h), -EBUSY);
	assert_string_equal(h.cookie, "boot-a.1");
	assert_string_equal(h.client, f->a->entity);
	/* a renewal at 2 s pushes the lapse to 6 s */
	sim_run_until(&f->w, f->w.now + 2000);
	assert_int_equal(pvstore_tiebreak_take(f->a, "boot-a.1", 4, &h), 0);
	sim_run_until(&f->w, f->w.now + 3999);
	assert_int_equal(pvstore_tiebreak_take(f->c, "boot-b.1", 4, &h), -EBUSY);
	sim_run_until(&f->w, f->w.now + 1);
	assert_int_equal(pvstore_tiebreak_take(f->c, "boot-b.1", 4, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(f->a, "boot-a.1", 4, &h), -EBUSY);
	/* breaking needs the exact holder */
	struct pvstore_lock_holder wrong = h;
	snprintf(wrong.cookie, sizeof(wrong.cookie), "boot-b.9");
	assert_int_equal(pvstore_tiebreak_break(f->a, &wrong), -ENOENT);
	assert_int_equal(pvstore_tiebreak_break(f->a, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(f->a, "boot-a.3", 4, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(f->a, "ok", 0, NULL), -EINVAL);
	assert_int_equal(pvstore_tiebreak_take(f->a, "no spaces", 4, NULL), -EINVAL);
	/* yields */
	assert_int_equal(pvstore_tiebreak_yielded(f->a, "n2", out, sizeof(out)), -ENOENT);
	assert_int_equal(pvstore_tiebreak_yield(f->c, "n2", "boot-a.3"), 0);
	assert_int_equal(pvstore_tiebreak_yield(f->c, "n2", "boot-a.4"), 0);
	assert_int_equal(pvstore_tiebreak_yielded(f->a, "n2", out, sizeof(out)), 0);
	assert_string_equal(out, "boot-a.4");
	assert_int_equal(pvstore_tiebreak_yielded(f->a, "n2", out, 4), -EBADMSG);
	assert_int_equal(pvstore_tiebreak_yield(f->c, "bad name", "x"), -EINVAL);
	/* an op of a client cut off from the storage times out */
	f->w.nodes[1].storage_cut = true;
	assert_int_equal(pvstore_tiebreak_take(f->c, "boot-b.2", 4, &h), -ETIMEDOUT);
}

static void test_registry_compare_and_set(void **state)
{
	struct fix *f = *state;
	struct pvstore_guest x, y;
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &x), 0);
	y = x;
	x.priority = 5;
	assert_int_equal(pvstore_guest_update(f->a, &x), 0);
	y.priority = 6;
	assert_int_equal(pvstore_guest_update(f->b, &y), -ECANCELED);
	snprintf(x.name, sizeof(x.name), "renamed");
	assert_int_equal(pvstore_guest_update(f->a, &x), -EINVAL);
	struct pvstore_guest dup = f->g;
	memset(dup.uuid, 0, 16);
	assert_int_equal(pvstore_guest_create(f->a, &dup), -EEXIST);
	assert_int_equal(pvstore_guest_delete(f->a, f->g.uuid, 1), -ECANCELED);
	assert_int_equal(pvstore_guest_delete(f->a, f->g.uuid, 0), 0);
	assert_int_equal(pvstore_guest_read(f->a, f->g.uuid, &x), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lock_answers_like_cls_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocklist_one_client_host_and_same_handle_after, setup, teardown),
		cmocka_unit_test_setup_teardown(test_osd_map_lag_and_the_fence_that_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_and_break_breaks_only_what_it_covers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeouts_and_a_late_monitor_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_registry_compare_and_set, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tiebreak_like_cls_lock_with_a_duration, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
