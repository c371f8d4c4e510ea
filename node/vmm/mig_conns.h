/*
 * The guest's established TCP connections in a live migration
 * (docs/migration.md "Connections"): the one place the VMM calls
 * tcprepair and netfreeze, so that a privileged helper can take these calls
 * over. Used by the migration threads of vmm_migrate.c, each on its own
 * object, while the machine (and its net) is theirs: the source's after the
 * pause, the target's before it hands the machine over.
 *
 * Source: mig_conns_send() freezes and dumps each connection (a frozen
 * socket drops what comes in), starts holding their packets back on this
 * host (nftables, applied while the frames go), sends a MigrateConn frame
 * per connection and an end frame; mig_conns_handover() waits for the hold
 * before the guest's sockets are closed (a frozen one closes silently);
 * the held packets stay dropped here until the entries time out, except
 * for a rebuilt socket on this host, which gets them. If the migration
 * fails before the hand-over, mig_conns_unfreeze() lets them run here
 * again. Target: mig_conns_read() reads and checks the frames before
 * READY; after RELEASED, before the guest runs, mig_conns_build() builds
 * the sockets frozen, mig_conns_await_address() waits for the guest's
 * address on this host, and mig_conns_restore() lets them go and gives them
 * to their handles.
 */
#ifndef PVHA_MIG_CONNS_H
#define PVHA_MIG_CONNS_H

#include <stddef.h>
#include <stdint.h>

#include "pvhv/hv.h"
#include "pvproto/link.h"

struct mig_conns;

/* Returns NULL when out of memory. */
struct mig_conns *mig_conns_create(void);
void mig_conns_destroy(struct mig_conns *c);

/* Source, guest still running, before the pause: when the guest has an
 * address (net not NULL), makes the drop rule and starts the nft run that will hold them, so that
 * the pause pays only for the hold itself. */
void mig_conns_prepare(struct mig_conns *c, struct hv_net *net);

/* Source, guest paused: sends the connections of net (NULL: none) over l,
 * version ver. A connection that cannot be carried (not established, no
 * CAP_NET_ADMIN, the hold refused) stays here as it was and is reset at the
 * target, as after a restore from a file; note says so (empty when all
 * went). Returns 0, or a link error. */
int mig_conns_send(struct mig_conns *c, struct hv_net *net, struct pvproto_link *l, uint32_t ver,
		   char *note, size_t nl);

/* Source, the owner lock let go, before the guest's sockets are closed:
 * waits until the hold is in place; note says when it failed. */
void mig_conns_handover(struct mig_conns *c, char *note, size_t nl);

/* Source, the migration failed before the hand-over: the frozen
 * connections run here again. */
void mig_conns_unfreeze(struct mig_conns *c);

/* Target: reads the frames up to the end one and checks each (version ver,
 * a handle net holds as a reset connection, none twice, the tcp state, the
 * guest's own address). Returns 0, a link error, or -EBADMSG with why. */
int mig_conns_read(struct mig_conns *c, struct hv_net *net, struct pvproto_link *l, uint32_t ver,
		   char *why, size_t wl);

/* Target, the source has let the guest go: builds each connection, frozen
 * (it sends nothing and drops what comes in) until mig_conns_restore().
 * Returns how many are built. */
unsigned mig_conns_build(struct mig_conns *c);

/* Target, between the two: waits (polling every ms) until the guest's
 * address (of net, not NULL) is on this host, so that the peers' answers
 * to the window probes come here; at most ms. Returns 0, -ETIMEDOUT or
 * -errno. */
int mig_conns_await_address(struct hv_net *net, unsigned ms);

/* Target, the source has let the guest go: lets each connection go (built
 * first when mig_conns_build was not called) and gives it to its handle;
 * one that fails stays reset (note says which). Returns how many were
 * restored. */
unsigned mig_conns_restore(struct mig_conns *c, struct hv_net *net, char *note, size_t nl);

#endif /* PVHA_MIG_CONNS_H */
