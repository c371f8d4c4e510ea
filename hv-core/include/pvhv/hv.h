/*
 * libpvhv: the paravirtual hypervisor core. One struct hv_machine is one guest:
 * its RAM, one vCPU on a backend (tcg = Unicorn, kvm = /dev/kvm), the paravirtual
 * devices of ABI v1 (console, clocks, disk, heartbeat), the sockets of ABI v2
 * and its saved-state stream.
 *
 * Who calls it: pvha-vmm (one machine per process) and the tests. The library
 * logs nothing and never exits the process: failures return -errno, and a guest
 * that misbehaves ends as a stopped machine with a reason (hv_machine_stop_info).
 *
 * Threading: a machine is driven by one thread at a time. The only calls that
 * may come from another thread are hv_machine_kick() and the dirty-bitmap
 * readers documented below.
 */
#ifndef PVHV_HV_H
#define PVHV_HV_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pvhv/abi.h"

/* ---- disks ------------------------------------------------------------ */

struct hv_disk;

/* A disk backend. Every call returns 0 or -errno. -ESHUTDOWN means this host
 * was fenced from the disk's storage: the machine stops the guest ("fenced"). */
struct hv_disk_ops {
	const char *name;
	int (*read)(struct hv_disk *d, void *buf, uint64_t off, size_t len);
	int (*write)(struct hv_disk *d, const void *buf, uint64_t off, size_t len);
	int (*flush)(struct hv_disk *d); /* returns once every earlier write is durable */
	void (*close)(struct hv_disk *d); /* frees d itself */
};

struct hv_disk {
	const struct hv_disk_ops *ops;
	uint64_t size; /* bytes */
	void *priv;
};

/* Opens PATH as a raw disk image. With create_size > 0 a missing file is
 * created sparse with that size (an existing one keeps its size, which must be
 * at least create_size or -ENOSPC). Returns 0 or -errno. */
int hv_disk_file_open(const char *path, uint64_t create_size, struct hv_disk **out);

/* Closes a disk of any backend (NULL is allowed). */
void hv_disk_close(struct hv_disk *d);

/* ---- network -------------------------------------------------------------
 * ABI v2 sockets. The common part (net.c) owns the guest's handle table, the
 * limits of abi.h and the argument checks; a net backend only makes and moves
 * host sockets. Contract of a backend: every socket it returns is a host file
 * descriptor on which poll(2) reports readiness as for a non-blocking TCP
 * socket, and every call is non-blocking. Calls return >= 0 or -errno (Linux
 * values; the common part passes the ones ABI.md lists to the guest and turns
 * any other into -EIO). */

struct hv_net;

struct hv_net_ops {
	const char *name;
	/* A listening socket on the guest's address and port (0: any). */
	int (*listen)(struct hv_net *n, uint16_t port, unsigned backlog);
	/* A connection taken from a listener, or -EAGAIN. */
	int (*accept)(struct hv_net *n, int lfd);
	/* A connection being made from the guest's address (in progress). */
	int (*connect)(struct hv_net *n, uint32_t ipv4, uint16_t port);
	ssize_t (*send)(struct hv_net *n, int fd, const void *buf, size_t len);
	ssize_t (*recv)(struct hv_net *n, int fd, void *buf, size_t len);
	int (*shutdown)(struct hv_net *n, int fd, int how);
	/* The local (peer false) or remote address of a socket, host order. */
	int (*addr)(struct hv_net *n, int fd, bool peer, uint32_t *ipv4, uint16_t *port);
	void (*close)(struct hv_net *n, int fd);
	void (*destroy)(struct hv_net *n); /* frees the backend's own state */
};

/* Wraps a backend: ipv4 is the guest's address (host order), priv the
 * backend's state (hv_net_priv). Returns 0 or -ENOMEM. */
int hv_net_create(const struct hv_net_ops *ops, void *priv, uint32_t ipv4, struct hv_net **out);
void *hv_net_priv(const struct hv_net *n);
uint32_t hv_net_address(const struct hv_net *n);

/* The host-socket backend (net_host.c): real TCP sockets of this process,
 * bound to the IPv4 address given in dotted text (it must be configured on
 * this host; loopback addresses are fine). Returns 0, -EINVAL (not an IPv4
 * address) or -ENOMEM. */
