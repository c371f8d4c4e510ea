/*
 * pvhad's storage workers: the agent's storage jobs (struct pvclus_job,
 * pvcluster/agent.h) run on a few threads over the node's librados
 * connection, so that no storage call ever blocks the loop; a finished job
 * is handed back to the loop through a pipe (job_pool_fd), and its done
 * function runs there (job_pool_complete).
 *
 * Threads: job_pool_submit and job_pool_complete on the loop only; run
 * functions on the workers. With several workers, jobs run concurrently and
 * finish in any order (the agent orders what must be ordered itself).
 */
#ifndef PVHAD_JOBS_H
#define PVHAD_JOBS_H

#include "pvcluster/agent.h"

struct pvstore;
struct job_pool;

/* Starts nthreads workers over st (NULL: every job's run gets NULL and fails
 * with -ENOTCONN). Returns 0 or -errno. */
int job_pool_start(struct pvstore *st, unsigned nthreads, struct job_pool **out);

/* Queues a job. Returns 0 or -ENOMEM. O(1). */
int job_pool_submit(struct job_pool *p, struct pvclus_job *j);

/* Readable when finished jobs wait for job_pool_complete. */
int job_pool_fd(const struct job_pool *p);

/* Runs the done function of every finished job (on the loop). */
void job_pool_complete(struct job_pool *p);

/* Stops the workers (a job in a storage call ends at the op timeout) and
 * frees the pool; the done of jobs not finished is never called. */
void job_pool_stop(struct job_pool *p);

#endif
