/*
 * The pvha CLI (node/cli/pvha_main.c) as a script sees it: --help names every
 * command, and bad usage — a malformed argument or a guest image that cannot
 * be sent — exits 2 with a message naming the argument, before pvhad is asked.
 * Runs $PVHA_BUILD_DIR/bin/pvha; nothing here needs an agent, and nothing here
 * reaches one: every case is refused locally, and the one that passes the
 * local checks runs only where no pvhad answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_ARGS 40

/* Runs pvha with args (NULL-terminated); its stdout and stderr in *out and *err (malloc'd). */
static int pvha(const char *const *args, char **out, char **err)
{
	char *argv[MAX_ARGS + 2] = { (char *)th_build("bin/pvha") };
	int n = 1;
	for (; args[n - 1]; n++) {
		assert_true(n <= MAX_ARGS);
		argv[n] = (char *)args[n - 1];
	}
	struct proc p;
	int rc = th_run(&p, 10, argv);
	*out = th_slurp(p.out_path);
	*err = th_slurp(p.err_path);
	return rc;
}

/* Expects exit status rc and needle in stderr; prints the run on a mismatch. */
static void expect(const char *const *args, int rc, const char *needle)
{
	char *out, *err;
	int got = pvha(args, &out, &err);
	if (got != rc || !strstr(err, needle)) {
		print_error("pvha");
		for (int i = 0; args[i]; i++)
			print_error(" %s", args[i]);
		print_error(": exit %d (want %d), stderr:\n%s(want \"%s\" in it)\n", got, rc, err, needle);
		fail();
	}
	free(out);
	free(err);
}

