/*
 * Holding back the packets of TCP connections while they move to another
 * socket (live migration, docs/migration.md "Connections"): once the old
 * socket is closed the host would answer the peer with a reset; a packet
 * dropped instead is sent again by the peer, and reaches the rebuilt socket.
 *
 * The drop is an nftables set of (peer address, peer port, local address,
 * local port) in this network namespace's table `ip pvha_freeze`, matched
 * on the input hook, where a packet that belongs to an IP_TRANSPARENT
 * socket (a rebuilt one, tcprepair.h) is let through first: so on one
 * host the rebuilt socket gets its packets without anyone lifting the
 * entries. Each entry has a timeout, so that nothing stays for long. Runs nft(8) (Debian's
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

/* Makes the table, the set and the rules (flushed and added in one
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

/* Like netfreeze_hold, but returns once nft has its script (f must not be
 * NULL): nft applies it meanwhile; netfreeze_wait() says how it went. On
 * an error (-EINVAL) f is ended and freed. */
int netfreeze_hold_begin(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n,
			 char *why, size_t wl);

/* Waits for f's run to end (giving it an empty script if it had none) and
 * frees f. Returns 0 or -EIO with why. */
int netfreeze_wait(struct netfreeze *f, char *why, size_t wl);

/* Stops dropping them (n 0 to 256), by f as above: entries that are not there (expired,
 * or held on another host) are fine, and so is a host where the table was
 * never made. Returns 0, -EINVAL, or -EIO with why. */
int netfreeze_release(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n, char *why,
		      size_t wl);

#endif /* PVHA_NETFREEZE_H */
