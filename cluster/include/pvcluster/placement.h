/*
 * Placement rules and start dependencies of guests as the scheduler needs
 * them (docs/placement.md): the scheduler's rules derived from the guests'
 * specs, the ids of one guest's rules, whether a dependency holds a guest
 * back, and the dependency cycle check. Pure functions of their arguments
 * (no I/O, no global state, no allocation beyond what they free before
 * returning), so that every agent derives the same rule ids from the same
 * specs, and the unit tests (tests/unit/test_placement.c) drive them alone.
 *
 * Who calls it: pvhad's agent_sched.c (the scheduler's view) and the API
 * code that checks a new guest's dependencies; any thread.
 */
#ifndef PVHA_PLACEMENT_H
#define PVHA_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvcluster/ha.h"
#include "pvcluster/sched.h"
#include "pvstore/pvstore.h"

/* One scheduler rule: a distinct (anti, group) pair over the specs. */
struct placement_rule_def {
	char group[PVSTORE_NAME_MAX + 1];
	bool anti;
	bool hard;        /* false only when every member says soft */
	uint32_t members; /* specs that name it */
	uint32_t id;      /* its position in the sorted list, from 1 */
};

/*
 * Derives the scheduler's rules from n specs (NULL entries are skipped): the
 * distinct (anti, group) pairs sorted by anti (affinity first) then group
 * (bytewise), numbered 1..N in that order, so that the same specs give the
 * same ids whatever their order; a rule is hard unless every spec naming it
 * says soft. defs must hold max entries. Returns N, or -ENOSPC (more than
 * max pairs), -EINVAL (a spec with more than PVSTORE_GUEST_RULES_MAX rules)
 * or -ENOMEM. O(S*k log(S*k)) for S specs of k <= 4 rules.
 */
int placement_rules_derive(const struct pvstore_guest *const *specs, size_t n,
			   struct placement_rule_def *defs, size_t max);

/* The scheduler's rule for each of n defs: id, kind, hard. O(n). */
void placement_rules_to_sched(const struct placement_rule_def *defs, size_t n,
			      struct pvclus_rule *out);

/*
 * The ids of spec's rules in defs (as placement_rules_derive left them),
 * in spec order, 0 in the unused slots. Returns 0, or -ENOENT when a rule of
 * spec is not in defs (defs were derived without it). O(k log n).
 */
int placement_rule_ids(const struct placement_rule_def *defs, size_t n,
		       const struct pvstore_guest *spec, uint32_t ids[PVCLUS_GUEST_RULES_MAX]);

/*
 * Whether a guest that depends on the guest with this HA record must wait
 * for it: true while the dependency wants to run and does not run yet
 * (starting, recovering, fence-wait, stopping to be placed again). A running
 * or migrating dependency holds nothing back, and neither does one that is
 * not wanted running (stopped, error): dependencies order starts, they do
 * not start anything (docs/placement.md). O(1).
 */
bool placement_dep_blocks(const struct pvclus_ha_guest *dep);

/*
 * Whether spec's dependencies, with those of the n other specs (NULL entries
 * and an entry with spec's uuid are skipped: spec replaces it), form a cycle
 * through spec. Dependencies on guests not among the specs end there.
 * Returns 0, -ELOOP (a cycle; *via, when not NULL, gets the uuid of spec's
 * dependency that leads back to it) or -ENOMEM. O(S log S + S*d) for S specs
 * of d <= 8 dependencies.
 */
int placement_deps_cycle(const struct pvstore_guest *const *specs, size_t n,
			 const struct pvstore_guest *spec, uint8_t via[16]);

#endif
