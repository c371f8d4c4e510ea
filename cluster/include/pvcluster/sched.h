/*
 * The scheduler: where guests go. Placement of guests that want to run,
 * recovery of a fenced node's guests, evacuation of a draining node, and the
 * rebalance planner — all pure functions of a view of the cluster, so that
 * the leader's decision can be recomputed and checked by any agent and driven
 * by unit tests. docs/scheduler.md states the rules and the imbalance score.
 *
 * Who calls it: the leader's pvhad, the CLI (`pvha cluster rebalance
 * --dry-run`), tests and the planner benchmark. No I/O, no global state; the
 * functions allocate working memory with malloc and free it before they
 * return. Any thread may call them.
 *
 * Determinism: the result depends on the contents of the inputs, never on the
 * order of the arrays: nodes are taken by id, guests by (priority, uuid),
 * and every tie has a stated winner. Utilisations are doubles computed in a
 * fixed order from integer sums (the build turns floating-point contraction
 * off), so every agent gets the same bits.
 */
#ifndef PVCLUSTER_SCHED_H
#define PVCLUSTER_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PVCLUS_NODE_NAME_MAX 63
#define PVCLUS_GUEST_RULES_MAX 4

/* One node as the cluster sees it. Every node that a guest names must be in
 * the view, offline ones too. */
struct pvclus_node {
	uint32_t id;          /* Corosync node id, non-zero, unique in the view */
	char name[PVCLUS_NODE_NAME_MAX + 1];
	bool online;          /* a member of this quorate partition */
	bool fenced;          /* fence confirmed, not yet back */
	bool maintenance;     /* draining or in maintenance: nothing new goes there */
	uint64_t mem_total;   /* bytes guests may use; > 0 */
	uint64_t mem_used;    /* bytes in use: its guests and what they are promised */
	uint32_t cpu_total;   /* vCPUs (or any unit, the same for guests); > 0 */
	uint32_t cpu_used;
};

enum pvclus_rule_kind {
	PVCLUS_RULE_AFFINITY = 1,      /* its guests run on one node */
	PVCLUS_RULE_ANTI_AFFINITY = 2, /* no two of its guests run on one node */
};

/* A placement rule. Its members are the guests that name its id. hard: never
 * broken (a guest that cannot keep it is not placed); soft: kept when it can
 * be, and never made worse by the rebalancer. */
struct pvclus_rule {
	uint32_t id; /* non-zero, unique */
	enum pvclus_rule_kind kind;
	bool hard;
};

struct pvclus_view {
	const struct pvclus_node *nodes;
	size_t n_nodes;
	const struct pvclus_rule *rules; /* may be NULL when n_rules is 0 */
	size_t n_rules;
};

/* A guest as the scheduler sees it. Pass the guests that run (node != 0:
 * their rules bind, and the rebalancer may move them) and those to place
 * (node == 0); leave out the stopped ones. A running guest's memory and CPU
 * are already in its node's mem_used and cpu_used. */
struct pvclus_sched_guest {
	uint8_t uuid[16];  /* unique in the call */
	uint64_t mem;      /* bytes, > 0 */
	uint32_t cpu;      /* in the nodes' cpu unit */
	int32_t priority;  /* higher is placed first */
	uint32_t node;     /* where it runs now; 0: nowhere */
	uint32_t avoid;    /* a node to use only if no other fits (its last start failed there); 0: none */
	bool pinned;       /* never moved by the rebalancer */
	uint32_t rules[PVCLUS_GUEST_RULES_MAX]; /* ids of its rules; 0: unused slot */
};

enum pvclus_sched_reason {
	PVCLUS_SCHED_OK = 0,
	PVCLUS_SCHED_NO_NODE,       /* no node is online, unfenced and out of maintenance */
	PVCLUS_SCHED_NO_MEMORY,     /* no eligible node has the free memory */
	PVCLUS_SCHED_ANTI_AFFINITY, /* the nodes with the memory each hold a member of a hard anti-affinity rule */
	PVCLUS_SCHED_AFFINITY,      /* the node(s) of a hard affinity rule are not eligible or lack the memory */
	PVCLUS_SCHED_REASON_COUNT
};

/* One decision. node == 0 means unplaceable, and reason says why. */
struct pvclus_placement {
	uint8_t uuid[16];
	size_t index;      /* the guest's position in the input array */
	uint32_t node;
	enum pvclus_sched_reason reason;
};