int hv_net_host_open(const char *ipv4, struct hv_net **out);

/* Closes every socket: an open handle stays allocated and answers err (a
 * negative errno, e.g. -ECONNRESET) until the guest closes it. Used when the
 * guest leaves this host. */
void hv_net_reset(struct hv_net *n, int err);

/* The guest's connections and their host sockets, for a live migration
 * that moves them (docs/migration.md "Connections"): fills handles[] and
 * fds[] (PV_NET_HANDLES_MAX entries each) and returns how many. The
 * sockets stay the handles'; O(PV_NET_HANDLES_MAX). NULL n: 0. */
unsigned hv_net_connections(const struct hv_net *n, unsigned *handles, int *fds);

/* Whether handle is a connection that a restore reset (a migration target
 * may give it back its connection with hv_net_adopt). */
bool hv_net_adoptable(const struct hv_net *n, unsigned handle);

/* Gives such a handle a connected socket of the backend's kind (built by
 * the migration from the source's), which n owns from then on. Returns 0,
 * or -EBADF (not an adoptable handle; fd is not taken). */
int hv_net_adopt(struct hv_net *n, unsigned handle, int fd);

/* Open handles and listeners, for status and tests. */
void hv_net_counts(const struct hv_net *n, unsigned *handles, unsigned *listeners);

/* Closes every socket and the backend (NULL is allowed). */
void hv_net_destroy(struct hv_net *n);

/* ---- machines --------------------------------------------------------- */

enum hv_backend_kind { HV_BACKEND_AUTO = 0, HV_BACKEND_TCG, HV_BACKEND_KVM };

/* Parses "tcg", "kvm" or "auto". Returns 0 or -EINVAL. */
int hv_backend_parse(const char *s, enum hv_backend_kind *out);

/* True when this build has the kvm backend and /dev/kvm opens. */
bool hv_kvm_available(void);

typedef void (*hv_console_fn)(void *ctx, const char *buf, size_t len);

struct hv_config {
	uint64_t mem_size;        /* bytes, PV_MEM_MIN..PV_MEM_MAX, multiple of 1 MiB */
	enum hv_backend_kind backend;
	struct hv_disk *disk;     /* may be NULL; the machine does not own it */
	struct hv_net *net;       /* may be NULL (no address: net calls give -ENODEV); not owned */
	uint8_t guest_id[16];
	const char *cmdline;      /* may be NULL; at most PV_CMDLINE_MAX - 1 bytes */
	uint64_t budget_ns;       /* guest run time allowed without a hypercall; 0 = default */
	hv_console_fn console;    /* may be NULL: console output is dropped */
	void *console_ctx;
};

#define HV_DEFAULT_BUDGET_NS (5ull * 1000 * 1000 * 1000)

enum hv_stop_kind {
	HV_STOP_NONE = 0,      /* still runnable */
	HV_STOP_EXIT,          /* the guest called exit; code = its exit code */
	HV_STOP_BAD_HYPERCALL, /* unknown call, or an argument outside what the ABI allows */
	HV_STOP_MEMORY_FAULT,  /* access outside guest RAM; addr = the address */
	HV_STOP_ILLEGAL_INSN,  /* undefined or privileged instruction; addr = rip */
	HV_STOP_CPU_EXCEPTION, /* a CPU exception such as divide error; code = vector */
	HV_STOP_HALT,          /* hlt: nothing can wake a guest of ABI v1 */
	HV_STOP_RUNAWAY,       /* ran past its budget without a hypercall */
	HV_STOP_FENCED,        /* the disk's storage has fenced this host */
	HV_STOP_KILLED,        /* stopped from outside (supervisor, signal) */
	HV_STOP_INTERNAL,      /* the host failed, not the guest */
};

struct hv_stop_info {
	enum hv_stop_kind kind;
	int64_t code;
	uint64_t addr;
	char reason[256]; /* one line, human-readable, names what went wrong */
};

/* Short stable name of a stop kind ("exit", "memory-fault", ...). */
const char *hv_stop_kind_name(enum hv_stop_kind kind);

struct hv_machine;

