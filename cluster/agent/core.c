/*
 * The agent's base layer: the ops it calls (log, clock, timers, storage
 * jobs, CPG send), the nodes and peers it knows, who leads, and the event
 * log. Every other file of the agent builds on it; it calls none of them
 * (docs/agent.md: the files and their order).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void agent_log(struct pvclus_agent *a, enum pvclus_log_level lvl, const char *func, int err, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (err && n >= 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, ": %s", strerror(err < 0 ? -err : err));
	a->ops->log(a->ctx, lvl, func, line);
}

int agent_vmm_start_error(int code)
{
	switch (code) {
	case PVCLUS_VMM_EXIT_LOCKED: return -EBUSY;
	case PVCLUS_VMM_EXIT_STORAGE: return -ETIMEDOUT;
	default: return -EIO;
	}
}

uint64_t agent_now_ms(struct pvclus_agent *a)
{
	return a->ops->now_ms(a->ctx);
}

void agent_timer(struct pvclus_agent *a, uint64_t ms, void (*fn)(void *), void *arg, uint64_t *id)
{
	int err = a->ops->timer_add(a->ctx, ms, fn, arg, id);
	if (err) {
		/* a timer that cannot be armed would leave the agent waiting for good */
		alog_err(a, err, "arming a timer of %llu ms", (unsigned long long)ms);
		abort();
	}
}

void agent_timer_del(struct pvclus_agent *a, uint64_t *id)
{
	if (*id)
		a->ops->timer_del(a->ctx, *id);
	*id = 0;
}

int agent_node_index(const struct pvclus_agent *a, uint32_t id)
{
	for (int i = 0; i < a->nnodes; i++)
		if (a->nodes[i].nodeid == id)
			return i;
	return -1;
}

int agent_node_by_name(const struct pvclus_agent *a, const char *name)
{
	for (int i = 0; i < a->nnodes; i++)
		if (!strcmp(a->nodes[i].name, name))
			return i;
	return -1;
}

const char *agent_node_name(const struct pvclus_agent *a, uint32_t id)
{
	int i = agent_node_index(a, id);
	return i < 0 ? "?" : a->nodes[i].name;
}

struct peer *agent_peer(struct pvclus_agent *a, uint32_t id)
{
	int i = agent_node_index(a, id);
	return i < 0 ? NULL : &a->peers[i];
}

bool agent_is_member(const struct pvclus_agent *a, uint32_t id)
{
	for (size_t i = 0; i < a->nmembers; i++)
		if (a->members[i] == id)
			return true;
	return false;
}

bool agent_node_online(const struct pvclus_agent *a, int i)
{
	/* the ring may already say it is gone, before CPG does */
	return agent_is_member(a, a->nodes[i].nodeid) && agent_in_ring(a, a->nodes[i].nodeid) &&
	       a->peers[i].hello && !a->peers[i].storage_bad;
}

void cluster_event(struct pvclus_agent *a, const char *what, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	alog_info(a, "event %s: %s", what, why);
	a->ops->event(a->ctx, NULL, what, why);
}

void guest_event(struct pvclus_agent *a, const uint8_t uuid[16], const char *what, const char *why)
{
	a->ops->event(a->ctx, uuid, what, why);
}

void agent_submit(struct pvclus_agent *a, struct pvclus_job *j)
{
	int err = a->ops->storage_submit(a->ctx, j);
	if (err) {
		j->err = err;
		snprintf(j->errmsg, sizeof(j->errmsg), "cannot queue a storage job: %s", strerror(-err));
		j->done(j);
	}
}

void agent_job_fail(struct pvclus_job *j, int err)
{
	j->err = err;
	snprintf(j->errmsg, sizeof(j->errmsg), "%s", err == -ENOTCONN ? "no storage connection" : pvstore_errmsg());
}

int agent_send(struct pvclus_agent *a, Pvha__ClusterMsg *msg)
{
	msg->version = 1;
	size_t len = pvha__cluster_msg__get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	pvha__cluster_msg__pack(msg, buf);
	int err = a->ops->send(a->ctx, buf, len);
	if (err)
		alog_err(a, err, "cpg: sending a message of %zu bytes", len);
	free(buf);
	return err;
}

bool agent_in_list(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

bool agent_in_ring(const struct pvclus_agent *a, uint32_t id)
{
	return !a->have_ring || agent_in_list(a->ring, a->nring, id);
}

bool agent_leads(const struct pvclus_agent *a)
{
	/* A leader acts only on the cluster's table: one back from a partition
	 * keeps records of its own view (nodes it saw leave), which must not
	 * make it fence anyone before the table replaced them. */
	return a->leader && a->leader == a->local && a->have_state && !a->awaiting;
}
