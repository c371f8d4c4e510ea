/* See fuzz.h. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "pvproto/frame.h"

int fuzz_memfd(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);
	if (fd < 0 || pvproto_write_all(fd, data, size) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		perror("fuzz: memfd");
		abort();
	}
	return fd;
}
