/*
 * The two-node tie-breaker (docs/agent.md, "Two-node partitions").
 *
 * With two_node both halves of a split two-node cluster keep quorum, so
 * each would fence the other and recover its guests. Before either half
 * fences or recovers anything, both try to take one exclusive cls_lock with
 * a duration on the registry pool (pvstore_tiebreak_take): the OSD that
 * holds the object serialises the two tries, so exactly one wins. Then:
 *   - the loser acts as a partition without quorum: it kills its VMMs, stops
 *     leading, and once none runs writes its yield (the winner's cookie) next
 *     to the lock; it tries the lock again every TB_RETRY_MS, and takes over
 *     only if the winner stopped renewing it (dead, or cut off from the
 *     storage);
 *   - the winner renews the lock every TB_RENEW_MS and fences the loser: when
 *     the loser's yield names this round's cookie within TB_YIELD_WAIT_MS, the
 *     fence is confirmed without a blocklist (no monitor command, so nothing
 *     can land late after a heal); otherwise by the blocklist as before.
 * A heal (the ring holds both again) ends the round.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TB_DURATION_S 10
#define TB_RENEW_MS 3000
#define TB_RETRY_MS 2000
#define TB_YIELD_POLL_MS 250
#define TB_VMM_POLL_MS 100
#define TB_INC_MAX 40 /* of the incarnation in a cookie (a uuid is 36) */

enum tb_job_kind { TB_JOB_TAKE, TB_JOB_YIELD, TB_JOB_READ };

struct tb_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	enum tb_job_kind kind;
	uint32_t round;
	char cookie[64];         /* take: ours; yield: the holder's */
	char incarnation[64];    /* ours */
	char peer_incarnation[64];
	char peer_name[64];      /* read: whose yield; yield: ours */
	struct pvstore_lock_holder holder; /* take: who holds it when busy */
	char yielded[64];        /* read: the cookie in the peer's yield */
};

static void tb_step(void *data);
static void tb_done(struct pvclus_job *j);

static struct peer *other(struct pvclus_agent *a)
{
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid != a->local)
			return &a->peers[i];
	return NULL;
}

static const char *other_name(struct pvclus_agent *a)
{
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid != a->local)
			return a->nodes[i].name;
	return "?";
}

/* A holder's cookie is "<incarnation>.<round>". */
static bool cookie_of(const char *cookie, const char *incarnation)
{
	size_t n = strnlen(incarnation, TB_INC_MAX);
	return n && !strncmp(cookie, incarnation, n) && cookie[n] == '.';
}

static int tb_run(struct pvstore *st, struct pvclus_job *j)
{
	struct tb_job *t = (struct tb_job *)j;
	int err = st ? 0 : -ENOTCONN;
	if (!err && t->kind == TB_JOB_TAKE) {
		err = pvstore_tiebreak_take(st, t->cookie, TB_DURATION_S, &t->holder);
		/* A lock of this boot's earlier round, or of a boot that is neither
		 * ours nor the peer's last one, is stale: break it and try again.
		 * Two that break it at once: one break fails, one take wins. */
		if (err == -EBUSY && t->holder.cookie[0] &&
		    (cookie_of(t->holder.cookie, t->incarnation) ||
		     (t->peer_incarnation[0] && !cookie_of(t->holder.cookie, t->peer_incarnation)))) {
			pvstore_tiebreak_break(st, &t->holder);
			err = pvstore_tiebreak_take(st, t->cookie, TB_DURATION_S, &t->holder);
		}
	} else if (!err && t->kind == TB_JOB_YIELD) {
		err = pvstore_tiebreak_yield(st, t->peer_name, t->cookie);
	} else if (!err) {
		err = pvstore_tiebreak_yielded(st, t->peer_name, t->yielded, sizeof(t->yielded));
	}
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void tb_submit(struct pvclus_agent *a, enum tb_job_kind kind)
{
	struct tb_job *t = calloc(1, sizeof(*t));
	if (!t) {
		agent_timer_del(a, &a->tb.timer);
		agent_timer(a, TB_RETRY_MS, tb_step, a, &a->tb.timer);
		return;
	}
	t->j = (struct pvclus_job){ .run = tb_run, .done = tb_done, .what = "tie-break" };
	t->a = a;
	t->kind = kind;
	t->round = a->tb.round;
	snprintf(t->incarnation, sizeof(t->incarnation), "%s", a->cfg.incarnation);
	struct peer *p = other(a);
	snprintf(t->peer_incarnation, sizeof(t->peer_incarnation), "%s", p ? p->incarnation : "");
	if (kind == TB_JOB_TAKE) {
		snprintf(t->cookie, sizeof(t->cookie), "%s", a->tb.cookie);
	} else if (kind == TB_JOB_YIELD) {
		snprintf(t->cookie, sizeof(t->cookie), "%s", a->tb.holder);
		snprintf(t->peer_name, sizeof(t->peer_name), "%s", a->cfg.node_name);
	} else {
		snprintf(t->peer_name, sizeof(t->peer_name), "%s", other_name(a));
	}
	a->tb.job = true;
	agent_submit(a, &t->j);
}

static bool vmms_running(struct pvclus_agent *a)
{
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && a->g[i].pid > 0)
			return true;
	return false;
}

