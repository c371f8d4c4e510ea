/*
 * The connections' privileged steps through the VMM's privileged processes
 * (node/vmm/privsep_ops.h): TCP_REPAIR dump, restore (held, then released)
 * and thaw by the real
 * helper (its seccomp filter, CAP_NET_ADMIN only), with a blob larger than
 * a message (the memfd path) both ways; the packet hold by the real nft
 * runner (its nft(8) runs as the sandbox's user with CAP_NET_ADMIN
 * ambient); bad requests refused with their -errno. Needs root (TCP_REPAIR
 * and nft need CAP_NET_ADMIN): skipped otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "privsep.h"
#include "privsep_ops.h"
#include "sandbox.h"

struct fx {
	struct sandbox_user user;
	struct privsep_scope scope; /* the helpers' ctx */
	struct privsep ps;
};

/* The helpers' scope: the "guest" is 127.0.0.1, where the test's
 * connections are; or 127.0.0.2, where none of them is. */
#define GUEST_IP 0x7f000001u
#define OTHER_IP 0x7f000002u

static int start(void **state, const struct privsep_op *ops, size_t nops,
		 int (*enter)(void *, char *, size_t), uint32_t guest_ip)
{
	char why[256] = "";
	*state = NULL;
	if (geteuid() != 0)
		return 0; /* each test skips */
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	if (sandbox_user_lookup(NULL, &f->user, why, sizeof(why)) != 0) {
		print_message("no sandbox user: %s\n", why); /* install-deps makes it */
		free(f);
		return -1;
	}
	f->scope.local_ip = htonl(guest_ip);
	struct privsep_opts o = { .ops = ops, .nops = nops, .ctx = &f->scope, .enter = enter, .enter_ctx = &f->user };
	assert_int_equal(privsep_start(&o, &f->ps, why, sizeof(why)), 0);
	*state = f;
	return 0;
}

static int setup_helper(void **state)
{
	return start(state, privsep_vmm_ops, privsep_vmm_nops, sandbox_enter_helper, GUEST_IP);
}

static int setup_nft(void **state)
{
	return start(state, privsep_nft_ops, privsep_nft_nops, sandbox_enter_nft, GUEST_IP);
}

static int setup_helper_other(void **state)
{
	return start(state, privsep_vmm_ops, privsep_vmm_nops, sandbox_enter_helper, OTHER_IP);
}

static int setup_nft_other(void **state)
{
	return start(state, privsep_nft_ops, privsep_nft_nops, sandbox_enter_nft, OTHER_IP);
}

/* The fixture; skips the test when not root. */
static struct fx *fx_or_skip(void **state)
{
	if (!*state)
		skip(); /* TCP_REPAIR and nft need CAP_NET_ADMIN */
	return *state;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (!f)
		return 0;
	privsep_destroy(&f->ps);
	free(f);
	return 0;
}

/* A connected pair on loopback (th_tcp_pair): *cli reads nothing yet, and
 * *srv's send buffer is the VMM's, whose queue outgrows a message. */
static void pair(int *srv, int *cli)
{
	th_tcp_pair(srv, cli);
}

/* Sends the pattern i % 251 until the socket takes no more; the count. */
static size_t fill(int fd)
{
	uint8_t b[4096];
	size_t total = 0;
	for (;;) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)((total + i) % 251);
		ssize_t r = send(fd, b, sizeof(b), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r <= 0)
			return total;
		total += (size_t)r;
	}
}

/* Reads len bytes of the pattern from fd. */
static void read_pattern(int fd, size_t len)
{
	uint8_t b[4096];
	size_t off = 0;
	while (off < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 10000), 1);
		size_t want = len - off < sizeof(b) ? len - off : sizeof(b);
		ssize_t r = recv(fd, b, want, MSG_DONTWAIT);
		assert_true(r > 0);
		for (ssize_t i = 0; i < r; i++)
			assert_int_equal(b[i], (uint8_t)((off + (size_t)i) % 251));
		off += (size_t)r;
	}
}

