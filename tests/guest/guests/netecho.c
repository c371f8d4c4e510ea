/*
 * netecho: the ABI v2 socket test guest, and a sample of the SDK's socket API
 * and event loop. Command line: mode=M and the mode's options.
 *
 *   mode=echo [port=N]   (default) listens on the guest's address and port N
 *       (default 0: any free one), prints "netecho: listening on IP:PORT",
 *       and echoes every byte of every client back until the client closes.
 *       Prints "netecho: client H from IP:PORT" at each accept, "netecho:
 *       client H closed" at a clean end and "netecho: client H error E" (E as
 *       pv_strerror names it) when a call fails. Runs until stopped; an idle
 *       echo server waits in net_poll, costing no host CPU.
 *   mode=checks   runs the socket calls' error cases against itself (over its
 *       own address) and prints "netecho: check NAME ok" or "netecho: check
 *       NAME FAILED: ..." for each; "netecho: checks done, F failed"; exits F
 *       (0 = all passed). The limits are counted: "netecho: handles H
 *       listeners L" (what the host let it open).
 *   mode=flood to=PORT   connects to the guest's own address at PORT (a test
 *       server that never reads), sends as fast as it can until -EAGAIN and
 *       prints "netecho: flood queued N bytes"; then keeps sending
 *       (retries=K, default 100000; "netecho: flood retries K eagain E total
 *       T bytes": how many were refused, all the host ever took), opens handles
 *       until -EMFILE ("netecho: flood handles H"), prints "netecho: flood
 *       done" and waits for ever in net_poll.
 *   mode=sleep-forever   prints "netecho: sleeping" and sleeps until
 *       UINT64_MAX (nothing wakes it; the host must not spin meanwhile).
 *   mode=first-call   (for the ABI v1 build) prints "netecho: calling
 *       net_listen" and calls it: a v1 guest is stopped there.
 */
#include "pv.h"

static struct pv_loop loop;
static char buf[16384];

/* ---- echo ---- */

static void close_client(int h, const char *why)
{
	if (why)
		pv_printf("netecho: client %d error %s\n", h, why);
	else
		pv_printf("netecho: client %d closed\n", h);
	pv_loop_del(&loop, h);
	pv_net_close(h);
}

static void on_client(struct pv_loop *l, int h, unsigned revents, void *ctx)
{
	(void)l;
	(void)revents;
	(void)ctx;
	for (;;) {
		long n = pv_net_recv(h, buf, sizeof(buf));
		if (n == -PV_EAGAIN)
			return;
		if (n == 0) {
			close_client(h, NULL);
			return;
		}
		if (n < 0) {
			close_client(h, pv_strerror(n));
			return;
		}
		long w = pv_net_send_all(h, buf, (unsigned long)n);
		if (w < 0) {
			close_client(h, pv_strerror(w));
			return;
		}
	}
}

static void on_listener(struct pv_loop *l, int h, unsigned revents, void *ctx)
{
	(void)revents;
	(void)ctx;
	for (;;) {
		int c = pv_net_accept(h);
		if (c == -PV_EAGAIN)
			return;
		if (c < 0) {
			pv_printf("netecho: accept error %s\n", pv_strerror(c));
			return;
		}
		uint32_t ip;
		uint16_t port;
		char text[16];
		if (pv_net_peer(c, &ip, &port) == 0) {
			pv_ipv4_format(ip, text);
			pv_printf("netecho: client %d from %s:%u\n", c, text, port);
		}
		if (pv_loop_add(l, c, PV_POLLIN, on_client, NULL) < 0)
			close_client(c, "loop full");
	}
}

static int echo(const struct pv_boot_info *bi)
{
	uint64_t port = 0;
	if (pv_cmdline_u64(bi, "port", &port) < 0 || port > 65535)
		return 2;
	int l = pv_net_listen((uint16_t)port, 64);
	if (l < 0) {
		pv_printf("netecho: listen failed: %s\n", pv_strerror(l));
		return 3;
	}
	char text[16];
	pv_ipv4_format((uint32_t)pv_net_address(), text);
	pv_printf("netecho: listening on %s:%d\n", text, pv_net_local_port(l));
	pv_loop_init(&loop);
	pv_loop_add(&loop, l, PV_POLLIN, on_listener, NULL);
	int r = pv_loop_run(&loop);
	pv_printf("netecho: loop ended: %s\n", pv_strerror(r));
	return 4;
}

/* ---- checks ---- */

static int failed;

static void check(const char *name, int64_t got, int64_t want)
{
	if (got == want) {
		pv_printf("netecho: check %s ok\n", name);
		return;
	}
	pv_printf("netecho: check %s FAILED: got %ld (%s), want %ld (%s)\n", name, got,
		  pv_strerror(got), want, pv_strerror(want));
	failed++;
}

