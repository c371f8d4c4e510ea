/*
 * The fake Corosync: totem rings formed from the reachability of the nodes,
 * CPG with one total order per ring and virtual synchrony at changes,
 * votequorum. The model is in world.c's header comment and
 * docs/simulator.md.
 */
#include <stdlib.h>
#include <string.h>

#include "world.h"

static struct sim_ring *ring_new(struct sim *w)
{
	sim_grow(&w->rings, w->nrings, &w->caprings, sizeof(*w->rings));
	struct sim_ring *r = &w->rings[w->nrings++];
	memset(r, 0, sizeof(*r));
	r->id = ++w->ring_ids;
	r->live = true;
	return r;
}

bool sim_linked(struct sim *w, int a, int b)
{
	const struct sim_node *x = &w->nodes[a], *y = &w->nodes[b];
	return x->powered && y->powered && x->net == y->net;
}

/* ---- inputs to the agents ---------------------------------------------------- */

static void in_ring(struct sim *w, struct sim_event *e)
{
	pvclus_agent_on_ring(ctx_of(w, e->node)->agent, e->p, e->u);
}

static void in_members(struct sim *w, struct sim_event *e)
{
	pvclus_agent_on_members(ctx_of(w, e->node)->agent, e->p, e->u, e->v);
}

static void in_quorum(struct sim *w, struct sim_event *e)
{
	pvclus_agent_on_quorum(ctx_of(w, e->node)->agent, e->u != 0, e->v);
}

static void in_deliver(struct sim *w, struct sim_event *e)
{
	pvclus_agent_on_deliver(ctx_of(w, e->node)->agent, (uint32_t)e->v, e->p, e->u);
}

static void input_ids(struct sim *w, int node, sim_fn fn, const uint32_t *ids, size_t n, uint64_t v, uint64_t at)
{
	if (!ctx_of(w, node))
		return;
	struct sim_event *e = sim_input(w, node, at, fn);
	e->p = malloc((n ? n : 1) * sizeof(uint32_t));
	if (!e->p)
		abort();
	memcpy(e->p, ids, n * sizeof(uint32_t));
	e->u = n;
	e->v = v;
}

/* The agents of ring r (CPG members), sorted by node id. */
static size_t cpg_members(struct sim *w, const struct sim_ring *r, uint32_t *ids)
{
	size_t n = 0;
	for (int i = 0; i < r->n; i++)
		if (w->nodes[r->nodes[i]].agent_up)
			ids[n++] = w->nodes[r->nodes[i]].id;
	return n;
}

static bool ring_quorate(struct sim *w, const struct sim_ring *r, int node)
{
	if (w->p.two_node)
		return r->n >= 1 && w->nodes[node].seen_all;
	return 2 * r->n > w->nnodes;
}

static void tell_ring(struct sim *w, int node, const struct sim_ring *r)
{
	uint32_t ids[SIM_MAX_NODES];
	for (int i = 0; i < r->n; i++)
		ids[i] = w->nodes[r->nodes[i]].id;
	input_ids(w, node, in_ring, ids, (size_t)r->n, r->id, w->now);
}

static void tell_quorum(struct sim *w, int node, const struct sim_ring *r)
{
	if (!ctx_of(w, node))
		return;
	struct sim_event *e = sim_input(w, node, w->now, in_quorum);
	e->u = w->nodes[node].quorate;
	e->v = (uint64_t)r->n;
}

static void tell_members_at(struct sim *w, const struct sim_ring *r, uint64_t at)
{
	uint32_t ids[SIM_MAX_NODES];
	size_t n = cpg_members(w, r, ids);
	for (int i = 0; i < r->n; i++)
		input_ids(w, r->nodes[i], in_members, ids, n, r->id, at);
}

static void tell_members(struct sim *w, const struct sim_ring *r)
{
	tell_members_at(w, r, w->now);
}

/* ---- CPG messages -------------------------------------------------------------- */

