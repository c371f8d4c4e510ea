/* The CLI parsers (node/lib/parse.c): sizes, numbers and disk specs, with every
 * malformed input refused with -EINVAL (or -ERANGE when it does not fit). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "parse.h"

static void sizes_parse_with_binary_units(void **state)
{
	(void)state;
	uint64_t v;
	assert_int_equal(pv_parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(pv_parse_size("512k", &v), 0);
	assert_int_equal(v, 512 * 1024);
	assert_int_equal(pv_parse_size("64M", &v), 0);
	assert_int_equal(v, 64ull << 20);
	assert_int_equal(pv_parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
}

static void bad_sizes_are_refused(void **state)
{
	(void)state;
	uint64_t v = 7;
	const char *bad[] = { "", "M", "-1", "1.5G", "64MB", " 64M", "64M ", "0x10", "12Q" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pv_parse_size(bad[i], &v), -EINVAL);
	assert_int_equal(pv_parse_size(NULL, &v), -EINVAL);
	assert_int_equal(pv_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(pv_parse_size("17179869184G", &v), -ERANGE);
	assert_int_equal(v, 7);
}

static void disk_specs_parse(void **state)
{
	(void)state;
	struct pv_disk_spec d;
	assert_int_equal(pv_parse_disk_spec("file:/tmp/a,b.img,size=16M", &d), 0);
	assert_int_equal(d.kind, PV_DISK_FILE);
	assert_string_equal(d.path, "/tmp/a,b.img");
	assert_int_equal(d.size, 16ull << 20);
	assert_int_equal(pv_parse_disk_spec("rados:pvha/guest-1", &d), 0);
	assert_int_equal(d.kind, PV_DISK_RADOS);
	assert_string_equal(d.pool, "pvha");
	assert_string_equal(d.name, "guest-1");
	assert_int_equal(d.size, 0);
}

static void bad_disk_specs_are_refused(void **state)
{
	(void)state;
	struct pv_disk_spec d;
	const char *bad[] = { "", "file:", "nfs:/x", "/tmp/x", "rados:pool", "rados:/name",
			      "rados:pool/", "rados:p/a/b", "file:/x,size=", "file:/x,size=0",
			      "file:/x,size=lots" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pv_parse_disk_spec(bad[i], &d) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sizes_parse_with_binary_units),
		cmocka_unit_test(bad_sizes_are_refused),
		cmocka_unit_test(disk_specs_parse),
		cmocka_unit_test(bad_disk_specs_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