/* Waits for events on h for up to 5 s; returns revents (0 on timeout). */
static unsigned wait_for(int h, unsigned events)
{
	struct pv_pollfd pf = { .handle = h, .events = (uint16_t)events };
	int r = pv_net_poll(&pf, 1, pv_clock_mono() + 5000000000ull);
	return r > 0 ? pf.revents : 0;
}

static int checks(void)
{
	uint32_t self = (uint32_t)pv_net_address();
	char c;

	check("recv-never-opened", pv_net_recv(200, buf, 1), -PV_EBADF);
	check("send-negative", pv_net_send(-1, buf, 1), -PV_EBADF);
	check("close-never-opened", pv_net_close(255), -PV_EBADF);
	check("accept-out-of-range", pv_net_accept(4096), -PV_EBADF);

	int l = pv_net_listen(0, 8);
	check("listen", l >= 0 ? 0 : l, 0);
	int port = pv_net_local_port(l);
	check("listen-port-known", port > 0 ? 0 : port, 0);
	check("accept-none-waiting", pv_net_accept(l), -PV_EAGAIN);
	check("send-on-listener", pv_net_send(l, "x", 1), -PV_ENOTCONN);
	check("recv-on-listener", pv_net_recv(l, buf, 1), -PV_ENOTCONN);
	check("shutdown-listener", pv_net_shutdown(l, PV_SHUT_RDWR), -PV_ENOTCONN);
	check("listen-same-port", pv_net_listen((uint16_t)port, 1), -PV_EADDRINUSE);

	/* the deadline: nothing is waiting, so poll returns 0 at it */
	struct pv_pollfd pf = { .handle = l, .events = PV_POLLIN };
	uint64_t t0 = pv_clock_mono(), dl = t0 + 30000000ull;
	check("poll-deadline", pv_net_poll(&pf, 1, dl), 0);
	check("poll-deadline-reached", pv_clock_mono() >= dl, 1);
	check("poll-deadline-zero", pv_net_poll(&pf, 1, 0), 0);
	struct pv_pollfd bad[2] = { { .handle = l, .events = PV_POLLIN }, { .handle = 77, .events = PV_POLLIN } };
	check("poll-bad-handle", pv_net_poll(bad, 2, 0), -PV_EBADF);
	bad[1].handle = -1;
	check("poll-negative-skipped", pv_net_poll(bad, 2, 0), 0);

	int a = pv_net_connect(self, (uint16_t)port);
	check("connect", a >= 0 ? 0 : a, 0);
	check("connect-completes", (wait_for(a, PV_POLLOUT) & PV_POLLOUT) != 0, 1);
	check("listener-readable", (wait_for(l, PV_POLLIN) & PV_POLLIN) != 0, 1);
	int b = pv_net_accept(l);
	check("accept", b >= 0 ? 0 : b, 0);
	check("accept-on-stream", pv_net_accept(a), -PV_EINVAL);
	check("recv-nothing-yet", pv_net_recv(b, buf, 1), -PV_EAGAIN);
	check("send", pv_net_send(a, "hello", 5), 5);
	check("send-zero", pv_net_send(a, "hello", 0), 0);
	check("peer-readable", (wait_for(b, PV_POLLIN) & PV_POLLIN) != 0, 1);
	check("recv", pv_net_recv(b, buf, sizeof(buf)), 5);
	check("recv-bytes", memcmp(buf, "hello", 5), 0);
	uint32_t pip;
	uint16_t pport;
	check("peer-of-accepted", pv_net_peer(b, &pip, &pport), 0);
	check("peer-address", pip, self);
	check("peer-of-listener", pv_net_peer(l, &pip, &pport), -PV_ENOTCONN);

	check("shutdown-write", pv_net_shutdown(a, PV_SHUT_WR), 0);
	check("send-after-shutdown", pv_net_send(a, "x", 1), -PV_EPIPE);
	check("eof-readable", (wait_for(b, PV_POLLIN) & PV_POLLIN) != 0, 1);
	check("recv-eof", pv_net_recv(b, &c, 1), 0);
	check("close", pv_net_close(b), 0);
	check("recv-after-close", pv_net_recv(b, &c, 1), -PV_EBADF);
	check("close-twice", pv_net_close(b), -PV_EBADF);
	check("reset-seen", (wait_for(a, PV_POLLIN) & (PV_POLLIN | PV_POLLHUP)) != 0, 1);
	pv_net_close(a);

	/* a refused connection: listen, learn the port, close, connect */
	int gone = pv_net_listen(0, 1);
	int gport = pv_net_local_port(gone);
	pv_net_close(gone);
	int r = pv_net_connect(self, (uint16_t)gport);
	check("connect-refused-handle", r >= 0 ? 0 : r, 0);
	check("connect-refused-err", (wait_for(r, PV_POLLOUT) & PV_POLLERR) != 0, 1);
	check("connect-refused-recv", pv_net_recv(r, &c, 1), -PV_ECONNREFUSED);
	pv_net_close(r);
	check("connect-port-zero", pv_net_connect(self, 0), -PV_EINVAL);

	/* limits: listeners, then handles */
	int hs[PV_NET_HANDLES_MAX + 1], nl = 1, nh = 0; /* l is open */
	for (;;) {
		int x = pv_net_listen(0, 1);
		if (x < 0) {
			check("listeners-limit-error", x, -PV_EMFILE);
			break;
		}
		hs[nh++] = x;
		nl++;
	}
	int total = 1 + nh;
	for (;;) {
		int x = pv_net_connect(self, (uint16_t)port);
		if (x < 0) {
			check("handles-limit-error", x, -PV_EMFILE);
			break;
		}
		hs[nh++] = x;
		total++;
	}
	pv_printf("netecho: handles %d listeners %d\n", total, nl);
	check("listeners-limit", nl, PV_NET_LISTEN_MAX);
	check("handles-limit", total, PV_NET_HANDLES_MAX);
	check("accept-when-full", pv_net_accept(l), -PV_EMFILE);
	for (int i = 0; i < nh; i++)
		pv_net_close(hs[i]);
	/* the handle numbers come back, lowest first */
	int again = pv_net_connect(self, (uint16_t)port);
	check("handle-reused-lowest", again, 1);
	pv_net_close(again);
	pv_net_close(l);

	pv_printf("netecho: checks done, %d failed\n", failed);
	return failed;
}