static void lose(struct pvclus_agent *a, const char *holder)
{
	a->tb.state = TB_LOST;
	snprintf(a->tb.holder, sizeof(a->tb.holder), "%s", holder);
	a->tb.yielded = false;
	cluster_event(a, "tiebreak-lost", "node %s: %s: stopping this node's guests", a->cfg.node_name,
		      holder[0] ? "the other half holds the tie-break" : "the tie-break is out of reach");
	agent_update_leader(a);
	if (a->quorate)
		guests_on_quorum(a, false);
}

static void win(struct pvclus_agent *a)
{
	bool was_lost = a->tb.state == TB_LOST;
	int self = agent_node_index(a, a->local);
	if ((was_lost || !a->have_state) && self >= 0 && !a->fences[self].unresolved) {
		/* The other half won before (or may have: this agent started
		 * during the split) and fenced this node: its blocklist add of
		 * this node may still be committed by a slow monitor, after the
		 * other node is gone. This node runs nothing until a removal of
		 * its own address succeeds (docs/agent.md "A fence the monitor
		 * commits late"). */
		a->fences[self].unresolved = ADD_MAYBE_EARLIER_LEADER;
	}
	a->tb.state = TB_WON;
	a->tb.won_ms = agent_now_ms(a);
	a->tb.peer_yielded = false;
	cluster_event(a, "tiebreak-won", "node %s holds the tie-break: node %s may not act", a->cfg.node_name,
		      other_name(a));
	agent_update_leader(a);
	if ((was_lost || (!a->have_state && !a->awaiting)) && a->quorate) {
		/* The winner stopped renewing (gone, or cut off from the storage),
		 * or this agent started during the split and nobody else holds
		 * the tie-break: this half acts now, from the registry, as after
		 * a cold start. */
		guests_on_quorum(a, true);
		guests_await_table(a);
	}
	agent_fence_kick(a);
}

static void tb_done(struct pvclus_job *j)
{
	struct tb_job *t = (struct tb_job *)j;
	struct pvclus_agent *a = t->a;
	a->tb.job = false;
	if (t->round != a->tb.round || a->tb.state == TB_IDLE) {
		free(t);
		if (a->tb.state != TB_IDLE)
			tb_step(a); /* an earlier round's: this round's first try was waiting for it */
		return;
	}
	uint64_t next = TB_RETRY_MS;
	switch (t->kind) {
	case TB_JOB_TAKE:
		if (!j->err) {
			if (a->tb.state != TB_WON)
				win(a);
			else
				agent_fence_kick(a); /* a fence past the yield wait (this agent was frozen, say) */
			next = TB_RENEW_MS;
			if (!a->tb.peer_yielded && agent_now_ms(a) < a->tb.won_ms + TB_YIELD_WAIT_MS)
				next = TB_YIELD_POLL_MS;
		} else if (j->err == -EBUSY) {
			if (a->tb.state != TB_LOST)
				lose(a, t->holder.cookie);
			next = a->tb.yielded || !t->holder.cookie[0] ? TB_RETRY_MS : TB_VMM_POLL_MS;
		} else if (a->tb.state == TB_TRYING &&
			   (j->err == -ETIMEDOUT || j->err == -ESHUTDOWN || j->err == -ENOTCONN)) {
			/* This half cannot reach the storage (or is fenced): it cannot
			 * win, and its VMMs cannot write. It stops them and tries again. */
			alog_warn(a, "tie-break: %s", j->errmsg);
			lose(a, "");
		} else {
			alog_warn(a, "tie-break: %s; trying again", j->errmsg);
		}
		break;
	case TB_JOB_YIELD:
		if (!j->err) {
			a->tb.yielded = true;
			alog_info(a, "tie-break: yielded to %s (no VMM runs here)", a->tb.holder);
		} else {
			next = TB_VMM_POLL_MS;
		}
		break;
	case TB_JOB_READ:
		if (!j->err && !strcmp(t->yielded, a->tb.cookie))
			a->tb.peer_yielded = true;
		if (a->tb.peer_yielded || agent_now_ms(a) >= a->tb.won_ms + TB_YIELD_WAIT_MS)
			agent_fence_kick(a);
		next = a->tb.peer_yielded ? TB_RENEW_MS : TB_YIELD_POLL_MS;
		break;
	}
	free(t);
	agent_timer_del(a, &a->tb.timer);
	agent_timer(a, next, tb_step, a, &a->tb.timer);
}

