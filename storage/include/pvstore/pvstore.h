/*
 * libpvstore: everything pvha keeps on Ceph RADOS — the guest registry, guest
 * disks striped over 4 MiB objects, owner locks, node records, blocklist
 * fencing, event logs and content-addressed guest images. It is the only code
 * in pvha that calls librados. docs/storage.md describes the objects and the
 * locking and fencing order; pvstore/names.h names every object.
 *
 * Who calls it: pvhad (the agent), pvha-vmm (a guest's disk), the cluster and
 * fence libraries, the tests and benchmarks. It knows nothing of hv-core:
 * pvha-vmm wraps a struct pvstore_disk into an hv_disk_ops backend.
 *
 * Errors: every call that can fail returns 0 (or a count) or -errno, and
 * leaves a one-line message naming what was wrong for the calling thread
 * (pvstore_errmsg). Errors callers act on:
 *   -ESHUTDOWN   this client was blocklisted (fenced): never retry, stop;
 *   -ETIMEDOUT   the cluster did not answer within the configured timeout;
 *   -ENOSPC      a disk write or flush timed out because the cluster is full
 *                (an OSD or the pool; the message says which);
 *   -ECANCELED   a compare-and-set lost a race: re-read and retry;
 *   -EBADMSG     a record read from RADOS is malformed or of an unknown version;
 *   -ENOENT      no such object (guest, pool, node, lock holder...).
 * The library logs nothing and never exits the process.
 *
 * Threading: a struct pvstore may be used from several threads at once (each
 * librados call is thread-safe); messages are per thread. A struct
 * pvstore_disk may also be used from several threads; its completion
 * callbacks run on a librados thread and must not block for long.
 */
#ifndef PVSTORE_PVSTORE_H
#define PVSTORE_PVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------- */

/* The message of this thread's last failed pvstore call ("" if none). Valid
 * until this thread's next pvstore call. */
const char *pvstore_errmsg(void);

/* ---- connection --------------------------------------------------------- */

#define PVSTORE_NAME_MAX 63          /* guest, node, pool names and lock cookies */
#define PVSTORE_DEFAULT_POOL "pvha"
#define PVSTORE_DEFAULT_CLIENT "client.admin"
#define PVSTORE_DEFAULT_TIMEOUT_S 10

struct pvstore_config {
	const char *conf_path;       /* ceph.conf; required */
	const char *client_name;     /* NULL: "client.admin" */
	const char *keyring;         /* NULL: what the conf says */
	const char *key;             /* NULL: from the keyring; else client_name's base64
				      * secret, and no keyring file is read */
	const char *pool;            /* NULL: "pvha" */
	const char *rados_namespace; /* NULL or "": the pool's default namespace */
	unsigned mount_timeout_s;    /* connect deadline (client_mount_timeout); 0: 10 */
	unsigned osd_op_timeout_s;   /* every OSD op (rados_osd_op_timeout); 0: 10 */
	unsigned mon_op_timeout_s;   /* every mon command (rados_mon_op_timeout); 0: 10 */
};

struct pvstore;

/* Connects to the cluster and opens the pool. Every later call fails within
 * the configured timeouts when the cluster does not answer, never hangs.
 * Returns 0 and *out, or -errno: -EINVAL (bad config), -ENOENT (the conf file
 * or the pool does not exist; the message names which), -ETIMEDOUT (no
 * monitor answered within mount_timeout_s), -EACCES/-EPERM (auth). Blocks up
 * to mount_timeout_s. */
int pvstore_connect(const struct pvstore_config *cfg, struct pvstore **out);

/* Closes the connection (NULL is allowed). Every disk opened on it must be
 * closed first. */
void pvstore_disconnect(struct pvstore *st);

/* This client's address as the OSDs see it, "IP:0/NONCE": blocklisting this
 * exact string fences this connection only; blocklisting "IP" fences every
 * client of the host. Returns 0 or -errno (-ERANGE: buf too small). */
int pvstore_client_addr(struct pvstore *st, char *buf, size_t len);

/* This client's entity name as lockers show it, "client.<global id>". */
int pvstore_client_entity(struct pvstore *st, char *buf, size_t len);

/* ---- uuids -------------------------------------------------------------- */

#define PVSTORE_UUID_STR 37 /* 36 characters and the NUL */

