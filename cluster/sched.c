/*
 * The scheduler (see pvcluster/sched.h and docs/scheduler.md).
 *
 * Everything starts from struct sched: the view's nodes and rules sorted by
 * id (a node or rule is then named by its position, so walking the arrays is
 * walking ids in order), each guest's node and rules resolved to positions,
 * and the rule/node member counts that the affinity rules are checked
 * against in O(1).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pvcluster/sched.h"

#define NONE UINT32_MAX

struct key {
	uint8_t uuid[16];
	double size; /* rebalance: the guest's size, see struct planner */
	int32_t prio;
	uint32_t idx;
};

struct idkey {
	uint32_t id;
	uint32_t idx;
};

struct sched {
	const struct pvclus_sched_guest *g;
	size_t ng, nn, nr;
	const struct pvclus_node **node; /* by id */
	const struct pvclus_rule **rule; /* by id */
	uint32_t *gnode;  /* per guest: node position, NONE: runs nowhere */
	uint32_t *grule;  /* per guest, PVCLUS_GUEST_RULES_MAX slots: rule position or NONE */
	uint32_t *cnt;    /* rule r, node n at [r * nn + n]: members running there */
	uint32_t *rtotal; /* per rule: members running anywhere */
	struct key *by_uuid;
};

static int cmp_idkey(const void *a, const void *b)
{
	const struct idkey *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int cmp_uuid(const void *a, const void *b)
{
	return memcmp(((const struct key *)a)->uuid, ((const struct key *)b)->uuid, 16);
}

/* Placement order: higher priority first, then uuid. */
static int cmp_prio(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->prio != y->prio)
		return x->prio > y->prio ? -1 : 1;
	return memcmp(x->uuid, y->uuid, 16);
}

