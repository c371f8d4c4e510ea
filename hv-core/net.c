/*
 * ABI v2 sockets, the backend-neutral half: the guest's handle table, the
 * limits of abi.h, the argument checks, net_poll and its wait, and the saved
 * form of the handles. A backend (hv_net_ops, e.g. net_host.c) only makes and
 * moves host sockets, so both vCPU backends and any net backend behave alike.
 *
 * Policy, as for ABI v1 (hypercall.c): an argument only a broken guest can
 * pass (a buffer outside RAM, a length over PV_NET_IO_MAX, a port over 65535,
 * a poll count over PV_NET_POLL_MAX, a shutdown `how` over 2, an unknown
 * net_addr `which`) stops the guest; a handle that is not open is -EBADF,
 * because a correct program can race itself into one (close, then a stale
 * number). Handles are numbered from 0, lowest free first, like descriptors.
 *
 * A dead handle (its socket reset by a restore, by the guest leaving the
 * host, or a listener that could not listen again) keeps its number until
 * the guest closes it and answers every other call with its error; net_poll
 * reports it as PV_POLLERR | PV_POLLHUP (and PV_POLLIN when asked, so a
 * reader finds the error).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int hv_net_create(const struct hv_net_ops *ops, void *priv, uint32_t ipv4, struct hv_net **out)
{
	struct hv_net *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->ops = ops;
	n->priv = priv;
	n->ipv4 = ipv4;
	for (unsigned i = 0; i < PV_NET_HANDLES_MAX; i++)
		n->h[i].fd = -1;
	*out = n;
	return 0;
}

void *hv_net_priv(const struct hv_net *n)
{
	return n->priv;
}

uint32_t hv_net_address(const struct hv_net *n)
{
	return n->ipv4;
}

static void sock_free(struct hv_net *n, unsigned h)
{
	struct hv_net_sock *s = &n->h[h];
	if (s->fd >= 0)
		n->ops->close(n, s->fd);
	if (s->kind == HV_NS_LISTEN)
		n->nlisten--;
	if (s->kind != HV_NS_FREE)
		n->nopen--;
	*s = (struct hv_net_sock){ .fd = -1 };
}

/* Turns an open handle dead with err, closing its socket. */
static void sock_kill(struct hv_net *n, unsigned h, int err)
{
	struct hv_net_sock *s = &n->h[h];
	if (s->kind == HV_NS_FREE || s->kind == HV_NS_DEAD)
		return;
	if (s->fd >= 0)
		n->ops->close(n, s->fd);
	if (s->kind == HV_NS_LISTEN)
		n->nlisten--;
	s->fd = -1;
	s->kind = HV_NS_DEAD;
	s->err = err;
}

void hv_net_reset(struct hv_net *n, int err)
{
	if (!n)
		return;
	for (unsigned i = 0; i < PV_NET_HANDLES_MAX; i++)
		sock_kill(n, i, err);
}

unsigned hv_net_connections(const struct hv_net *n, unsigned *handles, int *fds)
{
	unsigned c = 0;
	for (unsigned i = 0; n && i < PV_NET_HANDLES_MAX; i++)
		if (n->h[i].kind == HV_NS_STREAM && n->h[i].fd >= 0) {
			handles[c] = i;
			fds[c++] = n->h[i].fd;
		}
	return c;
}

bool hv_net_adoptable(const struct hv_net *n, unsigned handle)
{
	return n && handle < PV_NET_HANDLES_MAX && n->h[handle].kind == HV_NS_DEAD &&
	       n->h[handle].carried;
}

int hv_net_adopt(struct hv_net *n, unsigned handle, int fd)
{
	if (!hv_net_adoptable(n, handle) || fd < 0)
		return -EBADF;
	/* still counted open (dead handles are); only its kind and socket change */
	n->h[handle] = (struct hv_net_sock){ .fd = fd, .kind = HV_NS_STREAM };
	return 0;
}

void hv_net_counts(const struct hv_net *n, unsigned *handles, unsigned *listeners)
{
	*handles = n ? n->nopen : 0;
	*listeners = n ? n->nlisten : 0;
}

