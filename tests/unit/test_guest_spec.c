/* The guest spec record (storage/spec.c): placement rules and start
 * dependencies survive an encode/decode round trip, a record written before
 * they existed decodes with none, and every bad rule or dependency is refused
 * — by the check with -EINVAL, from a record with -EBADMSG. Pure: nothing
 * touches RADOS. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/storage.pb-c.h"
#include "pvstore/pvstore.h"

static const uint8_t UUID[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88,
				  0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };

static struct pvstore_guest spec(void)
{
	struct pvstore_guest g;
	memset(&g, 0, sizeof(g));
	memcpy(g.uuid, UUID, 16);
	snprintf(g.name, sizeof(g.name), "web1");
	g.mem_size = 16u << 20;
	g.priority = 7;
	return g;
}

static void dep(struct pvstore_guest *g, uint8_t k)
{
	memset(g->depends_on[g->n_depends], 0, 16);
	g->depends_on[g->n_depends][0] = 0xd0;
	g->depends_on[g->n_depends][15] = k;
	g->n_depends++;
}

static void rule(struct pvstore_guest *g, const char *group, bool anti, bool soft)
{
	struct pvstore_rule *r = &g->rules[g->n_rules++];
	snprintf(r->group, sizeof(r->group), "%s", group);
	r->anti = anti;
	r->soft = soft;
}

static void rules_and_dependencies_survive_a_round_trip(void **state)
{
	(void)state;
	struct pvstore_guest g = spec(), out;
	rule(&g, "web", true, false);
	rule(&g, "db", false, true);
	rule(&g, "web", false, false); /* the same group as affinity: another rule */
	rule(&g, "_x.y-z", true, true);
	dep(&g, 1);
	dep(&g, 2);
	uint8_t *buf;
	size_t len;
	assert_int_equal(pvstore_guest_encode(&g, 3, &buf, &len), 0);
	assert_int_equal(pvstore_guest_decode("guest.x", UUID, buf, len, &out), 0);
	free(buf);
	assert_int_equal(out.generation, 3);
	assert_int_equal(out.priority, 7);
	assert_int_equal(out.n_rules, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_string_equal(out.rules[i].group, g.rules[i].group);
		assert_int_equal(out.rules[i].anti, g.rules[i].anti);
		assert_int_equal(out.rules[i].soft, g.rules[i].soft);
	}
	assert_int_equal(out.n_depends, 2);
	assert_memory_equal(out.depends_on, g.depends_on, 2 * 16);
}

static void eight_dependencies_fit(void **state)
{
	(void)state;
	struct pvstore_guest g = spec(), out;
	for (uint8_t k = 1; k <= PVSTORE_GUEST_DEPS_MAX; k++)
		dep(&g, k);
	uint8_t *buf;
	size_t len;
	assert_int_equal(pvstore_guest_encode(&g, 1, &buf, &len), 0);
	assert_int_equal(pvstore_guest_decode("guest.x", UUID, buf, len, &out), 0);
	free(buf);
	assert_int_equal(out.n_depends, PVSTORE_GUEST_DEPS_MAX);
	assert_memory_equal(out.depends_on, g.depends_on, sizeof(g.depends_on));
}

/* Packs a GuestSpec as an older pvha wrote it: no rules, no dependencies. */
static uint8_t *old_record(size_t *len)
{
	Pvha__GuestSpec m = PVHA__GUEST_SPEC__INIT;
	m.version = 1;
	m.generation = 5;
	m.uuid = (ProtobufCBinaryData){ 16, (uint8_t *)UUID };
	m.name = "old";
	m.mem_size = 8u << 20;
	m.priority = -3;
	*len = pvha__guest_spec__get_packed_size(&m);
	uint8_t *buf = malloc(*len);
	assert_non_null(buf);
	pvha__guest_spec__pack(&m, buf);
	return buf;
}

static void a_record_without_the_fields_has_none(void **state)
{
	(void)state;
	struct pvstore_guest out;
	size_t len;
	uint8_t *buf = old_record(&len);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(pvstore_guest_decode("guest.x", UUID, buf, len, &out), 0);
	free(buf);
	assert_string_equal(out.name, "old");
	assert_int_equal(out.priority, -3);
	assert_int_equal(out.n_rules, 0);
	assert_int_equal(out.n_depends, 0);
}

static void expect_refused(const struct pvstore_guest *g, int want, const char *needle)
{
	int got = pvstore_guest_check(g);
	if (got != want || !strstr(pvstore_errmsg(), needle)) {
		print_error("check: %d (want %d), message '%s' (want '%s' in it)\n", got, want,
			    pvstore_errmsg(), needle);
		fail();
	}
	uint8_t *buf = NULL;
	size_t len;
	assert_int_equal(pvstore_guest_encode(g, 1, &buf, &len), want);
	free(buf);
}

