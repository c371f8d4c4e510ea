/*
 * A client's TCP connection to a real service guest (kvstore) stays open
 * through live migrations back and forth between pvha-vmm processes on this
 * host (docs/migration.md "Connections"): while the guest moves, a client
 * thread keeps sending INCR on one connection and checks every reply is the
 * next number (nothing lost, nothing twice, no reset). Needs root
 * (CAP_NET_ADMIN: TCP_REPAIR and nftables), as the tests run.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "vmmctl.h"

#define VMM th_build("bin/pvha-vmm")
#define KVSTORE th_build("guests/kvstore.elf")
#define ADDR "127.0.0.1"
#define HOPS 6

struct incr_client {
	int fd;
	atomic_bool stop;
	atomic_long replies;
	long errors;
	double max_gap_s;
	char err[200];
};

/* One reply line (up to \r\n) into line; false on error or close. */
static bool read_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = recv(fd, line + n, 1, 0);
		if (r <= 0)
			return false;
		if (line[n] == '\n') {
			line[n + 1] = 0;
			return true;
		}
		n++;
	}
	return false;
}

/* INCR on one connection as fast as replies come; every reply must be the
 * next number. */
static void *incr_loop(void *arg)
{
	struct incr_client *c = arg;
	static const char req[] = "*2\r\n$4\r\nINCR\r\n$7\r\ncarried\r\n";
	double last = th_now_s();
	for (long want = 1; !atomic_load(&c->stop); want++) {
		char line[64], expect[32];
		if (send(c->fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
			snprintf(c->err, sizeof(c->err), "send %ld: %s", want, strerror(errno));
			c->errors++;
			break;
		}
		if (!read_line(c->fd, line, sizeof(line))) {
			snprintf(c->err, sizeof(c->err), "reply %ld: %s", want,
				 errno ? strerror(errno) : "connection closed");
			c->errors++;
			break;
		}
		snprintf(expect, sizeof(expect), ":%ld\r\n", want);
		if (strcmp(line, expect) != 0) {
			snprintf(c->err, sizeof(c->err), "reply %ld was %s", want, line);
			c->errors++;
			break;
		}
		double now = th_now_s();
		if (now - last > c->max_gap_s)
			c->max_gap_s = now - last;
		last = now;
		atomic_fetch_add(&c->replies, 1);
	}
	return NULL;
}

static Pvha__VmmReply *status(const char *sock)
{
	int fd;
	Pvha__VmmReply *r = NULL;
	if (vmmctl_connect(sock, 5000, &fd) != 0)
		return NULL;
	if (vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r) != 0)
		r = NULL;
	close(fd);
	return r;
}

/* Waits until the client has had n more replies (it goes on at the
 * target). */
static void wait_replies(struct incr_client *c, long n)
{
	long from = atomic_load(&c->replies);
	double end = th_now_s() + 30;
	while (atomic_load(&c->replies) < from + n && c->errors == 0 && th_now_s() < end)
		th_pause_ms(5);
	if (c->errors)
		fail_msg("the client failed: %s", c->err);
	assert_true(atomic_load(&c->replies) >= from + n);
}

static void a_connection_stays_open_through_migrations_back_and_forth(void **state)
{
	(void)state;
	char disk[512], spec[600], cmdline[32], socks[2][256];
	snprintf(disk, sizeof(disk), "%s", th_tmp("conn.disk"));
	snprintf(spec, sizeof(spec), "file:%s,size=16M", disk);
	snprintf(socks[0], sizeof(socks[0]), "%s", th_tmp("conn-a.sock"));
	snprintf(socks[1], sizeof(socks[1]), "%s", th_tmp("conn-b.sock"));
	int port = 20000 + (int)(getpid() % 20000);
	snprintf(cmdline, sizeof(cmdline), "port=%d", port);
	char *first[] = { (char *)VMM, "--image", (char *)KVSTORE, "--mem", "64M", "--backend", "tcg",
			  "--disk", spec, "--address", ADDR, "--cmdline", cmdline, "--control", socks[0],
			  NULL };
	struct proc p[2];
	th_spawn(&p[0], first);
	if (!th_wait_for_text(p[0].out_path, "kvstore: listening on", 60))
		fail_msg("kvstore did not listen:\n%s", th_slurp(p[0].err_path));

	struct incr_client c = { .fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0) };
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int one = 1;
	setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, ADDR, &sa.sin_addr);
	assert_int_equal(connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, incr_loop, &c), 0);
	wait_replies(&c, 50);

	int cur = 0;
	for (int hop = 0; hop < HOPS; hop++) {
		int nxt = 1 - cur;
		unlink(socks[nxt]);
		char *dst[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--backend", "tcg", "--disk", spec,
				"--address", ADDR, "--control", socks[nxt], "--migrate-key-file",
				(char *)th_migrate_key_file(), NULL };
		th_spawn(&p[nxt], dst);
		assert_true(th_wait_for_socket(socks[nxt], 30));
		Pvha__VmmReply *r = status(socks[nxt]);
		assert_non_null(r);
		uint32_t mport = r->status->incoming_port;
		pvha__vmm_reply__free_unpacked(r, NULL);
		int fd;
		assert_int_equal(vmmctl_connect(socks[cur], 5000, &fd), 0);
		assert_int_equal(vmmctl_migrate_keyed(fd, "127.0.0.1", mport, 0, 0, th_migrate_key,
						      sizeof(th_migrate_key), &r),
				 0);
		assert_int_equal(r->error, 0);
		pvha__vmm_reply__free_unpacked(r, NULL);
		close(fd);
		bool done = false;
		for (double end = th_now_s() + 60; !done && th_now_s() < end;) {
			r = status(socks[cur]);
			assert_non_null(r);
			done = !strcmp(r->status->migration_phase, "done");
			if (!strcmp(r->status->migration_phase, "failed"))
				fail_msg("migration %d failed: %s", hop, r->status->migration_reason);
			if (done) {
				print_message("hop %d: downtime %.3f ms; the client's longest gap so far %.1f ms\n",
					      hop, (double)r->status->migration_downtime_us / 1000.0,
					      c.max_gap_s * 1000.0);
				/* nothing was left behind */
				assert_null(strstr(r->status->migration_reason, "reset"));
			}
			pvha__vmm_reply__free_unpacked(r, NULL);
			if (!done)
				th_pause_ms(10);
		}
		assert_true(done);
		r = status(socks[nxt]);
		assert_non_null(r);
		assert_null(strstr(r->status->migration_reason, "reset"));
		assert_int_equal(r->status->net_handles, 2); /* the listener and our connection */
		pvha__vmm_reply__free_unpacked(r, NULL);
		kill(p[cur].pid, SIGTERM);
		assert_int_equal(th_wait(&p[cur], 30), 10);
		/* the same connection goes on at the new host */
		wait_replies(&c, 50);
		cur = nxt;
	}
	atomic_store(&c.stop, true);
	pthread_join(th, NULL);
	if (c.errors)
		fail_msg("the client failed: %s", c.err);
	print_message("%ld replies on one connection through %d migrations, longest gap %.1f ms\n",
		      atomic_load(&c.replies), HOPS, c.max_gap_s * 1000.0);
	close(c.fd);
	kill(p[cur].pid, SIGTERM);
	th_wait(&p[cur], 30);
}

static int teardown_all(void **state)
{
	(void)state;
	th_cleanup();
	return 0;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_connection_stays_open_through_migrations_back_and_forth),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
