/*
 * ABI v2 sockets end to end: real pvha-vmm processes running the netecho
 * guest on 127.0.0.1, and real TCP clients in this test. Echo with many
 * clients at once, the guest's own error and limit checks, an ABI v1 guest
 * that must not get sockets, a guest that floods its sockets, an idle guest
 * that must cost no host CPU (also one asleep until UINT64_MAX), and a saved
 * state restored later: its listener back on the same port, its connections
 * reset.
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
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "vmmctl.h"

#define VMM th_build("bin/pvha-vmm")
#define GUEST(n) th_build("guests/" n ".elf")
#define ADDR "127.0.0.1"

#define assert_contains(path, needle) assert_true(th_file_contains((path), (needle)))

/* Starts netecho with the given command line (and, when save is given,
 * --save save --control ctl) and waits for its listener; returns the port. */
static int start_echo(struct proc *p, const char *cmdline, const char *save, const char *ctl)
{
	char *argv[16] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			   "--backend", "tcg", "--address", ADDR, "--cmdline", (char *)cmdline };
	int n = 11;
	if (save) {
		argv[n++] = "--save";
		argv[n++] = (char *)save;
	}
	if (ctl) {
		argv[n++] = "--control";
		argv[n++] = (char *)ctl;
	}
	argv[n] = NULL;
	th_spawn(p, argv);
	if (!th_wait_for_text(p->out_path, "netecho: listening on " ADDR ":", 30))
		fail_msg("netecho did not listen:\n%s", th_slurp(p->out_path));
	char *out = th_slurp(p->out_path);
	int port = atoi(strstr(out, "listening on " ADDR ":") + strlen("listening on " ADDR ":"));
	free(out);
	assert_true(port > 0 && port < 65536);
	return port;
}

static int tcp_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct timeval tv = { .tv_sec = 20 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, ADDR, &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("connect to port %d: %s", port, strerror(errno));
	return fd;
}

/* A /proc file's text (its size reads as 0, so th_slurp cannot). */
static char *read_proc(const char *path)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strdup(buf);
}

/* utime + stime of a process, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	char *s = read_proc(path);
	char *p = strrchr(s, ')');
	assert_non_null(p);
	long ut = 0, st = 0;
	/* after ")": state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st), 2);
	free(s);
	return ut + st;
}

static long status_kb(pid_t pid, const char *field)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	char *s = read_proc(path);
	char *p = strstr(s, field);
	assert_non_null(p);
	long kb = atol(p + strlen(field) + 1);
	free(s);
	return kb;
}

static void stop_vmm(struct proc *p)
{
	kill(p->pid, SIGTERM);
	th_wait(p, 30);
}

/* 64 clients at once, each sending 48 KiB of its own pattern in pieces and
 * reading all of it back, all multiplexed with poll() here; then each closes
 * and the guest sees every close. */
