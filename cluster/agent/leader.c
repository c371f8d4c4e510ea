/*
 * Who leads, and this node's standing: the leader choice (the lowest member
 * of the quorate partition that is not fenced and reaches the storage), what
 * a new leader takes over, this node's record in RADOS (the storage is usable
 * once it lands) and the lifting of fences of members that came back
 * running nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define STORAGE_RETRY_MS 500
#define STORAGE_RETRIES 60

static void storage_retry(void *data);

struct record_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	struct pvstore_node n;
	bool retry; /* after an unfence: retry until it is written */
};

static int record_run(struct pvstore *st, struct pvclus_job *j)
{
	struct record_job *r = (struct record_job *)j;
	int err = st ? pvstore_node_put(st, &r->n) : -ENOTCONN;
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void record_done(struct pvclus_job *j)
{
	struct record_job *r = (struct record_job *)j;
	struct pvclus_agent *a = r->a;
	if (j->err)
		alog_err(a, j->err, "storage: writing node record: %s", j->errmsg);
	agent_set_storage_ok(a, j->err == 0);
	if (r->retry && j->err && !a->storage_timer_armed) {
		/* tried again until it works: after an unfence, or an outage */
		if (++a->storage_tries == STORAGE_RETRIES)
			alog_warn(a, "storage: still not usable after %d ms; trying on", STORAGE_RETRY_MS * STORAGE_RETRIES);
		agent_timer(a, STORAGE_RETRY_MS, storage_retry, a, &a->storage_timer);
		a->storage_timer_armed = true;
	}
	free(r);
}

/* Writes this node's record (a job): the storage is usable when it lands. */
void agent_put_node_record(struct pvclus_agent *a, bool retry)
{
	struct record_job *r = calloc(1, sizeof(*r));
	if (!r) {
		alog_err(a, -ENOMEM, "storage: writing node record");
		return;
	}
	r->j = (struct pvclus_job){ .run = record_run, .done = record_done, .what = "node record" };
	r->a = a;
	r->retry = retry;
	snprintf(r->n.name, sizeof(r->n.name), "%s", a->cfg.node_name);
	snprintf(r->n.addr, sizeof(r->n.addr), "%s", a->cfg.address);
	snprintf(r->n.incarnation, sizeof(r->n.incarnation), "%s", a->cfg.incarnation);
	r->n.mem_bytes = a->cfg.mem_offered;
	r->n.cpus = a->cfg.cpus_offered;
	agent_submit(a, &r->j);
}

void agent_set_storage_ok(struct pvclus_agent *a, bool ok)
{
	if (a->storage_ok == ok)
		return;
	a->storage_ok = ok;
	alog_info(a, "storage %s", ok ? "usable" : "NOT usable: this node cannot run guests or lead");
	if (ok)
		guests_refresh(a); /* what could not be read meanwhile */
	agent_send_hello(a);
	if (!ok && a->st && !a->storage_timer_armed) {
		/* it tells by itself when it works again: its node record is
		 * rewritten every STORAGE_RETRY_MS until it lands */
		a->storage_tries = 0;
		agent_timer(a, STORAGE_RETRY_MS, storage_retry, a, &a->storage_timer);
		a->storage_timer_armed = true;
	}
}

/* After an unfence the OSDs may still hold the old map for a moment: the
 * node retries until its record is written (or gives up after 30 s, when it
 * says so in a hello anyway). */
static void storage_retry(void *data)
{
	struct pvclus_agent *a = data;
	a->storage_timer = 0;
	a->storage_timer_armed = false;
	agent_put_node_record(a, true);
}

void agent_storage_ready(struct pvclus_agent *a)
{
	if (a->storage_timer_armed)
		agent_timer_del(a, &a->storage_timer);
	a->storage_timer_armed = false;
	a->storage_tries = 0;
	storage_retry(a);
}

void agent_update_leader(struct pvclus_agent *a)
{
	uint32_t old = a->leader;
	/* The lowest member that is not fenced and can reach the storage (as its
	 * hello says, in CPG order, so every agent agrees): a fenced node cannot
	 * write to RADOS (nor lift its own fence) until the leader lets it back. */
	a->leader = 0;
	/* The ring learns of a lost node before votequorum says what it means:
	 * a ring without a majority of the configured nodes (half of two, with
	 * two_node) has no leader, whatever quorum said last. */
	bool majority = !a->have_ring || 2 * a->nring > (size_t)a->nnodes ||
			(a->nnodes == 2 && a->nring == 1);
	/* A half of a two-node split without the tie-break acts as without quorum. */
	bool quorate = a->quorate && !agent_tiebreak_lost(a);
	for (size_t i = 0; quorate && majority && i < a->nmembers && !a->leader; i++) {
		struct peer *p = agent_peer(a, a->members[i]);
		/* the ring may already say its node is gone, before CPG does */
		if ((!p || (!p->fenced && !p->storage_bad)) && agent_in_ring(a, a->members[i]))
			a->leader = a->members[i];
	}
	if (a->leader != old)
		alog_info(a, "leader: %s", a->leader ? agent_node_name(a, a->leader) : "none (not quorate)");
	agent_lead_check(a);
}

void agent_lead_check(struct pvclus_agent *a)
{
	bool now = agent_leads(a);
	if (a->replaying)
		return; /* replay_held checks once it is done */
	if (now && !a->was_leading) {
		agent_fence_takeover(a); /* first: it says which adds may still land */
		agent_check_unfence(a);
		agent_sched_paced(a);
	}
	a->was_leading = now;
}
