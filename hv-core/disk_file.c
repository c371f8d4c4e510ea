/* The `file` disk backend: a raw image in a local regular file or a block
 * device, read and written with pread/pwrite. A disk is used by one thread at
 * a time (the machine's); nothing here keeps global state.
 *
 * Decisions:
 * - Regular files and block devices are accepted; anything else (directory,
 *   character device, FIFO, socket) is refused: a directory fails at open with
 *   -EISDIR, the rest with -EINVAL after fstat.
 * - A file created here gets mode 0600 (a guest's disk is the guest's data) and
 *   is made sparse with ftruncate; nothing is preallocated. It appears under
 *   its name already at its full size (made under a temporary name and
 *   linked), so two VMMs opening one new path at once agree on it.
 * - d->size is fixed at open. If the file is later shortened by someone else,
 *   reads past its new end return zeros (as a hole would) and writes extend it
 *   again, so the guest always sees a disk of d->size bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pvhv/hv.h"

#define SECTOR_SIZE 512u

struct disk_file {
	struct hv_disk d; /* first: ops receive &df->d */
	int fd;
};

static struct disk_file *to_df(struct hv_disk *d)
{
	return d->priv;
}

/* Guards every op: the hypercall layer checks guest ranges, but a backend
 * must not touch bytes outside the disk whoever calls it. */
static bool range_ok(const struct hv_disk *d, uint64_t off, size_t len)
{
	return off <= d->size && len <= d->size - off;
}

static int file_read(struct hv_disk *d, void *buf, uint64_t off, size_t len)
{
	struct disk_file *df = to_df(d);
	uint8_t *p = buf;

	if (!range_ok(d, off, len))
		return -EINVAL;
	while (len > 0) {
		ssize_t n = pread(df->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			/* The file ends before the disk does: the rest reads as a hole. */
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int file_write(struct hv_disk *d, const void *buf, uint64_t off, size_t len)
{
	struct disk_file *df = to_df(d);
	const uint8_t *p = buf;

	if (!range_ok(d, off, len))
		return -EINVAL;
	while (len > 0) {
		ssize_t n = pwrite(df->fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* no progress and no error: never loop forever */
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* fdatasync: the data and whatever metadata is needed to read it back (the
 * file size after an extending write); mtime need not be durable. */
static int file_flush(struct hv_disk *d)
{
	struct disk_file *df = to_df(d);

	while (fdatasync(df->fd) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static void file_close(struct hv_disk *d)
{
	struct disk_file *df = to_df(d);

	close(df->fd);
	free(df);
}

static const struct hv_disk_ops file_ops = {
	.name = "file",
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.close = file_close,
};

/* Makes path a file of size bytes, atomically: a file of the right size
 * appears under path, or nothing does. It is built under a temporary name
 * beside path and linked into place, so that a second process opening the
 * same path at the same moment (a migration target started with the same
 * `file:PATH,size=` as its source) never sees it empty and half made.
 * Returns the fd of the file now at path (*created: ours), or -errno. */
static int create_sized(const char *path, uint64_t size, bool *created)
{
	const int flags = O_RDWR | O_CLOEXEC | O_NOCTTY;
	char tmp[4200];
	static const char hex[] = "0123456789abcdef";
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long long r = (unsigned long long)getpid() << 32 ^ (unsigned long long)ts.tv_nsec ^
			       (unsigned long long)ts.tv_sec << 40;
	char sfx[17];
	for (int i = 0; i < 16; i++, r >>= 4)
		sfx[i] = hex[r & 15];
	sfx[16] = '\0';
	if (snprintf(tmp, sizeof(tmp), "%s.new-%s", path, sfx) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, flags | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return errno == EEXIST ? -EAGAIN : -errno; /* a stale name: try another */
	if (ftruncate(fd, (off_t)size) < 0) {
		int err = -errno;
		close(fd);
		unlink(tmp);
		return err;
	}
	int rc = link(tmp, path);
	int lerr = errno;
	unlink(tmp);
	close(fd);
	if (rc < 0)
		return -lerr;
	/* opened again under its real name (what /proc and lsof then show) */
	*created = true;
	fd = open(path, flags);
	return fd < 0 ? -errno : fd;
}

/* Opens path read-write; with create_size > 0, creates it with that size when
 * missing. *created tells whether this call made the file (so that a failure
 * can remove it). Returns an fd or -errno. */
static int open_or_create(const char *path, uint64_t create_size, bool *created)
{
	const int flags = O_RDWR | O_CLOEXEC | O_NOCTTY;

	*created = false;
	if (!create_size) {
		int fd = open(path, flags);
		return fd < 0 ? -errno : fd;
	}
	/* Another process may create or remove the file between the open and
	 * the create: retry. A dangling symlink fails both ways every time and
	 * ends as -ENOENT. */
	for (int tries = 0; tries < 8; tries++) {
		int fd = open(path, flags);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT)
			return -errno;
		fd = create_sized(path, create_size, created);
		if (fd >= 0)
			return fd;
		if (fd == -EEXIST || fd == -EAGAIN)
			continue; /* someone else made it: open theirs (or a new name) */
		if (fd != -EPERM && fd != -EOPNOTSUPP)
			return fd;
		/* no hard links here: make it in place (not atomic) */
		fd = open(path, flags | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			*created = true;
			if (ftruncate(fd, (off_t)create_size) < 0) {
				int err = -errno;
				close(fd);
				unlink(path);
				return err;
			}
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -ENOENT;
}

/* The size of an open regular file or block device, or -errno
 * (-EINVAL for any other kind of file). */
static int fd_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		*size = (uint64_t)st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size) < 0)
			return -errno;
		return 0;
	}
	return -EINVAL;
}

/* Opens path as a raw disk image (see hv.h). create_size must be a multiple of
 * 512 (-EINVAL). An existing image keeps its size and must hold at least
 * create_size bytes (-ENOSPC); a missing one without create_size is -ENOENT;
 * a directory -EISDIR; a file that is neither regular nor a block device
 * -EINVAL. On failure a file this call created is removed. Returns 0 or -errno. */
int hv_disk_file_open(const char *path, uint64_t create_size, struct hv_disk **out)
{
	struct disk_file *df;
	bool created;
	uint64_t size = 0;
	int fd, err;

	if (!path || !out || path[0] == '\0')
		return -EINVAL;
	if (create_size % SECTOR_SIZE != 0)
		return -EINVAL;
	if (create_size > (uint64_t)INT64_MAX)
		return -EFBIG;

	fd = open_or_create(path, create_size, &created);
	if (fd < 0)
		return fd;

	if (created) {
		size = create_size;
	} else {
		err = fd_size(fd, &size);
		if (err)
			goto err_close;
		if (size < create_size) {
			err = -ENOSPC;
			goto err_close;
		}
	}

	df = calloc(1, sizeof(*df));
	if (!df) {
		err = -ENOMEM;
		goto err_unlink;
	}
	df->fd = fd;
	df->d.ops = &file_ops;
	df->d.size = size;
	df->d.priv = df;
	*out = &df->d;
	return 0;

err_unlink:
	if (created)
		unlink(path);
err_close:
	close(fd);
	return err;
}

/* Closes a disk of any backend through its ops; NULL is a no-op. */
void hv_disk_close(struct hv_disk *d)
{
	if (d)
		d->ops->close(d);
}
