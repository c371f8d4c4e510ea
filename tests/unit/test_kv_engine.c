/* kvstore's command engine (hv-core/guest/kvstore/kv_engine.c): every command
 * and its errors as Redis words them, expiry on the monotonic clock, the
 * memory bound, and the log: what is logged replays into the same keyspace,
 * compaction keeps it, a full disk and a failed disk refuse writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_engine.h"
#include "kv_test_disk.h"

#define HEAP_SIZE (32u << 20)
#define MS 1000000ull
#define WALL0 1700000000000000000ull

struct fixture {
	uint8_t *mem;
	struct kv_heap heap;
	struct kv_engine e;
	struct kv_log log;
	struct memdisk disk;
	struct kv_req req;
	struct kv_buf out;
	char reply[4096];
};

static struct fixture *fx;

/* Opens an engine (and its log on fx->disk when with_log). */
static void engine_open(bool with_log, size_t maxmemory, uint64_t mono, uint64_t wall)
{
	assert_int_equal(kv_engine_init(&fx->e, &fx->heap, NULL, 42, maxmemory), 0);
	fx->e.now_mono = mono;
	fx->e.now_wall = wall;
	if (with_log) {
		struct kv_disk d = memdisk_disk(&fx->disk);
		struct kv_log_report rep;
		assert_int_equal(kv_log_open(&fx->log, &d, &fx->heap, mono ^ wall, 7, kv_engine_apply,
					     &fx->e, &rep), 0);
		fx->e.log = &fx->log;
	}
	kv_buf_init(&fx->out, &fx->heap, 1 << 20);
}

static void engine_close(void)
{
	kv_buf_release(&fx->out);
	kv_db_flush(&fx->e.db);
	kv_heap_free(&fx->heap, fx->e.db.table);
	if (fx->e.log)
		kv_log_close(fx->e.log);
	assert_int_equal(fx->heap.used, 0);
}

static int setup(void **state)
{
	(void)state;
	fx = calloc(1, sizeof(*fx));
	fx->mem = malloc(HEAP_SIZE);
	assert_int_equal(kv_heap_init(&fx->heap, fx->mem, HEAP_SIZE), 0);
	memdisk_init(&fx->disk, 8192 + 2 * (256u << 10));
	engine_open(true, HEAP_SIZE / 2, 5 * MS, WALL0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	engine_close();
	memdisk_free(&fx->disk);
	free(fx->mem);
	free(fx);
	return 0;
}

/* Runs a command given as words (inline form, so no spaces inside words)
 * and returns its reply. */
static const char *run(const char *line)
{
	char buf[1024];
	const char *err;
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);
	assert_int_equal(kv_resp_parse((const uint8_t *)buf, (size_t)n, &fx->req, &err), KV_PARSE_OK);
	assert_true(fx->req.argc > 0);
	kv_buf_consume(&fx->out, kv_buf_size(&fx->out));
	kv_engine_exec(&fx->e, &fx->req, &fx->out);
	assert_false(fx->out.failed);
	size_t len = kv_buf_size(&fx->out);
	assert_true(len < sizeof(fx->reply));
	memcpy(fx->reply, kv_buf_head(&fx->out), len);
	fx->reply[len] = 0;
	return fx->reply;
}

#define RUN(line, want) assert_string_equal(run(line), want)

/* Replaces the fixture's engine with one on a fresh disk of disk_size bytes. */
static void fresh_engine(size_t disk_size, size_t maxmemory)
{
	engine_close();
	memdisk_free(&fx->disk);
	memdisk_init(&fx->disk, disk_size);
	engine_open(true, maxmemory, 5 * MS, WALL0);
}

