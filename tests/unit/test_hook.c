/* The roll hook runner (node/lib/hook.c): names are checked before anything
 * runs, and a node's name reaches the hook only as PVHA_NODE, so a name can
 * never become shell. Runs /bin/sh; needs nothing else. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "hook.h"

static void names_follow_the_rule(void **state)
{
	(void)state;
	const char *good[] = { "n1", "node-2.lab", "A_b", "x", "a123456789012345678901234567890123456789012345678901234567890ab" };
	const char *bad[] = { "", ".n", "-n", "n 1", "n;1", "n'1", "$(touch x)", "`id`", "n/1", "n\n",
			      "a1234567890123456789012345678901234567890123456789012345678901234" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(pv_name_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(pv_name_ok(bad[i]));
	assert_false(pv_name_ok(NULL));
}

static void the_hook_sees_the_node_in_its_environment(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvha-hook-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cmd[512], path[300];
	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(cmd, sizeof(cmd), "printf '%%s' \"$PVHA_NODE\" > %s", path);
	setenv("PVHA_NODE", "stale", 1);
	int st = -1;
	assert_int_equal(pv_hook_run(cmd, "node-7", &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char buf[64] = "";
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "node-7");
	/* the hook's own status comes back */
	assert_int_equal(pv_hook_run("exit 3", "n1", &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 3);
	unlink(path);
	rmdir(dir);
}

static void a_name_that_would_be_shell_runs_nothing(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvha-hook-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char evil[400], cmd[400], mark[300];
	snprintf(mark, sizeof(mark), "%s/pwned", dir);
	/* what the old code spliced into  PVHA_NODE='NAME'; ...  */
	snprintf(evil, sizeof(evil), "x'; touch %s; '", mark);
	snprintf(cmd, sizeof(cmd), "true");
	int st = -1;
	assert_int_equal(pv_hook_run(cmd, evil, &st), -EINVAL);
	assert_int_equal(pv_hook_run(cmd, "$(touch /tmp/never)", &st), -EINVAL);
	assert_int_equal(pv_hook_run("", "n1", &st), -EINVAL);
	assert_int_equal(pv_hook_run(NULL, "n1", &st), -EINVAL);
	struct stat sb;
	assert_int_not_equal(stat(mark, &sb), 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_follow_the_rule),
		cmocka_unit_test(the_hook_sees_the_node_in_its_environment),
		cmocka_unit_test(a_name_that_would_be_shell_runs_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