/* Position of id in the sorted keys, or NONE. O(log n). */
static uint32_t find_id(const struct idkey *keys, size_t n, uint32_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (keys[mid].id == id)
			return (uint32_t)mid;
		if (keys[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NONE;
}

static void sched_fini(struct sched *s)
{
	free(s->node);
	free(s->rule);
	free(s->gnode);
	free(s->grule);
	free(s->cnt);
	free(s->rtotal);
	free(s->by_uuid);
	memset(s, 0, sizeof(*s));
}

static uint32_t node_pos(const struct sched *s, uint32_t id)
{
	size_t lo = 0, hi = s->nn;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->node[mid]->id == id)
			return (uint32_t)mid;
		if (s->node[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NONE;
}

/* Checks the view and the guests and builds the indexes. 0, -EINVAL or
 * -ENOMEM; on failure nothing stays allocated. O(G log G + N log N + R log R
 * + R*N). */
static int sched_init(struct sched *s, const struct pvclus_view *v,
		      const struct pvclus_sched_guest *g, size_t n)
{
	struct idkey *nk = NULL, *rk = NULL;
	int rc = -ENOMEM;

	memset(s, 0, sizeof(*s));
	if (!v || (v->n_nodes && !v->nodes) || (v->n_rules && !v->rules) || (n && !g))
		return -EINVAL;
	if (v->n_nodes >= NONE || v->n_rules >= NONE || n >= NONE ||
	    v->n_rules > SIZE_MAX / (v->n_nodes + 1) / sizeof(uint32_t))
		return -EINVAL;
	s->g = g;
	s->ng = n;
	s->nn = v->n_nodes;
	s->nr = v->n_rules;

	nk = calloc(s->nn + 1, sizeof(*nk));
	rk = calloc(s->nr + 1, sizeof(*rk));
	s->node = calloc(s->nn + 1, sizeof(*s->node));
	s->rule = calloc(s->nr + 1, sizeof(*s->rule));
	s->gnode = calloc(n + 1, sizeof(*s->gnode));
	s->grule = calloc(n * PVCLUS_GUEST_RULES_MAX + 1, sizeof(*s->grule));
	s->cnt = calloc(s->nr * s->nn + 1, sizeof(*s->cnt));
	s->rtotal = calloc(s->nr + 1, sizeof(*s->rtotal));
	s->by_uuid = calloc(n + 1, sizeof(*s->by_uuid));
	if (!nk || !rk || !s->node || !s->rule || !s->gnode || !s->grule || !s->cnt ||
	    !s->rtotal || !s->by_uuid)
		goto err_free;

	rc = -EINVAL;
	for (size_t i = 0; i < s->nn; i++) {
		const struct pvclus_node *nd = &v->nodes[i];
		if (!nd->id || !nd->mem_total || !nd->cpu_total)
			goto err_free;
		nk[i] = (struct idkey){ .id = nd->id, .idx = (uint32_t)i };
	}
	qsort(nk, s->nn, sizeof(*nk), cmp_idkey);
	for (size_t i = 0; i < s->nn; i++) {
		if (i && nk[i].id == nk[i - 1].id)
			goto err_free;
		s->node[i] = &v->nodes[nk[i].idx];
	}

	for (size_t i = 0; i < s->nr; i++) {
		const struct pvclus_rule *r = &v->rules[i];
		if (!r->id || (r->kind != PVCLUS_RULE_AFFINITY && r->kind != PVCLUS_RULE_ANTI_AFFINITY))
			goto err_free;
		rk[i] = (struct idkey){ .id = r->id, .idx = (uint32_t)i };
	}
	qsort(rk, s->nr, sizeof(*rk), cmp_idkey);
	for (size_t i = 0; i < s->nr; i++) {
		if (i && rk[i].id == rk[i - 1].id)
			goto err_free;
		s->rule[i] = &v->rules[rk[i].idx];
	}

	for (size_t i = 0; i < n; i++) {
		uint32_t *gr = &s->grule[i * PVCLUS_GUEST_RULES_MAX];
		if (!g[i].mem)
			goto err_free;
		s->gnode[i] = NONE;
		if (g[i].node && (s->gnode[i] = find_id(nk, s->nn, g[i].node)) == NONE)
			goto err_free;
		for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++) {
			gr[k] = NONE;
			if (!g[i].rules[k])
				continue;
			if ((gr[k] = find_id(rk, s->nr, g[i].rules[k])) == NONE)
				goto err_free;
			for (int j = 0; j < k; j++)
				if (gr[j] == gr[k])
					goto err_free; /* a rule named twice */
		}
		if (s->gnode[i] != NONE)
			for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++)
				if (gr[k] != NONE) {
					s->cnt[(size_t)gr[k] * s->nn + s->gnode[i]]++;
					s->rtotal[gr[k]]++;
				}
		memcpy(s->by_uuid[i].uuid, g[i].uuid, 16);
		s->by_uuid[i].prio = g[i].priority;
		s->by_uuid[i].idx = (uint32_t)i;
	}
	qsort(s->by_uuid, n, sizeof(*s->by_uuid), cmp_uuid);
	for (size_t i = 1; i < n; i++)
		if (!memcmp(s->by_uuid[i].uuid, s->by_uuid[i - 1].uuid, 16))
			goto err_free;

	free(nk);
	free(rk);
	return 0;

err_free:
	free(nk);
	free(rk);
	sched_fini(s);
	return rc;
}

static const struct pvclus_rule *rule_of(const struct sched *s, uint32_t r)
{
	return s->rule[r];
}

static uint32_t count(const struct sched *s, uint32_t r, uint32_t n)
{
	return s->cnt[(size_t)r * s->nn + n];
}

static void count_add(struct sched *s, size_t gi, uint32_t n, int delta)
{
	const uint32_t *gr = &s->grule[gi * PVCLUS_GUEST_RULES_MAX];
	for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++)
		if (gr[k] != NONE) {
			s->cnt[(size_t)gr[k] * s->nn + n] += (uint32_t)delta;
			s->rtotal[gr[k]] += (uint32_t)delta;
		}
}

static bool balanced_node(const struct pvclus_node *nd)
{
	return nd->online && !nd->fenced && !nd->maintenance;
}

/* ---- placement ---------------------------------------------------------- */

static uint64_t free_mem(const struct pvclus_node *nd, uint64_t planned)
{
	if (nd->mem_used >= nd->mem_total)
		return 0;
	uint64_t rem = nd->mem_total - nd->mem_used;
	return rem > planned ? rem - planned : 0;
}