/* Sends one byte from one end and reads it at the other. */
static void one_byte(int from, int to, char b)
{
	char c;
	assert_int_equal(send(from, &b, 1, MSG_NOSIGNAL), 1);
	struct pollfd p = { .fd = to, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(recv(to, &c, 1, 0), 1);
	assert_int_equal(c, b);
}

static void a_connection_moves_through_the_helper_with_a_blob_over_a_message(void **state)
{
	struct fx *f = fx_or_skip(state);
	int srv, cli, fd = -1;
	pair(&srv, &cli);
	size_t queued = fill(srv);
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	assert_int_equal(privsep_tcprepair_dump(&f->ps, srv, &blob, &len, &t), 0);
	assert_true(len > PRIVSEP_MSG_MAX); /* it came in a memfd */
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(cli, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(t.peer_port, ntohs(a.sin_port));
	close(srv); /* frozen: silent */

	char why[200] = "";
	assert_int_equal(privsep_tcprepair_restore_held(&f->ps, blob, len, &fd, why, sizeof(why)), 0);
	assert_true(fd >= 0);
	assert_int_equal(privsep_tcprepair_release(&f->ps, fd, blob, len, why, sizeof(why)), 0);
	free(blob);
	read_pattern(cli, queued); /* everything queued before the move */
	one_byte(fd, cli, 'x'); /* and the new socket runs */
	close(fd);
	close(cli);
}

static void a_thawed_socket_runs_on(void **state)
{
	struct fx *f = fx_or_skip(state);
	int srv, cli;
	pair(&srv, &cli);
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	assert_int_equal(privsep_tcprepair_dump(&f->ps, srv, &blob, &len, &t), 0);
	assert_true(len <= PRIVSEP_MSG_MAX); /* empty queues: in the message */
	free(blob);
	assert_int_equal(privsep_tcprepair_thaw(&f->ps, srv), 0);
	one_byte(cli, srv, 'y');
	close(srv);
	close(cli);
}

static void bad_tcp_requests_are_refused(void **state)
{
	struct fx *f = fx_or_skip(state);
	char why[200] = "";
	int fd = -1;
	uint8_t junk[16] = { 1, 2, 3 };
	/* a blob that is not a tcp state: the helper checks it */
	assert_int_equal(
		privsep_tcprepair_restore_held(&f->ps, junk, sizeof(junk), &fd, why, sizeof(why)),
		-EBADMSG);
	assert_true(why[0] != '\0');
	assert_int_equal(fd, -1);
	assert_int_equal(privsep_tcprepair_restore_held(&f->ps, junk, 0, &fd, why, sizeof(why)),
			 -EBADMSG);
	/* not a connection (on the guest's address: in scope) */
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(GUEST_IP) };
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(u, (struct sockaddr *)&lo, sizeof(lo)), 0);
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	assert_int_equal(privsep_tcprepair_dump(&f->ps, u, &blob, &len, &t), -EOPNOTSUPP);
	close(u);
	/* the wrong shapes, sent raw */
	struct privsep_reply *rep = malloc(sizeof(*rep));
	assert_non_null(rep);
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_TCP_REPAIR_DUMP, NULL, rep), -EINVAL);
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_TCP_REPAIR_THAW, NULL, rep), -EINVAL);
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_TCP_REPAIR_RESTORE_HELD, NULL, rep), -EINVAL);
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_TCP_REPAIR_RELEASE, NULL, rep), -EINVAL);
	/* the helper runs no nft */
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_NFT_SETUP, NULL, rep), -EOPNOTSUPP);
	free(rep);
	/* and serves on */
	u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(u, (struct sockaddr *)&lo, sizeof(lo)), 0);
	assert_int_equal(privsep_tcprepair_dump(&f->ps, u, &blob, &len, &t), -EOPNOTSUPP);
	close(u);
	/* a socket of no address at all is none of the guest's */
	u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(privsep_tcprepair_dump(&f->ps, u, &blob, &len, &t), -EPERM);
	close(u);
}

/* A helper told the guest is 127.0.0.2 touches none of 127.0.0.1's
 * connections: a dump and a thaw are refused before the socket is frozen
 * (it runs on), a restore or a release of such a record is refused with its
 * reason, and nothing was made. */
static void the_helper_touches_only_the_guest_s_connections(void **state)
{
	struct fx *f = fx_or_skip(state);
	int srv, cli, fd = -1;
	pair(&srv, &cli);
	uint8_t *blob = NULL;
	size_t len = 0;
	struct tcprepair_tuple t;
	assert_int_equal(privsep_tcprepair_dump(&f->ps, srv, &blob, &len, &t), -EPERM);
	assert_int_equal(privsep_tcprepair_thaw(&f->ps, srv), -EPERM);
	one_byte(cli, srv, 'a'); /* not frozen */
	one_byte(srv, cli, 'b');

	/* a real record of that connection (the library itself, as root) */
	assert_int_equal(tcprepair_dump(srv, &blob, &len, &t), 0);
	assert_int_equal(t.local_ip, htonl(GUEST_IP));
	char why[200] = "";
	assert_int_equal(privsep_tcprepair_restore_held(&f->ps, blob, len, &fd, why, sizeof(why)), -EPERM);
	assert_int_equal(fd, -1);
	assert_non_null(strstr(why, "another local address"));
	why[0] = '\0';
	assert_int_equal(privsep_tcprepair_release(&f->ps, srv, blob, len, why, sizeof(why)), -EPERM);
	free(blob);
	assert_int_equal(tcprepair_thaw(srv), 0);
	one_byte(cli, srv, 'c');
	close(srv);
	close(cli);
}

