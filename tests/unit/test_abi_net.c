/*
 * ABI v2 socket calls' argument checks, driven straight through hv_hypercall()
 * on a machine with no guest code and the host-socket backend on 127.0.0.1:
 * every pointer, length, port, count and selector a broken guest can pass
 * stops it with a reason naming the call and the argument; a handle that is
 * not open is -EBADF; the limits answer -EMFILE; the wait of net_poll; the
 * saved form of the handles is checked on restore.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define MEM (4ull << 20)
#define BUF 0x200000ull

struct fixture {
	struct hv_machine *m;
	struct hv_net *net;
};

static int setup_with(void **state, bool net)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (net)
		assert_int_equal(hv_net_host_open("127.0.0.1", &f->net), 0);
	struct hv_config cfg = { .mem_size = MEM, .backend = HV_BACKEND_TCG, .net = f->net };
	assert_int_equal(hv_machine_create(&cfg, &f->m), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, true);
}

static int setup_no_net(void **state)
{
	return setup_with(state, false);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	hv_machine_destroy(f->m);
	hv_net_destroy(f->net);
	free(f);
	return 0;
}

static int64_t hc(struct fixture *f, uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint64_t args[4] = { a0, a1, a2, 0 };
	return (int64_t)hv_hypercall(f->m, nr, args);
}

static void assert_stopped(struct fixture *f, const char *why)
{
	const struct hv_stop_info *s = hv_machine_stop_info(f->m);
	assert_int_equal(s->kind, HV_STOP_BAD_HYPERCALL);
	if (!strstr(s->reason, why))
		fail_msg("reason \"%s\" lacks \"%s\"", s->reason, why);
}

static void assert_running(struct fixture *f)
{
	const struct hv_stop_info *s = hv_machine_stop_info(f->m);
	if (s->kind != HV_STOP_NONE)
		fail_msg("stopped: %s", s->reason);
}

static void without_a_net_every_call_is_enodev(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hc(f, PV_HC_NET_LISTEN, 80, 1, 0), -ENODEV);
	assert_int_equal(hc(f, PV_HC_NET_CONNECT, 0x7f000001, 80, 0), -ENODEV);
	assert_int_equal(hc(f, PV_HC_NET_POLL, BUF, 0, 0), -ENODEV);
	assert_int_equal(hc(f, PV_HC_NET_ADDR, UINT64_MAX, 0, 0), -ENODEV);
	assert_running(f);
	/* a broken buffer is still broken */
	hc(f, PV_HC_NET_SEND, 0, MEM - 2, 8);
	assert_stopped(f, "net_send: buffer outside guest RAM");
}

static void abi_v1_guest_has_no_net_calls(void **state)
{
	struct fixture *f = *state;
	f->m->abi_version = 1;
	assert_int_equal(hc(f, PV_HC_ABI_VERSION, 0, 0, 0), 1);
	hc(f, PV_HC_NET_LISTEN, 0, 1, 0);
	assert_stopped(f, "unknown number 11");
}

static void bad_handles_are_ebadf(void **state)
{
	struct fixture *f = *state;
	const uint64_t bad[] = { 0, 5, 255, 256, 1ull << 40, UINT64_MAX };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(hc(f, PV_HC_NET_ACCEPT, bad[i], 0, 0), -EBADF);
		assert_int_equal(hc(f, PV_HC_NET_SEND, bad[i], BUF, 4), -EBADF);
		assert_int_equal(hc(f, PV_HC_NET_RECV, bad[i], BUF, 4), -EBADF);
		assert_int_equal(hc(f, PV_HC_NET_SHUTDOWN, bad[i], PV_SHUT_RD, 0), -EBADF);
		assert_int_equal(hc(f, PV_HC_NET_CLOSE, bad[i], 0, 0), -EBADF);
		assert_int_equal(hc(f, PV_HC_NET_ADDR, bad[i], PV_NET_ADDR_PEER, 0), -EBADF);
	}
	struct pv_pollfd pf[2] = { { .handle = -1, .events = PV_POLLIN }, { .handle = 9, .events = PV_POLLIN } };
	assert_int_equal(hv_machine_write_ram(f->m, BUF, pf, sizeof(pf)), 0);
	assert_int_equal(hc(f, PV_HC_NET_POLL, BUF, 2, 0), -EBADF);
	/* the negative one alone is skipped */
	assert_int_equal(hc(f, PV_HC_NET_POLL, BUF, 1, 0), 0);
	assert_running(f);
	/* the guest's own address, no handle needed */
	assert_int_equal(hc(f, PV_HC_NET_ADDR, UINT64_MAX, PV_NET_ADDR_LOCAL, 0), 0x7f000001ll << 16);
}

