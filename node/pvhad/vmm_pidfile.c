/* pvhad's records of the VMMs it spawned (vmm_pidfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_put.h"
#include "vmm_pidfile.h"

int vmm_proc_starttime(pid_t pid, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	int err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	buf[n] = '\0';
	/* "pid (comm) state ppid ...": comm may hold spaces and parentheses,
	 * so the fields are counted from the last ')' (field 3 follows it) */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EINVAL;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EINVAL;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EINVAL;
	*start = v;
	return 0;
}

int vmm_pidfile_write(const char *dir, const char *uuid_str, pid_t pid)
{
	unsigned long long start;
	int err = vmm_proc_starttime(pid, &start);
	if (err)
		return err;
	char path[700], line[64];
	snprintf(path, sizeof(path), "%s/%s.pid", dir, uuid_str);
	int len = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, start);
	return pv_file_put(path, line, (size_t)len, 0600, false); /* under /run: gone with the boot */
}

int vmm_pidfile_read(const char *path, pid_t *pid, unsigned long long *start)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EINVAL;
	buf[n] = '\0';
	long long p;
	unsigned long long s;
	char nl;
	if (sscanf(buf, "%lld %llu%c", &p, &s, &nl) != 3 || nl != '\n' || p <= 1 || p > INT32_MAX)
		return -EINVAL;
	*pid = (pid_t)p;
	*start = s;
	return 0;
}

bool vmm_pidfile_alive(pid_t pid, unsigned long long start)
{
	unsigned long long now;
	return vmm_proc_starttime(pid, &now) == 0 && now == start;
}
