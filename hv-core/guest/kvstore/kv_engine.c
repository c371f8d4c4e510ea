/* kv_engine: the commands; see kv_engine.h. */
#include "kv_engine.h"

#define NS_PER_MS 1000000ull
/* The longest TTL accepted, so that deadlines never overflow: ~292 years. */
#define MAX_TTL_MS (INT64_MAX / (int64_t)NS_PER_MS / 2)

#define ERR_SYNTAX "ERR syntax error"
#define ERR_NOT_INT "ERR value is not an integer or out of range"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_OOM "OOM command not allowed when used memory > 'maxmemory'."
#define ERR_DISK_FULL "ERR kvstore: the log disk is full"
#define ERR_IO "ERR kvstore: disk I/O error"
#define ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

struct kv_cmd {
	const char *name;
	size_t len; /* strlen(name) */
	int arity;  /* as Redis counts it: n exactly, or -n for at least n */
	const char *flag; /* COMMAND's one flag word */
	int first_key, last_key, step;
	void (*run)(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out);
};

static const struct kv_cmd *find_cmd(const uint8_t *name, size_t n);

int kv_engine_init(struct kv_engine *e, struct kv_heap *heap, struct kv_log *log, uint64_t seed,
		   size_t maxmemory)
{
	memset(e, 0, sizeof(*e));
	e->heap = heap;
	e->log = log;
	return kv_db_init(&e->db, heap, seed, maxmemory);
}

uint64_t kv_engine_image_bytes(const struct kv_engine *e)
{
	return e->db.payload + (uint64_t)e->db.count * (KV_LOG_HDR + 16u + 8u);
}

/* ---- expiry: monotonic in memory, wall clock in the log ------------------ */

static uint64_t wall_of(const struct kv_engine *e, uint64_t expire_mono)
{
	if (!expire_mono)
		return 0;
	uint64_t left = expire_mono > e->now_mono ? expire_mono - e->now_mono : 1;
	return e->now_wall + left;
}

/* ---- the log ------------------------------------------------------------- */

static int image_next(void *ctx, struct kv_log_rec *r)
{
	struct kv_engine *e = ctx;
	const struct kv_entry *x = e->image_iter_entry;

	for (;;) {
		x = kv_db_next(&e->db, &e->image_iter_bucket, x);
		if (!x) {
			e->image_iter_entry = NULL;
			return 0;
		}
		if (!x->expire || x->expire > e->now_mono)
			break;
	}
	e->image_iter_entry = x;
	memset(r, 0, sizeof(*r));
	r->op = KV_LOG_SET;
	r->key = kv_entry_key(x);
	r->klen = x->klen;
	r->val = x->data + x->klen;
	r->vlen = x->vlen;
	r->expire_wall = wall_of(e, x->expire);
	return 1;
}

int kv_engine_compact(struct kv_engine *e)
{
	if (!e->log)
		return 0;
	if (kv_engine_image_bytes(e) > e->log->region_len)
		return -KV_ENOSPC;
	e->image_iter_bucket = 0;
	e->image_iter_entry = NULL;
	int rc = kv_log_compact(e->log, image_next, e);
	if (rc < 0 && rc != -KV_ENOSPC && !e->io_error)
		e->io_error = rc;
	return rc;
}

int kv_engine_commit(struct kv_engine *e)
{
	if (!e->log || e->io_error)
		return e->io_error;
	int rc = kv_log_commit(e->log);
	if (rc < 0) {
		e->io_error = rc;
		return rc;
	}
	if (kv_log_should_compact(e->log, kv_engine_image_bytes(e))) {
		rc = kv_engine_compact(e);
		if (rc < 0 && rc != -KV_ENOSPC)
			return rc;
	}
	return 0;
}

/* Makes room in the log for r, compacting when the region is full. Replies
 * the error and returns false when the write must not happen. */
static bool log_reserve(struct kv_engine *e, const struct kv_log_rec *r, struct kv_buf *out)
{
	if (e->io_error) {
		kv_reply_error(out, ERR_IO);
		return false;
	}
	if (!e->log)
		return true;
	size_t size = kv_log_rec_size(r);
	int rc = kv_log_reserve(e->log, size);
	if (rc == -KV_ENOSPC) {
		rc = kv_engine_compact(e);
		if (rc == 0)
			rc = kv_log_reserve(e->log, size);
	}
	if (rc == -KV_ENOSPC) {
		kv_reply_error(out, ERR_DISK_FULL);
		return false;
	}
	if (rc < 0) {
		if (!e->io_error)
			e->io_error = rc;
		kv_reply_error(out, ERR_IO);
		return false;
	}
	return true;
}

