/*
 * node/lib/tcprepair.c: the blob checks (pure), and a real loopback
 * connection frozen, dumped, closed and built again with both queues (the
 * frozen-socket cases need CAP_NET_ADMIN and are skipped without it).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "proto/migrate.pb-c.h"
#include "netfreeze.h"
#include "tcprepair.h"

static size_t pack(const Pvha__TcpRepairState *s, uint8_t *buf)
{
	return pvha__tcp_repair_state__pack(s, buf);
}

static Pvha__TcpRepairState good_state(void)
{
	Pvha__TcpRepairState s = PVHA__TCP_REPAIR_STATE__INIT;
	s.version = TCPREPAIR_VERSION;
	s.local_ip = htonl(0x7f000001);
	s.local_port = 6379;
	s.peer_ip = htonl(0x7f000001);
	s.peer_port = 40000;
	s.mss = 1460;
	return s;
}

static void check_refuses_bad_states(void **state)
{
	(void)state;
	uint8_t buf[256];
	char why[128];
	struct tcprepair_tuple t;
	Pvha__TcpRepairState s = good_state();
	size_t n = pack(&s, buf);
	assert_int_equal(tcprepair_check(buf, n, &t, why, sizeof(why)), 0);
	assert_int_equal(t.local_port, 6379);
	assert_int_equal(t.peer_port, 40000);

	const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
	assert_int_equal(tcprepair_check(garbage, sizeof(garbage), &t, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "undecodable"));

	Pvha__TcpRepairState bads[8];
	for (unsigned i = 0; i < 8; i++)
		bads[i] = good_state();
	bads[0].version = 2;
	bads[1].local_port = 0;
	bads[2].peer_port = 70000;
	bads[3].peer_ip = 0;
	bads[4].mss = 10;
	bads[5].wscale = true;
	bads[5].snd_wscale = 15;
	uint8_t one = 'x';
	bads[6].sendq = (ProtobufCBinaryData){ .len = 1, .data = &one };
	bads[6].unsent = 2;
	bads[7].sndbuf = 1u << 30;
	for (unsigned i = 0; i < 8; i++) {
		n = pack(&bads[i], buf);
		assert_int_equal(tcprepair_check(buf, n, &t, why, sizeof(why)), -EBADMSG);
		int fd = 7;
		assert_int_equal(tcprepair_restore(buf, n, &fd, why, sizeof(why)), -EBADMSG);
		assert_int_equal(fd, -1);
	}
	static uint8_t big[TCPREPAIR_BLOB_MAX + 1];
	assert_int_equal(tcprepair_check(big, sizeof(big), &t, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "larger"));
}

/* A connected pair on loopback (th_tcp_pair). */
static void pair(int *srv, int *cli)
{
	th_tcp_pair(srv, cli);
}

/* Fills what the server can send (the client reads nothing) with the byte
 * pattern i % 251 from *off on; returns how many bytes went in. */
static size_t fill(int fd, size_t *off)
{
	uint8_t b[4096];
	size_t total = 0;
	for (;;) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)((*off + i) % 251);
		ssize_t r = send(fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r <= 0)
			break;
		*off += (size_t)r;
		total += (size_t)r;
	}
	return total;
}

/* Reads exactly len bytes from the blocking fd; they must follow the
 * pattern from *off on. */
static void read_pattern(int fd, size_t len, size_t *off)
{
	uint8_t b[4096];
	while (len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 10000), 1);
		ssize_t r = recv(fd, b, len < sizeof(b) ? len : sizeof(b), MSG_DONTWAIT);
		assert_true(r > 0);
		for (ssize_t i = 0; i < r; i++)
			assert_int_equal(b[i], (uint8_t)((*off + (size_t)i) % 251));
		*off += (size_t)r;
		len -= (size_t)r;
	}
}

static void recv_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 10000), 1);
		ssize_t r = recv(fd, buf + got, len - got, MSG_DONTWAIT);
		assert_true(r > 0);
		got += (size_t)r;
	}
}

/* Freezes and dumps srv (of a pair); skips the test without CAP_NET_ADMIN. */
static void dump_or_skip(int srv, int cli, uint8_t **blob, size_t *len, struct tcprepair_tuple *t)
{
	int err = tcprepair_dump(srv, blob, len, t);
	if (err == -EPERM) {
		close(srv);
		close(cli);
		skip(); /* TCP_REPAIR needs CAP_NET_ADMIN */
	}
	assert_int_equal(err, 0);
}

/* A connected pair with the server's side frozen and dumped. */
static void frozen_pair(int *srv, int *cli, uint8_t **blob, size_t *len, struct tcprepair_tuple *t)
{
	pair(srv, cli);
	dump_or_skip(*srv, *cli, blob, len, t);
}

