/*
 * The secrets pvhad hands a VMM (node/lib/keyring.c): the guest's Ceph
 * keyring written and read back, every malformed keyring refused with its
 * -errno, and secret files others may read refused.
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

#include "keyring.h"

#define ENT "client.pvha-guest-0d1f7a5e-55aa-4b8e-9d1e-2b7c3a9e0042"
#define KEY "AQBxYlRnAAAAABAAk0hJ3Yk0k4N5E1pR0b6oqQ=="

static int parse(const char *text, char *key, size_t keylen)
{
	return pv_keyring_parse(text, strlen(text), ENT, key, keylen);
}

static void a_formatted_keyring_reads_back(void **state)
{
	(void)state;
	char ring[256], key[PV_CEPH_KEY_MAX];
	int n = pv_keyring_format(ring, sizeof(ring), ENT, KEY);
	assert_int_equal(n, (int)strlen(ring));
	assert_string_equal(ring, "[" ENT "]\n\tkey = " KEY "\n");
	assert_int_equal(pv_keyring_parse(ring, (size_t)n, ENT, key, sizeof(key)), 0);
	assert_string_equal(key, KEY);
}

static void the_key_of_the_named_section_is_found(void **state)
{
	(void)state;
	char key[PV_CEPH_KEY_MAX];
	/* Ceph's own layout: other users first, caps lines, comments, CRLF */
	assert_int_equal(parse("# made by ceph auth\n[client.admin]\n\tkey = QURNSU4=\n"
			       "[" ENT "]\r\n\tcaps mon = \"allow r\"\r\n\tkeyring = x\r\n  key=" KEY "  \r\n",
			       key, sizeof(key)),
			 0);
	assert_string_equal(key, KEY);
}

static void bad_keyrings_are_refused(void **state)
{
	(void)state;
	char key[PV_CEPH_KEY_MAX];
	assert_int_equal(parse("", key, sizeof(key)), -ENOENT);
	assert_int_equal(parse("[client.admin]\n\tkey = " KEY "\n", key, sizeof(key)), -ENOENT);
	assert_int_equal(parse("[" ENT "]\n\tcaps osd = \"allow r\"\n", key, sizeof(key)), -ENOENT);
	assert_int_equal(parse("[" ENT "\n\tkey = " KEY "\n", key, sizeof(key)), -EINVAL);
	assert_int_equal(parse("[" ENT "]\n\tkey = not base64!\n", key, sizeof(key)), -EINVAL);
	assert_int_equal(parse("[" ENT "]\n\tkey =\n", key, sizeof(key)), -EINVAL);
	assert_int_equal(parse("[" ENT "]\n\tkey = " KEY "\n", key, 8), -ENAMETOOLONG);
	assert_int_equal(pv_keyring_parse("[x]", 3, "admin", key, sizeof(key)), -EINVAL);
	char ring[256];
	assert_int_equal(pv_keyring_format(ring, sizeof(ring), "client.a\"b", KEY), -EINVAL);
	assert_int_equal(pv_keyring_format(ring, sizeof(ring), "osd.0", KEY), -EINVAL);
	assert_int_equal(pv_keyring_format(ring, sizeof(ring), ENT, "a\nkey = b"), -EINVAL);
	assert_int_equal(pv_keyring_format(ring, sizeof(ring), ENT, ""), -EINVAL);
	assert_int_equal(pv_keyring_format(ring, 20, ENT, KEY), -ENAMETOOLONG);
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", name);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void secret_files_must_be_owner_only_and_bounded(void **state)
{
	(void)state;
	char key[PV_CEPH_KEY_MAX], why[200], pid[32];
	snprintf(pid, sizeof(pid), "pvha-keyring-%d", (int)getpid());
	const char *p = write_file(pid, "[" ENT "]\n\tkey = " KEY "\n", 0600);
	assert_int_equal(pv_keyring_read(p, ENT, key, sizeof(key), why, sizeof(why)), 0);
	assert_string_equal(key, KEY);
	p = write_file(pid, "[" ENT "]\n\tkey = " KEY "\n", 0644);
	assert_int_equal(pv_keyring_read(p, ENT, key, sizeof(key), why, sizeof(why)), -EACCES);
	assert_non_null(strstr(why, "mode 644"));
	p = write_file(pid, "[client.other]\n\tkey = " KEY "\n", 0400);
	assert_int_equal(pv_keyring_read(p, ENT, key, sizeof(key), why, sizeof(why)), -ENOENT);
	assert_non_null(strstr(why, "no key for " ENT));
	char big[PV_KEYRING_MAX + 2];
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	p = write_file(pid, big, 0600);
	assert_int_equal(pv_keyring_read(p, ENT, key, sizeof(key), why, sizeof(why)), -EFBIG);
	unlink(p);
	assert_int_equal(pv_keyring_read(p, ENT, key, sizeof(key), why, sizeof(why)), -ENOENT);
	/* exactly cap bytes is fine; one more is not */
	uint8_t buf[8];
	size_t n;
	p = write_file(pid, "12345678", 0600);
	assert_int_equal(pv_secret_read(p, buf, sizeof(buf), &n, why, sizeof(why)), 0);
	assert_int_equal(n, 8);
	p = write_file(pid, "123456789", 0600);
	assert_int_equal(pv_secret_read(p, buf, sizeof(buf), &n, why, sizeof(why)), -EFBIG);
	unlink(p);
	/* a pipe, as pvhad hands it (/dev/fd/N) */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	const char *ring = "[" ENT "]\n\tkey = " KEY "\n";
	assert_int_equal(write(fds[1], ring, strlen(ring)), (ssize_t)strlen(ring));
	close(fds[1]);
	char dev[32];
	snprintf(dev, sizeof(dev), "/dev/fd/%d", fds[0]);
	assert_int_equal(pv_keyring_read(dev, ENT, key, sizeof(key), why, sizeof(why)), 0);
	assert_string_equal(key, KEY);
	close(fds[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_formatted_keyring_reads_back),
		cmocka_unit_test(the_key_of_the_named_section_is_found),
		cmocka_unit_test(bad_keyrings_are_refused),
		cmocka_unit_test(secret_files_must_be_owner_only_and_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