/* Parses the canonical 8-4-4-4-12 hex form (either case). 0 or -EINVAL. */
int pvstore_uuid_parse(const char *s, uint8_t out[16]);
/* Writes the lower-case canonical form. */
void pvstore_uuid_format(const uint8_t u[16], char out[PVSTORE_UUID_STR]);
/* A random (version 4) uuid from getrandom(2). 0 or -errno. */
int pvstore_uuid_generate(uint8_t out[16]);

/* ---- guest registry ----------------------------------------------------- */

#define PVSTORE_CMDLINE_MAX 1023    /* bytes, without the NUL (hv-core's limit) */
/* A guest's memory: whole MiB in this range (the ABI's PV_MEM_MIN..PV_MEM_MAX;
 * pvha-vmm checks at build time that the two agree). */
#define PVSTORE_MEM_MIN (2ull << 20)
#define PVSTORE_MEM_MAX (4ull << 30)
#define PVSTORE_RECORD_MAX 65536    /* no record pvha reads from RADOS is larger */

enum pvstore_desired {
	PVSTORE_DESIRED_STOPPED = 0,
	PVSTORE_DESIRED_RUNNING = 1,
};

#define PVSTORE_GUEST_RULES_MAX 4   /* placement rules per guest (the scheduler's limit) */
#define PVSTORE_GUEST_DEPS_MAX 8    /* start dependencies per guest */

/* Membership of a placement group (docs/placement.md): anti = false is
 * affinity (the group's guests run on one node), anti = true anti-affinity
 * (no two on one node); soft: kept when it can be. */
struct pvstore_rule {
	char group[PVSTORE_NAME_MAX + 1]; /* the guest name rule */
	bool anti;
	bool soft;
};

#define PVSTORE_ADDR_MAX 18 /* "255.255.255.255/32" */

/* Whether s is a guest address: an IPv4 address with a prefix (A.B.C.D/P,
 * P 1..32), not 0.0.0.0, loopback, multicast or broadcast. Pure. */
bool pvstore_address_ok(const char *s);

/* The IPv4 part of a guest address ("10.0.0.5/24" -> 10.0.0.5 in host
 * order); 0 when it is not one. */
uint32_t pvstore_address_ip(const char *s);

#define PVSTORE_HEARTBEAT_TIMEOUT_MAX 86400u /* s */
#define PVSTORE_HEARTBEAT_RESETS_MAX 100u
#define PVSTORE_HEARTBEAT_WINDOW_MAX 604800u /* s: a week */

struct pvstore_guest {
	uint8_t uuid[16];
	uint64_t generation;            /* set by create/read/update: the compare-and-set token */
	char name[PVSTORE_NAME_MAX + 1];
	uint64_t mem_size;              /* bytes, a non-zero multiple of 1 MiB */
	char image_sha256[65];          /* "" or 64 lower-case hex digits */
	uint64_t disk_size;             /* bytes, a multiple of 512; 0 = no disk */
	char cmdline[PVSTORE_CMDLINE_MAX + 1];
	enum pvstore_desired desired;
	int32_t priority;               /* higher is placed and recovered first */
	unsigned n_rules;               /* <= PVSTORE_GUEST_RULES_MAX */
	struct pvstore_rule rules[PVSTORE_GUEST_RULES_MAX];
	unsigned n_depends;             /* <= PVSTORE_GUEST_DEPS_MAX */
	uint8_t depends_on[PVSTORE_GUEST_DEPS_MAX][16]; /* guests to be running before this one starts */
	char address[PVSTORE_ADDR_MAX + 1]; /* "" or IPv4 "A.B.C.D/P" (P 1..32): carried by its node */
	/* Heartbeat monitoring (docs/heartbeat.md): 0 = off */
	uint32_t heartbeat_timeout_s;   /* 0 or 1..PVSTORE_HEARTBEAT_TIMEOUT_MAX */
	uint32_t heartbeat_max_resets;  /* 0 = the node's default, else 1..PVSTORE_HEARTBEAT_RESETS_MAX */
	uint32_t heartbeat_window_s;    /* 0 = the node's default, else 1..PVSTORE_HEARTBEAT_WINDOW_MAX */
};

