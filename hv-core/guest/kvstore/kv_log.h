/*
 * kv_log: kvstore's append-only log on the guest disk, the only copy of the
 * data that outlives the guest. Durability promise (appendfsync always): a
 * write is in the log and the disk has flushed it before its reply is sent.
 *
 * Disk layout (little-endian; docs/kvstore.md has the same in prose):
 *   0      superblock slot 0 (struct kv_log_super), rest of the 4 KiB zero
 *   4096   superblock slot 1
 *   8192   region 0, region_len bytes
 *   8192 + region_len   region 1, region_len bytes
 *   region_len = ((disk_size - 8192) / 2) rounded down to 4 KiB
 * The superblock of generation g lives in slot g % 2; the valid one with the
 * highest generation names the active region. A region holds records from
 * offset 0, each 8-byte aligned:
 *   struct kv_log_rec_hdr (40 bytes), then `len` payload bytes, zero padding
 *   SET       u64 expire (wall-clock ns, 0 = none), u32 klen, u32 vlen, key, value
 *   DEL       u32 klen, key
 *   FLUSHALL  (nothing)
 *   APPEND    u32 klen, u32 vlen, key, bytes appended to the value
 * Each record's sum is kv_hash over the previous record's sum (for the first,
 * a seed from the disk nonce, the generation and the region), its header and
 * its payload; it carries the writer's boot nonce. Replay takes records while
 * every check passes (magic, generation, length, sum, payload shape) and stops
 * at the first that fails: a torn or corrupt tail is cut there, and since the
 * chain runs through each record and the boot nonce differs per boot, stale
 * bytes past the cut can never pass for records later.
 *
 * Compaction writes every live key as a SET record into the other region
 * under generation g + 1, flushes, then writes superblock g + 1 into its slot
 * and flushes: until that superblock is durable the old region and superblock
 * are untouched and stay the log; a torn superblock fails its checksum and
 * the other slot still names the old region. Nothing is lost at any point of
 * a crash.
 *
 * I/O errors are returned; the caller must not acknowledge anything after a
 * failed commit (the guest exits: appendfsync always cannot recover either).
 */
#ifndef KV_LOG_H
#define KV_LOG_H

#include "kv_buf.h"

#define KV_LOG_SUPER_MAGIC 0x52505553564b5650ull /* "PVKVSUPR" */
#define KV_LOG_REC_MAGIC 0x3152564bu             /* "KVR1" */
#define KV_LOG_VERSION 1u
#define KV_LOG_SLOT_SIZE 4096u
#define KV_LOG_REGIONS_OFF (2u * KV_LOG_SLOT_SIZE)
#define KV_LOG_MIN_REGION 4096u
#define KV_LOG_HDR 40u
#define KV_LOG_MAX_REC (KV_LOG_HDR + 16u + 2u * KV_MAX_BULK + 8u)
/* Pending records of one round, and the window replay reads through: one
 * 4 MiB heap block (a whole power of two less its header), >= one record. */
#define KV_LOG_BATCH (4u * 1024u * 1024u - KV_HEAP_HDR)
_Static_assert(KV_LOG_MAX_REC <= KV_LOG_BATCH, "a record fits the batch");

enum kv_log_op {
	KV_LOG_SET = 1,
	KV_LOG_DEL = 2,
	KV_LOG_FLUSHALL = 3,
	KV_LOG_APPEND = 4,
};

struct kv_log_super {
	uint64_t magic;
	uint32_t version;
	uint32_t zero;
	uint64_t nonce;      /* chosen when the disk was formatted */
	uint64_t gen;        /* >= 1; one more per compaction */
	uint64_t region;     /* 0 or 1 */
	uint64_t region_len; /* as computed from the disk size */
	uint64_t sum;        /* kv_hash(0, the 48 bytes above) */
};

struct kv_log_rec_hdr {
	uint32_t magic; /* KV_LOG_REC_MAGIC */
	uint32_t len;   /* payload bytes (padding not counted) */
	uint64_t gen;   /* the region's generation */
	uint64_t boot;  /* the writer's boot nonce */
	uint8_t op;     /* enum kv_log_op */
	uint8_t pad[7]; /* zero */
	uint64_t sum;
};

