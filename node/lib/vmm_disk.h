/*
 * pvha-vmm's disk wiring: turns a --disk spec into a struct hv_disk of the
 * right backend — file (hv-core) or rados (libpvstore, wrapped here).
 *
 * The rados backend: writes are started asynchronously from a copy of the
 * guest's buffer and return at once (ABI v1 promises durability only at
 * flush); flush waits until RADOS acknowledged every write; a read first waits
 * for writes in flight, so it always sees them. At most RADOS_INFLIGHT_MAX
 * bytes are in flight. A write that failed makes the next read, write or
 * flush fail; -ESHUTDOWN (this host was blocklisted) stays for good, and
 * hv-core stops the guest as "fenced" on it.
 */
#ifndef PVHA_VMM_DISK_H
#define PVHA_VMM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvhv/hv.h"

struct vmm_disk_opts {
	const char *ceph_conf;   /* rados: ceph.conf (NULL: /etc/ceph/ceph.conf) */
	const char *ceph_client; /* rados: client name (NULL: client.admin) */
	const char *ceph_key;    /* rados: ceph_client's secret (NULL: from the conf's keyring) */
	unsigned timeout_s;      /* rados: mount and OSD op timeout (0: 10 s) */
};

/* Opens the disk a spec names. Returns 0 and *out, or -errno with a one-line
 * reason in why (-EINVAL: the spec itself is wrong). A rados spec names the
 * guest by uuid or by its registry name; with size= a missing disk is created. */
int vmm_disk_open(const char *spec, const struct vmm_disk_opts *opts, struct hv_disk **out,
		  char *why, size_t whylen);

/* Opens a lock-only handle on guest GUEST's record for a guest that has no
 * disk (spec "rados:POOL/GUEST", uuid or name): the vmm_disk_lock family and
 * vmm_disk_client_addr work on it, its read and write fail with -ENODEV; it
 * is never given to hv-core. So a diskless guest holds its owner lock too.
 * Returns 0 and *out (close with hv_disk_close), or -errno with why. */
int vmm_disk_open_owner(const char *spec, const struct vmm_disk_opts *opts, struct hv_disk **out, char *why,
			size_t whylen);

/* The storage client address of a rados disk ("IP:0/NONCE": blocklisting it
 * fences this VMM alone). Returns 0, or -ENOTSUP for a disk of another kind. */
int vmm_disk_client_addr(struct hv_disk *d, char *buf, size_t len);

/* Takes the exclusive owner lock of the guest whose rados disk d is (cookie =
 * the node's incarnation), with this VMM's own storage client: the lock lives
 * exactly as long as the process that writes the disk. Returns 0, -EBUSY
 * (another holder; why names it), -ENOTSUP (not a rados disk) or -errno. */
int vmm_disk_lock(struct hv_disk *d, const char *cookie, char *why, size_t whylen);

/* Releases the lock vmm_disk_lock took (nothing if none). */
void vmm_disk_unlock(struct hv_disk *d);

/* The same, saying whether it worked: 0 (released, or nothing was held) or
 * -errno with a one-line reason in why (which may be NULL). After an error the
 * lock may or may not be held still: take it again to know. One RADOS round
 * trip. */
int vmm_disk_release(struct hv_disk *d, char *why, size_t whylen);

/* True while vmm_disk_lock's lock is held (as far as this process knows). */
bool vmm_disk_locked(const struct hv_disk *d);

/* The uuid of the guest whose rados disk d is. 0, or -ENOTSUP for a disk of
 * another kind (a file disk names no guest). */
int vmm_disk_guest_uuid(const struct hv_disk *d, uint8_t out[16]);

#endif /* PVHA_VMM_DISK_H */
