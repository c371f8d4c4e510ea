/*
 * The leader's placement decisions in pvhad: builds the scheduler's view of
 * the cluster (cluster/sched.h: nodes with their capacity, fences and
 * maintenance; guests with their rules) from the agent's state and turns the
 * scheduler's answers into HA events (PLACED, UNPLACEABLE).
 */
#ifndef PVHA_AGENT_SCHED_H
#define PVHA_AGENT_SCHED_H

struct agent;
struct guest;

/* Chooses a node for target (PLACE action) and multicasts the outcome. */
void agent_place(struct agent *a, struct guest *target);

#endif
