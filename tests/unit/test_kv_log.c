/* kvstore's append-only log (hv-core/guest/kvstore/kv_log.c): records replay
 * exactly; a torn or corrupt tail is cut at every byte offset and never
 * misread; stale records past a cut stay dead; compaction loses nothing when
 * the disk stops at any write; bad superblocks are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_test_disk.h"

#define DISK_SIZE (8192u + 2u * 32768u)
#define HEAP_SIZE (16u << 20)
#define MAX_KEYS 256
#define BIG_KEYS 64

/* The state a replay builds: a tiny map, enough to compare outcomes. */
struct model {
	unsigned n;
	char key[MAX_KEYS][32];
	char val[MAX_KEYS][256];
	uint64_t expire[MAX_KEYS];
	unsigned applied;
	enum kv_log_op ops[256];
};

static int model_find(const struct model *m, const char *k)
{
	for (unsigned i = 0; i < m->n; i++) {
		if (strcmp(m->key[i], k) == 0)
			return (int)i;
	}
	return -1;
}

static int model_apply(void *ctx, const struct kv_log_rec *r)
{
	struct model *m = ctx;
	char k[32] = { 0 };
	assert_true(r->klen < sizeof(k));
	if (r->klen)
		memcpy(k, r->key, r->klen);
	if (m->applied < 256)
		m->ops[m->applied] = r->op;
	m->applied++;
	int i = r->op == KV_LOG_FLUSHALL ? -1 : model_find(m, k);
	switch (r->op) {
	case KV_LOG_SET:
	case KV_LOG_APPEND:
		if (i < 0) {
			assert_true(m->n < MAX_KEYS);
			i = (int)m->n++;
			strcpy(m->key[i], k);
			m->val[i][0] = 0;
			m->expire[i] = 0;
		}
		if (r->op == KV_LOG_SET) {
			m->val[i][0] = 0;
			m->expire[i] = r->expire_wall;
		}
		assert_true(strlen(m->val[i]) + r->vlen < sizeof(m->val[i]));
		strncat(m->val[i], (const char *)r->val, r->vlen);
		return 0;
	case KV_LOG_DEL:
		if (i >= 0) {
			m->n--;
			memmove(m->key[i], m->key[m->n], sizeof(m->key[i]));
			memmove(m->val[i], m->val[m->n], sizeof(m->val[i]));
			m->expire[i] = m->expire[m->n];
		}
		return 0;
	case KV_LOG_FLUSHALL:
		m->n = 0;
		return 0;
	}
	return -KV_EBADMSG;
}

static void assert_models_equal(const struct model *a, const struct model *b)
{
	assert_int_equal(a->n, b->n);
	for (unsigned i = 0; i < a->n; i++) {
		int j = model_find(b, a->key[i]);
		if (j < 0)
			fail_msg("key %s missing", a->key[i]);
		assert_string_equal(a->val[i], b->val[j]);
		assert_int_equal(a->expire[i], b->expire[j]);
	}
}

struct fixture {
	uint8_t *heap_mem;
	struct kv_heap heap;
};

static struct fixture fx;

static int setup(void **state)
{
	(void)state;
	fx.heap_mem = malloc(HEAP_SIZE);
	return kv_heap_init(&fx.heap, fx.heap_mem, HEAP_SIZE);
}

static int teardown(void **state)
{
	(void)state;
	free(fx.heap_mem);
	return 0;
}

static int open_log(struct kv_log *log, struct memdisk *d, uint64_t boot, struct model *m,
		    struct kv_log_report *rep)
{
	struct kv_disk disk = memdisk_disk(d);
	memset(m, 0, sizeof(*m));
	return kv_log_open(log, &disk, &fx.heap, boot, 0x5eed, model_apply, m, rep);
}

static struct kv_log_rec set_rec(const char *k, const char *v, uint64_t expire)
{
	return (struct kv_log_rec){ .op = KV_LOG_SET, .key = (const uint8_t *)k, .klen = strlen(k),
				    .val = (const uint8_t *)v, .vlen = strlen(v),
				    .expire_wall = expire };
}

