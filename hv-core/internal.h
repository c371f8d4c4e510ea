/*
 * libpvhv internals: struct hv_machine and the vCPU backend ops table, for
 * the sources of hv-core alone. A backend (vcpu_tcg.c, vcpu_kvm.c) runs guest code
 * and turns every exit into a call of hv_hypercall() or hv_machine_stop(); all
 * device logic lives in hypercall.c, so both backends behave the same.
 */
#ifndef PVHV_INTERNAL_H
#define PVHV_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>

#include "pvhv/hv.h"

/* The backend-neutral CPU state: what a flat 64-bit ABI v1 guest can observe.
 * Control registers, segments and page tables are the backend's business: each
 * backend builds the same flat world itself (see ABI.md). */
struct hv_cpu_state {
	uint64_t gpr[16]; /* rax rcx rdx rbx rsp rbp rsi rdi r8..r15 (x86 encoding order) */
	uint64_t rip, rflags;
	uint64_t fs_base, gs_base, kernel_gs_base;
	uint8_t xmm[16][16];
	uint32_t mxcsr;
	uint16_t fcw, fsw;
	uint8_t ftw;      /* abridged tag word as FXSAVE stores it: bit i = physical register i valid */
	uint8_t st[8][10]; /* 80-bit x87 registers, ST0..ST7 */
};

enum { HV_RAX = 0, HV_RCX, HV_RDX, HV_RBX, HV_RSP, HV_RBP, HV_RSI, HV_RDI,
       HV_R8, HV_R9, HV_R10, HV_R11, HV_R12, HV_R13, HV_R14, HV_R15 };

struct hv_vcpu_ops {
	const char *name;
	/* Sets up m->vcpu over m->ram. Returns 0 or -errno. */
	int (*create)(struct hv_machine *m);
	void (*destroy)(struct hv_machine *m);
	/* Runs guest code until m->request is non-zero (checked at least at every
	 * hypercall and every few ms), the guest stops, or host CLOCK_MONOTONIC
	 * passes deadline_ns. Returns 0 or -errno for a host failure. */
	int (*run)(struct hv_machine *m, uint64_t deadline_ns);
	int (*get_regs)(struct hv_machine *m, struct hv_cpu_state *s);
	int (*set_regs)(struct hv_machine *m, const struct hv_cpu_state *s);
	/* Merges the backend's own dirty log, if it keeps one, into m->dirty. */
	int (*sync_dirty)(struct hv_machine *m);
	/* The host wrote guest RAM [gpa, gpa+len): drop cached translations of it. */
	void (*ram_written)(struct hv_machine *m, uint64_t gpa, uint64_t len);
};

extern const struct hv_vcpu_ops hv_vcpu_tcg_ops;
#ifdef PVHV_HAVE_KVM
extern const struct hv_vcpu_ops hv_vcpu_kvm_ops;
#endif

/* Reasons for a backend's run to return early; bits of m->request. */
#define HV_REQ_STOP 1u   /* the guest stopped (m->stop says why) */
#define HV_REQ_SLEEP 2u  /* the guest sleeps until m->sleep_until */
#define HV_REQ_YIELD 4u  /* the guest yielded */
#define HV_REQ_KICK 8u   /* someone called hv_machine_kick */
#define HV_REQ_BREAK 16u /* hypercall break point reached */

/* ---- ABI v2 sockets (net.c) ---- */

enum hv_net_kind { HV_NS_FREE = 0, HV_NS_LISTEN, HV_NS_STREAM, HV_NS_DEAD };

struct hv_net_sock {
	int fd;          /* the backend's socket; -1 when dead or free */
	uint8_t kind;    /* enum hv_net_kind */
	uint16_t port;   /* listeners: the port bound (what a restore binds again) */
	uint16_t backlog;
	int err;         /* dead: what every call but close answers (negative) */
	bool carried;    /* dead: a connection a restore reset, which hv_net_adopt may revive */
};

struct hv_net {
	const struct hv_net_ops *ops;
	void *priv;
	uint32_t ipv4;   /* the guest's address, host order */
	unsigned nopen, nlisten;
	struct hv_net_sock h[PV_NET_HANDLES_MAX];
};

/* One handle of a saved state (proto NetSocket). */
struct hv_net_saved {
	uint32_t handle, kind, port, backlog;
	int32_t err;
};

/* The ABI v2 calls (nr PV_HC_NET_*), arguments as hv_hypercall got them. */
uint64_t hv_net_hypercall(struct hv_machine *m, uint64_t nr, const uint64_t a[4]);

/* True when one of the sockets a net_poll waiter watches is ready (poll(2)
 * with no wait). */
bool hv_net_wait_ready(struct hv_machine *m);

/* Lists the open handles for a saved state: fills out (PV_NET_HANDLES_MAX
 * entries) and returns the count. */
unsigned hv_net_save(const struct hv_net *n, struct hv_net_saved *out);