/* Chooses a node for guest gi (not counted anywhere yet): its position, or
 * NONE with *why set. O(N * rules). */
static uint32_t choose(const struct sched *s, size_t gi, const uint64_t *planned,
		       enum pvclus_sched_reason *why)
{
	const struct pvclus_sched_guest *g = &s->g[gi];
	const uint32_t *gr = &s->grule[gi * PVCLUS_GUEST_RULES_MAX];
	bool any_base = false, any_aff = false, any_aff_mem = false, aff_bound = false;
	uint32_t best = NONE, best_soft = 0;
	bool best_avoid = false;
	uint64_t best_free = 0;

	for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++)
		if (gr[k] != NONE && rule_of(s, gr[k])->hard &&
		    rule_of(s, gr[k])->kind == PVCLUS_RULE_AFFINITY && s->rtotal[gr[k]])
			aff_bound = true;

	for (uint32_t n = 0; n < s->nn; n++) {
		const struct pvclus_node *nd = s->node[n];
		if (!balanced_node(nd))
			continue;
		any_base = true;

		bool aff_ok = true, anti_ok = true;
		uint32_t soft = 0;
		for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++) {
			if (gr[k] == NONE)
				continue;
			const struct pvclus_rule *r = rule_of(s, gr[k]);
			uint32_t here = count(s, gr[k], n), all = s->rtotal[gr[k]];
			if (r->kind == PVCLUS_RULE_AFFINITY) {
				if (r->hard && all && !here)
					aff_ok = false;
				else if (!r->hard)
					soft += all - here;
			} else {
				if (r->hard && here)
					anti_ok = false;
				else if (!r->hard)
					soft += here;
			}
		}
		if (!aff_ok)
			continue;
		any_aff = true;
		uint64_t fr = free_mem(nd, planned[n]);
		if (fr < g->mem)
			continue;
		any_aff_mem = true;
		if (!anti_ok)
			continue;

		bool av = g->avoid && nd->id == g->avoid;
		/* Nodes come in id order: a tie keeps the lower id. */
		if (best == NONE || soft < best_soft ||
		    (soft == best_soft && (av < best_avoid ||
					   (av == best_avoid && fr > best_free)))) {
			best = n;
			best_soft = soft;
			best_avoid = av;
			best_free = fr;
		}
	}

	if (best != NONE)
		*why = PVCLUS_SCHED_OK;
	else if (!any_base)
		*why = PVCLUS_SCHED_NO_NODE;
	else if (!any_aff || (!any_aff_mem && aff_bound))
		*why = PVCLUS_SCHED_AFFINITY;
	else if (!any_aff_mem)
		*why = PVCLUS_SCHED_NO_MEMORY;
	else
		*why = PVCLUS_SCHED_ANTI_AFFINITY;
	return best;
}

enum place_mode { PLACE_NEW, PLACE_RECOVER, PLACE_EVACUATE };