static struct kv_log_rec del_rec(const char *k)
{
	return (struct kv_log_rec){ .op = KV_LOG_DEL, .key = (const uint8_t *)k, .klen = strlen(k) };
}

static void append_commit(struct kv_log *log, const struct kv_log_rec *r)
{
	assert_int_equal(kv_log_reserve(log, kv_log_rec_size(r)), 0);
	kv_log_append(log, r);
	assert_int_equal(kv_log_commit(log), 0);
}

static void a_blank_disk_is_formatted_and_empty(void **state)
{
	(void)state;
	struct memdisk d;
	struct kv_log log;
	struct kv_log_report rep;
	struct model m;
	memdisk_init(&d, DISK_SIZE);
	assert_int_equal(open_log(&log, &d, 1, &m, &rep), 0);
	assert_true(rep.formatted);
	assert_int_equal(rep.records, 0);
	assert_false(rep.cut);
	assert_int_equal(rep.gen, 1);
	assert_int_equal(d.flushes, 1); /* the superblock is durable before anything else */
	kv_log_close(&log);
	/* Reopened: no longer blank, still empty. */
	assert_int_equal(open_log(&log, &d, 2, &m, &rep), 0);
	assert_false(rep.formatted);
	assert_int_equal(rep.records, 0);
	kv_log_close(&log);
	assert_int_equal(fx.heap.used, 0);
	memdisk_free(&d);
}

static void every_kind_of_record_replays_exactly(void **state)
{
	(void)state;
	struct memdisk d;
	struct kv_log log;
	struct kv_log_report rep;
	struct model m, want;
	memdisk_init(&d, DISK_SIZE);
	assert_int_equal(open_log(&log, &d, 1, &m, &rep), 0);
	struct kv_log_rec recs[] = {
		set_rec("a", "1", 0), set_rec("b", "two", 1234567890123ull), set_rec("gone", "x", 0),
		del_rec("gone"), { .op = KV_LOG_FLUSHALL }, set_rec("c", "", 0), set_rec("d", "ab", 0),
		{ .op = KV_LOG_APPEND, .key = (const uint8_t *)"d", .klen = 1,
		  .val = (const uint8_t *)"cde", .vlen = 3 },
		set_rec("b", "again", 99),
	};
	size_t n = sizeof(recs) / sizeof(recs[0]);
	memset(&want, 0, sizeof(want));
	/* Some records share one commit, as a poll round's do. */
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(kv_log_reserve(&log, kv_log_rec_size(&recs[i])), 0);
		kv_log_append(&log, &recs[i]);
		model_apply(&want, &recs[i]);
		if (i % 3 == 2)
			assert_int_equal(kv_log_commit(&log), 0);
	}
	assert_int_equal(d.flushes, 1 + 3);
	kv_log_close(&log);
	assert_int_equal(open_log(&log, &d, 2, &m, &rep), 0);
	assert_int_equal(rep.records, n);
	assert_false(rep.cut);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(m.ops[i], recs[i].op);
	assert_models_equal(&m, &want);
	assert_int_equal(m.n, 3);
	kv_log_close(&log);
	memdisk_free(&d);
}

/* Writes `count` records, one commit each; returns their end offsets (bytes
 * into region 0) in ends[]. */
static void write_series(struct memdisk *d, unsigned count, uint64_t ends[], uint64_t boot)
{
	struct kv_log log;
	struct kv_log_report rep;
	struct model m;
	char k[16], v[64];
	assert_int_equal(open_log(&log, d, boot, &m, &rep), 0);
	for (unsigned i = 0; i < count; i++) {
		snprintf(k, sizeof(k), "key%u", i);
		snprintf(v, sizeof(v), "%.*s", (int)(i * 7 % 40), "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG");
		struct kv_log_rec r = set_rec(k, v, i % 2 ? 1000 + i : 0);
		append_commit(&log, &r);
		ends[i] = log.tail;
	}
	kv_log_close(&log);
}

