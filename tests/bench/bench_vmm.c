/*
 * pvha-vmm figures: guest start (process start -> the guest's first hypercall,
 * a console write, seen on the pipe), hypercall round trip (measured by the
 * hcbench guest), and resident memory beyond guest RAM (from /proc/PID/smaps,
 * minus the guest RAM mapping's own resident pages). Medians of RUNS runs.
 * And an idle service: the netecho guest (ABI v2 sockets) listening on
 * 127.0.0.1 with IDLE_CLIENTS connected clients that said one thing each and
 * then nothing: its VMM's CPU use over IDLE_S seconds (utime + stime from
 * /proc/PID/stat; the guest waits in net_poll, so this should be ~0) and its
 * private memory beyond guest RAM, sockets included.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

#define RUNS 21
#define RSS_RUNS 5
#define GUEST_MEM (64ull << 20)
#define IDLE_CLIENTS 16
#define IDLE_S 3
#define IDLE_RUNS 3

extern char **environ;

static pid_t spawn_piped(char *const argv[], int *out_fd)
{
	int p[2];
	pid_t pid;
	posix_spawn_file_actions_t fa;
	if (pipe(p) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	int err = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (err) {
		close(p[0]);
		return -1;
	}
	*out_fd = p[0];
	return pid;
}

static int start_ms(double *out)
{
	char *argv[] = { (char *)bench_path("bin/pvha-vmm"), "--backend", "tcg", "--image",
			 (char *)bench_path("guests/hello.elf"), "--mem", "64M", NULL };
	int fd;
	char c;
	uint64_t t0 = bench_now_ns();
	pid_t pid = spawn_piped(argv, &fd);
	if (pid < 0)
		return -1;
	ssize_t n = read(fd, &c, 1);
	uint64_t t1 = bench_now_ns();
	char drain[4096];
	while (read(fd, drain, sizeof(drain)) > 0)
		;
	close(fd);
	int st;
	waitpid(pid, &st, 0);
	if (n != 1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	*out = (double)(t1 - t0) / 1e6;
	return 0;
}

static int hypercall_ns(double *out)
{
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "%s --backend tcg --image %s --mem 16M 2>/dev/null",
		 bench_path("bin/pvha-vmm"), bench_path("guests/hcbench.elf"));
	FILE *p = popen(cmd, "r");
	char line[256];
	int ok = -1;
	while (p && fgets(line, sizeof(line), p))
		if (sscanf(line, "figure hypercall_round_trip_ns %lf", out) == 1)
			ok = 0;
	if (p)
		pclose(p);
	return ok;
}

/* Sums Rss over /proc/pid/smaps, separately that of the guest RAM mapping, and
 * the private dirty memory outside guest RAM: what one more VMM costs (library
 * text is shared by every VMM on the host; it counts in Rss but not here). */
static int rss_kib(pid_t pid, double *total, double *ram, double *priv)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	bool in_ram = false;
	*total = *ram = *priv = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a, b, kb;
		if (sscanf(line, "%llx-%llx ", &a, &b) == 2 && strchr(line, ' ') == line + strcspn(line, " ")) {
			in_ram = b - a == GUEST_MEM;
		} else if (sscanf(line, "Rss: %llu kB", &kb) == 1) {
			*total += (double)kb;
			if (in_ram)
				*ram += (double)kb;
		} else if (sscanf(line, "Private_Dirty: %llu kB", &kb) == 1 && !in_ram) {
			*priv += (double)kb;
		}
	}
	fclose(f);
	return 0;
}

static int rss_overhead(double *total_out, double *beyond_out, double *priv_out)
{
	char *argv[] = { (char *)bench_path("bin/pvha-vmm"), "--backend", "tcg", "--image",
			 (char *)bench_path("guests/counter.elf"), "--mem", "64M", "--disk",
			 "file:/tmp/pvha-bench-rss.img,size=1M", "--cmdline", "interval=1000", NULL };
	unlink("/tmp/pvha-bench-rss.img");
	int fd;
	pid_t pid = spawn_piped(argv, &fd);
	if (pid < 0)
		return -1;
	/* Wait for the first flushed record: the guest is up and now sleeps. */
	char buf[4096];
	size_t len = 0;
	int ok = -1;
	while (len < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "flushed seq 1\n")) {
			double total, ram, priv;
			if (rss_kib(pid, &total, &ram, &priv) == 0) {
				*priv_out = priv;
				*total_out = total;
				*beyond_out = total - ram;
				ok = 0;
			}
			break;
		}
	}
	kill(pid, SIGTERM);
	close(fd);
	waitpid(pid, NULL, 0);
	unlink("/tmp/pvha-bench-rss.img");
	return ok;
}

