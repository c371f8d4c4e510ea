/*
 * pvhad's live migrations, drains and rebalancing (docs/maintenance.md):
 *
 * - A migration of guest G from x to y follows the HA machine's MIGRATING
 *   state (cluster/ha.h): on MIGRATE(x, y) the agent of y starts an incoming
 *   pvha-vmm (--incoming ADDR:0, the owner lock's cookie its own incarnation)
 *   and, once it listens, multicasts MigrateReady with its port; the agent of
 *   x then asks its VMM to migrate there (vmmctl_migrate with the downtime
 *   budget of the MigrateRequest), polls its progress every 100 ms and
 *   multicasts it (MigrateProgress), and reports MIGRATE_HANDED_OVER once the
 *   VMM let go of the lock, or MIGRATE_FAILED when it gave up before. The
 *   agent of y reports MIGRATE_DONE when its VMM runs the guest, or
 *   MIGRATE_FAILED / START_FAILED when its VMM ends before.
 * - Node modes: `pvha node drain N` writes N's mode (draining) to RADOS and
 *   multicasts NodeMode; the leader's pump (every 500 ms) asks every guest
 *   running on a draining node to move (NODE_DRAIN → PLACE_MIGRATION → the
 *   scheduler's evacuation target → MIGRATE_START) and, once nothing runs or
 *   is placed there, makes it `maintenance`. `pvha node resume N` makes it
 *   active again. Modes live in RADOS, so they outlive any agent.
 * - Rebalancing: the planner (pvclus_rebalance_plan) over the current view;
 *   `pvha cluster rebalance` shows the plan and starts its migrations; the
 *   leader runs it by itself when rebalance_auto is configured (hysteresis:
 *   the planner's threshold and target, a minimum gain, and a cool-down per
 *   guest).
 */
#ifndef PVHA_AGENT_MIGRATE_H
#define PVHA_AGENT_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>

#include "proto/api.pb-c.h"
#include "proto/cluster.pb-c.h"
#include "pvcluster/ha.h"

struct agent;
struct guest;

/* Starts the leader's pump and reads the node modes. */
void agent_migrate_init(struct agent *a);

/* The migration actions of a step (MIGRATE, ABORT_MIGRATION, PLACE_MIGRATION). */
void agent_migrate_action(struct agent *a, struct guest *g, const struct pvclus_ha_action *act, bool leader);

/* After every HA step of a guest: a source still sending to a target that
 * left the membership (the guest waits in fence-wait for the source's word)
 * gives the migration up, so that the guest runs on here. */
void agent_migrate_after_step(struct agent *a, struct guest *g);

/* The guest is gone from the table: its slot starts afresh. */
void agent_migrate_forget(struct agent *a, const struct guest *g);

/* A VMM of this node ended: true when it belonged to a migration and was
 * reported here. */
bool agent_migrate_vmm_ended(struct agent *a, struct guest *g, int code);

/* NodeMode, MigrateReady, MigrateProgress, MigrateRequest. */
void agent_migrate_message(struct agent *a, uint32_t from, const Pvha__ClusterMsg *msg);

/* Adds the migration fields to a guest's info (the pointers stay valid until
 * the next call for the same guest). */
void agent_migrate_fill_info(struct agent *a, const struct guest *g, Pvha__GuestInfo *gi);

/* NODE_DRAIN, NODE_RESUME, GUEST_MIGRATE, CLUSTER_REBALANCE. */
void agent_migrate_api(struct agent *a, const Pvha__ApiRequest *req, Pvha__ApiReply *rep, char *msg,
		       size_t msglen);

/* The automatic rebalancer's part of the cluster status. */
void agent_migrate_status(struct agent *a, Pvha__ClusterStatus *s);

/* Re-reads the node modes from RADOS (after this agent took a table). */
void agent_migrate_reload_modes(struct agent *a);

/* The number of guests whose HA record names the node (owner or target). */
unsigned agent_migrate_guests_on(struct agent *a, uint32_t node);

#endif
