/*
 * The VMM's privsep request tables: what its two privileged processes
 * (privsep.h) may be asked to do, and the VMM's side of each request (the
 * same signatures as node/lib/tcprepair.h and netfreeze.h, with the channel
 * first). One row per request; handlers run in the helper or, with the
 * sandbox off, in the VMM itself.
 *
 *   privsep_vmm_ops: the helper "pvha-vmm-privsep" (CAP_NET_ADMIN, its
 *     own seccomp filter): TCP_REPAIR (dump, thaw, restore held, release).
 *   privsep_nft_ops: the nft runner "pvha-vmm-nft" (CAP_NET_ADMIN as an
 *     ambient capability, no seccomp filter: nft(8) runs under it): the
 *     connections' packet hold (netfreeze.h), synchronous (the request
 *     returns once nft has run).
 */
#ifndef PVHA_PRIVSEP_OPS_H
#define PVHA_PRIVSEP_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "privsep.h"
#include "tcprepair.h"

#define PRIVSEP_NFT_TUPLES_MAX 256u /* connections per hold or release */

/* The ctx of both tables' channels: what the VMM's privileged processes may
 * touch, fixed when they start (the VMM's --address, before it gives up
 * anything). A socket to dump or thaw, a record to restore or release and a
 * tuple to hold or release must have the guest's own address as their
 * local one; anything else is refused with -EPERM, so that a VMM taken over
 * cannot freeze, hold or forge a host connection that is not its guest's.
 * local_ip 0 (a guest without an address): every such request is refused. */
struct privsep_scope {
	uint32_t local_ip; /* network order */
};

extern const struct privsep_op privsep_vmm_ops[];
extern const size_t privsep_vmm_nops;
extern const struct privsep_op privsep_nft_ops[];
extern const size_t privsep_nft_nops;

/* tcprepair_dump/thaw/restore_held/release (tcprepair.h), by the helper
 * on ps: an fd is lent for the call (the helper works on the same socket).
 * A blob over a message travels in a memfd, both ways. Results as there;
 * -EPIPE/-EPROTO from the channel. */
int privsep_tcprepair_dump(struct privsep *ps, int fd, uint8_t **blob, size_t *len,
			   struct tcprepair_tuple *t);
int privsep_tcprepair_thaw(struct privsep *ps, int fd);
int privsep_tcprepair_restore_held(struct privsep *ps, const uint8_t *blob, size_t len, int *fd,
				   char *why, size_t wl);
int privsep_tcprepair_release(struct privsep *ps, int fd, const uint8_t *blob, size_t len,
			      char *why, size_t wl);

/* netfreeze_setup/hold/release (netfreeze.h), each one nft run by the nft
 * runner on ps, waited for (n at most PRIVSEP_NFT_TUPLES_MAX). Results as
 * there, the reason in why. */
int privsep_netfreeze_setup(struct privsep *ps, char *why, size_t wl);
int privsep_netfreeze_hold(struct privsep *ps, const struct tcprepair_tuple *t, unsigned n,
			   char *why, size_t wl);
int privsep_netfreeze_release(struct privsep *ps, const struct tcprepair_tuple *t, unsigned n,
			      char *why, size_t wl);

#endif /* PVHA_PRIVSEP_OPS_H */
