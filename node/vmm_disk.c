/* See vmm_disk.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "parse.h"
#include "vmm_disk.h"

int vmm_disk_open(const char *spec, struct hv_disk **out, char *why, size_t whylen)
{
	struct pv_disk_spec ds;
	int err = pv_parse_disk_spec(spec, &ds);
	if (err) {
		snprintf(why, whylen, "want file:PATH[,size=SIZE] or rados:POOL/NAME[,size=SIZE]");
		return -EINVAL;
	}
	if (ds.kind == PV_DISK_RADOS) {
		snprintf(why, whylen, "rados disks are not built into this pvha-vmm yet");
		return -ENOTSUP;
	}
	if (ds.size % 512) {
		snprintf(why, whylen, "size must be a multiple of 512 bytes");
		return -EINVAL;
	}
	err = hv_disk_file_open(ds.path, ds.size, out);
	if (err == -ENOSPC)
		snprintf(why, whylen, "%s is smaller than size=%llu", ds.path, (unsigned long long)ds.size);
	else if (err == -ENOENT && !ds.size)
		snprintf(why, whylen, "%s does not exist (add ,size=SIZE to create it)", ds.path);
	else if (err)
		snprintf(why, whylen, "%s: %s", ds.path, strerror(-err));
	return err;
}
