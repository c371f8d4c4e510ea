/*
 * The host-socket net backend: the guest's sockets are real TCP sockets of
 * the VMM process, bound to the guest's address. It lives in hv-core beside
 * disk_file.c because it needs nothing but POSIX sockets; backends that need
 * more (a cluster service, another namespace) belong with the program that
 * has it, as the RADOS disk does in node/lib.
 *
 * Every socket is non-blocking and close-on-exec, with PV_NET_SOCKBUF asked
 * for each of its kernel buffers (Linux doubles it and stops autotuning), so
 * what one guest keeps queued in the host is bounded: see ABI.md "Limits".
 * Connections get TCP_NODELAY (request/response services want their small
 * replies out at once; a guest batches by sending larger buffers). Listeners
 * get SO_REUSEADDR so that a restored guest listens again while the old
 * connections sit in TIME_WAIT, and SO_REUSEPORT so that a migration target
 * on the same host listens while the source still does (until the hand-over,
 * when the source closes its sockets).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pvhv/hv.h"

struct net_host {
	struct sockaddr_in addr; /* the guest's, port 0 */
};

static int new_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int buf = PV_NET_SOCKBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	return fd;
}

static int fail_close(int fd)
{
	int err = -errno;
	close(fd);
	return err;
}

static int host_listen(struct hv_net *n, uint16_t port, unsigned backlog)
{
	struct net_host *h = hv_net_priv(n);
	int fd = new_socket();
	if (fd < 0)
		return fd;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	/* A migration target restores the guest's listeners before its node
	 * carries the guest's address (it does from the moment the guest runs
	 * there, docs/network.md). */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	struct sockaddr_in sa = h->addr;
	sa.sin_port = htons(port);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, (int)backlog) < 0)
		return fail_close(fd);
	return fd;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int host_accept(struct hv_net *n, int lfd)
{
	(void)n;
	/* accepted sockets inherit the listener's buffer sizes */
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	nodelay(fd);
	return fd;
}

static int host_connect(struct hv_net *n, uint32_t ipv4, uint16_t port)
{
	struct net_host *h = hv_net_priv(n);
	int fd = new_socket();
	if (fd < 0)
		return fd;
	nodelay(fd);
	if (h->addr.sin_addr.s_addr != htonl(INADDR_ANY) &&
	    bind(fd, (struct sockaddr *)&h->addr, sizeof(h->addr)) < 0)
		return fail_close(fd);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(ipv4) };
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS)
		return fail_close(fd);
	return fd;
}

static ssize_t host_send(struct hv_net *n, int fd, const void *buf, size_t len)
{
	(void)n;
	ssize_t r = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return r < 0 ? -errno : r;
}

static ssize_t host_recv(struct hv_net *n, int fd, void *buf, size_t len)
{
	(void)n;
	ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
	return r < 0 ? -errno : r;
}

static int host_shutdown(struct hv_net *n, int fd, int how)
{
	(void)n;
	static const int hows[] = { SHUT_RD, SHUT_WR, SHUT_RDWR };
	return shutdown(fd, hows[how]) < 0 ? -errno : 0;
}

static int host_addr(struct hv_net *n, int fd, bool peer, uint32_t *ipv4, uint16_t *port)
{
	(void)n;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int r = peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
		     : getsockname(fd, (struct sockaddr *)&sa, &len);
	if (r < 0)
		return -errno;
	if (sa.sin_family != AF_INET)
		return -EAFNOSUPPORT;
	*ipv4 = ntohl(sa.sin_addr.s_addr);
	*port = ntohs(sa.sin_port);
	return 0;
}

static void host_close(struct hv_net *n, int fd)
{
	(void)n;
	close(fd);
}

static void host_destroy(struct hv_net *n)
{
	free(hv_net_priv(n));
}

static const struct hv_net_ops host_ops = {
	.name = "host",
	.listen = host_listen,
	.accept = host_accept,
	.connect = host_connect,
	.send = host_send,
	.recv = host_recv,
	.shutdown = host_shutdown,
	.addr = host_addr,
	.close = host_close,
	.destroy = host_destroy,
};

int hv_net_host_open(const char *ipv4, struct hv_net **out)
{
	struct in_addr a;
	if (!ipv4 || inet_pton(AF_INET, ipv4, &a) != 1)
		return -EINVAL;
	struct net_host *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr = a };
	int err = hv_net_create(&host_ops, h, ntohl(a.s_addr), out);
	if (err)
		free(h);
	return err;
}