static void tb_step(void *data)
{
	struct pvclus_agent *a = data;
	a->tb.timer = 0;
	if (a->tb.state == TB_IDLE || a->tb.job)
		return;
	uint64_t now = agent_now_ms(a);
	if (a->tb.state == TB_LOST && !a->tb.yielded && a->tb.holder[0]) {
		if (vmms_running(a)) {
			agent_timer(a, TB_VMM_POLL_MS, tb_step, a, &a->tb.timer);
			return;
		}
		tb_submit(a, TB_JOB_YIELD);
		return;
	}
	if (a->tb.state == TB_WON && !a->tb.peer_yielded && now < a->tb.won_ms + TB_YIELD_WAIT_MS + TB_YIELD_POLL_MS &&
	    now >= a->tb.won_ms + TB_YIELD_POLL_MS) {
		tb_submit(a, TB_JOB_READ);
		return;
	}
	if (a->tb.state == TB_WON && !a->tb.peer_yielded && now < a->tb.won_ms + TB_YIELD_POLL_MS) {
		agent_timer(a, TB_YIELD_POLL_MS, tb_step, a, &a->tb.timer);
		return;
	}
	tb_submit(a, TB_JOB_TAKE); /* a try, a retry or a renewal */
}

static void round_start(struct pvclus_agent *a)
{
	a->tb.state = TB_TRYING;
	a->tb.round++;
	a->tb.yielded = false;
	a->tb.peer_yielded = false;
	a->tb.holder[0] = '\0';
	snprintf(a->tb.cookie, sizeof(a->tb.cookie), "%.*s.%u", TB_INC_MAX, a->cfg.incarnation, a->tb.round);
	agent_update_leader(a); /* nobody leads this half before it won */
	agent_timer_del(a, &a->tb.timer);
	if (!a->tb.job)
		tb_step(a);
}

void agent_tiebreak_on_ring(struct pvclus_agent *a, size_t old_nring)
{
	if (agent_tiebreak_split(a)) {
		/* A split begins; or this agent (re)started, quorate, during one
		 * (its first ring holds it only): the other half may hold the
		 * tie-break and the cluster's table. */
		if (a->tb.state == TB_IDLE && (old_nring == 2 || a->quorate))
			round_start(a);
		return;
	}
	if (a->tb.state == TB_IDLE)
		return;
	/* healed (or no longer a two-node split): the round is over */
	enum tb_state was = a->tb.state;
	a->tb.state = TB_IDLE;
	agent_timer_del(a, &a->tb.timer);
	agent_update_leader(a);
	if (was == TB_LOST && a->quorate)
		guests_on_quorum(a, true);
	agent_fence_kick(a); /* a fence that waited for the tie-break goes on */
}

void agent_tiebreak_on_quorum(struct pvclus_agent *a)
{
	/* Quorum after the ring, in a split: only an agent that started during
	 * it sees that (votequorum's wait_for_all), and it contends as well. */
	if (a->quorate && agent_tiebreak_split(a) && a->tb.state == TB_IDLE)
		round_start(a);
}
