/* libpv disk: whole-buffer transfers split into PV_DISK_IO_MAX pieces. */
#include "pv.h"

/* One loop for both directions: write selects pv_disk_write. */
static int transfer_all(uint64_t off, uint8_t *p, uint64_t len, int write)
{
	while (len) {
		uint64_t n = len > PV_DISK_IO_MAX ? PV_DISK_IO_MAX : len;
		int64_t rc = write ? pv_disk_write(off, p, n) : pv_disk_read(off, p, n);
		if (rc < 0)
			return (int)rc;
		if ((uint64_t)rc != n)
			return -PV_EIO;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

int pv_disk_read_all(uint64_t off, void *buf, uint64_t len)
{
	return transfer_all(off, buf, len, 0);
}

int pv_disk_write_all(uint64_t off, const void *buf, uint64_t len)
{
	/* pv_disk_write does not write through the pointer it is given */
	return transfer_all(off, (uint8_t *)(uintptr_t)buf, len, 1);
}
