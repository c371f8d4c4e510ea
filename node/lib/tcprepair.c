/* See tcprepair.h. The order of the restore steps is the kernel's: sequence
 * numbers before connect() (which, in repair mode, sends no SYN and makes the
 * socket established), options and the timestamp clock after it, then the
 * queues, the windows last (the kernel checks them against rcv_nxt, which
 * the receive queue moves), and the unsent bytes only once repair is off
 * (they never left the source, so the kernel must send them as new data). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/migrate.pb-c.h"
#include "tcprepair.h"

#define CHUNK (64u * 1024u) /* a queue is written back in pieces of this size */

static int sopt(int fd, int level, int name, int val)
{
	return setsockopt(fd, level, name, &val, sizeof(val)) < 0 ? -errno : 0;
}

static int gopt(int fd, int level, int name, void *val, socklen_t len)
{
	socklen_t got = len;
	if (getsockopt(fd, level, name, val, &got) < 0)
		return -errno;
	return got == len ? 0 : -EPROTO;
}

/* Reads queue q (TCP_SEND_QUEUE or TCP_RECV_QUEUE) of a frozen socket: its
 * sequence number and its len bytes (peeked, so they stay). */
static int read_queue(int fd, int q, size_t len, uint32_t *seq, ProtobufCBinaryData *out)
{
	int err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, q);
	if (!err)
		err = gopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, sizeof(*seq));
	if (err)
		return err;
	out->len = len;
	out->data = NULL;
	if (!len)
		return 0;
	out->data = malloc(len);
	if (!out->data)
		return -ENOMEM;
	ssize_t r = recv(fd, out->data, len, MSG_PEEK | MSG_DONTWAIT);
	if (r < 0)
		return -errno;
	return (size_t)r == len ? 0 : -EIO;
}

/* A socket filter that drops every incoming segment. */
static int drop_all(int fd)
{
	static struct sock_filter all[] = { BPF_STMT(BPF_RET | BPF_K, 0) };
	struct sock_fprog prog = { .len = 1, .filter = all };
	return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0 ? -errno : 0;
}

static uint32_t ioctl_len(int fd, unsigned long req, int *err)
{
	int v = 0;
	if (!*err && ioctl(fd, req, &v) < 0)
		*err = -errno;
	return v < 0 ? 0 : (uint32_t)v;
}

int tcprepair_dump(int fd, uint8_t **blob, size_t *len, struct tcprepair_tuple *t)
{
	Pvha__TcpRepairState st = PVHA__TCP_REPAIR_STATE__INIT;
	struct sockaddr_in la, pa;
	socklen_t ll = sizeof(la), pl = sizeof(pa);
	struct tcp_info ti;
	struct tcp_repair_window w;
	int err;

	*blob = NULL;
	*len = 0;
	if (getsockname(fd, (struct sockaddr *)&la, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&pa, &pl) < 0)
		return errno == ENOTCONN || errno == ENOTSOCK ? -EOPNOTSUPP : -errno;
	if (la.sin_family != AF_INET || pa.sin_family != AF_INET)
		return -EOPNOTSUPP;
	/* A frozen socket would still take in and acknowledge what the peer
	 * sends (bytes the dump then misses): a filter that drops every
	 * segment first, so the peer's kernel sends them again later. */
	if ((err = drop_all(fd)))
		return err;
	err = sopt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON);
	if (err)
		return err;
	/* From here nothing leaves the socket and nothing comes in; its state
	 * can be read at leisure. */
	socklen_t il = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &il) < 0)
		return -errno;
	if (ti.tcpi_state != TCP_ESTABLISHED)
		return -EOPNOTSUPP;

	uint32_t outq = ioctl_len(fd, SIOCOUTQ, &err);
	uint32_t unsent = ioctl_len(fd, SIOCOUTQNSD, &err);
	uint32_t inq = ioctl_len(fd, SIOCINQ, &err);
	if (err)
		return err;
	if (outq > TCPREPAIR_QUEUE_MAX || inq > TCPREPAIR_QUEUE_MAX)
		return -EMSGSIZE;
	st.version = TCPREPAIR_VERSION;
	st.local_ip = la.sin_addr.s_addr;
	st.local_port = ntohs(la.sin_port);
	st.peer_ip = pa.sin_addr.s_addr;
	st.peer_port = ntohs(pa.sin_port);
	st.unsent = unsent > outq ? outq : unsent;
	err = read_queue(fd, TCP_SEND_QUEUE, outq, &st.snd_seq, &st.sendq);
	if (!err)
		err = read_queue(fd, TCP_RECV_QUEUE, inq, &st.rcv_seq, &st.recvq);
	if (!err)
		err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if (!err)
		err = gopt(fd, IPPROTO_TCP, TCP_MAXSEG, &st.mss, sizeof(st.mss));
	st.sack = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
	st.timestamps = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
	st.wscale = (ti.tcpi_options & TCPI_OPT_WSCALE) != 0;
	st.snd_wscale = ti.tcpi_snd_wscale;
	st.rcv_wscale = ti.tcpi_rcv_wscale;
	if (!err && st.timestamps)
		err = gopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, &st.ts_val, sizeof(st.ts_val));
	if (!err)
		err = gopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w));
	int sb = 0, rb = 0, nd = 0;
	if (!err)
		err = gopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	if (!err)
		err = gopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	if (!err)
		err = gopt(fd, IPPROTO_TCP, TCP_NODELAY, &nd, sizeof(nd));
	if (err)
		goto out;
	st.snd_wl1 = w.snd_wl1;
	st.snd_wnd = w.snd_wnd;
	st.max_window = w.max_window;
	st.rcv_wnd = w.rcv_wnd;
	st.rcv_wup = w.rcv_wup;
	st.sndbuf = (uint32_t)sb;
	st.rcvbuf = (uint32_t)rb;
	st.nodelay = nd != 0;

	*len = pvha__tcp_repair_state__get_packed_size(&st);
	*blob = malloc(*len ? *len : 1);
	if (!*blob) {
		err = -ENOMEM;
		goto out;
	}
	pvha__tcp_repair_state__pack(&st, *blob);
	*t = (struct tcprepair_tuple){ .local_ip = st.local_ip, .peer_ip = st.peer_ip,
				       .local_port = (uint16_t)st.local_port,
				       .peer_port = (uint16_t)st.peer_port };
