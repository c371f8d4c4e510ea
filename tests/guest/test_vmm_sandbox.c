/*
 * A running pvha-vmm is sandboxed (node/vmm/sandbox.h): seen from outside,
 * in /proc/PID/status, it runs under a seccomp filter (Seccomp: 2) with
 * no_new_privs, no capabilities and, started by root, as the user
 * pvha-vmm; it holds none of the fds it inherited; its privileged helper
 * (pvha-vmm-privsep) holds CAP_NET_ADMIN only, and so does its nft runner
 * (pvha-vmm-nft, ambient, unfiltered, no_new_privs); the guest runs and the
 * control socket answers under all of it, its peer credentials still
 * those an agent's adoption check wants. --sandbox off is the one way out.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "vmmctl.h"

#define VMM th_build("bin/pvha-vmm")
#define GUEST(n) th_build("guests/" n ".elf")
#define INHERITED_FD 7

extern char **environ;

/* An empty file at path: what the VMM must not keep open. */
static void make_marker(const char *path)
{
	FILE *m = fopen(path, "w");
	assert_non_null(m);
	fclose(m);
}

/* Starts the counter guest with a control socket, and a file on fd 7 as a
 * careless parent would leave it. */
static pid_t start_vmm(const char *sock, const char *marker, const char *sandbox, const char *err_path)
{
	char spec[600];
	snprintf(spec, sizeof(spec), "file:%s,size=1M", th_tmp(sandbox ? "off.img" : "on.img"));
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("counter"), "--mem", "8M", "--backend",
			 "tcg", "--disk", spec, "--cmdline", "interval=50", "--control", (char *)sock,
			 "--console", (char *)th_tmp(sandbox ? "off.console" : "on.console"),
			 sandbox ? (char *)"--sandbox" : NULL, (char *)sandbox, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_addopen(&fa, INHERITED_FD, marker, O_RDONLY, 0);
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	assert_true(th_wait_for_socket(sock, 30));
	return pid;
}

/* The value after "key:" in /proc/pid/status, as text. */
static const char *status_of(pid_t pid, const char *key)
{
	static char line[256];
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		size_t k = strlen(key);
		if (strncmp(line, key, k) == 0 && line[k] == ':') {
			fclose(f);
			char *v = line + k + 1;
			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = '\0';
			return v;
		}
	}
	fclose(f);
	fail_msg("%s: no %s", path, key);
	return NULL;
}

static unsigned long long hex_of(pid_t pid, const char *key)
{
	return strtoull(status_of(pid, key), NULL, 16);
}

/* True when one of pid's fds is the file at path. */
static bool holds_file(pid_t pid, const char *path)
{
	char dir[64], link[600], target[600];
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	bool found = false;
	while ((e = readdir(d))) {
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			found |= strcmp(target, path) == 0;
		}
	}
	closedir(d);
	return found;
}

/* The VMM's children (its helper). */
static int children_of(pid_t pid, pid_t *out, int max)
{
	char path[80], buf[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	int n = 0;
	if (fgets(buf, sizeof(buf), f)) {
		for (char *tok = strtok(buf, " \n"); tok && n < max; tok = strtok(NULL, " \n"))
			out[n++] = (pid_t)atoi(tok);
	}
	fclose(f);
	return n;
}

static void stop_vmm(const char *sock, pid_t pid)
{
	int fd, st;
	Pvha__VmmReply *r = NULL;
	/* a request served under the filter, then a clean end */
	assert_int_equal(vmmctl_connect(sock, 2000, &fd), 0);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &r), 0);
	assert_true(strcmp(r->status->state, "running") == 0 || strcmp(r->status->state, "sleeping") == 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	assert_int_equal(vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STOP, NULL, &r), 0);
	pvha__vmm_reply__free_unpacked(r, NULL);
	close(fd);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 5);
}

/* Whether pid is gone (no process, not even a zombie) within timeout_s. */
static bool gone_within(pid_t pid, int timeout_s)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	for (int i = 0; i < timeout_s * 100; i++) {
		if (access(path, F_OK) != 0)
			return true;
		struct timespec t = { 0, 10000000L };
		nanosleep(&t, NULL);
	}
	return false;
}

