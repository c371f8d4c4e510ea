/*
 * Moving an established IPv4 TCP connection from one socket to another, on
 * this host or another, with Linux TCP_REPAIR (as CRIU's soccr does): the
 * source socket is frozen and read into a blob (a packed TcpRepairState,
 * proto/migrate.proto), and a new socket is built from the blob without a
 * packet on the wire, then let go. Used by live migration
 * (docs/migration.md, "Connections").
 *
 * Everything here is fd in, blob out (or blob in, fd out), with no state
 * between calls, so that it can run in a privileged helper process that
 * holds CAP_NET_ADMIN (TCP_REPAIR needs it) and passes descriptors over a
 * socketpair. Thread-safe; blocking only as long as a few setsockopt calls.
 *
 * Limits: an established connection only (a half-closed one, either way, is
 * refused with -EOPNOTSUPP and the caller resets it), IPv4, each queue at
 * most TCPREPAIR_QUEUE_MAX bytes. No urgent data, no TCP-MD5/AO.
 */
#ifndef PVHA_TCPREPAIR_H
#define PVHA_TCPREPAIR_H

#include <stddef.h>
#include <stdint.h>

#define TCPREPAIR_VERSION 1u
#define TCPREPAIR_QUEUE_MAX (1u << 20)          /* bytes per queue */
#define TCPREPAIR_BLOB_MAX (2u * TCPREPAIR_QUEUE_MAX + 512u)

/* The four addresses of a connection, network order. */
struct tcprepair_tuple {
	uint32_t local_ip, peer_ip;
	uint16_t local_port, peer_port;
};

/* Freezes fd (a socket filter that drops every incoming segment, so that
 * the peer's bytes are neither taken in nor acknowledged but sent again by
 * the peer later; then TCP_REPAIR on: the kernel sends nothing more on it,
 * and a close sends neither FIN nor RST) and reads everything needed to
 * build the connection again into *blob (malloc'd, *len bytes; free() it)
 * and *t. fd stays frozen whatever the result: close it once the connection
 * lives elsewhere, or tcprepair_thaw() it to go on here. Once it is closed,
 * the host would answer the peer with a reset: a caller that closes it
 * before the new socket exists holds the peer's packets back itself
 * (netfreeze.h).
 * Returns 0, -EOPNOTSUPP (not an established IPv4 TCP connection),
 * -EMSGSIZE (a queue over TCPREPAIR_QUEUE_MAX), -EPERM (no CAP_NET_ADMIN),
 * -ENOMEM or another -errno from the kernel. */
int tcprepair_dump(int fd, uint8_t **blob, size_t *len, struct tcprepair_tuple *t);

/* Lets a frozen socket run again here (the filter off, TCP_REPAIR off, which
 * sends a window probe). Returns 0 or -errno. */
int tcprepair_thaw(int fd);

/* Checks a blob as it came from the network, touching nothing: the
 * version, addresses, ports, queue sizes, options in the ranges the kernel
 * takes. Returns 0 and *t, or -EBADMSG with the reason in why. Pure. */
int tcprepair_check(const uint8_t *blob, size_t len, struct tcprepair_tuple *t, char *why,
		    size_t wl);

/* Builds the connection of blob (checked as tcprepair_check does) as a new
 * non-blocking, close-on-exec socket bound to its local address (with
 * IP_FREEBIND and IP_TRANSPARENT: the address need not be on this host
 * yet) and lets it run
 * (TCP_REPAIR off). No other socket on this host may hold the same four
 * addresses (the source must have closed its frozen one). Returns 0 and
 * *fd, -EBADMSG (bad blob), or -errno with the step in why. */
int tcprepair_restore(const uint8_t *blob, size_t len, int *fd, char *why, size_t wl);

/* tcprepair_restore() in two steps, for a caller that must do something
 * between the build and the first segment (a migration target: put the
 * guest's address on this host first). tcprepair_restore_held() builds the
 * socket and leaves it frozen: TCP_REPAIR on, so that it sends nothing, and
 * a filter that drops every incoming segment; returns as tcprepair_restore.
 * tcprepair_release() lets it go (the filter off, repair off: the window
 * probe leaves) and writes the bytes that never left the source; blob is
 * the one it was built from. Returns 0, -EBADMSG or -errno with the step in
 * why; on failure the caller closes fd (the connection is lost). */
int tcprepair_restore_held(const uint8_t *blob, size_t len, int *fd, char *why, size_t wl);
int tcprepair_release(int fd, const uint8_t *blob, size_t len, char *why, size_t wl);

#endif /* PVHA_TCPREPAIR_H */
