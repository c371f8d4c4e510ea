/* The privsep channel: see privsep.h. */
#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define HELPER_NAME "pvha-vmm-privsep"

/* The header of both kinds of message (the first word is the op in a
 * request, the result in a reply). */
struct wire_hdr {
	uint32_t word;
	uint32_t len;
};

static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Sends one message. Returns 0 or -errno. */
static int send_msg(int fd, uint32_t word, const void *data, size_t len, const int *fds, unsigned nfds)
{
	struct wire_hdr h = { .word = word, .len = (uint32_t)len };
	struct iovec iov[2] = { { &h, sizeof(h) }, { (void *)data, len } };
	union {
		char buf[CMSG_SPACE(sizeof(int) * PRIVSEP_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
	if (nfds) {
		memset(&u, 0, sizeof(u));
		m.msg_control = u.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n;
	do
		n = sendmsg(fd, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	return (size_t)n == sizeof(h) + len ? 0 : -EPROTO;
}

/* Receives one message into hdr, data (PRIVSEP_MSG_MAX) and fds. Returns 0,
 * -ENODATA at EOF, -EPROTO for a message that breaks the protocol (its fds
 * closed), or -errno. */
static int recv_msg(int fd, struct wire_hdr *h, uint8_t *data, int *fds, unsigned *nfds)
{
	struct iovec iov[2] = { { h, sizeof(*h) }, { data, PRIVSEP_MSG_MAX } };
	union {
		char buf[CMSG_SPACE(sizeof(int) * PRIVSEP_FDS_MAX)];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	ssize_t n;
	*nfds = 0;
	do
		n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == ECONNRESET ? -EPIPE : -errno;
	if (n == 0)
		return -ENODATA;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < PRIVSEP_FDS_MAX)
				fds[(*nfds)++] = f;
			else
				close(f);
		}
	}
	if ((m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n < sizeof(*h) ||
	    (size_t)n != sizeof(*h) + h->len) {
		close_fds(fds, *nfds);
		*nfds = 0;
		return -EPROTO;
	}
	return 0;
}

static const struct privsep_op *find_op(const struct privsep_op *ops, size_t nops, uint32_t type)
{
	for (size_t i = 0; i < nops; i++)
		if (ops[i].type == type)
			return &ops[i];
	return NULL;
}

/* Runs one request's handler; the reply's fds are the handler's (closed by
 * whoever sends them, or here when it failed after opening some). */
static int dispatch(const struct privsep_op *ops, size_t nops, const void *ctx, uint32_t type,
		    const struct privsep_msg *req, struct privsep_reply *rep)
{
	rep->len = 0;
	rep->nfds = 0;
	const struct privsep_op *op = find_op(ops, nops, type);
	if (!op)
		return -EOPNOTSUPP;
	int err = op->fn(ctx, req, rep);
	if (rep->len > PRIVSEP_MSG_MAX || rep->nfds > PRIVSEP_FDS_MAX)
		abort(); /* a handler that overran its reply is a bug, not input */
	if (err) {
		close_fds(rep->fds, rep->nfds);
		rep->nfds = 0;
		rep->len = 0;
	}
	return err > 0 ? -EPROTO : err;
}

int privsep_serve(int fd, const struct privsep_op *ops, size_t nops, const void *ctx)
{
	struct privsep_reply *rep = malloc(sizeof(*rep));
	uint8_t *data = malloc(PRIVSEP_MSG_MAX);
	int err = rep && data ? 0 : -ENOMEM;
	while (!err) {
		struct wire_hdr h;
		int fds[PRIVSEP_FDS_MAX];
		unsigned nfds;
		int res = recv_msg(fd, &h, data, fds, &nfds);
		if (res == -ENODATA)
			break;
		if (res == -EPROTO) {
			/* a malformed request gets an answer too: the caller waits */
			err = send_msg(fd, (uint32_t)-EPROTO, NULL, 0, NULL, 0);
			continue;
		}
		if (res) {
			err = res;
			break;
		}
		struct privsep_msg req = { .data = data, .len = h.len, .fds = fds, .nfds = nfds };
		res = dispatch(ops, nops, ctx, h.word, &req, rep);
		close_fds(fds, nfds);
		err = send_msg(fd, (uint32_t)res, rep->data, rep->len, rep->fds, rep->nfds);
		close_fds(rep->fds, rep->nfds);
	}
	free(rep);
	free(data);
	return err;
}

/* Overwrites the argv strings (one contiguous area, as the kernel lays them
 * out) so /proc/PID/cmdline names the helper. */
static void rename_argv(char **argv, int argc, const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
	if (!argv || argc < 1 || !argv[0])
		return;
	char *start = argv[0], *end = argv[0] + strlen(argv[0]) + 1;
	for (int i = 1; i < argc && argv[i] == end; i++)
		end = argv[i] + strlen(argv[i]) + 1;
	memset(start, 0, (size_t)(end - start));
	if ((size_t)(end - start) > strlen(name) + 1)
		memcpy(start, name, strlen(name) + 1);
}

/* The helper's life after the fork; never returns. */
static void helper_main(const struct privsep_opts *o, int chan, int ready)
{
	char why[256] = "";
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (getppid() == 1)
		_exit(1); /* the VMM died before we got here */
	rename_argv(o->argv, o->argc, o->name ? o->name : HELPER_NAME);
	/* Only the channel, the ready pipe and stderr stay open. */
	for (int fd = 0; fd < 1024; fd++)
		if (fd != chan && fd != ready && fd != STDERR_FILENO)
			close(fd);
	int err = o->enter ? o->enter(o->enter_ctx, why, sizeof(why)) : 0;
	if (err) {
		if (!why[0])
			snprintf(why, sizeof(why), "%s", strerror(-err));
		if (write(ready, why, strlen(why)) < 0) {
			/* the VMM is gone: nothing to tell */
		}
		_exit(1);
	}
	close(ready); /* EOF with no text: ready */
	err = privsep_serve(chan, o->ops, o->nops, o->ctx);
	_exit(err ? 1 : 0);
}

int privsep_start(const struct privsep_opts *o, struct privsep *ps, char *why, size_t wl)
{
	int sv[2], pipefd[2];
	memset(ps, 0, sizeof(*ps));
	ps->fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		int err = -errno;
		snprintf(why, wl, "socketpair: %s", strerror(errno));
		return err;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		int err = -errno;
		snprintf(why, wl, "pipe: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int err = -errno;
		snprintf(why, wl, "fork: %s", strerror(errno));
		close(pipefd[0]);
		close(pipefd[1]);
		close(sv[0]);
		close(sv[1]);
		return err;
	}
	if (pid == 0) {
		close(sv[0]);
		close(pipefd[0]);
		helper_main(o, sv[1], pipefd[1]);
	}
	close(sv[1]);
	close(pipefd[1]);
	char msg[256];
	ssize_t n;
	do
		n = read(pipefd[0], msg, sizeof(msg) - 1);
	while (n < 0 && errno == EINTR);
	close(pipefd[0]);
	if (n != 0) {
		msg[n > 0 ? n : 0] = '\0';
		snprintf(why, wl, "the privileged helper failed: %s", n > 0 ? msg : strerror(errno));
		close(sv[0]);
		waitpid(pid, NULL, 0);
		return -EPERM;
	}
	ps->fd = sv[0];
	ps->pid = pid;
	ps->ops = o->ops;
	ps->nops = o->nops;
	ps->ctx = o->ctx;
	pthread_mutex_init(&ps->lock, NULL);
	return 0;
}

void privsep_inprocess(const struct privsep_op *ops, size_t nops, const void *ctx, struct privsep *ps)
{
	memset(ps, 0, sizeof(*ps));
	ps->fd = -1;
	ps->ops = ops;
	ps->nops = nops;
	ps->ctx = ctx;
	pthread_mutex_init(&ps->lock, NULL);
}

int privsep_call(struct privsep *ps, uint32_t op, const struct privsep_msg *req, struct privsep_reply *rep)
{
	static const struct privsep_msg none = { 0 };
	if (!req)
		req = &none;
	rep->len = 0;
	rep->nfds = 0;
	if (req->len > PRIVSEP_MSG_MAX)
		return -EMSGSIZE;
	if (req->nfds > PRIVSEP_FDS_MAX || (req->len && !req->data) || (req->nfds && !req->fds))
		return -EINVAL;
	if (!ps->ops)
		return -EPIPE; /* destroyed */
	pthread_mutex_lock(&ps->lock);
	int err;
	if (ps->fd < 0) {
		err = dispatch(ps->ops, ps->nops, ps->ctx, op, req, rep);
		goto out;
	}
	err = send_msg(ps->fd, op, req->data, req->len, req->fds, req->nfds);
	if (err)
		goto out;
	struct wire_hdr h;
	err = recv_msg(ps->fd, &h, rep->data, rep->fds, &rep->nfds);
	if (err == -ENODATA)
		err = -EPIPE;
	if (err)
		goto out;
	int32_t res = (int32_t)h.word;
	if (res > 0 || res < -4095 || (res && (h.len || rep->nfds))) {
		close_fds(rep->fds, rep->nfds);
		rep->nfds = 0;
		err = -EPROTO;
		goto out;
	}
	rep->len = h.len;
	err = res;
out:
	pthread_mutex_unlock(&ps->lock);
	return err;
}

pid_t privsep_helper_pid(const struct privsep *ps)
{
	return ps->pid;
}

void privsep_destroy(struct privsep *ps)
{
	if (ps->fd >= 0) {
		close(ps->fd);
		ps->fd = -1;
		int st;
		while (waitpid(ps->pid, &st, 0) < 0 && errno == EINTR)
			;
	}
	ps->pid = 0;
	ps->ops = NULL; /* calls fail from here on */
	ps->nops = 0;
}