/* Where record i's payload ends (its padding after that). */
static uint64_t payload_end(const struct memdisk *d, const uint64_t ends[], unsigned i)
{
	uint64_t start = i ? ends[i - 1] : 0;
	struct kv_log_rec_hdr h;
	memcpy(&h, d->data + KV_LOG_REGIONS_OFF + start, sizeof(h));
	return start + KV_LOG_HDR + h.len;
}

static void a_torn_tail_is_cut_at_every_byte_offset(void **state)
{
	(void)state;
	enum { N = 10 };
	struct memdisk d;
	uint64_t ends[N];
	memdisk_init(&d, DISK_SIZE);
	write_series(&d, N, ends, 1);
	uint64_t end = ends[N - 1];
	unsigned checked = 0;
	for (int garbage = 0; garbage < 2; garbage++) {
		srand(7);
		for (uint64_t k = 0; k <= end; k++) {
			struct memdisk t;
			struct kv_log log;
			struct kv_log_report rep;
			struct model m;
			memdisk_clone(&t, &d, false);
			for (uint64_t b = k; b < end; b++)
				t.data[KV_LOG_REGIONS_OFF + b] = garbage ? (uint8_t)(rand() | 1) : 0;
			/* A record is whole when its header and payload are;
			 * its padding carries nothing. */
			unsigned whole = 0;
			while (whole < N && payload_end(&d, ends, whole) <= k)
				whole++;
			uint64_t boundary = whole ? ends[whole - 1] : 0;
			assert_int_equal(open_log(&log, &t, 100 + k, &m, &rep), 0);
			if (rep.records != whole)
				fail_msg("torn at %llu (%s): %llu records, want %u", (unsigned long long)k,
					 garbage ? "garbage" : "zeros", (unsigned long long)rep.records, whole);
			assert_int_equal(rep.tail, boundary);
			assert_int_equal(rep.cut, boundary < end && (garbage || k > boundary));
			/* The cut log takes new records where it stopped, and they
			 * replay after the kept ones. */
			struct kv_log_rec r = set_rec("after", "cut", 0);
			append_commit(&log, &r);
			kv_log_close(&log);
			assert_int_equal(open_log(&log, &t, 200 + k, &m, &rep), 0);
			assert_int_equal(rep.records, whole + 1);
			assert_int_equal(m.ops[whole], KV_LOG_SET);
			assert_int_equal(model_find(&m, "after"), (int)m.n - 1);
			kv_log_close(&log);
			memdisk_free(&t);
			checked++;
		}
	}
	assert_int_equal(checked, 2 * (end + 1));
	memdisk_free(&d);
}

static void a_corrupt_byte_anywhere_cuts_the_log_at_its_record(void **state)
{
	(void)state;
	enum { N = 8 };
	struct memdisk d;
	uint64_t ends[N];
	memdisk_init(&d, DISK_SIZE);
	write_series(&d, N, ends, 1);
	for (uint64_t k = 0; k < ends[N - 1]; k++) {
		struct memdisk t;
		struct kv_log log;
		struct kv_log_report rep;
		struct model m;
		unsigned rec = 0;
		while (ends[rec] <= k)
			rec++;
		uint64_t start = rec ? ends[rec - 1] : 0;
		struct kv_log_rec_hdr h;
		memcpy(&h, d.data + KV_LOG_REGIONS_OFF + start, sizeof(h));
		/* Padding after the payload is not part of the record's meaning. */
		if (k >= start + KV_LOG_HDR + h.len)
			continue;
		memdisk_clone(&t, &d, false);
		t.data[KV_LOG_REGIONS_OFF + k] ^= 0x10;
		assert_int_equal(open_log(&log, &t, 2, &m, &rep), 0);
		if (rep.records != rec)
			fail_msg("flip at %llu: %llu records, want %u", (unsigned long long)k,
				 (unsigned long long)rep.records, rec);
		assert_true(rep.cut);
		kv_log_close(&log);
		memdisk_free(&t);
	}
	memdisk_free(&d);
}

