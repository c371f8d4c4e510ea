/*
 * The leader's fencing of a node that left the membership:
 *
 *   1. the storage blocklist (always): the node's bare IP, so that neither
 *      its agent nor any of its VMMs can write to RADOS any more;
 *   2. the power fence (when one is configured): the fence-agents program
 *      (ops->fence_spawn) within its timeout; exit 0 confirms;
 *   3. only then a NodeFenced message, after which its guests are recovered.
 *
 * A failed or timed-out step is an event with its reason and is retried
 * (every FENCE_RETRY_MS) as long as this agent leads: a guest whose node is
 * not confirmed fenced is never started elsewhere.
 *
 * A new leader fences what the guests in fence-wait still wait for
 * (agent_fence_takeover); the leader lifts the fence of a member that came
 * back running no guest (agent_unfence).
 *
 * A blocklist add that timed out may still be committed by the monitor,
 * later, whatever happened meanwhile (campaign failure 8); its withdrawal
 * goes out right after it, and may time out too. Until a later monitor
 * command of this agent succeeds (the monitor commits one client's commands
 * in order, so everything before it has landed by then), the node stays
 * *held*: it is never placed on, and if it comes back it is confirmed
 * fenced (it stops its VMMs) and lifted only by a removal of its entry that
 * succeeds (docs/agent.md "A fence the monitor commits late").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"

#define FENCE_RETRY_MS 2000
#define FENCE_RING_WAIT_MS 10000

static void step(struct fence_op *op);
static void retry_later(struct fence_op *op);

/* The storage half of a fence (a storage job): the node's record for its
 * address when the nodelist has no IP for it, then the blocklist. */
struct fence_job {
	struct pvclus_job j;
	struct fence_op *op;
	char node_name[64];
	char addr[64];
};

static int fence_run(struct pvstore *st, struct pvclus_job *j)
{
	struct fence_job *f = (struct fence_job *)j;
	int err = st ? 0 : -ENOTCONN;
	if (!err && !f->addr[0]) {
		struct pvstore_node rec;
		err = pvstore_node_get(st, f->node_name, &rec);
		if (!err && !rec.addr[0])
			err = -ENOENT;
		if (err) {
			j->err = err;
			snprintf(j->errmsg, sizeof(j->errmsg), "its address is unknown (no IP ring0_addr; node record: %s)",
				 err == -ENOENT ? "none" : pvstore_errmsg());
			return err;
		}
		snprintf(f->addr, sizeof(f->addr), "%s", rec.addr);
	}
	if (!err)
		err = pvstore_fence(st, f->addr, FENCE_EXPIRE_S);
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void fence_done(struct pvclus_job *j)
{
	struct fence_job *f = (struct fence_job *)j;
	struct fence_op *op = f->op;
	struct pvclus_agent *a = op->agent;
	const char *name = agent_node_name(a, op->node);
	op->job = false;
	if (f->addr[0])
		snprintf(op->addr, sizeof(op->addr), "%s", f->addr);
	if (j->err == -ETIMEDOUT)
		op->unresolved = ADD_TIMED_OUT; /* the add and its withdrawal may land later */
	if (!op->active) {
		free(f);
		return;
	}
	if (j->err) {
		cluster_event(a, "fence-failed", "node %s (%s): blocklist: %s; retrying", name,
			      op->addr[0] ? op->addr : "?", j->errmsg);
		retry_later(op);
	} else {
		op->blocklisted = true;
		cluster_event(a, "fenced", "node %s: blocklisted %s at the storage", name, op->addr);
		step(op);
	}
	free(f);
}

static void on_retry(void *data)
{
	step(data);
}

static void retry_later(struct fence_op *op)
{
	agent_timer(op->agent, FENCE_RETRY_MS, on_retry, op, &op->timer);
}

/* NodeFenced: node's fence confirmed (unfenced: lifted). 0 or -errno. */
static int send_node_fenced(struct pvclus_agent *a, uint32_t node, char *addr, bool no_blocklist, bool unfenced)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeFenced nf = PVHA__NODE_FENCED__INIT;
	nf.nodeid = node;
	nf.addr = addr;
	nf.no_blocklist = no_blocklist;
	nf.unfenced = unfenced;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_NODE_FENCED;
	msg.node_fenced = &nf;
	return agent_send(a, &msg);
}

static void confirmed(struct pvclus_agent *a, struct fence_op *op, bool no_blocklist)
{
	op->active = false;
	send_node_fenced(a, op->node, op->addr, no_blocklist, false);
}