static void broken_arguments_stop_the_guest(void **state)
{
	struct fixture *f = *state;
	struct { uint64_t nr, a0, a1, a2; const char *why; } cases[] = {
		{ PV_HC_NET_SEND, 0, MEM - 2, 8, "net_send: buffer outside guest RAM" },
		{ PV_HC_NET_RECV, 0, UINT64_MAX - 2, 16, "net_recv: buffer outside guest RAM" },
		{ PV_HC_NET_SEND, 0, BUF, PV_NET_IO_MAX + 1, "net_send: length over PV_NET_IO_MAX" },
		{ PV_HC_NET_LISTEN, 65536, 1, 0, "net_listen: port over 65535" },
		{ PV_HC_NET_CONNECT, 1ull << 32, 80, 0, "net_connect: address over 32 bits" },
		{ PV_HC_NET_CONNECT, 0x7f000001, 65536, 0, "net_connect: port over 65535" },
		{ PV_HC_NET_SHUTDOWN, 0, 3, 0, "net_shutdown: how is not 0, 1 or 2" },
		{ PV_HC_NET_POLL, BUF, PV_NET_POLL_MAX + 1, 0, "net_poll: count over PV_NET_POLL_MAX" },
		{ PV_HC_NET_POLL, MEM - 8, 2, 0, "net_poll: array outside guest RAM" },
		{ PV_HC_NET_ADDR, 0, 2, 0, "net_addr: which is not 0 or 1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown(state);
		setup(state);
		f = *state;
		assert_int_equal(hc(f, cases[i].nr, cases[i].a0, cases[i].a1, cases[i].a2), -EINVAL);
		assert_stopped(f, cases[i].why);
	}
}

static void correct_but_refused_arguments_return_errors(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hc(f, PV_HC_NET_CONNECT, 0x7f000001, 0, 0), -EINVAL);
	/* backlog 0 and a huge one are lowered/raised, not refused */
	int64_t a = hc(f, PV_HC_NET_LISTEN, 0, 0, 0);
	int64_t b = hc(f, PV_HC_NET_LISTEN, 0, UINT64_MAX, 0);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(f->net->h[1].backlog, PV_NET_BACKLOG_MAX);
	assert_int_equal(hc(f, PV_HC_NET_ACCEPT, 0, 0, 0), -EAGAIN);
	assert_int_equal(hc(f, PV_HC_NET_SEND, 0, BUF, 1), -ENOTCONN);
	assert_int_equal(hc(f, PV_HC_NET_SEND, 0, BUF, 0), -ENOTCONN);
	int64_t port = hc(f, PV_HC_NET_ADDR, 0, PV_NET_ADDR_LOCAL, 0) & 0xffff;
	assert_true(port > 0);
	assert_int_equal(hc(f, PV_HC_NET_LISTEN, (uint64_t)port, 1, 0), -EADDRINUSE);
	/* listeners are limited */
	for (unsigned i = 2; i < PV_NET_LISTEN_MAX; i++)
		assert_true(hc(f, PV_HC_NET_LISTEN, 0, 1, 0) >= 0);
	assert_int_equal(hc(f, PV_HC_NET_LISTEN, 0, 1, 0), -EMFILE);
	assert_running(f);
}

