/* pvha-vmm's sandbox: see sandbox.h. */
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sockios.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_ASAN 1
#endif
#endif
#ifndef SANDBOX_ASAN
#define SANDBOX_ASAN 0
#endif

/* ---- the allow-lists -------------------------------------------------------- */

/* Both processes: memory, threads' bookkeeping, time, exit. */
static const char *const common_allow[] = {
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise",
	"futex", "set_robust_list", "get_robust_list", "rseq", "set_tid_address",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
	"getresgid", "getgroups", "capget",
	"read", "write", "readv", "writev", "close", "fcntl", "fstat", "newfstatat", "lseek",
	"pread64", "pwrite64", "ftruncate", "getrandom", "sched_yield", "sched_getaffinity",
	"exit", "exit_group",
};

/* The VMM: a guest on Unicorn or KVM, its console, its disk (librados: its
 * threads, sockets and epoll), its sockets (ABI v2), a migration, a save. */
static const char *const vmm_allow[] = {
	/* files: console, --save (tmp file + rename), /proc reads */
	"openat", "open", "stat", "lstat", "statx", "fstatfs", "statfs", "access", "faccessat",
	"faccessat2", "readlink", "readlinkat", "getdents64", "fsync", "fdatasync", "fallocate",
	"rename", "renameat", "renameat2", "unlink", "unlinkat", "umask", "getcwd",
	"dup", "dup2", "dup3", "pipe", "pipe2", "preadv", "pwritev", "preadv2", "pwritev2",
	"close_range", "copy_file_range", "msync", "mincore", "membarrier",
	/* waiting */
	"poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
	"epoll_wait", "epoll_pwait", "eventfd", "eventfd2", "signalfd4", "rt_sigtimedwait",
	"timerfd_create", "timerfd_settime", "timerfd_gettime",
	"timer_create", "timer_settime", "timer_gettime", "timer_delete", "timer_getoverrun",
	/* sockets (socket() itself is filtered by family below) */
	"connect", "bind", "listen", "accept", "accept4", "getsockname", "getpeername",
	"getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
	"recvmmsg", "shutdown",
	/* the rest of a threaded process */
	"sched_getparam", "sched_getscheduler", "getpriority", "uname", "sysinfo", "getrusage",
	"times", "wait4", "ioprio_get",
};

/* The helper: the channel, and what TCP_REPAIR needs (sockets, their
 * options and queues, a memfd for a large blob). */
static const char *const helper_allow[] = {
	"recvmsg", "sendmsg", "connect", "bind", "listen", "getsockopt", "setsockopt",
	"getsockname", "getpeername", "sendto", "recvfrom", "shutdown", "memfd_create",
	"poll", "ppoll",
};

/* Under ASan: its reports (/proc/self/maps, the binary's path) and
 * LeakSanitizer's exit check (a tracer that ptraces the process's threads). */
static const char *const asan_allow[] = {
	"openat", "open", "readlink", "readlinkat", "getdents", "getdents64", "ptrace", "wait4", "prctl",
	"process_vm_readv", "pipe2", "dup2", "dup3", "sched_getaffinity", "kill", "tgkill",
	"prlimit64",
};

static int allow_list(scmp_filter_ctx ctx, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(names[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		int err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (err)
			return err;
	}
	return 0;
}

/* One rule on one argument: action for syscall nr when (argument arg op
 * a) holds; for SCMP_CMP_MASKED_EQ, when (argument & a) == b. (libseccomp's
 * SCMP_A* macros leave a field to the compiler's zeroing, which clang's
 * -Wmissing-field-initializers refuses.) */
static int rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned arg, enum scmp_compare op,
		scmp_datum_t a, scmp_datum_t b)
{
	struct scmp_arg_cmp cmp = { .arg = arg, .op = op, .datum_a = a, .datum_b = b };
	return seccomp_rule_add_array(ctx, action, nr, 1, &cmp);
}

/* Allows syscall nr when its argument arg is one of vals. */
static int allow_when(scmp_filter_ctx ctx, int nr, unsigned arg, const scmp_datum_t *vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int err = rule(ctx, SCMP_ACT_ALLOW, nr, arg, SCMP_CMP_EQ, vals[i], 0);
		if (err)
			return err;
	}
	return 0;
}

/* socket(): IPv4, IPv6 and unix only (no netlink, no packet sockets). */
static int allow_socket(scmp_filter_ctx ctx)
{
	static const scmp_datum_t families[] = { AF_INET, AF_INET6, AF_UNIX };
	return allow_when(ctx, SCMP_SYS(socket), 0, families, sizeof(families) / sizeof(families[0]));
}

