/* External fence agents (fence/agent.c): fence_args checking, the stdin text
 * with %n/%a substituted, and a real spawn of a program that reads it. */
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

#include "pvfence/agent.h"

static void good_args_pass(void **state)
{
	(void)state;
	char why[200];
	const char *good[] = { "", "plug=%n", "type=file status_file=/tmp/st-%n  ip=%a",
			       "passwd=a%%b login=admin", "x-y_z=1" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(pvfence_args_check(good[i], why, sizeof(why)), 0);
}

static void bad_args_are_refused_with_a_reason(void **state)
{
	(void)state;
	char why[200];
	const char *bad[] = { "plug", "=x", "Plug=n1", "plug=%x", "plug=n1%", "action=reboot",
			      "a=1\nb=2", "key.with.dot=1", "p=\x01" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(pvfence_args_check(bad[i], why, sizeof(why)), -EINVAL);
		assert_true(strlen(why) > 10);
	}
	char many[4096] = "";
	for (int i = 0; i <= PVFENCE_ARGS_MAX; i++)
		strcat(many, "k=v ");
	assert_int_equal(pvfence_args_check(many, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "more than"));
}

static void input_substitutes_node_and_address(void **state)
{
	(void)state;
	char out[512], why[200];
	int n = pvfence_agent_input("off", "plug=%n  ip=%a pct=100%% f=/x/%n.st", "n2", "10.99.0.12", out,
				    sizeof(out), why, sizeof(why));
	const char *want = "action=off\nplug=n2\nip=10.99.0.12\npct=100%\nf=/x/n2.st\n";
	assert_int_equal(n, (int)strlen(want));
	assert_string_equal(out, want);
	n = pvfence_agent_input("status", "", "n1", "a", out, sizeof(out), why, sizeof(why));
	assert_string_equal(out, "action=status\n");
}

static void input_refuses_what_would_break_the_protocol(void **state)
{
	(void)state;
	char out[64], why[200];
	assert_int_equal(pvfence_agent_input("off", "", "n1\nplug=n3", "a", out, sizeof(out), why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(pvfence_agent_input("off", "", "n1", "a b", out, sizeof(out), why, sizeof(why)), -EINVAL);
	assert_int_equal(pvfence_agent_input("off=on", "", "n1", "a", out, sizeof(out), why, sizeof(why)),
			 -EINVAL);
	assert_int_equal(pvfence_agent_input("off", "plug=%x", "n1", "a", out, sizeof(out), why, sizeof(why)),
			 -EINVAL);
	/* too long for the buffer: refused, not cut */
	assert_int_equal(pvfence_agent_input("off", "k=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
					     "n1", "a", out, sizeof(out), why, sizeof(why)),
			 -ENAMETOOLONG);
}

/* A real program reads the input from stdin: a shell script that copies it
 * to a file and exits with a status chosen by a key. */
static void spawn_feeds_stdin_and_reports_the_status(void **state)
{
	(void)state;
	char dir[] = "/tmp/pvfence-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char prog[128], copy[128];
	snprintf(prog, sizeof(prog), "%s/agent", dir);
	snprintf(copy, sizeof(copy), "%s/input", dir);
	FILE *f = fopen(prog, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\ncat > %s\ngrep -q '^plug=bad$' %s && exit 3\nexit 0\n", copy, copy);
	fclose(f);
	assert_int_equal(chmod(prog, 0700), 0);

	char in[256], why[200], buf[64];
	int n = pvfence_agent_input("off", "plug=%n", "n3", "10.0.0.3", in, sizeof(in), why, sizeof(why));
	pid_t pid;
	assert_int_equal(pvfence_agent_spawn(prog, in, (size_t)n, -1, &pid), 0);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_string_equal(pvfence_status_str(st, buf, sizeof(buf)), "exit 0");
	char got[256] = "";
	f = fopen(copy, "r");
	assert_non_null(f);
	size_t r = fread(got, 1, sizeof(got) - 1, f);
	fclose(f);
	got[r] = '\0';
	assert_string_equal(got, "action=off\nplug=n3\n");

	n = pvfence_agent_input("off", "plug=bad", "n3", "x", in, sizeof(in), why, sizeof(why));
	assert_int_equal(pvfence_agent_spawn(prog, in, (size_t)n, -1, &pid), 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_string_equal(pvfence_status_str(st, buf, sizeof(buf)), "exit 3");

	assert_int_equal(pvfence_agent_spawn("/nonexistent/agent", in, (size_t)n, -1, &pid), -ENOENT);
	unlink(copy);
	unlink(prog);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_args_pass),
		cmocka_unit_test(bad_args_are_refused_with_a_reason),
		cmocka_unit_test(input_substitutes_node_and_address),
		cmocka_unit_test(input_refuses_what_would_break_the_protocol),
		cmocka_unit_test(spawn_feeds_stdin_and_reports_the_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
