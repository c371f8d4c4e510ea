/*
 * Random clusters and fault schedules. The faults end by
 * SIM_RANDOM_FAULTS_END with every node powered, linked, its agent running
 * and the storage up, so that the liveness check afterwards judges the
 * cluster's recovery, not a fault that is still there.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "random.h"

struct gen {
	uint64_t s;
	char *buf;
	size_t len, cap;
};

static uint64_t rnd(struct gen *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static unsigned pick(struct gen *g, unsigned n)
{
	return (unsigned)(rnd(g) % n);
}

static void put(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(g->buf + g->len, g->cap - g->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < g->cap - g->len) {
			g->len += (size_t)n;
			return;
		}
		g->cap = g->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
		char *nb = realloc(g->buf, g->cap);
		if (!nb)
			abort();
		g->buf = nb;
	}
}

int sim_random_scenario(uint64_t seed, char **text)
{
	struct gen g = { .s = seed * 0x2545f4914f6cdd1dull + 1 };
	g.cap = 4096;
	g.buf = malloc(g.cap);
	if (!g.buf)
		return -ENOMEM;
	g.buf[0] = '\0';
	unsigned nn = 2 + pick(&g, 7);
	bool two_node = nn == 2;
	put(&g, "# random scenario, seed %llu\n", (unsigned long long)seed);
	put(&g, "set seed %llu\nset liveness %u\n", (unsigned long long)seed + 1, SIM_RANDOM_LIVENESS_MS);
	unsigned order = pick(&g, 3);
	if (order == 1)
		put(&g, "set cs-order members-first\n");
	else if (order == 2)
		put(&g, "set cs-gap %u\n", 5 + pick(&g, 50));
	if (two_node)
		put(&g, "set two-node on\n");
	if (pick(&g, 3) == 0)
		put(&g, "set fence power\nset fence-timeout 5\n");
	for (unsigned i = 0; i < nn; i++)
		put(&g, "node n%u mem=%uM cpus=8\n", i + 1, 1024u * (2 + pick(&g, 3)));
	/* guests: memory that fits on the nodes left when one is down */
	unsigned ng = 1 + pick(&g, 3 * nn);
	if (ng > 24)
		ng = 24;
	unsigned anti_groups = 1 + pick(&g, 2), members[3] = { 0 };
	for (unsigned i = 0; i < ng; i++) {
		put(&g, "guest g%u mem=%uM prio=%u", i + 1, 64u << pick(&g, 3), pick(&g, 3) * 10);
		if (i == 0) /* g1's heartbeat is watched (no pick: the other seeds' draws stay as they were) */
			put(&g, " hb=3");
		unsigned r = pick(&g, 10);
		if (r < 2) {
			unsigned grp = pick(&g, anti_groups);
			/* hard anti-affinity: never more members than nodes minus one */
			if (members[grp] + 1 < nn) {
				members[grp]++;
				put(&g, " anti=spread%u", grp);
			}
		} else if (r < 4) {
			put(&g, " soft-anti=apart");
		} else if (r == 4) {
			put(&g, " soft-aff=together");
		}
		if (i > 0 && pick(&g, 6) == 0)
			put(&g, " dep=g%u", 1 + pick(&g, i));
		put(&g, "\n");
	}
	/* faults from 12 s on (the cold start settles first) */
	unsigned nf = 1 + pick(&g, 6);
	uint64_t t = 12000;
	bool down[8] = { false };
	for (unsigned f = 0; f < nf && t < SIM_RANDOM_FAULTS_END - 8000; f++) {
		unsigned n = 1 + pick(&g, nn);
		unsigned gi = 1 + pick(&g, ng);
		switch (pick(&g, 15)) {
		case 0:
		case 1:
			if (!down[n - 1]) {
				put(&g, "at %llu power-off n%u\n", (unsigned long long)t, n);
				down[n - 1] = true;
			}
			break;
		case 2:
			put(&g, "at %llu reboot n%u\n", (unsigned long long)t, n);
			break;
		case 3:
			put(&g, "at %llu isolate n%u\n", (unsigned long long)t, n);
			put(&g, "at %llu heal\n", (unsigned long long)(t + 1000 + pick(&g, 6000)));
			break;
		case 4:
			put(&g, "at %llu agent-restart n%u\n", (unsigned long long)t, n);
			break;
		case 5:
			put(&g, "at %llu vmm-kill g%u\n", (unsigned long long)t, gi);
			break;
		case 6:
			put(&g, "at %llu guest-migrate g%u n%u\n", (unsigned long long)t, gi, n);
			break;
		case 7:
			put(&g, "at %llu freeze n%u\n", (unsigned long long)t, n);
			put(&g, "at %llu resume n%u\n", (unsigned long long)(t + 200 + pick(&g, 3000)), n);
			break;
		case 8:
			put(&g, "at %llu storage-down\n", (unsigned long long)t);
			put(&g, "at %llu storage-up\n", (unsigned long long)(t + 500 + pick(&g, 4000)));
			break;
		case 9:
			put(&g, "at %llu node-drain n%u force\n", (unsigned long long)t, n);
			put(&g, "at %llu node-resume n%u\n", (unsigned long long)(t + 3000 + pick(&g, 5000)), n);
			break;
		case 12:
			/* slow monitors: a fence's blocklist may time out and land later */
			put(&g, "at %llu mon-delay %u\n", (unsigned long long)t, 2000 + pick(&g, 14000));
			put(&g, "at %llu mon-delay 0\n", (unsigned long long)(t + 2000 + pick(&g, 6000)));
			break;
		case 13:
			put(&g, "at %llu storage-cut n%u\n", (unsigned long long)t, n);
			put(&g, "at %llu storage-uncut n%u\n", (unsigned long long)(t + 500 + pick(&g, 5000)), n);
			break;
		case 14:
			put(&g, "at %llu fence-mode %s\n", (unsigned long long)t, pick(&g, 2) ? "fail" : "hang");
			put(&g, "at %llu fence-mode ok\n", (unsigned long long)(t + 1000 + pick(&g, 6000)));
			break;
		case 10:
			if (nn == 2) {
				put(&g, "at %llu partition n1 | n2\n", (unsigned long long)t);
				put(&g, "at %llu heal\n", (unsigned long long)(t + 1000 + pick(&g, 6000)));
			} else {
				unsigned cut = 1 + pick(&g, nn - 1);
				put(&g, "at %llu partition", (unsigned long long)t);
				for (unsigned i = 1; i <= nn; i++)
					put(&g, "%s n%u", i == cut + 1 ? " |" : "", i);
				put(&g, "\nat %llu heal\n", (unsigned long long)(t + 1000 + pick(&g, 6000)));
			}
			break;
		default:
			/* half of g1's crashes are hangs instead: its heartbeat stops
			 * (decided by the time, not a pick, as above) */
			if (gi == 1 && t % 2)
				put(&g, "at %llu heartbeat-stop g1\n", (unsigned long long)t);
			else
				put(&g, "at %llu vmm-crash g%u\n", (unsigned long long)t, gi);
			break;
		}
		t += 500 + pick(&g, 5000);
	}
	/* one seed in three: g1 hangs in the middle of it all (its heartbeat
	 * stops; no pick, so the schedules above stay as they were) */
	if (seed % 3 == 0)
		put(&g, "at %llu heartbeat-stop g1\n", (unsigned long long)(12000 + (seed * 7919) % (t - 11000)));
	/* everything back (a power fence leaves its node off, as the lab's
	 * fence_pvha_lab does: the operator boots every node) */
	for (unsigned i = 0; i < nn; i++)
		if (down[i])
			put(&g, "at %llu power-on n%u\n", (unsigned long long)t, i + 1);
	for (unsigned i = 0; i < nn; i++)
		put(&g, "at %u power-on n%u\n", SIM_RANDOM_FAULTS_END, i + 1);
	put(&g, "at %u heal\n", SIM_RANDOM_FAULTS_END);
	put(&g, "end %u\n", SIM_RANDOM_FAULTS_END);
	*text = g.buf;
	return 0;
}
