/*
 * The kvstore guest under pvha-vmm on 127.0.0.1, driven by Debian's real
 * redis-cli (package redis-tools) and by raw sockets for what redis-cli will
 * not send: commands, pipelining, 64 clients at once, bad input over the
 * wire, a crash of the VMM with the data still there afterwards, a torn log
 * tail cut at boot, and the log compacting on a small disk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define VMM th_build("bin/pvha-vmm")
#define KVSTORE th_build("guests/kvstore.elf")
#define REGIONS_OFF 8192 /* the log's region 0 (kv_log.h) */

struct kvs {
	struct proc vmm;
	int port;
	char disk[512];
	const char *disk_size; /* for a new image, e.g. "64M" */
};

/* A port nobody listens on right now. */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Boots kvstore on the disk image at k->disk and waits until it listens. */
static void kvs_start(struct kvs *k)
{
	char spec[600], cmdline[64];
	snprintf(spec, sizeof(spec), "file:%s,size=%s", k->disk, k->disk_size ? k->disk_size : "64M");
	snprintf(cmdline, sizeof(cmdline), "port=%d", k->port);
	char *argv[] = { (char *)VMM, "--image", (char *)KVSTORE, "--mem", "64M", "--backend", "tcg",
			 "--disk", spec, "--address", "127.0.0.1", "--cmdline", cmdline, NULL };
	th_spawn(&k->vmm, argv);
	if (!th_wait_for_text(k->vmm.out_path, "kvstore: listening on", 60)) {
		th_file_contains(k->vmm.err_path, "listening");
		fail_msg("kvstore did not start listening");
	}
}

static void kvs_new(struct kvs *k, const char *name)
{
	memset(k, 0, sizeof(*k));
	k->port = free_port();
	snprintf(k->disk, sizeof(k->disk), "%s", th_tmp(name));
	kvs_start(k);
}

/* Kills the VMM as a crash would (SIGKILL: nothing flushed on the way out). */
static void kvs_crash(struct kvs *k)
{
	kill(k->vmm.pid, SIGKILL);
	th_wait(&k->vmm, 10);
}

/* Runs redis-cli with args against k; returns its stdout (malloc'd). */
static char *cli(const struct kvs *k, const char *const args[])
{
	char port[16];
	char *argv[32] = { "/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", port };
	size_t n = 5;
	snprintf(port, sizeof(port), "%d", k->port);
	for (; *args; args++)
		argv[n++] = (char *)*args;
	argv[n] = NULL;
	struct proc p;
	if (access(argv[0], X_OK) != 0)
		fail_msg("redis-cli is missing: deploy/install-deps installs redis-tools");
	assert_int_equal(th_run(&p, 30, argv), 0);
	return th_slurp(p.out_path);
}

/* want as redis-cli prints it without a terminal: an error reply's text is
 * followed by an empty line (as with redis-server itself). */
static void expect_cli(const struct kvs *k, const char *want, const char *const args[])
{
	char *out = cli(k, args);
	if (strcmp(out, want) != 0)
		fail_msg("redis-cli %s ...: got \"%s\", want \"%s\"", args[0], out, want);
	free(out);
}

#define CLI(k, want, ...) expect_cli((k), (want), (const char *const[]){ __VA_ARGS__, NULL })

/* Streams the raw RESP in the file at path through redis-cli --pipe and
 * checks that every one of the `replies` commands was answered without error. */
static void pipe_file(const struct kvs *k, const char *path, int replies)
{
	char cmd[700], want[64];
	snprintf(cmd, sizeof(cmd), "redis-cli -p %d --pipe < %s", k->port, path);
	snprintf(want, sizeof(want), "errors: 0, replies: %d", replies);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct proc p;
	assert_int_equal(th_run(&p, 300, argv), 0);
	assert_true(th_file_contains(p.out_path, want));
}

/* ---- raw sockets ---- */

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		assert_true(w > 0);
		b += w;
		n -= (size_t)w;
	}
}

