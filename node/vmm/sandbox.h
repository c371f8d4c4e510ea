/*
 * pvha-vmm's sandbox: what a VMM gives up once it is set up and before the
 * first guest instruction runs (docs/security.md, "VMM sandbox").
 *
 *   - fds: every fd it inherited (fd 3 and up that came through exec) is
 *     closed at start, once the migration key is read;
 *   - user: started as root, it becomes the unprivileged user pvha-vmm
 *     (SANDBOX_USER, made by deploy/install-deps and the package's
 *     postinst), with that user's groups (kvm, for /dev/kvm) and no
 *     capabilities; started as another user it stays that user and drops
 *     any capability it had;
 *   - no_new_privs, and a seccomp allow-list (libseccomp) on every thread:
 *     what a guest, its disk (librados), its console, its sockets, its
 *     migration and a save need; a syscall outside it kills the process
 *     (SIGSYS). Never: exec, fork, ptrace, mount, module, bpf, keyring,
 *     namespace or credential changes, signals to other processes.
 *
 * The privileged helper (privsep.h) gets its own, narrower filter, and keeps
 * CAP_NET_ADMIN only.
 *
 * Under ASan/LSan (the sanitized build) both filters also allow what the
 * sanitizers' reports and LeakSanitizer's exit check need (ptrace of its own
 * threads, a non-thread clone, readlink, getdents64), and the VMM stays
 * dumpable so LeakSanitizer may attach to it; the test build's forbidden
 * syscall is mount, which no build allows.
 *
 * Call order in the VMM: sandbox_close_inherited, sandbox_user_lookup,
 * (privsep_start with sandbox_enter_helper), setup, sandbox_enter_vmm.
 * Not thread-safe; called from main only (sandbox_enter_vmm applies to
 * every thread that exists by then: setresuid and the filter are
 * synchronised to all of them).
 */
#ifndef PVHA_SANDBOX_H
#define PVHA_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_USER "pvha-vmm"
#define SANDBOX_GROUPS_MAX 32

/* Whom the VMM becomes. */
struct sandbox_user {
	bool change;  /* started as root: setgroups/setresgid/setresuid to these */
	uid_t uid;
	gid_t gid;
	gid_t groups[SANDBOX_GROUPS_MAX];
	int ngroups;
	char name[64];
};

enum sandbox_filter {
	SANDBOX_FILTER_VMM,    /* pvha-vmm after setup */
	SANDBOX_FILTER_HELPER, /* its privsep helper */
};

/* Closes every fd from 3 up that is not close-on-exec (what came through
 * exec: a library's own fds are opened O_CLOEXEC). Returns how many. */
int sandbox_close_inherited(void);

/* Fills u for the current process: as root, the user name (SANDBOX_USER
 * when NULL) and its groups; else the current user, unchanged. Returns 0 or
 * -errno with why (-ENOENT: no such user; -EINVAL: the user is root). */
int sandbox_user_lookup(const char *name, struct sandbox_user *u, char *why, size_t wl);

/* The VMM enters its sandbox: becomes u, drops every capability, sets
 * no_new_privs and loads SANDBOX_FILTER_VMM on every thread. Returns 0 or
 * -errno with why; on failure the caller must not run the guest. */
int sandbox_enter_vmm(const struct sandbox_user *u, char *why, size_t wl);

/* The privsep helper enters its sandbox (a privsep_opts.enter, ctx = the
 * struct sandbox_user): becomes u keeping CAP_NET_ADMIN only (nothing when
 * it was not root), no_new_privs, SANDBOX_FILTER_HELPER, not dumpable. */
int sandbox_enter_helper(void *ctx, char *why, size_t wl);

/* Loads one filter on the calling thread (and, with all_threads, on every
 * thread of the process), after setting no_new_privs. The same filter the
 * VMM and the helper load: tests use it in a child. Returns 0 or -errno. */
int sandbox_load_filter(enum sandbox_filter which, bool all_threads);

#endif /* PVHA_SANDBOX_H */
