/*
 * The guest registry, node records, event logs and images on a real Ceph:
 * CRUD, records that are garbage on RADOS, two clients racing to create one
 * name (exactly one wins), concurrent updates (none lost), concurrent event
 * appends (no gap, no duplicate).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <rados/librados.h>

#include "ceph_suite.h"
#include "proto/storage.pb-c.h"
#include "pvstore/names.h"
#include "pvstore/pvstore.h"

static struct ceph_fixture fx;
static struct pvstore *st;

/* A raw librados handle on the same pool, to damage objects behind
 * libpvstore's back. */
static rados_ioctx_t raw_io(rados_t *cl)
{
	rados_ioctx_t io;
	ceph_suite_rados(&fx, cl, &io);
	return io;
}

static void spec(struct pvstore_guest *g, const char *name)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->mem_size = 64u << 20;
	g->disk_size = 16u << 20;
	snprintf(g->cmdline, sizeof(g->cmdline), "counter period=10");
	memset(g->image_sha256, 'a', 64);
	g->desired = PVSTORE_DESIRED_RUNNING;
	g->priority = 5;
}

static void test_guest_create_read_update_delete(void **state)
{
	(void)state;
	struct pvstore_guest g, r;
	uint8_t u[16];

	spec(&g, "crud-1");
	assert_int_equal(pvstore_guest_create(st, &g), 0);
	assert_int_equal(g.generation, 1);
	assert_false(g.uuid[0] == 0 && g.uuid[1] == 0 && g.uuid[15] == 0 && g.uuid[7] == 0);

	assert_int_equal(pvstore_guest_read(st, g.uuid, &r), 0);
	assert_memory_equal(r.uuid, g.uuid, 16);
	assert_string_equal(r.name, "crud-1");
	assert_int_equal(r.mem_size, 64u << 20);
	assert_int_equal(r.disk_size, 16u << 20);
	assert_string_equal(r.cmdline, "counter period=10");
	assert_int_equal(r.desired, PVSTORE_DESIRED_RUNNING);
	assert_int_equal(r.priority, 5);
	assert_int_equal(r.generation, 1);

	assert_int_equal(pvstore_guest_lookup(st, "crud-1", u), 0);
	assert_memory_equal(u, g.uuid, 16);

	r.desired = PVSTORE_DESIRED_STOPPED;
	r.priority = 9;
	assert_int_equal(pvstore_guest_update(st, &r), 0);
	assert_int_equal(r.generation, 2);
	struct pvstore_guest r2;
	assert_int_equal(pvstore_guest_read(st, g.uuid, &r2), 0);
	assert_int_equal(r2.generation, 2);
	assert_int_equal(r2.priority, 9);
	assert_int_equal(r2.desired, PVSTORE_DESIRED_STOPPED);

	/* a stale generation loses */
	g.priority = 1;
	assert_int_equal(pvstore_guest_update(st, &g), -ECANCELED);
	assert_non_null(strstr(pvstore_errmsg(), "stale"));
	/* a rename is refused */
	snprintf(r2.name, sizeof(r2.name), "crud-renamed");
	assert_int_equal(pvstore_guest_update(st, &r2), -EINVAL);
	assert_non_null(strstr(pvstore_errmsg(), "renaming"));

	/* the same name twice */
	struct pvstore_guest dup;
	spec(&dup, "crud-1");
	assert_int_equal(pvstore_guest_create(st, &dup), -EEXIST);
	assert_non_null(strstr(pvstore_errmsg(), "crud-1"));
	/* ... leaves no object behind */
	assert_int_equal(pvstore_guest_read(st, dup.uuid, &r), -ENOENT);

	/* delete: a stale generation loses, the right one wins */
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 1), -ECANCELED);
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 2), 0);
	assert_int_equal(pvstore_guest_read(st, g.uuid, &r), -ENOENT);
	assert_int_equal(pvstore_guest_lookup(st, "crud-1", u), -ENOENT);
	assert_int_equal(pvstore_guest_delete(st, g.uuid, 0), -ENOENT);
	assert_int_equal(pvstore_guest_update(st, &r2), -ENOENT);

	/* the name is free again */
	spec(&dup, "crud-1");
	assert_int_equal(pvstore_guest_create(st, &dup), 0);
	assert_int_equal(pvstore_guest_delete(st, dup.uuid, dup.generation), 0);
}

