/*
 * Guest disks striped over 4 MiB RADOS objects, checked against an in-memory
 * reference: random offsets and lengths (many across object boundaries),
 * holes reading as zeros, many asynchronous requests in flight, flush, resize
 * both ways, delete, and bad input. PVHA_TEST_SEED=N replays a run.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <rados/librados.h>

#include "ceph_suite.h"
#include "pvstore/names.h"
#include "pvstore/pvstore.h"

#define OBJ PVSTORE_DISK_OBJECT_SIZE

static struct ceph_fixture fx;
static struct pvstore *st;
static rados_t raw_cl;
static rados_ioctx_t raw;
static uint64_t seed;

static uint64_t rnd(void)
{
	/* xorshift64*: reproducible from the printed seed */
	seed ^= seed >> 12;
	seed ^= seed << 25;
	seed ^= seed >> 27;
	return seed * 2685821657736338717ull;
}

static int group_setup(void **state)
{
	(void)state;
	const char *s = getenv("PVHA_TEST_SEED");
	seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
	fprintf(stderr, "test_store_disk: PVHA_TEST_SEED=%" PRIu64 "\n", seed);
	ceph_suite_rados(&fx, &raw_cl, &raw);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rados_ioctx_destroy(raw);
	rados_shutdown(raw_cl);
	return 0;
}

static bool object_exists(const uint8_t uuid[16], uint64_t index)
{
	char oid[PVSTORE_OID_MAX];
	uint64_t size;
	time_t mtime;
	pvstore_oid_disk_data(oid, sizeof(oid), uuid, index);
	return rados_stat(raw, oid, &size, &mtime) == 0;
}

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t v = rnd();
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

/* An offset near an object boundary half of the time. */
static uint64_t pick_offset(uint64_t size)
{
	if (rnd() % 2) {
		uint64_t boundary = (rnd() % (size / OBJ + 1)) * OBJ;
		int64_t delta = (int64_t)(rnd() % 8192) - 4096;
		int64_t off = (int64_t)boundary + delta;
		if (off < 0)
			off = 0;
		if ((uint64_t)off >= size)
			off = (int64_t)size - 1;
		return (uint64_t)off;
	}
	return rnd() % size;
}

static size_t pick_length(uint64_t off, uint64_t size)
{
	static const size_t shapes[] = {1, 511, 512, 4096, 65536, OBJ - 1, OBJ, OBJ + 1, 2 * OBJ + 4096};
	size_t len = rnd() % 3 ? (size_t)(rnd() % 300000) + 1 : shapes[rnd() % 9];
	if (len > size - off)
		len = (size_t)(size - off);
	return len;
}

