/*
 * The CLI's verdict on each look at a guest it follows through a migration
 * (node/cli/mig_verdict.c): the looks pvha guest migrate gets in the cases
 * the fault campaign met (failures 6 and 9), and the plain ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mig_verdict.h"

static struct mig_look look(const char *state, const char *owner, uint32_t migrations)
{
	return (struct mig_look){ .state = state, .owner = owner, .last_step = "", .migrations = migrations,
				  .source = "", .target = "", .phase = "", .error = "" };
}

static struct mig_look with_migration(struct mig_look g, const char *src, const char *dst, const char *phase,
				      const char *error)
{
	g.has_migration = true;
	g.source = src;
	g.target = dst;
	g.phase = phase;
	g.error = error;
	return g;
}

static void a_migration_that_completes(void **state)
{
	(void)state;
	struct mig_follow f = { .from = "n1", .to = "n2", .migrations_before = 4 };
	const char *why;
	struct mig_look g = look("running", "n1", 4);
	/* not begun yet: the request reaches the leader in message order */
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
	assert_false(f.seen_migrating);
	g = with_migration(look("migrating", "n1", 5), "n1", "n2", "precopy", "");
	assert_true(mig_look_ours(&f, &g));
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
	assert_true(f.seen_migrating);
	g = with_migration(look("running", "n2", 5), "n1", "n2", "done", "");
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_ARRIVED);
	assert_null(why);
}

/* Campaign failure 6: a migration that completed was once reported as
 * "abandoned; it runs on n2": running on the target is arrival, whatever
 * else the look says. */
static void running_on_the_target_is_arrival_even_with_a_stale_failed_record(void **state)
{
	(void)state;
	struct mig_follow f = { .from = "n1", .to = "n2", .migrations_before = 0 };
	const char *why;
	struct mig_look g = with_migration(look("running", "n2", 1), "n1", "n2", "failed", "late report");
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_ARRIVED);
}

/* Campaign failure 9: the target refused (or gave up) between two looks:
 * the guest runs on the source again and the CLI never saw `migrating`;
 * the counter says a migration happened, last_step says why it failed. */
static void a_migration_over_between_two_looks_is_reported_with_its_reason(void **state)
{
	(void)state;
	struct mig_follow f = { .from = "n1", .to = "n2", .migrations_before = 7 };
	const char *why;
	struct mig_look g = look("running", "n1", 7);
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
	g = look("running", "n1", 8);
	g.last_step = "the migration target gave up -> running: Input/output error";
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_FAILED);
	assert_string_equal(why, "the migration target gave up -> running: Input/output error");
	/* without a step the reason is generic, never empty */
	f = (struct mig_follow){ .from = "n1", .to = "n2", .migrations_before = 7 };
	g.last_step = "";
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_FAILED);
	assert_string_equal(why, "the migration was abandoned");
}

/* The migration record's own error wins over the step, when it is ours. */
static void a_failed_record_of_ours_says_why(void **state)
{
	(void)state;
	struct mig_follow f = { .from = "n1", .to = "n2", .migrations_before = 0 };
	const char *why;
	struct mig_look g = with_migration(look("running", "n1", 1), "n1", "n2", "failed", "target refused: no room");
	g.last_step = "something else";
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_FAILED);
	assert_string_equal(why, "target refused: no room");
	/* someone else's failed migration (another target) is not ours: the
	 * counter still says one happened */
	f = (struct mig_follow){ .from = "n1", .to = "n3", .migrations_before = 0 };
	assert_false(mig_look_ours(&f, &g));
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_FAILED);
	assert_string_equal(why, "something else");
	/* still migrating with a failed phase: the source's word is awaited */
	f = (struct mig_follow){ .from = "n1", .to = "n2", .migrations_before = 0 };
	g = with_migration(look("migrating", "n1", 1), "n1", "n2", "failed", "x");
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
}

/* A party died: the guest went through fence-wait and recovering and runs
 * on a third node; a guest that ends stopped or in error ends the wait. */
static void a_party_died_or_the_guest_ended(void **state)
{
	(void)state;
	struct mig_follow f = { .from = "n1", .to = "n2", .migrations_before = 2 };
	const char *why;
	struct mig_look g = look("fence-wait", "", 2);
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
	g = look("recovering", "n3", 2);
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
	g = look("running", "n3", 2);
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_RECOVERED_ELSEWHERE);
	/* running on a third node before anything was seen: not ours to judge yet */
	f = (struct mig_follow){ .from = "n1", .to = "n2", .migrations_before = 2 };
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_WAIT);
	g = look("error", "", 2);
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_ENDED);
	g = look("stopped", "", 2);
	assert_int_equal(mig_verdict(&f, &g, &why), MIG_ENDED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_migration_that_completes),
		cmocka_unit_test(running_on_the_target_is_arrival_even_with_a_stale_failed_record),
		cmocka_unit_test(a_migration_over_between_two_looks_is_reported_with_its_reason),
		cmocka_unit_test(a_failed_record_of_ours_says_why),
		cmocka_unit_test(a_party_died_or_the_guest_ended),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