#define CLIENTS 64
#define PER_CLIENT (48 * 1024)
static void echo_serves_many_clients_at_once(void **state)
{
	(void)state;
	struct proc p;
	int port = start_echo(&p, "mode=echo", NULL, NULL);
	static uint8_t want[CLIENTS][PER_CLIENT], got[CLIENTS][PER_CLIENT];
	int fd[CLIENTS];
	size_t sent[CLIENTS] = { 0 }, rcvd[CLIENTS] = { 0 };
	for (int c = 0; c < CLIENTS; c++) {
		fd[c] = tcp_connect(port);
		for (size_t i = 0; i < PER_CLIENT; i++)
			want[c][i] = (uint8_t)(c * 131 + i * 7 + (i >> 9));
	}
	int done = 0;
	double t0 = th_now_s();
	while (done < CLIENTS) {
		if (th_now_s() - t0 > 60)
			fail_msg("echo stalled: %d of %d clients complete", done, CLIENTS);
		struct pollfd pfd[CLIENTS];
		for (int c = 0; c < CLIENTS; c++)
			pfd[c] = (struct pollfd){ .fd = rcvd[c] < PER_CLIENT ? fd[c] : -1,
						  .events = (short)(POLLIN | (sent[c] < PER_CLIENT ? POLLOUT : 0)) };
		assert_true(poll(pfd, CLIENTS, 1000) >= 0);
		for (int c = 0; c < CLIENTS; c++) {
			if ((pfd[c].revents & POLLOUT) && sent[c] < PER_CLIENT) {
				size_t chunk = PER_CLIENT - sent[c] > 3000 ? 3000 : PER_CLIENT - sent[c];
				ssize_t n = send(fd[c], want[c] + sent[c], chunk, MSG_DONTWAIT);
				if (n > 0)
					sent[c] += (size_t)n;
			}
			if (pfd[c].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = recv(fd[c], got[c] + rcvd[c], PER_CLIENT - rcvd[c], MSG_DONTWAIT);
				if (n == 0)
					fail_msg("client %d: the guest closed after %zu bytes", c, rcvd[c]);
				if (n > 0) {
					rcvd[c] += (size_t)n;
					if (rcvd[c] == PER_CLIENT)
						done++;
				}
			}
		}
	}
	for (int c = 0; c < CLIENTS; c++) {
		assert_memory_equal(got[c], want[c], PER_CLIENT);
		close(fd[c]);
	}
	/* every client's close reaches the guest */
	for (int tries = 0; tries < 3000; tries++) {
		char *out = th_slurp(p.out_path);
		int closed = th_count(out, " closed\n");
		free(out);
		if (closed == CLIENTS)
			break;
		th_pause_ms(10);
	}
	char *out = th_slurp(p.out_path);
	assert_int_equal(th_count(out, " closed\n"), CLIENTS);
	assert_int_equal(th_count(out, "netecho: client "), 2 * CLIENTS);
	assert_int_equal(th_count(out, " error "), 0);
	free(out);
	stop_vmm(&p);
}

static void guest_error_and_limit_checks_pass(void **state)
{
	(void)state;
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			 "--backend", "tcg", "--address", ADDR, "--cmdline", "mode=checks", NULL };
	int rc = th_run(&p, 120, argv);
	if (rc != 0)
		fail_msg("checks failed (exit %d):\n%s", rc, th_slurp(p.out_path));
	assert_contains(p.out_path, "netecho: checks done, 0 failed");
	assert_contains(p.out_path, "netecho: handles 256 listeners 8");
	assert_contains(p.out_path, "netecho: check connect-refused-recv ok");
}

static void without_address_the_guest_has_no_network(void **state)
{
	(void)state;
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			 "--backend", "tcg", "--cmdline", "mode=echo", NULL };
	assert_int_equal(th_run(&p, 60, argv), 1);
	assert_contains(p.out_path, "netecho: no network");
	char *bad[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			"--address", "300.1.2.3", NULL };
	assert_int_equal(th_run(&p, 60, bad), 2);
	assert_contains(p.err_path, "--address 300.1.2.3: not an IPv4 address");
	char *badp[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			 "--address", "127.0.0.1/33", NULL };
	assert_int_equal(th_run(&p, 60, badp), 2);
	assert_contains(p.err_path, "want an IPv4 address, optionally /PREFIX");
}

/* An ABI v1 image (same source, PVHA note says 1) sees version 1 and no
 * sockets: its first socket call stops it as an unknown call would. */