out:
	free(st.sendq.data);
	free(st.recvq.data);
	if (err)
		*len = 0;
	return err;
}

int tcprepair_thaw(int fd)
{
	int zero = 0;
	setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)); /* none: fine */
	return sopt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF);
}

static int bad(char *why, size_t wl, const char *what)
{
	snprintf(why, wl, "tcp state: %s", what);
	return -EBADMSG;
}

/* The unpacked, checked state of blob, or NULL with the reason. */
static Pvha__TcpRepairState *unpack_checked(const uint8_t *blob, size_t len, char *why, size_t wl,
					    int *err)
{
	*err = -EBADMSG;
	if (len > TCPREPAIR_BLOB_MAX) {
		bad(why, wl, "larger than allowed");
		return NULL;
	}
	Pvha__TcpRepairState *s = pvha__tcp_repair_state__unpack(NULL, len, blob);
	if (!s) {
		bad(why, wl, "undecodable");
		return NULL;
	}
	const char *what = NULL;
	if (s->version != TCPREPAIR_VERSION)
		what = "of an unknown version";
	else if (s->local_ip == htonl(INADDR_ANY) || s->peer_ip == htonl(INADDR_ANY) ||
		 s->peer_ip == htonl(INADDR_BROADCAST))
		what = "an address that no connection has";
	else if (s->local_port == 0 || s->local_port > 65535 || s->peer_port == 0 ||
		 s->peer_port > 65535)
		what = "a port outside 1..65535";
	else if (s->sendq.len > TCPREPAIR_QUEUE_MAX || s->recvq.len > TCPREPAIR_QUEUE_MAX)
		what = "a queue over the limit";
	else if (s->unsent > s->sendq.len)
		what = "more unsent bytes than the send queue holds";
	else if (s->mss < 64 || s->mss > 65535)
		what = "an MSS outside 64..65535";
	else if (s->wscale && (s->snd_wscale > 14 || s->rcv_wscale > 14))
		what = "a window scale over 14";
	else if (s->sndbuf > (64u << 20) || s->rcvbuf > (64u << 20))
		what = "a socket buffer over 64 MiB";
	if (what) {
		bad(why, wl, what);
		pvha__tcp_repair_state__free_unpacked(s, NULL);
		return NULL;
	}
	*err = 0;
	return s;
}

int tcprepair_check(const uint8_t *blob, size_t len, struct tcprepair_tuple *t, char *why,
		    size_t wl)
{
	int err;
	Pvha__TcpRepairState *s = unpack_checked(blob, len, why, wl, &err);
	if (!s)
		return err;
	*t = (struct tcprepair_tuple){ .local_ip = s->local_ip, .peer_ip = s->peer_ip,
				       .local_port = (uint16_t)s->local_port,
				       .peer_port = (uint16_t)s->peer_port };
	pvha__tcp_repair_state__free_unpacked(s, NULL);
	return 0;
}

/* Writes len bytes into the queue chosen before (or as plain data when
 * repair is off). A full socket buffer is an error: the buffers were sized
 * as the source's, which held the same bytes. */
