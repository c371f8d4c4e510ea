/*
 * The guest spec as a record: its checks and its GuestSpec encoding, pure
 * functions (no RADOS) used by the registry (registry.c) and the unit tests.
 * See pvstore.h for the contracts and docs/placement.md for rules and
 * dependencies.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto/storage.pb-c.h"

static bool hex64_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

/* Rules and dependencies: see pvstore_guest_check. */
static int check_placement(const struct pvstore_guest *g)
{
	if (g->n_rules > PVSTORE_GUEST_RULES_MAX)
		return pvs_failx(-EINVAL, "guest %s: %u placement rules, at most %d", g->name, g->n_rules,
				 PVSTORE_GUEST_RULES_MAX);
	for (unsigned i = 0; i < g->n_rules; i++) {
		const struct pvstore_rule *r = &g->rules[i];
		if (!pvs_name_ok(r->group))
			return pvs_failx(-EINVAL,
					 "guest %s: rule %u: group '%.*s' is not 1..63 bytes of "
					 "[A-Za-z0-9._-] starting with a letter, digit or '_'",
					 g->name, i + 1, PVSTORE_NAME_MAX, r->group);
		for (unsigned j = 0; j < i; j++)
			if (g->rules[j].anti == r->anti && !strcmp(g->rules[j].group, r->group))
				return pvs_failx(-EINVAL, "guest %s: %s group '%s' named twice", g->name,
						 r->anti ? "anti-affinity" : "affinity", r->group);
	}
	if (g->n_depends > PVSTORE_GUEST_DEPS_MAX)
		return pvs_failx(-EINVAL, "guest %s: %u dependencies, at most %d", g->name, g->n_depends,
				 PVSTORE_GUEST_DEPS_MAX);
	for (unsigned i = 0; i < g->n_depends; i++) {
		char u[PVSTORE_UUID_STR];
		pvstore_uuid_format(g->depends_on[i], u);
		if (pvs_uuid_is_nil(g->depends_on[i]))
			return pvs_failx(-EINVAL, "guest %s: dependency %u is the nil uuid", g->name, i + 1);
		if (!memcmp(g->depends_on[i], g->uuid, 16))
			return pvs_failx(-EINVAL, "guest %s: depends on itself", g->name);
		for (unsigned j = 0; j < i; j++)
			if (!memcmp(g->depends_on[j], g->depends_on[i], 16))
				return pvs_failx(-EINVAL, "guest %s: dependency %s named twice", g->name, u);
	}
	return 0;
}

uint32_t pvstore_address_ip(const char *s)
{
	unsigned a, b, c, d, p;
	char tail;
	if (!s || strlen(s) > PVSTORE_ADDR_MAX ||
	    sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &a, &b, &c, &d, &p, &tail) != 5)
		return 0;
	if (a > 255 || b > 255 || c > 255 || d > 255 || p < 1 || p > 32)
		return 0;
	/* canonical form only: no leading zeros, no spaces (what sscanf lets by) */
	char again[PVSTORE_ADDR_MAX + 2];
	snprintf(again, sizeof(again), "%u.%u.%u.%u/%u", a, b, c, d, p);
	if (strcmp(again, s) != 0)
		return 0;
	return a << 24 | b << 16 | c << 8 | d;
}

bool pvstore_address_ok(const char *s)
{
	uint32_t ip = pvstore_address_ip(s);
	uint32_t top = ip >> 24;
	return ip && top != 127 && top < 224 && top != 0;
}

