/* kv_log: the append-only log; see kv_log.h for the format and the promises. */
#include "kv_log.h"

static size_t pad8(size_t n)
{
	return (n + 7u) & ~(size_t)7u;
}

static uint64_t chain_seed(uint64_t nonce, uint64_t gen, uint64_t region)
{
	uint64_t w[2] = { gen, region };
	return kv_hash(nonce, w, sizeof(w));
}

static uint64_t region_offset(const struct kv_log *log, uint64_t region)
{
	return KV_LOG_REGIONS_OFF + region * log->region_len;
}

static uint64_t super_sum(const struct kv_log_super *s)
{
	return kv_hash(0, s, offsetof(struct kv_log_super, sum));
}

static void pending_clear(struct kv_log *log)
{
	log->pending.off = log->pending.len = 0;
}

size_t kv_log_rec_size(const struct kv_log_rec *r)
{
	switch (r->op) {
	case KV_LOG_SET: return KV_LOG_HDR + pad8(16 + r->klen + r->vlen);
	case KV_LOG_DEL: return KV_LOG_HDR + pad8(4 + r->klen);
	case KV_LOG_FLUSHALL: return KV_LOG_HDR;
	case KV_LOG_APPEND: return KV_LOG_HDR + pad8(8 + r->klen + r->vlen);
	}
	return 0;
}

/* Encodes r at dst under generation gen, continuing the chain from *sum.
 * Written in place, word by word: this runs once per write. */
static size_t encode(uint8_t *dst, uint64_t gen, uint64_t boot, uint64_t *sum,
		     const struct kv_log_rec *r)
{
	struct kv_log_rec_hdr *h = (struct kv_log_rec_hdr *)dst;
	uint8_t *p = dst + KV_LOG_HDR;
	size_t size = kv_log_rec_size(r);
	uint32_t len = 0;

	/* Zero the padding (under 8 bytes: size rounds the payload up to 8) with
	 * one store before the payload goes over all but the padding of it. */
	if (size > KV_LOG_HDR)
		*(kv_u64u *)(dst + size - 8) = 0;
	if (r->op == KV_LOG_SET) {
		*(kv_u64u *)p = r->expire_wall;
		*(kv_u64u *)(p + 8) = (uint64_t)r->klen | (uint64_t)r->vlen << 32;
		kv_copy(p + 16, r->key, r->klen);
		kv_copy(p + 16 + r->klen, r->val, r->vlen);
		len = (uint32_t)(16 + r->klen + r->vlen);
	} else if (r->op == KV_LOG_APPEND) {
		*(kv_u64u *)p = (uint64_t)r->klen | (uint64_t)r->vlen << 32;
		kv_copy(p + 8, r->key, r->klen);
		kv_copy(p + 8 + r->klen, r->val, r->vlen);
		len = (uint32_t)(8 + r->klen + r->vlen);
	} else if (r->op == KV_LOG_DEL) {
		*(kv_u32u *)p = (uint32_t)r->klen;
		kv_copy(p + 4, r->key, r->klen);
		len = (uint32_t)(4 + r->klen);
	}
	h->magic = KV_LOG_REC_MAGIC;
	h->len = len;
	h->gen = gen;
	h->boot = boot;
	*(kv_u64u *)&h->op = (uint64_t)r->op; /* op and its zero padding */
	h->sum = kv_hash(kv_hash(*sum, h, offsetof(struct kv_log_rec_hdr, sum)), p, len);
	*sum = h->sum;
	return size;
}

/* Decodes "u32 klen, u32 vlen, key, value" filling len bytes exactly. */
static int decode_key_value(const uint8_t *p, uint32_t len, struct kv_log_rec *r)
{
	uint32_t k, v;

	if (len < 8)
		return -KV_EBADMSG;
	memcpy(&k, p, 4);
	memcpy(&v, p + 4, 4);
	if ((uint64_t)8 + k + v != len)
		return -KV_EBADMSG;
	r->key = p + 8;
	r->klen = k;
	r->val = p + 8 + k;
	r->vlen = v;
	return 0;
}

/* Decodes a payload whose sum matched. Returns 0 or -KV_EBADMSG. */
static int decode(const struct kv_log_rec_hdr *h, const uint8_t *p, struct kv_log_rec *r)
{
	uint32_t k;

	memset(r, 0, sizeof(*r));
	r->op = (enum kv_log_op)h->op;
	switch (h->op) {
	case KV_LOG_SET:
		if (h->len < 8)
			return -KV_EBADMSG;
		memcpy(&r->expire_wall, p, 8);
		return decode_key_value(p + 8, h->len - 8, r);
	case KV_LOG_DEL:
		if (h->len < 4)
			return -KV_EBADMSG;
		memcpy(&k, p, 4);
		if ((uint64_t)4 + k != h->len)
			return -KV_EBADMSG;
		r->key = p + 4;
		r->klen = k;
		return 0;
	case KV_LOG_APPEND:
		return decode_key_value(p, h->len, r);
	case KV_LOG_FLUSHALL:
		return h->len == 0 ? 0 : -KV_EBADMSG;
	}
	return -KV_EBADMSG;
}