/* Delivers message m of ring r to every member in `to` (node indices). */
static void deliver_to(struct sim *w, const struct sim_msg *m, const int *to, int nto)
{
	for (int i = 0; i < nto; i++) {
		int node = to[i];
		if (!ctx_of(w, node))
			continue;
		struct sim_event *e = sim_input(w, node, w->now, in_deliver);
		e->p = malloc(m->len ? m->len : 1);
		if (!e->p)
			abort();
		memcpy(e->p, m->data, m->len);
		e->u = m->len;
		e->v = w->nodes[m->from].id;
	}
}

static void ring_deliver(struct sim *w, struct sim_event *e)
{
	struct sim_ring *r = &w->rings[e->u];
	size_t k = 0;
	if (!r->live)
		return;
	while (k < r->nq && r->q[k].at <= w->now) {
		/* a node cut off since the ring formed no longer hears the sender:
		 * until the ring changes, each side delivers what it reaches */
		int to[SIM_MAX_NODES], nto = 0;
		for (int i = 0; i < r->n; i++)
			if (sim_linked(w, r->q[k].from, r->nodes[i]))
				to[nto++] = r->nodes[i];
		deliver_to(w, &r->q[k], to, nto);
		free(r->q[k].data);
		k++;
	}
	memmove(r->q, r->q + k, (r->nq - k) * sizeof(r->q[0]));
	r->nq -= k;
}

void cs_send(struct sim *w, int node, const void *buf, size_t len)
{
	int ri = w->nodes[node].ring;
	struct sim_ring *r = &w->rings[ri];
	sim_grow(&r->q, r->nq, &r->capq, sizeof(r->q[0]));
	struct sim_msg *m = &r->q[r->nq++];
	m->seq = ++w->msg_seq;
	m->from = node;
	m->at = w->now + w->p.cpg_ms;
	/* Corosync refuses sends while it syncs a new ring (CS_ERR_TRY_AGAIN)
	 * and tells every member the CPG members during that sync: no member
	 * hears a message of the ring before its members (cs-gap). */
	if (m->at < r->members_at)
		m->at = r->members_at;
	m->len = len;
	m->data = malloc(len ? len : 1);
	if (!m->data)
		abort();
	memcpy(m->data, buf, len);
	struct sim_event *e = sim_at(w, m->at, ring_deliver);
	e->u = (uint64_t)ri;
}

/* ---- configuration changes --------------------------------------------------------- */

static void cpg_change_ev(struct sim *w, struct sim_event *e)
{
	struct sim_ring *r = &w->rings[e->u];
	if (r->live)
		tell_members(w, r);
}

void cs_cpg_changed(struct sim *w, int ri, unsigned delay)
{
	struct sim_event *e = sim_at(w, w->now + delay, cpg_change_ev);
	e->u = (uint64_t)ri;
}

void cs_agent_joined(struct sim *w, int node)
{
	struct sim_node *n = &w->nodes[node];
	if (n->ring < 0)
		return; /* the ring forms later and tells it then */
	struct sim_ring *r = &w->rings[n->ring];
	tell_ring(w, node, r);
	tell_quorum(w, node, r);
	tell_members(w, r);
}

/* The old ring's undelivered messages go to those who stay with their
 * sender, before the change. */
static void flush_old(struct sim *w, struct sim_ring *old, const int *comp_of)
{
	for (size_t k = 0; k < old->nq; k++) {
		const struct sim_msg *m = &old->q[k];
		int to[SIM_MAX_NODES], nto = 0;
		for (int i = 0; i < old->n; i++)
			if (w->nodes[old->nodes[i]].cs_up && comp_of[old->nodes[i]] == comp_of[m->from] &&
			    w->nodes[m->from].cs_up)
				to[nto++] = old->nodes[i];
		deliver_to(w, m, to, nto);
		free(m->data);
	}
	old->nq = 0;
}

/* Forms the rings the topology gives now, where they differ from the
 * current ones. */
