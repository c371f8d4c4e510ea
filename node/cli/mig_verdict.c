/* The CLI's verdict on one look at a migrating guest (mig_verdict.h). */
#include <string.h>

#include "mig_verdict.h"

static bool is(const char *a, const char *b)
{
	return !strcmp(a, b);
}

bool mig_look_ours(const struct mig_follow *f, const struct mig_look *g)
{
	return g->has_migration && is(g->target, f->to) && is(g->source, f->from);
}

enum mig_verdict mig_verdict(struct mig_follow *f, const struct mig_look *g, const char **why)
{
	bool ours = mig_look_ours(f, g);
	bool running = is(g->state, "running");
	*why = NULL;
	/* under way (or a party left while it was), or begun and over between
	 * two looks (a target that refused at once: campaign failure 9) */
	if (is(g->state, "migrating") || is(g->state, "fence-wait") || is(g->state, "recovering") ||
	    g->migrations > f->migrations_before)
		f->seen_migrating = true;
	if (running && is(g->owner, f->to))
		return MIG_ARRIVED;
	if ((running && is(g->owner, f->from) && f->seen_migrating) ||
	    (ours && is(g->phase, "failed") && !is(g->state, "migrating"))) {
		*why = ours && g->error[0] ? g->error
			: g->last_step[0] ? g->last_step : "the migration was abandoned";
		return MIG_FAILED;
	}
	if (f->seen_migrating && running && !is(g->owner, f->from))
		return MIG_RECOVERED_ELSEWHERE;
	if (is(g->state, "error") || is(g->state, "stopped"))
		return MIG_ENDED;
	return MIG_WAIT;
}
