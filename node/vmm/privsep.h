/*
 * Privilege separation for pvha-vmm: a small helper process that keeps one
 * capability the sandboxed VMM gave up (CAP_NET_ADMIN, for TCP_REPAIR) and
 * does, on request, only what its request table names.
 *
 * The VMM starts the helper (privsep_start) before it drops its privileges
 * and before any thread exists; the helper is a fork of the VMM that renames
 * itself "pvha-vmm-privsep" (its command line, so that nothing that looks
 * for a guest's VMM by its command line sees two), runs the caller's enter
 * function (sandbox_enter_helper: its own user, CAP_NET_ADMIN only,
 * no_new_privs, its own seccomp filter), closes every fd but its end of the
 * channel and stderr, and serves requests until the VMM closes the channel
 * (or dies: the helper has PR_SET_PDEATHSIG SIGKILL).
 *
 * The channel: a SOCK_SEQPACKET socketpair, one request and one reply per
 * call, each a message of a fixed header and at most PRIVSEP_MSG_MAX bytes
 * of payload, with at most PRIVSEP_FDS_MAX file descriptors (SCM_RIGHTS):
 *
 *   request: u32 op, u32 len, len bytes       + 0..PRIVSEP_FDS_MAX fds
 *   reply:   i32 result (0 or -errno), u32 len, len bytes + 0..PRIVSEP_FDS_MAX fds
 *
 * Both ends check every message on arrival: its size against its header,
 * its fds against the limit (a truncated set of fds is refused), the op
 * against the table (-EOPNOTSUPP). The payload is the op's business: each
 * handler checks its own (its size first), as any code that takes bytes
 * from a less privileged process must. A payload larger than
 * PRIVSEP_MSG_MAX (a TCP queue, say) travels in an fd (memfd_create is in
 * the helper's allow-list).
 *
 * The in-process fallback (privsep_inprocess) calls the same handlers
 * directly in the caller's process, with the same fd ownership: used when
 * the sandbox is off (--sandbox=off) and by tests. A handler cannot tell
 * the two apart, except by what it is allowed to do.
 *
 * Adding a request: give it a number in enum privsep_op_type, write its
 * handler (a privsep_fn) and the caller's side in privsep_ops.c, and add a
 * row to the table of the process that must serve it. A request whose
 * failure has a reason to tell answers 0 with an i32 result and the
 * reason's text as its payload (an error reply carries nothing).
 *
 * The VMM runs two of these (privsep_ops.h): the helper
 * "pvha-vmm-privsep" (TCP_REPAIR: its seccomp filter, sandbox.c
 * helper_allow, allows what that needs: socket, bind, connect,
 * get/setsockopt, ioctl SIOCINQ/SIOCOUTQ, send/recv, memfd_create), and
 * the nft runner "pvha-vmm-nft" (opts.name), which runs nft(8) for
 * node/lib/netfreeze.h. Why a second process and not the helper: a
 * seccomp filter is inherited across execve, so nft would run under the
 * helper's filter (no exec, no files, no netlink), and a non-root process
 * keeps CAP_NET_ADMIN across execve only as an ambient capability; a
 * helper left uid 0 instead would own every root file. The runner is the
 * sandbox's user with CAP_NET_ADMIN alone (ambient, bounding set cut to
 * it), no_new_privs and no filter, and takes only (address, port) tuples
 * (sandbox_enter_nft; docs/security.md weighs the choices).
 *
 * Threading: privsep_call may be called from any thread; calls are
 * serialised (one request in flight per channel). A call blocks until the
 * helper answers; the helper's handlers must be quick and never wait on the
 * network.
 */
#ifndef PVHA_PRIVSEP_H
#define PVHA_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#define PRIVSEP_MSG_MAX (64u * 1024u) /* payload bytes per request or reply */
#define PRIVSEP_FDS_MAX 4u            /* fds per request or reply */

