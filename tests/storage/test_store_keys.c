/*
 * Per-guest and per-node cephx users on a real Ceph (storage/keys.c): a
 * guest's VMM user reads and writes its own disk and takes its own owner
 * lock, and nothing else: another guest's disk and lock, the registry,
 * blocklisting and user management are refused by the cluster itself.
 * A node's user may blocklist (fencing) and work the whole pool.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ceph_fixture.h"
#include "pvstore/pvstore.h"

static struct ceph_fixture fx;
static struct pvstore *st;

static int group_setup(void **state)
{
	(void)state;
	if (ceph_fixture_up(&fx, 1) < 0)
		return -1;
	st = ceph_fixture_connect(&fx, 0, 0);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pvstore_disconnect(st);
	ceph_fixture_down(&fx);
	return 0;
}

static void new_guest(struct pvstore_guest *g, const char *name)
{
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->mem_size = 32u << 20;
	g->disk_size = 8u << 20;
	assert_int_equal(pvstore_guest_create(st, g), 0);
	assert_int_equal(pvstore_disk_create(st, g->uuid, 8u << 20), 0);
}

/* A connection as entity with key (a keyring file of its own). */
static struct pvstore *connect_as(const char *entity, const char *key)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s.keyring", fx.top, entity);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[%s]\n\tkey = %s\n", entity, key);
	fclose(f);
	chmod(path, 0600);
	struct pvstore_config cfg = { .conf_path = fx.conf, .client_name = entity, .keyring = path };
	struct pvstore *c = NULL;
	int r = pvstore_connect(&cfg, &c);
	if (r)
		fail_msg("connecting as %s: %s", entity, pvstore_errmsg());
	return c;
}

/* The OSDs refuse an op the caps do not allow with -EPERM, the monitors a
 * command with -EACCES. */
#define OSD_REFUSES(r) ((r) == -EPERM)
#define MON_REFUSES(r) ((r) == -EACCES)

static void caps_name_only_the_guests_objects(void **state)
{
	(void)state;
	uint8_t u[16];
	char osd[512], mon[64], ent[PVSTORE_ENTITY_MAX];
	assert_int_equal(pvstore_uuid_parse("0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042", u), 0);
	assert_int_equal(pvstore_guest_caps("pvha", NULL, u, osd, sizeof(osd), mon, sizeof(mon)), 0);
	assert_string_equal(osd, "allow rw pool=pvha object_prefix disk.0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042., "
				 "allow r class-read class-write pool=pvha object_prefix "
				 "guest.0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042");
	assert_string_equal(mon, "allow r");
	assert_int_equal(pvstore_guest_entity(ent, sizeof(ent), u), 0);
	assert_string_equal(ent, "client.pvha-guest-0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042");
	assert_int_equal(pvstore_guest_caps("pvha", "ns1", u, osd, 20, mon, sizeof(mon)), -ENAMETOOLONG);
	assert_int_equal(pvstore_node_entity(ent, sizeof(ent), "n;1"), -EINVAL);
	assert_int_equal(pvstore_key_remove(st, "client.admin"), -EINVAL);
}