/* ---- flood ---- */

static int flood(const struct pv_boot_info *bi)
{
	uint64_t to = 0, retries = 100000;
	if (pv_cmdline_u64(bi, "to", &to) <= 0 || to == 0 || to > 65535 ||
	    pv_cmdline_u64(bi, "retries", &retries) < 0)
		return 2;
	int h = pv_net_connect((uint32_t)pv_net_address(), (uint16_t)to);
	if (h < 0 || !(wait_for(h, PV_POLLOUT) & PV_POLLOUT)) {
		pv_printf("netecho: flood connect failed\n");
		return 3;
	}
	memset(buf, 'f', sizeof(buf));
	uint64_t queued = 0;
	for (;;) {
		long n = pv_net_send(h, buf, sizeof(buf));
		if (n == -PV_EAGAIN)
			break;
		if (n < 0) {
			pv_printf("netecho: flood send error %s\n", pv_strerror(n));
			return 4;
		}
		queued += (uint64_t)n;
	}
	pv_printf("netecho: flood queued %lu bytes\n", queued);
	uint64_t eagain = 0, more = 0;
	for (uint64_t i = 0; i < retries; i++) {
		long n = pv_net_send(h, buf, sizeof(buf));
		if (n == -PV_EAGAIN)
			eagain++;
		else if (n > 0)
			more += (uint64_t)n; /* the peer's kernel took some more */
	}
	pv_printf("netecho: flood retries %lu eagain %lu total %lu bytes\n", retries, eagain,
		  queued + more);
	int nh = 1;
	for (;;) {
		int x = pv_net_connect((uint32_t)pv_net_address(), (uint16_t)to);
		if (x < 0)
			break;
		nh++;
	}
	pv_printf("netecho: flood handles %d\n", nh);
	pv_printf("netecho: flood done\n");
	for (;;)
		pv_net_poll(NULL, 0, UINT64_MAX);
}

int main(const struct pv_boot_info *bi)
{
	char mode[32] = "echo";
	if (pv_cmdline_get(bi, "mode", mode, sizeof(mode)) == -PV_EINVAL)
		return 2;
	if (strcmp(mode, "first-call") == 0) {
		pv_printf("netecho: calling net_listen\n");
		int r = pv_net_listen(0, 1);
		pv_printf("netecho: survived net_listen: %d\n", r);
		return 1;
	}
	if (strcmp(mode, "sleep-forever") == 0) {
		pv_printf("netecho: sleeping\n");
		pv_console_flush();
		pv_sleep_until(UINT64_MAX);
		pv_printf("netecho: woke up\n");
		return 1;
	}
	if (!(bi->flags & PV_BOOT_F_NET)) {
		pv_printf("netecho: no network (give pvha-vmm --address)\n");
		return 5;
	}
	if (strcmp(mode, "echo") == 0)
		return echo(bi);
	if (strcmp(mode, "checks") == 0)
		return checks();
	if (strcmp(mode, "flood") == 0)
		return flood(bi);
	pv_printf("netecho: unknown mode %s\n", mode);
	return 2;
}