static void on_timeout(void *data)
{
	struct fence_op *op = data;
	if (!op->active || op->pid <= 0)
		return;
	op->timed_out = true;
	op->agent->ops->fence_kill(op->agent->ctx, op->pid); /* the reap goes on */
}

/* Whether a guest in fence-wait (in this agent's table as it is now) waits
 * for node's fence. */
static bool fence_awaited(const struct pvclus_agent *a, uint32_t node)
{
	for (int i = 0; i < MAX_GUESTS; i++) {
		const struct guest *g = &a->g[i];
		if (g->used && g->ha.state == PVCLUS_HA_FENCE_WAIT &&
		    (g->ha.fence[0] == node || g->ha.fence[1] == node))
			return true;
	}
	return false;
}

static void step(struct fence_op *op)
{
	struct pvclus_agent *a = op->agent;
	const char *name = agent_node_name(a, op->node);
	if (!op->active)
		return;
	if (!agent_leads(a)) {
		/* whoever leads now fences it again from the guests' fence-wait */
		alog_info(a, "fence %s: no longer the leader, leaving it", name);
		op->active = false;
		return;
	}
	if (!op->blocklisted && !fence_awaited(a, op->node)) {
		/* begun from a view this agent no longer holds (it took the
		 * cluster's table since): no guest waits for it */
		alog_info(a, "fence %s: no guest waits for it any more, leaving it", name);
		op->active = false;
		return;
	}
	struct peer *p = agent_peer(a, op->node);
	if (!op->blocklisted && agent_is_member(a, op->node) && p && p->hello && p->n_running == 0) {
		/* It came back before its fence took effect, and (its hello says,
		 * in the message order) runs no guest: nothing of it can write, so
		 * its guests may go on without a fence of a member of this quorate
		 * partition. */
		cluster_event(a, "fenced", "node %s is back and runs no guest: no blocklist needed", name);
		confirmed(a, op, true);
		return;
	}
	if (!op->blocklisted && agent_is_member(a, op->node) && agent_in_ring(a, op->node) && p && p->hello) {
		/* It is back in this quorate partition, running guests: never
		 * blocklist a member. NodeFenced makes it kill its VMMs; their
		 * owner locks are a live boot's until it cleared them itself, so no
		 * recovery elsewhere starts before (one writer holds). */
		cluster_event(a, "fenced", "node %s is back running %zu guest(s): it stops them, no blocklist of a member",
			      name, p->n_running);
		confirmed(a, op, true);
		return;
	}
	if (!op->blocklisted && a->have_ring && agent_in_ring(a, op->node) &&
	    (agent_is_member(a, op->node) || agent_now_ms(a) - op->begun_ms < FENCE_RING_WAIT_MS)) {
		/* Back in this partition's ring, its agent not (yet) in the CPG
		 * group or its hello not here: it says what runs there. An agent
		 * that does not come is fenced after FENCE_RING_WAIT_MS. */
		alog_info(a, "fence %s: it is back in the ring; waiting for its agent's hello", name);
		retry_later(op);
		return;
	}
	if (!op->blocklisted && !op->job) {
		/* a two-node split: only the half that holds the tie-break fences */
		enum tb_gate gate = agent_tiebreak_gate(a, agent_now_ms(a));
		if (gate == TB_GATE_WAIT)
			return; /* agent_fence_kick steps on */
		if (gate == TB_GATE_YIELDED) {
			cluster_event(a, "fenced", "node %s yielded the tie-break and runs no VMM: no blocklist needed",
				      name);
			confirmed(a, op, true);
			return;
		}
	}
	if (!op->blocklisted) {
		if (op->job)
			return; /* its done steps on */
		struct fence_job *f = calloc(1, sizeof(*f));
		if (!f) {
			retry_later(op);
			return;
		}
		f->j = (struct pvclus_job){ .run = fence_run, .done = fence_done, .what = "fence" };
		f->op = op;
		snprintf(f->node_name, sizeof(f->node_name), "%s", name);
		snprintf(f->addr, sizeof(f->addr), "%s", op->addr);
		op->job = true;
		if (op->unresolved == ADD_SETTLED)
			op->unresolved = ADD_SENT; /* only a removal that succeeds after it lets it back */
		agent_submit(a, &f->j);
		return;
	}
	if (!a->cfg.fence_power) {
		confirmed(a, op, false);
		return;
	}
	const char *prog = a->ops->fence_name(a->ctx);
	char why[256] = "";
	op->tries++;
	op->timed_out = false;
	op->started_ms = agent_now_ms(a);
	int err = a->ops->fence_spawn(a->ctx, name, op->addr, &op->pid, why, sizeof(why));
	if (err) {
		op->pid = 0;
		cluster_event(a, "fence-failed", "node %s: power fence %s: %s; retrying", name, prog,
			      why[0] ? why : strerror(-err));
		retry_later(op);
		return;
	}
	alog_info(a, "fence %s: power fence %s started (pid %d, try %d)", name, prog, (int)op->pid, op->tries);
	agent_timer(a, (uint64_t)a->ops->fence_timeout_s(a->ctx) * 1000, on_timeout, op, &op->timer);
}

