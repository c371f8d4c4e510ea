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

/* One nft(8) run started ahead of its script: starting nft costs about
 * 10 ms, the script it then reads about 1 ms, and the script is what runs
 * while the guest is paused. */
struct netfreeze;

/* Makes the table, the set and the one drop rule (flushed and added in one
 * transaction, whoever made them before): before the pause, about 20 ms.
 * Returns 0 or -EIO with the reason in why (nft missing or refusing). */
int netfreeze_setup(char *why, size_t wl);

/* Starts an nft run that waits for its script. Returns 0 and *out, or -EIO
 * with why. */
int netfreeze_start(struct netfreeze **out, char *why, size_t wl);

/* Ends a run unused (nothing changes). NULL is fine. */
void netfreeze_abandon(struct netfreeze *f);

/* Starts dropping what the peers of the n connections t send them (n 1 to
 * 256), after netfreeze_setup, in one transaction run by f (ended and freed
 * whatever the result; NULL: a run is started now). Returns 0, -EINVAL, or
 * -EIO with why. */
int netfreeze_hold(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n, char *why,
		   size_t wl);

/* Stops dropping them (n 0 to 256), by f as above: entries that are not there (expired,
 * or held on another host) are fine, and so is a host where the table was
 * never made. Returns 0, -EINVAL, or -EIO with why. */
int netfreeze_release(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n, char *why,
		      size_t wl);

#endif /* PVHA_NETFREEZE_H */