static int place(const struct pvclus_view *v, const struct pvclus_sched_guest *guests, size_t n,
		 enum place_mode mode, uint32_t from_id, struct pvclus_placement *out,
		 size_t *n_out)
{
	struct sched s;
	struct key *todo = NULL;
	uint64_t *planned = NULL;
	uint32_t from = NONE;
	size_t nt = 0;
	int rc;

	if (n_out)
		*n_out = 0;
	if (!n_out || (n && !out))
		return -EINVAL;
	rc = sched_init(&s, v, guests, n);
	if (rc < 0)
		return rc;

	rc = -EINVAL;
	if (mode != PLACE_NEW) {
		from = from_id ? node_pos(&s, from_id) : NONE;
		if (from == NONE)
			goto err_fini;
		/* Recovery only after a confirmed fence; evacuation only of
		 * a node that takes nothing new. */
		if (mode == PLACE_RECOVER && !s.node[from]->fenced)
			goto err_fini;
		if (mode == PLACE_EVACUATE && !s.node[from]->maintenance)
			goto err_fini;
	}

	rc = -ENOMEM;
	todo = calloc(n + 1, sizeof(*todo));
	planned = calloc(s.nn + 1, sizeof(*planned));
	if (!todo || !planned)
		goto err_free;

	for (size_t i = 0; i < n; i++) {
		uint32_t gi = s.by_uuid[i].idx;
		if (s.gnode[gi] != from)
			continue;
		if (from != NONE)
			count_add(&s, gi, from, -1); /* it is leaving */
		todo[nt++] = s.by_uuid[i];
	}
	qsort(todo, nt, sizeof(*todo), cmp_prio);

	for (size_t i = 0; i < nt; i++) {
		uint32_t gi = todo[i].idx;
		enum pvclus_sched_reason why;
		uint32_t pos = choose(&s, gi, planned, &why);

		memcpy(out[i].uuid, guests[gi].uuid, 16);
		out[i].index = gi;
		out[i].node = pos == NONE ? 0 : s.node[pos]->id;
		out[i].reason = why;
		if (pos != NONE) {
			planned[pos] += guests[gi].mem;
			count_add(&s, gi, pos, +1);
		}
	}
	*n_out = nt;
	rc = 0;

err_free:
	free(todo);
	free(planned);
err_fini:
	sched_fini(&s);
	return rc;
}

int pvclus_sched_place(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
		       size_t n, struct pvclus_placement *out, size_t *n_out)
{
	return place(v, guests, n, PLACE_NEW, 0, out, n_out);
}

int pvclus_sched_recovery(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
			  size_t n, uint32_t fenced_node, struct pvclus_placement *out,
			  size_t *n_out)
{
	return place(v, guests, n, PLACE_RECOVER, fenced_node, out, n_out);
}

int pvclus_sched_evacuate(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
			  size_t n, uint32_t node, struct pvclus_placement *out, size_t *n_out)
{
	return place(v, guests, n, PLACE_EVACUATE, node, out, n_out);
}

/* ---- imbalance ---------------------------------------------------------- */

/* Loads of the balanced nodes, in node-position order. */
struct load {
	size_t nn;
	bool *bal;
	uint64_t *mem;   /* used */
	uint64_t *cpu;   /* used */
	double mean_mem; /* cluster utilisation */
	double mean_cpu;
	size_t n_bal;
};

static double dev_mem(const struct sched *s, const struct load *l, uint32_t n, uint64_t used)
{
	return (double)used / (double)s->node[n]->mem_total - l->mean_mem;
}

static double dev_cpu(const struct sched *s, const struct load *l, uint32_t n, uint64_t used)
{
	return (double)used / (double)s->node[n]->cpu_total - l->mean_cpu;
}

static void load_means(const struct sched *s, struct load *l)
{
	uint64_t um = 0, tm = 0, uc = 0, tc = 0;
	l->n_bal = 0;
	for (uint32_t n = 0; n < s->nn; n++) {
		if (!l->bal[n])
			continue;
		l->n_bal++;
		um += l->mem[n];
		tm += s->node[n]->mem_total;
		uc += l->cpu[n];
		tc += s->node[n]->cpu_total;
	}
	l->mean_mem = tm ? (double)um / (double)tm : 0;
	l->mean_cpu = tc ? (double)uc / (double)tc : 0;
}

static struct pvclus_imbalance load_score(const struct sched *s, const struct load *l)
{
	struct pvclus_imbalance im = { 0, 0, 0 };
	if (l->n_bal < 2)
		return im;
	for (uint32_t n = 0; n < s->nn; n++) {
		if (!l->bal[n])
			continue;
		im.mem = fmax(im.mem, fabs(dev_mem(s, l, n, l->mem[n])));
		im.cpu = fmax(im.cpu, fabs(dev_cpu(s, l, n, l->cpu[n])));
	}
	im.score = fmax(im.mem, im.cpu);
	return im;
}

static void load_fini(struct load *l)
{
	free(l->bal);
	free(l->mem);
	free(l->cpu);
}