static long cpu_ticks(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2)
		return -1;
	return ut + st;
}

static int idle_service(double *cpu_pct, double *priv_out)
{
	char *argv[] = { (char *)bench_path("bin/pvha-vmm"), "--backend", "tcg", "--image",
			 (char *)bench_path("guests/netecho.elf"), "--mem", "64M", "--address",
			 "127.0.0.1", "--cmdline", "mode=echo", NULL };
	int fd, port = 0, ok = -1;
	int clients[IDLE_CLIENTS];
	int nc = 0;
	pid_t pid = spawn_piped(argv, &fd);
	if (pid < 0)
		return -1;
	char buf[4096];
	size_t len = 0;
	while (len < sizeof(buf) - 1 && !port) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			goto out;
		len += (size_t)n;
		buf[len] = '\0';
		char *p = strstr(buf, "listening on 127.0.0.1:");
		if (p && strchr(p, '\n'))
			port = atoi(p + strlen("listening on 127.0.0.1:"));
	}
	for (; nc < IDLE_CLIENTS; nc++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		char c = 'x';
		clients[nc] = socket(AF_INET, SOCK_STREAM, 0);
		if (clients[nc] < 0 || connect(clients[nc], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    write(clients[nc], &c, 1) != 1 || read(clients[nc], &c, 1) != 1)
			goto out;
	}
	usleep(300 * 1000); /* the last echo's console lines are written */
	long t0 = cpu_ticks(pid);
	uint64_t w0 = bench_now_ns();
	sleep(IDLE_S);
	long t1 = cpu_ticks(pid);
	double wall = (double)(bench_now_ns() - w0) / 1e9;
	double total, ram, priv;
	if (t0 < 0 || t1 < 0 || rss_kib(pid, &total, &ram, &priv))
		goto out;
	*cpu_pct = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / wall * 100.0;
	*priv_out = priv;
	ok = 0;
out:
	for (int i = 0; i < nc; i++)
		close(clients[i]);
	kill(pid, SIGTERM);
	close(fd);
	waitpid(pid, NULL, 0);
	return ok;
}

int main(void)
{
	double start[RUNS], hc[5], tot[RSS_RUNS], beyond[RSS_RUNS], priv[RSS_RUNS];
	for (int i = 0; i < RUNS; i++) {
		if (start_ms(&start[i])) {
			fprintf(stderr, "bench_vmm: pvha-vmm with hello.elf failed (is %s built?)\n",
				bench_path("bin/pvha-vmm"));
			return 1;
		}
	}
	bench_figure("guest_start_to_first_hypercall", bench_median(start, RUNS), "ms");
	for (int i = 0; i < 5; i++)
		if (hypercall_ns(&hc[i])) {
			fprintf(stderr, "bench_vmm: hcbench guest failed\n");
			return 1;
		}
	bench_figure("hypercall_round_trip_tcg", bench_median(hc, 5), "ns");
	for (int i = 0; i < RSS_RUNS; i++)
		if (rss_overhead(&tot[i], &beyond[i], &priv[i])) {
			fprintf(stderr, "bench_vmm: counter guest for the RSS figure failed\n");
			return 1;
		}
	bench_figure("vmm_rss_total", bench_median(tot, RSS_RUNS) / 1024, "MiB");
	bench_figure("vmm_rss_beyond_guest_ram", bench_median(beyond, RSS_RUNS) / 1024, "MiB");
	bench_figure("vmm_private_dirty_beyond_guest_ram", bench_median(priv, RSS_RUNS) / 1024, "MiB");
	double cpu[IDLE_RUNS], npriv[IDLE_RUNS];
	for (int i = 0; i < IDLE_RUNS; i++)
		if (idle_service(&cpu[i], &npriv[i])) {
			fprintf(stderr, "bench_vmm: the idle netecho service failed\n");
			return 1;
		}
	bench_figure("idle_service_guest_cpu_percent", bench_median(cpu, IDLE_RUNS), "%");
	bench_figure("vmm_net_private_dirty_beyond_guest_ram", bench_median(npriv, IDLE_RUNS) / 1024,
		     "MiB");
	return 0;
}