void hv_net_destroy(struct hv_net *n)
{
	if (!n)
		return;
	for (unsigned i = 0; i < PV_NET_HANDLES_MAX; i++)
		sock_free(n, i);
	if (n->ops->destroy)
		n->ops->destroy(n);
	free(n);
}

/* The lowest free handle, or -EMFILE. */
static int sock_alloc(struct hv_net *n)
{
	if (n->nopen >= PV_NET_HANDLES_MAX)
		return -EMFILE;
	for (unsigned i = 0; i < PV_NET_HANDLES_MAX; i++)
		if (n->h[i].kind == HV_NS_FREE)
			return (int)i;
	return -EMFILE;
}

static void sock_set(struct hv_net *n, int h, int fd, uint8_t kind, uint16_t port, uint16_t backlog)
{
	n->h[h] = (struct hv_net_sock){ .fd = fd, .kind = kind, .port = port, .backlog = backlog };
	n->nopen++;
	if (kind == HV_NS_LISTEN)
		n->nlisten++;
}

/* A host error as the guest may see it: the errnos ABI.md lists pass, any
 * other becomes -EIO (the guest cannot act on what it does not know). */
static uint64_t guest_err(long err)
{
	switch (-err) {
	case EAGAIN: case EBADF: case EINVAL: case EMFILE: case ENOMEM: case EACCES:
	case EPIPE: case EOPNOTSUPP: case EADDRINUSE: case EADDRNOTAVAIL: case ENETDOWN:
	case ENETUNREACH: case ECONNABORTED: case ECONNRESET: case ENOBUFS: case ENOTCONN:
	case ETIMEDOUT: case ECONNREFUSED: case EHOSTUNREACH:
		return (uint64_t)err;
	case EINTR: /* a host signal cut a call short: try again, as for a full buffer */
		return (uint64_t)-PV_EAGAIN;
	case ENFILE:
		return (uint64_t)-PV_EMFILE;
	default:
		return (uint64_t)-PV_EIO;
	}
}

/* The open handle the guest named, or NULL (then the call answers -EBADF). */
static struct hv_net_sock *lookup(struct hv_net *n, uint64_t h)
{
	if (h >= PV_NET_HANDLES_MAX || n->h[h].kind == HV_NS_FREE)
		return NULL;
	return &n->h[h];
}

static uint64_t net_listen(struct hv_machine *m, struct hv_net *n, const uint64_t a[4])
{
	if (a[0] > 65535)
		return hv_bad_hypercall(m, PV_HC_NET_LISTEN, "port over 65535", a[0], a[1]);
	unsigned backlog = a[1] == 0 ? 1 : a[1] > PV_NET_BACKLOG_MAX ? PV_NET_BACKLOG_MAX : (unsigned)a[1];
	if (n->nlisten >= PV_NET_LISTEN_MAX)
		return (uint64_t)-PV_EMFILE;
	/* a backend may share ports between processes (net_host.c, for a
	 * migration on one host); within one guest a port is listened on once */
	for (unsigned i = 0; a[0] && i < PV_NET_HANDLES_MAX; i++)
		if (n->h[i].kind == HV_NS_LISTEN && n->h[i].port == a[0])
			return (uint64_t)-PV_EADDRINUSE;
	int h = sock_alloc(n);
	if (h < 0)
		return (uint64_t)(int64_t)h;
	int fd = n->ops->listen(n, (uint16_t)a[0], backlog);
	if (fd < 0)
		return guest_err(fd);
	uint32_t ip;
	uint16_t port = (uint16_t)a[0];
	if (port == 0 && n->ops->addr(n, fd, false, &ip, &port) < 0) {
		n->ops->close(n, fd);
		return (uint64_t)-PV_EIO;
	}
	sock_set(n, h, fd, HV_NS_LISTEN, port, (uint16_t)backlog);
	return (uint64_t)h;
}

/* The open handle h of the kind a call needs: 0 with *out, or the error the
 * call returns (-EBADF not open, a dead handle's own error, wrong_kind). */
static int64_t want(struct hv_net *n, uint64_t h, uint8_t kind, int wrong_kind,
		    struct hv_net_sock **out)
{
	struct hv_net_sock *s = lookup(n, h);
	if (!s)
		return -PV_EBADF;
	if (s->kind == HV_NS_DEAD)
		return s->err < 0 ? s->err : -PV_ECONNRESET;
	if (s->kind != kind)
		return wrong_kind;
	*out = s;
	return 0;
}