static void stale_records_past_a_cut_are_never_read(void **state)
{
	(void)state;
	enum { N = 5 };
	struct memdisk d;
	struct kv_log log;
	struct kv_log_report rep;
	struct model m;
	uint64_t ends[N];
	memdisk_init(&d, DISK_SIZE);
	write_series(&d, N, ends, 1);
	/* Record 3 (index 2) torn: one byte of its payload lost. */
	d.data[KV_LOG_REGIONS_OFF + ends[1] + KV_LOG_HDR + 1] ^= 0xff;
	assert_int_equal(open_log(&log, &d, 2, &m, &rep), 0);
	assert_int_equal(rep.records, 2);
	/* The next boot writes a record of exactly the torn one's content and
	 * size: records 4 and 5 follow it intact on the disk, but they belong to
	 * another history and must stay dead. */
	struct kv_log_rec r = set_rec("key2", "01234567890123", 0);
	assert_int_equal(kv_log_rec_size(&r), ends[2] - ends[1]);
	append_commit(&log, &r);
	kv_log_close(&log);
	assert_int_equal(open_log(&log, &d, 3, &m, &rep), 0);
	assert_int_equal(rep.records, 3);
	assert_true(rep.cut); /* record 4's bytes are there, and refused */
	assert_int_equal(model_find(&m, "key3"), -1);
	kv_log_close(&log);
	memdisk_free(&d);
}

static void bad_superblocks_are_refused_and_a_torn_one_falls_back(void **state)
{
	(void)state;
	struct memdisk d, t;
	struct kv_log log;
	struct kv_log_report rep;
	struct model m;
	uint64_t ends[3];
	memdisk_init(&d, DISK_SIZE);
	write_series(&d, 3, ends, 1);
	/* Garbage in the only valid slot (gen 1 lives in slot 1): not blank, not ours. */
	memdisk_clone(&t, &d, false);
	t.data[KV_LOG_SLOT_SIZE + 20] ^= 1;
	assert_int_equal(open_log(&log, &t, 2, &m, &rep), -KV_EBADMSG);
	memdisk_free(&t);
	/* A superblock in the wrong slot for its generation. */
	memdisk_clone(&t, &d, false);
	memcpy(t.data, t.data + KV_LOG_SLOT_SIZE, 512);
	memset(t.data + KV_LOG_SLOT_SIZE, 0, 512);
	assert_int_equal(open_log(&log, &t, 2, &m, &rep), -KV_EBADMSG);
	memdisk_free(&t);
	/* Garbage everywhere. */
	memdisk_init(&t, DISK_SIZE);
	memset(t.data, 0xa5, DISK_SIZE);
	assert_int_equal(open_log(&log, &t, 2, &m, &rep), -KV_EBADMSG);
	memdisk_free(&t);
	/* The same disk read with another size: the region length differs. */
	memdisk_clone(&t, &d, false);
	t.size = DISK_SIZE - 8192;
	assert_int_equal(open_log(&log, &t, 2, &m, &rep), -KV_EBADMSG);
	t.size = DISK_SIZE;
	memdisk_free(&t);
	/* Too small for two regions. */
	memdisk_init(&t, KV_LOG_REGIONS_OFF + 2 * KV_LOG_MIN_REGION - 1);
	assert_int_equal(open_log(&log, &t, 2, &m, &rep), -KV_ENOSPC);
	memdisk_free(&t);
	assert_int_equal(fx.heap.used, 0);
	memdisk_free(&d);
}

/* Compaction's source: the model's keys as SET records. */
struct model_iter {
	const struct model *m;
	unsigned i;
};

static int model_next(void *ctx, struct kv_log_rec *r)
{
	struct model_iter *it = ctx;
	if (it->i == it->m->n)
		return 0;
	*r = set_rec(it->m->key[it->i], it->m->val[it->i], it->m->expire[it->i]);
	it->i++;
	return 1;
}