static int load_init(const struct sched *s, struct load *l)
{
	memset(l, 0, sizeof(*l));
	l->nn = s->nn;
	l->bal = calloc(s->nn + 1, sizeof(*l->bal));
	l->mem = calloc(s->nn + 1, sizeof(*l->mem));
	l->cpu = calloc(s->nn + 1, sizeof(*l->cpu));
	if (!l->bal || !l->mem || !l->cpu) {
		load_fini(l);
		return -ENOMEM;
	}
	for (uint32_t n = 0; n < s->nn; n++) {
		l->bal[n] = balanced_node(s->node[n]);
		l->mem[n] = s->node[n]->mem_used;
		l->cpu[n] = s->node[n]->cpu_used;
	}
	load_means(s, l);
	return 0;
}

int pvclus_imbalance(const struct pvclus_view *v, struct pvclus_imbalance *out)
{
	struct sched s;
	struct load l;
	int rc;

	if (!out)
		return -EINVAL;
	rc = sched_init(&s, v, NULL, 0);
	if (rc < 0)
		return rc;
	rc = load_init(&s, &l);
	if (rc == 0) {
		*out = load_score(&s, &l);
		load_fini(&l);
	}
	sched_fini(&s);
	return rc;
}

/* ---- rebalance ---------------------------------------------------------- */

struct planner {
	struct sched s;
	struct load l;
	uint32_t *list;  /* movable guests grouped by node; within a node by size,
			  * largest first, then uuid */
	double *size;    /* per list entry: mem / mem_ref + cpu / cpu_ref */
	double mem_ref;  /* the nodes' mean mem_total and cpu_total */
	double cpu_ref;
	size_t *off;     /* node n's guests: list[off[n]] .. list[off[n + 1] - 1] */
	size_t *head;    /* node n's first guest not yet moved, >= off[n] */
	bool *moved;
	uint32_t *order; /* scratch: partner nodes */
	double *key;     /* scratch: their distance from the mean */
};

/* The summed distance from the mean of nodes a and b, both resources, with
 * a's and b's loads as given. */
static double pair_distance(const struct planner *p, uint32_t a, uint64_t am, uint64_t ac,
			    uint32_t b, uint64_t bm, uint64_t bc)
{
	return fabs(dev_mem(&p->s, &p->l, a, am)) + fabs(dev_cpu(&p->s, &p->l, a, ac)) +
	       fabs(dev_mem(&p->s, &p->l, b, bm)) + fabs(dev_cpu(&p->s, &p->l, b, bc));
}

/* May guest gi move from node `from` to node `to` under its rules? Hard
 * anti-affinity is never broken, no soft rule gets more conflicts. */
static bool rules_allow(const struct planner *p, size_t gi, uint32_t from, uint32_t to)
{
	const uint32_t *gr = &p->s.grule[gi * PVCLUS_GUEST_RULES_MAX];
	for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++) {
		if (gr[k] == NONE)
			continue;
		const struct pvclus_rule *r = rule_of(&p->s, gr[k]);
		uint32_t at_from = count(&p->s, gr[k], from) - 1; /* the others there */
		uint32_t at_to = count(&p->s, gr[k], to);
		if (r->kind == PVCLUS_RULE_ANTI_AFFINITY) {
			if (at_to && (r->hard || at_to > at_from))
				return false;
		} else if (at_to < at_from) {
			return false; /* leaves more of its group behind than it joins */
		}
	}
	return true;
}

/* May the rebalancer move guest gi at all? */
static bool movable(const struct planner *p, size_t gi)
{
	const struct pvclus_sched_guest *g = &p->s.g[gi];
	const uint32_t *gr = &p->s.grule[gi * PVCLUS_GUEST_RULES_MAX];
	if (g->pinned || p->s.gnode[gi] == NONE || !p->l.bal[p->s.gnode[gi]])
		return false;
	for (int k = 0; k < PVCLUS_GUEST_RULES_MAX; k++)
		if (gr[k] != NONE && rule_of(&p->s, gr[k])->hard &&
		    rule_of(&p->s, gr[k])->kind == PVCLUS_RULE_AFFINITY && p->s.rtotal[gr[k]] > 1)
			return false; /* its group would have to move with it */
	return true;
}