static void bad_rules_are_refused_by_the_check(void **state)
{
	(void)state;
	struct pvstore_guest g = spec();
	for (int i = 0; i < PVSTORE_GUEST_RULES_MAX; i++) {
		char name[8];
		snprintf(name, sizeof(name), "g%d", i);
		rule(&g, name, false, false);
	}
	g.n_rules++; /* one more than the array holds: the count alone is refused */
	expect_refused(&g, -EINVAL, "5 placement rules, at most 4");

	const char *bad[] = { "", ".x", "-x", "a b", "a:b", "x/y", "a\tb", "\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		g = spec();
		rule(&g, "ok", false, false);
		snprintf(g.rules[g.n_rules].group, sizeof(g.rules[0].group), "%s", bad[i]);
		g.n_rules++;
		expect_refused(&g, -EINVAL, "rule 2: group");
	}

	g = spec();
	rule(&g, "web", true, false);
	rule(&g, "web", true, true);
	expect_refused(&g, -EINVAL, "anti-affinity group 'web' named twice");
	g = spec();
	rule(&g, "web", false, false);
	rule(&g, "web", false, false);
	expect_refused(&g, -EINVAL, "affinity group 'web' named twice");
}

/* Encodes g and decodes it into *out, asserting both work. */
static void round_trip(const struct pvstore_guest *g, struct pvstore_guest *out)
{
	uint8_t *buf;
	size_t len;
	assert_int_equal(pvstore_guest_encode(g, 1, &buf, &len), 0);
	assert_int_equal(pvstore_guest_decode("guest.x", UUID, buf, len, out), 0);
	free(buf);
}

static void an_address_survives_a_round_trip(void **state)
{
	(void)state;
	struct pvstore_guest g = spec(), out;
	snprintf(g.address, sizeof(g.address), "10.99.0.100/24");
	round_trip(&g, &out);
	assert_string_equal(out.address, "10.99.0.100/24");
	assert_int_equal(pvstore_address_ip(out.address), 0x0a630064);
}

static void bad_addresses_are_refused_by_the_check(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"10.99.0.100",      /* no prefix */
		"10.99.0.100/0",    /* prefix 1..32 */
		"10.99.0.100/33",
		"10.99.0.256/24",   /* octet */
		"10.99.0/24",       /* three octets */
		"010.99.0.1/24",    /* not canonical */
		" 10.99.0.1/24",
		"10.99.0.1/24x",
		"127.0.0.1/8",      /* loopback */
		"0.0.0.0/8",
		"224.0.0.1/4",      /* multicast */
		"255.255.255.255/32",
		"fe80::1/64",
		"10.99.0.1/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pvstore_guest g = spec();
		snprintf(g.address, sizeof(g.address), "%s", bad[i]);
		assert_false(pvstore_address_ok(bad[i]));
		expect_refused(&g, -EINVAL, "address");
	}
	assert_true(pvstore_address_ok("10.99.0.100/24"));
	assert_true(pvstore_address_ok("192.168.1.7/32"));
	assert_int_equal(pvstore_address_ip("10.99.0.1"), 0);
}

static void heartbeat_settings_survive_a_round_trip(void **state)
{
	(void)state;
	struct pvstore_guest g = spec(), out;
	g.heartbeat_timeout_s = 5;
	g.heartbeat_max_resets = 2;
	g.heartbeat_window_s = 600;
	round_trip(&g, &out);
	assert_int_equal(out.heartbeat_timeout_s, 5);
	assert_int_equal(out.heartbeat_max_resets, 2);
	assert_int_equal(out.heartbeat_window_s, 600);

	/* a record from before heartbeat monitoring: off, node defaults */
	size_t len;
	uint8_t *buf = old_record(&len);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(pvstore_guest_decode("guest.x", UUID, buf, len, &out), 0);
	free(buf);
	assert_int_equal(out.heartbeat_timeout_s, 0);
	assert_int_equal(out.heartbeat_max_resets, 0);
	assert_int_equal(out.heartbeat_window_s, 0);
}

static void bad_heartbeat_settings_are_refused(void **state)
{
	(void)state;
	struct pvstore_guest g = spec();
	g.heartbeat_timeout_s = PVSTORE_HEARTBEAT_TIMEOUT_MAX;
	g.heartbeat_max_resets = PVSTORE_HEARTBEAT_RESETS_MAX;
	g.heartbeat_window_s = PVSTORE_HEARTBEAT_WINDOW_MAX;
	assert_int_equal(pvstore_guest_check(&g), 0); /* the limits themselves are fine */
	g.heartbeat_timeout_s = PVSTORE_HEARTBEAT_TIMEOUT_MAX + 1;
	expect_refused(&g, -EINVAL, "heartbeat timeout 86401 s is over 86400 s");
	g = spec();
	g.heartbeat_max_resets = PVSTORE_HEARTBEAT_RESETS_MAX + 1;
	expect_refused(&g, -EINVAL, "heartbeat max resets 101 is over 100");
	g = spec();
	g.heartbeat_window_s = PVSTORE_HEARTBEAT_WINDOW_MAX + 1;
	expect_refused(&g, -EINVAL, "heartbeat window 604801 s is over 604800 s");
}