/* Checks a spec without touching RADOS: the name rule ([A-Za-z0-9._-], 1..63
 * bytes, not starting with '.' or '-'), sizes, hash form, desired state; at
 * most 4 rules, each group a valid name, no (group, anti) pair twice; at most
 * 8 dependencies, none nil, none twice, none the guest itself; the address
 * "" or pvstore_address_ok; the heartbeat fields within their ranges (above).
 * Whether the
 * dependencies exist or form a cycle is the caller's business (it needs the
 * registry). Returns 0 or -EINVAL with a message naming the field. O(1). */
int pvstore_guest_check(const struct pvstore_guest *g);

/* The record of g as stored in guest.<uuid> (GuestSpec, version 1) with
 * generation gen: *buf (malloc'd, the caller frees) and *len. Pure: no RADOS.
 * Returns 0, -EINVAL (bad spec, or over PVSTORE_RECORD_MAX) or -ENOMEM. */
int pvstore_guest_encode(const struct pvstore_guest *g, uint64_t gen, uint8_t **buf, size_t *len);

/* Decodes and checks a record read from the object named what, which must
 * belong to guest uuid: everything pvstore_guest_check checks, plus version
 * 1, a non-zero generation and the uuid inside. A record written before rules
 * and dependencies existed has none. Pure: no RADOS. Returns 0 or -EBADMSG
 * (the message names what and the fault); *out is meaningful only on 0. */
int pvstore_guest_decode(const char *what, const uint8_t uuid[16], const uint8_t *buf, size_t len,
			 struct pvstore_guest *out);

/* Creates a guest: g->uuid (a nil uuid gets a random one, written back) and
 * g->name must be new. On success g->generation is 1. Two clients creating
 * the same name at once: exactly one gets 0, the other -EEXIST. Returns 0,
 * -EINVAL (bad spec), -EEXIST (the name or uuid is taken; the message says
 * which), or -errno. Costs 2-3 round trips. */
int pvstore_guest_create(struct pvstore *st, struct pvstore_guest *g);

/* Reads and validates guest.<uuid>. Returns 0, -ENOENT, or -EBADMSG when the
 * record is too large, does not decode, has an unknown version or does not
 * match its object name (the message says which). One round trip. */
int pvstore_guest_read(struct pvstore *st, const uint8_t uuid[16], struct pvstore_guest *out);

/* Finds a guest's uuid by name in the index. 0, -ENOENT or -EBADMSG. */
int pvstore_guest_lookup(struct pvstore *st, const char *name, uint8_t uuid[16]);

/* Replaces the spec of g->uuid in one atomic write, only if the stored
 * generation is still g->generation; on success g->generation is the new one.
 * The name cannot change. Returns 0, -ECANCELED (someone updated it since g
 * was read: re-read and retry), -ENOENT (deleted), -EINVAL (bad spec or a
 * rename), or -errno. One round trip (two on -ECANCELED). */
int pvstore_guest_update(struct pvstore *st, struct pvstore_guest *g);

/* Deletes guest.<uuid> if its generation is still `generation` (0: whatever
 * it is), then its name from the index. Refused with -EBUSY while an owner
 * lock is held. Disk, events and image are not touched. Returns 0, -ENOENT,
 * -ECANCELED, -EBUSY or -errno. */
int pvstore_guest_delete(struct pvstore *st, const uint8_t uuid[16], uint64_t generation);

struct pvstore_guest_entry {
	char name[PVSTORE_NAME_MAX + 1];
	uint8_t uuid[16];
};

/* Lists the index, sorted by name: *out (malloc'd, caller frees; NULL when
 * *n == 0). A guest being deleted may be listed and then read as -ENOENT.
 * Returns 0, -EBADMSG (a malformed index entry, named) or -errno.
 * O(guests), one round trip per 512 entries. */
int pvstore_guest_list(struct pvstore *st, struct pvstore_guest_entry **out, size_t *n);

/* ---- disks -------------------------------------------------------------- */

#define PVSTORE_DISK_OBJECT_SIZE (4u << 20)
#define PVSTORE_DISK_MAX_SIZE (1ull << 44) /* 16 TiB */

struct pvstore_disk;

/* Creates the disk of guest uuid: its header only; data objects appear on
 * first write. size is a non-zero multiple of 512 up to PVSTORE_DISK_MAX_SIZE.
 * Returns 0, -EEXIST, -EINVAL or -errno. */