/* Reads until `want` bytes came, or EOF, or 30 s. Returns the count. */
static size_t raw_recv(int fd, char *buf, size_t want)
{
	size_t got = 0;
	double end = th_now_s() + 30;
	while (got < want && th_now_s() < end) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		ssize_t r = recv(fd, buf + got, want - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Sends req (a C string), expects exactly reply back; with closes, expects
 * EOF after it. */
static void raw_exchange(int port, const char *req, const char *reply, bool closes)
{
	int fd = raw_connect(port);
	char buf[512];
	raw_send(fd, req, strlen(req));
	size_t n = raw_recv(fd, buf, strlen(reply));
	if (n != strlen(reply) || memcmp(buf, reply, n) != 0)
		fail_msg("sent \"%.40s\": got \"%.*s\", want \"%s\"", req, (int)n, buf, reply);
	if (closes)
		assert_int_equal(raw_recv(fd, buf, 1), 0); /* EOF: the server closed */
	close(fd);
}

/* ---- the tests ---- */

static void redis_cli_commands_answer_as_redis_does(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "cmds.img");
	CLI(&k, "PONG\n", "PING");
	CLI(&k, "hello world\n", "ECHO", "hello world");
	CLI(&k, "OK\n", "SET", "k", "v1");
	CLI(&k, "v1\n", "GET", "k");
	CLI(&k, "\n", "SET", "k", "v2", "NX");
	CLI(&k, "OK\n", "SET", "k", "v2", "XX");
	CLI(&k, "\n", "SET", "absent", "x", "XX");
	CLI(&k, "OK\n", "SET", "t", "x", "EX", "100");
	CLI(&k, "OK\n", "SET", "p", "x", "PX", "100000");
	CLI(&k, "ERR invalid expire time in 'set' command\n\n", "SET", "t", "x", "EX", "0");
	CLI(&k, "ERR syntax error\n\n", "SET", "t", "x", "NX", "XX");
	CLI(&k, "1\n", "INCR", "n");
	CLI(&k, "11\n", "INCRBY", "n", "10");
	CLI(&k, "10\n", "DECR", "n");
	CLI(&k, "ERR value is not an integer or out of range\n\n", "INCR", "k");
	CLI(&k, "OK\n", "MSET", "a", "1", "b", "2");
	CLI(&k, "1\n2\n\n", "MGET", "a", "b", "nope");
	CLI(&k, "5\n", "APPEND", "a", "2345");
	CLI(&k, "5\n", "STRLEN", "a");
	CLI(&k, "2\n", "EXISTS", "a", "b", "nope");
	CLI(&k, "1\n", "DEL", "b", "nope");
	CLI(&k, "5\n", "DBSIZE"); /* k t p n a */
	CLI(&k, "OK\n", "SELECT", "0");
	CLI(&k, "ERR DB index is out of range\n\n", "SELECT", "1");
	CLI(&k, "ERR unknown command 'NOSUCH', with args beginning with: 'x' \n\n", "NOSUCH", "x");
	CLI(&k, "ERR wrong number of arguments for 'get' command\n\n", "GET");
	char *info = cli(&k, (const char *const[]){ "INFO", NULL });
	assert_non_null(strstr(info, "redis_version:"));
	assert_non_null(strstr(info, "aof_enabled:1"));
	assert_non_null(strstr(info, "db0:keys=5"));
	free(info);
	char *count = cli(&k, (const char *const[]){ "COMMAND", "COUNT", NULL });
	assert_true(atoi(count) >= 20);
	free(count);
	CLI(&k, "OK\n", "FLUSHALL");
	CLI(&k, "0\n", "DBSIZE");
	kvs_crash(&k);
}

static void redis_cli_interactive_session_works(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "interactive.img");
	/* redis-cli reading commands from a pipe asks COMMAND DOCS first when
	 * interactive; here it also runs the lines one by one. */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "printf 'set x 1\\nincr x\\nget x\\nquit\\n' | redis-cli -p %d",
		 k.port);
	char *argv[] = { "/bin/sh", "-c", cmd, NULL };
	struct proc p;
	assert_int_equal(th_run(&p, 30, argv), 0);
	char *out = th_slurp(p.out_path);
	assert_string_equal(out, "OK\n2\n2\n"); /* QUIT prints nothing, as with redis-server */
	free(out);
	kvs_crash(&k);
}

