/*
 * Client side of a pvha-vmm control socket (proto/vmm.proto): used by `pvha
 * vmm`, by pvhad's guest supervision and by the tests. Blocking calls with a
 * receive timeout, one request and one reply at a time.
 */
#ifndef PVHA_VMMCTL_H
#define PVHA_VMMCTL_H

#include <stddef.h>
#include <sys/types.h>

#include "proto/vmm.pb-c.h"

/* Connects to the unix socket at path; replies must come within timeout_ms.
 * Returns 0 and *fd, or -errno. */
int vmmctl_connect(const char *path, int timeout_ms, int *fd);

/* Sends one request (path only for SAVE) and reads the reply. Returns 0 and
 * *reply (free with pvha__vmm_reply__free_unpacked(*reply, NULL)) — the reply's
 * own error field says whether the VMM did it — or -errno when the exchange
 * itself failed. */
int vmmctl_call(int fd, Pvha__VmmRequest__Op op, const char *path, Pvha__VmmReply **reply);

/* Asks the VMM to live-migrate its guest to a pvha-vmm listening with
 * --incoming at host:port (downtime_ms, max_rounds: 0 = the VMM's defaults).
 * The reply comes at once; the migration goes on in the VMM, and its
 * progress is in the migration_* fields of later STATUS replies. Returns as
 * vmmctl_call. */
int vmmctl_migrate(int fd, const char *host, uint32_t port, uint32_t downtime_ms,
		   uint32_t max_rounds, Pvha__VmmReply **reply);

/* Whether the process at the other end of fd (SO_PEERCRED: the one that
 * listened on the socket) is a VMM to trust: its uid must be uid (the
 * agent's own: root in production) and its pid the one its STATUS reply
 * reported (reported). Returns 0 and *pid, or -EPERM (or the -errno of
 * getsockopt) with the reason in why. */
int vmmctl_peer_check(int fd, uid_t uid, pid_t reported, pid_t *pid, char *why, size_t whylen);

/* The same with the per-migration secret (16..256 bytes) the target was
 * given with --migrate-key-file: the link is then authenticated frame by
 * frame (docs/migration.md). key NULL: as vmmctl_migrate, which a keyed
 * target refuses. The key crosses only the owner-only control socket. */
int vmmctl_migrate_keyed(int fd, const char *host, uint32_t port, uint32_t downtime_ms,
			 uint32_t max_rounds, const uint8_t *key, size_t key_len,
			 Pvha__VmmReply **reply);

/* Parses "status", "pause", "resume", "save", "stop". Returns 0 or -EINVAL. */
int vmmctl_op_parse(const char *s, Pvha__VmmRequest__Op *op);

#endif /* PVHA_VMMCTL_H */
