/*
 * What `pvha guest migrate` (and drain, roll) concludes from one look at a
 * guest while it follows a migration from `from` to `to` (pure; unit-tested
 * in tests/unit/test_mig_verdict.c). The CLI polls GUEST_SHOW; a migration
 * may start and end between two looks (a target that refuses at once, a
 * source that dies: campaign failures 6 and 9), which the guest's
 * `migrations` counter and `last_step` tell.
 */
#ifndef PVHA_MIG_VERDICT_H
#define PVHA_MIG_VERDICT_H

#include <stdbool.h>
#include <stdint.h>

/* One look at the guest (GuestInfo; strings never NULL). */
struct mig_look {
	const char *state, *owner, *last_step;
	uint32_t migrations;        /* migrations the cluster began for it so far */
	bool has_migration;         /* GuestInfo.migration present: */
	const char *source, *target, *phase, *error;
};

/* What the CLI follows, and what it has seen so far. */
struct mig_follow {
	const char *from, *to;
	uint32_t migrations_before; /* the counter before the request */
	bool seen_migrating;        /* set by mig_verdict */
};

enum mig_verdict {
	MIG_WAIT = 0,            /* under way or not begun yet: look again */
	MIG_ARRIVED,             /* it runs on `to` */
	MIG_FAILED,              /* it runs on `from` again, or the migration failed: *why says why */
	MIG_RECOVERED_ELSEWHERE, /* a party died: it was recovered on a third node */
	MIG_ENDED,               /* stopped or in error: the state and its reason say why */
};

/* Whether the look's migration record is the one followed. */
bool mig_look_ours(const struct mig_follow *f, const struct mig_look *g);

/* Judges one look; *why (for MIG_FAILED) points into g or a constant. */
enum mig_verdict mig_verdict(struct mig_follow *f, const struct mig_look *g, const char **why);

#endif