static void log_append(struct kv_engine *e, const struct kv_log_rec *r)
{
	if (e->log)
		kv_log_append(e->log, r);
}

/* A logged SET: reserve, apply, append. Replies an error and returns false
 * when it did not happen. */
static bool do_set(struct kv_engine *e, const uint8_t *key, size_t klen, const void *val,
		   size_t vlen, uint64_t expire_mono, struct kv_buf *out)
{
	struct kv_log_rec r = {
		.op = KV_LOG_SET, .key = key, .klen = klen, .val = val, .vlen = vlen,
		.expire_wall = wall_of(e, expire_mono),
	};
	if (!log_reserve(e, &r, out))
		return false;
	if (kv_db_set(&e->db, key, klen, val, vlen, expire_mono) < 0) {
		kv_reply_error(out, ERR_OOM);
		return false;
	}
	log_append(e, &r);
	return true;
}

/* ---- replay -------------------------------------------------------------- */

int kv_engine_apply(void *ctx, const struct kv_log_rec *r)
{
	struct kv_engine *e = ctx;
	uint64_t expire = 0;
	struct kv_entry *x;

	switch (r->op) {
	case KV_LOG_SET:
		if (r->expire_wall) {
			if (r->expire_wall <= e->now_wall) {
				kv_db_del(&e->db, r->key, r->klen, e->now_mono);
				return 0;
			}
			expire = e->now_mono + (r->expire_wall - e->now_wall);
		}
		return kv_db_set(&e->db, r->key, r->klen, r->val, r->vlen, expire);
	case KV_LOG_APPEND:
		x = kv_db_get(&e->db, r->key, r->klen, e->now_mono);
		if (!x)
			return kv_db_set(&e->db, r->key, r->klen, r->val, r->vlen, 0);
		return kv_db_append(&e->db, &x, r->val, r->vlen);
	case KV_LOG_DEL:
		kv_db_del(&e->db, r->key, r->klen, e->now_mono);
		return 0;
	case KV_LOG_FLUSHALL:
		kv_db_flush(&e->db);
		return 0;
	}
	return -KV_EBADMSG;
}

/* ---- helpers ------------------------------------------------------------- */

/* Whether p[0..n) is word (upper case), ignoring ASCII case. */
static bool word_is(const uint8_t *p, size_t n, const char *word)
{
	size_t i = 0;
	for (; i < n && word[i]; i++) {
		uint8_t c = p[i];
		if (c >= 'a' && c <= 'z')
			c = (uint8_t)(c - 32);
		if (c != (uint8_t)word[i])
			return false;
	}
	return i == n && word[i] == 0;
}

static bool arg_is(const struct kv_req *r, unsigned i, const char *word)
{
	return word_is(r->argv[i], r->len[i], word);
}

static void append_cstr(struct kv_buf *out, const char *s)
{
	kv_buf_append(out, s, strlen(s));
}

/* Appends an argument for an error message: at most 128 bytes, and no bytes
 * that would break a RESP error line. */
static void append_arg_safe(struct kv_buf *out, const uint8_t *p, size_t n)
{
	if (n > 128)
		n = 128;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		kv_buf_append(out, (c == '\r' || c == '\n') ? (const uint8_t *)" " : &p[i], 1);
	}
}

/* ---- the commands -------------------------------------------------------- */

static void cmd_ping(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	(void)e;
	if (r->argc == 1)
		kv_reply_status(out, "PONG");
	else if (r->argc == 2)
		kv_reply_bulk(out, r->argv[1], r->len[1]);
	else
		kv_reply_error(out, "ERR wrong number of arguments for 'ping' command");
}

static void cmd_echo(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	(void)e;
	kv_reply_bulk(out, r->argv[1], r->len[1]);
}

static void reply_value(struct kv_engine *e, const uint8_t *key, size_t klen, struct kv_buf *out)
{
	struct kv_entry *x = kv_db_get(&e->db, key, klen, e->now_mono);
	if (x)
		kv_reply_bulk(out, kv_entry_value(x), x->vlen);
	else
		kv_reply_null(out);
}