static void test_guest_list_sorted(void **state)
{
	(void)state;
	const char *names[] = {"list-c", "list-a", "list-b"};
	struct pvstore_guest g[3];
	for (int i = 0; i < 3; i++) {
		spec(&g[i], names[i]);
		assert_int_equal(pvstore_guest_create(st, &g[i]), 0);
	}
	struct pvstore_guest_entry *v;
	size_t n;
	assert_int_equal(pvstore_guest_list(st, &v, &n), 0);
	int seen = 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_true(strcmp(v[i - 1].name, v[i].name) < 0);
		for (int j = 0; j < 3; j++)
			if (!strcmp(v[i].name, names[j])) {
				assert_memory_equal(v[i].uuid, g[j].uuid, 16);
				seen++;
			}
	}
	assert_int_equal(seen, 3);
	free(v);
	for (int i = 0; i < 3; i++)
		assert_int_equal(pvstore_guest_delete(st, g[i].uuid, 0), 0);
}

static void test_guest_bad_specs_rejected_with_einval(void **state)
{
	(void)state;
	struct pvstore_guest g;
	spec(&g, "");
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	spec(&g, "-dash");
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	spec(&g, "has space");
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	spec(&g, "ok");
	g.mem_size = 1000;
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	assert_non_null(strstr(pvstore_errmsg(), "mem_size"));
	spec(&g, "ok");
	g.disk_size = 513;
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	spec(&g, "ok");
	snprintf(g.image_sha256, sizeof(g.image_sha256), "XYZ");
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	spec(&g, "ok");
	g.desired = (enum pvstore_desired)7;
	assert_int_equal(pvstore_guest_create(st, &g), -EINVAL);
	uint8_t u[16];
	assert_int_equal(pvstore_guest_lookup(st, "ok", u), -ENOENT);
}

/* Writes raw bytes as guest.<uuid>, then expects -EBADMSG naming `needle`. */
static void expect_bad_record(rados_ioctx_t io, const uint8_t uuid[16], const void *buf, size_t len,
			      const char *needle)
{
	char oid[PVSTORE_OID_MAX];
	struct pvstore_guest g;
	pvstore_oid_guest(oid, sizeof(oid), uuid);
	assert_int_equal(rados_write_full(io, oid, buf, len), 0);
	assert_int_equal(pvstore_guest_read(st, uuid, &g), -EBADMSG);
	if (!strstr(pvstore_errmsg(), needle))
		fail_msg("message '%s' does not mention '%s'", pvstore_errmsg(), needle);
}

static size_t pack_spec(uint8_t *buf, uint32_t version, const uint8_t *uuid, uint64_t gen,
			const char *name, uint64_t mem)
{
	Pvha__GuestSpec m = PVHA__GUEST_SPEC__INIT;
	m.version = version;
	m.generation = gen;
	m.uuid.data = (uint8_t *)uuid;
	m.uuid.len = 16;
	m.name = (char *)name;
	m.mem_size = mem;
	m.image_sha256 = (char *)"";
	m.cmdline = (char *)"";
	return pvha__guest_spec__pack(&m, buf);
}

