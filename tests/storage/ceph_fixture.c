/* See ceph_fixture.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ceph_fixture.h"

#ifndef PVHA_SOURCE_DIR_DEFAULT
#define PVHA_SOURCE_DIR_DEFAULT "."
#endif

double ceph_fixture_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *script_path(char *buf, size_t len)
{
	const char *src = getenv("PVHA_SOURCE_DIR");
	snprintf(buf, len, "%s/deploy/ceph/pvha-ceph", src && src[0] ? src : PVHA_SOURCE_DIR_DEFAULT);
	return buf;
}

static bool on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char dir[512], full[700];
	if (!path)
		path = "/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		size_t n = strcspn(path, ":");
		snprintf(dir, sizeof(dir), "%.*s", (int)n, path);
		snprintf(full, sizeof(full), "%s/%s", dir[0] ? dir : ".", prog);
		if (access(full, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

const char *ceph_fixture_skip_reason(void)
{
	static char why[600];
	char script[512];
	if (geteuid() != 0)
		return "needs root (Ceph daemons, ports, /proc of the daemons)";
	if (!on_path("ceph-mon") || !on_path("ceph-osd") || !on_path("ceph"))
		return "needs ceph-mon, ceph-osd and ceph-common (apt-get install ceph-mon ceph-osd ceph-common)";
	if (access(script_path(script, sizeof(script)), X_OK) != 0) {
		snprintf(why, sizeof(why), "%s is missing (set PVHA_SOURCE_DIR)", script);
		return why;
	}
	return NULL;
}

/* The reaper: a shell that waits for EOF on its stdin (our pipe; the test
 * program holds the only write end), then stops the cluster and cleans up.
 * It runs in a session of its own, so a kill of the test's process group
 * does not reach it. */
static int start_reaper(struct ceph_fixture *f)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		setsid();
		dup2(p[0], 0);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		const char *keep = getenv("PVHA_KEEP_CEPH");
		execl("/bin/sh", "sh", "-c",
		      "read x; \"$1\" down \"$2\" --timeout 20 >/dev/null 2>&1; "
		      "[ \"$4\" = 1 ] || rm -rf \"$3\"",
		      "reaper", f->script, f->dir, f->top, keep && !strcmp(keep, "1") ? "1" : "0",
		      (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	f->reaper_fd = p[1];
	f->reaper = pid;
	return 0;
}

static void print_tail(const char *path, int lines)
{
	char cmd[800];
	snprintf(cmd, sizeof(cmd), "tail -n %d '%s' 2>/dev/null | sed 's/^/    /' >&2", lines, path);
	if (system(cmd) < 0)
		perror("system");
}

/* Runs pvha-ceph with args, waiting at most timeout_s. Returns its exit status. */
static int run_script(const struct ceph_fixture *f, char *const argv[], int timeout_s)
{
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(f->script, argv);
		_exit(127);
	}
	double deadline = ceph_fixture_now_ms() + timeout_s * 1000.0;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (ceph_fixture_now_ms() > deadline) {
			fprintf(stderr, "ceph_fixture: %s %s did not finish in %d s; killing it\n", f->script,
				argv[1], timeout_s);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(20000);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int ceph_fixture_up(struct ceph_fixture *f, int osds)
{
	const char *tmp = getenv("TMPDIR");
	char osds_s[8];

	memset(f, 0, sizeof(*f));
	f->reaper_fd = -1;
	script_path(f->script, sizeof(f->script));
	snprintf(f->top, sizeof(f->top), "%s/pvha-ceph-test.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(f->top)) {
		fprintf(stderr, "ceph_fixture: mkdtemp %s: %s\n", f->top, strerror(errno));
		return -1;
	}
	snprintf(f->dir, sizeof(f->dir), "%s/ceph", f->top);
	snprintf(f->conf, sizeof(f->conf), "%s/ceph.conf", f->dir);
	if (start_reaper(f) < 0) {
		fprintf(stderr, "ceph_fixture: cannot start the reaper: %s\n", strerror(errno));
		return -1;
	}
	snprintf(osds_s, sizeof(osds_s), "%d", osds);

	/* An address of our own; another one when it is taken. */
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int attempt = 0; attempt < 4; attempt++) {
		unsigned x = (seed + (unsigned)attempt * 7919u) % 60000u;
		snprintf(f->addr, sizeof(f->addr), "127.%u.%u.%u", 100 + x / 2500, (x / 10) % 250 + 1,
			 x % 10 + 1);
		char *argv[] = {f->script, "up", f->dir, "--addr", f->addr, "--osds", osds_s,
				"--timeout", "60", NULL};
		double t0 = ceph_fixture_now_ms();
		int rc = run_script(f, argv, 90);
		if (rc == 0) {
			fprintf(stderr, "ceph_fixture: cluster at %s in %s (%.1f s)\n", f->addr, f->dir,
				(ceph_fixture_now_ms() - t0) / 1000.0);
			return 0;
		}
		char mon_log[400];
		snprintf(mon_log, sizeof(mon_log), "%s/log/mon.a.log", f->dir);
		if (access(mon_log, R_OK) == 0 || attempt == 3) {
			/* it got as far as starting daemons: a real failure */
			fprintf(stderr, "ceph_fixture: pvha-ceph up failed (exit %d); the mon's log ends:\n", rc);
			print_tail(mon_log, 15);
			char osd_log[400];
			snprintf(osd_log, sizeof(osd_log), "%s/log/osd.0.log", f->dir);
			fprintf(stderr, "ceph_fixture: osd.0's log ends:\n");
			print_tail(osd_log, 15);
			return -1;
		}
		/* refused before starting anything (address in use): next address */
		char rm[700];
		snprintf(rm, sizeof(rm), "rm -rf '%s'", f->dir);
		if (system(rm) != 0)
			return -1;
	}
	return -1;
}

void ceph_fixture_down(struct ceph_fixture *f)
{
	if (f->reaper_fd < 0)
		return;
	close(f->reaper_fd); /* the reaper stops the cluster and cleans up */
	f->reaper_fd = -1;
	int status;
	waitpid(f->reaper, &status, 0);
}

pid_t ceph_fixture_pid(const struct ceph_fixture *f, const char *daemon)
{
	char path[400];
	long pid = -1;
	snprintf(path, sizeof(path), "%s/run/%s.pid", f->dir, daemon);
	FILE *fp = fopen(path, "r");
	if (!fp)
		return -1;
	if (fscanf(fp, "%ld", &pid) != 1)
		pid = -1;
	fclose(fp);
	return (pid_t)pid;
}

struct pvstore *ceph_fixture_connect(const struct ceph_fixture *f, unsigned mount_timeout_s,
				     unsigned osd_op_timeout_s)
{
	struct pvstore_config cfg = {
		.conf_path = f->conf,
		.mount_timeout_s = mount_timeout_s,
		.osd_op_timeout_s = osd_op_timeout_s,
	};
	struct pvstore *st = NULL;
	int r = pvstore_connect(&cfg, &st);
	if (r < 0) {
		fprintf(stderr, "ceph_fixture_connect: %d %s\n", r, pvstore_errmsg());
		abort();
	}
	return st;
}
