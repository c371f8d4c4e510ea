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
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"

#define FENCE_RETRY_MS 2000

static void step(struct fence_op *op);

static void on_retry(void *data)
{
	step(data);
}

static void retry_later(struct fence_op *op)
{
	agent_timer(op->agent, FENCE_RETRY_MS, on_retry, op, &op->timer);
}

static void confirmed(struct pvclus_agent *a, struct fence_op *op)
{
	op->active = false;
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeFenced nf = PVHA__NODE_FENCED__INIT;
	nf.nodeid = op->node;
	nf.addr = op->addr;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_NODE_FENCED;
	msg.node_fenced = &nf;
	agent_send(a, &msg);
}

static void on_timeout(void *data)
{
	struct fence_op *op = data;
	if (!op->active || op->pid <= 0)
		return;
	op->timed_out = true;
	op->agent->ops->fence_kill(op->agent->ctx, op->pid); /* the reap goes on */
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
	if (!op->blocklisted) {
		int err = a->st ? pvstore_fence(a->st, op->addr, FENCE_EXPIRE_S) : -ENOTCONN;
		if (err) {
			cluster_event(a, "fence-failed", "node %s (%s): blocklist: %s; retrying", name, op->addr,
				      a->st ? pvstore_errmsg() : "no storage");
			retry_later(op);
			return;
		}
		op->blocklisted = true;
		cluster_event(a, "fenced", "node %s: blocklisted %s at the storage", name, op->addr);
	}
	if (!a->cfg.fence_power) {
		confirmed(a, op);
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
	struct peer *p = agent_peer(a, node);
	char addr[64] = "";
	if (p && p->addr[0])
		snprintf(addr, sizeof(addr), "%s", p->addr);
	if (!addr[0] && a->st) {
		struct pvstore_node rec;
		if (pvstore_node_get(a->st, agent_node_name(a, node), &rec) == 0)
			snprintf(addr, sizeof(addr), "%s", rec.addr);
	}
	if (!addr[0]) {
		cluster_event(a, "fence-failed", "node %s: its address is unknown (no hello, no node record)",
			      agent_node_name(a, node));
		return;
	}
	*op = (struct fence_op){ .active = true, .node = node, .agent = a };
	snprintf(op->addr, sizeof(op->addr), "%s", addr);
	step(op);
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
				confirmed(a, op);
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