int pvstore_disk_create(struct pvstore *st, const uint8_t uuid[16], uint64_t size);

/* Opens the disk of guest uuid. Returns 0 and *out, -ENOENT (no disk),
 * -EBADMSG (a bad header) or -errno. The disk must be closed before st. */
int pvstore_disk_open(struct pvstore *st, const uint8_t uuid[16], struct pvstore_disk **out);

/* Waits for every request in flight, then frees d (NULL is allowed). */
void pvstore_disk_close(struct pvstore_disk *d);

uint64_t pvstore_disk_size(const struct pvstore_disk *d);

/* Called once per asynchronous request, on a librados thread, with 0 or
 * -errno (the first error of its pieces). */
typedef void (*pvstore_disk_cb)(void *arg, int result);

/* Starts a read or write of len > 0 bytes at off (off + len <= size); the
 * request is split at object boundaries and all its pieces go out at once.
 * The buffer must stay valid until cb runs. Holes read as zeros. Returns 0
 * when started (cb will run exactly once) or -errno (-EINVAL: out of range or
 * len 0; cb will not run). A write's cb means RADOS acknowledged it on every
 * replica: it is durable. */
int pvstore_disk_aio_read(struct pvstore_disk *d, void *buf, uint64_t off, size_t len,
			  pvstore_disk_cb cb, void *arg);
int pvstore_disk_aio_write(struct pvstore_disk *d, const void *buf, uint64_t off, size_t len,
			   pvstore_disk_cb cb, void *arg);

/* The same, waiting for the result. len 0 returns 0. */
int pvstore_disk_read(struct pvstore_disk *d, void *buf, uint64_t off, size_t len);
int pvstore_disk_write(struct pvstore_disk *d, const void *buf, uint64_t off, size_t len);

/* Returns once every write started before it has been acknowledged (it may
 * also wait for writes started meanwhile), with 0 or the first error any
 * write since the previous flush had. -ESHUTDOWN stays: once fenced, every
 * later flush fails too. */
int pvstore_disk_flush(struct pvstore_disk *d);

/* Changes the size (same rules as create). Shrinking removes or truncates the
 * data beyond the new size before the header changes, so a later grow reads
 * zeros there. Waits for requests in flight; no other request may be started
 * on any handle of this disk meanwhile. Returns 0 or -errno. */
int pvstore_disk_resize(struct pvstore_disk *d, uint64_t new_size);

/* Deletes the disk of guest uuid: the data objects, then the header (an
 * interrupted delete leaves a disk that can be deleted again). No handle may
 * be open. Returns 0, -ENOENT or -errno. O(size / 4 MiB) removals, 32 in
 * flight. */
int pvstore_disk_delete(struct pvstore *st, const uint8_t uuid[16]);

/* ---- owner locks -------------------------------------------------------- */

struct pvstore_lock_holder {
	char client[64];  /* "client.<global id>" */
	char cookie[64];  /* the holder's incarnation */
	char addr[128];   /* e.g. "v1:10.77.0.2:0/2748" */
};

/* Takes the exclusive owner lock of an existing guest, cookie = this node's
 * incarnation. Already holding it (this connection, this cookie) is success.
 * Returns 0, -EBUSY (another holder; the message names it), -ENOENT (no such
 * guest), -EINVAL (bad cookie) or -errno. Locks never expire: they are broken
 * only after their holder is fenced (pvstore_fence_and_break). */
int pvstore_lock_acquire(struct pvstore *st, const uint8_t uuid[16], const char *cookie);

/* Releases this connection's lock. 0, -ENOENT (not held by this connection
 * with this cookie) or -errno. */
int pvstore_lock_release(struct pvstore *st, const uint8_t uuid[16], const char *cookie);

/* Who holds the lock. 0 and *out, -ENOENT (nobody, or no such guest), -errno. */
int pvstore_lock_holder(struct pvstore *st, const uint8_t uuid[16], struct pvstore_lock_holder *out);

/* Breaks the lock held by h. Safe only once h's address is fenced: prefer
 * pvstore_fence_and_break. 0, -ENOENT (h does not hold it) or -errno. */
int pvstore_lock_break(struct pvstore *st, const uint8_t uuid[16], const struct pvstore_lock_holder *h);