static int write_super(struct kv_log *log, uint64_t gen, uint64_t region)
{
	uint8_t slot[512];
	struct kv_log_super s;

	memset(&s, 0, sizeof(s));
	s.magic = KV_LOG_SUPER_MAGIC;
	s.version = KV_LOG_VERSION;
	s.nonce = log->nonce;
	s.gen = gen;
	s.region = region;
	s.region_len = log->region_len;
	s.sum = super_sum(&s);
	memset(slot, 0, sizeof(slot));
	memcpy(slot, &s, sizeof(s));
	int rc = log->disk.ops->write(log->disk.ctx, (gen % 2) * KV_LOG_SLOT_SIZE, slot, sizeof(slot));
	if (rc < 0)
		return rc;
	return log->disk.ops->flush(log->disk.ctx);
}

static bool super_valid(const struct kv_log *log, const struct kv_log_super *s, unsigned slot)
{
	return s->magic == KV_LOG_SUPER_MAGIC && s->version == KV_LOG_VERSION && s->zero == 0 &&
	       s->sum == super_sum(s) && s->gen >= 1 && s->gen % 2 == slot && s->region <= 1 &&
	       s->region_len == log->region_len;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		if (b[i])
			return false;
	}
	return true;
}

/* Picks the superblock, or formats a blank disk. */
static int load_super(struct kv_log *log, uint64_t disk_nonce, struct kv_log_report *rep)
{
	struct kv_log_super s[2];
	int best = -1;

	for (unsigned i = 0; i < 2; i++) {
		int rc = log->disk.ops->read(log->disk.ctx, i * KV_LOG_SLOT_SIZE, &s[i], sizeof(s[i]));
		if (rc < 0)
			return rc;
		if (super_valid(log, &s[i], i) && (best < 0 || s[i].gen > s[best].gen))
			best = (int)i;
	}
	if (best < 0) {
		if (!all_zero(s, sizeof(s)))
			return -KV_EBADMSG;
		log->nonce = disk_nonce;
		log->gen = 1;
		log->region = 0;
		rep->formatted = true;
		return write_super(log, 1, 0);
	}
	log->nonce = s[best].nonce;
	log->gen = s[best].gen;
	log->region = s[best].region;
	return 0;
}

/* Makes the replay window hold region bytes [t, t + need): when it does not,
 * reads up to KV_LOG_BATCH bytes from t into it. Returns 0 or an I/O error. */
static int window_hold(struct kv_log *log, uint8_t *win, uint64_t *win_off, uint64_t *win_len,
		       uint64_t t, uint64_t need)
{
	if (t >= *win_off && t + need <= *win_off + *win_len)
		return 0;
	*win_off = t;
	*win_len = log->region_len - t < KV_LOG_BATCH ? log->region_len - t : KV_LOG_BATCH;
	return log->disk.ops->read(log->disk.ctx, region_offset(log, log->region) + t, win,
				   *win_len);
}

/* Replays the active region; sets tail, prev_sum and the report. */
static int replay(struct kv_log *log, kv_log_apply_fn apply, void *ctx, struct kv_log_report *rep)
{
	uint8_t *win = log->pending.data;
	uint64_t t = 0, win_off = 0, win_len = 0;
	uint64_t prev = chain_seed(log->nonce, log->gen, log->region);
	struct kv_log_rec_hdr h;
	int rc;

	for (;;) {
		if (t + KV_LOG_HDR > log->region_len)
			break;
		rc = window_hold(log, win, &win_off, &win_len, t, KV_LOG_HDR);
		if (rc < 0)
			return rc;
		memcpy(&h, win + (t - win_off), sizeof(h));
		if (h.magic != KV_LOG_REC_MAGIC || h.gen != log->gen ||
		    h.len > KV_LOG_MAX_REC - KV_LOG_HDR)
			break;
		uint64_t size = KV_LOG_HDR + pad8(h.len);
		if (t + size > log->region_len)
			break;
		rc = window_hold(log, win, &win_off, &win_len, t, size);
		if (rc < 0)
			return rc;
		const uint8_t *payload = win + (t - win_off) + KV_LOG_HDR;
		uint64_t sum = kv_hash(kv_hash(prev, &h, offsetof(struct kv_log_rec_hdr, sum)),
				       payload, h.len);
		struct kv_log_rec r;
		if (sum != h.sum || decode(&h, payload, &r) < 0)
			break;
		rc = apply(ctx, &r);
		if (rc < 0)
			return rc;
		prev = sum;
		t += size;
		rep->records++;
	}
	/* Anything but zeros where the log stops is a torn or corrupt record. */
	if (t < log->region_len) {
		uint64_t n = log->region_len - t < KV_LOG_HDR ? log->region_len - t : KV_LOG_HDR;
		rc = window_hold(log, win, &win_off, &win_len, t, n);
		if (rc < 0)
			return rc;
		rep->cut = !all_zero(win + (t - win_off), n);
	}
	log->tail = t;
	log->prev_sum = log->pend_sum = prev;
	rep->tail = t;
	return 0;
}