/* Creates a machine with zeroed RAM and the backend chosen by cfg (auto = kvm
 * when available, else tcg). Nothing runs until an image is loaded or a state
 * restored. Returns 0 or -errno (-ENODEV: backend kvm asked for but unusable). */
int hv_machine_create(const struct hv_config *cfg, struct hv_machine **out);
void hv_machine_destroy(struct hv_machine *m);

/* Loads an ELF64 x86-64 executable and prepares the boot: boot-info page,
 * stack, registers. Every header, size and offset is checked (see hv_elf_parse).
 * Returns 0 or -errno (-ENOEXEC: not a usable image, with the reason in
 * hv_machine_stop_info(m)->reason; the machine stays unloaded). */
int hv_machine_load_elf(struct hv_machine *m, const void *image, size_t size);

enum hv_run_result {
	HV_RUN_PREEMPTED, /* the slice ended or a kick came: call run again */
	HV_RUN_YIELDED,   /* the guest yielded: call run again */
	HV_RUN_SLEEPING,  /* the guest sleeps until hv_machine_wake_at() */
	HV_RUN_BREAK,     /* a break point set with hv_machine_break_after was reached */
	HV_RUN_STOPPED,   /* the guest ended: see hv_machine_stop_info */
};

/* Runs the guest for at most about slice_ns. Returns 0 with *res set, or
 * -errno when the host itself failed (the guest is then stopped INTERNAL). */
int hv_machine_run(struct hv_machine *m, uint64_t slice_ns, enum hv_run_result *res);

/* Asks a running hv_machine_run to return soon (HV_RUN_PREEMPTED). Safe from
 * another thread or a signal handler. */
void hv_machine_kick(struct hv_machine *m);

/* Host CLOCK_MONOTONIC time (ns) at which a sleeping guest wants to run again;
 * UINT64_MAX when it sleeps with no deadline (then only hv_machine_wait_fds
 * or the caller's own events can wake it). */
uint64_t hv_machine_wake_at(const struct hv_machine *m);

/* The host descriptors a guest sleeping in net_poll waits on: up to max
 * entries into out (fd and events set, revents 0). Returns the count, 0 when
 * the guest is not waiting on sockets. When poll(2) reports one of them, the
 * next hv_machine_run wakes the guest. */
size_t hv_machine_wait_fds(const struct hv_machine *m, struct pollfd *out, size_t max);

/* Ends the next hv_machine_run with HV_RUN_BREAK right after the guest's
 * hypercall number n (counted from boot, 1-based); 0 clears it. */
void hv_machine_break_after(struct hv_machine *m, uint64_t n);