static void poll_waits_in_the_host_and_wakes_on_the_socket(void **state)
{
	struct fixture *f = *state;
	int64_t l = hc(f, PV_HC_NET_LISTEN, 0, 4, 0);
	assert_true(l >= 0);
	struct pv_pollfd pf = { .handle = (int32_t)l, .events = PV_POLLIN, .revents = 0xffff };
	assert_int_equal(hv_machine_write_ram(f->m, BUF, &pf, sizeof(pf)), 0);
	/* deadline passed: 0 at once, revents cleared */
	assert_int_equal(hc(f, PV_HC_NET_POLL, BUF, 1, 0), 0);
	struct pv_pollfd back;
	memcpy(&back, hv_machine_ram(f->m) + BUF, sizeof(back));
	assert_int_equal(back.revents, 0);
	/* no deadline, nothing ready: the guest waits (-EINTR) on the socket */
	assert_int_equal(hc(f, PV_HC_NET_POLL, BUF, 1, UINT64_MAX), -EINTR);
	struct pollfd w[4];
	assert_int_equal(hv_machine_wait_fds(f->m, w, 4), 1);
	assert_int_equal(w[0].fd, f->net->h[l].fd);
	assert_int_equal(hv_machine_wake_at(f->m), UINT64_MAX);
	assert_false(hv_net_wait_ready(f->m));
	/* a client arrives: the wait is over, and poll reports it */
	int64_t c = hc(f, PV_HC_NET_CONNECT, 0x7f000001,
		       (uint64_t)(hc(f, PV_HC_NET_ADDR, (uint64_t)l, 0, 0) & 0xffff), 0);
	assert_true(c >= 0);
	assert_int_equal(poll(w, 1, 5000), 1);
	assert_true(hv_net_wait_ready(f->m));
	assert_int_equal(hc(f, PV_HC_NET_POLL, BUF, 1, UINT64_MAX), 1);
	memcpy(&back, hv_machine_ram(f->m) + BUF, sizeof(back));
	assert_int_equal(back.revents, PV_POLLIN);
	assert_running(f);
}

static void sleep_until_forever_never_wraps(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hc(f, PV_HC_SLEEP_UNTIL, UINT64_MAX, 0, 0), 0);
	assert_int_equal(hv_machine_wake_at(f->m), UINT64_MAX);
	assert_int_equal(hc(f, PV_HC_SLEEP_UNTIL, UINT64_MAX - 5, 0, 0), 0);
	assert_int_equal(hv_machine_wake_at(f->m), UINT64_MAX);
	/* a near deadline is near */
	uint64_t now = hv_now_ns();
	assert_int_equal(hc(f, PV_HC_SLEEP_UNTIL, hv_guest_mono(f->m) + 1000000000ull, 0, 0), 0);
	uint64_t at = hv_machine_wake_at(f->m);
	assert_true(at > now && at < now + 2000000000ull);
}