int pvstore_guest_check(const struct pvstore_guest *g)
{
	if (!pvs_name_ok(g->name))
		return pvs_failx(-EINVAL,
				 "guest name '%.*s' is not 1..63 bytes of [A-Za-z0-9._-] "
				 "starting with a letter, digit or '_'",
				 PVSTORE_NAME_MAX, g->name);
	if (g->mem_size < PVSTORE_MEM_MIN || g->mem_size > PVSTORE_MEM_MAX || g->mem_size % (1u << 20))
		return pvs_failx(-EINVAL, "guest %s: mem_size %" PRIu64 " is not whole MiB from 2 MiB to 4 GiB",
				 g->name, g->mem_size);
	if (g->image_sha256[0] && !hex64_ok(g->image_sha256))
		return pvs_failx(-EINVAL, "guest %s: image hash is not 64 lower-case hex digits", g->name);
	if (g->disk_size % 512 || g->disk_size > PVSTORE_DISK_MAX_SIZE)
		return pvs_failx(-EINVAL, "guest %s: disk_size %" PRIu64 " is not a multiple of 512 up to 16 TiB",
				 g->name, g->disk_size);
	if (strnlen(g->cmdline, sizeof(g->cmdline)) > PVSTORE_CMDLINE_MAX)
		return pvs_failx(-EINVAL, "guest %s: cmdline longer than %u bytes", g->name,
				 PVSTORE_CMDLINE_MAX);
	if (g->desired != PVSTORE_DESIRED_STOPPED && g->desired != PVSTORE_DESIRED_RUNNING)
		return pvs_failx(-EINVAL, "guest %s: desired state %d is unknown", g->name, (int)g->desired);
	if (g->address[0] && !pvstore_address_ok(g->address))
		return pvs_failx(-EINVAL,
				 "guest %s: address '%.*s' is not an IPv4 address with a prefix (A.B.C.D/P, P 1..32; "
				 "not 0.0.0.0, loopback, multicast or broadcast)",
				 g->name, PVSTORE_ADDR_MAX + 2, g->address);
	if (g->heartbeat_timeout_s > PVSTORE_HEARTBEAT_TIMEOUT_MAX)
		return pvs_failx(-EINVAL, "guest %s: heartbeat timeout %" PRIu32 " s is over %u s", g->name,
				 g->heartbeat_timeout_s, PVSTORE_HEARTBEAT_TIMEOUT_MAX);
	if (g->heartbeat_max_resets > PVSTORE_HEARTBEAT_RESETS_MAX)
		return pvs_failx(-EINVAL, "guest %s: heartbeat max resets %" PRIu32 " is over %u", g->name,
				 g->heartbeat_max_resets, PVSTORE_HEARTBEAT_RESETS_MAX);
	if (g->heartbeat_window_s > PVSTORE_HEARTBEAT_WINDOW_MAX)
		return pvs_failx(-EINVAL, "guest %s: heartbeat window %" PRIu32 " s is over %u s", g->name,
				 g->heartbeat_window_s, PVSTORE_HEARTBEAT_WINDOW_MAX);
	return check_placement(g);
}

int pvstore_guest_encode(const struct pvstore_guest *g, uint64_t gen, uint8_t **buf, size_t *len)
{
	Pvha__GuestSpec m = PVHA__GUEST_SPEC__INIT;
	Pvha__PlacementRule rules[PVSTORE_GUEST_RULES_MAX];
	Pvha__PlacementRule *rule_ptrs[PVSTORE_GUEST_RULES_MAX];
	ProtobufCBinaryData deps[PVSTORE_GUEST_DEPS_MAX];
	int r = pvstore_guest_check(g);
	if (r < 0)
		return r;
	m.version = 1;
	m.generation = gen;
	m.uuid.data = (uint8_t *)g->uuid;
	m.uuid.len = 16;
	m.name = (char *)g->name;
	m.mem_size = g->mem_size;
	m.image_sha256 = (char *)g->image_sha256;
	m.disk_size = g->disk_size;
	m.cmdline = (char *)g->cmdline;
	m.address = (char *)g->address;
	m.heartbeat_timeout_s = g->heartbeat_timeout_s;
	m.heartbeat_max_resets = g->heartbeat_max_resets;
	m.heartbeat_window_s = g->heartbeat_window_s;
	m.desired = g->desired == PVSTORE_DESIRED_RUNNING ? PVHA__GUEST_SPEC__DESIRED_STATE__DESIRED_RUNNING
							   : PVHA__GUEST_SPEC__DESIRED_STATE__DESIRED_STOPPED;
	m.priority = g->priority;
	for (unsigned i = 0; i < g->n_rules; i++) {
		pvha__placement_rule__init(&rules[i]);
		rules[i].group = (char *)g->rules[i].group;
		rules[i].anti = g->rules[i].anti;
		rules[i].soft = g->rules[i].soft;
		rule_ptrs[i] = &rules[i];
	}
	m.n_rules = g->n_rules;
	m.rules = rule_ptrs;
	for (unsigned i = 0; i < g->n_depends; i++)
		deps[i] = (ProtobufCBinaryData){ .len = 16, .data = (uint8_t *)g->depends_on[i] };
	m.n_depends_on = g->n_depends;
	m.depends_on = deps;
	*len = pvha__guest_spec__get_packed_size(&m);
	if (*len > PVSTORE_RECORD_MAX)
		return pvs_failx(-EINVAL, "guest %s: record of %zu bytes is too large", g->name, *len);
	*buf = malloc(*len ? *len : 1);
	if (!*buf)
		return pvs_fail(-ENOMEM, "guest %s", g->name);
	pvha__guest_spec__pack(&m, *buf);
	return 0;
}