static void test_disk_random_io_matches_reference(void **state)
{
	(void)state;
	uint8_t uuid[16];
	const uint64_t size = 5 * (uint64_t)OBJ + 3 * 512; /* ends inside a sixth object */
	struct pvstore_disk *d;
	uint8_t *ref = calloc(1, size), *buf = malloc(3 * OBJ), *got = malloc(size);

	pvstore_uuid_generate(uuid);
	assert_int_equal(pvstore_disk_create(st, uuid, size), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	assert_int_equal(pvstore_disk_size(d), size);

	/* a new disk is all holes: zeros, and no data object at all */
	assert_int_equal(pvstore_disk_read(d, got, 0, size), 0);
	assert_memory_equal(got, ref, size);
	for (uint64_t i = 0; i < 6; i++)
		assert_false(object_exists(uuid, i));

	for (int op = 0; op < 250; op++) {
		uint64_t off = pick_offset(size);
		size_t len = pick_length(off, size);
		if (rnd() % 2) {
			fill_random(buf, len);
			int r = pvstore_disk_write(d, buf, off, len);
			if (r)
				fail_msg("op %d: write %zu at %" PRIu64 ": %d %s", op, len, off, r, pvstore_errmsg());
			memcpy(ref + off, buf, len);
		} else {
			memset(buf, 0xee, len);
			int r = pvstore_disk_read(d, buf, off, len);
			if (r)
				fail_msg("op %d: read %zu at %" PRIu64 ": %d %s", op, len, off, r, pvstore_errmsg());
			if (memcmp(buf, ref + off, len) != 0)
				fail_msg("op %d: read %zu at %" PRIu64 " differs from the reference", op, len, off);
		}
	}
	assert_int_equal(pvstore_disk_flush(d), 0);
	/* a second handle (a fresh process would see the same) reads it all back */
	struct pvstore *st2 = ceph_fixture_connect(&fx, 0, 0);
	struct pvstore_disk *d2;
	assert_int_equal(pvstore_disk_open(st2, uuid, &d2), 0);
	assert_int_equal(pvstore_disk_read(d2, got, 0, size), 0);
	assert_memory_equal(got, ref, size);
	pvstore_disk_close(d2);
	pvstore_disconnect(st2);

	pvstore_disk_close(d);
	assert_int_equal(pvstore_disk_delete(st, uuid), 0);
	for (uint64_t i = 0; i < 6; i++)
		assert_false(object_exists(uuid, i));
	assert_int_equal(pvstore_disk_open(st, uuid, &d), -ENOENT);
	assert_int_equal(pvstore_disk_delete(st, uuid), -ENOENT);
	free(ref);
	free(buf);
	free(got);
}

static void test_disk_write_across_boundary_touches_only_its_objects(void **state)
{
	(void)state;
	uint8_t uuid[16], buf[8192], got[8192];
	struct pvstore_disk *d;
	pvstore_uuid_generate(uuid);
	assert_int_equal(pvstore_disk_create(st, uuid, 4 * (uint64_t)OBJ), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	memset(buf, 0x5a, sizeof(buf));
	/* 8 KiB straddling objects 1 and 2 */
	assert_int_equal(pvstore_disk_write(d, buf, 2 * (uint64_t)OBJ - 4096, sizeof(buf)), 0);
	assert_false(object_exists(uuid, 0));
	assert_true(object_exists(uuid, 1));
	assert_true(object_exists(uuid, 2));
	assert_false(object_exists(uuid, 3));
	/* the raw objects hold the two halves at the right offsets */
	char oid[PVSTORE_OID_MAX];
	pvstore_oid_disk_data(oid, sizeof(oid), uuid, 2);
	assert_int_equal(rados_read(raw, oid, (char *)got, 8192, 0), 4096);
	assert_memory_equal(got, buf, 4096);
	pvstore_oid_disk_data(oid, sizeof(oid), uuid, 1);
	assert_int_equal(rados_read(raw, oid, (char *)got, 8192, OBJ - 4096), 4096);
	/* the hole before the written range within object 1 reads as zeros */
	memset(got, 1, sizeof(got));
	assert_int_equal(pvstore_disk_read(d, got, OBJ, 4096), 0);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(got[i], 0);
	pvstore_disk_close(d);
	assert_int_equal(pvstore_disk_delete(st, uuid), 0);
}

struct aio_ctx {
	atomic_int done;
	atomic_int errors;
};

static void aio_cb(void *arg, int result)
{
	struct aio_ctx *c = arg;
	if (result)
		atomic_fetch_add(&c->errors, 1);
	atomic_fetch_add(&c->done, 1);
}

static void test_disk_many_aio_in_flight_then_flush(void **state)
{
	(void)state;
	enum { N = 48, LEN = 256 * 1024 };
	uint8_t uuid[16];
	struct pvstore_disk *d;
	const uint64_t size = 4 * (uint64_t)OBJ;
	uint8_t *bufs = malloc((size_t)N * LEN), *got = malloc(size), *ref = calloc(1, size);
	struct aio_ctx c = {0};

	pvstore_uuid_generate(uuid);
	assert_int_equal(pvstore_disk_create(st, uuid, size), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	fill_random(bufs, (size_t)N * LEN);
	/* N non-overlapping writes, some across object boundaries, all at once */
	for (int i = 0; i < N; i++) {
		uint64_t off = (uint64_t)i * (size / N) + 1536;
		if (off + LEN > size)
			off = size - LEN;
		assert_int_equal(pvstore_disk_aio_write(d, bufs + (size_t)i * LEN, off, LEN, aio_cb, &c), 0);
		memcpy(ref + off, bufs + (size_t)i * LEN, LEN);
	}
	assert_int_equal(pvstore_disk_flush(d), 0);
	/* flush returned: every write before it was acknowledged */
	assert_int_equal(atomic_load(&c.done), N);
	assert_int_equal(atomic_load(&c.errors), 0);

	/* aio reads of everything, in pieces */
	struct aio_ctx rc = {0};
	for (uint64_t off = 0; off < size; off += OBJ / 2)
		assert_int_equal(pvstore_disk_aio_read(d, got + off, off, OBJ / 2, aio_cb, &rc), 0);
	pvstore_disk_close(d); /* waits for the reads */
	assert_int_equal(atomic_load(&rc.done), (int)(size / (OBJ / 2)));
	assert_int_equal(atomic_load(&rc.errors), 0);
	assert_memory_equal(got, ref, size);
	assert_int_equal(pvstore_disk_delete(st, uuid), 0);
	free(bufs);
	free(got);
	free(ref);
}

static void test_disk_resize_shrink_then_grow_reads_zeros(void **state)
{
	(void)state;
	uint8_t uuid[16];
	struct pvstore_disk *d;
	const uint64_t size = 3 * (uint64_t)OBJ;
	uint8_t *data = malloc(size), *got = malloc(size);

	pvstore_uuid_generate(uuid);
	fill_random(data, size);
	assert_int_equal(pvstore_disk_create(st, uuid, size), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	assert_int_equal(pvstore_disk_write(d, data, 0, size), 0);

	/* shrink into the middle of object 1 */
	const uint64_t small = OBJ + 512 * 7;
	assert_int_equal(pvstore_disk_resize(d, small), 0);
	assert_int_equal(pvstore_disk_size(d), small);
	assert_false(object_exists(uuid, 2));
	assert_int_equal(pvstore_disk_read(d, got, small - 512, 1024), -EINVAL);
	assert_int_equal(pvstore_disk_read(d, got, 0, small), 0);
	assert_memory_equal(got, data, small);

	/* another handle sees the new size */
	struct pvstore_disk *d2;
	assert_int_equal(pvstore_disk_open(st, uuid, &d2), 0);
	assert_int_equal(pvstore_disk_size(d2), small);
	pvstore_disk_close(d2);

	/* grow: old data beyond the shrink point must not come back */
	assert_int_equal(pvstore_disk_resize(d, size), 0);
	assert_int_equal(pvstore_disk_read(d, got, 0, size), 0);
	assert_memory_equal(got, data, small);
	for (uint64_t i = small; i < size; i++)
		if (got[i])
			fail_msg("byte %" PRIu64 " after shrink+grow is %u, want 0", i, got[i]);

	assert_int_equal(pvstore_disk_resize(d, 0), -EINVAL);
	assert_int_equal(pvstore_disk_resize(d, 1000), -EINVAL);
	pvstore_disk_close(d);
	assert_int_equal(pvstore_disk_delete(st, uuid), 0);
	free(data);
	free(got);
}

static void test_disk_bad_input_rejected(void **state)
{
	(void)state;
	uint8_t uuid[16], buf[4096];
	struct pvstore_disk *d;
	struct aio_ctx c = {0};

	pvstore_uuid_generate(uuid);
	assert_int_equal(pvstore_disk_create(st, uuid, 0), -EINVAL);
	assert_int_equal(pvstore_disk_create(st, uuid, 1000), -EINVAL);
	assert_int_equal(pvstore_disk_create(st, uuid, PVSTORE_DISK_MAX_SIZE + 512), -EINVAL);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), -ENOENT);
	assert_int_equal(pvstore_disk_create(st, uuid, 1u << 20), 0);
	assert_int_equal(pvstore_disk_create(st, uuid, 1u << 20), -EEXIST);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), 0);
	assert_int_equal(pvstore_disk_read(d, buf, (1u << 20) - 100, 200), -EINVAL);
	assert_int_equal(pvstore_disk_write(d, buf, UINT64_MAX - 10, 100), -EINVAL);
	assert_int_equal(pvstore_disk_write(d, buf, 1u << 20, 1), -EINVAL);
	assert_int_equal(pvstore_disk_aio_write(d, buf, 0, 0, aio_cb, &c), -EINVAL);
	assert_int_equal(pvstore_disk_read(d, buf, 0, 0), 0);
	assert_int_equal(atomic_load(&c.done), 0);
	assert_non_null(strstr(pvstore_errmsg(), "outside the disk"));
	pvstore_disk_close(d);

	/* a damaged header is refused with a reason */
	char oid[PVSTORE_OID_MAX];
	pvstore_oid_disk_header(oid, sizeof(oid), uuid);
	assert_int_equal(rados_write_full(raw, oid, "\x08\x02\x18\x80\x20", 5), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), -EBADMSG);
	assert_non_null(strstr(pvstore_errmsg(), "version 2"));
	assert_int_equal(rados_write_full(raw, oid, "\xff\xfe", 2), 0);
	assert_int_equal(pvstore_disk_open(st, uuid, &d), -EBADMSG);
	assert_int_equal(rados_remove(raw, oid), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk_random_io_matches_reference),
		cmocka_unit_test(test_disk_write_across_boundary_touches_only_its_objects),
		cmocka_unit_test(test_disk_many_aio_in_flight_then_flush),
		cmocka_unit_test(test_disk_resize_shrink_then_grow_reads_zeros),
		cmocka_unit_test(test_disk_bad_input_rejected),
	};
	const struct ceph_suite suite = {
		.name = "test_store_disk", .fx = &fx, .st = &st, .setup = group_setup, .teardown = group_teardown,
	};
	return ceph_suite_run(&suite, tests);
}
