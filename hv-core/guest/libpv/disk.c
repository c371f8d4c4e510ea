/* libpv disk: whole-buffer transfers split into PV_DISK_IO_MAX pieces. */
#include "pv.h"

int pv_disk_read_all(uint64_t off, void *buf, uint64_t len)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t n = len > PV_DISK_IO_MAX ? PV_DISK_IO_MAX : len;
		int64_t rc = pv_disk_read(off, p, n);
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

int pv_disk_write_all(uint64_t off, const void *buf, uint64_t len)
{
	const uint8_t *p = buf;

	while (len) {
		uint64_t n = len > PV_DISK_IO_MAX ? PV_DISK_IO_MAX : len;
		int64_t rc = pv_disk_write(off, p, n);
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