/* Stops the guest from outside with the given kind and reason. */
void hv_machine_stop(struct hv_machine *m, enum hv_stop_kind kind, int64_t code,
		     uint64_t addr, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

const struct hv_stop_info *hv_machine_stop_info(const struct hv_machine *m);

/* Pausing stops the guest's monotonic clock until the next run. */
void hv_machine_pause_clock(struct hv_machine *m);

/* The guest's disk calls since the machine was built (not carried by a
 * save or a migration): how many, their bytes, and the host time spent in
 * them (a rados write returns once queued: its time is mostly in the flush). */
struct hv_disk_stats {
	uint64_t reads, writes, flushes;
	uint64_t read_bytes, write_bytes;
	uint64_t read_ns, write_ns, flush_ns;
};

struct hv_machine_stats {
	uint64_t hypercalls;
	uint64_t guest_mono_ns;     /* the guest's monotonic clock now */
	uint64_t heartbeat_seq;     /* last seq the guest sent, 0 = none yet */
	uint64_t heartbeat_mono_ns; /* guest monotonic time of that heartbeat */
	uint64_t mem_size;
	const char *backend;        /* "tcg" or "kvm" */
	uint8_t guest_id[16];
	struct hv_disk_stats disk;
};
void hv_machine_get_stats(const struct hv_machine *m, struct hv_machine_stats *out);

/* Guest RAM, for the VMM's own use (tests, migration). Host writes must go
 * through hv_machine_write_ram so that dirty tracking and code caches see them,
 * and not while the guest runs: then only the vCPU's thread may mark pages
 * dirty (the tcg backend marks them without a locked instruction). */
uint8_t *hv_machine_ram(struct hv_machine *m);
uint64_t hv_machine_mem_size(const struct hv_machine *m);
int hv_machine_write_ram(struct hv_machine *m, uint64_t gpa, const void *src, size_t len);

/* ---- dirty pages -------------------------------------------------------
 * Every page written since the last collection, by the guest or the host, is
 * marked. hv_machine_dirty_collect copies the bitmap (one bit per page, bit i
 * of word i/64) into out (hv_machine_dirty_words() words) and clears it;
 * returns the number of dirty pages. Cost O(pages / 64). */
size_t hv_machine_dirty_words(const struct hv_machine *m);
uint64_t hv_machine_dirty_collect(struct hv_machine *m, uint64_t *out);

/* ---- saved state --------------------------------------------------------
 * A saved state is a stream of records, each a 4-byte little-endian length and
 * a protobuf pvha.StateRecord (proto/vmstate.proto): header, page runs, CPU,
 * devices, end. It names no backend structure, so a state saved on tcg
 * restores on kvm and back. A paused machine only. */

/* Writes the whole state (all non-zero pages) to fd. Returns 0 or -errno. */
int hv_machine_save_fd(struct hv_machine *m, int fd);

/* Pieces of the same stream, for live migration, over a pvproto link (plain
 * or authenticated: pvproto/link.h): the header, then any number of page
 * batches (bitmap = pages to send; NULL = every non-zero page), then the
 * final part (CPU, devices, end). Return 0 or -errno. */
struct pvproto_link;
int hv_state_send_header(struct hv_machine *m, struct pvproto_link *l);
int hv_state_send_pages(struct hv_machine *m, struct pvproto_link *l, const uint64_t *bitmap,
			uint64_t *pages_sent, uint64_t *bytes_sent);
int hv_state_send_final(struct hv_machine *m, struct pvproto_link *l);

/* Reads a stream from fd and builds a machine from it. cfg supplies what is not
 * in the stream (backend, disk, console, budget); guest_id comes from the
 * stream, and so does mem_size when cfg->mem_size is 0 (when it is not, the
 * header must say the same, checked before anything is allocated: a
 * migration target knows the size from the hello it accepted). A disk must
 * be given exactly when the saved guest had one, of the same size. Every
 * record is checked; a bad stream gives -EBADMSG (or -EPROTO for an unknown
 * version, -EKEYREJECTED for a record of an authenticated link whose tag
 * does not verify) and no machine. */
int hv_machine_restore_fd(const struct hv_config *cfg, int fd, struct hv_machine **out,
			  char *err, size_t errlen);
int hv_machine_restore_link(const struct hv_config *cfg, struct pvproto_link *l,
			    struct hv_machine **out, char *err, size_t errlen);

/* ---- ELF loader (pure, exposed for tests) ------------------------------ */

#define HV_ELF_MAX_SEGMENTS 16

struct hv_elf_segment {
	uint64_t gpa;      /* p_paddr == p_vaddr, required */
	uint64_t file_off; /* within the image */
	uint64_t file_size;
	uint64_t mem_size; /* >= file_size; the rest is zeroed */
};

struct hv_elf_image {
	uint64_t entry;
	uint64_t end; /* page-aligned end of the highest segment */
	uint32_t abi_version; /* from the image's PVHA note; 1 without one */
	unsigned nsegments;
	struct hv_elf_segment seg[HV_ELF_MAX_SEGMENTS];
};

/* Checks an ELF64 little-endian x86-64 ET_EXEC image against a RAM size: every
 * PT_LOAD segment within the file and within [PV_IMAGE_MIN_GPA, mem_size - 64 KiB
 * of stack], no two segments overlapping, the entry inside an executable
 * segment, the PVHA ABI note (if any) well-formed and naming a served version. Returns 0 or -ENOEXEC, with a one-line reason in err. O(segments^2). */
int hv_elf_parse(const void *image, size_t size, uint64_t mem_size, struct hv_elf_image *out,
		 char *err, size_t errlen);

#define HV_STACK_RESERVE (64u * 1024u)

#endif /* PVHV_HV_H */