static void cmd_get(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	reply_value(e, r->argv[1], r->len[1], out);
}

static void cmd_set(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	bool nx = false, xx = false, keepttl = false, has_ttl = false;
	int64_t ttl_ms = 0;

	for (unsigned i = 3; i < r->argc; i++) {
		if (arg_is(r, i, "NX") && !xx) {
			nx = true;
		} else if (arg_is(r, i, "XX") && !nx) {
			xx = true;
		} else if (arg_is(r, i, "KEEPTTL") && !has_ttl) {
			keepttl = true;
		} else if ((arg_is(r, i, "EX") || arg_is(r, i, "PX")) && !has_ttl && !keepttl &&
			   i + 1 < r->argc) {
			bool ex = arg_is(r, i, "EX");
			int64_t v;
			i++;
			if (kv_parse_i64(r->argv[i], r->len[i], &v) < 0) {
				kv_reply_error(out, ERR_NOT_INT);
				return;
			}
			if (v <= 0 || (ex && v > MAX_TTL_MS / 1000) || v > MAX_TTL_MS) {
				kv_reply_error(out, "ERR invalid expire time in 'set' command");
				return;
			}
			ttl_ms = ex ? v * 1000 : v;
			has_ttl = true;
		} else {
			kv_reply_error(out, ERR_SYNTAX);
			return;
		}
	}
	struct kv_entry *x = kv_db_get(&e->db, r->argv[1], r->len[1], e->now_mono);
	if ((nx && x) || (xx && !x)) {
		kv_reply_null(out);
		return;
	}
	uint64_t expire = 0;
	if (has_ttl)
		expire = e->now_mono + (uint64_t)ttl_ms * NS_PER_MS;
	else if (keepttl && x)
		expire = x->expire;
	if (do_set(e, r->argv[1], r->len[1], r->argv[2], r->len[2], expire, out))
		kv_buf_append(out, "+OK\r\n", 5);
}

static void cmd_del(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	int64_t n = 0;
	for (unsigned i = 1; i < r->argc; i++) {
		if (!kv_db_get(&e->db, r->argv[i], r->len[i], e->now_mono))
			continue;
		struct kv_log_rec rec = { .op = KV_LOG_DEL, .key = r->argv[i], .klen = r->len[i] };
		if (!log_reserve(e, &rec, out))
			return;
		n += kv_db_del(&e->db, r->argv[i], r->len[i], e->now_mono);
		log_append(e, &rec);
	}
	kv_reply_int(out, n);
}

static void cmd_exists(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	int64_t n = 0;
	for (unsigned i = 1; i < r->argc; i++)
		n += kv_db_get(&e->db, r->argv[i], r->len[i], e->now_mono) != NULL;
	kv_reply_int(out, n);
}

static void incr_by(struct kv_engine *e, const struct kv_req *r, int64_t by, struct kv_buf *out)
{
	struct kv_entry *x = kv_db_get(&e->db, r->argv[1], r->len[1], e->now_mono);
	int64_t v = 0;
	char num[24];

	if (x && kv_parse_i64(kv_entry_value(x), x->vlen, &v) < 0) {
		kv_reply_error(out, ERR_NOT_INT);
		return;
	}
	if ((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by)) {
		kv_reply_error(out, ERR_OVERFLOW);
		return;
	}
	v += by;
	size_t n = kv_fmt_i64(num, v);
	if (do_set(e, r->argv[1], r->len[1], num, n, x ? x->expire : 0, out))
		kv_reply_int(out, v);
}

static void cmd_incr(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	incr_by(e, r, 1, out);
}

static void cmd_decr(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	incr_by(e, r, -1, out);
}

static void cmd_incrby(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	int64_t by;
	if (kv_parse_i64(r->argv[2], r->len[2], &by) < 0) {
		kv_reply_error(out, ERR_NOT_INT);
		return;
	}
	incr_by(e, r, by, out);
}

static void cmd_decrby(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	int64_t by;
	if (kv_parse_i64(r->argv[2], r->len[2], &by) < 0 || by == INT64_MIN) {
		kv_reply_error(out, ERR_NOT_INT);
		return;
	}
	incr_by(e, r, -by, out);
}