int kv_log_open(struct kv_log *log, const struct kv_disk *disk, struct kv_heap *heap,
		uint64_t boot, uint64_t disk_nonce, kv_log_apply_fn apply, void *ctx,
		struct kv_log_report *rep)
{
	int rc;

	memset(log, 0, sizeof(*log));
	memset(rep, 0, sizeof(*rep));
	log->disk = *disk;
	log->boot = boot;
	kv_buf_init(&log->pending, heap, KV_LOG_BATCH);
	if (disk->size < KV_LOG_REGIONS_OFF + 2u * KV_LOG_MIN_REGION)
		return -KV_ENOSPC;
	log->region_len = ((disk->size - KV_LOG_REGIONS_OFF) / 2) & ~(uint64_t)4095;
	rc = kv_buf_reserve(&log->pending, KV_LOG_BATCH);
	if (rc < 0)
		return rc;
	rc = load_super(log, disk_nonce, rep);
	if (rc == 0)
		rc = replay(log, apply, ctx, rep);
	rep->gen = log->gen;
	if (rc < 0)
		kv_log_close(log);
	return rc;
}

void kv_log_close(struct kv_log *log)
{
	kv_buf_release(&log->pending);
}

int kv_log_reserve(struct kv_log *log, size_t size)
{
	if (size > KV_LOG_MAX_REC)
		return -KV_EMSGSIZE;
	if (kv_log_pending(log) + size > KV_LOG_BATCH) {
		int rc = kv_log_commit(log);
		if (rc < 0)
			return rc;
	}
	if (log->tail + kv_log_pending(log) + size > log->region_len)
		return -KV_ENOSPC;
	return 0;
}

void kv_log_append(struct kv_log *log, const struct kv_log_rec *r)
{
	size_t n = encode(kv_buf_tail(&log->pending), log->gen, log->boot, &log->pend_sum, r);
	kv_buf_commit(&log->pending, n);
}

int kv_log_commit(struct kv_log *log)
{
	size_t n = kv_log_pending(log);
	int rc;

	if (n == 0)
		return 0;
	rc = log->disk.ops->write(log->disk.ctx, region_offset(log, log->region) + log->tail,
				  kv_buf_head(&log->pending), n);
	if (rc == 0)
		rc = log->disk.ops->flush(log->disk.ctx);
	if (rc < 0)
		return rc;
	log->tail += n;
	log->prev_sum = log->pend_sum;
	pending_clear(log);
	log->commits++;
	return 0;
}

/* Compaction's staging: writes the pending bytes at base + *t and empties
 * the batch (also on failure: the image is abandoned then). */
static int write_pending(struct kv_log *log, uint64_t base, uint64_t *t)
{
	size_t n = kv_log_pending(log);
	int rc = n ? log->disk.ops->write(log->disk.ctx, base + *t, kv_buf_head(&log->pending), n) : 0;

	pending_clear(log);
	if (rc == 0)
		*t += n;
	return rc;
}

int kv_log_compact(struct kv_log *log, kv_log_next_fn next, void *ctx)
{
	uint64_t gen = log->gen + 1, region = 1 - log->region;
	uint64_t base = region_offset(log, region);
	uint64_t sum = chain_seed(log->nonce, gen, region);
	uint64_t t = 0;
	struct kv_log_rec r;
	int rc = kv_log_commit(log);

	if (rc < 0)
		return rc;
	while (next(ctx, &r) > 0) {
		size_t size = kv_log_rec_size(&r);
		if (t + kv_log_pending(log) + size > log->region_len) {
			pending_clear(log);
			return -KV_ENOSPC;
		}
		if (kv_log_pending(log) + size > KV_LOG_BATCH) {
			rc = write_pending(log, base, &t);
			if (rc < 0)
				return rc;
		}
		kv_buf_commit(&log->pending, encode(kv_buf_tail(&log->pending), gen, log->boot, &sum, &r));
	}
	rc = write_pending(log, base, &t);
	if (rc < 0)
		return rc;
	/* The image must be durable before the superblock that names it. */
	rc = log->disk.ops->flush(log->disk.ctx);
	if (rc < 0)
		return rc;
	rc = write_super(log, gen, region);
	if (rc < 0)
		return rc;
	log->gen = gen;
	log->region = region;
	log->tail = t;
	log->prev_sum = log->pend_sum = sum;
	log->compactions++;
	return 0;
}

bool kv_log_should_compact(const struct kv_log *log, uint64_t image_bytes)
{
	uint64_t t = log->tail;
	return t > 2 * image_bytes + 16u * 1024u * 1024u ||
	       (t > log->region_len / 2 && t > image_bytes &&
		t - image_bytes > log->region_len / 5);
}