/* Threads only: clone with CLONE_THREAD; clone3 (whose flags a filter
 * cannot see) answers ENOSYS, and glibc falls back to clone. A fork is
 * refused (EPERM), not killed: a library that tries one sees an error. */
static int allow_threads(scmp_filter_ctx ctx)
{
	int err = rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 0, SCMP_CMP_MASKED_EQ, CLONE_THREAD,
		       CLONE_THREAD);
	/* not a thread: a fork, or under ASan LeakSanitizer's tracer */
	if (!err)
		err = rule(ctx, SANDBOX_ASAN ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 0,
			   SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(fork), 0);
	if (!err)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(vfork), 0);
	return err;
}

/* Signals to this process only (a thread's own, or raise()). */
static int allow_self_signals(scmp_filter_ctx ctx)
{
	scmp_datum_t me = (scmp_datum_t)getpid();
	const scmp_datum_t self[] = { me }, self_or_0[] = { me, 0 };
	int err = allow_when(ctx, SCMP_SYS(tgkill), 0, self, 1);
	if (!err)
		err = allow_when(ctx, SCMP_SYS(kill), 0, self, 1);
	/* prlimit64 on ourselves (glibc's getrlimit) */
	if (!err)
		err = allow_when(ctx, SCMP_SYS(prlimit64), 0, self_or_0, 2);
	return err;
}

/* prctl: naming threads and reading, nothing that changes the process's
 * security (PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_CAP_AMBIENT...). */
static int allow_prctl(scmp_filter_ctx ctx)
{
	static const scmp_datum_t ops[] = { PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE,
					    PR_GET_NO_NEW_PRIVS, PR_GET_SECCOMP, PR_CAPBSET_READ,
					    PR_GET_THP_DISABLE, PR_SET_VMA };
	return allow_when(ctx, SCMP_SYS(prctl), 0, ops, sizeof(ops) / sizeof(ops[0]));
}

/* ioctl: the VMM needs KVM's (type 0xAE) and the usual fd queries; never
 * TIOCSTI (typing into a terminal it shares). */
static int vmm_ioctl(scmp_filter_ctx ctx)
{
	return rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_CMP_NE, TIOCSTI, 0);
}

/* ioctl in the helper: a socket's queue sizes (TCP_REPAIR) only. */
static int helper_ioctl(scmp_filter_ctx ctx)
{
	static const scmp_datum_t reqs[] = { SIOCINQ, SIOCOUTQ, SIOCOUTQNSD, FIONBIO };
	return allow_when(ctx, SCMP_SYS(ioctl), 1, reqs, sizeof(reqs) / sizeof(reqs[0]));
}

int sandbox_load_filter(enum sandbox_filter which, bool all_threads)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx)
		return -ENOMEM;
	int err = allow_list(ctx, common_allow, sizeof(common_allow) / sizeof(common_allow[0]));
	if (!err && which == SANDBOX_FILTER_VMM)
		err = allow_list(ctx, vmm_allow, sizeof(vmm_allow) / sizeof(vmm_allow[0]));
	if (!err && which == SANDBOX_FILTER_HELPER)
		err = allow_list(ctx, helper_allow, sizeof(helper_allow) / sizeof(helper_allow[0]));
	if (!err && SANDBOX_ASAN)
		err = allow_list(ctx, asan_allow, sizeof(asan_allow) / sizeof(asan_allow[0]));
	if (!err)
		err = allow_socket(ctx);
	if (!err)
		err = which == SANDBOX_FILTER_VMM ? allow_threads(ctx) : 0;
	if (!err && !SANDBOX_ASAN)
		err = allow_self_signals(ctx);
	if (!err && !SANDBOX_ASAN)
		err = allow_prctl(ctx);
	if (!err)
		err = which == SANDBOX_FILTER_VMM ? vmm_ioctl(ctx) : helper_ioctl(ctx);
	if (!err && all_threads)
		err = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (!err && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		err = -errno;
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err > 0 ? -err : err;
}

/* ---- fds ------------------------------------------------------------------------ */

int sandbox_close_inherited(void)
{
	int closed = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -errno;
	int self = dirfd(d);
	int fds[1024], n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < (int)(sizeof(fds) / sizeof(fds[0]))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd < 3 || fd == self)
			continue;
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC))
			fds[n++] = (int)fd;
	}
	closedir(d);
	for (int i = 0; i < n; i++)
		if (close(fds[i]) == 0)
			closed++;
	return closed;
}

