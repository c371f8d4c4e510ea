/* The VMM's privsep request table (privsep_ops.h). */
#include "privsep_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "netfreeze.h"
#include "tcprepair.h"

#define TUPLE_WIRE 12u /* local ip, peer ip (network order), local port, peer port */
#define WHY_MAX 200u

/* PRIVSEP_OP_CAPS: () -> u64, the helper's effective capabilities (bit N =
 * capability N). What a test or a status check asks to see that the helper
 * holds CAP_NET_ADMIN and nothing else. */
static int op_caps(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	(void)ctx;
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	if (req->len || req->nfds)
		return -EINVAL;
	if (syscall(SYS_capget, &h, d) < 0)
		return -errno;
	uint64_t eff = (uint64_t)d[1].effective << 32 | d[0].effective;
	memcpy(rep->data, &eff, sizeof(eff));
	rep->len = sizeof(eff);
	return 0;
}

/* PRIVSEP_OP_SOCKTYPE: (one fd) -> i32 SO_TYPE, and a copy of the fd back:
 * the channel's fd passing both ways. -ENOTSOCK for another kind of fd. */
static int op_socktype(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	(void)ctx;
	int type;
	socklen_t len = sizeof(type);
	if (req->len || req->nfds != 1)
		return -EINVAL;
	if (getsockopt(req->fds[0], SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	int fd = fcntl(req->fds[0], F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int32_t t = type;
	memcpy(rep->data, &t, sizeof(t));
	rep->len = sizeof(t);
	rep->fds[0] = fd;
	rep->nfds = 1;
	return 0;
}

/* ---- the scope: the guest's own connections only (privsep_scope) ---------- */

static bool tuple_in_scope(const void *ctx, const struct tcprepair_tuple *t)
{
	const struct privsep_scope *sc = ctx;
	return sc && sc->local_ip && t->local_ip == sc->local_ip;
}

/* 0 when the socket's local address is the guest's; -EPERM when it is
 * another (or not IPv4), before anything else touches it. */
static int socket_in_scope(const void *ctx, int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return -errno;
	struct tcprepair_tuple t = { .local_ip = a.sin_addr.s_addr };
	return len == sizeof(a) && a.sin_family == AF_INET && tuple_in_scope(ctx, &t) ? 0 : -EPERM;
}

/* -EPERM (its reason in why) when a connection record is of another local
 * address than the guest's; 0 otherwise, also for a record that does not
 * parse: the call it is for refuses that with its own reason. */
static int blob_in_scope(const void *ctx, const uint8_t *blob, size_t len, char *why, size_t wl)
{
	struct tcprepair_tuple t;
	char sub[WHY_MAX];
	if (tcprepair_check(blob, len, &t, sub, sizeof(sub)) != 0 || tuple_in_scope(ctx, &t))
		return 0;
	snprintf(why, wl, "the connection is of another local address than the guest's");
	return -EPERM;
}

/* ---- the wire forms of the TCP_REPAIR and nft requests --------------------- */

static void put_tuple(uint8_t *p, const struct tcprepair_tuple *t)
{
	memcpy(p, &t->local_ip, 4);
	memcpy(p + 4, &t->peer_ip, 4);
	memcpy(p + 8, &t->local_port, 2);
	memcpy(p + 10, &t->peer_port, 2);
}

static void get_tuple(const uint8_t *p, struct tcprepair_tuple *t)
{
	memcpy(&t->local_ip, p, 4);
	memcpy(&t->peer_ip, p + 4, 4);
	memcpy(&t->local_port, p + 8, 2);
	memcpy(&t->peer_port, p + 10, 2);
}

/* A blob too large for a message: a memfd holding it. It is not sealed:
 * the reader takes its size once (at most TCPREPAIR_BLOB_MAX), reads no
 * more than that and checks what it read as it checks any blob from the
 * other side, so a writer changing it meanwhile gains nothing. */
static int blob_to_memfd(const uint8_t *blob, size_t len)
{
	int fd = (int)syscall(SYS_memfd_create, "pvha-tcprepair", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t w = pwrite(fd, blob + off, len - off, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int err = w < 0 ? -errno : -EIO;
			close(fd);
			return err;
		}
		off += (size_t)w;
	}
	return fd;
}

/* Reads a memfd's blob (at most TCPREPAIR_BLOB_MAX bytes) into *blob
 * (malloc'd). -EMSGSIZE for a larger one. */
static int blob_from_memfd(int fd, uint8_t **blob, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || (uint64_t)st.st_size > TCPREPAIR_BLOB_MAX)
		return -EMSGSIZE;
	size_t n = (size_t)st.st_size, off = 0;
	uint8_t *b = malloc(n);
	if (!b)
		return -ENOMEM;
	while (off < n) {
		ssize_t r = pread(fd, b + off, n - off, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			free(b);
			return r < 0 ? -errno : -EIO;
		}
		off += (size_t)r;
	}
	*blob = b;
	*len = n;
	return 0;
}

/* A reply of a request whose failure has a reason: i32 result, then the
 * reason's text (no NUL). */
static int status_reply(struct privsep_reply *rep, int err, const char *why)
{
	int32_t e = err;
	size_t wl = err ? strnlen(why, WHY_MAX) : 0;
	memcpy(rep->data, &e, sizeof(e));
	memcpy(rep->data + sizeof(e), why, wl);
	rep->len = sizeof(e) + wl;
	return 0;
}

/* The caller's side of status_reply: the result, the reason into why. */
static int status_of(int err, const struct privsep_reply *rep, const char *what, char *why,
		     size_t wl)
{
	if (err) {
		snprintf(why, wl, "%s: the privileged helper: %s", what, strerror(-err));
		return err;
	}
	int32_t e;
	if (rep->len < sizeof(e) || rep->len > sizeof(e) + WHY_MAX || rep->nfds > 1) {
		snprintf(why, wl, "%s: the privileged helper's reply is malformed", what);
		return -EPROTO;
	}
	memcpy(&e, rep->data, sizeof(e));
	if (e > 0 || e < -4095 || (e && rep->nfds)) {
		snprintf(why, wl, "%s: the privileged helper's reply is malformed", what);
		return -EPROTO;
	}
	if (e)
		snprintf(why, wl, "%.*s", (int)(rep->len - sizeof(e)), (const char *)rep->data + sizeof(e));
	return e;
}

/* PRIVSEP_OP_TCP_REPAIR_DUMP: (the socket) -> tuple, then the blob, or the
 * tuple alone and the blob in a memfd when it does not fit. The socket
 * stays frozen whatever the result (tcprepair.h). */
static int op_tcp_dump(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	uint8_t *blob;
	size_t len;
	struct tcprepair_tuple t;
	if (req->len || req->nfds != 1)
		return -EINVAL;
	int err = socket_in_scope(ctx, req->fds[0]);
	if (err)
		return err;
	err = tcprepair_dump(req->fds[0], &blob, &len, &t);
	if (err)
		return err;
	put_tuple(rep->data, &t);
	rep->len = TUPLE_WIRE;
	if (len <= PRIVSEP_MSG_MAX - TUPLE_WIRE) {
		memcpy(rep->data + TUPLE_WIRE, blob, len);
		rep->len += len;
	} else {
		int fd = blob_to_memfd(blob, len);
		if (fd < 0)
			err = fd;
		else
			rep->fds[rep->nfds++] = fd;
	}
	free(blob);
	return err;
}

/* PRIVSEP_OP_TCP_REPAIR_THAW: (the socket) -> (). */
static int op_tcp_thaw(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	(void)rep;
	if (req->len || req->nfds != 1)
		return -EINVAL;
	int err = socket_in_scope(ctx, req->fds[0]);
	return err ? err : tcprepair_thaw(req->fds[0]);
}

/* The blob of a request: its payload, or (an empty payload) the memfd at
 * fds[at]; *big is what to free. */
static int req_blob(const struct privsep_msg *req, unsigned at, const uint8_t **blob, size_t *len,
		    uint8_t **big)
{
	*big = NULL;
	if ((req->len == 0) == (req->nfds == at) || req->nfds > at + 1)
		return -EINVAL;
	*blob = req->data;
	*len = req->len;
	if (req->nfds == at)
		return 0;
	int err = blob_from_memfd(req->fds[at], big, len);
	*blob = *big;
	return err;
}

/* PRIVSEP_OP_TCP_REPAIR_RESTORE_HELD: (the blob, or a memfd holding it) ->
 * status (i32, reason) and the new socket, frozen. The blob is checked
 * here again: it came from the network. */
static int op_tcp_restore_held(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	char why[WHY_MAX] = "";
	const uint8_t *blob;
	uint8_t *big;
	size_t len;
	int fd = -1, err = req_blob(req, 0, &blob, &len, &big);
	if (err)
		return err;
	err = blob_in_scope(ctx, blob, len, why, sizeof(why));
	if (!err)
		err = tcprepair_restore_held(blob, len, &fd, why, sizeof(why));
	free(big);
	if (!err) {
		rep->fds[0] = fd;
		rep->nfds = 1;
	}
	return status_reply(rep, err, why);
}

/* PRIVSEP_OP_TCP_REPAIR_RELEASE: (the frozen socket; the blob, or a memfd
 * as a second fd) -> status. */
static int op_tcp_release(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	char why[WHY_MAX] = "";
	const uint8_t *blob;
	uint8_t *big;
	size_t len;
	if (req->nfds < 1)
		return -EINVAL;
	int err = socket_in_scope(ctx, req->fds[0]);
	if (err)
		return err;
	err = req_blob(req, 1, &blob, &len, &big);
	if (err)
		return err;
	err = blob_in_scope(ctx, blob, len, why, sizeof(why));
	if (!err)
		err = tcprepair_release(req->fds[0], blob, len, why, sizeof(why));
	free(big);
	return status_reply(rep, err, why);
}

/* The tuples of an nft request: n x TUPLE_WIRE bytes, 1..256 of them (none
 * for a release). */
static int get_tuples(const struct privsep_msg *req, struct tcprepair_tuple *t, unsigned *n)
{
	if (req->nfds || req->len % TUPLE_WIRE || req->len / TUPLE_WIRE > PRIVSEP_NFT_TUPLES_MAX)
		return -EINVAL;
	*n = (unsigned)(req->len / TUPLE_WIRE);
	for (unsigned i = 0; i < *n; i++)
		get_tuple(req->data + i * TUPLE_WIRE, &t[i]);
	return 0;
}

/* PRIVSEP_OP_NFT_SETUP: () -> status. */
static int op_nft_setup(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	(void)ctx;
	char why[WHY_MAX] = "";
	if (req->len || req->nfds)
		return -EINVAL;
	return status_reply(rep, netfreeze_setup(why, sizeof(why)), why);
}

/* PRIVSEP_OP_NFT_HOLD / _RELEASE: (tuples) -> status, once nft has run. */
static int op_nft_change(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep,
			 bool hold)
{
	struct tcprepair_tuple t[PRIVSEP_NFT_TUPLES_MAX];
	char why[WHY_MAX] = "";
	unsigned n;
	int err = get_tuples(req, t, &n);
	if (err)
		return err;
	for (unsigned i = 0; i < n; i++)
		if (!tuple_in_scope(ctx, &t[i]))
			return status_reply(rep, -EPERM, "a connection of another local address than the guest's");
	err = hold ? netfreeze_hold(NULL, t, n, why, sizeof(why))
		   : netfreeze_release(NULL, t, n, why, sizeof(why));
	return status_reply(rep, err, why);
}

static int op_nft_hold(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	return op_nft_change(ctx, req, rep, true);
}

static int op_nft_release(const void *ctx, const struct privsep_msg *req, struct privsep_reply *rep)
{
	return op_nft_change(ctx, req, rep, false);
}

const struct privsep_op privsep_vmm_ops[] = {
	{ PRIVSEP_OP_CAPS, "caps", op_caps },
	{ PRIVSEP_OP_SOCKTYPE, "socktype", op_socktype },
	{ PRIVSEP_OP_TCP_REPAIR_DUMP, "tcp_repair_dump", op_tcp_dump },
	{ PRIVSEP_OP_TCP_REPAIR_RESTORE_HELD, "tcp_repair_restore_held", op_tcp_restore_held },
	{ PRIVSEP_OP_TCP_REPAIR_THAW, "tcp_repair_thaw", op_tcp_thaw },
	{ PRIVSEP_OP_TCP_REPAIR_RELEASE, "tcp_repair_release", op_tcp_release },
};
const size_t privsep_vmm_nops = sizeof(privsep_vmm_ops) / sizeof(privsep_vmm_ops[0]);

const struct privsep_op privsep_nft_ops[] = {
	{ PRIVSEP_OP_CAPS, "caps", op_caps },
	{ PRIVSEP_OP_NFT_SETUP, "nft_setup", op_nft_setup },
	{ PRIVSEP_OP_NFT_HOLD, "nft_hold", op_nft_hold },
	{ PRIVSEP_OP_NFT_RELEASE, "nft_release", op_nft_release },
};
const size_t privsep_nft_nops = sizeof(privsep_nft_ops) / sizeof(privsep_nft_ops[0]);

/* ---- the VMM's side ----------------------------------------------------------- */

/* Frees a reply and closes the fds it still holds. */
static void reply_free(struct privsep_reply *rep)
{
	for (unsigned i = 0; i < rep->nfds; i++)
		close(rep->fds[i]);
	free(rep);
}

int privsep_tcprepair_dump(struct privsep *ps, int fd, uint8_t **blob, size_t *len,
			   struct tcprepair_tuple *t)
{
	struct privsep_reply *rep = malloc(sizeof(*rep));
	if (!rep)
		return -ENOMEM;
	struct privsep_msg req = { .fds = &fd, .nfds = 1 };
	int err = privsep_call(ps, PRIVSEP_OP_TCP_REPAIR_DUMP, &req, rep);
	if (!err && (rep->len < TUPLE_WIRE || rep->nfds > 1 ||
		     (rep->nfds == 1) != (rep->len == TUPLE_WIRE)))
		err = -EPROTO;
	if (!err) {
		get_tuple(rep->data, t);
		if (rep->nfds)
			err = blob_from_memfd(rep->fds[0], blob, len);
		else if (!(*blob = malloc(rep->len - TUPLE_WIRE)))
			err = -ENOMEM;
		else {
			*len = rep->len - TUPLE_WIRE;
			memcpy(*blob, rep->data + TUPLE_WIRE, *len);
		}
	}
	reply_free(rep);
	return err;
}

int privsep_tcprepair_thaw(struct privsep *ps, int fd)
{
	struct privsep_reply *rep = malloc(sizeof(*rep));
	if (!rep)
		return -ENOMEM;
	struct privsep_msg req = { .fds = &fd, .nfds = 1 };
	int err = privsep_call(ps, PRIVSEP_OP_TCP_REPAIR_THAW, &req, rep);
	reply_free(rep);
	return err;
}

/* Sends op with fd (when >= 0) and the blob, in the message or in a memfd;
 * the status reply's socket, if any, into *out (when not NULL). */
static int blob_call(struct privsep *ps, uint32_t op, int fd, const uint8_t *blob, size_t len,
		     int *out, const char *what, char *why, size_t wl)
{
	if (len == 0 || len > TCPREPAIR_BLOB_MAX) {
		snprintf(why, wl, "%s: a tcp state of %zu bytes", what, len);
		return -EBADMSG;
	}
	struct privsep_reply *rep = malloc(sizeof(*rep));
	if (!rep)
		return -ENOMEM;
	int fds[2] = { fd, -1 }, mfd = -1, err = 0;
	unsigned nfds = fd >= 0 ? 1 : 0;
	struct privsep_msg req = { .data = blob, .len = len, .fds = fds, .nfds = nfds };
	if (len > PRIVSEP_MSG_MAX) {
		if ((mfd = blob_to_memfd(blob, len)) < 0) {
			err = mfd;
			snprintf(why, wl, "%s: memfd: %s", what, strerror(-err));
		}
		fds[nfds] = mfd;
		req = (struct privsep_msg){ .fds = fds, .nfds = nfds + 1 };
	}
	if (!err)
		err = status_of(privsep_call(ps, op, &req, rep), rep, what, why, wl);
	if (!err && out && rep->nfds != 1) {
		snprintf(why, wl, "%s: the privileged helper sent no socket", what);
		err = -EPROTO;
	}
	if (!err && out) {
		*out = rep->fds[0];
		rep->nfds = 0;
	}
	if (mfd >= 0)
		close(mfd);
	reply_free(rep);
	return err;
}

int privsep_tcprepair_restore_held(struct privsep *ps, const uint8_t *blob, size_t len, int *fd,
				   char *why, size_t wl)
{
	return blob_call(ps, PRIVSEP_OP_TCP_REPAIR_RESTORE_HELD, -1, blob, len, fd, "restore", why, wl);
}

int privsep_tcprepair_release(struct privsep *ps, int fd, const uint8_t *blob, size_t len,
			      char *why, size_t wl)
{
	return blob_call(ps, PRIVSEP_OP_TCP_REPAIR_RELEASE, fd, blob, len, NULL, "release", why, wl);
}

int privsep_netfreeze_setup(struct privsep *ps, char *why, size_t wl)
{
	struct privsep_reply *rep = malloc(sizeof(*rep));
	if (!rep)
		return -ENOMEM;
	int err = status_of(privsep_call(ps, PRIVSEP_OP_NFT_SETUP, NULL, rep), rep, "nft", why, wl);
	reply_free(rep);
	return err;
}

static int nft_change(struct privsep *ps, uint32_t op, const struct tcprepair_tuple *t, unsigned n,
		      char *why, size_t wl)
{
	uint8_t data[PRIVSEP_NFT_TUPLES_MAX * TUPLE_WIRE];
	if (n > PRIVSEP_NFT_TUPLES_MAX)
		return -EINVAL;
	struct privsep_reply *rep = malloc(sizeof(*rep));
	if (!rep)
		return -ENOMEM;
	for (unsigned i = 0; i < n; i++)
		put_tuple(data + i * TUPLE_WIRE, &t[i]);
	struct privsep_msg req = { .data = data, .len = n * TUPLE_WIRE };
	int err = status_of(privsep_call(ps, op, &req, rep), rep, "nft", why, wl);
	reply_free(rep);
	return err;
}

int privsep_netfreeze_hold(struct privsep *ps, const struct tcprepair_tuple *t, unsigned n,
			   char *why, size_t wl)
{
	return nft_change(ps, PRIVSEP_OP_NFT_HOLD, t, n, why, wl);
}

int privsep_netfreeze_release(struct privsep *ps, const struct tcprepair_tuple *t, unsigned n,
			      char *why, size_t wl)
{
	return nft_change(ps, PRIVSEP_OP_NFT_RELEASE, t, n, why, wl);
}
