/*
 * node/lib/conf_edit.c: filling keys into a pvhad.conf and keeping the rest
 * (what pvha cluster init / node join do to the package's template).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf_edit.h"

static char *text_of(const char *in, const char *key, const char *val, int want)
{
	struct conf_edit f = { 0 };
	size_t len;
	assert_int_equal(conf_edit_parse(&f, in), 0);
	assert_int_equal(conf_edit_set(&f, key, val), want);
	char *out = conf_edit_text(&f, &len);
	assert_non_null(out);
	assert_int_equal(strlen(out), len);
	conf_edit_free(&f);
	return out;
}

static void a_commented_template_line_becomes_the_key(void **state)
{
	(void)state;
	char *out = text_of("# REQUIRED. This node's name\n#node_name = node1\n\n#address = 192.0.2.11\n",
			    "node_name", "n2", 0);
	assert_string_equal(out, "# REQUIRED. This node's name\nnode_name = n2\n\n#address = 192.0.2.11\n");
	free(out);
}

static void a_missing_key_is_added_at_the_end(void **state)
{
	(void)state;
	char *out = text_of("state_dir = /x\n# pool is elsewhere\n", "pool", "pvha", 0);
	assert_string_equal(out, "state_dir = /x\n# pool is elsewhere\npool = pvha\n");
	free(out);
}

static void the_same_value_changes_nothing(void **state)
{
	(void)state;
	char *out = text_of("  pool\t=  pvha   # the pool\n#pool = other\n", "pool", "pvha", 0);
	assert_string_equal(out, "  pool\t=  pvha   # the pool\n#pool = other\n");
	free(out);
}

static void another_value_is_refused_and_kept(void **state)
{
	(void)state;
	char *out = text_of("node_name = n1\n", "node_name", "n3", -EEXIST);
	assert_string_equal(out, "node_name = n1\n");
	free(out);
}

static void a_key_that_only_starts_the_same_is_another_key(void **state)
{
	(void)state;
	char *out = text_of("pool_size = 3\n#poolx = 1\n", "pool", "pvha", 0);
	assert_string_equal(out, "pool_size = 3\n#poolx = 1\npool = pvha\n");
	free(out);
}

static void get_reads_active_lines_only(void **state)
{
	(void)state;
	struct conf_edit f = { 0 };
	char v[64];
	assert_int_equal(conf_edit_parse(&f, "#ceph_conf = /a\nceph_conf = /b # here\n"), 0);
	assert_true(conf_edit_get(&f, "ceph_conf", v, sizeof(v)));
	assert_string_equal(v, "/b");
	assert_false(conf_edit_get(&f, "pool", v, sizeof(v)));
	conf_edit_free(&f);
}

static void values_the_format_cannot_carry_are_einval(void **state)
{
	(void)state;
	struct conf_edit f = { 0 };
	assert_int_equal(conf_edit_parse(&f, "x = 1\n"), 0);
	assert_int_equal(conf_edit_set(&f, "pool", "a#b"), -EINVAL);
	assert_int_equal(conf_edit_set(&f, "pool", "a\nb"), -EINVAL);
	assert_int_equal(conf_edit_set(&f, "pool", ""), -EINVAL);
	assert_int_equal(conf_edit_set(&f, "pool", " lead"), -EINVAL);
	assert_int_equal(conf_edit_set(&f, "pool", "trail "), -EINVAL);
	assert_int_equal(conf_edit_set(&f, "Pool", "p"), -EINVAL);
	assert_int_equal(conf_edit_set(&f, "", "p"), -EINVAL);
	assert_int_equal(f.n, 1);
	conf_edit_free(&f);
}

static void too_many_or_too_long_lines_are_e2big(void **state)
{
	(void)state;
	struct conf_edit f = { 0 };
	char *big = malloc(CONF_EDIT_LINES_MAX * 2 + 3);
	assert_non_null(big);
	size_t i;
	for (i = 0; i < CONF_EDIT_LINES_MAX * 2 + 2; i += 2)
		big[i] = '#', big[i + 1] = '\n';
	big[i] = '\0';
	assert_int_equal(conf_edit_parse(&f, big), -E2BIG);
	assert_int_equal(f.n, 0);
	free(big);
	char longline[CONF_EDIT_LINE_MAX + 2];
	memset(longline, 'a', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(conf_edit_parse(&f, longline), -E2BIG);
	assert_int_equal(f.n, 0);
	/* a full file takes no new key */
	char *full = malloc(CONF_EDIT_LINES_MAX * 2 + 1);
	assert_non_null(full);
	for (i = 0; i < CONF_EDIT_LINES_MAX * 2; i += 2)
		full[i] = '#', full[i + 1] = '\n';
	full[i] = '\0';
	assert_int_equal(conf_edit_parse(&f, full), 0);
	assert_int_equal(conf_edit_set(&f, "pool", "pvha"), -E2BIG);
	conf_edit_free(&f);
	free(full);
}

static void load_a_missing_file_is_empty_and_a_file_is_read(void **state)
{
	(void)state;
	struct conf_edit f;
	char path[] = "/tmp/pvha-conf-edit.XXXXXX", v[16];
	assert_int_equal(conf_edit_load(&f, "/nonexistent/pvhad.conf"), 0);
	assert_false(f.exists);
	assert_int_equal(f.n, 0);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "pool = p1\n", 10), 10);
	close(fd);
	assert_int_equal(conf_edit_load(&f, path), 0);
	assert_true(f.exists);
	assert_true(conf_edit_get(&f, "pool", v, sizeof(v)));
	assert_string_equal(v, "p1");
	conf_edit_free(&f);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_commented_template_line_becomes_the_key),
		cmocka_unit_test(a_missing_key_is_added_at_the_end),
		cmocka_unit_test(the_same_value_changes_nothing),
		cmocka_unit_test(another_value_is_refused_and_kept),
		cmocka_unit_test(a_key_that_only_starts_the_same_is_another_key),
		cmocka_unit_test(get_reads_active_lines_only),
		cmocka_unit_test(values_the_format_cannot_carry_are_einval),
		cmocka_unit_test(too_many_or_too_long_lines_are_e2big),
		cmocka_unit_test(load_a_missing_file_is_empty_and_a_file_is_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
