/*
 * pvha-vmm's disk wiring: turns a --disk spec into a struct hv_disk of the
 * right backend (file here in hv-core; rados through libpvstore).
 */
#ifndef PVHA_VMM_DISK_H
#define PVHA_VMM_DISK_H

#include <stddef.h>

#include "pvhv/hv.h"

/* Opens the disk a spec names. Returns 0 and *out, or -errno with a one-line
 * reason in why (-EINVAL: the spec itself is wrong). */
int vmm_disk_open(const char *spec, struct hv_disk **out, char *why, size_t whylen);

#endif /* PVHA_VMM_DISK_H */
