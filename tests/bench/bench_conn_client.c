/*
 * A Redis client for the service benchmarks that keeps ONE connection and
 * timestamps every reply, so that a pause the service takes (a live
 * migration) is measured to the microsecond rather than to the cost of
 * starting redis-cli for each PING.
 *
 *   bench_conn_client HOST PORT [SECONDS]
 *
 * Sends PING, waits for +PONG, sends the next, for SECONDS (default: until
 * SIGTERM or SIGINT). On stdout, flushed as they happen:
 *   gap T_MS GAP_MS      a reply that came GAP_MS after the one before it
 *                        (only gaps over 5 ms), T_MS its wall-clock time
 *   err T_MS WHAT        the connection failed (reset, closed, a wrong
 *                        reply, no reply in 10 s); it connects again
 *   end REPLIES ERRORS MAX_GAP_MS
 * Exit 0, or 2 for bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define GAP_MIN_MS 5.0
#define REPLY_TIMEOUT_MS 10000

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static double mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long long wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One PING and its +PONG. Returns NULL or what went wrong. */
static const char *ping(int fd)
{
	static const char req[] = "*1\r\n$4\r\nPING\r\n";
	static char what[96];
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		snprintf(what, sizeof(what), "send: %s", strerror(errno));
		return what;
	}
	char buf[8];
	size_t got = 0;
	while (got < 7) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, REPLY_TIMEOUT_MS);
		if (r < 0 && errno == EINTR) {
			if (stop_flag)
				return "stopped";
			continue;
		}
		if (r == 0)
			return "no reply in 10 s";
		ssize_t n = recv(fd, buf + got, 7 - got, 0);
		if (n == 0)
			return "closed by the server";
		if (n < 0) {
			snprintf(what, sizeof(what), "recv: %s", strerror(errno));
			return what;
		}
		got += (size_t)n;
	}
	return memcmp(buf, "+PONG\r\n", 7) == 0 ? NULL : "a reply other than +PONG";
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: bench_conn_client HOST PORT [SECONDS]\n");
		return 2;
	}
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1 || sa.sin_port == 0) {
		fprintf(stderr, "bench_conn_client: HOST must be an IPv4 address, PORT 1..65535\n");
		return 2;
	}
	double seconds = argc == 4 ? atof(argv[3]) : 0;
	struct sigaction act = { .sa_handler = on_signal };
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);

	double start = mono_ms(), last = -1, max_gap = 0;
	long replies = 0, errors = 0;
	int fd = -1;
	while (!stop_flag && (seconds <= 0 || mono_ms() - start < seconds * 1e3)) {
		if (fd < 0) {
			fd = dial(&sa);
			if (fd < 0) {
				usleep(10000);
				continue;
			}
		}
		const char *bad = ping(fd);
		if (bad) {
			if (stop_flag)
				break;
			printf("err %lld %s\n", wall_ms(), bad);
			errors++;
			close(fd);
			fd = -1;
			last = -1; /* a reconnect is not a gap of this connection */
			continue;
		}
		double now = mono_ms();
		if (last >= 0 && now - last > GAP_MIN_MS)
			printf("gap %lld %.3f\n", wall_ms(), now - last);
		if (last >= 0 && now - last > max_gap)
			max_gap = now - last;
		last = now;
		replies++;
	}
	if (fd >= 0)
		close(fd);
	printf("end %ld %ld %.3f\n", replies, errors, max_gap);
	return 0;
}
