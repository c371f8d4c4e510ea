/* See vmm_console.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pvproto/frame.h"
#include "vmm_console.h"

size_t vmm_console_admit(struct vmm_console_bucket *b, uint64_t now_ns, size_t len)
{
	if (!b->rate)
		return len;
	uint64_t cap = b->rate > VMM_CONSOLE_BURST_MIN ? b->rate : VMM_CONSOLE_BURST_MIN;
	if (!b->last_ns) {
		b->tokens = cap;
	} else if (now_ns > b->last_ns) {
		uint64_t dt = now_ns - b->last_ns;
		/* dt up to a second or so keeps this in range; more fills it */
		uint64_t add = dt >= 1000000000ull ? cap : dt * b->rate / 1000000000ull;
		b->tokens = b->tokens + add > cap ? cap : b->tokens + add;
	}
	if (!b->last_ns || now_ns > b->last_ns)
		b->last_ns = now_ns;
	size_t n = len < b->tokens ? len : (size_t)b->tokens;
	b->tokens -= n;
	return n;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Opens path for writing (append: flags) and checks it is a regular file.
 * Returns the fd or -errno (-EINVAL: not a regular file). */
static int open_regular(const char *path, int flags, uint64_t *size)
{
	struct stat st;
	int fd = open(path, flags | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int err = S_ISREG(st.st_mode) ? -errno : -EINVAL;
		close(fd);
		return err;
	}
	if (size)
		*size = (uint64_t)st.st_size;
	return fd;
}

int vmm_console_open(struct vmm_console *c, const struct vmm_console_opts *o, char *why, size_t wl)
{
	memset(c, 0, sizeof(*c));
	c->max_bytes = o->max_bytes;
	c->bucket.rate = o->rate;
	c->fd = STDOUT_FILENO;
	c->old_fd = -1;
	if (!o->path)
		return 0;
	if (strlen(o->path) >= sizeof(c->path)) {
		snprintf(why, wl, "path too long");
		return -ENAMETOOLONG;
	}
	snprintf(c->path, sizeof(c->path), "%s", o->path);
	snprintf(c->old, sizeof(c->old), "%s.1", o->path);
	int fd = open_regular(c->path, O_RDWR | O_APPEND, &c->size);
	if (fd < 0) {
		snprintf(why, wl, "%s", fd == -EINVAL ? "not a regular file" : strerror(-fd));
		return fd;
	}
	c->fd = fd;
	if (c->max_bytes) {
		fd = open_regular(c->old, O_RDWR, NULL);
		if (fd < 0) {
			snprintf(why, wl, "%s: %s", c->old, fd == -EINVAL ? "not a regular file" : strerror(-fd));
			close(c->fd);
			c->fd = -1;
			return fd;
		}
		c->old_fd = fd;
	}
	return 0;
}

/* The file would pass max_bytes with n more: its content replaces PATH.1's
 * and PATH starts again. O(size) in copying. On failure the file goes on
 * (and grows, bounded by the rate still). */
static void rotate(struct vmm_console *c, size_t n)
{
	char buf[64 * 1024];
	if (c->old_fd < 0 || c->size == 0 || c->size + n <= c->max_bytes)
		return;
	if (ftruncate(c->old_fd, 0) < 0)
		return;
	for (off_t off = 0;;) {
		ssize_t r = pread(c->fd, buf, sizeof(buf), off);
		if (r <= 0)
			break;
		if (pwrite(c->old_fd, buf, (size_t)r, off) != r)
			break;
		off += r;
	}
	if (ftruncate(c->fd, 0) == 0)
		c->size = 0;
}

static void put(struct vmm_console *c, const char *buf, size_t len)
{
	rotate(c, len);
	if (pvproto_write_all(c->fd, buf, len) == 0)
		c->size += len;
}

void vmm_console_write(void *ctx, const char *buf, size_t len)
{
	struct vmm_console *c = ctx;
	size_t n = vmm_console_admit(&c->bucket, mono_ns(), len);
	if (n && c->dropped_unsaid) {
		char note[160];
		int k = snprintf(note, sizeof(note),
				 "\n[pvha-vmm: %llu bytes of console output dropped: over %llu bytes/s]\n",
				 (unsigned long long)c->dropped_unsaid, (unsigned long long)c->bucket.rate);
		put(c, note, (size_t)k);
		c->dropped_unsaid = 0;
	}
	if (n)
		put(c, buf, n);
	c->dropped += len - n;
	c->dropped_unsaid += len - n;
}

uint64_t vmm_console_dropped(const struct vmm_console *c)
{
	return c->dropped;
}

void vmm_console_close(struct vmm_console *c)
{
	if (c->path[0] && c->fd >= 0)
		close(c->fd);
	if (c->old_fd >= 0)
		close(c->old_fd);
	c->fd = -1;
	c->old_fd = -1;
}
