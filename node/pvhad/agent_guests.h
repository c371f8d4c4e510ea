/*
 * pvhad's guest table, shared by the agent's guest parts: agent_guests.c (the
 * HA records, messages, VMM supervision) and agent_sched.c (the leader's
 * placement decisions). Private to pvhad; one qb_loop thread touches it.
 */
#ifndef PVHA_AGENT_GUESTS_H
#define PVHA_AGENT_GUESTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <qb/qbloop.h>

#include "agent.h"
#include "pvcluster/ha.h"
#include "pvstore/pvstore.h"

#define MAX_GUESTS 1024

struct guest {
	bool used;
	bool spec_loaded;      /* false: only the uuid is known (the registry was out of reach) */
	struct pvstore_guest spec;
	struct pvclus_ha_guest ha;
	/* this node's VMM, when it runs one for this guest */
	pid_t pid;
	bool start_reported;   /* STARTED sent */
	bool stopping;         /* we asked it to stop */
	bool adopted;          /* started by an earlier agent: not our child, watched by polling */
	uint64_t spawn_ms;
	qb_loop_timer_handle timer;
};

#define HELD_MAX 4096

/* A guest message that reached a joiner before the table it waits for. */
struct held {
	uint32_t from;
	size_t len;
	uint8_t *data;
};

struct guest_table {
	struct guest g[MAX_GUESTS];
	bool have_state;     /* this table is the cluster's */
	bool seen_others;    /* this agent has been in a membership with another */
	bool awaiting;       /* without state, in a membership with others: a table is due */
	bool waiting_storage; /* awaiting, and the table timed out without the storage */
	qb_loop_timer_handle await_timer;
	struct held held[HELD_MAX];
	size_t nheld;
};

/* The guest with this name or uuid (text), or NULL. */
struct guest *guests_by_name(struct agent *a, const char *name_or_uuid);

/* This node's control socket path of the guest's VMM. */
void guests_sock_path(struct agent *a, const struct guest *g, char *buf, size_t len);

/* Starts this node's pvha-vmm for the guest (its pid in g->pid): a fresh
 * start from its image, or with incoming ("HOST:PORT") a migration target
 * that waits for the source (watched by agent_migrate.c, not by the start
 * check). Returns 0 or -errno. */
int guests_spawn_vmm(struct agent *a, struct guest *g, const char *incoming);

/* The guest with this uuid, or NULL. */
struct guest *guests_find(struct agent *a, const uint8_t uuid[16]);

/* Multicasts one HA event of a guest (applied by every agent in CPG order). */
void guests_send_event(struct agent *a, const uint8_t uuid[16], enum pvclus_ha_event_type type,
		       uint32_t node, bool crashed, int err, uint32_t detail);

#endif