/* Copies the rules and dependencies of m into out. 0 or -EBADMSG. */
static int decode_placement(const char *what, const Pvha__GuestSpec *m, struct pvstore_guest *out)
{
	if (m->n_rules > PVSTORE_GUEST_RULES_MAX)
		return pvs_failx(-EBADMSG, "%s: %zu placement rules, at most %d", what, m->n_rules,
				 PVSTORE_GUEST_RULES_MAX);
	for (size_t i = 0; i < m->n_rules; i++) {
		const Pvha__PlacementRule *r = m->rules[i];
		if (strlen(r->group) > PVSTORE_NAME_MAX)
			return pvs_failx(-EBADMSG, "%s: placement rule %zu: group name too long", what, i + 1);
		snprintf(out->rules[i].group, sizeof(out->rules[i].group), "%s", r->group);
		out->rules[i].anti = r->anti;
		out->rules[i].soft = r->soft;
	}
	out->n_rules = (unsigned)m->n_rules;
	if (m->n_depends_on > PVSTORE_GUEST_DEPS_MAX)
		return pvs_failx(-EBADMSG, "%s: %zu dependencies, at most %d", what, m->n_depends_on,
				 PVSTORE_GUEST_DEPS_MAX);
	for (size_t i = 0; i < m->n_depends_on; i++) {
		if (m->depends_on[i].len != 16)
			return pvs_failx(-EBADMSG, "%s: dependency %zu is not a 16-byte uuid", what, i + 1);
		memcpy(out->depends_on[i], m->depends_on[i].data, 16);
	}
	out->n_depends = (unsigned)m->n_depends_on;
	return 0;
}

int pvstore_guest_decode(const char *what, const uint8_t uuid[16], const uint8_t *buf, size_t len,
			 struct pvstore_guest *out)
{
	Pvha__GuestSpec *m;
	int r = 0;
	if (len > PVSTORE_RECORD_MAX)
		return pvs_failx(-EBADMSG, "%s: record larger than %u bytes", what, PVSTORE_RECORD_MAX);
	m = pvha__guest_spec__unpack(NULL, len, buf);
	if (!m)
		return pvs_failx(-EBADMSG, "%s: record of %zu bytes does not decode as a GuestSpec", what, len);
	if (m->version != 1) {
		r = pvs_failx(-EBADMSG, "%s: record version %u is unknown (want 1)", what, m->version);
		goto out;
	}
	if (m->uuid.len != 16 || memcmp(m->uuid.data, uuid, 16) != 0) {
		r = pvs_failx(-EBADMSG, "%s: record uuid does not match the object name", what);
		goto out;
	}
	if (!m->generation) {
		r = pvs_failx(-EBADMSG, "%s: record generation is 0", what);
		goto out;
	}
	if (strlen(m->name) > PVSTORE_NAME_MAX || strlen(m->image_sha256) > 64 ||
	    strlen(m->cmdline) > PVSTORE_CMDLINE_MAX || strlen(m->address) > PVSTORE_ADDR_MAX) {
		r = pvs_failx(-EBADMSG, "%s: a string field of the record is too long", what);
		goto out;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out->uuid, uuid, 16);
	out->generation = m->generation;
	snprintf(out->name, sizeof(out->name), "%s", m->name);
	out->mem_size = m->mem_size;
	snprintf(out->image_sha256, sizeof(out->image_sha256), "%s", m->image_sha256);
	out->disk_size = m->disk_size;
	snprintf(out->cmdline, sizeof(out->cmdline), "%s", m->cmdline);
	snprintf(out->address, sizeof(out->address), "%s", m->address);
	out->heartbeat_timeout_s = m->heartbeat_timeout_s;
	out->heartbeat_max_resets = m->heartbeat_max_resets;
	out->heartbeat_window_s = m->heartbeat_window_s;
	out->desired = (enum pvstore_desired)m->desired;
	out->priority = m->priority;
	if ((r = decode_placement(what, m, out)) < 0)
		goto out;
	if (pvstore_guest_check(out) < 0) {
		/* keep the field's explanation, name the object */
		char why[400];
		snprintf(why, sizeof(why), "%s", pvstore_errmsg());
		r = pvs_failx(-EBADMSG, "%s: bad record: %s", what, why);
	}
out:
	pvha__guest_spec__free_unpacked(m, NULL);
	return r;
}