static void cmd_mget(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	kv_reply_array(out, r->argc - 1);
	for (unsigned i = 1; i < r->argc; i++)
		reply_value(e, r->argv[i], r->len[i], out);
}

static void cmd_mset(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	if (r->argc % 2 == 0) {
		kv_reply_error(out, "ERR wrong number of arguments for 'mset' command");
		return;
	}
	for (unsigned i = 1; i < r->argc; i += 2) {
		if (!do_set(e, r->argv[i], r->len[i], r->argv[i + 1], r->len[i + 1], 0, out))
			return;
	}
	kv_reply_status(out, "OK");
}

static void cmd_append(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	struct kv_entry *x = kv_db_get(&e->db, r->argv[1], r->len[1], e->now_mono);
	size_t total = (x ? x->vlen : 0) + r->len[2];

	if (total > KV_MAX_BULK) {
		kv_reply_error(out, ERR_TOO_BIG);
		return;
	}
	if (!x) {
		if (do_set(e, r->argv[1], r->len[1], r->argv[2], r->len[2], 0, out))
			kv_reply_int(out, (int64_t)total);
		return;
	}
	struct kv_log_rec rec = { .op = KV_LOG_APPEND, .key = r->argv[1], .klen = r->len[1],
				  .val = r->argv[2], .vlen = r->len[2] };
	if (!log_reserve(e, &rec, out))
		return;
	/* The reservation may have compacted the log: that moves nothing in
	 * memory, so x is still the entry. */
	if (kv_db_append(&e->db, &x, r->argv[2], r->len[2]) < 0) {
		kv_reply_error(out, ERR_OOM);
		return;
	}
	log_append(e, &rec);
	kv_reply_int(out, (int64_t)total);
}

static void cmd_strlen(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	struct kv_entry *x = kv_db_get(&e->db, r->argv[1], r->len[1], e->now_mono);
	kv_reply_int(out, x ? (int64_t)x->vlen : 0);
}

static void cmd_dbsize(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	(void)r;
	kv_reply_int(out, (int64_t)e->db.count);
}

static void cmd_flushall(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	for (unsigned i = 1; i < r->argc; i++) {
		if (!arg_is(r, i, "SYNC") && !arg_is(r, i, "ASYNC")) {
			kv_reply_error(out, ERR_SYNTAX);
			return;
		}
	}
	struct kv_log_rec rec = { .op = KV_LOG_FLUSHALL };
	if (!log_reserve(e, &rec, out))
		return;
	kv_db_flush(&e->db);
	log_append(e, &rec);
	kv_reply_status(out, "OK");
}

static void cmd_select(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	int64_t db;
	(void)e;
	if (kv_parse_i64(r->argv[1], r->len[1], &db) < 0)
		kv_reply_error(out, ERR_NOT_INT);
	else if (db != 0)
		kv_reply_error(out, "ERR DB index is out of range");
	else
		kv_reply_status(out, "OK");
}

static void info_line(struct kv_buf *b, const char *name, uint64_t v)
{
	char num[24];
	append_cstr(b, name);
	kv_buf_append(b, ":", 1);
	kv_buf_append(b, num, kv_fmt_i64(num, (int64_t)v));
	kv_buf_append(b, "\r\n", 2);
}