/* ---- the two-node tie-breaker (docs/agent.md) ---------------------------- */

/* Takes, or renews when this client holds it with this cookie, the exclusive
 * lock PVSTORE_LOCK_TIEBREAK on PVSTORE_OID_TIEBREAK (created when missing)
 * for duration_s seconds (1 .. 3600): it lapses then unless renewed. Returns
 * 0 (held for duration_s from now), -EBUSY (another client or cookie holds
 * it: *holder names it when holder is not NULL and the lockers could be
 * listed, else holder->cookie is ""), -EINVAL (bad cookie or duration) or
 * -errno. */
int pvstore_tiebreak_take(struct pvstore *st, const char *cookie, uint32_t duration_s,
			  struct pvstore_lock_holder *holder);

/* Breaks the tie-break lock held by h (one this boot took in an earlier
 * round, or one of a boot that is gone). 0, -ENOENT (h does not hold it) or
 * -errno. */
int pvstore_tiebreak_break(struct pvstore *st, const struct pvstore_lock_holder *h);

/* The loser's word, written once it runs no VMM: omap node -> the cookie of
 * the holder it yielded to. Returns 0, -EINVAL or -errno. */
int pvstore_tiebreak_yield(struct pvstore *st, const char *node, const char *holder_cookie);

/* Reads node's word: 0 and the cookie in out, -ENOENT (none), -errno. */
int pvstore_tiebreak_yielded(struct pvstore *st, const char *node, char *out, size_t len);

/* ---- fencing ------------------------------------------------------------ */

/* Blocklists addr ("IP": every client of that host, new ones too; or
 * "IP:PORT/NONCE": one client) for expire_s seconds (1 .. 30 days; explicit:
 * a fence must end by a decision, not a default). Every later op of a fenced
 * client fails with -ESHUTDOWN. Returns 0, -EINVAL or -errno. */
int pvstore_blocklist_add(struct pvstore *st, const char *addr, uint32_t expire_s);

struct pvstore_blocklist_entry {
	char addr[64];   /* as the OSD map has it: a bare IP is "IP:0/0" */
	char until[48];  /* UTC expiry as Ceph prints it */
};

/* Lists the blocklist: *out malloc'd (caller frees). Returns 0 or -errno. */
int pvstore_blocklist_list(struct pvstore *st, struct pvstore_blocklist_entry **out, size_t *n);

/* Removes addr from the blocklist. Only for a host that is dead or runs no
 * guest: the old handles of a fenced host write again afterwards. Returns 0,
 * -ENOENT (not listed) or -errno. */
int pvstore_blocklist_remove(struct pvstore *st, const char *addr);

/* Fences addr: blocklist it, then wait until this client has the OSD map that
 * carries the entry, so this client's next op makes each OSD catch up before
 * anything else of ours lands. A blocklist request the monitor did not
 * confirm in time (-ETIMEDOUT) is withdrawn at once (a removal sent after it
 * on the same session), so that it cannot land later, after the partition
 * that justified it healed. Returns 0 or -errno. */
int pvstore_fence(struct pvstore *st, const char *addr, uint32_t expire_s);

/* The recovery order in one call: fence addr, wait for the latest OSD map,
 * then break the owner lock of guest uuid if its holder's address is covered
 * by addr (and its cookie is `cookie`, when not NULL). After 0 the lock is free
 * and the old holder can no longer write: take it with pvstore_lock_acquire.
 * Returns 0 (broken, or nobody held it), -EBUSY (held by a client the fence
 * does not cover, or another cookie: not broken), or -errno. */
int pvstore_fence_and_break(struct pvstore *st, const char *addr, uint32_t expire_s,
			    const uint8_t uuid[16], const char *cookie);

/* true when a lock holder's address is covered by a blocklist addr (pure). */
bool pvstore_addr_covers(const char *fence_addr, const char *holder_addr);

/* ---- node records ------------------------------------------------------- */

struct pvstore_node {
	char name[PVSTORE_NAME_MAX + 1];
	char addr[64];                    /* what a fence of this node blocklists */
	char incarnation[PVSTORE_NAME_MAX + 1];
	uint64_t mem_bytes;
	uint32_t cpus;
	uint64_t updated_ms;              /* set by pvstore_node_put */
};

/* A node's maintenance mode (pvha node drain / resume): kept apart from its
 * record, which its agent rewrites at every start. */
