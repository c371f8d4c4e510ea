/*
 * kv_engine: kvstore's commands. It takes one parsed command (kv_req) and
 * appends its reply to the client's output buffer; a write is checked,
 * reserved in the log, applied to the keyspace and appended to the log's
 * pending batch, in that order, so that the log holds exactly the writes
 * that happened. The caller commits the batch (kv_log_commit) before it sends
 * any reply produced since the last commit.
 *
 * Commands (Redis semantics for what they cover; docs/kvstore.md lists the
 * differences): PING ECHO GET SET [NX|XX] [EX s|PX ms|KEEPTTL] DEL EXISTS
 * INCR INCRBY DECR DECRBY MGET MSET APPEND STRLEN DBSIZE FLUSHALL SELECT INFO
 * COMMAND [COUNT|INFO] CONFIG GET QUIT.
 *
 * Time: the caller sets now_mono (guest monotonic ns) and now_wall (wall
 * clock ns) before each batch of commands. Expiry counts on the monotonic
 * clock; the log stores wall-clock expiry times, so a key's deadline holds
 * across reboots (a guest paused for a while still sees its keys live as long
 * as they had left when it paused).
 */
#ifndef KV_ENGINE_H
#define KV_ENGINE_H

#include "kv_db.h"
#include "kv_log.h"
#include "kv_resp.h"

struct kv_stats {
	uint64_t commands;    /* commands executed */
	uint64_t connections; /* connections accepted (the caller counts) */
	uint64_t rejected;    /* connections refused: too many clients (the caller counts) */
	uint64_t clients;     /* clients connected now (the caller sets) */
	uint64_t max_clients; /* the caller's limit, for INFO */
	uint64_t rounds;      /* poll rounds (the caller counts) */
};

struct kv_engine {
	struct kv_heap *heap;
	struct kv_db db;
	struct kv_log *log; /* NULL: not durable (no disk) */
	uint64_t now_mono, now_wall, start_mono;
	int io_error;       /* the first log I/O error; once set, nothing may be acknowledged */
	struct kv_stats stats;
	size_t image_iter_bucket;             /* compaction's iteration state */
	const struct kv_entry *image_iter_entry;
};

enum kv_exec_flags {
	KV_EXEC_CLOSE = 1, /* QUIT: close the connection once the reply is sent */
};

/* Sets up the engine; log may be NULL. maxmemory bounds the keyspace (see
 * kv_db.h). Returns 0 or -KV_ENOMEM. */
int kv_engine_init(struct kv_engine *e, struct kv_heap *heap, struct kv_log *log, uint64_t seed,
		   size_t maxmemory);

/* The replay callback for kv_log_open (ctx = the engine): applies a logged
 * write. e->now_mono and e->now_wall must be set. */
int kv_engine_apply(void *ctx, const struct kv_log_rec *r);

/* Runs one command and appends its reply to out. Returns enum kv_exec_flags.
 * req->argc is at least 1. */
int kv_engine_exec(struct kv_engine *e, const struct kv_req *req, struct kv_buf *out);

/* Commits the pending log batch (see kv_log_commit) and compacts the log when
 * it has grown enough. Returns 0 or the I/O error (also kept in io_error). */
int kv_engine_commit(struct kv_engine *e);

/* Compacts the log now. Returns 0, -KV_ENOSPC or an I/O error. */
int kv_engine_compact(struct kv_engine *e);

/* The log bytes an image of the keyspace would take (an estimate from above). */
uint64_t kv_engine_image_bytes(const struct kv_engine *e);

#endif /* KV_ENGINE_H */