static int write_queue(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t r = send(fd, p, len > CHUNK ? CHUNK : len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0)
			return errno == EAGAIN ? -ENOBUFS : -errno;
		if (r == 0)
			return -EIO;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

/* One step of the restore: its -errno, named in why when it failed. */
static int step(int err, const char *what, char *why, size_t wl)
{
	if (err)
		snprintf(why, wl, "restoring a connection: %s: %s", what, strerror(-err));
	return err;
}

static int restore_into(int fd, const Pvha__TcpRepairState *s, char *why, size_t wl)
{
	int err;
	/* The kernel doubles what it is given; the source's value is doubled. */
	if (s->sndbuf)
		sopt(fd, SOL_SOCKET, SO_SNDBUF, (int)(s->sndbuf / 2));
	if (s->rcvbuf)
		sopt(fd, SOL_SOCKET, SO_RCVBUF, (int)(s->rcvbuf / 2));
	if ((err = step(sopt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON), "TCP_REPAIR", why, wl)))
		return err;
	/* The guest's address may not be on this host yet (a migration target
	 * gets it once the guest runs): IP_FREEBIND lets it bind, and
	 * IP_TRANSPARENT lets the kernel route from it (without, connect()
	 * fails with ENETUNREACH: the output route wants a local source). */
	sopt(fd, IPPROTO_IP, IP_FREEBIND, 1);
	if ((err = step(sopt(fd, IPPROTO_IP, IP_TRANSPARENT, 1), "IP_TRANSPARENT", why, wl)))
		return err;
	if (s->nodelay)
		sopt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	/* each queue starts where its first byte was */
	err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	if (!err)
		err = sopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(s->snd_seq - (uint32_t)s->sendq.len));
	if (!err)
		err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
	if (!err)
		err = sopt(fd, IPPROTO_TCP, TCP_QUEUE_SEQ, (int)(s->rcv_seq - (uint32_t)s->recvq.len));
	if ((err = step(err, "the sequence numbers", why, wl)))
		return err;

	struct sockaddr_in la = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->local_port),
				  .sin_addr.s_addr = s->local_ip };
	struct sockaddr_in pa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)s->peer_port),
				  .sin_addr.s_addr = s->peer_ip };
	if ((err = step(bind(fd, (struct sockaddr *)&la, sizeof(la)) < 0 ? -errno : 0,
			"binding the guest's address and port", why, wl)))
		return err;
	if ((err = step(connect(fd, (struct sockaddr *)&pa, sizeof(pa)) < 0 ? -errno : 0,
			"connect in repair mode (is the old socket still open on this host?)", why, wl)))
		return err;

	struct tcp_repair_opt opts[4];
	unsigned n = 0;
	opts[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, s->mss };
	if (s->wscale)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, s->snd_wscale | s->rcv_wscale << 16 };
	if (s->timestamps)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (s->sack)
		opts[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	err = setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts, n * sizeof(opts[0])) < 0 ? -errno : 0;
	if (!err && s->timestamps)
		err = sopt(fd, IPPROTO_TCP, TCP_TIMESTAMP, (int)s->ts_val);
	if ((err = step(err, "the TCP options", why, wl)))
		return err;

	size_t sent = s->sendq.len - s->unsent;
	err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
	if (!err)
		err = write_queue(fd, s->recvq.data, s->recvq.len);
	if (!err)
		err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	if (!err)
		err = write_queue(fd, s->sendq.data, sent);
	if (!err)
		err = sopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	if ((err = step(err, "the queues", why, wl)))
		return err;

	struct tcp_repair_window w = { .snd_wl1 = s->snd_wl1, .snd_wnd = s->snd_wnd,
				       .max_window = s->max_window, .rcv_wnd = s->rcv_wnd,
				       .rcv_wup = s->rcv_wup };
	err = setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0 ? -errno : 0;
	return step(err, "the windows", why, wl);
}

/* Lets a built socket go: the filter off, repair off (the kernel sends a
 * window probe, so the peer answers at once with where it is, and what it
 * still misses gets sent again), then the bytes that never left. */
static int go(int fd, const Pvha__TcpRepairState *s, char *why, size_t wl)
{
	int zero = 0, err;
	setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof(zero)); /* none: fine */
	if ((err = step(sopt(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF), "leaving repair mode", why,
			wl)))
		return err;
	if (!s->unsent)
		return 0;
	return step(write_queue(fd, s->sendq.data + (s->sendq.len - s->unsent), s->unsent),
		    "the unsent bytes", why, wl);
}

int tcprepair_restore_held(const uint8_t *blob, size_t len, int *fd, char *why, size_t wl)
{
	int err;
	*fd = -1;
	Pvha__TcpRepairState *s = unpack_checked(blob, len, why, wl, &err);
	if (!s)
		return err;
	int sfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sfd < 0) {
		err = step(-errno, "socket", why, wl);
		goto out;
	}
	err = step(drop_all(sfd), "the drop filter", why, wl);
	if (!err)
		err = restore_into(sfd, s, why, wl);
	if (err)
		close(sfd); /* still in repair mode: closes silently */
	else
		*fd = sfd;
out:
	pvha__tcp_repair_state__free_unpacked(s, NULL);
	return err;
}

int tcprepair_release(int fd, const uint8_t *blob, size_t len, char *why, size_t wl)
{
	int err;
	Pvha__TcpRepairState *s = unpack_checked(blob, len, why, wl, &err);
	if (!s)
		return err;
	err = go(fd, s, why, wl);
	pvha__tcp_repair_state__free_unpacked(s, NULL);
	return err;
}

int tcprepair_restore(const uint8_t *blob, size_t len, int *fd, char *why, size_t wl)
{
	int err = tcprepair_restore_held(blob, len, fd, why, wl);
	if (err)
		return err;
	err = tcprepair_release(*fd, blob, len, why, wl);
	if (err) {
		close(*fd);
		*fd = -1;
	}
	return err;
}
