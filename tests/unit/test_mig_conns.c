/*
 * node/vmm/mig_conns.c, the target's side: the connection records are read
 * from a real link (a socket pair) into a real net whose state was restored
 * with connections, and each bad record is refused with its reason; a good
 * one is rebuilt and given to its handle. The rebuilding cases need
 * CAP_NET_ADMIN (skipped without it).
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

#include "internal.h"
#include "mig_conns.h"
#include "privsep_ops.h"
#include "proto/migrate.pb-c.h"
#include "tcprepair.h"

#define VER 3u

struct fixture {
	int sv[2];                /* [0] the source's end, [1] the target's */
	struct pvproto_link *out; /* writes on sv[0] */
	struct pvproto_link *in;  /* reads on sv[1] */
	struct hv_net *net;       /* the target's, restored with connection 2 */
	struct mig_conns *c;
	struct privsep ps, nft;   /* in-process: the same handlers as the helpers' */
	struct privsep_scope scope; /* theirs: the guest's 127.0.0.1 */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv), 0);
	f->out = pvproto_link_create(f->sv[0]);
	f->in = pvproto_link_create(f->sv[1]);
	assert_int_equal(hv_net_host_open("127.0.0.1", &f->net), 0);
	const struct hv_net_saved saved[] = { { .handle = 2, .kind = HV_NS_STREAM },
					      { .handle = 5, .kind = HV_NS_DEAD, .err = -PV_EPIPE } };
	char err[128];
	assert_int_equal(hv_net_restore(f->net, saved, 2, err, sizeof(err)), 0);
	f->scope.local_ip = htonl(INADDR_LOOPBACK);
	privsep_inprocess(privsep_vmm_ops, privsep_vmm_nops, &f->scope, &f->ps);
	privsep_inprocess(privsep_nft_ops, privsep_nft_nops, &f->scope, &f->nft);
	f->c = mig_conns_create(&f->ps, &f->nft);
	assert_non_null(f->c);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mig_conns_destroy(f->c);
	hv_net_destroy(f->net);
	pvproto_link_destroy(f->out);
	pvproto_link_destroy(f->in);
	close(f->sv[0]);
	close(f->sv[1]);
	free(f);
	return 0;
}

/* A packed tcp state of 127.0.0.1:6379 <- 127.0.0.1:peer (local_ip given). */
static size_t tcp_state(uint8_t *buf, uint32_t local_ip, uint16_t peer)
{
	Pvha__TcpRepairState s = PVHA__TCP_REPAIR_STATE__INIT;
	s.version = TCPREPAIR_VERSION;
	s.local_ip = local_ip;
	s.local_port = 6379;
	s.peer_ip = htonl(0x7f000001);
	s.peer_port = peer;
	s.mss = 1460;
	return pvha__tcp_repair_state__pack(&s, buf);
}

static void send_conn(struct fixture *f, uint32_t ver, uint32_t handle, const uint8_t *tcp,
		      size_t len, bool end)
{
	Pvha__MigrateConn m = PVHA__MIGRATE_CONN__INIT;
	m.version = ver;
	m.handle = handle;
	m.tcp = (ProtobufCBinaryData){ .len = len, .data = (uint8_t *)tcp };
	m.end = end;
	assert_int_equal(pvproto_link_write(f->out, &m.base), 0);
}

/* Reads what was sent; returns the result with the reason in why. */
static int read_conns(struct fixture *f, char *why, size_t wl)
{
	why[0] = 0;
	shutdown(f->sv[0], SHUT_WR); /* a missing end reads as a cut link */
	return mig_conns_read(f->c, f->net, f->in, VER, why, wl);
}

static void expect_refused(struct fixture *f, const char *reason)
{
	char why[256];
	assert_int_equal(read_conns(f, why, sizeof(why)), -EBADMSG);
	if (!strstr(why, reason))
		fail_msg("reason \"%s\" lacks \"%s\"", why, reason);
}

static void only_an_end_is_fine(void **state)
{
	struct fixture *f = *state;
	char why[256];
	send_conn(f, VER, 0, NULL, 0, true);
	assert_int_equal(read_conns(f, why, sizeof(why)), 0);
	char note[200];
	assert_int_equal(mig_conns_restore(f->c, f->net, note, sizeof(note)), 0);
	assert_string_equal(note, "");
	assert_true(hv_net_adoptable(f->net, 2)); /* still reset: nothing came for it */
}

static void another_version_is_refused(void **state)
{
	struct fixture *f = *state;
	send_conn(f, 2, 0, NULL, 0, true);
	expect_refused(f, "of version 2");
}