/* A log with some history: 12 keys written, rewritten, some deleted. */
static void write_history(struct memdisk *d, struct model *want)
{
	struct kv_log log;
	struct kv_log_report rep;
	struct model m;
	char k[16], v[32];
	memset(want, 0, sizeof(*want));
	assert_int_equal(open_log(&log, d, 1, &m, &rep), 0);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < 12; i++) {
			snprintf(k, sizeof(k), "k%u", i);
			snprintf(v, sizeof(v), "v%u.%u", i, round);
			struct kv_log_rec r = (round == 2 && i % 4 == 0) ? del_rec(k) : set_rec(k, v, i);
			append_commit(&log, &r);
			model_apply(want, &r);
		}
	}
	kv_log_close(&log);
}

static void compaction_keeps_the_state_and_later_appends(void **state)
{
	(void)state;
	struct memdisk d;
	struct kv_log log;
	struct kv_log_report rep;
	struct model m, want;
	memdisk_init(&d, DISK_SIZE);
	write_history(&d, &want);
	for (unsigned c = 0; c < 3; c++) { /* region 1, back to region 0, region 1 */
		assert_int_equal(open_log(&log, &d, 10 + c, &m, &rep), 0);
		assert_models_equal(&m, &want);
		uint64_t before = log.tail;
		struct model_iter it = { &m, 0 };
		assert_int_equal(kv_log_compact(&log, model_next, &it), 0);
		assert_int_equal(log.gen, rep.gen + 1);
		assert_int_equal(log.region, (c + 1) % 2);
		assert_true(c > 0 || log.tail < before);
		struct kv_log_rec r = set_rec("new", c == 1 ? "one" : "other", 0);
		append_commit(&log, &r);
		model_apply(&want, &r);
		kv_log_close(&log);
	}
	assert_int_equal(open_log(&log, &d, 20, &m, &rep), 0);
	assert_int_equal(rep.gen, 4);
	assert_int_equal(rep.records, want.n + 1); /* the image, then "new" once more */
	assert_models_equal(&m, &want);
	kv_log_close(&log);
	memdisk_free(&d);
}

static void a_crash_at_any_point_of_a_compaction_loses_nothing(void **state)
{
	(void)state;
	struct memdisk d;
	struct model want, m;
	struct kv_log log;
	struct kv_log_report rep;
	memdisk_init(&d, DISK_SIZE);
	write_history(&d, &want);
	/* How many writes a whole compaction takes here. */
	struct memdisk t;
	memdisk_clone(&t, &d, false);
	assert_int_equal(open_log(&log, &t, 2, &m, &rep), 0);
	unsigned w0 = t.writes;
	struct model_iter it = { &m, 0 };
	assert_int_equal(kv_log_compact(&log, model_next, &it), 0);
	unsigned total = t.writes - w0;
	kv_log_close(&log);
	memdisk_free(&t);
	assert_true(total >= 2); /* the image, then the superblock */

	for (unsigned w = 0; w <= total; w++) {
		for (int durable = 0; durable < 2; durable++) {
			memdisk_clone(&t, &d, false);
			assert_int_equal(open_log(&log, &t, 3, &m, &rep), 0);
			t.writes_left = w;
			it = (struct model_iter){ &m, 0 };
			int rc = kv_log_compact(&log, model_next, &it);
			assert_int_equal(rc, w < total ? -KV_EIO : 0);
			kv_log_close(&log);
			struct memdisk after;
			memdisk_clone(&after, &t, durable);
			assert_int_equal(open_log(&log, &after, 4, &m, &rep), 0);
			assert_models_equal(&m, &want);
			assert_int_equal(rep.gen, w < total ? 1 : 2);
			kv_log_close(&log);
			memdisk_free(&after);
			memdisk_free(&t);
		}
	}
	/* The superblock written but torn: the old log is still whole. */
	memdisk_clone(&t, &d, false);
	assert_int_equal(open_log(&log, &t, 5, &m, &rep), 0);
	it = (struct model_iter){ &m, 0 };
	assert_int_equal(kv_log_compact(&log, model_next, &it), 0);
	kv_log_close(&log);
	t.data[0 * KV_LOG_SLOT_SIZE + 30] ^= 4; /* generation 2 lives in slot 0 */
	assert_int_equal(open_log(&log, &t, 6, &m, &rep), 0);
	assert_int_equal(rep.gen, 1);
	assert_models_equal(&m, &want);
	kv_log_close(&log);
	memdisk_free(&t);
	memdisk_free(&d);
}