static void test_guest_garbage_record_reads_ebadmsg(void **state)
{
	(void)state;
	rados_t cl;
	rados_ioctx_t io = raw_io(&cl);
	uint8_t u[16], other[16];
	uint8_t buf[512];
	pvstore_uuid_generate(u);
	pvstore_uuid_generate(other);

	expect_bad_record(io, u, "\xff\xff\xff\xff garbage", 13, "does not decode");
	expect_bad_record(io, u, buf, pack_spec(buf, 2, u, 1, "x", 1u << 20), "version 2");
	expect_bad_record(io, u, buf, pack_spec(buf, 1, other, 1, "x", 1u << 20), "uuid");
	expect_bad_record(io, u, buf, pack_spec(buf, 1, u, 0, "x", 1u << 20), "generation");
	expect_bad_record(io, u, buf, pack_spec(buf, 1, u, 1, "bad name", 1u << 20), "name");
	expect_bad_record(io, u, buf, pack_spec(buf, 1, u, 1, "x", 12345), "mem_size");
	/* larger than any record may be */
	size_t big = PVSTORE_RECORD_MAX + 10;
	uint8_t *huge = calloc(1, big);
	expect_bad_record(io, u, huge, big, "larger");
	free(huge);
	/* an empty object (what a lock on a missing guest would leave) */
	expect_bad_record(io, u, "", 0, "version 0");

	/* update and delete of such an object do not pass its guard either */
	struct pvstore_guest g;
	spec(&g, "garbage");
	memcpy(g.uuid, u, 16);
	g.generation = 1;
	assert_int_equal(pvstore_guest_update(st, &g), -ECANCELED);
	/* but an operator can delete it unconditionally */
	assert_int_equal(pvstore_guest_delete(st, u, 0), 0);

	/* a damaged index entry is reported, not skipped */
	const char *k = "zz-bad-entry", *v = "not-a-uuid";
	size_t kl = strlen(k), vl = strlen(v);
	rados_write_op_t op = rados_create_write_op();
	rados_write_op_omap_set2(op, &k, &v, &kl, &vl, 1);
	assert_int_equal(rados_write_op_operate(op, io, PVSTORE_OID_GUESTS_INDEX, NULL, 0), 0);
	rados_release_write_op(op);
	struct pvstore_guest_entry *list;
	size_t n;
	assert_int_equal(pvstore_guest_list(st, &list, &n), -EBADMSG);
	assert_non_null(strstr(pvstore_errmsg(), "zz-bad-entry"));
	assert_int_equal(pvstore_guest_lookup(st, "zz-bad-entry", u), -EBADMSG);
	op = rados_create_write_op();
	rados_write_op_omap_rm_keys2(op, &k, &kl, 1);
	assert_int_equal(rados_write_op_operate(op, io, PVSTORE_OID_GUESTS_INDEX, NULL, 0), 0);
	rados_release_write_op(op);
	assert_int_equal(pvstore_guest_list(st, &list, &n), 0);
	free(list);

	rados_ioctx_destroy(io);
	rados_shutdown(cl);
}

static void test_guest_leftover_index_entry_is_reclaimed(void **state)
{
	(void)state;
	/* An interrupted delete removed the object but not the index entry. */
	struct pvstore_guest g, g2;
	char oid[PVSTORE_OID_MAX];
	rados_t cl;
	rados_ioctx_t io = raw_io(&cl);
	spec(&g, "leftover");
	assert_int_equal(pvstore_guest_create(st, &g), 0);
	pvstore_oid_guest(oid, sizeof(oid), g.uuid);
	assert_int_equal(rados_remove(io, oid), 0);
	spec(&g2, "leftover");
	assert_int_equal(pvstore_guest_create(st, &g2), 0);
	uint8_t u[16];
	assert_int_equal(pvstore_guest_lookup(st, "leftover", u), 0);
	assert_memory_equal(u, g2.uuid, 16);
	assert_int_equal(pvstore_guest_delete(st, g2.uuid, 0), 0);
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
}

/* ---- races ------------------------------------------------------------------ */

struct racer {
	struct pvstore *st;
	char name[64];
	int result;
	struct pvstore_guest g;
};

static void create_racer(void *arg)
{
	struct racer *r = arg;
	r->result = pvstore_guest_create(r->st, &r->g);
}