static void abi_v1_guest_runs_unchanged(void **state)
{
	(void)state;
	struct proc p;
	char *hello[] = { (char *)VMM, "--image", (char *)GUEST("hello_v1"), "--mem", "4M",
			  "--backend", "tcg", "--address", ADDR, NULL };
	assert_int_equal(th_run(&p, 60, hello), 0);
	assert_contains(p.out_path, "hello: abi_version 1 (host says 1)");
	char *hello2[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "4M",
			   "--backend", "tcg", NULL };
	assert_int_equal(th_run(&p, 60, hello2), 0);
	assert_contains(p.out_path, "hello: abi_version 2 (host says 2)");
	char *net[] = { (char *)VMM, "--image", (char *)GUEST("netecho_v1"), "--mem", "4M",
			"--backend", "tcg", "--address", ADDR, "--cmdline", "mode=first-call", NULL };
	assert_int_equal(th_run(&p, 60, net), 3);
	assert_contains(p.out_path, "netecho: calling net_listen");
	assert_contains(p.err_path, "bad-hypercall: bad hypercall: unknown number 11");
	char *out = th_slurp(p.out_path);
	assert_null(strstr(out, "survived"));
	free(out);
}

/* A guest that fills its send buffer against a server that never reads, then
 * keeps sending, then opens every handle it may: the host queues a bounded
 * amount, says -EAGAIN, stops at PV_NET_HANDLES_MAX, stays responsive and
 * small, and the flooder costs no CPU once it waits. */
static void flooding_guest_is_bounded(void **state)
{
	(void)state;
	int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	inet_pton(AF_INET, ADDR, &sa.sin_addr);
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv, 512), 0);
	assert_int_equal(getsockname(srv, (struct sockaddr *)&sa, &len), 0);
	char cmd[64], ctl[256];
	snprintf(cmd, sizeof(cmd), "mode=flood to=%u retries=20000", ntohs(sa.sin_port));
	snprintf(ctl, sizeof(ctl), "%s", th_tmp("flood.sock"));
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			 "--backend", "tcg", "--address", ADDR, "--cmdline", cmd, "--control", ctl, NULL };
	struct proc p;
	th_spawn(&p, argv);
	assert_true(th_wait_for_text(p.out_path, "netecho: flood queued", 60));
	long rss0 = status_kb(p.pid, "VmRSS:");
	if (!th_wait_for_text(p.out_path, "netecho: flood done", 120))
		fail_msg("flood did not finish:\n%s", th_slurp(p.out_path));
	char *out = th_slurp(p.out_path);
	unsigned long queued = strtoul(strstr(out, "flood queued ") + 13, NULL, 10);
	/* the guest's socket buffer plus the peer's receive window: well under 1 MiB */
	assert_true(queued > 0 && queued < 1024 * 1024);
	/* retrying does not make the host queue more than the same bound */
	char *rl = strstr(out, "flood retries 20000 eagain ");
	assert_non_null(rl);
	unsigned long eagain = strtoul(rl + strlen("flood retries 20000 eagain "), NULL, 10);
	unsigned long total = strtoul(strstr(rl, " total ") + 7, NULL, 10);
	assert_true(eagain > 10000);
	assert_true(total >= queued && total < 1024 * 1024);
	assert_non_null(strstr(out, "flood handles 256"));
	free(out);
	long rss1 = status_kb(p.pid, "VmRSS:");
	assert_true(rss1 - rss0 < 4096);

	int fd;
	Pvha__VmmReply *r;
	assert_int_equal(vmmctl_connect(ctl, 5000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r), 0);
	assert_int_equal(r->error, 0);
	assert_int_equal(r->status->net_handles, 256);
	assert_int_equal(r->status->net_listeners, 0);
	assert_string_equal(r->status->net_address, ADDR);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);

	/* waiting in net_poll with no deadline: no CPU */
	long t0 = cpu_ticks(p.pid);
	th_pause_ms(1500);
	long used = cpu_ticks(p.pid) - t0;
	assert_true(used <= 10);
	stop_vmm(&p);
	close(srv);
}

/* Idle costs nothing: the echo server waiting for clients, and a guest asleep
 * until UINT64_MAX (which once wrapped into the past and made the VMM spin). */