static void pipelined_commands_all_answer_in_order(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "pipe.img");
	/* 20000 commands through redis-cli --pipe (raw RESP, one stream). */
	const char *path = th_tmp("pipe.resp");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 10000; i++) {
		char key[32], val[32];
		int kl = snprintf(key, sizeof(key), "key:%d", i);
		int vl = snprintf(val, sizeof(val), "value-%d", i * 7);
		fprintf(f, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kl, key, vl, val);
		fprintf(f, "*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n");
	}
	fclose(f);
	pipe_file(&k, path, 20000);
	CLI(&k, "10000\n", "GET", "counter");
	CLI(&k, "value-69993\n", "GET", "key:9999");
	CLI(&k, "10001\n", "DBSIZE");
	/* Pipelining over one raw socket: replies come back in order. */
	int fd = raw_connect(k.port);
	const char req[] = "PING\r\n*2\r\n$3\r\nGET\r\n$5\r\nkey:1\r\n*1\r\n$4\r\nPING\r\n";
	const char want[] = "+PONG\r\n$7\r\nvalue-7\r\n+PONG\r\n";
	char buf[64];
	raw_send(fd, req, sizeof(req) - 1);
	assert_int_equal(raw_recv(fd, buf, sizeof(want) - 1), sizeof(want) - 1);
	assert_memory_equal(buf, want, sizeof(want) - 1);
	close(fd);
	kvs_crash(&k);
}

static void sixty_four_clients_are_served_at_once(void **state)
{
	(void)state;
	enum { N = 64 };
	struct kvs k;
	int fd[N];
	kvs_new(&k, "clients.img");
	for (int i = 0; i < N; i++)
		fd[i] = raw_connect(k.port);
	/* Every client sends, before any reads: all 64 are open together. */
	for (int i = 0; i < N; i++) {
		char req[128];
		int n = snprintf(req, sizeof(req), "*3\r\n$3\r\nSET\r\n$4\r\nc%03d\r\n$4\r\nv%03d\r\n"
				 "*2\r\n$4\r\nINCR\r\n$6\r\nshared\r\n", i, i);
		raw_send(fd[i], req, (size_t)n);
	}
	char *info = cli(&k, (const char *const[]){ "INFO", "clients", NULL });
	assert_non_null(strstr(info, "connected_clients:65")); /* the 64 and this one */
	free(info);
	for (int i = 0; i < N; i++) {
		char buf[64];
		size_t n = raw_recv(fd[i], buf, 5);
		assert_int_equal(n, 5);
		assert_memory_equal(buf, "+OK\r\n", 5);
		n = raw_recv(fd[i], buf, 1);
		assert_int_equal(n, 1);
		assert_int_equal(buf[0], ':');
		close(fd[i]);
	}
	CLI(&k, "64\n", "GET", "shared");
	CLI(&k, "v063\n", "GET", "c063");
	kvs_crash(&k);
}