/* Handle h (allocated) takes the connection fd a backend made, or the call
 * returns the backend's error. */
static uint64_t new_stream(struct hv_net *n, int h, int fd)
{
	if (fd < 0)
		return guest_err(fd);
	sock_set(n, h, fd, HV_NS_STREAM, 0, 0);
	return (uint64_t)h;
}

static uint64_t net_accept(struct hv_net *n, const uint64_t a[4])
{
	struct hv_net_sock *s = NULL;
	int64_t err = want(n, a[0], HV_NS_LISTEN, -PV_EINVAL, &s);
	if (err)
		return (uint64_t)err;
	/* Full: the connection stays queued (in the backlog) for later. */
	int h = sock_alloc(n);
	if (h < 0)
		return (uint64_t)(int64_t)h;
	return new_stream(n, h, n->ops->accept(n, s->fd));
}

static uint64_t net_connect(struct hv_machine *m, struct hv_net *n, const uint64_t a[4])
{
	if (a[0] > UINT32_MAX)
		return hv_bad_hypercall(m, PV_HC_NET_CONNECT, "address over 32 bits", a[0], a[1]);
	if (a[1] > 65535)
		return hv_bad_hypercall(m, PV_HC_NET_CONNECT, "port over 65535", a[0], a[1]);
	if (a[1] == 0)
		return (uint64_t)-PV_EINVAL;
	int h = sock_alloc(n);
	if (h < 0)
		return (uint64_t)(int64_t)h;
	return new_stream(n, h, n->ops->connect(n, (uint32_t)a[0], (uint16_t)a[1]));
}

static uint64_t net_io(struct hv_machine *m, struct hv_net *n, uint64_t nr, const uint64_t a[4])
{
	uint64_t buf = a[1], len = a[2];
	if (len > PV_NET_IO_MAX)
		return hv_bad_hypercall(m, nr, "length over PV_NET_IO_MAX", buf, len);
	if (!hv_range_ok(m, buf, len))
		return hv_bad_hypercall(m, nr, "buffer outside guest RAM", buf, len);
	struct hv_net_sock *s = NULL;
	int64_t err = want(n, a[0], HV_NS_STREAM, -PV_ENOTCONN, &s);
	if (err)
		return (uint64_t)err;
	if (len == 0)
		return 0;
	ssize_t r;
	if (nr == PV_HC_NET_RECV) {
		r = n->ops->recv(n, s->fd, m->ram + buf, len);
		if (r > 0)
			hv_ram_written(m, buf, (uint64_t)r);
	} else {
		r = n->ops->send(n, s->fd, m->ram + buf, len);
	}
	return r < 0 ? guest_err(r) : (uint64_t)r;
}

static uint64_t net_shutdown(struct hv_machine *m, struct hv_net *n, const uint64_t a[4])
{
	if (a[1] > PV_SHUT_RDWR)
		return hv_bad_hypercall(m, PV_HC_NET_SHUTDOWN, "how is not 0, 1 or 2", a[0], a[1]);
	struct hv_net_sock *s = NULL;
	int64_t err = want(n, a[0], HV_NS_STREAM, -PV_ENOTCONN, &s);
	if (err)
		return (uint64_t)err;
	int r = n->ops->shutdown(n, s->fd, (int)a[1]);
	return r < 0 ? guest_err(r) : 0;
}

static uint64_t net_close(struct hv_net *n, const uint64_t a[4])
{
	if (!lookup(n, a[0]))
		return (uint64_t)-PV_EBADF;
	sock_free(n, (unsigned)a[0]);
	return 0;
}

static uint64_t net_addr(struct hv_machine *m, struct hv_net *n, const uint64_t a[4])
{
	if (a[1] > PV_NET_ADDR_PEER)
		return hv_bad_hypercall(m, PV_HC_NET_ADDR, "which is not 0 or 1", a[0], a[1]);
	if (a[0] == UINT64_MAX && a[1] == PV_NET_ADDR_LOCAL)
		return (uint64_t)n->ipv4 << 16;
	struct hv_net_sock *s = lookup(n, a[0]);
	if (!s)
		return (uint64_t)-PV_EBADF;
	if (s->kind == HV_NS_DEAD)
		return (uint64_t)(int64_t)s->err;
	if (s->kind == HV_NS_LISTEN && a[1] == PV_NET_ADDR_PEER)
		return (uint64_t)-PV_ENOTCONN;
	uint32_t ip;
	uint16_t port;
	int r = n->ops->addr(n, s->fd, a[1] == PV_NET_ADDR_PEER, &ip, &port);
	if (r < 0)
		return guest_err(r);
	return (uint64_t)ip << 16 | port;
}