enum pvstore_node_mode {
	PVSTORE_NODE_ACTIVE = 0,
	PVSTORE_NODE_DRAINING = 1,
	PVSTORE_NODE_MAINTENANCE = 2,
};
const char *pvstore_node_mode_str(enum pvstore_node_mode m);
/* Sets it (ACTIVE removes the entry). Returns 0, -EINVAL or -errno. */
int pvstore_node_mode_set(struct pvstore *st, const char *name, enum pvstore_node_mode mode);
/* Calls each(ctx, name, mode) for every node not active; each returns 0 or
 * -errno (which ends the walk). Returns 0, -EBADMSG (a bad entry) or -errno. */
int pvstore_node_modes(struct pvstore *st,
		       int (*each)(void *ctx, const char *name, enum pvstore_node_mode mode), void *ctx);

/* Writes node.<name> (replacing it) and lists it in the nodes index.
 * Returns 0, -EINVAL or -errno. */
int pvstore_node_put(struct pvstore *st, struct pvstore_node *n);
/* Reads node.<name>. 0, -ENOENT, -EBADMSG or -errno. */
int pvstore_node_get(struct pvstore *st, const char *name, struct pvstore_node *out);
/* Names in the nodes index, sorted: *names malloc'd (caller frees). */
int pvstore_node_list(struct pvstore *st, char (**names)[PVSTORE_NAME_MAX + 1], size_t *n);
/* Removes node.<name> and its index entry. 0, -ENOENT or -errno. */
int pvstore_node_delete(struct pvstore *st, const char *name);

/* ---- event logs --------------------------------------------------------- */

#define PVSTORE_EVENT_WHAT_MAX 31
#define PVSTORE_EVENT_WHY_MAX 255

struct pvstore_event {
	uint64_t seq;          /* 1, 2, 3... within its log */
	uint64_t time_ms;      /* wall clock when appended */
	char node[PVSTORE_NAME_MAX + 1];
	bool has_guest;
	uint8_t guest[16];
	char what[PVSTORE_EVENT_WHAT_MAX + 1];
	char why[PVSTORE_EVENT_WHY_MAX + 1];
};

/* Appends to the log of guest (NULL: the cluster log). Concurrent appenders
 * each get their own sequence number, with no gaps and no duplicates. `why`
 * longer than 255 bytes is cut. Returns 0 (and *seq when seq != NULL) or
 * -errno. Two round trips; more under contention. */
int pvstore_event_append(struct pvstore *st, const uint8_t *guest, const char *node,
			 const char *what, const char *why, uint64_t *seq);

/* Reads up to max events with seq > after, in order. Returns 0 with *n set,
 * -EBADMSG (a malformed entry, named) or -errno. A missing log has 0 events. */
int pvstore_event_list(struct pvstore *st, const uint8_t *guest, uint64_t after,
		       struct pvstore_event *out, size_t max, size_t *n);

/* ---- guest images ------------------------------------------------------- */

#define PVSTORE_IMAGE_MAX (64u << 20)

/* Stores an image as image.<sha256> (idempotent) and returns its hash in hex.
 * Returns 0, -EFBIG or -errno. */
int pvstore_image_put(struct pvstore *st, const void *data, size_t len, char sha256_hex[65]);

/* Reads image.<sha256_hex> and checks its hash: *data malloc'd (caller
 * frees). Returns 0, -EINVAL (not a hash), -ENOENT, -EBADMSG (content does
 * not match its name) or -errno. */
int pvstore_image_get(struct pvstore *st, const char *sha256_hex, void **data, size_t *len);

/* Hex SHA-256 of a buffer, as pvstore_image_put names it (pure). */
void pvstore_sha256_hex(const void *data, size_t len, char out[65]);

/* ---- cephx users: least privilege (docs/storage.md) -------------------- */

#define PVSTORE_ENTITY_MAX 80 /* "client.pvha-guest-<uuid>" and its NUL, or a node's */
#define PVSTORE_KEY_MAX 64    /* a cephx secret in base64, with its NUL */

/* "client.pvha-guest-<uuid>": the user a guest's VMM connects as. Pure.
 * Returns 0 or -ENAMETOOLONG. */
int pvstore_guest_entity(char *buf, size_t len, const uint8_t uuid[16]);