static void an_end_with_a_handle_is_refused(void **state)
{
	struct fixture *f = *state;
	send_conn(f, VER, 2, NULL, 0, true);
	expect_refused(f, "an end that carries handle 2");
}

static void a_handle_out_of_range_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t tcp[128];
	size_t n = tcp_state(tcp, htonl(0x7f000001), 40000);
	send_conn(f, VER, PV_NET_HANDLES_MAX, tcp, n, false);
	expect_refused(f, "handle 256 out of range");
}

static void a_handle_that_was_no_connection_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t tcp[128];
	size_t n = tcp_state(tcp, htonl(0x7f000001), 40000);
	send_conn(f, VER, 5, tcp, n, false); /* dead before the save */
	expect_refused(f, "handle 5 was not a connection in the state");
}

static void a_handle_twice_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t tcp[128];
	size_t n = tcp_state(tcp, htonl(0x7f000001), 40000);
	send_conn(f, VER, 2, tcp, n, false);
	send_conn(f, VER, 2, tcp, n, false);
	expect_refused(f, "handle 2 sent twice");
}

static void another_address_is_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t tcp[128];
	size_t n = tcp_state(tcp, htonl(0x0a000001), 40000);
	send_conn(f, VER, 2, tcp, n, false);
	expect_refused(f, "another address than the guest's");
}

static void a_bad_tcp_state_is_refused(void **state)
{
	struct fixture *f = *state;
	const uint8_t junk[] = { 0xff, 0xff, 0xff };
	send_conn(f, VER, 2, junk, sizeof(junk), false);
	expect_refused(f, "connection record of handle 2: tcp state: undecodable");
}

static void a_cut_link_is_a_link_error(void **state)
{
	struct fixture *f = *state;
	uint8_t tcp[128];
	size_t n = tcp_state(tcp, htonl(0x7f000001), 40000);
	send_conn(f, VER, 2, tcp, n, false); /* and no end */
	char why[256];
	int err = read_conns(f, why, sizeof(why));
	assert_true(err < 0 && err != -EBADMSG);
}

static void a_target_without_an_address_refuses_connections(void **state)
{
	struct fixture *f = *state;
	uint8_t tcp[128];
	size_t n = tcp_state(tcp, htonl(0x7f000001), 40000);
	send_conn(f, VER, 2, tcp, n, false);
	char why[256];
	shutdown(f->sv[0], SHUT_WR);
	assert_int_equal(mig_conns_read(f->c, NULL, f->in, VER, why, sizeof(why)), -EBADMSG);
	assert_non_null(strstr(why, "this target has no --address"));
}

/* A real loopback connection, dumped as a source would, comes back in the
 * handle the restore had reset, and carries bytes both ways. */
static void a_dumped_connection_is_given_back_to_its_handle(void **state)
{
	struct fixture *f = *state;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	int cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cli, (struct sockaddr *)&a, sizeof(a)), 0);
	int srv = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(srv >= 0);
	close(l);
	uint8_t *blob;
	size_t len;
	struct tcprepair_tuple t;
	int err = tcprepair_dump(srv, &blob, &len, &t);
	if (err == -EPERM) {
		close(srv);
		close(cli);
		skip();
	}
	assert_int_equal(err, 0);
	close(srv); /* as the source does at the hand-over */
	send_conn(f, VER, 2, blob, len, false);
	send_conn(f, VER, 0, NULL, 0, true);
	free(blob);
	char why[256], note[200];
	assert_int_equal(read_conns(f, why, sizeof(why)), 0);
	assert_int_equal(mig_conns_restore(f->c, f->net, note, sizeof(note)), 1);
	assert_string_equal(note, "");
	unsigned handles[PV_NET_HANDLES_MAX];
	int fds[PV_NET_HANDLES_MAX];
	assert_int_equal(hv_net_connections(f->net, handles, fds), 1);
	assert_int_equal(handles[0], 2);
	assert_int_equal(send(cli, "hi", 2, 0), 2);
	struct pollfd p = { .fd = fds[0], .events = POLLIN };
	assert_int_equal(poll(&p, 1, 10000), 1);
	char buf[2];
	assert_int_equal(recv(fds[0], buf, 2, 0), 2);
	assert_memory_equal(buf, "hi", 2);
	close(cli);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(only_an_end_is_fine),
		T(another_version_is_refused),
		T(an_end_with_a_handle_is_refused),
		T(a_handle_out_of_range_is_refused),
		T(a_handle_that_was_no_connection_is_refused),
		T(a_handle_twice_is_refused),
		T(another_address_is_refused),
		T(a_bad_tcp_state_is_refused),
		T(a_cut_link_is_a_link_error),
		T(a_target_without_an_address_refuses_connections),
		T(a_dumped_connection_is_given_back_to_its_handle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
