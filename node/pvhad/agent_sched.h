/*
 * The leader's placement decisions in pvhad (docs/placement.md): builds the
 * scheduler's view of the cluster (cluster/sched.h: nodes with their
 * capacity, fences and maintenance; placement rules derived from the guests'
 * specs; every running or placed guest with its rules) from the agent's
 * state, places the guests that wait for a node — all of them in one call,
 * so that the scheduler's priority order and its memory and rule accounting
 * hold across guests recovered together — and turns the answers into HA
 * events (PLACED, UNPLACEABLE). A guest whose start dependencies are not all
 * running is not placed: it waits, with one "waiting" event, and is placed
 * when the last of them runs.
 *
 * Private to pvhad; one qb_loop thread calls it. Leader-only work checks
 * agent_leads() itself.
 */
#ifndef PVHA_AGENT_SCHED_H
#define PVHA_AGENT_SCHED_H

#include <stdbool.h>
#include <stddef.h>

#include "agent_guests.h"
#include "placement.h"
#include "proto/api.pb-c.h"
#include "pvcluster/sched.h"

#define AGENT_VIEW_RULES_MAX (MAX_GUESTS * PVCLUS_GUEST_RULES_MAX)

/*
 * The scheduler's view of the cluster as this agent sees it. view points
 * into the struct itself: fill it in place (agent_sched_view) and do not
 * copy or move it afterwards. About 1 MiB: keep it static or on the heap,
 * never on the stack.
 */
struct agent_view {
	struct pvclus_view view;       /* what pvclus_sched_* take: nodes and rules below */
	struct pvclus_node nodes[PVCLUS_MAX_NODES];
	struct pvclus_rule rules[AGENT_VIEW_RULES_MAX];
	struct placement_rule_def defs[AGENT_VIEW_RULES_MAX]; /* rules[i] is defs[i] (id i + 1) */
	/* guests[i] is the table entry of[i]; n_guests of them. */
	struct pvclus_sched_guest guests[MAX_GUESTS];
	struct guest *of[MAX_GUESTS];
	size_t n_guests;
};

/*
 * Fills *out from the agent's state:
 *  - nodes: every configured node by Corosync id; online = an agent member
 *    that said hello and reaches the storage, fenced = fence confirmed and
 *    not lifted, maintenance = draining or in maintenance; capacity from its
 *    hello (1 byte / 1 CPU when unknown: such a node is offline anyway);
 *    mem_used and cpu_used = the guests below plus every migration target's
 *    incoming guest (1 CPU per guest);
 *  - rules: derived from the specs of every guest in the table
 *    (placement_rules_derive: distinct (anti, group) pairs, sorted, ids
 *    1..N; hard unless every member says soft);
 *  - guests: every guest that runs or is placed (its HA owner; a migrating
 *    guest at its source), plus those this leader placed whose PLACED is
 *    not yet delivered, each with node set, its rules, memory, 1 CPU, its
 *    priority and avoid node; pinned false. Unplaced guests are not in it:
 *    add the ones to place with agent_sched_view_add().
 * Returns 0, or -ENOSPC / -ENOMEM (rule derivation; cannot happen with the
 * table's limits). O(G log G + N) for G guests, N nodes.
 */
int agent_sched_view(struct agent *a, struct agent_view *out);

/*
 * Appends g to v->guests with node 0 (to be placed), its rules resolved
 * against v's rules. Returns its index, or -EINVAL (its spec is not loaded:
 * it cannot be placed yet), -EEXIST (already in the view) or -ENOSPC. O(G).
 */
int agent_sched_view_add(struct agent *a, struct agent_view *v, struct guest *g);

/* PLACE action (leader): target waits for a node. Placement runs once the
 * current CPG dispatch is done, for every guest waiting then, in one
 * scheduler call; the outcome is multicast (PLACED, or UNPLACEABLE with the
 * scheduler's reason). */
void agent_place(struct agent *a, struct guest *target);

/* Starts the leader's retry timer (every 2 s: guests still waiting for a node
 * or a dependency are tried again, so that a node joining or a dependency
 * coming up or being stopped places them). Call once, from guests_init. */
void agent_sched_init(struct agent *a);

/* Every agent, before g->ha becomes next (the step of ev): keeps the
 * scheduler's last reason for the guest's `waiting` info, and on the leader
 * places the guests waiting for g when g starts running or stops being
 * wanted. O(1); the placement runs after the current dispatch. */
void agent_sched_on_step(struct agent *a, struct guest *g, const struct pvclus_ha_guest *next,
			 const struct pvclus_ha_event *ev);

/* Adds rules, dependencies and `waiting` to a guest's info (its pointers stay
 * valid until the next call for the same table entry). */
void agent_sched_fill_info(struct agent *a, const struct guest *g, Pvha__GuestInfo *gi);

/*
 * Sets spec's rules (with_rules) and dependencies (with_deps) from the API
 * (GuestSpecIn, GuestSetIn): at most 4 rules, each group a valid name, no
 * (group, anti) pair twice; at most 8 dependencies, each a tabled guest (name
 * or uuid), not spec itself, none twice, and no cycle through spec. Then the
 * whole spec must pass pvstore_guest_check. Returns 0, or -EINVAL / -ENOENT /
 * -ELOOP with a message in msg naming what was wrong (spec may then be half
 * changed). O(G log G) for G tabled guests (the cycle check).
 */
int agent_sched_spec_from_api(struct agent *a, struct pvstore_guest *spec, bool with_rules,
			      Pvha__GuestRule *const *rules, size_t n_rules, bool with_deps,
			      char *const *deps, size_t n_deps, char *msg, size_t msglen);

/*
 * GUEST_SET: changes g's priority, rules or dependencies in its spec by
 * compare-and-set (re-read and retried on a race), then has every agent
 * reload it (GuestAdd). A running guest is not moved; the new rules bind its
 * next placement. Returns 0 or -errno with a message in msg.
 */
int agent_sched_guest_set(struct agent *a, struct guest *g, const Pvha__GuestSetIn *in, char *msg,
			  size_t msglen);

#endif
