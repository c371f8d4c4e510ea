/* See vmmctl.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "pvproto/frame.h"
#include "vmmctl.h"

#define REPLY_MAX (64u * 1024u)

int vmmctl_connect(const char *path, int timeout_ms, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;
		close(s);
		return err;
	}
	*fd = s;
	return 0;
}

int vmmctl_peer_check(int fd, uid_t uid, pid_t reported, pid_t *pid, char *why, size_t whylen)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		int err = -errno;
		snprintf(why, whylen, "cannot read its peer's credentials: %s", strerror(errno));
		return err;
	}
	if (cr.uid != uid) {
		snprintf(why, whylen, "its process %d runs as uid %u, not %u", (int)cr.pid, (unsigned)cr.uid,
			 (unsigned)uid);
		return -EPERM;
	}
	if (cr.pid <= 0 || cr.pid != reported) {
		snprintf(why, whylen, "it says pid %d, but its process is %d", (int)reported, (int)cr.pid);
		return -EPERM;
	}
	*pid = cr.pid;
	return 0;
}

/* One request out, one reply back. */
static int exchange(int fd, Pvha__VmmRequest *req, Pvha__VmmReply **reply)
{
	ProtobufCMessage *msg;
	int err = pvproto_frame_write(fd, &req->base);
	if (err)
		return err;
	err = pvproto_frame_read(fd, &pvha__vmm_reply__descriptor, REPLY_MAX, &msg);
	if (err == -EAGAIN)
		return -ETIMEDOUT;
	if (err == -ENODATA)
		return -ECONNRESET;
	if (err)
		return err;
	*reply = (Pvha__VmmReply *)msg;
	return 0;
}

int vmmctl_call(int fd, Pvha__VmmRequest__Op op, const char *path, Pvha__VmmReply **reply)
{
	Pvha__VmmRequest req = PVHA__VMM_REQUEST__INIT;
	req.version = 1;
	req.op = op;
	req.path = (char *)(path ? path : "");
	return exchange(fd, &req, reply);
}

int vmmctl_migrate(int fd, const char *host, uint32_t port, uint32_t downtime_ms,
		   uint32_t max_rounds, Pvha__VmmReply **reply)
{
	return vmmctl_migrate_keyed(fd, host, port, downtime_ms, max_rounds, NULL, 0, reply);
}

int vmmctl_migrate_keyed(int fd, const char *host, uint32_t port, uint32_t downtime_ms,
			 uint32_t max_rounds, const uint8_t *key, size_t key_len,
			 Pvha__VmmReply **reply)
{
	Pvha__VmmRequest req = PVHA__VMM_REQUEST__INIT;
	req.migrate_key.data = (uint8_t *)key;
	req.migrate_key.len = key ? key_len : 0;
	req.version = 1;
	req.op = PVHA__VMM_REQUEST__OP__MIGRATE;
	req.migrate_host = (char *)(host ? host : "");
	req.migrate_port = port;
	req.migrate_downtime_ms = downtime_ms;
	req.migrate_max_rounds = max_rounds;
	return exchange(fd, &req, reply);
}

int vmmctl_op_parse(const char *s, Pvha__VmmRequest__Op *op)
{
	static const struct { const char *name; Pvha__VmmRequest__Op op; } ops[] = {
		{ "status", PVHA__VMM_REQUEST__OP__STATUS }, { "pause", PVHA__VMM_REQUEST__OP__PAUSE },
		{ "resume", PVHA__VMM_REQUEST__OP__RESUME }, { "save", PVHA__VMM_REQUEST__OP__SAVE },
		{ "stop", PVHA__VMM_REQUEST__OP__STOP },
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(s, ops[i].name) == 0) {
			*op = ops[i].op;
			return 0;
		}
	}
	return -EINVAL;
}
