/*
 * pvhad's fencing of a node that left the membership, run by the leader:
 *
 *   1. the storage blocklist (always): the node's bare IP, so that neither
 *      its agent nor any of its VMMs can write to RADOS any more;
 *   2. the power fence (when fence_agent is configured): the fence-agents
 *      program with action=off and fence_args (%n, %a substituted), within
 *      fence_timeout seconds; exit 0 confirms;
 *   3. only then a NodeFenced message, after which its guests are recovered.
 *
 * A failed or timed-out step is an event with its reason and is retried
 * (every FENCE_RETRY_MS) as long as this agent leads: a guest whose node is
 * not confirmed fenced is never started elsewhere. The program runs as a
 * child of pvhad (its own process group, output into pvhad's log) and never
 * blocks the loop.
 */
#ifndef PVHA_AGENT_FENCE_H
#define PVHA_AGENT_FENCE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct agent;

/* Starts fencing node (a no-op while a fence of it is in progress). */
void agent_fence(struct agent *a, uint32_t node);

/* A child ended: true when it was a fence program (then handled). */
bool agent_fence_reaped(struct agent *a, pid_t pid, int wait_status);

#endif