/* poll(2) events for what the guest asked of a handle. */
static short host_events(const struct hv_net_sock *s, uint16_t want)
{
	short ev = 0;
	if (want & PV_POLLIN)
		ev |= POLLIN;
	if ((want & PV_POLLOUT) && s->kind == HV_NS_STREAM)
		ev |= POLLOUT;
	return ev;
}

static uint64_t net_poll(struct hv_machine *m, struct hv_net *n, const uint64_t a[4])
{
	uint64_t gpa = a[0], count = a[1], deadline = a[2];
	if (count > PV_NET_POLL_MAX)
		return hv_bad_hypercall(m, PV_HC_NET_POLL, "count over PV_NET_POLL_MAX", gpa, count);
	uint64_t bytes = count * sizeof(struct pv_pollfd);
	if (!hv_range_ok(m, gpa, bytes))
		return hv_bad_hypercall(m, PV_HC_NET_POLL, "array outside guest RAM", gpa, bytes);

	struct pv_pollfd fds[PV_NET_POLL_MAX];
	struct pollfd pfd[PV_NET_POLL_MAX];
	unsigned map[PV_NET_POLL_MAX]; /* pfd index -> fds index */
	unsigned np = 0;
	memcpy(fds, m->ram + gpa, bytes);
	for (unsigned i = 0; i < count; i++) {
		fds[i].revents = 0;
		if (fds[i].handle < 0)
			continue;
		struct hv_net_sock *s = lookup(n, (uint64_t)fds[i].handle);
		if (!s)
			return (uint64_t)-PV_EBADF;
		if (s->kind == HV_NS_DEAD) {
			fds[i].revents = PV_POLLERR | PV_POLLHUP | (fds[i].events & PV_POLLIN);
			continue;
		}
		pfd[np] = (struct pollfd){ .fd = s->fd, .events = host_events(s, fds[i].events) };
		map[np++] = i;
	}
	if (np && poll(pfd, np, 0) < 0)
		return (uint64_t)-PV_EIO;
	unsigned ready = 0;
	for (unsigned k = 0; k < np; k++) {
		short r = pfd[k].revents;
		uint16_t rev = 0;
		if (r & (POLLIN | POLLRDHUP))
			rev |= PV_POLLIN;
		if (r & POLLOUT)
			rev |= PV_POLLOUT;
		if (r & POLLERR)
			rev |= PV_POLLERR;
		if (r & POLLHUP)
			rev |= PV_POLLHUP;
		fds[map[k]].revents = rev & (fds[map[k]].events | PV_POLLERR | PV_POLLHUP);
	}
	for (unsigned i = 0; i < count; i++)
		if (fds[i].revents)
			ready++;
	if (ready || deadline <= hv_guest_mono(m)) {
		/* revents are written back only when the call reports */
		for (unsigned i = 0; i < count; i++)
			memcpy(m->ram + gpa + i * sizeof(struct pv_pollfd) + offsetof(struct pv_pollfd, revents),
			       &fds[i].revents, sizeof(fds[i].revents));
		hv_ram_written(m, gpa, bytes);
		return ready;
	}
	/* Nothing yet: the vCPU leaves the guest, which the host runs again when
	 * one of these is ready or the deadline passes; the guest then asks
	 * again (the -EINTR). */
	for (unsigned k = 0; k < np; k++)
		pfd[k].revents = 0;
	memcpy(m->wait_fds, pfd, np * sizeof(pfd[0]));
	m->nwait = np;
	m->net_waiting = true;
	m->sleeping = true;
	m->sleep_until = deadline;
	atomic_fetch_or(&m->request, HV_REQ_SLEEP);
	return (uint64_t)-PV_EINTR;
}