static void idle_guests_cost_no_host_cpu(void **state)
{
	(void)state;
	struct proc p;
	start_echo(&p, "mode=echo", NULL, NULL);
	th_pause_ms(200); /* let the boot's own work end */
	long t0 = cpu_ticks(p.pid);
	th_pause_ms(1500);
	long used = cpu_ticks(p.pid) - t0;
	if (used > 10)
		fail_msg("an idle echo guest used %ld ticks in 1.5 s", used);
	stop_vmm(&p);

	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			 "--backend", "tcg", "--cmdline", "mode=sleep-forever", NULL };
	th_spawn(&p, argv);
	assert_true(th_wait_for_text(p.out_path, "netecho: sleeping", 30));
	th_pause_ms(200);
	t0 = cpu_ticks(p.pid);
	th_pause_ms(1500);
	used = cpu_ticks(p.pid) - t0;
	if (used > 10)
		fail_msg("a guest asleep until UINT64_MAX made the VMM use %ld ticks in 1.5 s", used);
	stop_vmm(&p);
	assert_int_equal(p.status, 5);
	char *out = th_slurp(p.out_path);
	assert_null(strstr(out, "woke up"));
	free(out);
}

/* Saved to a file and restored later: the listener listens again on its
 * port, the connection the guest had is reset (the guest reads
 * -ECONNRESET), and new clients are served. */
static void restored_guest_listens_again_and_its_connections_reset(void **state)
{
	(void)state;
	struct proc p;
	const char *st = th_tmp("net.state");
	int port = start_echo(&p, "mode=echo", st, NULL);
	int c = tcp_connect(port);
	char b[16];
	assert_int_equal(send(c, "before", 6, 0), 6);
	assert_int_equal(recv(c, b, sizeof(b), MSG_WAITALL), 6);
	assert_memory_equal(b, "before", 6);
	assert_true(th_wait_for_text(p.out_path, "netecho: client 1 from 127.0.0.1:", 10));
	kill(p.pid, SIGTERM);
	assert_int_equal(th_wait(&p, 30), 6);
	/* the client's connection ended with the VMM */
	assert_true(recv(c, b, sizeof(b), 0) <= 0);
	close(c);

	/* no address: refused, nothing lost */
	char *noaddr[] = { (char *)VMM, "--restore", (char *)st, "--backend", "tcg", NULL };
	assert_int_equal(th_run(&p, 30, noaddr), 2);
	assert_contains(p.err_path, "the saved guest had 2 sockets open: give it a network address");

	char *argv[] = { (char *)VMM, "--restore", (char *)st, "--backend", "tcg", "--address", ADDR,
			 NULL };
	th_spawn(&p, argv);
	/* the guest reads the reset on its old client handle */
	if (!th_wait_for_text(p.out_path, "netecho: client 1 error ECONNRESET", 30))
		fail_msg("no reset seen by the guest:\n%s", th_slurp(p.out_path));
	/* and serves new clients on the same port, from the restored listener */
	int d = tcp_connect(port);
	assert_int_equal(send(d, "after", 5, 0), 5);
	assert_int_equal(recv(d, b, sizeof(b), MSG_WAITALL), 5);
	assert_memory_equal(b, "after", 5);
	close(d);
	assert_true(th_wait_for_text(p.out_path, "netecho: client 1 closed", 10));
	char *out = th_slurp(p.out_path);
	assert_int_equal(th_count(out, "netecho: listening"), 0); /* no reboot */
	free(out);
	stop_vmm(&p);
}

/* Live migration to another VMM on this host: the listener moves (the
 * target listens on the same port before the source lets go), the
 * connection the guest had moves with it (TCP_REPAIR, docs/migration.md)
 * and answers at the target, and the target serves new clients. */