/* Request numbers: never reuse one. */
enum privsep_op_type {
	PRIVSEP_OP_CAPS = 1,     /* () -> u64 effective capability set of the helper (test, status) */
	PRIVSEP_OP_SOCKTYPE = 2, /* (fd) -> i32 its SO_TYPE, and the fd back (test) */
	PRIVSEP_OP_TCP_REPAIR_DUMP = 3,    /* (socket) -> tuple, blob (or a memfd): tcprepair.h */
	PRIVSEP_OP_TCP_REPAIR_RESTORE_HELD = 4, /* (blob or memfd) -> status, frozen socket */
	PRIVSEP_OP_TCP_REPAIR_THAW = 5,    /* (socket) -> () */
	PRIVSEP_OP_NFT_SETUP = 6,          /* () -> status: netfreeze.h, the nft runner */
	PRIVSEP_OP_NFT_HOLD = 7,           /* (tuples) -> status */
	PRIVSEP_OP_NFT_RELEASE = 8,        /* (tuples) -> status */
	PRIVSEP_OP_TCP_REPAIR_RELEASE = 9, /* (frozen socket, blob or memfd) -> status */
};

/* What a handler is given: the payload and the fds that came with it. The
 * fds are the channel's: a handler may use them but not close them (it
 * dup()s one it wants to hand back). */
struct privsep_msg {
	const uint8_t *data;
	size_t len;
	const int *fds;
	unsigned nfds;
};

/* What a handler gives back: up to PRIVSEP_MSG_MAX bytes in data (len set),
 * and fds it opened for the caller (nfds set); the channel sends and then
 * closes them, also when the handler fails. */
struct privsep_reply {
	uint8_t data[PRIVSEP_MSG_MAX];
	size_t len;
	int fds[PRIVSEP_FDS_MAX];
	unsigned nfds;
};

/* A request's handler: 0 or -errno (sent back as the call's result). ctx
 * is the channel's (privsep_opts.ctx): what the helper was told at its
 * start, before the VMM gave up anything, never what a request says. */
typedef int (*privsep_fn)(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep);

struct privsep_op {
	uint32_t type;    /* enum privsep_op_type */
	const char *name; /* for log lines */
	privsep_fn fn;
};

/* One channel; embedded in its owner (no allocation: a VMM that ends early
 * leaks nothing), its fields privsep.c's. */
struct privsep {
	int fd;    /* our end; -1 in-process */
	pid_t pid; /* the helper; 0 in-process */
	const struct privsep_op *ops;
	size_t nops;
	const void *ctx;
	pthread_mutex_t lock; /* one request in flight */
};

struct privsep_opts {
	const struct privsep_op *ops; /* the request table; lives as long as the channel */
	size_t nops;
	const void *ctx; /* every handler's ctx; lives as long as the channel (the helper has a copy) */
	/* Runs in the helper after the fork, before it serves: drops what it
	 * must not keep and installs its filter. Returns 0 or -errno; on
	 * failure the helper reports why on stderr and exits, and
	 * privsep_start fails. */
	int (*enter)(void *ctx, char *why, size_t wl);
	void *enter_ctx;
	/* the VMM's argv: the helper overwrites its strings in place with
	 * "pvha-vmm-privsep" (its /proc/PID/cmdline); NULL leaves them */
	char **argv;
	int argc;
	const char *name; /* what argv becomes; NULL: "pvha-vmm-privsep" */
};

/* Forks the helper, waits until it has entered its sandbox (or failed).
 * Call it before any thread exists. Returns 0 with ps set up, or -errno
 * with why. */
int privsep_start(const struct privsep_opts *o, struct privsep *ps, char *why, size_t wl);

/* The in-process fallback: the same table and ctx, called directly. */
void privsep_inprocess(const struct privsep_op *ops, size_t nops, const void *ctx, struct privsep *ps);

/* One request, one reply. req may have no data and no fds. rep's fds are
 * the caller's to close. Returns the handler's result (0 or -errno), or
 * -EMSGSIZE / -EINVAL for a request over the limits, -EPIPE when the helper
 * is gone, -EPROTO for a reply that breaks the protocol. */
int privsep_call(struct privsep *ps, uint32_t op, const struct privsep_msg *req,
		 struct privsep_reply *rep);

/* The helper's pid; 0 when in-process. */
pid_t privsep_helper_pid(const struct privsep *ps);

/* Closes the channel (the helper then exits) and reaps the helper. Fine on
 * a channel already closed, or never set up when zeroed with fd -1. */
void privsep_destroy(struct privsep *ps);

/* The helper's loop, exposed for tests that run it on a socket of their
 * own: serves fd until EOF, then returns 0 (or -errno on a broken channel). */
int privsep_serve(int fd, const struct privsep_op *ops, size_t nops, const void *ctx);

#endif /* PVHA_PRIVSEP_H */