/* The peer cli sends 4 bytes to a frozen socket fd: neither taken in nor
 * acknowledged (on loopback the segment is handled within the send). */
static void assert_held_back(int cli, int fd, const char *four)
{
	assert_int_equal(send(cli, four, 4, 0), 4);
	int outq = 0, inq = -1;
	assert_int_equal(ioctl(cli, SIOCOUTQ, &outq), 0);
	assert_int_equal(outq, 4);
	assert_int_equal(ioctl(fd, SIOCINQ, &inq), 0);
	assert_int_equal(inq, 0);
}

/* fd, running, gets four from cli and answers it. */
static void gets_and_answers(int fd, int cli, const char *four)
{
	char tmp[4];
	recv_exact(fd, tmp, 4);
	assert_memory_equal(tmp, four, 4);
	assert_int_equal(send(fd, "ok", 2, MSG_NOSIGNAL), 2);
	recv_exact(cli, tmp, 2);
	assert_memory_equal(tmp, "ok", 2);
}

static void dump_close_restore_keeps_both_queues(void **state)
{
	(void)state;
	int srv, cli;
	pair(&srv, &cli);
	assert_int_equal(send(cli, "hello", 5, 0), 5); /* unread: the server's receive queue */
	size_t sent_off = 0, read_off = 0;
	size_t queued = fill(srv, &sent_off); /* the client's window is full: unsent bytes */
	assert_true(queued > 0);
	char tmp[8];
	/* the hello is in before the freeze */
	struct pollfd p = { .fd = srv, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 10000), 1);

	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	dump_or_skip(srv, cli, &blob, &len, &t);
	Pvha__TcpRepairState *st = pvha__tcp_repair_state__unpack(NULL, len, blob);
	assert_non_null(st);
	assert_int_equal(st->recvq.len, 5); /* the hello */
	assert_true(st->sendq.len > 0);     /* what the client's full window held back */
	assert_true(st->unsent > 0);
	pvha__tcp_repair_state__free_unpacked(st, NULL);
	close(srv); /* frozen: silent, the client sees nothing */

	char why[200] = "";
	int fd = -1;
	assert_int_equal(tcprepair_restore(blob, len, &fd, why, sizeof(why)), 0);
	free(blob);

	recv_exact(fd, tmp, 5);
	assert_memory_equal(tmp, "hello", 5);
	/* everything queued before the move arrives in order, then what the
	 * new socket sends */
	read_pattern(cli, sent_off - read_off, &read_off);
	size_t before = sent_off;
	size_t more = fill(fd, &sent_off);
	assert_true(more > 0);
	read_pattern(cli, sent_off - before, &read_off);
	assert_int_equal(read_off, sent_off);
	assert_int_equal(send(cli, "again", 5, 0), 5);
	recv_exact(fd, tmp, 5);
	assert_memory_equal(tmp, "again", 5);
	close(fd);
	close(cli);
}

static void restore_is_refused_while_the_old_socket_is_open(void **state)
{
	(void)state;
	int srv, cli;
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	frozen_pair(&srv, &cli, &blob, &len, &t);
	char why[200] = "";
	int fd = -1;
	assert_int_equal(tcprepair_restore(blob, len, &fd, why, sizeof(why)), -EADDRNOTAVAIL);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(why, "connect"));
	/* thawed, the old one goes on */
	assert_int_equal(tcprepair_thaw(srv), 0);
	assert_int_equal(send(cli, "x", 1, 0), 1);
	char c;
	recv_exact(srv, &c, 1);
	assert_int_equal(c, 'x');
	free(blob);
	close(srv);
	close(cli);
}

/* A frozen socket takes nothing in (its filter drops every segment: the
 * peer's bytes stay unacknowledged in the peer's queue), and thawed, it
 * gets them when the peer sends them again. */
static void a_frozen_socket_takes_nothing_in_and_thawed_gets_it_again(void **state)
{
	(void)state;
	int srv, cli;
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	frozen_pair(&srv, &cli, &blob, &len, &t);
	free(blob);
	assert_held_back(cli, srv, "late");
	assert_int_equal(tcprepair_thaw(srv), 0);
	gets_and_answers(srv, cli, "late");
	close(srv);
	close(cli);
}