static void migrated_guest_listens_at_the_target(void **state)
{
	(void)state;
	char sa[256], sb[256], con[256];
	snprintf(sa, sizeof(sa), "%s", th_tmp("mig-a.sock"));
	snprintf(sb, sizeof(sb), "%s", th_tmp("mig-b.sock"));
	snprintf(con, sizeof(con), "%s", th_tmp("mig.console"));
	char *src[] = { (char *)VMM, "--image", (char *)GUEST("netecho"), "--mem", "4M",
			"--backend", "tcg", "--address", ADDR, "--cmdline", "mode=echo",
			"--control", sa, "--console", con, NULL };
	char *dst[] = { (char *)VMM, "--incoming", "127.0.0.1:0", "--backend", "tcg", "--address",
			ADDR, "--control", sb, "--console", con, "--migrate-key-file", (char *)th_migrate_key_file(),
			NULL };
	struct proc a, b;
	th_spawn(&a, src);
	th_spawn(&b, dst);
	assert_true(th_wait_for_text(con, "netecho: listening on " ADDR ":", 30));
	assert_true(th_wait_for_socket(sa, 30) && th_wait_for_socket(sb, 30));
	char *out = th_slurp(con);
	int port = atoi(strstr(out, "listening on " ADDR ":") + strlen("listening on " ADDR ":"));
	free(out);
	int c = tcp_connect(port);
	char buf[16];
	assert_int_equal(send(c, "one", 3, 0), 3);
	assert_int_equal(recv(c, buf, sizeof(buf), MSG_WAITALL), 3);

	int fd;
	Pvha__VmmReply *r;
	assert_int_equal(vmmctl_connect(sb, 5000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r), 0);
	uint32_t mport = r->status->incoming_port;
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	assert_int_equal(vmmctl_connect(sa, 5000, &fd), 0);
	assert_int_equal(vmmctl_migrate_keyed(fd, "127.0.0.1", mport, 0, 0, th_migrate_key, sizeof(th_migrate_key), &r),
			 0);
	assert_int_equal(r->error, 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	bool done = false;
	for (int i = 0; i < 6000 && !done; i++) {
		assert_int_equal(vmmctl_connect(sa, 5000, &fd), 0);
		assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r), 0);
		done = !strcmp(r->status->migration_phase, "done");
		if (!strcmp(r->status->migration_phase, "failed"))
			fail_msg("migration failed: %s", r->status->migration_reason);
		pvha__vmm_reply__free_unpacked(r, NULL);
		close(fd);
		if (!done)
			th_pause_ms(10);
	}
	assert_true(done);
	/* the old connection answers from the target: nothing reset it */
	assert_int_equal(send(c, "three", 5, 0), 5);
	assert_int_equal(recv(c, buf, 5, MSG_WAITALL), 5);
	assert_memory_equal(buf, "three", 5);
	assert_false(th_file_contains(con, "ECONNRESET"));
	/* new clients reach the guest at the target */
	int d = tcp_connect(port);
	assert_int_equal(send(d, "two", 3, 0), 3);
	assert_int_equal(recv(d, buf, sizeof(buf), MSG_WAITALL), 3);
	assert_memory_equal(buf, "two", 3);
	close(d);
	assert_int_equal(send(c, "four", 4, 0), 4);
	assert_int_equal(recv(c, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "four", 4);
	close(c);
	assert_int_equal(vmmctl_connect(sb, 5000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r), 0);
	assert_string_equal(r->status->state, "sleeping");
	assert_int_equal(r->status->net_listeners, 1);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	kill(a.pid, SIGTERM);
	kill(b.pid, SIGTERM);
	assert_int_equal(th_wait(&a, 30), 10);
	assert_int_equal(th_wait(&b, 30), 5);
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
		cmocka_unit_test(echo_serves_many_clients_at_once),
		cmocka_unit_test(guest_error_and_limit_checks_pass),
		cmocka_unit_test(without_address_the_guest_has_no_network),
		cmocka_unit_test(abi_v1_guest_runs_unchanged),
		cmocka_unit_test(flooding_guest_is_bounded),
		cmocka_unit_test(idle_guests_cost_no_host_cpu),
		cmocka_unit_test(restored_guest_listens_again_and_its_connections_reset),
		cmocka_unit_test(migrated_guest_listens_at_the_target),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
