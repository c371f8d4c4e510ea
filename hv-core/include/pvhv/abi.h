/*
 * pvha paravirtual ABI, versions 1 and 2: the contract between a guest and any pvha
 * hypervisor backend. This header is shared by the host (libpvhv) and by guests
 * (hv-core/guest), so it must stay freestanding: <stdint.h> only, no host types.
 * hv-core/ABI.md is the prose version; keep the two in step.
 */
#ifndef PVHV_ABI_H
#define PVHV_ABI_H

#include <stdint.h>

/* The newest version; a host serves every version from 1 to this. A guest
 * image names the version it was written for in a PVHA note (below); an image
 * without one is a version 1 guest. */
#define PV_ABI_VERSION 2u
#define PV_ABI_VERSION_MIN 1u

/* The ELF note that names a guest's ABI version: a PT_NOTE whose note has the
 * name "PVHA", type PV_NOTE_ABI and a 4-byte little-endian version. */
#define PV_NOTE_NAME "PVHA"
#define PV_NOTE_ABI 1u

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
	/* ABI v2: TCP stream sockets, see ABI.md "Sockets". Handles are small
	 * integers (0..PV_NET_HANDLES_MAX-1); a v1 guest calling these is
	 * stopped as for any unknown number. */
	PV_HC_NET_LISTEN = 11,   /* (u64 port, u64 backlog) -> handle; port 0 = any free one */
	PV_HC_NET_ACCEPT = 12,   /* (handle) -> new handle, or -EAGAIN */
	PV_HC_NET_CONNECT = 13,  /* (u64 ipv4 host order, u64 port) -> handle; completes later */
	PV_HC_NET_SEND = 14,     /* (handle, gpa buf, u64 len) -> bytes sent, or -EAGAIN */
	PV_HC_NET_RECV = 15,     /* (handle, gpa buf, u64 len) -> bytes, 0 = peer closed, or -EAGAIN */
	PV_HC_NET_SHUTDOWN = 16, /* (handle, u64 how) -> 0; how = PV_SHUT_* */
	PV_HC_NET_CLOSE = 17,    /* (handle) -> 0 */
	PV_HC_NET_POLL = 18,     /* (gpa fds, u64 n, u64 deadline mono ns) -> ready count, 0 = deadline, -EINTR = call again */
	PV_HC_NET_ADDR = 19,     /* (handle or -1, u64 which) -> IPv4 << 16 | port, see ABI.md */
	PV_HC_COUNT
};

#define PV_CONSOLE_MAX (64u * 1024u)  /* bytes per console write */
#define PV_DISK_IO_MAX (4u * 1024u * 1024u) /* bytes per disk read or write: one RADOS object */

/* Errors returned in rax, negated (Linux values, so a host -errno passes through). */
#define PV_EINTR 4
#define PV_EIO 5
#define PV_EBADF 9
#define PV_EAGAIN 11
#define PV_ENOMEM 12
#define PV_EACCES 13
#define PV_ENODEV 19
#define PV_EINVAL 22
#define PV_EMFILE 24
#define PV_ENOSPC 28
#define PV_EROFS 30
#define PV_EPIPE 32
#define PV_EOPNOTSUPP 95
#define PV_EADDRINUSE 98
#define PV_EADDRNOTAVAIL 99
#define PV_ENETDOWN 100
#define PV_ENETUNREACH 101
#define PV_ECONNABORTED 103
#define PV_ECONNRESET 104
#define PV_ENOBUFS 105
#define PV_ENOTCONN 107
#define PV_ETIMEDOUT 110
#define PV_ECONNREFUSED 111
#define PV_EHOSTUNREACH 113
#define PV_EINPROGRESS 115

/* ---- ABI v2 sockets ---------------------------------------------------- */

#define PV_NET_HANDLES_MAX 256u   /* open handles per guest, listeners included */
#define PV_NET_LISTEN_MAX 8u      /* listening handles per guest */
#define PV_NET_BACKLOG_MAX 64u    /* a larger listen backlog is lowered to this */
#define PV_NET_IO_MAX (1024u * 1024u) /* bytes per send or recv call */
#define PV_NET_POLL_MAX PV_NET_HANDLES_MAX /* entries per poll call */
#define PV_NET_SOCKBUF (64u * 1024u) /* host socket buffer asked per direction */

/* shutdown's how */
#define PV_SHUT_RD 0u
#define PV_SHUT_WR 1u
#define PV_SHUT_RDWR 2u

/* poll events (the same bits as Linux poll(2)) */
#define PV_POLLIN 0x001u
#define PV_POLLOUT 0x004u
#define PV_POLLERR 0x008u
#define PV_POLLHUP 0x010u

/* net_addr's which */
#define PV_NET_ADDR_LOCAL 0u /* the handle's local address, or the guest's (handle -1, port 0) */
#define PV_NET_ADDR_PEER 1u  /* the peer of a connected handle */

/* One entry of a poll call's array, 8 bytes, in guest RAM. The host writes
 * revents of every entry; a negative handle is skipped (revents 0). */
struct pv_pollfd {
	int32_t handle;
	uint16_t events;  /* PV_POLLIN | PV_POLLOUT; ERR and HUP are always reported */
	uint16_t revents; /* written by the host */
};

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

/* boot info flags (ABI v2) */
#define PV_BOOT_F_NET 1u /* the guest has a network address: the net_* calls work */

struct pv_boot_info {
	uint64_t magic;          /* PV_BOOT_MAGIC */
	uint32_t abi_version;    /* the version the image asked for (1 without a note) */
	uint32_t flags;          /* PV_BOOT_F_* */
	uint64_t mem_size;       /* bytes of RAM, from gpa 0 */
	uint64_t disk_size;      /* bytes of disk, 0 when the guest has none */
	uint8_t guest_id[16];    /* the guest's UUID, binary */
	uint64_t image_end;      /* first page-aligned gpa after the loaded image */
	uint64_t stack_top;      /* initial rsp */
	char cmdline[PV_CMDLINE_MAX]; /* NUL-terminated */
};

#endif /* PVHV_ABI_H */