/* "client.pvha-node-<name>": the user a node's pvhad connects as. Pure.
 * Returns 0, -EINVAL (not a valid node name) or -ENAMETOOLONG. */
int pvstore_node_entity(char *buf, size_t len, const char *node);

/* The caps of guest uuid's VMM user in pool (and namespace ns, "" or NULL
 * for the default): mon "allow r" (maps only: no blocklist, no auth); OSD
 * read and write on its disk's objects (object_prefix "disk.<uuid>.": the
 * header and every data object) and read plus the lock class on its record
 * guest.<uuid> (its owner lock). Nothing else: no other guest's objects, no
 * registry, no events, no images. Pure. Returns 0 or -ENAMETOOLONG. */
int pvstore_guest_caps(const char *pool, const char *ns, const uint8_t uuid[16], char *osd,
		       size_t osdlen, char *mon, size_t monlen);

/* The caps of a node's pvhad user: mon "allow r", the blocklist commands
 * (fencing), and "auth get-or-create" / "auth rm" of pvha-guest-* users
 * with exactly a guest's caps (the monitor checks each cap string: no node
 * can make a wider user); OSD rwx on the pool (namespace). Pure. */
int pvstore_node_caps(const char *pool, const char *ns, char *osd, size_t osdlen, char *mon,
		      size_t monlen);

/* Creates (or finds) guest uuid's VMM user with pvstore_guest_caps for this
 * connection's pool and namespace (and mgr/mds caps that allow nothing), and
 * returns its secret in key. Needs a connection allowed to make it: an
 * admin's, or a node user's (pvstore_node_caps). A user that exists with
 * other caps is an error (-EEXIST): caps are never widened silently.
 * Returns 0, -EEXIST, -EACCES/-EPERM (not allowed) or -errno. One mon
 * round trip. */
int pvstore_key_guest(struct pvstore *st, const uint8_t uuid[16], char *key, size_t keylen);

/* The same for a node's pvhad user. */
int pvstore_key_node(struct pvstore *st, const char *node, char *key, size_t keylen);

/* Deletes a user (entity as above): a deleted guest's key must not outlive
 * it. 0 also when there was none. */
int pvstore_key_remove(struct pvstore *st, const char *entity);

/* ---- bootstrap: the pool of a new cluster (docs/install.md) ------------- */

/* The application tag that marks a pool as pvha's (`ceph osd pool
 * application get`). */
#define PVSTORE_POOL_APP "pvha"

/* What pvstore_pool_prepare found and did. */
struct pvstore_pool_info {
	bool pool_created;     /* the pool did not exist and was made */
	bool tagged;           /* the pool got the pvha tag now (adopted or new) */
	bool registry_created; /* the registry's index objects were made now */
	char fsid[40];         /* the cluster's fsid */
	char mon_host[512];    /* the monitors, as the conf file names them */
};

/* Makes cfg->pool the pool of a pvha cluster (create = true: `pvha cluster
 * init`), or checks that it is one (create = false: `pvha node join`).
 * Connects as cfg->client_name, which must be allowed to create pools and
 * tag them (an admin). With create, a missing pool is made; an existing one
 * is adopted when it carries the pvha tag already, or carries no tag but
 * "rados" and holds no object outside pvha's schema (pvstore/names.h); then
 * it is tagged and the registry's index objects ("guests", "nodes") are made
 * when missing. Nothing that exists is ever removed or rewritten, so running
 * it again changes nothing. Without create, the pool must exist and carry the
 * tag, and the registry is checked, not made.
 * Returns 0 (and *out), or -errno with a message that says what to fix:
 * -ENOENT (the conf file, or without create the pool, is missing),
 * -ETIMEDOUT (no monitor answered), -EACCES/-EPERM (not allowed to create or
 * tag the pool), -EEXIST (the pool belongs to something else: another
 * application's tag, or objects that are not pvha's), -ENXIO (without
 * create: the pool is not a pvha pool yet). Blocks up to the configured
 * timeouts; costs one listing of the pool (O(objects)) when it is not tagged
 * yet, nothing of the sort when it is. */
int pvstore_pool_prepare(const struct pvstore_config *cfg, bool create, struct pvstore_pool_info *out);

#endif /* PVSTORE_PVSTORE_H */