static void a_held_restore_takes_nothing_in_until_released(void **state)
{
	(void)state;
	int srv, cli, fd = -1;
	uint8_t *blob = NULL, junk[3] = { 1, 2, 3 };
	size_t len = 0;
	struct tcprepair_tuple t;
	char why[200] = "";
	frozen_pair(&srv, &cli, &blob, &len, &t);
	close(srv); /* frozen: silent */
	assert_int_equal(tcprepair_restore_held(blob, len, &fd, why, sizeof(why)), 0);
	assert_true(fd >= 0);
	assert_held_back(cli, fd, "held"); /* built but frozen */
	assert_int_equal(tcprepair_release(fd, junk, sizeof(junk), why, sizeof(why)), -EBADMSG);
	assert_int_equal(tcprepair_release(fd, blob, len, why, sizeof(why)), 0);
	gets_and_answers(fd, cli, "held");
	free(blob);
	close(fd);
	close(cli);
}

static void dump_refuses_what_is_not_a_connection(void **state)
{
	(void)state;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	uint8_t *blob = (uint8_t *)1;
	size_t len = 1;
	struct tcprepair_tuple t;
	assert_int_equal(tcprepair_dump(l, &blob, &len, &t), -EOPNOTSUPP);
	assert_null(blob);
	assert_int_equal(len, 0);
	close(l);
	int fds[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	assert_int_equal(tcprepair_dump(fds[0], &blob, &len, &t), -EOPNOTSUPP);
	close(fds[0]);
	close(fds[1]);
}

/* What docs/migration.md says works: with the peer's packets dropped, a
 * peer that sends while the connection is frozen, then closed, then not yet
 * rebuilt meets no reset, and its bytes reach the rebuilt socket (sent
 * again by the peer's kernel), which the drop rule lets through without
 * anyone lifting the entry; without the drop a closed socket would reset
 * the peer. */
static void held_packets_reach_the_rebuilt_socket_without_a_reset(void **state)
{
	(void)state;
	int srv, cli;
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	char why[200] = "";
	frozen_pair(&srv, &cli, &blob, &len, &t);
	if (netfreeze_setup(why, sizeof(why))) {
		print_message("no nftables here (%s): skipped\n", why);
		free(blob);
		close(srv);
		close(cli);
		skip();
	}
	/* nft works here: the hold must too */
	assert_int_equal(netfreeze_hold(NULL, &t, 1, why, sizeof(why)), 0);
	assert_true(th_nft_holds(t.peer_port));
	close(srv);
	/* the peer sends into the gap: dropped, so not acknowledged, not reset */
	assert_int_equal(send(cli, "gap", 3, 0), 3);
	int outq = 0;
	assert_int_equal(ioctl(cli, SIOCOUTQ, &outq), 0);
	assert_int_equal(outq, 3);
	int fd = -1;
	assert_int_equal(tcprepair_restore(blob, len, &fd, why, sizeof(why)), 0);
	/* the entry is still there, and the rebuilt socket gets the bytes */
	assert_true(th_nft_holds(t.peer_port));
	char tmp[3];
	recv_exact(fd, tmp, 3);
	assert_memory_equal(tmp, "gap", 3);
	assert_int_equal(send(fd, "ok", 2, MSG_NOSIGNAL), 2);
	recv_exact(cli, tmp, 2);
	assert_memory_equal(tmp, "ok", 2);
	/* a run started ahead, then given its script */
	struct netfreeze *run;
	assert_int_equal(netfreeze_start(&run, why, sizeof(why)), 0);
	assert_int_equal(netfreeze_release(run, &t, 1, why, sizeof(why)), 0);
	assert_false(th_nft_holds(t.peer_port));
	/* released twice (already gone) is fine */
	assert_int_equal(netfreeze_release(NULL, &t, 1, why, sizeof(why)), 0);
	assert_int_equal(netfreeze_hold(NULL, &t, 0, why, sizeof(why)), -EINVAL);
	/* begun, then waited for */
	assert_int_equal(netfreeze_start(&run, why, sizeof(why)), 0);
	assert_int_equal(netfreeze_hold_begin(run, &t, 1, why, sizeof(why)), 0);
	assert_int_equal(netfreeze_wait(run, why, sizeof(why)), 0);
	assert_true(th_nft_holds(t.peer_port));
	assert_int_equal(netfreeze_release(NULL, &t, 1, why, sizeof(why)), 0);
	free(blob);
	close(fd);
	close(cli);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(check_refuses_bad_states),
		cmocka_unit_test(dump_close_restore_keeps_both_queues),
		cmocka_unit_test(restore_is_refused_while_the_old_socket_is_open),
		cmocka_unit_test(a_held_restore_takes_nothing_in_until_released),
		cmocka_unit_test(dump_refuses_what_is_not_a_connection),
		cmocka_unit_test(a_frozen_socket_takes_nothing_in_and_thawed_gets_it_again),
		cmocka_unit_test(held_packets_reach_the_rebuilt_socket_without_a_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
