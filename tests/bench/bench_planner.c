/*
 * Rebalance planner time: 10,000 guests (256 MiB to 4 GiB, 1 to 4 vCPUs) on
 * 32 nodes of 1 TiB and 1024 vCPUs, placed on 24 of them, the last 8 just
 * added and empty — the cluster of the unit test
 * ten_thousand_guests_on_32_nodes_are_planned. Threshold 10 points, target
 * 5, minimum gain 0.1 point. Median of RUNS plans of the same input; also
 * the number of moves, and the same for a far harder start: every guest on 8
 * nodes (twice their memory, a worst case rather than a real cluster). Pure
 * CPU work: no cluster, no build files needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "pvcluster/sched.h"

#define RUNS 21
#define NN 32
#define NG 10000

static struct pvclus_node nodes[NN];
static struct pvclus_sched_guest guests[NG];
static struct pvclus_move moves[NG];

static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

/* Guests on nodes 1..loaded, their memory and CPU summed into the nodes. */
static void build(uint32_t loaded)
{
	uint64_t r = 2026;
	memset(nodes, 0, sizeof(nodes));
	for (uint32_t i = 0; i < NN; i++) {
		nodes[i].id = i + 1;
		snprintf(nodes[i].name, sizeof(nodes[i].name), "n%u", i + 1);
		nodes[i].online = true;
		nodes[i].mem_total = 1024ull << 30;
		nodes[i].cpu_total = 1024;
	}
	for (uint32_t i = 0; i < NG; i++) {
		struct pvclus_sched_guest *g = &guests[i];
		uint32_t k = i * 2654435761u;
		memset(g, 0, sizeof(*g));
		g->uuid[12] = (uint8_t)(k >> 24);
		g->uuid[13] = (uint8_t)(k >> 16);
		g->uuid[14] = (uint8_t)(k >> 8);
		g->uuid[15] = (uint8_t)k;
		g->mem = (256ull << 20) << (rng(&r) % 5);
		g->cpu = 1u << (rng(&r) % 3);
		g->node = 1 + (uint32_t)(rng(&r) % 24) % loaded;
		nodes[g->node - 1].mem_used += g->mem;
		nodes[g->node - 1].cpu_used += g->cpu;
	}
}

static int run(const char *name, uint32_t loaded)
{
	struct pvclus_view v = { nodes, NN, NULL, 0 };
	struct pvclus_rebalance_params p = { .threshold = 0.10, .target = 0.05,
					     .min_gain = 0.001, .max_moves = NG };
	struct pvclus_rebalance_result res;
	double ms[RUNS];
	char fig[128];

	build(loaded);
	for (int i = 0; i < RUNS; i++) {
		uint64_t t0 = bench_now_ns();
		int rc = pvclus_rebalance_plan(&v, guests, NG, &p, moves, &res);
		uint64_t t1 = bench_now_ns();
		if (rc < 0) {
			fprintf(stderr, "bench_planner: %s: plan failed: %d\n", name, rc);
			return 1;
		}
		ms[i] = (double)(t1 - t0) / 1e6;
	}
	fprintf(stderr, "bench_planner: %s: score %.3f -> %.3f in %zu moves%s\n", name,
		res.before.score, res.after.score, res.n_moves, res.balanced ? "" : " (goal missed)");
	snprintf(fig, sizeof(fig), "%s_ms", name);
	bench_figure(fig, bench_median(ms, RUNS), "ms");
	snprintf(fig, sizeof(fig), "%s_moves", name);
	bench_figure(fig, (double)res.n_moves, "moves");
	return 0;
}

int main(void)
{
	if (run("planner_10k_guests_32_nodes", 24))
		return 1;
	return run("planner_10k_guests_32_nodes_all_on_8", 8);
}