static void running_vmm_is_sandboxed(void **state)
{
	(void)state;
	const char *sock = th_tmp("on.sock"), *marker = th_tmp("marker"), *err = th_tmp("on.err");
	make_marker(marker);
	pid_t pid = start_vmm(sock, marker, NULL, err);
	assert_true(th_wait_for_text(th_tmp("on.console"), "flushed seq 1", 30));

	assert_string_equal(status_of(pid, "Seccomp"), "2");
	assert_string_equal(status_of(pid, "NoNewPrivs"), "1");
	assert_int_equal(hex_of(pid, "CapEff"), 0);
	assert_int_equal(hex_of(pid, "CapPrm"), 0);
	unsigned uid = (unsigned)strtoul(status_of(pid, "Uid"), NULL, 10);
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("pvha-vmm");
		assert_non_null(pw); /* deploy/install-deps makes it */
		assert_int_equal(uid, pw->pw_uid);
		assert_true(uid != 0);
	} else {
		assert_int_equal(uid, geteuid());
	}
	assert_false(holds_file(pid, marker)); /* what it inherited is closed */

	/* two children: the helper (TCP_REPAIR) and the nft runner */
	pid_t kids[4], helper = 0, nft = 0;
	assert_int_equal(children_of(pid, kids, 4), 2);
	for (int i = 0; i < 2; i++) {
		char path[64], cmd[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)kids[i]);
		FILE *f = fopen(path, "re");
		assert_non_null(f);
		assert_non_null(fgets(cmd, sizeof(cmd), f));
		fclose(f);
		if (strcmp(cmd, "pvha-vmm-privsep") == 0)
			helper = kids[i];
		else if (strcmp(cmd, "pvha-vmm-nft") == 0)
			nft = kids[i];
	}
	assert_true(helper > 0);
	assert_true(nft > 0);
	uint64_t net_admin = geteuid() == 0 ? 1ull << 12 : 0; /* CAP_NET_ADMIN */
	assert_string_equal(status_of(helper, "Seccomp"), "2");
	assert_string_equal(status_of(helper, "NoNewPrivs"), "1");
	assert_int_equal(hex_of(helper, "CapEff"), net_admin);
	if (geteuid() == 0) /* the helper is not dumpable: only root sees its fds */
		assert_false(holds_file(helper, marker));
	/* the nft runner: no filter (nft runs under it), but no_new_privs,
	 * the sandbox's user, and CAP_NET_ADMIN alone, ambient so that nft
	 * keeps it, with nothing else left in its bounding set */
	assert_string_equal(status_of(nft, "Seccomp"), "0");
	assert_string_equal(status_of(nft, "NoNewPrivs"), "1");
	assert_int_equal(strtoul(status_of(nft, "Uid"), NULL, 10), uid);
	assert_int_equal(hex_of(nft, "CapEff"), net_admin);
	assert_int_equal(hex_of(nft, "CapPrm"), net_admin);
	assert_int_equal(hex_of(nft, "CapAmb"), net_admin);
	if (geteuid() == 0) {
		assert_int_equal(hex_of(nft, "CapBnd"), net_admin);
		assert_false(holds_file(nft, marker));
	}

	/* what an agent's adoption checks (SO_PEERCRED) still holds: the
	 * kernel keeps who called listen(), the VMM before it dropped */
	int fd;
	pid_t peer = 0;
	char why[200];
	assert_int_equal(vmmctl_connect(sock, 2000, &fd), 0);
	assert_int_equal(vmmctl_peer_check(fd, geteuid(), pid, &peer, why, sizeof(why)), 0);
	assert_int_equal(peer, pid);
	close(fd);

	stop_vmm(sock, pid);
	/* the helper and the runner went with it (reaped by whoever inherited them) */
	assert_true(gone_within(helper, 10));
	assert_true(gone_within(nft, 10));
}

static void sandbox_off_runs_unconfined(void **state)
{
	(void)state;
	const char *sock = th_tmp("off.sock"), *marker = th_tmp("marker2"), *err = th_tmp("off.err");
	make_marker(marker);
	pid_t pid = start_vmm(sock, marker, "off", err);
	assert_string_equal(status_of(pid, "Seccomp"), "0");
	assert_int_equal(strtoul(status_of(pid, "Uid"), NULL, 10), geteuid());
	pid_t kids[4];
	assert_int_equal(children_of(pid, kids, 4), 0); /* no helper: in-process */
	stop_vmm(sock, pid);
}

static void bad_sandbox_option_is_refused(void **state)
{
	(void)state;
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "8M", "--sandbox",
			 "maybe", NULL };
	assert_int_equal(th_run(&p, 30, argv), 2);
	assert_true(th_file_contains(p.err_path, "--sandbox maybe: want on or off"));
}

/* Started by root, the VMM saves as pvha-vmm: a --save directory that user
 * cannot write is refused at start, before the guest runs. */
static void save_dir_the_sandbox_cannot_write_is_refused(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/private", th_tmpdir());
	assert_int_equal(mkdir(dir, 0700), 0);
	char save[400];
	snprintf(save, sizeof(save), "%s/g.state", dir);
	struct proc p;
	char *argv[] = { (char *)VMM, "--image", (char *)GUEST("hello"), "--mem", "8M", "--save", save,
			 NULL };
	assert_int_equal(th_run(&p, 30, argv), 2);
	assert_true(th_file_contains(p.err_path, "not writable by pvha-vmm"));
	assert_false(th_file_contains(p.out_path, "hello from pvha guest"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(running_vmm_is_sandboxed),
		cmocka_unit_test(sandbox_off_runs_unconfined),
		cmocka_unit_test(bad_sandbox_option_is_refused),
		cmocka_unit_test(save_dir_the_sandbox_cannot_write_is_refused),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	th_cleanup();
	return rc;
}
