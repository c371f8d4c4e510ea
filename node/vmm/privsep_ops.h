/*
 * The VMM's privsep request table: what its privileged helper (privsep.h)
 * may be asked to do. One row per request; handlers run in the helper
 * (CAP_NET_ADMIN, its own seccomp filter) or, with the sandbox off, in the
 * VMM itself.
 */
#ifndef PVHA_PRIVSEP_OPS_H
#define PVHA_PRIVSEP_OPS_H

#include <stddef.h>

#include "privsep.h"

extern const struct privsep_op privsep_vmm_ops[];
extern const size_t privsep_vmm_nops;

#endif /* PVHA_PRIVSEP_OPS_H */
