/*
 * The agent's event-log appends, off its loop: each append is two RADOS round
 * trips, and on a node cut off from the OSDs it blocks until the op timeout.
 * One worker thread appends the queued events in order; the loop only queues.
 * When the storage refuses (blocklisted) or times out, the worker says so
 * through a pipe that the loop polls (event_queue_fd).
 */
#ifndef PVHA_EVENT_QUEUE_H
#define PVHA_EVENT_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

struct pvstore;
struct event_queue;

/* Starts the worker. Returns 0 or -errno. */
int event_queue_start(struct pvstore *st, const char *node, struct event_queue **out);

/* Queues one event (guest NULL: the cluster log). Never blocks on the
 * storage; when the queue is full (the storage has been out of reach for a
 * long while) the event is dropped with a warning: the agent's own log has
 * every event anyway. */
void event_queue_push(struct event_queue *q, const uint8_t *guest, const char *what, const char *why);

/* Readable when the worker saw the storage fail; event_queue_failed() reads
 * it and returns the last error (-ESHUTDOWN, -ETIMEDOUT) or 0. */
int event_queue_fd(const struct event_queue *q);
int event_queue_failed(struct event_queue *q);

/* Appends what is queued (for at most a few seconds) and stops the worker. */
void event_queue_stop(struct event_queue *q);

#endif