static void a_one_mib_value_travels_whole_both_ways(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "big.img");
	size_t n = 1u << 20;
	char *val = malloc(n);
	for (size_t i = 0; i < n; i++)
		val[i] = (char)('a' + i % 26);
	char head[64];
	int hl = snprintf(head, sizeof(head), "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", n);
	int fd = raw_connect(k.port);
	raw_send(fd, head, (size_t)hl);
	raw_send(fd, val, n);
	/* Pipelined behind it: a GET whose 1 MiB reply exceeds every socket
	 * buffer on the way (the guest sends it in pieces as room appears). */
	static const char get[] = "\r\n*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
	raw_send(fd, get, sizeof(get) - 1);
	char *buf = malloc(n + 64);
	assert_int_equal(raw_recv(fd, buf, 5), 5);
	assert_memory_equal(buf, "+OK\r\n", 5);
	hl = snprintf(head, sizeof(head), "$%zu\r\n", n);
	assert_int_equal(raw_recv(fd, buf, (size_t)hl + n + 2), (size_t)hl + n + 2);
	assert_memory_equal(buf, head, (size_t)hl);
	assert_memory_equal(buf + hl, val, n);
	assert_memory_equal(buf + hl + n, "\r\n", 2);
	close(fd);
	CLI(&k, "1048576\n", "STRLEN", "big");
	kvs_crash(&k);
	kvs_start(&k); /* and from the log */
	CLI(&k, "1048576\n", "STRLEN", "big");
	free(buf);
	free(val);
	kvs_crash(&k);
}

static void bad_input_gets_an_error_and_a_close_and_others_go_on(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "bad.img");
	raw_exchange(k.port, "*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n", true);
	raw_exchange(k.port, "*1\r\n$99999999999999\r\n",
		     "-ERR Protocol error: invalid bulk length\r\n", true);
	raw_exchange(k.port, "*2\r\n$3\r\nSET\r\n$1048577\r\n",
		     "-ERR Protocol error: invalid bulk length\r\n", true);
	raw_exchange(k.port, "*99999\r\n", "-ERR Protocol error: invalid multibulk length\r\n", true);
	raw_exchange(k.port, "*1\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n", true);
	raw_exchange(k.port, "\x01\x02\xff garbage\n",
		     "-ERR unknown command '\x01\x02\xff', with args beginning with: 'garbage' \r\n",
		     false);
	/* A huge inline line: refused once 64 KiB came without a newline. */
	{
		int fd = raw_connect(k.port);
		static char junk[70000];
		memset(junk, 'j', sizeof(junk));
		raw_send(fd, junk, sizeof(junk));
		char buf[128];
		const char *want = "-ERR Protocol error: too big inline request\r\n";
		assert_int_equal(raw_recv(fd, buf, strlen(want)), strlen(want));
		assert_memory_equal(buf, want, strlen(want));
		close(fd);
	}
	/* A truncated frame, then the client goes away: nothing runs, nothing hangs. */
	{
		int fd = raw_connect(k.port);
		static const char part[] = "*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$10\r\nabc";
		raw_send(fd, part, sizeof(part) - 1);
		close(fd);
	}
	/* QUIT answers and closes. */
	raw_exchange(k.port, "QUIT\r\n", "+OK\r\n", true);
	CLI(&k, "PONG\n", "PING");
	CLI(&k, "0\n", "EXISTS", "z");
	kvs_crash(&k);
}

static void acknowledged_writes_survive_a_vmm_crash(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "durable.img");
	CLI(&k, "OK\n", "SET", "kept", "before the crash");
	CLI(&k, "OK\n", "MSET", "a", "1", "b", "2", "c", "3");
	CLI(&k, "1\n", "DEL", "b");
	CLI(&k, "5\n", "APPEND", "c", "tail");
	CLI(&k, "OK\n", "SET", "ttl", "x", "EX", "1000");
	kvs_crash(&k);
	kvs_start(&k);
	assert_true(th_file_contains(k.vmm.out_path, "kvstore: replayed 7 records, generation 1"));
	CLI(&k, "before the crash\n", "GET", "kept");
	CLI(&k, "1\n\n3tail\n", "MGET", "a", "b", "c");
	CLI(&k, "4\n", "DBSIZE");
	kvs_crash(&k);
}

/* A number from INFO, e.g. "aof_current_size" (the log's bytes in the
 * active region). */