bool hv_net_wait_ready(struct hv_machine *m)
{
	if (!m->nwait)
		return false;
	return poll(m->wait_fds, m->nwait, 0) > 0;
}

uint64_t hv_net_hypercall(struct hv_machine *m, uint64_t nr, const uint64_t a[4])
{
	struct hv_net *n = m->net;
	if (!n) {
		/* the argument checks still apply: a broken guest is broken
		 * with or without an address */
		if (nr == PV_HC_NET_SEND || nr == PV_HC_NET_RECV) {
			if (a[2] > PV_NET_IO_MAX)
				return hv_bad_hypercall(m, nr, "length over PV_NET_IO_MAX", a[1], a[2]);
			if (!hv_range_ok(m, a[1], a[2]))
				return hv_bad_hypercall(m, nr, "buffer outside guest RAM", a[1], a[2]);
		}
		return (uint64_t)-PV_ENODEV;
	}
	switch (nr) {
	case PV_HC_NET_LISTEN: return net_listen(m, n, a);
	case PV_HC_NET_ACCEPT: return net_accept(n, a);
	case PV_HC_NET_CONNECT: return net_connect(m, n, a);
	case PV_HC_NET_SEND:
	case PV_HC_NET_RECV: return net_io(m, n, nr, a);
	case PV_HC_NET_SHUTDOWN: return net_shutdown(m, n, a);
	case PV_HC_NET_CLOSE: return net_close(n, a);
	case PV_HC_NET_POLL: return net_poll(m, n, a);
	case PV_HC_NET_ADDR: return net_addr(m, n, a);
	}
	return (uint64_t)-PV_EINVAL;
}

unsigned hv_net_save(const struct hv_net *n, struct hv_net_saved *out)
{
	unsigned c = 0;
	if (!n)
		return 0;
	for (unsigned i = 0; i < PV_NET_HANDLES_MAX; i++) {
		const struct hv_net_sock *s = &n->h[i];
		if (s->kind == HV_NS_FREE)
			continue;
		out[c++] = (struct hv_net_saved){ .handle = i, .kind = s->kind, .port = s->port,
						  .backlog = s->backlog, .err = s->err };
	}
	return c;
}

int hv_net_restore(struct hv_net *n, const struct hv_net_saved *s, unsigned count, char *err,
		   size_t errlen)
{
	if (n->nopen) {
		snprintf(err, errlen, "the network already has open handles");
		return -EBUSY;
	}
	for (unsigned i = 0; i < count; i++) {
		const struct hv_net_saved *e = &s[i];
		if (e->handle >= PV_NET_HANDLES_MAX || n->h[e->handle].kind != HV_NS_FREE ||
		    e->kind < HV_NS_LISTEN || e->kind > HV_NS_DEAD || e->port > 65535 ||
		    e->backlog > PV_NET_BACKLOG_MAX || e->err > 0 ||
		    (e->kind == HV_NS_LISTEN && n->nlisten >= PV_NET_LISTEN_MAX)) {
			snprintf(err, errlen, "net record: bad socket entry %u (handle %u, kind %u)", i,
				 e->handle, e->kind);
			for (unsigned h = 0; h < PV_NET_HANDLES_MAX; h++)
				sock_free(n, h);
			return -EBADMSG;
		}
		if (e->kind == HV_NS_LISTEN) {
			int fd = n->ops->listen(n, (uint16_t)e->port, e->backlog ? e->backlog : 1);
			if (fd >= 0) {
				sock_set(n, (int)e->handle, fd, HV_NS_LISTEN, (uint16_t)e->port,
					 (uint16_t)e->backlog);
				continue;
			}
			sock_set(n, (int)e->handle, -1, HV_NS_DEAD, (uint16_t)e->port, 0);
			n->h[e->handle].err = (int)guest_err(fd);
			continue;
		}
		/* a connection cannot outlive its host socket: reset, as a peer
		 * that crashed would */
		sock_set(n, (int)e->handle, -1, HV_NS_DEAD, 0, 0);
		n->h[e->handle].err = e->kind == HV_NS_DEAD && e->err ? e->err : -PV_ECONNRESET;
		n->h[e->handle].carried = e->kind == HV_NS_STREAM;
	}
	return 0;
}
