/*
 * Per-guest and per-node cephx users on a real Ceph (storage/keys.c): a
 * guest's VMM user reads and writes its own disk and takes its own owner
 * lock, and nothing else: another guest's disk and lock, the registry,
 * blocklisting and user management are refused by the cluster itself.
 * A node's user may blocklist (fencing), work the whole pool and make (and
 * remove) guests' users with exactly a guest's caps, and no other user.
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
#include <rados/librados.h>

#include "ceph_suite.h"
#include "pvstore/pvstore.h"

static struct ceph_fixture fx;
static struct pvstore *st;

/* A guest with its disk made. */
static void new_guest(struct pvstore_guest *g, const char *name)
{
	ceph_suite_guest(st, g, name);
	assert_int_equal(pvstore_disk_create(st, g->uuid, g->disk_size), 0);
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

/* A raw monitor command as entity (its keyring written by connect_as):
 * what a node key could send if pvhad were taken over. Returns 0 or -errno. */
static int mon_as(const char *entity, const char *json)
{
	char path[400];
	snprintf(path, sizeof(path), "%s/%s.keyring", fx.top, entity);
	rados_t c;
	assert_int_equal(rados_create2(&c, "ceph", entity, 0), 0);
	assert_int_equal(rados_conf_read_file(c, fx.conf), 0);
	assert_int_equal(rados_conf_set(c, "keyring", path), 0);
	assert_int_equal(rados_connect(c), 0);
	const char *cmd[1] = { json };
	char *out = NULL, *st_out = NULL;
	size_t outlen = 0, stlen = 0;
	int r = rados_mon_command(c, cmd, 1, "", 0, &out, &outlen, &st_out, &stlen);
	rados_buffer_free(out);
	rados_buffer_free(st_out);
	rados_shutdown(c);
	return r;
}

static void node_key_may_fence_and_make_guest_users_only(void **state)
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

	/* it makes a guest's user (what its agent does before a VMM starts):
	 * the same key as the admin gets, and that key works */
	char gk[PVSTORE_KEY_MAX], gk2[PVSTORE_KEY_MAX], gent[PVSTORE_ENTITY_MAX];
	assert_int_equal(pvstore_key_guest(n, g.uuid, gk, sizeof(gk)), 0);
	assert_int_equal(pvstore_key_guest(st, g.uuid, gk2, sizeof(gk2)), 0);
	assert_string_equal(gk, gk2);
	assert_int_equal(pvstore_guest_entity(gent, sizeof(gent), g.uuid), 0);
	struct pvstore *gc = connect_as(gent, gk);
	struct pvstore_disk *d;
	assert_int_equal(pvstore_disk_open(gc, g.uuid, &d), 0);
	pvstore_disk_close(d);
	pvstore_disconnect(gc);

	/* ...and no other user: not one with wider caps, not one named
	 * otherwise, not another node; it reads and removes no admin */
	char osd[512], mon[64];
	assert_int_equal(pvstore_guest_caps("pvha", NULL, g.uuid, osd, sizeof(osd), mon, sizeof(mon)), 0);
	const char *inert_mgr = "allow command pvha-none", *inert_mds = "allow r fsname=pvha-none";
	const struct {
		const char *what, *entity, *mon, *osd, *mgr;
	} wider[] = {
		{ "a guest user with admin caps", "client.pvha-guest-0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e00aa", "allow *",
		  "allow *", inert_mgr },
		{ "a guest user with mgr 'allow *'", "client.pvha-guest-x1", "allow r", osd, "allow *" },
		{ "a user not named pvha-guest-*", "client.evil", "allow r", osd, inert_mgr },
	};
	int r;
	for (size_t i = 0; i < sizeof(wider) / sizeof(wider[0]); i++) {
		char json[1200];
		snprintf(json, sizeof(json),
			 "{\"prefix\": \"auth get-or-create\", \"entity\": \"%s\", \"caps\": [\"mon\", \"%s\", "
			 "\"osd\", \"%s\", \"mgr\", \"%s\", \"mds\", \"%s\"]}",
			 wider[i].entity, wider[i].mon, wider[i].osd, wider[i].mgr, inert_mds);
		r = mon_as(ent, json);
		if (!MON_REFUSES(r))
			fail_msg("%s made by a node key: %d", wider[i].what, r);
	}
	r = mon_as(ent, "{\"prefix\": \"auth get\", \"entity\": \"client.admin\"}");
	if (!MON_REFUSES(r))
		fail_msg("reading the admin's key with a node key: %d", r);
	r = mon_as(ent, "{\"prefix\": \"auth rm\", \"entity\": \"client.admin\"}");
	if (!MON_REFUSES(r))
		fail_msg("removing the admin with a node key: %d", r);
	char k2[PVSTORE_KEY_MAX];
	r = pvstore_key_node(n, "n2", k2, sizeof(k2));
	if (!MON_REFUSES(r))
		fail_msg("creating a node user with a node key: %d (%s)", r, pvstore_errmsg());

	/* the guest goes: its user too */
	assert_int_equal(pvstore_key_remove(n, gent), 0);
	struct pvstore_config cfg = { .conf_path = fx.conf, .client_name = gent, .key = gk,
				      .mount_timeout_s = 5 };
	struct pvstore *gone = NULL;
	r = pvstore_connect(&cfg, &gone);
	if (r == 0)
		fail_msg("a removed guest user still connects");
	pvstore_disconnect(n);
	assert_int_equal(pvstore_key_remove(st, ent), 0);
}

/* A key given outright (pvstore_config.key: what pvha-vmm --ceph-keyring
 * does) connects without any keyring file. */
static void a_key_given_outright_connects(void **state)
{
	(void)state;
	struct pvstore_guest g;
	new_guest(&g, "keys-outright");
	char key[PVSTORE_KEY_MAX], ent[PVSTORE_ENTITY_MAX];
	assert_int_equal(pvstore_key_guest(st, g.uuid, key, sizeof(key)), 0);
	assert_int_equal(pvstore_guest_entity(ent, sizeof(ent), g.uuid), 0);
	struct pvstore_config cfg = { .conf_path = fx.conf, .client_name = ent, .key = key };
	struct pvstore *c = NULL;
	assert_int_equal(pvstore_connect(&cfg, &c), 0);
	assert_int_equal(pvstore_lock_acquire(c, g.uuid, "boot-k"), 0);
	assert_int_equal(pvstore_lock_release(c, g.uuid, "boot-k"), 0);
	pvstore_disconnect(c);
	/* another guest's key for this user: refused */
	struct pvstore_guest h;
	new_guest(&h, "keys-outright-2");
	char other[PVSTORE_KEY_MAX];
	assert_int_equal(pvstore_key_guest(st, h.uuid, other, sizeof(other)), 0);
	cfg.key = other;
	cfg.mount_timeout_s = 5;
	c = NULL;
	int r = pvstore_connect(&cfg, &c);
	if (r == 0)
		fail_msg("connecting with another user's key worked");
	assert_int_equal(pvstore_key_remove(st, ent), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(caps_name_only_the_guests_objects),
		cmocka_unit_test(guest_key_reaches_its_own_guest_only),
		cmocka_unit_test(node_key_may_fence_and_make_guest_users_only),
		cmocka_unit_test(a_key_given_outright_connects),
	};
	const struct ceph_suite suite = { .name = "test_store_keys", .fx = &fx, .st = &st };
	return ceph_suite_run(&suite, tests);
}