void agent_fence(struct pvclus_agent *a, uint32_t node)
{
	int i = agent_node_index(a, node);
	struct fence_op *op = i < 0 ? NULL : &a->fences[i];
	if (!op || op->active)
		return;
	if (op->job)
		return; /* a storage job of an earlier fence of it is still out */
	*op = (struct fence_op){ .active = true, .node = node, .agent = a, .begun_ms = agent_now_ms(a),
				 .unresolved = op->unresolved };
	agent_fence_addr(a, i, op->addr, sizeof(op->addr));
	step(op);
}

void agent_fence_kick(struct pvclus_agent *a)
{
	for (int i = 0; i < a->nnodes; i++) {
		struct fence_op *op = &a->fences[i];
		if (op->active && !op->blocklisted && !op->job && op->pid <= 0)
			step(op);
	}
}

bool agent_fence_reaped(struct pvclus_agent *a, pid_t pid, int st)
{
	for (int i = 0; i < a->nnodes; i++) {
		struct fence_op *op = &a->fences[i];
		if (!op->active || op->pid != pid)
			continue;
		agent_timer_del(a, &op->timer);
		op->pid = 0;
		const char *name = agent_node_name(a, op->node);
		uint64_t ms = agent_now_ms(a) - op->started_ms;
		const char *prog = a->ops->fence_name(a->ctx);
		char s[64];
		if (WIFEXITED(st))
			snprintf(s, sizeof(s), "exit %d", WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			snprintf(s, sizeof(s), "killed by signal %d", WTERMSIG(st));
		else
			snprintf(s, sizeof(s), "status 0x%x", (unsigned)st);
		if (!op->timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			cluster_event(a, "power-fenced", "node %s: powered off by %s in %llu ms", name,
				      prog, (unsigned long long)ms);
			if (agent_leads(a))
				confirmed(a, op, false);
			else
				op->active = false;
		} else {
			cluster_event(a, "fence-failed", "node %s: power fence %s %s after %llu ms (try %d); retrying",
				      name, prog, op->timed_out ? "timed out" : s,
				      (unsigned long long)ms, op->tries);
			retry_later(op);
		}
		return true;
	}
	return false;
}

void agent_fence_takeover(struct pvclus_agent *a)
{
	/* An earlier leader may have sent a blocklist add of any node that is
	 * fenced, or that a guest waits for, and the monitor may commit it
	 * later: this agent holds them until a removal of its own succeeds
	 * (the monitor commits in order: everything sent before has landed). */
	for (int i = 0; i < a->nnodes; i++)
		if (a->peers[i].fenced && !a->fences[i].unresolved)
			a->fences[i].unresolved = ADD_MAYBE_EARLIER_LEADER;
	for (int i = 0; i < MAX_GUESTS; i++) {
		struct guest *g = &a->g[i];
		if (!g->used || g->ha.state != PVCLUS_HA_FENCE_WAIT)
			continue;
		for (int k = 0; k < 2; k++) {
			int n = g->ha.fence[k] ? agent_node_index(a, g->ha.fence[k]) : -1;
			if (n < 0)
				continue;
			if (!a->fences[n].unresolved)
				a->fences[n].unresolved = ADD_MAYBE_EARLIER_LEADER;
			agent_fence(a, g->ha.fence[k]);
		}
	}
}

bool agent_fence_holds(const struct pvclus_agent *a, uint32_t node)
{
	int i = agent_node_index(a, node);
	if (i < 0)
		return false;
	const struct fence_op *op = &a->fences[i];
	return op->active || op->job || op->unresolved;
}

bool agent_node_held(const struct pvclus_agent *a, uint32_t node)
{
	int i = agent_node_index(a, node);
	return i >= 0 && (a->peers[i].fenced || agent_fence_holds(a, node));
}

struct unfence_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	uint32_t node;
	char addr[64];
	bool no_blocklist;
	bool withdraw; /* an add of it may still land: remove, whatever its fence was */
};