static long info_field(const struct kvs *k, const char *name)
{
	char *info = cli(k, (const char *const[]){ "INFO", NULL });
	char key[64];
	snprintf(key, sizeof(key), "\r\n%s:", name);
	char *p = strstr(info, key);
	assert_non_null(p);
	long v = atol(p + strlen(key));
	free(info);
	return v;
}

static long log_size(const struct kvs *k)
{
	return info_field(k, "aof_current_size");
}

static void a_torn_log_tail_is_cut_at_boot(void **state)
{
	(void)state;
	struct kvs k;
	kvs_new(&k, "torn.img");
	CLI(&k, "OK\n", "SET", "first", "1");
	long after_first = log_size(&k);
	CLI(&k, "OK\n", "SET", "second", "2");
	long after_second = log_size(&k);
	kvs_crash(&k);
	/* A write that tore on its way to the disk: half of "second"'s record
	 * left, the rest garbage. */
	FILE *f = fopen(k.disk, "r+b");
	assert_non_null(f);
	long mid = (after_first + after_second) / 2;
	fseek(f, REGIONS_OFF + mid, SEEK_SET);
	for (long i = mid; i < after_second + 64; i++)
		fputc(0x5a, f);
	fclose(f);
	kvs_start(&k);
	assert_true(th_file_contains(k.vmm.out_path, "replayed 1 records"));
	assert_true(th_file_contains(k.vmm.out_path, "cut a torn tail"));
	CLI(&k, "1\n", "GET", "first");
	CLI(&k, "\n", "GET", "second");
	/* The log goes on from the cut, and the next boot reads it whole. */
	CLI(&k, "OK\n", "SET", "third", "3");
	kvs_crash(&k);
	kvs_start(&k);
	assert_true(th_file_contains(k.vmm.out_path, "replayed 2 records"));
	CLI(&k, "1\n\n3\n", "MGET", "first", "second", "third");
	kvs_crash(&k);
}

static void the_log_compacts_on_a_small_disk_and_keeps_every_key(void **state)
{
	(void)state;
	struct kvs k;
	memset(&k, 0, sizeof(k));
	k.port = free_port();
	k.disk_size = "1M"; /* two regions of 508 KiB */
	snprintf(k.disk, sizeof(k.disk), "%s", th_tmp("compact.img"));
	kvs_start(&k);
	/* 30000 rewrites of 100 keys: about 2.6 MB of log records. */
	const char *path = th_tmp("compact.resp");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 30000; i++) {
		char key[16], val[32];
		int kl = snprintf(key, sizeof(key), "k%d", i % 100);
		int vl = snprintf(val, sizeof(val), "value-%08d", i);
		fprintf(f, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", kl, key, vl, val);
	}
	fclose(f);
	pipe_file(&k, path, 30000);
	long rewrites = info_field(&k, "aof_rewrites");
	assert_true(rewrites >= 3);
	kvs_crash(&k);
	kvs_start(&k);
	CLI(&k, "100\n", "DBSIZE");
	CLI(&k, "value-00029999\n", "GET", "k99");
	CLI(&k, "value-00029900\n", "GET", "k0");
	assert_true(info_field(&k, "kv_log_generation") == rewrites + 1);
	kvs_crash(&k);
}

static int teardown(void **state)
{
	(void)state;
	th_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(redis_cli_commands_answer_as_redis_does),
		cmocka_unit_test(redis_cli_interactive_session_works),
		cmocka_unit_test(pipelined_commands_all_answer_in_order),
		cmocka_unit_test(sixty_four_clients_are_served_at_once),
		cmocka_unit_test(a_one_mib_value_travels_whole_both_ways),
		cmocka_unit_test(bad_input_gets_an_error_and_a_close_and_others_go_on),
		cmocka_unit_test(acknowledged_writes_survive_a_vmm_crash),
		cmocka_unit_test(a_torn_log_tail_is_cut_at_boot),
		cmocka_unit_test(the_log_compacts_on_a_small_disk_and_keeps_every_key),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