static void guest_key_reaches_its_own_guest_only(void **state)
{
	(void)state;
	struct pvstore_guest a, b;
	new_guest(&a, "keys-a");
	new_guest(&b, "keys-b");
	char key[PVSTORE_KEY_MAX], again[PVSTORE_KEY_MAX], ent[PVSTORE_ENTITY_MAX];
	assert_int_equal(pvstore_key_guest(st, a.uuid, key, sizeof(key)), 0);
	assert_true(strlen(key) > 20);
	/* asking again gives the same key: get-or-create */
	assert_int_equal(pvstore_key_guest(st, a.uuid, again, sizeof(again)), 0);
	assert_string_equal(key, again);
	assert_int_equal(pvstore_guest_entity(ent, sizeof(ent), a.uuid), 0);
	struct pvstore *g = connect_as(ent, key);

	/* its own disk: read and write; its own owner lock */
	struct pvstore_disk *d;
	char buf[4096];
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(pvstore_disk_open(g, a.uuid, &d), 0);
	assert_int_equal(pvstore_disk_write(d, buf, 0, sizeof(buf)), 0);
	assert_int_equal(pvstore_disk_read(d, buf, 4096, sizeof(buf)), 0);
	pvstore_disk_close(d);
	assert_int_equal(pvstore_lock_acquire(g, a.uuid, "boot-a"), 0);
	assert_int_equal(pvstore_lock_release(g, a.uuid, "boot-a"), 0);

	/* another guest's disk, lock and record: the cluster says no */
	int r = pvstore_disk_open(g, b.uuid, &d);
	if (!OSD_REFUSES(r))
		fail_msg("opening guest b's disk with a's key: %d (%s)", r, pvstore_errmsg());
	r = pvstore_lock_acquire(g, b.uuid, "boot-a");
	if (!OSD_REFUSES(r))
		fail_msg("taking guest b's lock with a's key: %d (%s)", r, pvstore_errmsg());
	struct pvstore_guest rb;
	r = pvstore_guest_read(g, b.uuid, &rb);
	if (!OSD_REFUSES(r))
		fail_msg("reading guest b's record with a's key: %d (%s)", r, pvstore_errmsg());
	/* the registry: no delete, not even of its own guest; no rewrite of
	 * its own spec (its memory size, say) */
	r = pvstore_guest_delete(g, a.uuid, a.generation);
	if (!OSD_REFUSES(r))
		fail_msg("deleting guest a from the registry with a's key: %d (%s)", r, pvstore_errmsg());
	r = pvstore_guest_delete(g, b.uuid, b.generation);
	if (!OSD_REFUSES(r))
		fail_msg("deleting guest b with a's key: %d (%s)", r, pvstore_errmsg());
	/* fencing: no blocklist */
	r = pvstore_blocklist_add(g, "192.0.2.7", 60);
	if (!MON_REFUSES(r))
		fail_msg("blocklisting with a guest key: %d (%s)", r, pvstore_errmsg());
	/* and it cannot mint itself a better key */
	char k2[PVSTORE_KEY_MAX];
	r = pvstore_key_guest(g, b.uuid, k2, sizeof(k2));
	if (!MON_REFUSES(r))
		fail_msg("creating a user with a guest key: %d (%s)", r, pvstore_errmsg());
	pvstore_disconnect(g);

	/* b is still whole: its record reads back with the admin key */
	assert_int_equal(pvstore_guest_read(st, b.uuid, &rb), 0);
	assert_int_equal(pvstore_key_remove(st, ent), 0);
	assert_int_equal(pvstore_key_remove(st, ent), 0); /* gone already: fine */
}

static void node_key_may_fence(void **state)
{
	(void)state;
	char key[PVSTORE_KEY_MAX], ent[PVSTORE_ENTITY_MAX];
	assert_int_equal(pvstore_key_node(st, "n1", key, sizeof(key)), 0);
	assert_int_equal(pvstore_node_entity(ent, sizeof(ent), "n1"), 0);
	struct pvstore *n = connect_as(ent, key);
	assert_int_equal(pvstore_blocklist_add(n, "192.0.2.8", 60), 0);
	struct pvstore_guest g;
	new_guest(&g, "keys-node");
	assert_int_equal(pvstore_lock_acquire(n, g.uuid, "boot-n"), 0);
	assert_int_equal(pvstore_lock_release(n, g.uuid, "boot-n"), 0);
	/* a node key makes no users */
	char k2[PVSTORE_KEY_MAX];
	int r = pvstore_key_guest(n, g.uuid, k2, sizeof(k2));
	if (!MON_REFUSES(r))
		fail_msg("creating a user with a node key: %d (%s)", r, pvstore_errmsg());
	pvstore_disconnect(n);
	assert_int_equal(pvstore_key_remove(st, ent), 0);
}

int main(void)
{
	const char *skip = ceph_fixture_skip_reason();
	if (skip) {
		printf("skipped: %s\n", skip);
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(caps_name_only_the_guests_objects),
		cmocka_unit_test(guest_key_reaches_its_own_guest_only),
		cmocka_unit_test(node_key_may_fence),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
