/* The VMM's privsep request table (privsep_ops.h). */
#include "privsep_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* PRIVSEP_OP_CAPS: () -> u64, the helper's effective capabilities (bit N =
 * capability N). What a test or a status check asks to see that the helper
 * holds CAP_NET_ADMIN and nothing else. */
static int op_caps(const struct privsep_msg *req, struct privsep_reply *rep)
{
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
static int op_socktype(const struct privsep_msg *req, struct privsep_reply *rep)
{
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

const struct privsep_op privsep_vmm_ops[] = {
	{ PRIVSEP_OP_CAPS, "caps", op_caps },
	{ PRIVSEP_OP_SOCKTYPE, "socktype", op_socktype },
	/* { PRIVSEP_OP_TCP_REPAIR_DUMP, "tcp_repair_dump", ... },     node/lib/tcprepair.h */
	/* { PRIVSEP_OP_TCP_REPAIR_RESTORE, "tcp_repair_restore", ... }, node/lib/tcprepair.h */
};
const size_t privsep_vmm_nops = sizeof(privsep_vmm_ops) / sizeof(privsep_vmm_ops[0]);