/* Rebuilds the handles of a saved state in n (which must have none open): a
 * listener listens again on its port (or turns dead with the error), a
 * connection turns dead with -ECONNRESET. Returns 0, -EBUSY (n has handles)
 * or -EBADMSG for a bad entry, with the reason in err. */
int hv_net_restore(struct hv_net *n, const struct hv_net_saved *s, unsigned count, char *err,
		   size_t errlen);

/* Stops the guest as a broken one: the call and argument named. */
uint64_t hv_bad_hypercall(struct hv_machine *m, uint64_t nr, const char *what, uint64_t a,
			  uint64_t b);

struct hv_machine {
	const struct hv_vcpu_ops *ops;
	void *vcpu; /* the backend's state */

	uint8_t *ram;
	uint64_t mem_size;
	uint64_t npages;
	/* one bit per page; while the guest runs only its vCPU's thread sets
	 * bits (vcpu_tcg.c relies on it), and hv_machine_dirty_collect takes them */
	_Atomic uint64_t *dirty;
	size_t dirty_words;

	struct hv_disk *disk;
	struct hv_net *net;
	uint32_t abi_version; /* what the image asked for: the calls it may make */
	uint8_t guest_id[16];
	char cmdline[PV_CMDLINE_MAX]; /* copied into the boot info at load */
	hv_console_fn console;
	void *console_ctx;
	uint64_t budget_ns;

	_Atomic unsigned request;
	struct hv_stop_info stop;
	bool loaded; /* an image or a state is in RAM */

	/* guest monotonic clock = host monotonic + clock_offset, while running */
	int64_t clock_offset;
	bool clock_paused;
	uint64_t paused_guest_ns;

	uint64_t sleep_until;  /* guest monotonic ns; valid when sleeping */
	bool sleeping;
	/* net_poll found nothing ready: the guest sleeps until sleep_until or
	 * until one of these is ready (then it calls net_poll again) */
	bool net_waiting;
	unsigned nwait;
	struct pollfd wait_fds[PV_NET_POLL_MAX];

	uint64_t hypercalls;
	uint64_t pages_sent_total; /* page-run pages of the stream being sent */
	uint64_t break_after;
	uint64_t heartbeat_seq;
	uint64_t heartbeat_mono_ns;
	struct hv_disk_stats disk_stats;

	/* runaway detection: guest run time without a hypercall, measured at the
	 * check points (hv_check_point) and at the ends of runs */
	uint64_t run_since_hc_ns;  /* guest run time since hypercall hc_seen */
	uint64_t hc_seen;          /* m->hypercalls when last measured */
	uint64_t run_mark_ns;      /* host time up to which run_since_hc_ns counts */
};

/* Host CLOCK_MONOTONIC in ns. */
uint64_t hv_now_ns(void);

/* The guest's monotonic clock now. */
uint64_t hv_guest_mono(const struct hv_machine *m);

/* Handles one hypercall: nr and args as the guest passed them (args: rdi, rsi,
 * r10, r8). Returns the value for rax. May set bits in m->request. */
uint64_t hv_hypercall(struct hv_machine *m, uint64_t nr, const uint64_t args[4]);

/* Called by a backend at its periodic check points: true when the run must end
 * now (deadline passed, request pending, or runaway budget exceeded, in which
 * case the guest is stopped). */
bool hv_check_point(struct hv_machine *m, uint64_t deadline_ns);

/* Marks [gpa, gpa+len) dirty. Cost O(len / page). */
static inline void hv_mark_dirty(struct hv_machine *m, uint64_t gpa, uint64_t len)
{
	if (len == 0 || gpa >= m->mem_size)
		return;
	uint64_t first = gpa / PV_PAGE_SIZE;
	uint64_t last = (gpa + len - 1) / PV_PAGE_SIZE;
	if (last >= m->npages)
		last = m->npages - 1;
	for (uint64_t p = first; p <= last; p++)
		atomic_fetch_or_explicit(&m->dirty[p / 64], 1ull << (p % 64), memory_order_release);
}

/* The host wrote guest RAM [gpa, gpa+len): dirty tracking and the backend's
 * code cache must know. */
static inline void hv_ram_written(struct hv_machine *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		return;
	hv_mark_dirty(m, gpa, len);
	if (m->ops->ram_written)
		m->ops->ram_written(m, gpa, len);
}

/* True when [gpa, gpa+len) lies inside guest RAM (no overflow). */
static inline bool hv_range_ok(const struct hv_machine *m, uint64_t gpa, uint64_t len)
{
	return gpa <= m->mem_size && len <= m->mem_size - gpa;
}

/* The name of a CPU exception vector ("divide error"), the same words on every
 * backend so that stop reasons read alike. */
const char *hv_vector_name(uint32_t vector);

/* The initial register state for an ABI v1 boot. */
void hv_cpu_state_boot(struct hv_cpu_state *s, uint64_t entry, uint64_t stack_top);

#endif /* PVHV_INTERNAL_H */