static void a_full_region_says_enospc_and_an_image_too_big_changes_nothing(void **state)
{
	(void)state;
	struct memdisk d;
	struct kv_log log;
	struct kv_log_report rep;
	struct model m;
	char v[200];
	memset(v, 'v', sizeof(v) - 1);
	v[sizeof(v) - 1] = 0;
	memdisk_init(&d, DISK_SIZE);
	assert_int_equal(open_log(&log, &d, 1, &m, &rep), 0);
	unsigned n = 0;
	for (;;) {
		char k[16];
		snprintf(k, sizeof(k), "k%u", n);
		struct kv_log_rec r = set_rec(k, v, 0);
		int rc = kv_log_reserve(&log, kv_log_rec_size(&r));
		if (rc == -KV_ENOSPC)
			break;
		assert_int_equal(rc, 0);
		kv_log_append(&log, &r);
		n++;
	}
	assert_int_equal(kv_log_commit(&log), 0);
	assert_true(log.tail + 256 > log.region_len);
	/* An image of all of them (as big as the region) plus one more cannot
	 * fit: the compaction gives up and the old log stays. */
	static struct model big;
	memset(&big, 0, sizeof(big));
	for (unsigned i = 0; i < BIG_KEYS; i++) {
		snprintf(big.key[i], sizeof(big.key[i]), "big%u", i);
		memcpy(big.val[i], v, sizeof(v));
	}
	big.n = BIG_KEYS;
	struct model_iter it = { &big, 0 };
	uint64_t gen = log.gen;
	/* 64 records of 248 bytes fit a 32 KiB region: make them not fit. */
	assert_true(BIG_KEYS * 248 < log.region_len);
	kv_log_close(&log);
	struct memdisk small;
	memdisk_init(&small, KV_LOG_REGIONS_OFF + 2 * 8192);
	assert_int_equal(open_log(&log, &small, 1, &m, &rep), 0);
	assert_int_equal(kv_log_compact(&log, model_next, &it), -KV_ENOSPC);
	assert_int_equal(log.gen, 1);
	kv_log_close(&log);
	assert_int_equal(open_log(&log, &small, 2, &m, &rep), 0);
	assert_int_equal(rep.gen, 1);
	assert_int_equal(rep.records, 0);
	kv_log_close(&log);
	memdisk_free(&small);
	assert_int_equal(open_log(&log, &d, 2, &m, &rep), 0);
	assert_int_equal(rep.records, n);
	assert_int_equal(rep.gen, gen);
	kv_log_close(&log);
	memdisk_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_blank_disk_is_formatted_and_empty),
		cmocka_unit_test(every_kind_of_record_replays_exactly),
		cmocka_unit_test(a_torn_tail_is_cut_at_every_byte_offset),
		cmocka_unit_test(a_corrupt_byte_anywhere_cuts_the_log_at_its_record),
		cmocka_unit_test(stale_records_past_a_cut_are_never_read),
		cmocka_unit_test(bad_superblocks_are_refused_and_a_torn_one_falls_back),
		cmocka_unit_test(compaction_keeps_the_state_and_later_appends),
		cmocka_unit_test(a_crash_at_any_point_of_a_compaction_loses_nothing),
		cmocka_unit_test(a_full_region_says_enospc_and_an_image_too_big_changes_nothing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
