/*
 * kv_conn: one client's bytes in and replies out, between the socket calls
 * (the guest's loop) and the engine. Pure: the unit and fuzz tests drive the
 * exact code the guest runs.
 */
#ifndef KV_CONN_H
#define KV_CONN_H

#include "kv_engine.h"

struct kv_conn {
	struct kv_buf in, out;
	bool closing; /* close once out has drained (QUIT, protocol error) */
};

/* Empty buffers on heap: input up to in_limit bytes, replies up to
 * KV_MAX_OUTPUT. */
void kv_conn_init(struct kv_conn *c, struct kv_heap *heap, size_t in_limit);

/* Gives both buffers back. */
void kv_conn_release(struct kv_conn *c);

/* Runs every whole command in c->in while c->out holds less than out_high
 * bytes (backpressure), consuming what ran. A protocol error queues
 * "-ERR Protocol error: ..." , drops the input and sets closing; QUIT sets
 * closing after its reply. req is scratch space. Returns false when a reply
 * could not be queued (c->out.failed): the caller closes the connection. */
bool kv_conn_run(struct kv_conn *c, struct kv_engine *e, struct kv_req *req, size_t out_high);

/* Whether c holds commands kv_conn_run would run now. */
bool kv_conn_runnable(const struct kv_conn *c, size_t out_high);

#endif /* KV_CONN_H */