/* The best guest to move from src to dst: the largest gain, ties to the
 * lower uuid; it must also bring node w closer to the mean in resource r
 * (0 mem, 1 cpu). Returns the guest's position in p->list or SIZE_MAX.
 *
 * A move changes each of the four distances by at most the guest's share of
 * that node, so its gain is at most mem * (1/Ms + 1/Mt) + cpu * (1/Cs +
 * 1/Ct) <= k * size, k = max(mem_ref * (1/Ms + 1/Mt), cpu_ref * (1/Cs +
 * 1/Ct)); the list runs from the largest size down, so the scan stops once
 * k * size cannot beat the best found. Worst case O(guests on src * rules),
 * usually a few dozen. */
static size_t best_move(struct planner *p, uint32_t src, uint32_t dst, uint32_t w, int r,
			double *gain_out)
{
	const struct sched *s = &p->s;
	const struct load *l = &p->l;
	double before = pair_distance(p, src, l->mem[src], l->cpu[src], dst, l->mem[dst], l->cpu[dst]);
	double w_before = r ? fabs(dev_cpu(s, l, w, l->cpu[w])) : fabs(dev_mem(s, l, w, l->mem[w]));
	double k = fmax(p->mem_ref * (1.0 / (double)s->node[src]->mem_total +
				      1.0 / (double)s->node[dst]->mem_total),
			p->cpu_ref * (1.0 / (double)s->node[src]->cpu_total +
				      1.0 / (double)s->node[dst]->cpu_total));
	uint64_t room = l->mem[dst] < s->node[dst]->mem_total ? s->node[dst]->mem_total - l->mem[dst] : 0;
	size_t best = SIZE_MAX;
	double best_gain = 0;

	while (p->head[src] < p->off[src + 1] && p->moved[p->list[p->head[src]]])
		p->head[src]++; /* moved guests never come back: skip them for good */
	for (size_t i = p->head[src]; i < p->off[src + 1]; i++) {
		uint32_t gi = p->list[i];
		const struct pvclus_sched_guest *g = &s->g[gi];
		/* the slack keeps rounding from cutting a tie */
		double bound = k * p->size[i];
		if (bound * (1 + 1e-9) + 1e-12 < best_gain)
			break;
		if (p->moved[gi] || g->mem > room)
			continue;
		uint64_t sm = l->mem[src] - g->mem, sc = l->cpu[src] - g->cpu;
		uint64_t dm = l->mem[dst] + g->mem, dc = l->cpu[dst] + g->cpu;
		double gain = before - pair_distance(p, src, sm, sc, dst, dm, dc);
		if (gain <= 0 || gain < best_gain)
			continue;
		if (gain == best_gain && memcmp(g->uuid, s->g[p->list[best]].uuid, 16) > 0)
			continue;
		double w_after = w == src ? (r ? fabs(dev_cpu(s, l, w, sc)) : fabs(dev_mem(s, l, w, sm)))
					  : (r ? fabs(dev_cpu(s, l, w, dc)) : fabs(dev_mem(s, l, w, dm)));
		if (w_after >= w_before)
			continue;
		if (!rules_allow(p, gi, src, dst))
			continue;
		best = i;
		best_gain = gain;
	}
	*gain_out = best_gain;
	return best;
}

/* Largest size first, then uuid. */
static int cmp_size_desc(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return memcmp(x->uuid, y->uuid, 16);
}

static void planner_fini(struct planner *p)
{
	free(p->list);
	free(p->size);
	free(p->off);
	free(p->head);
	free(p->moved);
	free(p->order);
	free(p->key);
	load_fini(&p->l);
	sched_fini(&p->s);
}

