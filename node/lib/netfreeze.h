/*
 * Holding back the packets of TCP connections while they move to another
 * socket (live migration, docs/migration.md "Connections"): a socket frozen
 * with TCP_REPAIR still takes in and acknowledges what the peer sends (that
 * would be lost with it), and once it is closed the host answers the peer
 * with a reset; a packet dropped instead is sent again by the peer, and
 * reaches the rebuilt socket.
 *
 * The drop is an nftables set of (peer address, peer port, local address,
 * local port) in this network namespace's table `ip pvha_freeze`, matched
 * on the input hook; each entry has a timeout, so that a process that dies
 * holding one leaves nothing behind for long. Runs nft(8) (Debian's
 * nftables); needs CAP_NET_ADMIN, like TCP_REPAIR itself. Blocking: one nft
 * run, a few milliseconds. Thread-safe.
 */
#ifndef PVHA_NETFREEZE_H
#define PVHA_NETFREEZE_H

#include <stddef.h>

#include "tcprepair.h"

/* How long an entry drops a connection's packets unless released first. */
#define NETFREEZE_TIMEOUT_S 30u

/* Starts dropping what the peers of the n connections t send them (n at
 * most 256), in one nftables transaction. Returns 0, -EINVAL (n is 0 or too
 * large), or -EIO with the reason in why (nft missing or refusing). */
int netfreeze_hold(const struct tcprepair_tuple *t, unsigned n, char *why, size_t wl);

/* Stops dropping them: entries that are not there (expired, or held on
 * another host) are fine. Returns 0 or -EIO with the reason. */
int netfreeze_release(const struct tcprepair_tuple *t, unsigned n, char *why, size_t wl);

#endif /* PVHA_NETFREEZE_H */