static void restore_checks_every_saved_socket(void **state)
{
	struct fixture *f = *state;
	char err[160];
	const struct hv_net_saved bad[] = {
		{ .handle = 256, .kind = HV_NS_LISTEN },
		{ .handle = 3, .kind = 9 },
		{ .handle = 3, .kind = HV_NS_FREE },
		{ .handle = 3, .kind = HV_NS_LISTEN, .port = 70000 },
		{ .handle = 3, .kind = HV_NS_LISTEN, .backlog = PV_NET_BACKLOG_MAX + 1 },
		{ .handle = 3, .kind = HV_NS_DEAD, .err = 5 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(hv_net_restore(f->net, &bad[i], 1, err, sizeof(err)), -EBADMSG);
		assert_non_null(strstr(err, "bad socket entry"));
		assert_int_equal(f->net->nopen, 0);
	}
	const struct hv_net_saved twice[] = { { .handle = 3, .kind = HV_NS_STREAM },
					      { .handle = 3, .kind = HV_NS_STREAM } };
	assert_int_equal(hv_net_restore(f->net, twice, 2, err, sizeof(err)), -EBADMSG);
	assert_int_equal(f->net->nopen, 0);
	/* a good one: the connection is dead with ECONNRESET, the listener listens */
	const struct hv_net_saved good[] = { { .handle = 3, .kind = HV_NS_STREAM },
					     { .handle = 7, .kind = HV_NS_LISTEN, .backlog = 4 } };
	assert_int_equal(hv_net_restore(f->net, good, 2, err, sizeof(err)), 0);
	assert_int_equal(hc(f, PV_HC_NET_RECV, 3, BUF, 4), -ECONNRESET);
	assert_int_equal(hc(f, PV_HC_NET_ACCEPT, 7, 0, 0), -EAGAIN);
	assert_int_equal(hc(f, PV_HC_NET_CLOSE, 3, 0, 0), 0);
	assert_int_equal(hc(f, PV_HC_NET_RECV, 3, BUF, 4), -EBADF);
	assert_running(f);
}

/* A migration target gives a connection that the restore reset its socket
 * back; only such a handle takes one. */
static void a_reset_connection_can_be_adopted_once(void **state)
{
	struct fixture *f = *state;
	char err[160];
	const struct hv_net_saved saved[] = { { .handle = 2, .kind = HV_NS_STREAM },
					      { .handle = 4, .kind = HV_NS_DEAD, .err = -PV_EPIPE },
					      { .handle = 6, .kind = HV_NS_LISTEN, .backlog = 1 } };
	assert_int_equal(hv_net_restore(f->net, saved, 3, err, sizeof(err)), 0);
	assert_true(hv_net_adoptable(f->net, 2));
	assert_false(hv_net_adoptable(f->net, 4)); /* dead before the save */
	assert_false(hv_net_adoptable(f->net, 6));
	assert_false(hv_net_adoptable(f->net, 9));
	assert_false(hv_net_adoptable(f->net, PV_NET_HANDLES_MAX));
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(hv_net_adopt(f->net, 4, sv[0]), -EBADF);
	unsigned handles[PV_NET_HANDLES_MAX];
	int fds[PV_NET_HANDLES_MAX];
	assert_int_equal(hv_net_connections(f->net, handles, fds), 0);
	assert_int_equal(hv_net_adopt(f->net, 2, sv[0]), 0);
	assert_false(hv_net_adoptable(f->net, 2));
	assert_int_equal(hv_net_adopt(f->net, 2, sv[0]), -EBADF);
	assert_int_equal(hv_net_connections(f->net, handles, fds), 1);
	assert_int_equal(handles[0], 2);
	assert_int_equal(fds[0], sv[0]);
	assert_int_equal(write(sv[1], "ab", 2), 2);
	assert_int_equal(hc(f, PV_HC_NET_RECV, 2, BUF, 4), 2);
	assert_int_equal(hc(f, PV_HC_NET_RECV, 4, BUF, 4), -EPIPE);
	unsigned open, listening;
	hv_net_counts(f->net, &open, &listening);
	assert_int_equal(open, 3);
	close(sv[1]);
	assert_running(f);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
#define T0(fn) cmocka_unit_test_setup_teardown(fn, setup_no_net, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T0(without_a_net_every_call_is_enodev),
		T(abi_v1_guest_has_no_net_calls),
		T(bad_handles_are_ebadf),
		T(broken_arguments_stop_the_guest),
		T(correct_but_refused_arguments_return_errors),
		T(poll_waits_in_the_host_and_wakes_on_the_socket),
		T(a_reset_connection_can_be_adopted_once),
		T0(sleep_until_forever_never_wraps),
		T(restore_checks_every_saved_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