static int planner_init(struct planner *p, const struct pvclus_view *v,
			const struct pvclus_sched_guest *g, size_t n)
{
	int rc;

	memset(p, 0, sizeof(*p));
	rc = sched_init(&p->s, v, g, n);
	if (rc < 0)
		return rc;
	rc = load_init(&p->s, &p->l);
	if (rc < 0) {
		sched_fini(&p->s);
		return rc;
	}
	size_t nn = p->s.nn;
	p->list = calloc(n + 1, sizeof(*p->list));
	p->size = calloc(n + 1, sizeof(*p->size));
	p->off = calloc(nn + 2, sizeof(*p->off));
	p->head = calloc(nn + 1, sizeof(*p->head));
	p->moved = calloc(n + 1, sizeof(*p->moved));
	p->order = calloc(nn + 1, sizeof(*p->order));
	p->key = calloc(nn + 1, sizeof(*p->key));
	uint64_t *sum_mem = calloc(nn + 1, sizeof(*sum_mem));
	uint64_t *sum_cpu = calloc(nn + 1, sizeof(*sum_cpu));
	size_t *fill = calloc(nn + 1, sizeof(*fill));
	struct key *by_size = calloc(n + 1, sizeof(*by_size));
	rc = -ENOMEM;
	if (!p->list || !p->size || !p->off || !p->head || !p->moved || !p->order || !p->key || !sum_mem ||
	    !sum_cpu || !fill || !by_size)
		goto err;

	/* A node's guests must fit in what it says it uses: moving one away
	 * subtracts it. */
	rc = -EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint32_t nd = p->s.gnode[i];
		if (nd == NONE)
			continue;
		sum_mem[nd] += g[i].mem;
		sum_cpu[nd] += g[i].cpu;
		if (sum_mem[nd] < g[i].mem || sum_mem[nd] > p->s.node[nd]->mem_used ||
		    sum_cpu[nd] > p->s.node[nd]->cpu_used)
			goto err;
	}

	/* The movable guests by size, then a stable counting sort by node. */
	uint64_t mem_sum = 0, cpu_sum = 0;
	for (size_t k = 0; k < nn; k++) {
		mem_sum += p->s.node[k]->mem_total;
		cpu_sum += p->s.node[k]->cpu_total;
	}
	p->mem_ref = nn ? (double)mem_sum / (double)nn : 1;
	p->cpu_ref = nn ? (double)cpu_sum / (double)nn : 1;
	size_t nm = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t gi = p->s.by_uuid[i].idx;
		if (movable(p, gi)) {
			by_size[nm] = p->s.by_uuid[i];
			by_size[nm++].size = (double)g[gi].mem / p->mem_ref + (double)g[gi].cpu / p->cpu_ref;
			p->off[p->s.gnode[gi] + 1]++;
		}
	}
	qsort(by_size, nm, sizeof(*by_size), cmp_size_desc);
	for (size_t k = 0; k < nn; k++)
		p->off[k + 1] += p->off[k];
	for (size_t k = 0; k < nn; k++)
		fill[k] = p->head[k] = p->off[k];
	for (size_t i = 0; i < nm; i++) {
		uint32_t gi = by_size[i].idx;
		size_t at = fill[p->s.gnode[gi]]++;
		p->list[at] = gi;
		p->size[at] = by_size[i].size;
	}
	free(sum_mem);
	free(sum_cpu);
	free(fill);
	free(by_size);
	return 0;

err:
	free(sum_mem);
	free(sum_cpu);
	free(fill);
	free(by_size);
	planner_fini(p);
	return rc;
}

/* Sorts p->order[0..k) by p->key descending, ties by node position
 * (= id). Insertion sort: k <= nodes, and this runs once per move. */
static void sort_partners(struct planner *p, size_t k)
{
	for (size_t i = 1; i < k; i++) {
		uint32_t o = p->order[i];
		double kv = p->key[i];
		size_t j = i;
		while (j > 0 && (p->key[j - 1] < kv || (p->key[j - 1] == kv && p->order[j - 1] > o))) {
			p->order[j] = p->order[j - 1];
			p->key[j] = p->key[j - 1];
			j--;
		}
		p->order[j] = o;
		p->key[j] = kv;
	}
}

static bool params_ok(const struct pvclus_rebalance_params *pr)
{
	return pr && isfinite(pr->threshold) && pr->threshold > 0 && isfinite(pr->target) &&
	       pr->target >= 0 && pr->target <= pr->threshold && isfinite(pr->min_gain) &&
	       pr->min_gain >= 0;
}