_Static_assert(sizeof(struct kv_log_super) == 56, "superblock size");
_Static_assert(sizeof(struct kv_log_rec_hdr) == KV_LOG_HDR, "record header size");

/* A decoded record. */
struct kv_log_rec {
	enum kv_log_op op;
	const uint8_t *key;
	size_t klen;
	const uint8_t *val;
	size_t vlen;
	uint64_t expire_wall; /* SET: wall-clock ns, 0 = none */
};

struct kv_disk_ops {
	int (*read)(void *ctx, uint64_t off, void *buf, size_t len);
	int (*write)(void *ctx, uint64_t off, const void *buf, size_t len);
	int (*flush)(void *ctx);
};

struct kv_disk {
	const struct kv_disk_ops *ops;
	void *ctx;
	uint64_t size;
};

/* What kv_log_open found. */
struct kv_log_report {
	bool formatted;     /* the disk was blank and got a fresh superblock */
	uint64_t records;   /* records replayed */
	uint64_t tail;      /* where appends continue, bytes into the region */
	bool cut;           /* the log ended in a torn or corrupt record (cut) */
	uint64_t gen;
};

struct kv_log {
	struct kv_disk disk;
	uint64_t nonce, gen, region, region_len, boot;
	uint64_t tail;     /* durable bytes in the active region */
	uint64_t prev_sum; /* the last durable record's sum (or the seed) */
	uint64_t pend_sum; /* the last pending record's sum */
	struct kv_buf pending;
	uint64_t commits, compactions;
};

/* Called by replay for each record, in order; a negative return stops the
 * replay and kv_log_open returns it. */
typedef int (*kv_log_apply_fn)(void *ctx, const struct kv_log_rec *r);

/* Opens the log on disk: a blank disk (both superblock slots zero) is
 * formatted with disk_nonce; otherwise the newest valid superblock's region
 * is replayed through apply. boot is this boot's nonce (differs per boot).
 * Returns 0, -KV_EBADMSG when neither superblock is valid on a disk that is
 * not blank, -KV_ENOSPC when the disk is too small, -KV_ENOMEM, an I/O error,
 * or apply's error. Cost: one pass over the active region. */
int kv_log_open(struct kv_log *log, const struct kv_disk *disk, struct kv_heap *heap,
		uint64_t boot, uint64_t disk_nonce, kv_log_apply_fn apply, void *ctx,
		struct kv_log_report *rep);

/* Gives the pending buffer back. */
void kv_log_close(struct kv_log *log);

/* Bytes a record takes in the log, header and padding included. */
size_t kv_log_rec_size(const struct kv_log_rec *r);

/* Makes room for one record of `size` bytes: commits the pending batch first
 * when it is full. Returns 0, -KV_ENOSPC when the active region cannot take
 * it (compact, or the disk is full), or an I/O error. */
int kv_log_reserve(struct kv_log *log, size_t size);

/* Appends a record to the pending batch; kv_log_reserve made the room. */
void kv_log_append(struct kv_log *log, const struct kv_log_rec *r);

/* Writes the pending batch at the tail and flushes. Nothing pending: no I/O.
 * Returns 0 or an I/O error (the batch is then not durable). */
int kv_log_commit(struct kv_log *log);

/* Bytes pending. */
static inline size_t kv_log_pending(const struct kv_log *log)
{
	return kv_buf_size(&log->pending);
}

/* The live records a compaction writes: returns 1 and fills *r, or 0 at the
 * end. */
typedef int (*kv_log_next_fn)(void *ctx, struct kv_log_rec *r);

/* Commits what is pending, then writes the image next() yields into the
 * other region under the next generation and switches to it (see above).
 * Returns 0, -KV_ENOSPC when the image does not fit (the old log stays), or
 * an I/O error. Cost: O(image) disk writes, two flushes. */
int kv_log_compact(struct kv_log *log, kv_log_next_fn next, void *ctx);

/* Whether the log has grown enough over an image of image_bytes to be worth
 * compacting: past twice the image plus 16 MiB, or past half the region with
 * over a fifth of it garbage. */
bool kv_log_should_compact(const struct kv_log *log, uint64_t image_bytes);

#endif /* KV_LOG_H */