static void strings_set_get_and_the_set_options(void **state)
{
	(void)state;
	RUN("GET k", "$-1\r\n");
	RUN("SET k v", "+OK\r\n");
	RUN("get k", "$1\r\nv\r\n");
	RUN("SET k w NX", "$-1\r\n");
	RUN("SET k w XX", "+OK\r\n");
	RUN("SET other w XX", "$-1\r\n");
	RUN("SET other w nx", "+OK\r\n");
	RUN("SET k v NX XX", "-ERR syntax error\r\n");
	RUN("SET k v EX 1 PX 1", "-ERR syntax error\r\n");
	RUN("SET k v EX", "-ERR syntax error\r\n");
	RUN("SET k v BOGUS", "-ERR syntax error\r\n");
	RUN("SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n");
	RUN("SET k v PX -5", "-ERR invalid expire time in 'set' command\r\n");
	RUN("SET k v EX 99999999999999999", "-ERR invalid expire time in 'set' command\r\n");
	RUN("SET k v EX x", "-ERR value is not an integer or out of range\r\n");
	RUN("GET k", "$1\r\nw\r\n"); /* none of the refused SETs changed it */
	RUN("SET", "-ERR wrong number of arguments for 'set' command\r\n");
	RUN("GET a b", "-ERR wrong number of arguments for 'get' command\r\n");
}

static void keys_expire_on_the_monotonic_clock(void **state)
{
	(void)state;
	uint64_t t0 = fx->e.now_mono;
	RUN("SET a 1 PX 100", "+OK\r\n");
	RUN("SET b 2 EX 1", "+OK\r\n");
	RUN("SET c 3 PX 100", "+OK\r\n");
	RUN("SET c 3", "+OK\r\n"); /* a plain SET drops the TTL */
	RUN("SET d 4 PX 100", "+OK\r\n");
	RUN("SET d 5 XX KEEPTTL", "+OK\r\n");
	RUN("INCR a", ":2\r\n");   /* INCR keeps the TTL */
	fx->e.now_mono = t0 + 99 * MS;
	RUN("EXISTS a b c d", ":4\r\n");
	fx->e.now_mono = t0 + 100 * MS;
	RUN("GET a", "$-1\r\n");
	RUN("GET d", "$-1\r\n");
	RUN("GET c", "$1\r\n3\r\n");
	RUN("DBSIZE", ":2\r\n"); /* a and d were removed when touched */
	fx->e.now_mono = t0 + 1000 * MS;
	assert_int_equal(kv_db_sweep(&fx->e.db, fx->e.now_mono, 1 << 20), 1); /* b */
	RUN("DBSIZE", ":1\r\n");
	assert_int_equal(fx->e.db.expired, 3);
	RUN("SET a 1 PX 10", "+OK\r\n");
	fx->e.now_mono += 10 * MS;
	RUN("SET a 2 NX", "+OK\r\n"); /* expired counts as absent */
	RUN("DEL a", ":1\r\n");
}

static void counters_and_their_errors(void **state)
{
	(void)state;
	RUN("INCR n", ":1\r\n");
	RUN("INCRBY n 41", ":42\r\n");
	RUN("DECR n", ":41\r\n");
	RUN("DECRBY n 50", ":-9\r\n");
	RUN("GET n", "$2\r\n-9\r\n");
	RUN("INCRBY n x", "-ERR value is not an integer or out of range\r\n");
	RUN("SET s abc", "+OK\r\n");
	RUN("INCR s", "-ERR value is not an integer or out of range\r\n");
	RUN("SET s 007", "+OK\r\n");
	RUN("INCR s", "-ERR value is not an integer or out of range\r\n");
	RUN("SET big 9223372036854775807", "+OK\r\n");
	RUN("INCR big", "-ERR increment or decrement would overflow\r\n");
	RUN("SET small -9223372036854775808", "+OK\r\n");
	RUN("DECR small", "-ERR increment or decrement would overflow\r\n");
	RUN("DECRBY n -9223372036854775808", "-ERR value is not an integer or out of range\r\n");
	RUN("INCR", "-ERR wrong number of arguments for 'incr' command\r\n");
}

static void multi_key_commands_and_strings(void **state)
{
	(void)state;
	RUN("MSET a 1 b 2 c 3", "+OK\r\n");
	RUN("MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n");
	RUN("MGET a nope c", "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n");
	RUN("EXISTS a a nope", ":2\r\n");
	RUN("DEL a nope b", ":2\r\n");
	RUN("DEL a", ":0\r\n");
	RUN("APPEND c 45", ":3\r\n");
	RUN("APPEND fresh xyz", ":3\r\n");
	RUN("STRLEN c", ":3\r\n");
	RUN("STRLEN nope", ":0\r\n");
	RUN("GET c", "$3\r\n345\r\n");
	RUN("DBSIZE", ":2\r\n");
	RUN("FLUSHALL", "+OK\r\n");
	RUN("FLUSHALL BOGUS", "-ERR syntax error\r\n");
	RUN("DBSIZE", ":0\r\n");
}

