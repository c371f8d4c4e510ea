/*
 * pvha paravirtual ABI, version 1: the contract between a guest and any pvha
 * hypervisor backend. This header is shared by the host (libpvhv) and by guests
 * (hv-core/guest), so it must stay freestanding: <stdint.h> only, no host types.
 * hv-core/ABI.md is the prose version; keep the two in step.
 */
#ifndef PVHV_ABI_H
#define PVHV_ABI_H

#include <stdint.h>

#define PV_ABI_VERSION 1u

/* Hypercall: `out %eax, %dx` with dx = PV_HC_PORT, number in rax, arguments in
 * rdi, rsi, r10, r8, result in rax (>= 0, or a negative PV_E* value). Every
 * hypercall `out` must be followed by `jmp 1f; 1:` so that the hypercall ends a
 * translation block (the software CPU relies on it to stop cleanly). */
#define PV_HC_PORT 0x0500u

enum pv_hypercall {
	PV_HC_ABI_VERSION = 0,   /* () -> PV_ABI_VERSION */
	PV_HC_CONSOLE_WRITE = 1, /* (gpa buf, u64 len) -> len; len <= PV_CONSOLE_MAX */
	PV_HC_CLOCK_MONO = 2,    /* () -> guest monotonic ns since boot (stops while paused) */
	PV_HC_CLOCK_WALL = 3,    /* () -> host wall clock, ns since the Unix epoch */
	PV_HC_SLEEP_UNTIL = 4,   /* (u64 mono_ns) -> 0 once the monotonic clock reached it */
	PV_HC_YIELD = 5,         /* () -> 0; gives the host a chance to run */
	PV_HC_DISK_READ = 6,     /* (u64 offset, gpa buf, u64 len) -> len */
	PV_HC_DISK_WRITE = 7,    /* (u64 offset, gpa buf, u64 len) -> len */
	PV_HC_DISK_FLUSH = 8,    /* () -> 0 once every earlier write is durable */
	PV_HC_HEARTBEAT = 9,     /* (u64 seq) -> 0; guest liveness for the supervisor */
	PV_HC_EXIT = 10,         /* (u64 code) -> does not return; code 0..255 */
	PV_HC_COUNT
};

#define PV_CONSOLE_MAX (64u * 1024u)  /* bytes per console write */
#define PV_DISK_IO_MAX (4u * 1024u * 1024u) /* bytes per disk read or write: one RADOS object */

/* Errors returned in rax, negated (Linux values, so a host -errno passes through). */
#define PV_EIO 5
#define PV_ENODEV 19
#define PV_EINVAL 22
#define PV_ENOSPC 28
#define PV_EROFS 30

/* Guest-physical memory map. RAM is flat from 0 to mem_size. */
#define PV_PAGE_SIZE 4096u
#define PV_BOOT_INFO_GPA 0x1000u   /* struct pv_boot_info, rdi points here */
#define PV_HOST_AREA_GPA 0x2000u   /* reserved for the host (page tables, GDT) */
#define PV_HOST_AREA_END 0x10000u
#define PV_IMAGE_MIN_GPA 0x100000u /* ELF segments must lie at or above this */
#define PV_MEM_MIN (2u * 1024u * 1024u)
#define PV_MEM_MAX (4ull * 1024u * 1024u * 1024u)
/* Whether bytes is a valid guest memory size: whole MiB from PV_MEM_MIN to
 * PV_MEM_MAX (the one place this rule is written for the hypervisor side). */
#define PV_MEM_SIZE_OK(bytes) \
	((bytes) >= PV_MEM_MIN && (bytes) <= PV_MEM_MAX && (bytes) % (1024u * 1024u) == 0)

#define PV_BOOT_MAGIC 0x544f4f4241485650ull /* "PVHABOOT" little-endian */
#define PV_CMDLINE_MAX 1024u

struct pv_boot_info {
	uint64_t magic;          /* PV_BOOT_MAGIC */
	uint32_t abi_version;    /* PV_ABI_VERSION */
	uint32_t flags;          /* none defined: 0 */
	uint64_t mem_size;       /* bytes of RAM, from gpa 0 */
	uint64_t disk_size;      /* bytes of disk, 0 when the guest has none */
	uint8_t guest_id[16];    /* the guest's UUID, binary */
	uint64_t image_end;      /* first page-aligned gpa after the loaded image */
	uint64_t stack_top;      /* initial rsp */
	char cmdline[PV_CMDLINE_MAX]; /* NUL-terminated */
};

#endif /* PVHV_ABI_H */