static void test_two_clients_create_same_name_exactly_one_wins(void **state)
{
	(void)state;
	struct pvstore *a = ceph_fixture_connect(&fx, 0, 0), *b = ceph_fixture_connect(&fx, 0, 0);
	int wins_a = 0;

	for (int round = 0; round < 20; round++) {
		struct racer ra = {.st = a}, rb = {.st = b};
		snprintf(ra.name, sizeof(ra.name), "race-%d", round);
		snprintf(rb.name, sizeof(rb.name), "race-%d", round);
		spec(&ra.g, ra.name);
		spec(&rb.g, rb.name);
		ceph_suite_race(create_racer, &ra, &rb);

		if (!((ra.result == 0 && rb.result == -EEXIST) || (ra.result == -EEXIST && rb.result == 0)))
			fail_msg("round %d: results %d and %d, want exactly one 0 and one -EEXIST", round,
				 ra.result, rb.result);
		struct racer *w = ra.result == 0 ? &ra : &rb, *l = ra.result == 0 ? &rb : &ra;
		wins_a += ra.result == 0;
		uint8_t u[16];
		struct pvstore_guest g;
		assert_int_equal(pvstore_guest_lookup(st, ra.name, u), 0);
		assert_memory_equal(u, w->g.uuid, 16);
		/* the loser's object is gone */
		assert_int_equal(pvstore_guest_read(st, l->g.uuid, &g), -ENOENT);
		assert_int_equal(pvstore_guest_delete(st, u, 0), 0);
	}
	print_message("create race: client A won %d of 20\n", wins_a);
	pvstore_disconnect(a);
	pvstore_disconnect(b);
}

struct updater {
	struct pvstore *st;
	const uint8_t *uuid;
	int increments;
	int retries;
	int errors;
};

static void *update_loop(void *arg)
{
	struct updater *u = arg;
	for (int i = 0; i < u->increments; i++) {
		for (;;) {
			struct pvstore_guest g;
			int r = pvstore_guest_read(u->st, u->uuid, &g);
			if (r < 0) {
				u->errors++;
				break;
			}
			g.priority++;
			r = pvstore_guest_update(u->st, &g);
			if (r == 0)
				break;
			if (r != -ECANCELED) {
				u->errors++;
				break;
			}
			u->retries++;
		}
	}
	return NULL;
}

