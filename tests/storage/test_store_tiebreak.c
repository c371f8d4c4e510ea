/*
 * The two-node tie-breaker on a real Ceph (storage/tiebreak.c), the
 * behaviour the simulator's fake store models (docs/simulator.md): one
 * holder at a time, also when two clients race; the same client and cookie
 * renews; another cookie or client is -EBUSY with the holder named; the lock
 * lapses after its duration and not before, a renewal pushes the lapse out;
 * breaking needs the exact holder; the yields are read back as written.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ceph_suite.h"
#include "pvstore/pvstore.h"

static struct ceph_fixture fx;
static struct pvstore *st;

/* Frees the lock whoever holds it (each test starts from a free lock). */
static void free_lock(void)
{
	struct pvstore_lock_holder h;
	int err = pvstore_tiebreak_take(st, "cleanup", 1, &h);
	if (err == -EBUSY)
		assert_int_equal(pvstore_tiebreak_break(st, &h), 0);
	else
		assert_int_equal(err, 0);
	assert_int_equal(pvstore_tiebreak_take(st, "cleanup", 1, &h), 0);
	h = (struct pvstore_lock_holder){ 0 };
	assert_int_equal(pvstore_client_entity(st, h.client, sizeof(h.client)), 0);
	snprintf(h.cookie, sizeof(h.cookie), "cleanup");
	assert_int_equal(pvstore_tiebreak_break(st, &h), 0);
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_take_renew_busy_break(void **state)
{
	(void)state;
	struct pvstore *other = ceph_fixture_connect(&fx, 0, 0);
	struct pvstore_lock_holder h;
	char me[64];
	free_lock();

	assert_int_equal(pvstore_tiebreak_take(st, "boot-a.1", 60, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(st, "boot-a.1", 60, &h), 0); /* renewed */
	/* this client with another cookie, another client with any: busy */
	assert_int_equal(pvstore_tiebreak_take(st, "boot-a.2", 60, &h), -EBUSY);
	assert_int_equal(pvstore_tiebreak_take(other, "boot-a.1", 60, &h), -EBUSY);
	assert_int_equal(pvstore_tiebreak_take(other, "boot-b.1", 60, &h), -EBUSY);
	assert_string_equal(h.cookie, "boot-a.1");
	assert_int_equal(pvstore_client_entity(st, me, sizeof(me)), 0);
	assert_string_equal(h.client, me);
	assert_non_null(strstr(pvstore_errmsg(), "boot-a.1"));

	/* breaking needs the exact holder */
	struct pvstore_lock_holder wrong = h;
	snprintf(wrong.cookie, sizeof(wrong.cookie), "boot-a.9");
	assert_int_equal(pvstore_tiebreak_break(other, &wrong), -ENOENT);
	assert_int_equal(pvstore_tiebreak_break(other, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(other, "boot-b.1", 60, &h), 0);
	assert_int_equal(pvstore_tiebreak_take(st, "boot-a.1", 60, &h), -EBUSY);
	assert_string_equal(h.cookie, "boot-b.1");

	/* bad input */
	assert_int_equal(pvstore_tiebreak_take(st, "no spaces", 60, NULL), -EINVAL);
	assert_int_equal(pvstore_tiebreak_take(st, "", 60, NULL), -EINVAL);
	assert_int_equal(pvstore_tiebreak_take(st, "ok", 0, NULL), -EINVAL);
	assert_int_equal(pvstore_tiebreak_take(st, "ok", 3601, NULL), -EINVAL);
	pvstore_disconnect(other);
}

struct race {
	struct pvstore *st;
	const char *cookie;
	int err;
};

static void race_one(void *arg)
{
	struct race *r = arg;
	struct pvstore_lock_holder h;
	r->err = pvstore_tiebreak_take(r->st, r->cookie, 60, &h);
}

static void test_two_halves_race_exactly_one_wins(void **state)
{
	(void)state;
	struct pvstore *a = ceph_fixture_connect(&fx, 0, 0);
	struct pvstore *b = ceph_fixture_connect(&fx, 0, 0);
	for (int round = 0; round < 20; round++) {
		free_lock();
		struct race ra = { .st = a, .cookie = "half-a.1" };
		struct race rb = { .st = b, .cookie = "half-b.1" };
		ceph_suite_race(race_one, &ra, &rb);
		assert_true((ra.err == 0 && rb.err == -EBUSY) || (ra.err == -EBUSY && rb.err == 0));
	}
	pvstore_disconnect(a);
	pvstore_disconnect(b);
}

static void test_lapses_after_duration_and_renewal_pushes_it_out(void **state)
{
	(void)state;
	struct pvstore *other = ceph_fixture_connect(&fx, 0, 0);
	struct pvstore_lock_holder h;
	free_lock();

	double t0 = ceph_fixture_now_ms();
	assert_int_equal(pvstore_tiebreak_take(st, "lease-a.1", 4, &h), 0);
	sleep_ms(2000);
	/* renewed at ~2 s for 4 s more: held until ~6 s */
	assert_int_equal(pvstore_tiebreak_take(st, "lease-a.1", 4, &h), 0);
	double t1 = ceph_fixture_now_ms();
	sleep_ms(2500);
	/* past the first duration (4 s), within the renewed one */
	if (ceph_fixture_now_ms() < t1 + 3500)
		assert_int_equal(pvstore_tiebreak_take(other, "lease-b.1", 4, &h), -EBUSY);
	/* it lapses: another client takes it, never before the renewal's end */
	int err;
	while ((err = pvstore_tiebreak_take(other, "lease-b.1", 4, &h)) == -EBUSY) {
		assert_true(ceph_fixture_now_ms() < t0 + 20000);
		sleep_ms(200);
	}
	assert_int_equal(err, 0);
	assert_true(ceph_fixture_now_ms() >= t1 + 4000);
	/* the old holder's renewal is refused now */
	assert_int_equal(pvstore_tiebreak_take(st, "lease-a.1", 4, &h), -EBUSY);
	assert_string_equal(h.cookie, "lease-b.1");
	pvstore_disconnect(other);
}

static void test_yields(void **state)
{
	(void)state;
	char out[64];
	assert_int_equal(pvstore_tiebreak_yielded(st, "n-none", out, sizeof(out)), -ENOENT);
	assert_int_equal(pvstore_tiebreak_yield(st, "n2", "boot-a.1"), 0);
	assert_int_equal(pvstore_tiebreak_yielded(st, "n2", out, sizeof(out)), 0);
	assert_string_equal(out, "boot-a.1");
	assert_int_equal(pvstore_tiebreak_yield(st, "n2", "boot-a.2"), 0);
	assert_int_equal(pvstore_tiebreak_yield(st, "n1", "boot-b.7"), 0);
	assert_int_equal(pvstore_tiebreak_yielded(st, "n2", out, sizeof(out)), 0);
	assert_string_equal(out, "boot-a.2");
	assert_int_equal(pvstore_tiebreak_yielded(st, "n1", out, sizeof(out)), 0);
	assert_string_equal(out, "boot-b.7");
	/* the lock and the yields share the object: taking it keeps them */
	free_lock();
	assert_int_equal(pvstore_tiebreak_yielded(st, "n1", out, sizeof(out)), 0);
	assert_int_equal(pvstore_tiebreak_yield(st, "bad name", "x"), -EINVAL);
	assert_int_equal(pvstore_tiebreak_yield(st, "n1", ""), -EINVAL);
	assert_int_equal(pvstore_tiebreak_yielded(st, "n1", out, 4), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_renew_busy_break),
		cmocka_unit_test(test_two_halves_race_exactly_one_wins),
		cmocka_unit_test(test_lapses_after_duration_and_renewal_pushes_it_out),
		cmocka_unit_test(test_yields),
	};
	const struct ceph_suite suite = { .name = "test_store_tiebreak", .fx = &fx, .st = &st };
	return ceph_suite_run(&suite, tests);
}