int pvclus_rebalance_plan(const struct pvclus_view *v, const struct pvclus_sched_guest *guests,
			  size_t n, const struct pvclus_rebalance_params *pr,
			  struct pvclus_move *moves, struct pvclus_rebalance_result *res)
{
	struct planner p;
	int rc;

	if (!res || !params_ok(pr) || (pr->max_moves && !moves))
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	rc = planner_init(&p, v, guests, n);
	if (rc < 0)
		return rc;

	const struct sched *s = &p.s;
	struct load *l = &p.l;
	double goal = pr->target > 0 ? pr->target : pr->threshold;

	res->before = load_score(s, l);
	if (res->before.score <= pr->threshold) {
		res->after = res->before;
		res->balanced = true;
		goto out;
	}

	while (res->n_moves < pr->max_moves) {
		/* The node farthest from the mean, in either resource; ties:
		 * memory first, then the lower id. */
		uint32_t w = NONE;
		int r = 0;
		double worst = -1, wdev = 0;
		for (uint32_t nd = 0; nd < s->nn; nd++) {
			if (!l->bal[nd])
				continue;
			double dm = dev_mem(s, l, nd, l->mem[nd]), dc = dev_cpu(s, l, nd, l->cpu[nd]);
			if (fabs(dm) > worst) {
				worst = fabs(dm);
				w = nd;
				r = 0;
				wdev = dm;
			}
			if (fabs(dc) > worst) {
				worst = fabs(dc);
				w = nd;
				r = 1;
				wdev = dc;
			}
		}
		if (w == NONE || worst <= goal)
			break;

		/* Partners on the other side of the mean, farthest first. */
		size_t k = 0;
		for (uint32_t nd = 0; nd < s->nn; nd++) {
			if (!l->bal[nd] || nd == w)
				continue;
			double d = r ? dev_cpu(s, l, nd, l->cpu[nd]) : dev_mem(s, l, nd, l->mem[nd]);
			if ((wdev > 0 && d < 0) || (wdev < 0 && d > 0)) {
				p.order[k] = nd;
				p.key[k] = fabs(d);
				k++;
			}
		}
		sort_partners(&p, k);

		bool moved = false;
		for (size_t i = 0; i < k && !moved; i++) {
			uint32_t src = wdev > 0 ? w : p.order[i];
			uint32_t dst = wdev > 0 ? p.order[i] : w;
			double gain;
			size_t at = best_move(&p, src, dst, w, r, &gain);
			if (at == SIZE_MAX || gain < pr->min_gain)
				continue;

			uint32_t gi = p.list[at];
			const struct pvclus_sched_guest *g = &guests[gi];
			struct pvclus_move *m = &moves[res->n_moves++];
			memcpy(m->uuid, g->uuid, 16);
			m->index = gi;
			m->from = s->node[src]->id;
			m->to = s->node[dst]->id;
			m->gain = gain;
			l->mem[src] -= g->mem;
			l->cpu[src] -= g->cpu;
			l->mem[dst] += g->mem;
			l->cpu[dst] += g->cpu;
			count_add(&p.s, gi, src, -1);
			count_add(&p.s, gi, dst, +1);
			p.moved[gi] = true; /* once per plan: never back */
			moved = true;
		}
		if (!moved)
			break; /* the farthest node cannot get closer */
	}
	res->after = load_score(s, l);
	res->balanced = res->after.score <= goal;

out:
	planner_fini(&p);
	return 0;
}

const char *pvclus_sched_reason_str(enum pvclus_sched_reason r)
{
	static const char *const names[PVCLUS_SCHED_REASON_COUNT] = {
		[PVCLUS_SCHED_OK] = "placed",
		[PVCLUS_SCHED_NO_NODE] = "no node is online, unfenced and out of maintenance",
		[PVCLUS_SCHED_NO_MEMORY] = "no eligible node has the free memory",
		[PVCLUS_SCHED_ANTI_AFFINITY] = "every node with the memory holds a member of its hard anti-affinity rule",
		[PVCLUS_SCHED_AFFINITY] = "the node of its hard affinity rule cannot take it",
	};
	return (unsigned)r < PVCLUS_SCHED_REASON_COUNT ? names[r] : "?";
}