static void test_concurrent_updates_none_lost(void **state)
{
	(void)state;
	enum { THREADS = 3, EACH = 40 };
	struct pvstore_guest g;
	struct updater up[THREADS];
	pthread_t t[THREADS];
	int retries = 0;

	spec(&g, "counter");
	g.priority = 0;
	assert_int_equal(pvstore_guest_create(st, &g), 0);
	for (int i = 0; i < THREADS; i++) {
		up[i] = (struct updater){.st = ceph_fixture_connect(&fx, 0, 0), .uuid = g.uuid, .increments = EACH};
		pthread_create(&t[i], NULL, update_loop, &up[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(up[i].errors, 0);
		retries += up[i].retries;
		pvstore_disconnect(up[i].st);
	}
	assert_int_equal(pvstore_guest_read(st, g.uuid, &g), 0); /* uuid inside the output */
	assert_int_equal(g.priority, THREADS * EACH);
	assert_int_equal(g.generation, 1 + THREADS * EACH);
	print_message("%d updates, %d lost races retried\n", THREADS * EACH, retries);
	assert_int_equal(pvstore_guest_delete(st, g.uuid, g.generation), 0);
}

/* ---- nodes, events, images ----------------------------------------------------- */

static void test_node_records(void **state)
{
	(void)state;
	struct pvstore_node n = {.name = "n1", .addr = "10.77.0.2", .incarnation = "boot-1234",
				 .mem_bytes = 8ull << 30, .cpus = 4};
	struct pvstore_node r;
	assert_int_equal(pvstore_node_put(st, &n), 0);
	assert_true(n.updated_ms > 0);
	assert_int_equal(pvstore_node_get(st, "n1", &r), 0);
	assert_string_equal(r.addr, "10.77.0.2");
	assert_string_equal(r.incarnation, "boot-1234");
	assert_int_equal(r.mem_bytes, 8ull << 30);
	assert_int_equal(r.cpus, 4);
	snprintf(n.incarnation, sizeof(n.incarnation), "boot-5678");
	assert_int_equal(pvstore_node_put(st, &n), 0);
	struct pvstore_node n2 = {.name = "n0", .addr = "10.77.0.3", .incarnation = "b"};
	assert_int_equal(pvstore_node_put(st, &n2), 0);
	char(*names)[PVSTORE_NAME_MAX + 1];
	size_t cnt;
	assert_int_equal(pvstore_node_list(st, &names, &cnt), 0);
	assert_int_equal(cnt, 2);
	assert_string_equal(names[0], "n0");
	assert_string_equal(names[1], "n1");
	free(names);
	assert_int_equal(pvstore_node_get(st, "n1", &r), 0);
	assert_string_equal(r.incarnation, "boot-5678");
	assert_int_equal(pvstore_node_delete(st, "n0"), 0);
	assert_int_equal(pvstore_node_get(st, "n0", &r), -ENOENT);
	assert_int_equal(pvstore_node_delete(st, "n0"), -ENOENT);

	struct pvstore_node bad = {.name = "x y", .addr = "1", .incarnation = "b"};
	assert_int_equal(pvstore_node_put(st, &bad), -EINVAL);
	struct pvstore_node noaddr = {.name = "x", .incarnation = "b"};
	assert_int_equal(pvstore_node_put(st, &noaddr), -EINVAL);

	/* garbage on RADOS */
	rados_t cl;
	rados_ioctx_t io = raw_io(&cl);
	assert_int_equal(rados_write_full(io, "node.n1", "\x08\x07", 2), 0);
	assert_int_equal(pvstore_node_get(st, "n1", &r), -EBADMSG);
	assert_non_null(strstr(pvstore_errmsg(), "version 7"));
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	assert_int_equal(pvstore_node_delete(st, "n1"), 0);
}

struct appender {
	struct pvstore *st;
	const uint8_t *guest;
	int count;
	int errors;
	char node[16];
};

static void *append_loop(void *arg)
{
	struct appender *a = arg;
	for (int i = 0; i < a->count; i++) {
		char why[64];
		snprintf(why, sizeof(why), "%s #%d", a->node, i);
		if (pvstore_event_append(a->st, a->guest, a->node, "tick", why, NULL) < 0)
			a->errors++;
	}
	return NULL;
}

static void test_event_log_ordered_no_gaps_under_concurrency(void **state)
{
	(void)state;
	enum { THREADS = 3, EACH = 30 };
	uint8_t guest[16];
	uint64_t seq;
	pvstore_uuid_generate(guest);

	assert_int_equal(pvstore_event_append(st, guest, "n1", "created", "by test\nwith a newline", &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(pvstore_event_append(st, NULL, "n1", "leader", "n1 leads", &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(pvstore_event_append(st, guest, "n 1", "x", "y", NULL), -EINVAL);
	assert_int_equal(pvstore_event_append(st, guest, "n1", "", "y", NULL), -EINVAL);

	struct appender ap[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		ap[i] = (struct appender){.st = ceph_fixture_connect(&fx, 0, 0), .guest = guest, .count = EACH};
		snprintf(ap[i].node, sizeof(ap[i].node), "n%d", i + 2);
		pthread_create(&t[i], NULL, append_loop, &ap[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(ap[i].errors, 0);
		pvstore_disconnect(ap[i].st);
	}

	enum { TOTAL = 1 + THREADS * EACH };
	static struct pvstore_event ev[TOTAL + 5];
	size_t n;
	assert_int_equal(pvstore_event_list(st, guest, 0, ev, TOTAL + 5, &n), 0);
	assert_int_equal(n, TOTAL);
	int per_node[THREADS] = {0};
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(ev[i].seq, i + 1);
		assert_true(ev[i].has_guest);
		assert_memory_equal(ev[i].guest, guest, 16);
		if (i) {
			assert_string_equal(ev[i].what, "tick");
			int node = ev[i].node[1] - '2';
			assert_in_range(node, 0, THREADS - 1);
			/* each appender's own events stay in its order */
			char want[sizeof(ev[i].node) + 16]; /* the node, " #" and a number */
			snprintf(want, sizeof(want), "%s #%d", ev[i].node, per_node[node]++);
			assert_string_equal(ev[i].why, want);
		}
	}
	assert_string_equal(ev[0].why, "by test with a newline");
	assert_string_equal(ev[0].what, "created");

	/* paging: after a sequence number, at most max */
	assert_int_equal(pvstore_event_list(st, guest, 10, ev, 5, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(ev[0].seq, 11);
	assert_int_equal(ev[4].seq, 15);
	/* the cluster log is separate */
	assert_int_equal(pvstore_event_list(st, NULL, 0, ev, 10, &n), 0);
	assert_int_equal(n, 1);
	assert_false(ev[0].has_guest);
	assert_string_equal(ev[0].why, "n1 leads");
	/* a log nobody wrote is empty */
	uint8_t none[16];
	pvstore_uuid_generate(none);
	assert_int_equal(pvstore_event_list(st, none, 0, ev, 10, &n), 0);
	assert_int_equal(n, 0);
}

static void test_images_content_addressed(void **state)
{
	(void)state;
	char hex[65];
	/* FIPS 180-2 test vector */
	pvstore_sha256_hex("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	pvstore_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	size_t len = 10u << 20; /* two write chunks */
	uint8_t *img = malloc(len);
	for (size_t i = 0; i < len; i++)
		img[i] = (uint8_t)(i * 2654435761u >> 13);
	assert_int_equal(pvstore_image_put(st, img, len, hex), 0);
	assert_int_equal(pvstore_image_put(st, img, len, hex), 0); /* idempotent */
	void *got;
	size_t glen;
	assert_int_equal(pvstore_image_get(st, hex, &got, &glen), 0);
	assert_int_equal(glen, len);
	assert_memory_equal(got, img, len);
	free(got);

	/* damaged content is refused */
	rados_t cl;
	rados_ioctx_t io = raw_io(&cl);
	char oid[PVSTORE_OID_MAX];
	pvstore_oid_image(oid, sizeof(oid), hex);
	assert_int_equal(rados_write(io, oid, "X", 1, 12345), 0);
	assert_int_equal(pvstore_image_get(st, hex, &got, &glen), -EBADMSG);
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	assert_int_equal(pvstore_image_get(st, "nothex", &got, &glen), -EINVAL);
	char missing[65];
	memset(missing, '0', 64);
	missing[64] = '\0';
	assert_int_equal(pvstore_image_get(st, missing, &got, &glen), -ENOENT);
	free(img);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_guest_create_read_update_delete),
		cmocka_unit_test(test_guest_list_sorted),
		cmocka_unit_test(test_guest_bad_specs_rejected_with_einval),
		cmocka_unit_test(test_guest_garbage_record_reads_ebadmsg),
		cmocka_unit_test(test_guest_leftover_index_entry_is_reclaimed),
		cmocka_unit_test(test_two_clients_create_same_name_exactly_one_wins),
		cmocka_unit_test(test_concurrent_updates_none_lost),
		cmocka_unit_test(test_node_records),
		cmocka_unit_test(test_event_log_ordered_no_gaps_under_concurrency),
		cmocka_unit_test(test_images_content_addressed),
	};
	const struct ceph_suite suite = { .name = "test_store_registry", .fx = &fx, .st = &st };
	return ceph_suite_run(&suite, tests);
}