static int unfence_run(struct pvstore *st, struct pvclus_job *j)
{
	struct unfence_job *u = (struct unfence_job *)j;
	if (u->no_blocklist && !u->withdraw)
		return 0; /* fenced without a blocklist entry: nothing to remove */
	int err = st ? pvstore_blocklist_remove(st, u->addr) : -ENOTCONN;
	if (err)
		agent_job_fail(j, err);
	return err;
}

void agent_check_unfence(struct pvclus_agent *a)
{
	if (!agent_leads(a))
		return;
	for (size_t i = 0; i < a->nmembers; i++) {
		struct peer *p = agent_peer(a, a->members[i]);
		if (!p)
			continue;
		bool self = a->members[i] == a->local;
		/* its own fence it never lifts (it leads no more once fenced); a
		 * removal of its own address that an earlier leader's add might
		 * follow it does send */
		bool lift = self ? !p->fenced && agent_fence_holds(a, a->local)
				 : p->fenced || p->storage_bad || agent_fence_holds(a, a->members[i]);
		if (p->hello && !p->unfencing && lift && p->n_running == 0)
			agent_unfence(a, a->members[i]);
	}
}

static void on_unfence_retry(void *data)
{
	struct pvclus_agent *a = data;
	a->unfence_timer_armed = false;
	agent_check_unfence(a);
}

static void unfence_retry_later(struct pvclus_agent *a)
{
	if (a->unfence_timer_armed)
		return;
	a->unfence_timer_armed = true;
	agent_timer(a, FENCE_RETRY_MS, on_unfence_retry, a, &a->unfence_timer);
}

static void unfence_done(struct pvclus_job *j)
{
	struct unfence_job *u = (struct unfence_job *)j;
	struct pvclus_agent *a = u->a;
	struct peer *p = agent_peer(a, u->node);
	const char *name = agent_node_name(a, u->node);
	int err = j->err;
	int i = agent_node_index(a, u->node);
	if (u->withdraw && i >= 0 && (!err || err == -ENOENT)) {
		/* this removal came after every add sent before it: none is left to land */
		if (a->fences[i].unresolved == ADD_TIMED_OUT)
			cluster_event(a, "fence-withdrawn", "node %s: no blocklist request of %s can land any more",
				      name, u->addr);
		a->fences[i].unresolved = ADD_SETTLED;
	}
	if (!p || !p->unfencing)
		goto out; /* it left meanwhile (its membership reset it) */
	p->unfencing = false;
	if (u->withdraw && !p->fenced) {
		/* held only for the add that might land: placeable again */
		if (err && err != -ENOENT)
			unfence_retry_later(a); /* the leader's retry tick places on it once it is resolved */
		goto out;
	}
	if (err == -ENOENT && !p->fenced) {
		/* not blocklisted: its storage trouble is its own (network, keys) */
		alog_debug(a, "node %s cannot reach the storage but is not blocklisted", name);
		goto out;
	}
	if (err && err != -ENOENT) {
		cluster_event(a, "unfence-failed", "node %s (%s): %s; retrying", name, u->addr, j->errmsg);
		unfence_retry_later(a);
		goto out;
	}
	if (!agent_leads(a))
		goto out; /* whoever leads now lifts it again */
	cluster_event(a, "unfenced", "node %s came back running no guest: %s may use the storage again", name,
		      u->addr);
	if (send_node_fenced(a, u->node, u->addr, false, true) == 0)
		p->unfencing = true; /* until the message is delivered */
out:
	free(u);
}

void agent_unfence(struct pvclus_agent *a, uint32_t node)
{
	struct peer *p = agent_peer(a, node);
	int i = agent_node_index(a, node);
	bool withdraw = i >= 0 && a->fences[i].unresolved != ADD_SETTLED;
	if (!p || !(p->fenced || p->storage_bad || withdraw) || !p->addr[0] || !a->st || p->unfencing)
		return;
	if (i >= 0 && a->fences[i].job) {
		/* an add of it is still out: a removal goes after its answer */
		unfence_retry_later(a);
		return;
	}
	struct unfence_job *u = calloc(1, sizeof(*u));
	if (!u)
		return;
	u->j = (struct pvclus_job){ .run = unfence_run, .done = unfence_done, .what = "unfence" };
	u->a = a;
	u->node = node;
	snprintf(u->addr, sizeof(u->addr), "%s", p->addr);
	u->no_blocklist = p->no_blocklist;
	u->withdraw = withdraw;
	p->unfencing = true; /* one lifting at a time */
	agent_submit(a, &u->j);
}
