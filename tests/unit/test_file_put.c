/*
 * pv_file_put (node/lib/file_put.c): a file replaced whole, with its mode
 * whatever the umask; a leftover PATH.tmp (an earlier crash) is replaced, a
 * symlink there is not followed; a failure leaves the old file and no
 * PATH.tmp behind.
 */
#include <errno.h>
#include <fcntl.h>
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

#include "file_put.h"

static char dir[64];

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static char *slurp(const char *path)
{
	static char buf[256];
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void writes_then_replaces_whole_with_its_mode(void **state)
{
	(void)state;
	char p[128], tmp[140];
	struct stat st;
	path_in(p, sizeof(p), "a.conf");
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	mode_t old = umask(0077);
	assert_int_equal(pv_file_put(p, "first\n", 6, 0644, true), 0);
	umask(old);
	assert_string_equal(slurp(p), "first\n");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644); /* not the umask's 0600 */
	assert_int_equal(pv_file_put(p, "second, longer\n", 15, 0600, false), 0);
	assert_string_equal(slurp(p), "second, longer\n");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(access(tmp, F_OK), -1);
	/* empty is a content too */
	assert_int_equal(pv_file_put(p, "", 0, 0600, true), 0);
	assert_string_equal(slurp(p), "");
}

static void a_leftover_tmp_is_replaced_and_a_symlink_not_followed(void **state)
{
	(void)state;
	char p[128], tmp[140], victim[128];
	path_in(p, sizeof(p), "b.keyring");
	path_in(victim, sizeof(victim), "victim");
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	/* half a file from a crash */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "half", 4), 4);
	close(fd);
	assert_int_equal(pv_file_put(p, "whole\n", 6, 0600, true), 0);
	assert_string_equal(slurp(p), "whole\n");
	/* a symlink planted at the tmp name: replaced, its target untouched */
	fd = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep\n", 5), 5);
	close(fd);
	assert_int_equal(symlink(victim, tmp), 0);
	assert_int_equal(pv_file_put(p, "again\n", 6, 0600, true), 0);
	assert_string_equal(slurp(p), "again\n");
	assert_string_equal(slurp(victim), "keep\n");
}

static void a_failure_leaves_the_old_file(void **state)
{
	(void)state;
	char p[128], sub[128];
	/* no such directory */
	path_in(p, sizeof(p), "missing/c.conf");
	assert_int_equal(pv_file_put(p, "x", 1, 0600, true), -ENOENT);
	/* path is a directory: the rename fails, the directory and no tmp stay */
	path_in(sub, sizeof(sub), "adir");
	assert_int_equal(mkdir(sub, 0700), 0);
	char inside[160], tmp[160];
	snprintf(inside, sizeof(inside), "%s/f", sub);
	assert_int_equal(pv_file_put(inside, "x", 1, 0600, false), 0);
	assert_int_equal(pv_file_put(sub, "y", 1, 0600, true), -EISDIR);
	snprintf(tmp, sizeof(tmp), "%s.tmp", sub);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_string_equal(slurp(inside), "x");
	/* a name too long for a tmp beside it */
	char longp[5000];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(pv_file_put(longp, "x", 1, 0600, false), -ENAMETOOLONG);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_file_put.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writes_then_replaces_whole_with_its_mode),
		cmocka_unit_test(a_leftover_tmp_is_replaced_and_a_symlink_not_followed),
		cmocka_unit_test(a_failure_leaves_the_old_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