static void cmd_info(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	struct kv_buf b;
	(void)r; /* every section, whatever was asked */
	kv_buf_init(&b, e->heap, 64 * 1024);
	append_cstr(&b, "# Server\r\nredis_version:7.0.0\r\nkvstore_version:1\r\n"
			"redis_mode:standalone\r\nos:pvha guest\r\n");
	info_line(&b, "uptime_in_seconds", (e->now_mono - e->start_mono) / 1000000000u);
	append_cstr(&b, "\r\n# Clients\r\n");
	info_line(&b, "connected_clients", e->stats.clients);
	info_line(&b, "maxclients", e->stats.max_clients);
	append_cstr(&b, "\r\n# Memory\r\n");
	info_line(&b, "used_memory", e->heap->used);
	info_line(&b, "maxmemory", e->db.maxmemory);
	info_line(&b, "total_system_memory", e->heap->size);
	append_cstr(&b, "\r\n# Persistence\r\n");
	info_line(&b, "aof_enabled", e->log != NULL);
	append_cstr(&b, e->io_error ? "aof_last_write_status:err\r\n" : "aof_last_write_status:ok\r\n");
	if (e->log) {
		info_line(&b, "aof_current_size", e->log->tail);
		info_line(&b, "aof_rewrites", e->log->compactions);
		info_line(&b, "kv_log_generation", e->log->gen);
		info_line(&b, "kv_log_region_bytes", e->log->region_len);
		info_line(&b, "kv_log_commits", e->log->commits);
	}
	append_cstr(&b, "\r\n# Stats\r\n");
	info_line(&b, "total_connections_received", e->stats.connections);
	info_line(&b, "total_commands_processed", e->stats.commands);
	info_line(&b, "rejected_connections", e->stats.rejected);
	info_line(&b, "kv_poll_rounds", e->stats.rounds);
	info_line(&b, "expired_keys", e->db.expired);
	append_cstr(&b, "\r\n# Keyspace\r\n");
	if (e->db.count) {
		append_cstr(&b, "db0:keys=");
		char num[24];
		kv_buf_append(&b, num, kv_fmt_i64(num, (int64_t)e->db.count));
		append_cstr(&b, ",expires=0,avg_ttl=0\r\n");
	}
	if (b.failed)
		kv_reply_error(out, ERR_OOM);
	else
		kv_reply_bulk(out, kv_buf_head(&b), kv_buf_size(&b));
	kv_buf_release(&b);
}

/* CONFIG GET with exact names: what redis-benchmark asks at start. */
static void cmd_config(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	static const char *const known[][2] = {
		{ "save", "" }, { "appendonly", "yes" }, { "appendfsync", "always" },
		{ "databases", "1" },
	};
	size_t nknown = sizeof(known) / sizeof(known[0]);

	if (!arg_is(r, 1, "GET") || r->argc < 3) {
		kv_reply_error(out, "ERR kvstore supports only CONFIG GET parameter...");
		return;
	}
	size_t found = 0;
	for (unsigned i = 2; i < r->argc; i++) {
		for (size_t k = 0; k < nknown; k++)
			found += r->len[i] == strlen(known[k][0]) &&
				 memcmp(r->argv[i], known[k][0], r->len[i]) == 0;
	}
	kv_reply_array(out, found * 2);
	for (unsigned i = 2; i < r->argc; i++) {
		for (size_t k = 0; k < nknown; k++) {
			if (r->len[i] == strlen(known[k][0]) &&
			    memcmp(r->argv[i], known[k][0], r->len[i]) == 0) {
				kv_reply_cstr(out, known[k][0]);
				kv_reply_cstr(out, known[k][1]);
			}
		}
	}
	(void)e;
}

static void cmd_quit(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	(void)e;
	(void)r;
	kv_reply_status(out, "OK");
}

static void cmd_command(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out);

enum { CMD_GET = 2, CMD_SET = 3 }; /* their places in the table, for find_cmd */

static const struct kv_cmd commands[] = {
	{ "PING", 4, -1, "fast", 0, 0, 0, cmd_ping },
	{ "ECHO", 4, 2, "fast", 0, 0, 0, cmd_echo },
	[CMD_GET] = { "GET", 3, 2, "readonly", 1, 1, 1, cmd_get },
	[CMD_SET] = { "SET", 3, -3, "write", 1, 1, 1, cmd_set },
	{ "DEL", 3, -2, "write", 1, -1, 1, cmd_del },
	{ "EXISTS", 6, -2, "readonly", 1, -1, 1, cmd_exists },
	{ "INCR", 4, 2, "write", 1, 1, 1, cmd_incr },
	{ "INCRBY", 6, 3, "write", 1, 1, 1, cmd_incrby },
	{ "DECR", 4, 2, "write", 1, 1, 1, cmd_decr },
	{ "DECRBY", 6, 3, "write", 1, 1, 1, cmd_decrby },
	{ "MGET", 4, -2, "readonly", 1, -1, 1, cmd_mget },
	{ "MSET", 4, -3, "write", 1, -1, 2, cmd_mset },
	{ "APPEND", 6, 3, "write", 1, 1, 1, cmd_append },
	{ "STRLEN", 6, 2, "readonly", 1, 1, 1, cmd_strlen },
	{ "DBSIZE", 6, 1, "readonly", 0, 0, 0, cmd_dbsize },
	{ "FLUSHALL", 8, -1, "write", 0, 0, 0, cmd_flushall },
	{ "SELECT", 6, 2, "fast", 0, 0, 0, cmd_select },
	{ "INFO", 4, -1, "loading", 0, 0, 0, cmd_info },
	{ "COMMAND", 7, -1, "loading", 0, 0, 0, cmd_command },
	{ "CONFIG", 6, -2, "admin", 0, 0, 0, cmd_config },
	{ "QUIT", 4, -1, "fast", 0, 0, 0, cmd_quit },
};
static const size_t n_commands = sizeof(commands) / sizeof(commands[0]);