static void bad_dependencies_are_refused_by_the_check(void **state)
{
	(void)state;
	struct pvstore_guest g = spec();
	for (uint8_t k = 1; k <= PVSTORE_GUEST_DEPS_MAX; k++)
		dep(&g, k);
	g.n_depends++; /* as above */
	expect_refused(&g, -EINVAL, "9 dependencies, at most 8");

	g = spec();
	dep(&g, 1);
	memset(g.depends_on[0], 0, 16);
	expect_refused(&g, -EINVAL, "dependency 1 is the nil uuid");

	g = spec();
	dep(&g, 1);
	memcpy(g.depends_on[1], UUID, 16);
	g.n_depends++;
	expect_refused(&g, -EINVAL, "depends on itself");

	g = spec();
	dep(&g, 4);
	dep(&g, 4);
	expect_refused(&g, -EINVAL, "named twice");
}

/* A record that breaks the rules, packed by hand; decode must say -EBADMSG. */
static void expect_bad_record(Pvha__GuestSpec *m, const char *needle)
{
	struct pvstore_guest out;
	size_t len = pvha__guest_spec__get_packed_size(m);
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	pvha__guest_spec__pack(m, buf);
	int got = pvstore_guest_decode("guest.bad", UUID, buf, len, &out);
	free(buf);
	if (got != -EBADMSG || !strstr(pvstore_errmsg(), needle) || !strstr(pvstore_errmsg(), "guest.bad")) {
		print_error("decode: %d (want -EBADMSG), message '%s' (want '%s' in it)\n", got,
			    pvstore_errmsg(), needle);
		fail();
	}
}

static void bad_records_are_refused_by_the_decoder(void **state)
{
	(void)state;
	Pvha__GuestSpec m = PVHA__GUEST_SPEC__INIT;
	Pvha__PlacementRule r[5];
	Pvha__PlacementRule *rp[5];
	ProtobufCBinaryData d[9];
	uint8_t dep_bytes[9][16];
	m.version = 1;
	m.generation = 1;
	m.uuid = (ProtobufCBinaryData){ 16, (uint8_t *)UUID };
	m.name = "bad";
	m.mem_size = 8u << 20;
	for (int i = 0; i < 5; i++) {
		pvha__placement_rule__init(&r[i]);
		r[i].group = i ? "b" : "a";
		r[i].anti = i > 0;
		rp[i] = &r[i];
	}
	for (int i = 0; i < 9; i++) {
		memset(dep_bytes[i], 0, 16);
		dep_bytes[i][0] = 1;
		dep_bytes[i][15] = (uint8_t)i;
		d[i] = (ProtobufCBinaryData){ 16, dep_bytes[i] };
	}
	m.rules = rp;

	m.n_rules = 5;
	for (int i = 1; i < 5; i++) /* distinct groups, so only the count is wrong */
		r[i].group = (char *[]){ "", "b", "c", "d", "e" }[i];
	expect_bad_record(&m, "5 placement rules, at most 4");

	m.n_rules = 2;
	r[1].group = "no good";
	expect_bad_record(&m, "group");

	r[1].group = "a";
	r[1].anti = false;
	expect_bad_record(&m, "named twice");
	m.n_rules = 0;

	m.depends_on = d;
	m.n_depends_on = 9;
	expect_bad_record(&m, "9 dependencies, at most 8");
	m.n_depends_on = 2;
	d[1].len = 15;
	expect_bad_record(&m, "dependency 2 is not a 16-byte uuid");
	d[1] = (ProtobufCBinaryData){ 16, (uint8_t *)UUID };
	expect_bad_record(&m, "depends on itself");
	d[1] = d[0];
	expect_bad_record(&m, "named twice");
	m.n_depends_on = 0;

	m.heartbeat_timeout_s = 100000; /* over PVSTORE_HEARTBEAT_TIMEOUT_MAX */
	expect_bad_record(&m, "heartbeat timeout 100000 s is over 86400 s");
	m.heartbeat_timeout_s = 0;

	m.version = 2;
	expect_bad_record(&m, "version 2 is unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rules_and_dependencies_survive_a_round_trip),
		cmocka_unit_test(eight_dependencies_fit),
		cmocka_unit_test(a_record_without_the_fields_has_none),
		cmocka_unit_test(bad_rules_are_refused_by_the_check),
		cmocka_unit_test(bad_dependencies_are_refused_by_the_check),
		cmocka_unit_test(an_address_survives_a_round_trip),
		cmocka_unit_test(bad_addresses_are_refused_by_the_check),
		cmocka_unit_test(bad_records_are_refused_by_the_decoder),
		cmocka_unit_test(heartbeat_settings_survive_a_round_trip),
		cmocka_unit_test(bad_heartbeat_settings_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
