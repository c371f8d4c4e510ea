/* The `file` disk backend: sparse creation, zeros where nothing was written,
 * exact round trips at odd offsets, persistence, and each bad open or bad
 * range refused with its -errno. Every test works in its own temp directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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

#include "pvhv/hv.h"

#define MiB (1024ull * 1024)

struct fixture {
	char dir[PATH_MAX];
	char path[PATH_MAX + 16]; /* dir/disk.img, not created */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	const char *tmp = getenv("TMPDIR");

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/test_disk_file.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(f->dir);

	if (d) {
		struct dirent *e;
		char p[PATH_MAX * 2];
		while ((e = readdir(d))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
			if (unlink(p) < 0)
				rmdir(p);
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void fill_pattern(uint8_t *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)((i * 131u + seed * 7u + (i >> 8)) & 0xff);
}

static bool all_zero(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static void write_file(const char *path, size_t len, uint8_t byte)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	uint8_t *buf = malloc(len ? len : 1);
	assert_non_null(buf);
	memset(buf, byte, len);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	free(buf);
	close(fd);
}

static void create_with_size_is_sparse(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;
	struct stat st;

	assert_int_equal(hv_disk_file_open(f->path, 64 * MiB, &d), 0);
	assert_non_null(d);
	assert_string_equal(d->ops->name, "file");
	assert_int_equal(d->size, 64 * MiB);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 64 * MiB);
	assert_true((uint64_t)st.st_blocks * 512 < 1 * MiB); /* nothing allocated */
	assert_int_equal(st.st_mode & 0077, 0); /* the guest's data: owner only */
	hv_disk_close(d);
}

static void unwritten_area_reads_as_zeros(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	uint8_t buf[8192];

	assert_int_equal(hv_disk_file_open(f->path, 4 * MiB, &d), 0);
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(d->ops->read(d, buf, 1 * MiB + 3, sizeof(buf)), 0);
	assert_true(all_zero(buf, sizeof(buf)));
	/* The last bytes of the disk. */
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(d->ops->read(d, buf, 4 * MiB - sizeof(buf), sizeof(buf)), 0);
	assert_true(all_zero(buf, sizeof(buf)));
	hv_disk_close(d);
}

static void read_past_a_shortened_file_returns_zeros(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	uint8_t buf[4096];

	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), 0);
	memset(buf, 0x5a, sizeof(buf));
	assert_int_equal(d->ops->write(d, buf, 0, sizeof(buf)), 0);
	/* Someone shortens the file behind the disk's back: its size stays. */
	assert_int_equal(truncate(f->path, 100), 0);
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(d->ops->read(d, buf, 0, sizeof(buf)), 0);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(buf[i], 0x5a);
	assert_true(all_zero(buf + 100, sizeof(buf) - 100));
	memset(buf, 0xaa, sizeof(buf));
	assert_int_equal(d->ops->read(d, buf, 512 * 1024, sizeof(buf)), 0);
	assert_true(all_zero(buf, sizeof(buf)));
	hv_disk_close(d);
}

static void round_trip_at_odd_offsets_and_lengths(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	static const struct { uint64_t off; size_t len; } cases[] = {
		{ 0, 1 }, { 1, 1 }, { 511, 2 }, { 12345, 1000 }, { 4095, 4097 },
		{ 65537, 131071 }, { 3 * MiB + 7, 513 }, { 4 * MiB - 1, 1 }, { 2 * MiB, 1 * MiB },
	};

	assert_int_equal(hv_disk_file_open(f->path, 4 * MiB, &d), 0);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t len = cases[c].len;
		uint64_t off = cases[c].off;
		uint8_t *w = malloc(len), *r = malloc(len + 2);
		assert_non_null(w);
		assert_non_null(r);
		fill_pattern(w, len, (unsigned)c + 1);
		assert_int_equal(d->ops->write(d, w, off, len), 0);
		memset(r, 0xaa, len + 2);
		assert_int_equal(d->ops->read(d, r + 1, off, len), 0);
		assert_memory_equal(w, r + 1, len);
		/* The read touched exactly len bytes of the buffer. */
		assert_int_equal(r[0], 0xaa);
		assert_int_equal(r[len + 1], 0xaa);
		free(w);
		free(r);
	}
	/* The bytes around a write are untouched. */
	uint8_t around[3];
	assert_int_equal(d->ops->read(d, around, 12344, 1), 0);
	assert_int_equal(d->ops->read(d, around + 1, 12345 + 1000, 1), 0);
	assert_int_equal(around[0], 0);
	assert_int_equal(around[1], 0);
	/* A zero-length transfer is allowed, even at the very end. */
	assert_int_equal(d->ops->read(d, around, 4 * MiB, 0), 0);
	assert_int_equal(d->ops->write(d, around, 4 * MiB, 0), 0);
	hv_disk_close(d);
}