static void evaluate(struct sim *w, struct sim_event *e)
{
	(void)e;
	int comp_of[SIM_MAX_NODES];
	int ncomp = 0;
	int members[SIM_MAX_NODES][SIM_MAX_NODES], nmem[SIM_MAX_NODES] = { 0 };
	for (int i = 0; i < w->nnodes; i++)
		comp_of[i] = -1;
	for (int i = 0; i < w->nnodes; i++) {
		if (!w->nodes[i].cs_up || comp_of[i] >= 0)
			continue;
		for (int j = i; j < w->nnodes; j++)
			if (w->nodes[j].cs_up && comp_of[j] < 0 && w->nodes[j].net == w->nodes[i].net) {
				comp_of[j] = ncomp;
				members[ncomp][nmem[ncomp]++] = j;
			}
		ncomp++;
	}
	for (int c = 0; c < ncomp; c++) {
		/* unchanged when all its nodes share one live ring of exactly them */
		int r0 = w->nodes[members[c][0]].ring;
		bool same = r0 >= 0 && w->rings[r0].live && w->rings[r0].n == nmem[c];
		for (int k = 0; same && k < nmem[c]; k++)
			same = w->nodes[members[c][k]].ring == r0;
		if (same)
			continue;
		for (int k = 0; k < nmem[c]; k++) {
			int ro = w->nodes[members[c][k]].ring;
			if (ro >= 0 && w->rings[ro].live)
				flush_old(w, &w->rings[ro], comp_of);
		}
		struct sim_ring *r = ring_new(w);
		int ri = (int)(r - w->rings);
		r->n = nmem[c];
		memcpy(r->nodes, members[c], sizeof(int) * (size_t)nmem[c]);
		for (int k = 0; k < r->n; k++) {
			struct sim_node *n = &w->nodes[r->nodes[k]];
			n->ring = ri;
			if (r->n == w->nnodes)
				n->seen_all = true;
			n->quorate = ring_quorate(w, r, r->nodes[k]);
		}
		/* The order at a change: the totem ring, votequorum, then the CPG
		 * members (cs_gap_ms later: other inputs may come between), or
		 * (members_first) the CPG members first: the agent must cope
		 * with each (docs/simulator.md) */
		r->members_at = w->now + (w->p.members_first ? 0 : w->p.cs_gap_ms);
		if (w->p.members_first)
			tell_members(w, r);
		for (int k = 0; k < r->n; k++) {
			tell_ring(w, r->nodes[k], r);
			tell_quorum(w, r->nodes[k], r);
		}
		if (!w->p.members_first)
			tell_members_at(w, r, r->members_at);
	}
	/* rings nobody belongs to any more */
	for (size_t i = 0; i < w->nrings; i++) {
		struct sim_ring *r = &w->rings[i];
		bool used = false;
		for (int k = 0; r->live && k < r->n; k++)
			used |= w->nodes[r->nodes[k]].ring == (int)i;
		if (r->live && !used) {
			for (size_t q = 0; q < r->nq; q++)
				free(r->q[q].data);
			r->nq = 0;
			r->live = false;
		}
	}
	(void)w;
}

void sim_net_changed(struct sim *w, bool heal)
{
	unsigned t = w->p.token_ms;
	sim_at(w, w->now + (heal ? t * 14 / 10 : t * 21 / 10), evaluate);
}

void sim_partition(struct sim *w, const int *label)
{
	bool heal = true;
	for (int i = 0; i < w->nnodes; i++) {
		if (label[i] != w->nodes[i].net && label[i] != 0)
			heal = false;
		w->nodes[i].net = label[i];
	}
	sim_net_changed(w, heal);
}

void cs_fini(struct sim *w)
{
	for (size_t i = 0; i < w->nrings; i++) {
		for (size_t q = 0; q < w->rings[i].nq; q++)
			free(w->rings[i].q[q].data);
		free(w->rings[i].q);
	}
	free(w->rings);
}
