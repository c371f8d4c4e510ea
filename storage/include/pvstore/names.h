/*
 * pvstore/names.h: every RADOS object, omap key, xattr and lock name pvha
 * uses. Object names are the storage schema: change one here and in
 * docs/storage.md, nowhere else.
 *
 * All objects live in one pool (default "pvha") and the ioctx's namespace
 * (default: none). Formatting functions are pure and thread-safe; each writes
 * a NUL-terminated name into buf and returns 0, or -ENAMETOOLONG when buf is
 * shorter than PVSTORE_OID_MAX.
 */
#ifndef PVSTORE_NAMES_H
#define PVSTORE_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* Room for any object name below, with its NUL. */
#define PVSTORE_OID_MAX 96

/* guest.<uuid>: GuestSpec, xattrs PVSTORE_XATTR_GEN and _NAME, the owner lock. */
#define PVSTORE_OID_GUEST_PREFIX "guest."
/* guests: omap name -> uuid (36 chars), the unique-name index. */
#define PVSTORE_OID_GUESTS_INDEX "guests"
/* disk.<uuid>.header: DiskHeader. */
#define PVSTORE_OID_DISK_PREFIX "disk."
#define PVSTORE_OID_DISK_HEADER_SUFFIX ".header"
/* disk.<uuid>.<index>: data object number index, 16 lower-case hex digits. */
/* node.<name>: NodeRecord. */
#define PVSTORE_OID_NODE_PREFIX "node."
/* nodes: omap name -> "" , the list of node records. */
#define PVSTORE_OID_NODES_INDEX "nodes"
/* node-modes: omap node name -> "draining" | "maintenance" (no entry: active). */
#define PVSTORE_OID_NODE_MODES "node-modes"
/* image.<sha256>: a guest image, content-addressed (64 lower-case hex digits). */
#define PVSTORE_OID_IMAGE_PREFIX "image."
/* events.cluster and events.guest.<uuid>: omap seq (20 digits) -> Event,
 * xattr PVSTORE_XATTR_SEQ = the last sequence number given out. */
#define PVSTORE_OID_EVENTS_CLUSTER "events.cluster"
#define PVSTORE_OID_EVENTS_GUEST_PREFIX "events.guest."

/* xattr on guest.<uuid>: the record's generation, decimal. */
#define PVSTORE_XATTR_GEN "pvha.gen"
/* xattr on guest.<uuid>: the guest's name (renames are not supported). */
#define PVSTORE_XATTR_NAME "pvha.name"
/* xattr on an event log object: its last sequence number, decimal. */
#define PVSTORE_XATTR_SEQ "pvha.seq"
/* The cls_lock lock name of the owner lock on guest.<uuid>. */
#define PVSTORE_LOCK_OWNER "pvha.owner"

/* tiebreak: the two-node tie-breaker: the lock PVSTORE_LOCK_TIEBREAK (with a
 * duration) and omap node name -> the cookie of the holder it yielded to. */
#define PVSTORE_OID_TIEBREAK "tiebreak"
#define PVSTORE_LOCK_TIEBREAK "pvha.tiebreak"

/* Length of an event log omap key: the sequence number, zero-padded. */
#define PVSTORE_EVENT_KEY_LEN 20

int pvstore_oid_guest(char *buf, size_t len, const uint8_t uuid[16]);
int pvstore_oid_disk_header(char *buf, size_t len, const uint8_t uuid[16]);
int pvstore_oid_disk_data(char *buf, size_t len, const uint8_t uuid[16], uint64_t index);
int pvstore_oid_node(char *buf, size_t len, const char *node_name);
/* sha256_hex must be 64 lower-case hex digits (not checked here). */
int pvstore_oid_image(char *buf, size_t len, const char *sha256_hex);
/* guest == NULL: the cluster log. */
int pvstore_oid_events(char *buf, size_t len, const uint8_t *guest);

#endif /* PVSTORE_NAMES_H */
