/*
 * The pool of a new cluster on a real Ceph (storage/bootstrap.c,
 * pvstore_pool_prepare): `pvha cluster init` makes a pool, tags it and makes
 * the registry, and a second run adopts what is there and changes nothing;
 * `node join` finds it; a pool that belongs to something else, a missing
 * pool, a missing conf, an unreachable Ceph and a user without rights are
 * refused with a message that names what to fix, and change nothing.
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

#include <cmocka.h>
#include <rados/librados.h>

#include "ceph_suite.h"
#include "pvstore/names.h"
#include "pvstore/pvstore.h"

static struct ceph_fixture fx;
static rados_t admin; /* plain librados, to make pools pvha would refuse */

static int group_setup(void **state)
{
	(void)state;
	ceph_suite_rados(&fx, &admin, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rados_shutdown(admin);
	return 0;
}

static int prepare(const char *pool, bool create, struct pvstore_pool_info *info)
{
	struct pvstore_config cfg = { .conf_path = fx.conf, .pool = pool };
	return pvstore_pool_prepare(&cfg, create, info);
}

/* Whether pool carries the application tag app. */
static bool has_tag(const char *pool, const char *app)
{
	rados_ioctx_t io;
	char buf[512];
	size_t len = sizeof(buf);
	bool found = false;
	/* the tags live in the osdmap: this handle's copy may predate the change */
	assert_int_equal(rados_wait_for_latest_osdmap(admin), 0);
	assert_int_equal(rados_ioctx_create(admin, pool, &io), 0);
	assert_int_equal(rados_application_list(io, buf, &len), 0);
	for (size_t off = 0; off < len && buf[off]; off += strlen(buf + off) + 1)
		found |= !strcmp(buf + off, app);
	rados_ioctx_destroy(io);
	return found;
}

static void make_pool(const char *pool, const char *tag, const char *object)
{
	rados_ioctx_t io;
	assert_int_equal(rados_pool_create(admin, pool), 0);
	assert_int_equal(rados_ioctx_create(admin, pool, &io), 0);
	if (tag)
		assert_int_equal(rados_application_enable(io, tag, 1), 0);
	if (object)
		assert_int_equal(rados_write_full(io, object, "x", 1), 0);
	rados_ioctx_destroy(io);
}

static void init_makes_the_pool_and_a_second_init_changes_nothing(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	assert_int_equal(prepare("boot1", true, &info), 0);
	assert_true(info.pool_created);
	assert_true(info.tagged);
	assert_true(info.registry_created);
	assert_int_equal(strlen(info.fsid), 36);
	assert_non_null(strstr(info.mon_host, fx.addr));
	assert_true(has_tag("boot1", PVSTORE_POOL_APP));

	/* a guest in it, then init again: adopted, nothing made, the guest kept */
	struct pvstore_config cfg = { .conf_path = fx.conf, .pool = "boot1" };
	struct pvstore *st;
	struct pvstore_guest g = { .name = "kept", .mem_size = 16u << 20 };
	assert_int_equal(pvstore_connect(&cfg, &st), 0);
	assert_int_equal(pvstore_guest_create(st, &g), 0);
	assert_int_equal(prepare("boot1", true, &info), 0);
	assert_false(info.pool_created);
	assert_false(info.tagged);
	assert_false(info.registry_created);
	uint8_t u[16];
	assert_int_equal(pvstore_guest_lookup(st, "kept", u), 0);
	assert_memory_equal(u, g.uuid, 16);
	pvstore_disconnect(st);

	/* join finds it */
	assert_int_equal(prepare("boot1", false, &info), 0);
	assert_false(info.pool_created || info.tagged || info.registry_created);
}

static void init_adopts_an_empty_rados_pool(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	/* the fixture's pool "pvha": made by pvha-ceph, tagged rados, empty */
	assert_int_equal(prepare("pvha", true, &info), 0);
	assert_false(info.pool_created);
	assert_true(info.tagged);
	assert_true(info.registry_created);
	assert_true(has_tag("pvha", PVSTORE_POOL_APP));
}

static void init_refuses_a_pool_with_foreign_objects_and_changes_nothing(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	make_pool("notours", NULL, "payroll.db");
	assert_int_equal(prepare("notours", true, &info), -EEXIST);
	assert_non_null(strstr(pvstore_errmsg(), "payroll.db"));
	assert_non_null(strstr(pvstore_errmsg(), "--pool"));
	assert_false(has_tag("notours", PVSTORE_POOL_APP));
}

static void init_refuses_another_applications_pool(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	make_pool("images", "rbd", NULL);
	assert_int_equal(prepare("images", true, &info), -EEXIST);
	assert_non_null(strstr(pvstore_errmsg(), "'rbd'"));
	assert_false(has_tag("images", PVSTORE_POOL_APP));
}

static void join_refuses_a_missing_or_untagged_pool(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	assert_int_equal(prepare("nosuchpool", false, &info), -ENOENT);
	assert_non_null(strstr(pvstore_errmsg(), "pvha cluster init"));
	assert_int_equal(rados_pool_lookup(admin, "nosuchpool"), -ENOENT); /* join makes nothing */
	make_pool("plain", "rados", NULL);
	assert_int_equal(prepare("plain", false, &info), -ENXIO);
	assert_non_null(strstr(pvstore_errmsg(), "not a pvha pool yet"));
	assert_false(has_tag("plain", PVSTORE_POOL_APP));
}

static void join_refuses_a_tagged_pool_without_registry(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	make_pool("halfmade", PVSTORE_POOL_APP, NULL);
	assert_int_equal(prepare("halfmade", false, &info), -ENOENT);
	assert_non_null(strstr(pvstore_errmsg(), "registry"));
	/* init completes it */
	assert_int_equal(prepare("halfmade", true, &info), 0);
	assert_true(info.registry_created);
	assert_int_equal(prepare("halfmade", false, &info), 0);
}

static void a_node_user_may_not_make_pools(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	struct pvstore_config cfg = { .conf_path = fx.conf, .pool = "boot1" };
	struct pvstore *st;
	char key[PVSTORE_KEY_MAX], path[400];
	assert_int_equal(pvstore_connect(&cfg, &st), 0);
	assert_int_equal(pvstore_key_node(st, "weak", key, sizeof(key)), 0);
	pvstore_disconnect(st);
	snprintf(path, sizeof(path), "%s/weak.keyring", fx.top);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[client.pvha-node-weak]\n\tkey = %s\n", key);
	fclose(f);
	struct pvstore_config weak = { .conf_path = fx.conf, .client_name = "client.pvha-node-weak",
				       .keyring = path, .pool = "weakpool" };
	int r = pvstore_pool_prepare(&weak, true, &info);
	assert_true(r == -EACCES || r == -EPERM);
	assert_non_null(strstr(pvstore_errmsg(), "creating pool 'weakpool'"));
	assert_int_equal(rados_pool_lookup(admin, "weakpool"), -ENOENT);
	/* joining the pool it may use works: a tagged pool needs no rights to check */
	weak.pool = "boot1";
	assert_int_equal(pvstore_pool_prepare(&weak, false, &info), 0);
}

static void a_missing_conf_an_unreachable_ceph_and_a_bad_name_are_errors(void **state)
{
	(void)state;
	struct pvstore_pool_info info;
	struct pvstore_config cfg = { .conf_path = "/nonexistent/ceph.conf" };
	assert_int_equal(pvstore_pool_prepare(&cfg, true, &info), -ENOENT);
	assert_non_null(strstr(pvstore_errmsg(), "/nonexistent/ceph.conf"));

	/* a monitor address where nothing listens (this fixture's address, a port no daemon uses) */
	char path[400];
	snprintf(path, sizeof(path), "%s/dead.conf", fx.top);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "[global]\nmon_host = v1:%s:1\n", fx.addr);
	fclose(f);
	struct pvstore_config dead = { .conf_path = path, .mount_timeout_s = 2 };
	double t0 = ceph_fixture_now_ms();
	assert_int_equal(pvstore_pool_prepare(&dead, true, &info), -ETIMEDOUT);
	assert_true(ceph_fixture_now_ms() - t0 < 20000);
	assert_non_null(strstr(pvstore_errmsg(), "no monitor"));

	cfg.conf_path = fx.conf;
	cfg.pool = "bad/name";
	assert_int_equal(pvstore_pool_prepare(&cfg, true, &info), -EINVAL);
	assert_non_null(strstr(pvstore_errmsg(), "bad pool name"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(init_makes_the_pool_and_a_second_init_changes_nothing),
		cmocka_unit_test(init_adopts_an_empty_rados_pool),
		cmocka_unit_test(init_refuses_a_pool_with_foreign_objects_and_changes_nothing),
		cmocka_unit_test(init_refuses_another_applications_pool),
		cmocka_unit_test(join_refuses_a_missing_or_untagged_pool),
		cmocka_unit_test(join_refuses_a_tagged_pool_without_registry),
		cmocka_unit_test(a_node_user_may_not_make_pools),
		cmocka_unit_test(a_missing_conf_an_unreachable_ceph_and_a_bad_name_are_errors),
	};
	const struct ceph_suite suite = {
		.name = "test_store_bootstrap", .fx = &fx, .setup = group_setup, .teardown = group_teardown,
	};
	return ceph_suite_run(&suite, tests);
}