static void the_nft_runner_holds_and_releases(void **state)
{
	struct fx *f = fx_or_skip(state);
	char why[200] = "";
	struct tcprepair_tuple t = { .local_ip = htonl(0x7f000001), .peer_ip = htonl(0x7f000002),
				     .local_port = 4242, .peer_port = 54321 };
	assert_int_equal(privsep_netfreeze_setup(&f->ps, why, sizeof(why)), 0);
	assert_int_equal(privsep_netfreeze_hold(&f->ps, &t, 1, why, sizeof(why)), 0);
	assert_true(th_nft_holds(54321));
	assert_int_equal(privsep_netfreeze_release(&f->ps, &t, 1, why, sizeof(why)), 0);
	assert_false(th_nft_holds(54321));
	/* bad counts, and what the runner does not serve */
	assert_int_equal(privsep_netfreeze_hold(&f->ps, &t, 0, why, sizeof(why)), -EINVAL);
	assert_int_equal(privsep_netfreeze_hold(&f->ps, &t, PRIVSEP_NFT_TUPLES_MAX + 1, why, sizeof(why)),
			 -EINVAL);
	struct privsep_reply *rep = malloc(sizeof(*rep));
	assert_non_null(rep);
	uint8_t odd[5] = { 0 };
	struct privsep_msg req = { .data = odd, .len = sizeof(odd) };
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_NFT_HOLD, &req, rep), -EINVAL);
	assert_int_equal(privsep_call(&f->ps, PRIVSEP_OP_TCP_REPAIR_DUMP, NULL, rep), -EOPNOTSUPP);
	free(rep);
}

/* A runner told the guest is 127.0.0.2 holds no packet of 127.0.0.1's
 * connections: refused with its reason, nothing held. */
static void the_nft_runner_holds_only_the_guest_s_connections(void **state)
{
	struct fx *f = fx_or_skip(state);
	char why[200] = "";
	struct tcprepair_tuple t[2] = {
		{ .local_ip = htonl(OTHER_IP), .peer_ip = htonl(GUEST_IP), .local_port = 4242, .peer_port = 54322 },
		{ .local_ip = htonl(GUEST_IP), .peer_ip = htonl(OTHER_IP), .local_port = 4242, .peer_port = 54323 },
	};
	assert_int_equal(privsep_netfreeze_setup(&f->ps, why, sizeof(why)), 0);
	assert_int_equal(privsep_netfreeze_hold(&f->ps, t, 2, why, sizeof(why)), -EPERM);
	assert_non_null(strstr(why, "another local address"));
	assert_false(th_nft_holds(54322)); /* not even the guest's own of the pair */
	assert_false(th_nft_holds(54323));
	assert_int_equal(privsep_netfreeze_hold(&f->ps, t, 1, why, sizeof(why)), 0);
	assert_true(th_nft_holds(54322));
	assert_int_equal(privsep_netfreeze_release(&f->ps, &t[1], 1, why, sizeof(why)), -EPERM);
	assert_true(th_nft_holds(54322));
	assert_int_equal(privsep_netfreeze_release(&f->ps, t, 1, why, sizeof(why)), 0);
	assert_false(th_nft_holds(54322));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			a_connection_moves_through_the_helper_with_a_blob_over_a_message, setup_helper,
			teardown),
		cmocka_unit_test_setup_teardown(a_thawed_socket_runs_on, setup_helper, teardown),
		cmocka_unit_test_setup_teardown(bad_tcp_requests_are_refused, setup_helper, teardown),
		cmocka_unit_test_setup_teardown(the_nft_runner_holds_and_releases, setup_nft, teardown),
		cmocka_unit_test_setup_teardown(the_helper_touches_only_the_guest_s_connections, setup_helper_other,
						teardown),
		cmocka_unit_test_setup_teardown(the_nft_runner_holds_only_the_guest_s_connections,
						setup_nft_other, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
