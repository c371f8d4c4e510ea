/*
 * kv_db: the keyspace. String keys to string values in a chained hash table
 * (seeded hash, load factor <= 1, doubled when it fills, O(keys) then), each
 * entry one heap block holding the key and the value. A key may carry an
 * expiry time on the guest monotonic clock: an expired key is gone for every
 * reader at once (checked on access) and its memory comes back when it is
 * next touched or when kv_db_sweep walks past it.
 *
 * Memory: a write that would take the heap's used bytes over `maxmemory`
 * fails with -KV_ENOMEM and changes nothing, so a full store still answers
 * reads and deletes. Deletes never allocate.
 */
#ifndef KV_DB_H
#define KV_DB_H

#include "kv_heap.h"

struct kv_entry {
	struct kv_entry *next;
	uint64_t hash;
	uint64_t expire; /* guest monotonic ns; 0 = never */
	uint32_t klen;
	uint32_t vlen;
	uint8_t data[];  /* the key, then the value */
};

static inline const uint8_t *kv_entry_key(const struct kv_entry *e)
{
	return e->data;
}

static inline uint8_t *kv_entry_value(struct kv_entry *e)
{
	return e->data + e->klen;
}

struct kv_db {
	struct kv_heap *heap;
	struct kv_entry **table;
	size_t buckets;     /* a power of two */
	size_t count;       /* keys, expired ones not yet removed included */
	size_t payload;     /* key and value bytes of all keys */
	size_t maxmemory;   /* writes fail once heap->used would pass it */
	uint64_t seed;      /* hash seed */
	size_t sweep_next;  /* the bucket kv_db_sweep looks at next */
	uint64_t expired;   /* keys removed because they expired */
	/* Called every KV_DB_YIELD_EVERY entries of a long walk (flush, table
	 * growth), so that a guest can make a hypercall in between: a guest that
	 * makes none for seconds is stopped as a runaway. NULL: not called. */
	void (*yield)(void *ctx);
	void *yield_ctx;
};

#define KV_DB_YIELD_EVERY 65536u

/* Sets up an empty keyspace on heap (a small table is allocated at once).
 * Returns 0 or -KV_ENOMEM. */
int kv_db_init(struct kv_db *db, struct kv_heap *heap, uint64_t seed, size_t maxmemory);

/* The live entry for key, or NULL; an expired one is removed on the way. */
struct kv_entry *kv_db_get(struct kv_db *db, const void *key, size_t klen, uint64_t now);

/* Sets key to value with the given expiry (0 = none), replacing any entry.
 * Returns 0 or -KV_ENOMEM (nothing changed). */
int kv_db_set(struct kv_db *db, const void *key, size_t klen, const void *val, size_t vlen,
	      uint64_t expire);

/* Appends n bytes to e's value (e from kv_db_get), keeping its expiry; *e is
 * replaced when the entry moves. Returns 0 or -KV_ENOMEM (nothing changed). */
int kv_db_append(struct kv_db *db, struct kv_entry **e, const void *p, size_t n);

/* Removes key. Returns 1 when a live key was removed, else 0. */
int kv_db_del(struct kv_db *db, const void *key, size_t klen, uint64_t now);

/* Removes every key. O(keys). */
void kv_db_flush(struct kv_db *db);

/* Looks at up to `budget` buckets from where the last sweep stopped and
 * removes the expired keys there. Returns how many it removed. */
size_t kv_db_sweep(struct kv_db *db, uint64_t now, size_t budget);

/* Iteration (no changes in between): start with *bucket = 0 and e = NULL;
 * returns the next entry (expired ones included) or NULL at the end. */
struct kv_entry *kv_db_next(const struct kv_db *db, size_t *bucket, const struct kv_entry *e);

/* Whether a value of vlen bytes under a klen-byte key may be stored now,
 * replacing an entry of old_vlen (0 when none) bytes. */
bool kv_db_fits(const struct kv_db *db, size_t klen, size_t vlen, bool replaces, size_t old_vlen);

#endif /* KV_DB_H */