static void data_persists_after_close_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	uint8_t w[3000], r[3000];

	fill_pattern(w, sizeof(w), 42);
	assert_int_equal(hv_disk_file_open(f->path, 2 * MiB, &d), 0);
	assert_int_equal(d->ops->write(d, w, 777777, sizeof(w)), 0);
	assert_int_equal(d->ops->flush(d), 0);
	hv_disk_close(d);

	/* Without create_size: the existing file and its size. */
	assert_int_equal(hv_disk_file_open(f->path, 0, &d), 0);
	assert_int_equal(d->size, 2 * MiB);
	assert_int_equal(d->ops->read(d, r, 777777, sizeof(r)), 0);
	assert_memory_equal(w, r, sizeof(w));
	hv_disk_close(d);

	/* With a create_size the file already satisfies: neither truncated nor grown. */
	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), 0);
	assert_int_equal(d->size, 2 * MiB);
	memset(r, 0, sizeof(r));
	assert_int_equal(d->ops->read(d, r, 777777, sizeof(r)), 0);
	assert_memory_equal(w, r, sizeof(w));
	hv_disk_close(d);
}

static void existing_smaller_file_is_enospc(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;
	struct stat st;

	write_file(f->path, 4096, 0x11);
	assert_int_equal(hv_disk_file_open(f->path, 8192, &d), -ENOSPC);
	assert_null(d);
	/* The file is left as it was. */
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 4096);
	/* Exactly its size is fine. */
	assert_int_equal(hv_disk_file_open(f->path, 4096, &d), 0);
	assert_int_equal(d->size, 4096);
	hv_disk_close(d);
}

static void missing_file_without_size_is_enoent(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;

	assert_int_equal(hv_disk_file_open(f->path, 0, &d), -ENOENT);
	assert_null(d);
	assert_int_equal(access(f->path, F_OK), -1); /* not created */
}

static void dangling_symlink_is_enoent(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;
	char target[PATH_MAX + 16];

	snprintf(target, sizeof(target), "%s/nowhere", f->dir);
	assert_int_equal(symlink(target, f->path), 0);
	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), -ENOENT);
	assert_null(d);
	assert_int_equal(access(target, F_OK), -1);
}

static void directory_is_eisdir(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;

	assert_int_equal(hv_disk_file_open(f->dir, 0, &d), -EISDIR);
	assert_int_equal(hv_disk_file_open(f->dir, 1 * MiB, &d), -EISDIR);
	assert_null(d);
}

static void character_device_is_einval(void **state)
{
	(void)state;
	struct hv_disk *d = NULL;

	if (access("/dev/null", R_OK | W_OK) < 0) {
		skip();
		return;
	}
	assert_int_equal(hv_disk_file_open("/dev/null", 0, &d), -EINVAL);
	assert_null(d);
}

static void fifo_is_einval(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;

	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(hv_disk_file_open(f->path, 0, &d), -EINVAL);
	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), -EINVAL);
	assert_null(d);
}

static void size_not_multiple_of_512_is_einval(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;

	assert_int_equal(hv_disk_file_open(f->path, 1000, &d), -EINVAL);
	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB + 1, &d), -EINVAL);
	assert_int_equal(hv_disk_file_open(f->path, 511, &d), -EINVAL);
	assert_null(d);
	assert_int_equal(access(f->path, F_OK), -1); /* nothing created */
}

static void bad_arguments_are_einval(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d = NULL;

	assert_int_equal(hv_disk_file_open(NULL, 1 * MiB, &d), -EINVAL);
	assert_int_equal(hv_disk_file_open("", 1 * MiB, &d), -EINVAL);
	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, NULL), -EINVAL);
	assert_null(d);
	assert_int_equal(access(f->path, F_OK), -1);
}

static void flush_succeeds(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	uint8_t buf[512];

	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), 0);
	assert_int_equal(d->ops->flush(d), 0); /* nothing written yet */
	memset(buf, 0x77, sizeof(buf));
	assert_int_equal(d->ops->write(d, buf, 512, sizeof(buf)), 0);
	assert_int_equal(d->ops->flush(d), 0);
	assert_int_equal(d->ops->flush(d), 0);
	hv_disk_close(d);
}