/*
 * Places every guest with node == 0, highest priority first, ties by uuid
 * (bytewise). A node is eligible when online, not fenced, not in maintenance
 * and its free memory (mem_total - mem_used - what this call already placed
 * there) holds the guest; hard rules filter the eligible nodes; among those
 * left the winner has the fewest soft-rule conflicts, then is not the guest's
 * `avoid` node, then has the most free memory, then the lowest id. CPU is
 * not a constraint (vCPUs are overcommitted); it only counts for the
 * rebalancer.
 *
 * out must hold n entries; *n_out gets the number written, one per guest to
 * place, in decision order — unplaceable ones included, with their reason.
 * Returns 0, -EINVAL (bad view or guest: a zero or duplicate id or uuid, a
 * zero capacity or memory, a guest on an unknown node, an unknown rule) or
 * -ENOMEM. O(G log G + G*N + R log R) for G guests, N nodes, R rules.
 */
int pvclus_sched_place(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
		       size_t n, struct pvclus_placement *out, size_t *n_out);

/*
 * Failover: places the guests of `fenced_node` (those whose node is it) on
 * the other nodes, by the rules of pvclus_sched_place(); guests with node ==
 * 0 are left alone. The node must be marked fenced in the view: guests are
 * never recovered from a node whose fence is not confirmed (-EINVAL).
 * Same results, cost and errors as pvclus_sched_place().
 */
int pvclus_sched_recovery(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
			  size_t n, uint32_t fenced_node, struct pvclus_placement *out,
			  size_t *n_out);

/*
 * Drain: chooses a migration target for each guest of `node`, which must be
 * in maintenance (-EINVAL otherwise), by the rules of pvclus_sched_place().
 * Same results, cost and errors.
 */
int pvclus_sched_evacuate(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
			  size_t n, uint32_t node, struct pvclus_placement *out, size_t *n_out);

/*
 * The imbalance of a view, over its balanced nodes (online, not fenced, not
 * in maintenance): for each resource, the largest distance of a node's
 * utilisation (used / total) from the cluster's (sum used / sum total), as a
 * fraction (0.10 = 10 percentage points); score = the larger of the two.
 * Fewer than two balanced nodes: all zero.
 */
struct pvclus_imbalance {
	double mem;
	double cpu;
	double score;
};

/* Returns 0 or -EINVAL (a bad view). O(N). */
int pvclus_imbalance(const struct pvclus_view *v, struct pvclus_imbalance *out);

struct pvclus_rebalance_params {
	double threshold; /* plan only when the score is above it (> 0) */
	double target;    /* then move until the score is at or below it; 0: threshold */
	double min_gain;  /* a move must lower the summed distance from the mean of the
			   * two nodes it touches (both resources) by at least this (>= 0) */
	size_t max_moves; /* capacity of the moves array */
};

struct pvclus_move {
	uint8_t uuid[16];
	size_t index;  /* the guest's position in the input array */
	uint32_t from;
	uint32_t to;
	double gain;   /* as in min_gain */
};

struct pvclus_rebalance_result {
	struct pvclus_imbalance before;
	struct pvclus_imbalance after; /* once every move is made */
	size_t n_moves;
	bool balanced; /* after.score <= the goal (target, or threshold when no plan was needed) */
};

/*
 * Plans live migrations that bring the score at or below the goal with as
 * few moves as a greedy search finds: each move takes the node farthest from
 * the mean (either resource) and pairs it with the nodes on the other side of
 * the mean, the farthest first, moving the one guest with the largest gain
 * that also brings that node closer to the mean; when none does, it stops
 * (no move could lower the score). Hysteresis: nothing is planned while the
 * score is at or below threshold; a move gaining less than min_gain is never
 * planned; a guest moves at most once per plan (so never back where it came
 * from). Only guests on balanced nodes move, never a pinned one or a member
 * of a hard affinity rule with other running members; targets are balanced
 * nodes with the free memory; hard anti-affinity is never broken and soft
 * rules never get worse.
 *
 * moves must hold p->max_moves entries; res gets the scores and the count.
 * Returns 0 (also when the goal is out of reach: then res->balanced is
 * false), -EINVAL (bad view, guests or params; also when a node's guests use
 * more than its mem_used or cpu_used) or -ENOMEM.
 * Cost: O(G log G + R log R + N*R) to set up, then per move O(N^2) to order
 * the partners plus a scan of the source's guests that stops once no guest
 * left can beat the best (usually a few dozen); 10,000 guests on 32 nodes
 * take about 9 ms (tests/bench/bench_planner.c, goal 50 ms).
 */
int pvclus_rebalance_plan(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
			  size_t n, const struct pvclus_rebalance_params *p,
			  struct pvclus_move *moves, struct pvclus_rebalance_result *res);

/* "no eligible node has the free memory", ...; "?" when out of range. */
const char *pvclus_sched_reason_str(enum pvclus_sched_reason r);

#endif
