/* See harness.h. */
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

static char tmpdir[128];

const char *th_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof(tmpdir), "/tmp/pvha-test-XXXXXX");
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			abort();
		}
		/* a VMM started by root runs as its sandbox's user (pvha-vmm)
		 * and writes its --save files here: a sticky, shared dir */
		chmod(tmpdir, 01777);
	}
	return tmpdir;
}

void th_cleanup(void)
{
	if (tmpdir[0]) {
		char cmd[200];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: could not remove %s\n", tmpdir);
		tmpdir[0] = '\0';
	}
}

static char *rotate(void)
{
	static char bufs[256][512];
	static int next;
	return bufs[next++ % 256];
}

const char *th_build(const char *rel)
{
	const char *b = getenv("PVHA_BUILD_DIR");
	char *p = rotate();
	snprintf(p, 512, "%s/%s", b ? b : "build", rel);
	return p;
}

const char *th_tmp(const char *name)
{
	char *p = rotate();
	snprintf(p, 512, "%s/%s", th_tmpdir(), name);
	return p;
}

void th_spawn(struct proc *p, char *const argv[])
{
	static int seq;
	posix_spawn_file_actions_t fa;
	memset(p, 0, sizeof(*p));
	seq++;
	snprintf(p->out_path, sizeof(p->out_path), "%s/proc%d.out", th_tmpdir(), seq);
	snprintf(p->err_path, sizeof(p->err_path), "%s/proc%d.err", th_tmpdir(), seq);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int err = posix_spawn(&p->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		fprintf(stderr, "harness: spawn %s: %s\n", argv[0], strerror(err));
		abort();
	}
}

int th_wait(struct proc *p, int timeout_s)
{
	struct timespec start, now;
	int st;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);
		if (r == p->pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s) {
			fprintf(stderr, "harness: pid %d ran past %d s, killing it\n", (int)p->pid, timeout_s);
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
			break;
		}
		usleep(2000);
	}
	p->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return p->status;
}

int th_run(struct proc *p, int timeout_s, char *const argv[])
{
	th_spawn(p, argv);
	return th_wait(p, timeout_s);
}

char *th_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = '\0';
	fclose(f);
	return buf;
}

bool th_wait_for_text(const char *path, const char *needle, int timeout_s)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		char *s = th_slurp(path);
		bool found = strstr(s, needle) != NULL;
		free(s);
		if (found)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s)
			return false;
		usleep(5000);
	}
}

bool th_wait_for_socket(const char *path, int timeout_s)
{
	struct timespec start, now;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= timeout_s)
			return false;
		usleep(5000);
	}
}

bool th_file_contains(const char *path, const char *needle)
{
	char *s = th_slurp(path);
	bool found = strstr(s, needle) != NULL;
	if (!found)
		fprintf(stderr, "expected \"%s\" in %s, which holds:\n%s\n", needle, path, s);
	free(s);
	return found;
}

int th_count(const char *hay, const char *needle)
{
	int n = 0;
	size_t l = strlen(needle);
	for (const char *p = strstr(hay, needle); p; p = strstr(p + l, needle))
		n++;
	return n;
}

int th_last_flushed(const char *path)
{
	static const char tag[] = "counter: flushed seq ";
	char *s = th_slurp(path);
	int last = 0;
	for (char *p = strstr(s, tag); p; p = strstr(p + 1, tag))
		last = atoi(p + strlen(tag));
	free(s);
	return last;
}

double th_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void th_pause_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000l };
	nanosleep(&ts, NULL);
}

/* Whether `nft list set ip pvha_freeze conns` shows an entry for the peer
 * port (node/lib/netfreeze.h's set). */
bool th_nft_holds(uint16_t peer_port)
{
	FILE *f = popen("nft list set ip pvha_freeze conns 2>/dev/null", "r");
	if (!f)
		return false;
	char line[512], want[32];
	snprintf(want, sizeof(want), " . %u . ", peer_port);
	bool found = false;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, want))
			found = true;
	pclose(f);
	return found;
}

const unsigned char th_migrate_key[TH_MIGRATE_KEY_LEN] = "pvha test migration key 32 bytes";

const char *th_migrate_key_file(void)
{
	const char *path = th_tmp("th-migrate.key");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, th_migrate_key, sizeof(th_migrate_key)) != (ssize_t)sizeof(th_migrate_key)) {
		fprintf(stderr, "th_migrate_key_file: %s: %s\n", path, strerror(errno));
		abort();
	}
	close(fd);
	return path;
}

/* Dies with the reason: a test's setup that cannot go on. */
static void die_errno(const char *what)
{
	fprintf(stderr, "th_tcp_pair: %s: %s\n", what, strerror(errno));
	abort();
}

void th_tcp_pair(int *srv, int *cli)
{
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	socklen_t al = sizeof(a);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &al) < 0)
		die_errno("listening");
	*cli = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int small = 16 * 1024; /* a small window, so the server's queue fills */
	setsockopt(*cli, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	if (*cli < 0 || connect(*cli, (struct sockaddr *)&a, sizeof(a)) < 0)
		die_errno("connect");
	*srv = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (*srv < 0)
		die_errno("accept");
	int buf = 64 * 1024; /* as the VMM's sockets (PV_NET_SOCKBUF) */
	setsockopt(*srv, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	close(l);
}
