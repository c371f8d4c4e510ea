/* pvhad's fencing: see agent_fence.h. */
#include "agent_fence.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qb/qbutil.h>

#include "agent.h"
#include "log.h"
#include "pvfence/agent.h"

#define FENCE_EXPIRE_S 3600
#define FENCE_RETRY_MS 2000

struct fence_op {
	bool active;
	uint32_t node;
	char addr[64];
	bool blocklisted;
	pid_t pid;            /* the power fence program, while it runs */
	bool timed_out;
	int tries;
	uint64_t started_ms;
	qb_loop_timer_handle timer;
};

static struct fence_op ops[PVCLUS_MAX_NODES];
static struct agent *fence_agent_of; /* for timer callbacks */

static void step(struct fence_op *op);

static void on_retry(void *data)
{
	step(data);
}

static void retry_later(struct fence_op *op)
{
	qb_loop_timer_add(fence_agent_of->loop, QB_LOOP_MED, FENCE_RETRY_MS * QB_TIME_NS_IN_MSEC, op, on_retry,
			  &op->timer);
}

static void confirmed(struct agent *a, struct fence_op *op)
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
	kill(-op->pid, SIGKILL); /* its whole process group; the reap goes on */
}

static void step(struct fence_op *op)
{
	struct agent *a = fence_agent_of;
	const char *name = agent_node_name(a, op->node);
	if (!op->active)
		return;
	if (!agent_leads(a)) {
		/* whoever leads now fences it again from the guests' fence-wait */
		pvlog_info("fence %s: no longer the leader, leaving it", name);
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
	if (!a->cfg.fence_agent[0]) {
		confirmed(a, op);
		return;
	}
	char input[PVFENCE_INPUT_MAX + 1], why[256];
	int len = pvfence_agent_input("off", a->cfg.fence_args, name, op->addr, input, sizeof(input), why,
				      sizeof(why));
	if (len < 0) {
		cluster_event(a, "fence-failed", "node %s: power fence: %s", name, why);
		retry_later(op);
		return;
	}
	op->tries++;
	op->timed_out = false;
	op->started_ms = agent_now_ms();
	int err = pvfence_agent_spawn(a->cfg.fence_agent, input, (size_t)len, STDERR_FILENO, &op->pid);
	if (err) {
		op->pid = 0;
		cluster_event(a, "fence-failed", "node %s: power fence %s: %s; retrying", name, a->cfg.fence_agent,
			      strerror(-err));
		retry_later(op);
		return;
	}
	pvlog_info("fence %s: power fence %s started (pid %d, try %d)", name, a->cfg.fence_agent, (int)op->pid,
		   op->tries);
	qb_loop_timer_add(a->loop, QB_LOOP_HIGH, (uint64_t)a->cfg.fence_timeout_s * 1000 * QB_TIME_NS_IN_MSEC,
			  op, on_timeout, &op->timer);
}

void agent_fence(struct agent *a, uint32_t node)
{
	fence_agent_of = a;
	struct fence_op *op = NULL;
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid == node)
			op = &ops[i];
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
	*op = (struct fence_op){ .active = true, .node = node };
	snprintf(op->addr, sizeof(op->addr), "%s", addr);
	step(op);
}

bool agent_fence_reaped(struct agent *a, pid_t pid, int st)
{
	for (int i = 0; i < a->nnodes; i++) {
		struct fence_op *op = &ops[i];
		if (!op->active || op->pid != pid)
			continue;
		qb_loop_timer_del(a->loop, op->timer);
		op->pid = 0;
		const char *name = agent_node_name(a, op->node);
		uint64_t ms = agent_now_ms() - op->started_ms;
		char s[64];
		if (!op->timed_out && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			cluster_event(a, "power-fenced", "node %s: powered off by %s in %llu ms", name,
				      a->cfg.fence_agent, (unsigned long long)ms);
			if (agent_leads(a))
				confirmed(a, op);
			else
				op->active = false;
		} else {
			cluster_event(a, "fence-failed", "node %s: power fence %s %s after %llu ms (try %d); retrying",
				      name, a->cfg.fence_agent,
				      op->timed_out ? "timed out" : pvfence_status_str(st, s, sizeof(s)),
				      (unsigned long long)ms, op->tries);
			retry_later(op);
		}
		return true;
	}
	return false;
}