/* ---- credentials ---------------------------------------------------------------- */

int sandbox_user_lookup(const char *name, struct sandbox_user *u, char *why, size_t wl)
{
	memset(u, 0, sizeof(*u));
	if (geteuid() != 0) {
		u->uid = geteuid();
		u->gid = getegid();
		snprintf(u->name, sizeof(u->name), "uid %u", (unsigned)u->uid);
		return 0;
	}
	if (!name)
		name = SANDBOX_USER;
	errno = 0;
	struct passwd *pw = getpwnam(name);
	if (!pw) {
		snprintf(why, wl, "no user %s on this host (deploy/install-deps or the package makes it)",
			 name);
		return errno ? -errno : -ENOENT;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(why, wl, "user %s is root or in group root: not a sandbox", name);
		return -EINVAL;
	}
	u->change = true;
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->ngroups = SANDBOX_GROUPS_MAX;
	if (getgrouplist(name, pw->pw_gid, u->groups, &u->ngroups) < 0) {
		snprintf(why, wl, "user %s is in more than %d groups", name, SANDBOX_GROUPS_MAX);
		return -E2BIG;
	}
	for (int i = 0; i < u->ngroups; i++) {
		if (u->groups[i] == 0) {
			snprintf(why, wl, "user %s is in group root: not a sandbox", name);
			return -EINVAL;
		}
	}
	return 0;
}

/* Becomes u (all threads: glibc applies set*id to every thread). */
static int change_user(const struct sandbox_user *u, char *why, size_t wl)
{
	if (!u->change)
		return 0;
	if (setgroups((size_t)u->ngroups, u->groups) < 0 || setresgid(u->gid, u->gid, u->gid) < 0 ||
	    setresuid(u->uid, u->uid, u->uid) < 0) {
		int err = -errno;
		snprintf(why, wl, "becoming user %s: %s", u->name, strerror(errno));
		return err;
	}
	/* and no way back */
	if (setresuid(0, 0, 0) == 0 || getuid() != u->uid || geteuid() != u->uid) {
		snprintf(why, wl, "becoming user %s: root could be regained", u->name);
		return -EPERM;
	}
	return 0;
}

/* Sets the calling thread's capabilities to keep (permitted = effective;
 * inheritable, ambient empty). */
static int set_caps(uint64_t keep)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2] = {
		{ .effective = (uint32_t)keep, .permitted = (uint32_t)keep, .inheritable = 0 },
		{ .effective = (uint32_t)(keep >> 32), .permitted = (uint32_t)(keep >> 32), .inheritable = 0 },
	};
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (syscall(SYS_capset, &h, d) < 0)
		return -errno;
	return 0;
}

int sandbox_enter_vmm(const struct sandbox_user *u, char *why, size_t wl)
{
	int err = change_user(u, why, wl);
	if (err)
		return err;
	/* A process started with capabilities but not as root (ambient or
	 * file caps) gives them up too. */
	if ((err = set_caps(0))) {
		snprintf(why, wl, "dropping capabilities: %s", strerror(-err));
		return err;
	}
	/* After a uid change the kernel makes the process undumpable; under
	 * ASan, LeakSanitizer must attach to its own threads at exit. */
	if (SANDBOX_ASAN)
		prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if ((err = sandbox_load_filter(SANDBOX_FILTER_VMM, true))) {
		snprintf(why, wl, "seccomp filter: %s", strerror(-err));
		return err;
	}
	return 0;
}

int sandbox_enter_helper(void *ctx, char *why, size_t wl)
{
	const struct sandbox_user *u = ctx;
	uint64_t keep = u->change ? 1ull << CAP_NET_ADMIN : 0;
	int err;
	if (u->change && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) {
		err = -errno;
		snprintf(why, wl, "PR_SET_KEEPCAPS: %s", strerror(errno));
		return err;
	}
	if ((err = change_user(u, why, wl)))
		return err;
	prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	if ((err = set_caps(keep))) {
		snprintf(why, wl, "keeping CAP_NET_ADMIN only: %s", strerror(-err));
		return err;
	}
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if ((err = sandbox_load_filter(SANDBOX_FILTER_HELPER, false))) {
		snprintf(why, wl, "seccomp filter: %s", strerror(-err));
		return err;
	}
	return 0;
}