static void ranges_beyond_size_are_einval(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	uint8_t buf[1024];

	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), 0);
	memset(buf, 0xaa, sizeof(buf));
	/* Ends one byte past the disk. */
	assert_int_equal(d->ops->read(d, buf, 1 * MiB - 1023, 1024), -EINVAL);
	assert_int_equal(d->ops->write(d, buf, 1 * MiB - 1023, 1024), -EINVAL);
	/* Starts past the disk. */
	assert_int_equal(d->ops->read(d, buf, 1 * MiB + 1, 0), -EINVAL);
	assert_int_equal(d->ops->read(d, buf, 2 * MiB, 1), -EINVAL);
	/* off + len wraps around 2^64. */
	assert_int_equal(d->ops->read(d, buf, UINT64_MAX, 2), -EINVAL);
	assert_int_equal(d->ops->write(d, buf, UINT64_MAX - 10, 1024), -EINVAL);
	/* A refused write changed nothing and the file did not grow. */
	struct stat st;
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, 1 * MiB);
	assert_int_equal(d->ops->read(d, buf, 1 * MiB - 1024, 1024), 0);
	assert_true(all_zero(buf, sizeof(buf)));
	hv_disk_close(d);
}

/* The fd must not leak into processes the VMM spawns. */
static void fd_is_close_on_exec(void **state)
{
	struct fixture *f = *state;
	struct hv_disk *d;
	char want[PATH_MAX], link[300], got[PATH_MAX];
	int found = 0;

	assert_int_equal(hv_disk_file_open(f->path, 1 * MiB, &d), 0);
	assert_non_null(realpath(f->path, want));
	DIR *dir = opendir("/proc/self/fd");
	if (!dir) {
		hv_disk_close(d);
		skip();
		return;
	}
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, got, sizeof(got) - 1);
		if (n < 0)
			continue;
		got[n] = '\0';
		if (strcmp(got, want) != 0)
			continue;
		int flags = fcntl(atoi(e->d_name), F_GETFD);
		assert_true(flags >= 0);
		assert_true(flags & FD_CLOEXEC);
		found++;
	}
	closedir(dir);
	assert_int_equal(found, 1);
	hv_disk_close(d);
}

/* Processes opening one new path with size= at the same moment all get the
 * disk at its full size: the file never appears empty under its name (a
 * migration target used to start with the source's `file:PATH,size=` and
 * find the source's half-made file "smaller than size"). */
static void concurrent_creators_all_see_the_full_size(void **state)
{
	(void)state;
	char path[64];
	for (int round = 0; round < 300; round++) {
		snprintf(path, sizeof(path), "/tmp/pvha-race-%d-%d.img", (int)getpid(), round);
		unlink(path);
		int go[2];
		assert_int_equal(pipe(go), 0);
		pid_t kids[6];
		for (int k = 0; k < 6; k++) {
			kids[k] = fork();
			assert_true(kids[k] >= 0);
			if (kids[k] == 0) {
				char c;
				close(go[1]);
				if (read(go[0], &c, 1) < 0)
					_exit(3);
				struct hv_disk *d;
				int err = hv_disk_file_open(path, 1 << 20, &d);
				if (err)
					_exit(1);
				int ok = d->size == (1u << 20);
				hv_disk_close(d);
				_exit(ok ? 0 : 2);
			}
		}
		close(go[0]);
		close(go[1]); /* everyone reads EOF at once */
		for (int k = 0; k < 6; k++) {
			int st;
			assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
			assert_true(WIFEXITED(st));
			assert_int_equal(WEXITSTATUS(st), 0);
		}
		struct stat sb;
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_size, 1 << 20);
		unlink(path);
	}
	/* no temporary names left behind */
	DIR *dir = opendir("/tmp");
	struct dirent *e;
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "pvha-race-%d-", (int)getpid());
	while ((e = readdir(dir)))
		assert_null(strncmp(e->d_name, prefix, strlen(prefix)) == 0 ? e->d_name : NULL);
	closedir(dir);
}

static void close_null_is_a_no_op(void **state)
{
	(void)state;
	hv_disk_close(NULL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(create_with_size_is_sparse),
		T(unwritten_area_reads_as_zeros),
		T(read_past_a_shortened_file_returns_zeros),
		T(round_trip_at_odd_offsets_and_lengths),
		T(data_persists_after_close_and_reopen),
		T(existing_smaller_file_is_enospc),
		T(missing_file_without_size_is_enoent),
		T(dangling_symlink_is_enoent),
		T(directory_is_eisdir),
		T(character_device_is_einval),
		T(fifo_is_einval),
		T(size_not_multiple_of_512_is_einval),
		T(bad_arguments_are_einval),
		T(flush_succeeds),
		T(ranges_beyond_size_are_einval),
		T(fd_is_close_on_exec),
		T(concurrent_creators_all_see_the_full_size),
		T(close_null_is_a_no_op),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