/* The command named name[0..n), any case, or NULL. GET and SET, what
 * clients send most, are told apart without the scan (& 0xdf folds the case
 * of these letters and of nothing else that could match). */
static const struct kv_cmd *find_cmd(const uint8_t *name, size_t n)
{
	if (n == 3 && (name[1] & 0xdf) == 'E' && (name[2] & 0xdf) == 'T') {
		if ((name[0] & 0xdf) == 'G')
			return &commands[CMD_GET];
		if ((name[0] & 0xdf) == 'S')
			return &commands[CMD_SET];
	}
	for (size_t i = 0; i < n_commands; i++) {
		if (commands[i].len == n && word_is(name, n, commands[i].name))
			return &commands[i];
	}
	return NULL;
}

static void command_info(const struct kv_cmd *c, struct kv_buf *out)
{
	kv_reply_array(out, 6);
	/* COMMAND names commands in lower case. */
	char name[16];
	size_t n = c->len;
	for (size_t i = 0; i < n; i++)
		name[i] = (char)(c->name[i] >= 'A' && c->name[i] <= 'Z' ? c->name[i] + 32 : c->name[i]);
	kv_reply_bulk(out, name, n);
	kv_reply_int(out, c->arity);
	kv_reply_array(out, 1);
	kv_reply_status(out, c->flag);
	kv_reply_int(out, c->first_key);
	kv_reply_int(out, c->last_key);
	kv_reply_int(out, c->step);
}

static void cmd_command(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	(void)e;
	if (r->argc == 1) {
		kv_reply_array(out, n_commands);
		for (size_t i = 0; i < n_commands; i++)
			command_info(&commands[i], out);
	} else if (arg_is(r, 1, "COUNT") && r->argc == 2) {
		kv_reply_int(out, (int64_t)n_commands);
	} else if (arg_is(r, 1, "INFO")) {
		kv_reply_array(out, r->argc - 2);
		for (unsigned i = 2; i < r->argc; i++) {
			const struct kv_cmd *c = find_cmd(r->argv[i], r->len[i]);
			if (c)
				command_info(c, out);
			else
				kv_buf_append(out, "*-1\r\n", 5);
		}
	} else {
		/* DOCS included: answered as a Redis 6 server does, so that
		 * redis-cli falls back to its built-in help. */
		kv_buf_append(out, "-ERR unknown subcommand '", 25);
		append_arg_safe(out, r->argv[1], r->len[1]);
		append_cstr(out, "'. Try COMMAND HELP.\r\n");
	}
}

int kv_engine_exec(struct kv_engine *e, const struct kv_req *r, struct kv_buf *out)
{
	const struct kv_cmd *c = find_cmd(r->argv[0], r->len[0]);

	e->stats.commands++;
	if (!c) {
		/* As Redis words it: the command and its first arguments. */
		append_cstr(out, "-ERR unknown command '");
		append_arg_safe(out, r->argv[0], r->len[0]);
		append_cstr(out, "', with args beginning with: ");
		for (unsigned i = 1; i < r->argc && i < 4; i++) {
			kv_buf_append(out, "'", 1);
			append_arg_safe(out, r->argv[i], r->len[i]);
			kv_buf_append(out, "' ", 2);
		}
		kv_buf_append(out, "\r\n", 2);
		return 0;
	}
	if ((c->arity > 0 && r->argc != (unsigned)c->arity) ||
	    (c->arity < 0 && r->argc < (unsigned)-c->arity)) {
		append_cstr(out, "-ERR wrong number of arguments for '");
		for (const char *p = c->name; *p; p++) {
			char lc = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			kv_buf_append(out, &lc, 1);
		}
		append_cstr(out, "' command\r\n");
		return 0;
	}
	c->run(e, r, out);
	return c->run == cmd_quit ? KV_EXEC_CLOSE : 0;
}
