/* kv_db: the keyspace; see kv_db.h. */
#include "kv_db.h"

#define MIN_BUCKETS 64u

static size_t entry_bytes(size_t klen, size_t vlen)
{
	return sizeof(struct kv_entry) + klen + vlen;
}

int kv_db_init(struct kv_db *db, struct kv_heap *heap, uint64_t seed, size_t maxmemory)
{
	memset(db, 0, sizeof(*db));
	db->heap = heap;
	db->seed = seed;
	db->maxmemory = maxmemory;
	db->table = kv_heap_alloc(heap, MIN_BUCKETS * sizeof(db->table[0]));
	if (!db->table)
		return -KV_ENOMEM;
	memset(db->table, 0, MIN_BUCKETS * sizeof(db->table[0]));
	db->buckets = MIN_BUCKETS;
	return 0;
}

static struct kv_entry **slot_of(struct kv_db *db, const void *key, size_t klen, uint64_t h)
{
	struct kv_entry **pp = &db->table[h & (db->buckets - 1)];
	for (; *pp; pp = &(*pp)->next) {
		struct kv_entry *e = *pp;
		if (e->hash == h && e->klen == klen && kv_mem_eq(e->data, key, klen))
			return pp;
	}
	return pp;
}

static void unlink_free(struct kv_db *db, struct kv_entry **pp)
{
	struct kv_entry *e = *pp;
	*pp = e->next;
	db->count--;
	db->payload -= e->klen + e->vlen;
	kv_heap_free(db->heap, e);
}

static void maybe_yield(struct kv_db *db, size_t *n)
{
	if (++*n % KV_DB_YIELD_EVERY == 0 && db->yield)
		db->yield(db->yield_ctx);
}

static bool expired(const struct kv_entry *e, uint64_t now)
{
	return e->expire && e->expire <= now;
}

struct kv_entry *kv_db_get(struct kv_db *db, const void *key, size_t klen, uint64_t now)
{
	uint64_t h = kv_hash(db->seed, key, klen);
	struct kv_entry **pp = slot_of(db, key, klen, h);

	if (!*pp)
		return NULL;
	if (expired(*pp, now)) {
		unlink_free(db, pp);
		db->expired++;
		return NULL;
	}
	return *pp;
}

/* Doubles the table when it is full; a failed allocation leaves it as it is
 * (longer chains, still correct). */
static void maybe_grow(struct kv_db *db)
{
	if (db->count < db->buckets)
		return;
	size_t nb = db->buckets * 2;
	size_t bytes = nb * sizeof(db->table[0]);
	if (db->heap->used + kv_heap_block_size(bytes) > db->maxmemory)
		return;
	struct kv_entry **t = kv_heap_alloc(db->heap, bytes);
	if (!t)
		return;
	memset(t, 0, bytes);
	size_t moved = 0;
	for (size_t b = 0; b < db->buckets; b++) {
		struct kv_entry *e = db->table[b];
		while (e) {
			struct kv_entry *next = e->next;
			struct kv_entry **head = &t[e->hash & (nb - 1)];
			e->next = *head;
			*head = e;
			e = next;
			maybe_yield(db, &moved);
		}
	}
	kv_heap_free(db->heap, db->table);
	db->table = t;
	db->buckets = nb;
	db->sweep_next = 0;
}

bool kv_db_fits(const struct kv_db *db, size_t klen, size_t vlen, bool replaces, size_t old_vlen)
{
	size_t need = kv_heap_block_size(entry_bytes(klen, vlen));
	size_t back = replaces ? kv_heap_block_size(entry_bytes(klen, old_vlen)) : 0;
	return need != 0 && db->heap->used + need <= db->maxmemory + back;
}