static void appends_grow_a_value_up_to_the_bulk_limit(void **state)
{
	(void)state;
	fresh_engine(8192 + 2 * (8u << 20), HEAP_SIZE / 2);
	static char big[KV_MAX_BULK + 1];
	memset(big, 'x', KV_MAX_BULK);
	struct kv_req *r = &fx->req;
	r->argc = 3;
	r->argv[0] = (const uint8_t *)"APPEND";
	r->len[0] = 6;
	r->argv[1] = (const uint8_t *)"v";
	r->len[1] = 1;
	r->argv[2] = (const uint8_t *)big;
	r->len[2] = KV_MAX_BULK - 1;
	kv_buf_consume(&fx->out, kv_buf_size(&fx->out));
	kv_engine_exec(&fx->e, r, &fx->out);
	assert_int_equal(kv_buf_size(&fx->out), 10);
	assert_memory_equal(kv_buf_head(&fx->out), ":1048575\r\n", 10);
	RUN("APPEND v a", ":1048576\r\n");
	RUN("APPEND v b", "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
	RUN("STRLEN v", ":1048576\r\n");
	assert_int_equal(kv_engine_commit(&fx->e), 0);
}

static void server_commands_redis_cli_and_redis_benchmark_use(void **state)
{
	(void)state;
	RUN("PING", "+PONG\r\n");
	RUN("PING hi", "$2\r\nhi\r\n");
	RUN("PING a b", "-ERR wrong number of arguments for 'ping' command\r\n");
	RUN("ECHO x", "$1\r\nx\r\n");
	RUN("SELECT 0", "+OK\r\n");
	RUN("SELECT 1", "-ERR DB index is out of range\r\n");
	RUN("SELECT x", "-ERR value is not an integer or out of range\r\n");
	RUN("COMMAND COUNT", ":21\r\n");
	RUN("COMMAND DOCS", "-ERR unknown subcommand 'DOCS'. Try COMMAND HELP.\r\n");
	RUN("COMMAND INFO get nope",
	    "*2\r\n*6\r\n$3\r\nget\r\n:2\r\n*1\r\n+readonly\r\n:1\r\n:1\r\n:1\r\n*-1\r\n");
	RUN("COMMAND BOGUS", "-ERR unknown subcommand 'BOGUS'. Try COMMAND HELP.\r\n");
	const char *head = "*21\r\n*6\r\n$4\r\nping\r\n:-1\r\n*1\r\n+fast\r\n";
	assert_memory_equal(run("COMMAND"), head, strlen(head));
	RUN("CONFIG GET save appendonly", "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n");
	RUN("CONFIG GET nope", "*0\r\n");
	RUN("NOSUCH a b c d e", "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' 'c' \r\n");
	const char *info = run("INFO");
	assert_non_null(strstr(info, "# Server\r\nredis_version:"));
	assert_non_null(strstr(info, "aof_enabled:1\r\n"));
	assert_non_null(strstr(info, "total_commands_processed:"));
	struct kv_req *r = &fx->req;
	r->argc = 1;
	r->argv[0] = (const uint8_t *)"quit";
	r->len[0] = 4;
	assert_int_equal(kv_engine_exec(&fx->e, r, &fx->out), KV_EXEC_CLOSE);
}

static void a_full_keyspace_refuses_writes_but_serves_reads_and_deletes(void **state)
{
	(void)state;
	/* maxmemory counts every heap byte: the log's 4 MiB batch buffer, and
	 * 2 MiB more for the keys. */
	fresh_engine(8192 + 2 * (8u << 20), 6u << 20);
	char line[600], val[500];
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = 0;
	int stored = 0;
	for (int i = 0; i < 100000; i++) {
		snprintf(line, sizeof(line), "SET key%d %s", i, val);
		const char *rep = run(line);
		if (rep[0] == '-') {
			assert_string_equal(rep, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
			break;
		}
		assert_string_equal(rep, "+OK\r\n");
		stored++;
		if (i % 32 == 0)
			assert_int_equal(kv_engine_commit(&fx->e), 0);
	}
	assert_true(stored > 100);
	assert_true(fx->heap.used <= 6u << 20);
	RUN("GET key0", "$499\r\n" "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
	    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n");
	snprintf(line, sizeof(line), "EXISTS key%d", stored);
	RUN(line, ":0\r\n"); /* the refused write did not happen */
	RUN("DEL key0 key1", ":2\r\n");
	snprintf(line, sizeof(line), "SET again %s", val);
	RUN(line, "+OK\r\n"); /* room again */
	assert_int_equal(kv_engine_commit(&fx->e), 0);
}

/* Closes the engine and opens a fresh one on the same disk at the given
 * clocks: the keyspace is what the log replays. */
static void reboot(uint64_t mono, uint64_t wall)
{
	engine_close();
	engine_open(true, HEAP_SIZE / 2, mono, wall);
}

static void the_log_replays_the_same_keyspace_with_ttls_in_wall_time(void **state)
{
	(void)state;
	RUN("SET a 1", "+OK\r\n");
	RUN("MSET b 2 c 3", "+OK\r\n");
	RUN("DEL b", ":1\r\n");
	RUN("INCRBY a 9", ":10\r\n");
	RUN("APPEND c 33", ":3\r\n");
	RUN("SET ttl x EX 100", "+OK\r\n");
	RUN("SET short x PX 500", "+OK\r\n");
	RUN("GET a", "$2\r\n10\r\n"); /* reads log nothing */
	unsigned flushes = fx->disk.flushes;
	assert_int_equal(kv_engine_commit(&fx->e), 0);
	assert_int_equal(fx->disk.flushes, flushes + 1); /* one flush for the batch */
	assert_int_equal(kv_engine_commit(&fx->e), 0);
	assert_int_equal(fx->disk.flushes, flushes + 1); /* nothing pending: no flush */
	RUN("SET uncommitted x", "+OK\r\n");
	/* A crash before the commit: the durable image lacks the last write. */
	struct memdisk saved;
	memdisk_clone(&saved, &fx->disk, true);
	memdisk_free(&fx->disk);
	fx->disk = saved;
	/* Next boot 50 s of wall time later, its monotonic clock from zero. */
	reboot(1 * MS, WALL0 + 50000 * MS);
	RUN("MGET a b c ttl short uncommitted",
	    "*6\r\n$2\r\n10\r\n$-1\r\n$3\r\n333\r\n$1\r\nx\r\n$-1\r\n$-1\r\n");
	struct kv_entry *x = kv_db_get(&fx->e.db, "ttl", 3, fx->e.now_mono);
	assert_non_null(x);
	assert_int_equal(x->expire, 1 * MS + 50000 * MS); /* 50 s of its 100 left */
	fx->e.now_mono += 50000 * MS;
	RUN("EXISTS ttl", ":0\r\n");
}

static void the_log_compacts_as_it_grows_and_keeps_everything(void **state)
{
	(void)state;
	char line[128];
	/* 256 KiB regions: rewriting 40 keys over and over fills one many times. */
	for (int i = 0; i < 20000; i++) {
		snprintf(line, sizeof(line), "SET key%d value-%d", i % 40, i);
		RUN(line, "+OK\r\n");
		if (i % 16 == 15)
			assert_int_equal(kv_engine_commit(&fx->e), 0);
	}
	RUN("SET last one", "+OK\r\n");
	assert_int_equal(kv_engine_commit(&fx->e), 0);
	assert_true(fx->log.compactions >= 3);
	assert_true(fx->log.tail < fx->log.region_len / 2 + 4096);
	reboot(1 * MS, WALL0);
	RUN("DBSIZE", ":41\r\n");
	RUN("GET key39", "$11\r\nvalue-19999\r\n");
	RUN("GET key0", "$11\r\nvalue-19960\r\n");
	RUN("GET last", "$3\r\none\r\n");
}

static void a_full_disk_refuses_the_write_and_keeps_the_rest(void **state)
{
	(void)state;
	char line[1200], val[1000];
	memset(val, 'd', sizeof(val) - 1);
	val[sizeof(val) - 1] = 0;
	int n = 0;
	for (;; n++) {
		snprintf(line, sizeof(line), "SET k%d %s", n, val);
		const char *rep = run(line);
		if (strcmp(rep, "+OK\r\n") != 0) {
			assert_string_equal(rep, "-ERR kvstore: the log disk is full\r\n");
			break;
		}
		assert_int_equal(kv_engine_commit(&fx->e), 0);
	}
	assert_true(n > 100);
	snprintf(line, sizeof(line), "EXISTS k%d", n);
	RUN(line, ":0\r\n");
	RUN("DEL k0 k1 k2", ":3\r\n"); /* deletes still log (and make room) */
	assert_int_equal(kv_engine_commit(&fx->e), 0);
	reboot(1 * MS, WALL0);
	snprintf(line, sizeof(line), "DBSIZE");
	char want[32];
	snprintf(want, sizeof(want), ":%d\r\n", n - 3);
	RUN(line, want);
}

static void a_failed_disk_stops_every_later_write(void **state)
{
	(void)state;
	RUN("SET a 1", "+OK\r\n");
	assert_int_equal(kv_engine_commit(&fx->e), 0);
	fx->disk.writes_left = 0;
	RUN("SET b 2", "+OK\r\n"); /* pending: its reply must not be sent... */
	assert_int_equal(kv_engine_commit(&fx->e), -KV_EIO); /* ...because this fails */
	assert_int_equal(fx->e.io_error, -KV_EIO);
	RUN("SET c 3", "-ERR kvstore: disk I/O error\r\n");
	RUN("GET a", "$1\r\n1\r\n");
	assert_int_equal(kv_engine_commit(&fx->e), -KV_EIO);
	const char *info = run("INFO");
	assert_non_null(strstr(info, "aof_last_write_status:err"));
	fx->disk.writes_left = -1;
	fx->disk.crashed = false;
}

static void count_yield(void *ctx)
{
	(*(unsigned *)ctx)++;
}

static void long_walks_yield_to_the_host(void **state)
{
	(void)state;
	/* A guest must make a hypercall every few seconds: growing the table
	 * and FLUSHALL over many keys call the yield hook on the way. */
	unsigned yields = 0;
	fx->e.db.yield = count_yield;
	fx->e.db.yield_ctx = &yields;
	char k[16];
	for (unsigned i = 0; i < 70000; i++) {
		int n = snprintf(k, sizeof(k), "k%u", i);
		assert_int_equal(kv_db_set(&fx->e.db, k, (size_t)n, "v", 1, 0), 0);
	}
	assert_int_equal(fx->e.db.buckets, 131072);
	unsigned after_growth = yields;
	assert_true(after_growth >= 1); /* the 65536 -> 131072 rehash moved 65536 */
	kv_db_flush(&fx->e.db);
	assert_int_equal(fx->e.db.count, 0);
	assert_int_equal(yields, after_growth + 1); /* 70000 freed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(strings_set_get_and_the_set_options, setup, teardown),
		cmocka_unit_test_setup_teardown(keys_expire_on_the_monotonic_clock, setup, teardown),
		cmocka_unit_test_setup_teardown(counters_and_their_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(multi_key_commands_and_strings, setup, teardown),
		cmocka_unit_test_setup_teardown(appends_grow_a_value_up_to_the_bulk_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(server_commands_redis_cli_and_redis_benchmark_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_full_keyspace_refuses_writes_but_serves_reads_and_deletes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(the_log_replays_the_same_keyspace_with_ttls_in_wall_time,
						setup, teardown),
		cmocka_unit_test_setup_teardown(the_log_compacts_as_it_grows_and_keeps_everything, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_full_disk_refuses_the_write_and_keeps_the_rest, setup,
						teardown),
		cmocka_unit_test_setup_teardown(a_failed_disk_stops_every_later_write, setup, teardown),
		cmocka_unit_test_setup_teardown(long_walks_yield_to_the_host, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