/* Writes a file of size bytes that starts with head (its first strlen(head) bytes). */
static const char *make_file(const char *name, const char *head, size_t size)
{
	const char *path = th_tmp(name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	char *buf = calloc(1, size + 1);
	assert_non_null(buf);
	memcpy(buf, head, strlen(head) < size ? strlen(head) : size);
	assert_int_equal(fwrite(buf, 1, size, f), size);
	free(buf);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void help_names_every_command(void **state)
{
	(void)state;
	const char *args[] = { "--help", NULL };
	const char *want[] = {
		"cluster status", "node list", "guest create NAME --image FILE --mem SIZE",
		"[--disk SIZE] [--cmdline STR] [--priority N]", "[--start [--wait S]]", "guest list",
		"guest show G", "[--affinity GROUP[:soft]] [--anti-affinity GROUP[:soft]]", "[--depends-on G]",
		"guest set G [--priority N]", "[--no-rules] [--depends-on G]... [--no-depends]",
		"guest start G [--wait S]", "guest stop G [--force] [--wait S]", "guest delete G",
		"events [--guest G] [--after N] [--max N]", "vmm SOCKET status|pause|resume|stop",
		"vmm SOCKET save FILE", "--json", "guest migrate G NODE [--downtime MS]",
		"node drain N [--force]", "node resume N", "cluster rebalance [--dry-run] [--threshold X]",
		"cluster roll --hook CMD | --wait-operator",
	};
	char *out, *err;
	assert_int_equal(pvha(args, &out, &err), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(out, want[i]))
			fail_msg("--help does not name \"%s\":\n%s", want[i], out);
	free(out);
	free(err);
}

static void bad_usage_exits_2_naming_the_argument(void **state)
{
	(void)state;
	const char *elf = make_file("ok.elf", "\x7f" "ELF", 64);
	const struct {
		const char *args[MAX_ARGS + 1];
		const char *msg;
	} cases[] = {
		{ { NULL }, "usage: pvha" },
		{ { "--verbose", "guest", "list", NULL }, "unknown option '--verbose'" },
		{ { "bogus", NULL }, "unknown command 'bogus'" },
		{ { "guest", NULL }, "pvha guest: missing subcommand" },
		{ { "guest", "frobnicate", NULL }, "unknown subcommand 'frobnicate'" },
		{ { "cluster", "status", "now", NULL }, "unexpected argument 'now'" },
		{ { "guest", "list", "--json", NULL }, "--json goes before the command" },
		{ { "guest", "create", NULL }, "missing NAME" },
		{ { "guest", "create", "vm", "--mem", "64M", NULL }, "missing --image FILE" },
		{ { "guest", "create", "vm", "--image", elf, NULL }, "missing --mem SIZE" },
		{ { "guest", "create", "vm", "--image", NULL }, "--image wants a value" },
		{ { "guest", "create", "vm", "--mem", "64M", "--mem", "32M", "--image", elf, NULL },
		  "--mem given twice" },
		{ { "guest", "create", "vm", "vm2", NULL }, "unexpected argument 'vm2'" },
		{ { "guest", "create", ".vm", "--image", elf, "--mem", "64M", NULL }, "NAME '.vm'" },
		{ { "guest", "create", "v m", "--image", elf, "--mem", "64M", NULL }, "NAME 'v m'" },
		{ { "guest", "create", "0123456789012345678901234567890123456789012345678901234567890123",
		    "--image", elf, "--mem", "64M", NULL }, "NAME '0123" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "1M", NULL }, "--mem '1M'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "4097M", NULL }, "--mem '4097M'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "1025K", NULL }, "--mem '1025K'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64MB", NULL }, "--mem '64MB'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--disk", "1000", NULL },
		  "--disk '1000'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--priority", "1001", NULL },
		  "--priority '1001'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--priority", "-1001", NULL },
		  "--priority '-1001'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--priority", "high", NULL },
		  "--priority 'high'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--wait", "5", NULL },
		  "--wait wants --start" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--start", "--wait", "x", NULL },
		  "--wait 'x'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--heartbeat-timeout", "0", NULL },
		  "--heartbeat-timeout '0': want a whole number from 1 to 86400" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--heartbeat-timeout", "86401", NULL },
		  "--heartbeat-timeout '86401'" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--heartbeat-max-resets", "101", NULL },
		  "--heartbeat-max-resets '101': want a whole number from 1 to 100" },
		{ { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--heartbeat-window", "soon", NULL },
		  "--heartbeat-window 'soon'" },
		{ { "guest", "set", "vm", "--heartbeat-timeout", "-5", NULL }, "--heartbeat-timeout '-5'" },
		{ { "guest", "set", "vm", "--heartbeat-window", "604801", NULL },
		  "--heartbeat-window '604801': want a whole number from 1 to 604800" },
		{ { "guest", "set", "vm", "--heartbeat-max-resets", NULL }, "--heartbeat-max-resets wants a value" },
		{ { "guest", "show", NULL }, "missing G" },
		{ { "guest", "show", "a/b", NULL }, "G 'a/b'" },
		{ { "guest", "start", "vm", "--force", NULL }, "unknown option '--force'" },
		{ { "guest", "start", "vm", "--wait", "soon", NULL }, "--wait 'soon'" },
		{ { "guest", "stop", "vm", "--wait", "-1", NULL }, "--wait '-1'" },
		{ { "guest", "stop", "vm", "--wait", "86401", NULL }, "--wait '86401'" },
		{ { "guest", "delete", "vm", "--wait", "1", NULL }, "unknown option '--wait'" },
		{ { "events", "--max", "nope", NULL }, "--max 'nope'" },
		{ { "events", "--max", "0", NULL }, "--max '0'" },
		{ { "events", "--max", "1001", NULL }, "--max '1001'" },
		{ { "events", "--after", "-1", NULL }, "--after '-1'" },
		{ { "events", "--guest", "-vm", NULL }, "--guest '-vm'" },
		{ { "vmm", "/nonexistent.sock", "frobnicate", NULL }, "pvha vmm: want SOCKET" },
		{ { "vmm", "/nonexistent.sock", "migrate", NULL }, "want SOCKET migrate HOST:PORT" },
		{ { "vmm", "/nonexistent.sock", "migrate", "host", "--key-file", "k", NULL }, "HOST:PORT 'host'" },
		{ { "vmm", "/nonexistent.sock", "migrate", "host:0", "--key-file", "k", NULL }, "HOST:PORT 'host:0'" },
		{ { "vmm", "/nonexistent.sock", "migrate", "host:70000", "--key-file", "k", NULL },
		  "HOST:PORT 'host:70000'" },
		{ { "vmm", "/nonexistent.sock", "migrate", "h:1", "--key-file", "k", "--downtime", "0", NULL },
		  "--downtime '0'" },
		/* no unauthenticated migration: the key is required */
		{ { "vmm", "/nonexistent.sock", "migrate", "h:1", NULL }, "--key-file F" },
		{ { "vmm", "/nonexistent.sock", "migrate", "h:1", "--downtime", "5", NULL }, "--key-file F" },
		{ { "vmm", "/nonexistent.sock", "migrate", "h:1", "--key-file", "/nonexistent.key", NULL },
		  "--key-file /nonexistent.key: No such file or directory" },
		{ { "vmm", "/nonexistent.sock", "cancel", "now", NULL }, "cancel takes nothing more" },
		/* the maintenance commands (pvha_maint.c) */
		{ { "guest", "migrate", "vm", NULL }, "want G NODE" },
		{ { "guest", "migrate", "vm", "--downtime", "5", NULL }, "want G NODE" },
		{ { "guest", "migrate", "vm", "n/2", NULL }, "NODE 'n/2'" },
		{ { "guest", "migrate", "vm", "n2", "--downtime", "0", NULL }, "--downtime '0'" },
		{ { "guest", "migrate", "vm", "n2", "--downtime", "60001", NULL }, "--downtime '60001'" },
		{ { "guest", "migrate", "vm", "n2", "--wait", "5", "--no-wait", NULL }, "--wait and --no-wait" },
		{ { "guest", "migrate", "vm", "n2", "n3", NULL }, "unexpected argument 'n3'" },
		{ { "node", "drain", NULL }, "missing N" },
		{ { "node", "drain", "n1", "--wait", "never", NULL }, "--wait 'never'" },
		{ { "node", "drain", "n1", "--soon", NULL }, "unknown option '--soon'" },
		{ { "node", "resume", NULL }, "missing N" },
		{ { "node", "resume", "n1", "--force", NULL }, "unknown option '--force'" },
		{ { "cluster", "rebalance", "--threshold", "2", NULL }, "--threshold '2'" },
		{ { "cluster", "rebalance", "--threshold", "x", NULL }, "--threshold 'x'" },
		{ { "cluster", "rebalance", "now", NULL }, "unexpected argument 'now'" },
		{ { "cluster", "roll", NULL }, "--hook CMD or --wait-operator" },
		{ { "cluster", "roll", "--hook", "true", "--wait-operator", NULL }, "--hook and --wait-operator" },
		{ { "cluster", "roll", "--hook", "true", "--nodes", "n1,n/2", NULL }, "--nodes 'n/2'" },
		{ { "cluster", "roll", "--hook", "true", "--nodes", "n1,x';touch /tmp/pvha-pwned;'", NULL },
		  "--nodes 'x';touch /tmp/pvha-pwned;''" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect(cases[i].args, 2, cases[i].msg);
}

/* --affinity, --anti-affinity, --depends-on (guest create, guest set) and
 * guest set's other options. */
static void placement_options_exit_2_naming_the_argument(void **state)
{
	(void)state;
	const char *elf = make_file("ok.elf", "\x7f" "ELF", 64);
#define CREATE "guest", "create", "vm", "--image", elf, "--mem", "64M"
	const struct {
		const char *args[MAX_ARGS + 1];
		const char *msg;
	} cases[] = {
		{ { CREATE, "--affinity", NULL }, "--affinity wants a value" },
		{ { CREATE, "--affinity", "a b", NULL }, "--affinity 'a b': want 1 to 63 of" },
		{ { CREATE, "--affinity", "", NULL }, "--affinity '': the group wants 1 to 63" },
		{ { CREATE, "--affinity", ":soft", NULL }, "--affinity ':soft': the group wants" },
		{ { CREATE, "--anti-affinity", ".web", NULL }, "--anti-affinity '.web'" },
		{ { CREATE, "--anti-affinity", "web:sometimes", NULL },
		  "--anti-affinity 'web:sometimes': want GROUP or GROUP:soft" },
		{ { CREATE, "--anti-affinity", "a:b:soft", NULL }, "want GROUP or GROUP:soft" },
		{ { CREATE, "--anti-affinity",
		    "g123456789012345678901234567890123456789012345678901234567890123", NULL },
		  "the group wants 1 to 63" },
		{ { CREATE, "--affinity", "web", "--affinity", "web:soft", NULL }, "--affinity web given twice" },
		{ { CREATE, "--affinity", "a", "--anti-affinity", "b", "--affinity", "c", "--anti-affinity", "d",
		    "--affinity", "e", NULL },
		  "--affinity 'e': at most 4 placement rules" },
		{ { CREATE, "--depends-on", NULL }, "--depends-on wants a value" },
		{ { CREATE, "--depends-on", "-db", NULL }, "--depends-on '-db'" },
		{ { CREATE, "--depends-on", "vm", NULL }, "--depends-on vm: a guest cannot depend on itself" },
		{ { CREATE, "--depends-on", "db", "--depends-on", "db", NULL }, "--depends-on db given twice" },
		{ { CREATE, "--depends-on", "d1", "--depends-on", "d2", "--depends-on", "d3", "--depends-on", "d4",
		    "--depends-on", "d5", "--depends-on", "d6", "--depends-on", "d7", "--depends-on", "d8",
		    "--depends-on", "d9", NULL },
		  "--depends-on 'd9': at most 8 dependencies" },
		{ { "guest", "set", NULL }, "missing G" },
		{ { "guest", "set", "vm", NULL }, "nothing to change" },
		{ { "guest", "set", "vm", "--priority", "2000", NULL }, "--priority '2000'" },
		{ { "guest", "set", "vm", "--no-rules", "--affinity", "a", NULL },
		  "--no-rules and --affinity/--anti-affinity exclude each other" },
		{ { "guest", "set", "vm", "--no-depends", "--depends-on", "a", NULL },
		  "--no-depends and --depends-on exclude each other" },
		{ { "guest", "set", "vm", "--anti-affinity", "x y", NULL }, "--anti-affinity 'x y'" },
		{ { "guest", "set", "vm", "--mem", "64M", NULL }, "unknown option '--mem'" },
	};
#undef CREATE
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect(cases[i].args, 2, cases[i].msg);
}

static void cmdline_over_1023_bytes_is_refused(void **state)
{
	(void)state;
	char cmdline[1025];
	memset(cmdline, 'x', 1024);
	cmdline[1024] = '\0';
	const char *elf = make_file("ok.elf", "\x7f" "ELF", 64);
	const char *args[] = { "guest", "create", "vm", "--image", elf, "--mem", "64M", "--cmdline",
			       cmdline, NULL };
	expect(args, 2, "--cmdline: 1024 bytes, at most 1023");
}

static void images_that_cannot_be_sent_exit_2(void **state)
{
	(void)state;
	const char *dir = th_tmp("a-dir");
	assert_int_equal(mkdir(dir, 0700), 0);
	const struct {
		const char *path;
		const char *why;
	} cases[] = {
		{ th_tmp("missing.elf"), "No such file or directory" },
		{ dir, "Is a directory" },
		{ make_file("empty.elf", "", 0), "not an ELF file" },
		{ make_file("script.elf", "#!/bin/sh\n", 64), "not an ELF file" },
		{ make_file("short.elf", "\x7f" "EL", 3), "not an ELF file" },
		{ make_file("big.elf", "\x7f" "ELF", (900u << 10) + 1), "over 900 KiB" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[512];
		snprintf(msg, sizeof(msg), "--image '%s': %s", cases[i].path, cases[i].why);
		const char *args[] = { "guest", "create", "vm", "--image", cases[i].path, "--mem", "64M", NULL };
		expect(args, 2, msg);
	}
}

/* The largest of everything passes the local checks and goes to pvhad: only
 * where none answers (it would create the guest). */
static void limits_pass_the_local_checks(void **state)
{
	(void)state;
	const char *probe[] = { "cluster", "status", NULL };
	char *out, *err;
	int rc = pvha(probe, &out, &err);
	bool no_agent = rc == 1 && strstr(err, "cannot reach pvhad");
	free(out);
	free(err);
	if (!no_agent) {
		skip();
		return;
	}
	char cmdline[1024], name[64];
	memset(cmdline, 'x', 1023);
	cmdline[1023] = '\0';
	memset(name, 'n', 63);
	name[62] = '.';
	name[63] = '\0';
	const char *elf = make_file("max.elf", "\x7f" "ELF", 900u << 10);
	const char *args[] = { "guest", "create", name,
			       "--image", elf, "--mem", "4G", "--disk", "512", "--priority", "-1000",
			       "--cmdline", cmdline, "--start", "--wait", "86400", NULL };
	expect(args, 1, "cannot reach pvhad");
	const char *small[] = { "guest", "create", "vm", "--mem", "2M", "--image", elf, "--disk", "0",
				"--priority", "1000", NULL };
	expect(small, 1, "cannot reach pvhad");
	const char *wait[] = { "guest", "stop", "vm", "--wait", "0", "--force", NULL };
	expect(wait, 1, "cannot reach pvhad");
	const char *events[] = { "events", "--guest", "vm", "--max", "1000", "--after", "0", NULL };
	expect(events, 1, "cannot reach pvhad");
	/* the most rules and dependencies; an option's value that looks like ours is its value */
	const char *placed[] = { "guest", "create", "vm", "--mem", "2M", "--image", elf,
				 "--cmdline", "--affinity", "--affinity", "a", "--anti-affinity", "a:soft",
				 "--affinity", "b:hard", "--anti-affinity", "c", "--depends-on", "d1",
				 "--depends-on", "d2", "--depends-on", "d3", "--depends-on", "d4",
				 "--depends-on", "d5", "--depends-on", "d6", "--depends-on", "d7",
				 "--depends-on", "d8", NULL };
	expect(placed, 1, "cannot reach pvhad");
	const char *set[] = { "guest", "set", "vm", "--no-rules", "--no-depends", "--priority", "-1000", NULL };
	expect(set, 1, "cannot reach pvhad");
}

static int teardown(void **state)
{
	(void)state;
	th_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(help_names_every_command),
		cmocka_unit_test(bad_usage_exits_2_naming_the_argument),
		cmocka_unit_test(placement_options_exit_2_naming_the_argument),
		cmocka_unit_test(cmdline_over_1023_bytes_is_refused),
		cmocka_unit_test(images_that_cannot_be_sent_exit_2),
		cmocka_unit_test(limits_pass_the_local_checks),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
