/*
 * Internals shared by world.c (queue, agents' ops), corosync.c (the fake
 * Corosync) and vmm.c (fake processes). Not for scenario.c or main.c.
 */
#ifndef PVHA_SIM_WORLD_H
#define PVHA_SIM_WORLD_H

#include "sim.h"

struct defer {
	void (*fn)(void *);
	void *arg;
};

/* One agent process: what its ops reach. Kept after its death while a
 * storage job or an event append of it is in flight (refs). */
struct agent_ctx {
	struct sim *w;
	int node;
	uint32_t gen;
	bool dead;
	int refs;
	int jobs;
	struct pvclus_agent *agent;
	struct pvstore *conn;
	struct defer defer[256];
	size_t ndefer;
	uint64_t events_busy; /* the event worker's queue runs until */
};

struct event_job {
	struct agent_ctx *ctx;
	bool has_guest;
	uint8_t guest[16];
	char what[PVSTORE_EVENT_WHAT_MAX + 1];
	char why[PVSTORE_EVENT_WHY_MAX + 1];
};

/* The node's live agent, or NULL. */
struct agent_ctx *ctx_of(struct sim *w, int node);
void ctx_release(struct sim *w, struct agent_ctx *c);
void agent_storage_failed_ev(struct sim *w, struct sim_event *e);

/* corosync.c */
void cs_send(struct sim *w, int node, const void *buf, size_t len);
/* node's agent joined the CPG group (its ring, quorum, then everybody's members). */
void cs_agent_joined(struct sim *w, int node);
/* The CPG members of ring r changed (an agent came or went): after delay. */
void cs_cpg_changed(struct sim *w, int r, unsigned delay);
void cs_fini(struct sim *w);

/* vmm.c */
void vmm_fini(struct sim *w);

#endif