int kv_db_set(struct kv_db *db, const void *key, size_t klen, const void *val, size_t vlen,
	      uint64_t expire)
{
	uint64_t h = kv_hash(db->seed, key, klen);
	struct kv_entry **pp = slot_of(db, key, klen, h);
	struct kv_entry *old = *pp;

	/* In place when the block is big enough: no allocation, fewest stores. */
	if (old && kv_heap_usable(old) >= entry_bytes(klen, vlen)) {
		db->payload = db->payload - old->vlen + vlen;
		kv_copy(kv_entry_value(old), val, vlen);
		old->vlen = (uint32_t)vlen;
		old->expire = expire;
		return 0;
	}
	if (!kv_db_fits(db, klen, vlen, old != NULL, old ? old->vlen : 0))
		return -KV_ENOMEM;
	struct kv_entry *e = kv_heap_alloc(db->heap, entry_bytes(klen, vlen));
	if (!e)
		return -KV_ENOMEM;
	e->hash = h;
	e->expire = expire;
	e->klen = (uint32_t)klen;
	e->vlen = (uint32_t)vlen;
	kv_copy(e->data, key, klen);
	kv_copy(e->data + klen, val, vlen);
	if (old) {
		e->next = old->next;
		*pp = e;
		db->payload -= old->klen + old->vlen;
		kv_heap_free(db->heap, old);
	} else {
		e->next = NULL;
		*pp = e;
		db->count++;
	}
	db->payload += klen + vlen;
	if (!old)
		maybe_grow(db);
	return 0;
}

int kv_db_append(struct kv_db *db, struct kv_entry **ep, const void *p, size_t n)
{
	struct kv_entry *e = *ep;
	size_t vlen = e->vlen + n;

	if (kv_heap_usable(e) >= entry_bytes(e->klen, vlen)) {
		memcpy(kv_entry_value(e) + e->vlen, p, n);
		e->vlen = (uint32_t)vlen;
		db->payload += n;
		return 0;
	}
	if (!kv_db_fits(db, e->klen, vlen, true, e->vlen))
		return -KV_ENOMEM;
	/* Twice the size, so that a run of appends costs O(1) copies each. */
	size_t want = entry_bytes(e->klen, vlen);
	struct kv_entry *ne = NULL;
	if (db->heap->used + kv_heap_block_size(want * 2) <=
	    db->maxmemory + kv_heap_block_size(entry_bytes(e->klen, e->vlen)))
		ne = kv_heap_alloc(db->heap, want * 2);
	if (!ne)
		ne = kv_heap_alloc(db->heap, want);
	if (!ne)
		return -KV_ENOMEM;
	memcpy(ne, e, entry_bytes(e->klen, e->vlen));
	memcpy(kv_entry_value(ne) + e->vlen, p, n);
	ne->vlen = (uint32_t)vlen;
	struct kv_entry **pp = slot_of(db, kv_entry_key(e), e->klen, e->hash);
	*pp = ne;
	kv_heap_free(db->heap, e);
	db->payload += n;
	*ep = ne;
	return 0;
}

int kv_db_del(struct kv_db *db, const void *key, size_t klen, uint64_t now)
{
	uint64_t h = kv_hash(db->seed, key, klen);
	struct kv_entry **pp = slot_of(db, key, klen, h);

	if (!*pp)
		return 0;
	bool live = !expired(*pp, now);
	if (!live)
		db->expired++;
	unlink_free(db, pp);
	return live ? 1 : 0;
}

void kv_db_flush(struct kv_db *db)
{
	size_t n = 0;
	for (size_t b = 0; b < db->buckets; b++) {
		while (db->table[b]) {
			unlink_free(db, &db->table[b]);
			maybe_yield(db, &n);
		}
	}
}

size_t kv_db_sweep(struct kv_db *db, uint64_t now, size_t budget)
{
	size_t removed = 0;

	if (budget > db->buckets)
		budget = db->buckets;
	for (size_t i = 0; i < budget; i++) {
		struct kv_entry **pp = &db->table[db->sweep_next];
		while (*pp) {
			if (expired(*pp, now)) {
				unlink_free(db, pp);
				removed++;
			} else {
				pp = &(*pp)->next;
			}
		}
		db->sweep_next = (db->sweep_next + 1) & (db->buckets - 1);
	}
	db->expired += removed;
	return removed;
}

struct kv_entry *kv_db_next(const struct kv_db *db, size_t *bucket, const struct kv_entry *e)
{
	if (e && e->next)
		return e->next;
	if (e)
		(*bucket)++;
	for (; *bucket < db->buckets; (*bucket)++) {
		if (db->table[*bucket])
			return db->table[*bucket];
	}
	return NULL;
}
