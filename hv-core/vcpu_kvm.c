/*
 * The kvm backend: the guest's one vCPU on /dev/kvm.
 *
 * A guest of ABI v1 expects the flat 64-bit world the software CPU gives it:
 * CPL 0, identity-mapped memory, no IDT of its own. Hardware needs that world
 * written down, so this file builds it in the host area of guest RAM
 * (PV_HOST_AREA_GPA..PV_HOST_AREA_END, which guests must not use):
 *
 *   0x2000  PML4            one entry, to the PDPT
 *   0x3000  PDPT            four entries, to the four page directories
 *   0x4000  PD x 4          2 MiB pages, gpa 0..4 GiB identity-mapped (RW)
 *   0x8000  PT              4 KiB pages for the first 2 MiB, so that the host
 *                           area 0x2000..0xbfff can be read-only to the guest
 *   0x9000  GDT (+ TSS at 0x9080)
 *   0xa000  IDT             32 exception gates, all on IST1
 *   0xb000  stubs           one per vector, then the common reporter
 *   0xc000..0x10000         IST1 stack (writable: the CPU pushes there)
 *
 * Exceptions: every vector's stub pushes the vector (and a zero where the CPU
 * pushes no error code) and jumps to a common piece that saves the registers
 * it uses on the IST stack, loads vector, faulting RIP, error code and CR2
 * into rdi, rsi, r10, r8 and reports them with `out` to PV_HC_PORT + 1. The
 * VMM turns that into a stop with the same kind and the same words as the tcg
 * backend (vcpu_tcg.c). docs/kvm-backend.md has the whole picture.
 *
 * Preemption: a per-thread POSIX timer sends KVM_TICK_SIGNAL every
 * KVM_TICK_NS while run() is on; the signal is blocked in the thread and only
 * unblocked inside KVM_RUN (KVM_SET_SIGNAL_MASK), so it only ever makes
 * KVM_RUN return -EINTR and is then eaten with sigtimedwait. Its handler does
 * nothing: it exists so that a stray delivery never kills the process.
 *
 * A hypercall's `out` is completed by KVM (RIP moved past it) only on the next
 * KVM_RUN. Before run() returns after one, it re-enters once with
 * kvm_run->immediate_exit set, which completes the `out` and runs no guest
 * code: a state saved at a break point then resumes after the hypercall on any
 * backend, instead of making it twice.
 *
 * hv_kvm_available() boots a tiny probe guest once per process: a /dev/kvm
 * that cannot run it (a paravirtual PVM one fails x87/SSE) counts as absent.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "internal.h"

/* ---- the host area --------------------------------------------------- */

#define AREA_PML4 0x2000u
#define AREA_PDPT 0x3000u
#define AREA_PD 0x4000u /* four pages */
#define AREA_PT 0x8000u
#define AREA_GDT 0x9000u
#define AREA_TSS 0x9080u
#define AREA_IDT 0xa000u
#define AREA_STUBS 0xb000u
#define AREA_RO_END 0xc000u /* [PV_HOST_AREA_GPA, AREA_RO_END) is read-only to the guest */
#define AREA_IST_TOP PV_HOST_AREA_END
#define AREA_SIZE (PV_HOST_AREA_END - PV_HOST_AREA_GPA)

#define PD_COUNT 4u     /* 4 GiB = PV_MEM_MAX */
#define GDT_ENTRIES 5u  /* null, code, data, TSS (two slots) */
#define TSS_SIZE 104u
#define IDT_VECTORS 32u
#define STUB_SIZE 16u
#define STUB_COMMON (AREA_STUBS + IDT_VECTORS * STUB_SIZE)
#define EXC_PORT (PV_HC_PORT + 1u)

#define SEL_CODE 0x08u
#define SEL_DATA 0x10u
#define SEL_TSS 0x18u

_Static_assert(AREA_PD + PD_COUNT * PV_PAGE_SIZE == AREA_PT, "page directories overlap");
_Static_assert(AREA_TSS + TSS_SIZE <= AREA_IDT, "TSS overlaps the IDT");
_Static_assert(AREA_GDT + GDT_ENTRIES * 8 <= AREA_TSS, "GDT overlaps the TSS");
_Static_assert(STUB_COMMON + 64 <= AREA_RO_END, "stubs overflow their page");
_Static_assert(AREA_RO_END < AREA_IST_TOP && AREA_IST_TOP == PV_HOST_AREA_END,
	       "IST stack outside the host area");
_Static_assert((uint64_t)PD_COUNT << 30 >= PV_MEM_MAX, "page tables do not cover PV_MEM_MAX");

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_A 0x20ull
#define PTE_D 0x40ull
#define PTE_PS 0x80ull

#define CR0_PE 0x1ull
#define CR0_MP 0x2ull
#define CR0_ET 0x10ull
#define CR0_NE 0x20ull
#define CR0_WP 0x10000ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define CR4_OSFXSR 0x200ull
#define CR4_OSXMMEXCPT 0x400ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

/* RFLAGS bits a guest may carry over from a saved state: the arithmetic flags,
 * IF, DF, AC and ID. TF, NT, IOPL, RF, VM, VIF and VIP are dropped: nothing in
 * ABI v1 sets them, and some would fail the VM entry or trap at once. */
#define RFLAGS_KEEP 0x00240ed5ull
#define RFLAGS_FIXED 0x2ull

#define MSR_IA32_TSC 0x10u
#define MSR_KERNEL_GS_BASE 0xc0000102u

/* Vectors for which the CPU pushes an error code. */
#define VEC_HAS_ERROR ((1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) | \
		       (1u << 14) | (1u << 17) | (1u << 21) | (1u << 29) | (1u << 30))
#define VEC_DE 0u
#define VEC_UD 6u
#define VEC_GP 13u
#define VEC_PF 14u

#define PF_PRESENT 0x1ull
#define PF_WRITE 0x2ull
#define PF_FETCH 0x10ull

/* The common part of every exception stub (AT&T syntax; hand-assembled and
 * checked against GNU as). The error code and vector are on the stack. */
static const uint8_t stub_common[] = {
	0x50,                         /* push %rax */
	0x52,                         /* push %rdx */
	0x57,                         /* push %rdi */
	0x56,                         /* push %rsi */
	0x41, 0x50,                   /* push %r8 */
	0x41, 0x52,                   /* push %r10 */
	0x48, 0x8b, 0x7c, 0x24, 0x30, /* mov 0x30(%rsp),%rdi   vector */
	0x4c, 0x8b, 0x54, 0x24, 0x38, /* mov 0x38(%rsp),%r10   error code */
	0x48, 0x8b, 0x74, 0x24, 0x40, /* mov 0x40(%rsp),%rsi   faulting rip */
	0x41, 0x0f, 0x20, 0xd0,       /* mov %cr2,%r8 */
	0xba, EXC_PORT & 0xff, EXC_PORT >> 8, 0x00, 0x00, /* mov $EXC_PORT,%edx */
	0x89, 0xf8,                   /* mov %edi,%eax */
	0xef,                         /* out %eax,(%dx) */
	0xf4,                         /* 1: hlt */
	0xeb, 0xfd,                   /* jmp 1b */
};

/* Where stub_common leaves the registers it pushed, as offsets from the RSP
 * it reports with (the exit's RSP), and how deep its stack is then: the CPU's
 * frame (5 words), the error code, the vector and the 6 saved registers. */
enum { SAVED_R10 = 0, SAVED_R8 = 8, SAVED_RSI = 16, SAVED_RDI = 24, SAVED_RDX = 32,
       SAVED_RAX = 40, EXC_STACK_DEPTH = 13 * 8 };

/* ---- the preemption tick ---------------------------------------------- */

/* A real-time signal reserved for this backend in any process that creates a
 * kvm machine (docs/kvm-backend.md); + 4 leaves the first few to programs
 * that take SIGRTMIN itself. */
#define KVM_TICK_SIGNAL (SIGRTMIN + 4)
#define KVM_TICK_NS 2000000ull /* a kick or a deadline is seen within this */
#define KVM_TICK_MIN_NS 50000ull

/* Guest-physical address KVM may want for its real-mode TSS on Intel hosts
 * without "unrestricted guest"; it must not overlap guest RAM. */
#define KVM_TSS_ADDR 0xfffbd000ull

struct hv_kvm {
	int vm_fd;
	int vcpu_fd;
	struct kvm_run *run;
	size_t run_size;

	bool io_pending;    /* KVM still has to complete the last port I/O */
	bool have_xsave;    /* KVM_GET/SET_XSAVE, else KVM_GET/SET_FPU */
	uint32_t mxcsr_mask;
	struct kvm_xsave *xsave;

	uint8_t *area;      /* the host area's wanted contents, AREA_SIZE bytes */

	pthread_mutex_t dirty_lock; /* sync_dirty may come from another thread */
	uint64_t *dirty_log;        /* KVM_GET_DIRTY_LOG's buffer, m->dirty_words */

	bool have_timer;
	timer_t timer;
	pid_t timer_tid;    /* the thread the timer signals */
	bool have_sigmask;
	uint8_t sigmask[8]; /* the last mask given to KVM_SET_SIGNAL_MASK */
	sigset_t saved_mask; /* the thread's mask before run() */
};

/* ---- small helpers ---------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* True when v is a canonical 48-bit virtual address (bits 63..47 equal). */
static bool canonical(uint64_t v)
{
	uint64_t top = v >> 47;
	return top == 0 || top == 0x1ffff;
}

/* An ioctl that returns -errno on failure and its result otherwise. */
static int xioctl(int fd, unsigned long req, void *arg)
{
	int r = ioctl(fd, req, arg);
	return r < 0 ? -errno : r;
}

/* Whether /dev/kvm's fd reports capability cap (> 0). */
static bool has_cap(int kvm_fd, int cap)
{
	return ioctl(kvm_fd, KVM_CHECK_EXTENSION, (unsigned long)cap) > 0;
}

/* ---- building the flat world ----------------------------------------- */

/* Writes the page tables into img (the host area's image, indexed from
 * PV_HOST_AREA_GPA): 4 GiB identity-mapped, 2 MiB pages, except the first
 * 2 MiB in 4 KiB pages with the host area's tables, descriptors and stubs
 * read-only. Accessed and dirty bits are preset so that the CPU never writes
 * the tables itself. */
static void area_page_tables(uint8_t *img)
{
	put64(img + AREA_PML4 - PV_HOST_AREA_GPA, AREA_PDPT | PTE_P | PTE_RW | PTE_A);
	for (uint32_t i = 0; i < PD_COUNT; i++)
		put64(img + AREA_PDPT - PV_HOST_AREA_GPA + 8 * i,
		      (AREA_PD + i * PV_PAGE_SIZE) | PTE_P | PTE_RW | PTE_A);
	for (uint64_t i = 0; i < PD_COUNT * 512; i++) {
		uint64_t e = i == 0 ? AREA_PT | PTE_P | PTE_RW | PTE_A
				    : (i << 21) | PTE_P | PTE_RW | PTE_A | PTE_D | PTE_PS;
		put64(img + AREA_PD - PV_HOST_AREA_GPA + 8 * i, e);
	}
	for (uint64_t i = 0; i < 512; i++) {
		uint64_t gpa = i * PV_PAGE_SIZE;
		uint64_t e = gpa | PTE_P | PTE_A | PTE_D;
		if (gpa < PV_HOST_AREA_GPA || gpa >= AREA_RO_END)
			e |= PTE_RW;
		put64(img + AREA_PT - PV_HOST_AREA_GPA + 8 * i, e);
	}
}

/* Writes the GDT (null, 64-bit code, data, 64-bit TSS) and the TSS with IST1
 * (and RSP0) at the top of the host area. Descriptors are written accessed
 * (and the TSS busy) as KVM_SET_SREGS loads them, so the CPU never writes
 * them either. */
static void area_descriptors(uint8_t *img)
{
	uint8_t *gdt = img + AREA_GDT - PV_HOST_AREA_GPA;
	uint8_t *tss = img + AREA_TSS - PV_HOST_AREA_GPA;
	uint64_t base = AREA_TSS, limit = TSS_SIZE - 1;

	put64(gdt + SEL_CODE, 0x00af9b000000ffffull); /* P, DPL 0, code r/x, L, G */
	put64(gdt + SEL_DATA, 0x00cf93000000ffffull); /* P, DPL 0, data r/w, D/B, G */
	put64(gdt + SEL_TSS, (limit & 0xffff) | (base & 0xffffff) << 16 | 0x8bull << 40 |
				     ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56);
	put64(gdt + SEL_TSS + 8, base >> 32);

	put64(tss + 4, AREA_IST_TOP);  /* RSP0 */
	put64(tss + 36, AREA_IST_TOP); /* IST1 */
	put16(tss + 102, TSS_SIZE);    /* I/O map base past the limit: no bitmap */
}

/* Writes the IDT (32 interrupt gates, CS = SEL_CODE, IST1) and the stubs:
 * vector v's stub at AREA_STUBS + 16 v pushes a zero error code where the CPU
 * pushes none, then v, and jumps to stub_common. */
static void area_idt_and_stubs(uint8_t *img)
{
	uint8_t *idt = img + AREA_IDT - PV_HOST_AREA_GPA;

	for (uint32_t v = 0; v < IDT_VECTORS; v++) {
		uint64_t stub = AREA_STUBS + v * STUB_SIZE;
		uint8_t *p = img + stub - PV_HOST_AREA_GPA;
		size_t n = 0;

		put64(idt + 16 * v, (stub & 0xffff) | (uint64_t)SEL_CODE << 16 | 1ull << 32 |
					    0x8eull << 40 | ((stub >> 16) & 0xffff) << 48);
		put64(idt + 16 * v + 8, stub >> 32);

		if (!(VEC_HAS_ERROR & (1u << v))) {
			p[n++] = 0x6a; /* push $0 */
			p[n++] = 0x00;
		}
		p[n++] = 0x6a; /* push $v */
		p[n++] = (uint8_t)v;
		p[n++] = 0xe9; /* jmp stub_common */
		put32(p + n, (uint32_t)(STUB_COMMON - (stub + n + 4)));
		n += 4;
		while (n < STUB_SIZE)
			p[n++] = 0xcc; /* int3: never reached */
	}
	memcpy(img + STUB_COMMON - PV_HOST_AREA_GPA, stub_common, sizeof(stub_common));
}

/* Builds the host area's image once per machine. */
static void area_build(uint8_t *img)
{
	memset(img, 0, AREA_SIZE);
	area_page_tables(img);
	area_descriptors(img);
	area_idt_and_stubs(img);
}

/* Puts the host area into guest RAM, page by page where it differs (a state
 * saved on tcg has zeros there, one saved here has the same image), marking
 * what it wrote dirty. The IST stack pages are zeroed too. O(AREA_SIZE). */
static void area_install(struct hv_machine *m, const struct hv_kvm *k)
{
	for (uint64_t off = 0; off < AREA_SIZE; off += PV_PAGE_SIZE) {
		uint8_t *dst = m->ram + PV_HOST_AREA_GPA + off;
		if (memcmp(dst, k->area + off, PV_PAGE_SIZE) != 0) {
			memcpy(dst, k->area + off, PV_PAGE_SIZE);
			hv_mark_dirty(m, PV_HOST_AREA_GPA + off, PV_PAGE_SIZE);
		}
	}
}

/* Fills the segment, descriptor-table and control registers of the flat
 * world into sr (other fields, such as apic_base, stay as KVM gave them). */
static void flat_sregs(struct kvm_sregs *sr, const struct hv_cpu_state *s)
{
	struct kvm_segment code = { .base = 0, .limit = 0xffffffff, .selector = SEL_CODE,
				    .type = 11, .present = 1, .dpl = 0, .db = 0, .s = 1,
				    .l = 1, .g = 1 };
	struct kvm_segment data = { .base = 0, .limit = 0xffffffff, .selector = SEL_DATA,
				    .type = 3, .present = 1, .dpl = 0, .db = 1, .s = 1,
				    .l = 0, .g = 1 };
	struct kvm_segment tr = { .base = AREA_TSS, .limit = TSS_SIZE - 1, .selector = SEL_TSS,
				  .type = 11, .present = 1, .s = 0 };
	struct kvm_segment ldt = { .selector = 0, .type = 2, .present = 0, .unusable = 1 };

	sr->cs = code;
	sr->ds = data;
	sr->es = data;
	sr->ss = data;
	sr->fs = data;
	sr->gs = data;
	sr->fs.base = s->fs_base;
	sr->gs.base = s->gs_base;
	sr->tr = tr;
	sr->ldt = ldt;
	sr->gdt.base = AREA_GDT;
	sr->gdt.limit = GDT_ENTRIES * 8 - 1;
	sr->idt.base = AREA_IDT;
	sr->idt.limit = IDT_VECTORS * 16 - 1;
	sr->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sr->cr3 = AREA_PML4;
	sr->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sr->efer = EFER_LME | EFER_LMA;
	memset(sr->interrupt_bitmap, 0, sizeof(sr->interrupt_bitmap));
}

/* ---- MSRs, CPUID and the FPU ----------------------------------------- */

/* Reads (set == false) or writes n MSRs in one ioctl. Returns 0 or -errno
 * (-EIO when KVM handled fewer than n). */
static int msrs_access(struct hv_kvm *k, bool set, const uint32_t *idx, uint64_t *val, unsigned n)
{
	union {
		struct kvm_msrs h;
		uint8_t raw[sizeof(struct kvm_msrs) + 4 * sizeof(struct kvm_msr_entry)];
	} u;

	if (n > 4)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	u.h.nmsrs = n;
	for (unsigned i = 0; i < n; i++) {
		u.h.entries[i].index = idx[i];
		u.h.entries[i].data = set ? val[i] : 0;
	}
	int r = xioctl(k->vcpu_fd, set ? KVM_SET_MSRS : KVM_GET_MSRS, &u.h);
	if (r < 0)
		return r;
	if ((unsigned)r != n)
		return -EIO;
	if (!set)
		for (unsigned i = 0; i < n; i++)
			val[i] = u.h.entries[i].data;
	return 0;
}

/* Gives the vCPU every CPUID leaf KVM supports on this host. Returns 0 or
 * -errno. */
static int cpuid_setup(int kvm_fd, struct hv_kvm *k)
{
	struct kvm_cpuid2 *c = NULL;
	int err = -E2BIG;

	for (uint32_t n = 64; n <= 4096; n *= 2) {
		free(c);
		c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		err = xioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (err != -E2BIG)
			break;
	}
	if (err >= 0)
		err = xioctl(k->vcpu_fd, KVM_SET_CPUID2, c);
	free(c);
	return err < 0 ? err : 0;
}

/* Learns the host's MXCSR mask (reserved MXCSR bits make KVM_SET_XSAVE fail
 * and FXRSTOR fault) from the vCPU's initial FPU image. */
static int fpu_probe(struct hv_kvm *k)
{
	k->mxcsr_mask = 0xffbf; /* the architectural default when the CPU gives none */
	if (!k->have_xsave)
		return 0;
	int err = xioctl(k->vcpu_fd, KVM_GET_XSAVE, k->xsave);
	if (err < 0)
		return err;
	uint32_t mask = get32((const uint8_t *)k->xsave->region + 28);
	if (mask)
		k->mxcsr_mask = mask;
	return 0;
}

/* Reads the x87/SSE state. With XSAVE, an x87 or SSE component that the
 * header marks as in its initial state is reported as that state (older
 * kernels hand the area over unconverted, with stale bytes there). */
static int fpu_get(struct hv_kvm *k, struct hv_cpu_state *s)
{
	if (!k->have_xsave) {
		struct kvm_fpu f;
		int err = xioctl(k->vcpu_fd, KVM_GET_FPU, &f);
		if (err < 0)
			return err;
		s->fcw = f.fcw;
		s->fsw = f.fsw;
		s->ftw = f.ftwx;
		s->mxcsr = f.mxcsr;
		for (int i = 0; i < 8; i++)
			memcpy(s->st[i], f.fpr[i], 10);
		memcpy(s->xmm, f.xmm, sizeof(s->xmm));
		return 0;
	}
	int err = xioctl(k->vcpu_fd, KVM_GET_XSAVE, k->xsave);
	if (err < 0)
		return err;
	const uint8_t *b = (const uint8_t *)k->xsave->region;
	uint64_t xstate_bv = get64(b + 512);
	if (xstate_bv & 1) {
		s->fcw = get16(b + 0);
		s->fsw = get16(b + 2);
		s->ftw = b[4];
		for (int i = 0; i < 8; i++)
			memcpy(s->st[i], b + 32 + 16 * i, 10);
	} else {
		s->fcw = 0x037f;
		s->fsw = 0;
		s->ftw = 0;
		memset(s->st, 0, sizeof(s->st));
	}
	if (xstate_bv & 2)
		memcpy(s->xmm, b + 160, sizeof(s->xmm));
	else
		memset(s->xmm, 0, sizeof(s->xmm));
	s->mxcsr = get32(b + 24);
	return 0;
}

/* Writes the x87/SSE state; every other XSAVE component (AVX upper halves
 * and the rest, which no backend-neutral state carries) goes to its initial
 * state. KVM_SET_XSAVE rather than KVM_SET_FPU: the latter writes the legacy
 * area without marking x87/SSE in use in the XSAVE header, so the next
 * XRSTOR could load the initial state instead. MXCSR loses reserved bits. */
static int fpu_set(struct hv_kvm *k, const struct hv_cpu_state *s)
{
	uint32_t mxcsr = s->mxcsr & k->mxcsr_mask;

	if (!k->have_xsave) {
		struct kvm_fpu f;
		memset(&f, 0, sizeof(f));
		f.fcw = s->fcw;
		f.fsw = s->fsw;
		f.ftwx = s->ftw;
		f.mxcsr = mxcsr;
		for (int i = 0; i < 8; i++)
			memcpy(f.fpr[i], s->st[i], 10);
		memcpy(f.xmm, s->xmm, sizeof(f.xmm));
		int err = xioctl(k->vcpu_fd, KVM_SET_FPU, &f);
		return err < 0 ? err : 0;
	}
	uint8_t *b = (uint8_t *)k->xsave->region;
	memset(k->xsave, 0, sizeof(*k->xsave));
	put16(b + 0, s->fcw);
	put16(b + 2, s->fsw);
	b[4] = s->ftw;
	for (int i = 0; i < 8; i++)
		memcpy(b + 32 + 16 * i, s->st[i], 10);
	put32(b + 24, mxcsr);
	put32(b + 28, k->mxcsr_mask);
	memcpy(b + 160, s->xmm, sizeof(s->xmm));
	put64(b + 512, 3); /* XSTATE_BV: x87 and SSE */
	int err = xioctl(k->vcpu_fd, KVM_SET_XSAVE, k->xsave);
	return err < 0 ? err : 0;
}

/* ---- the tick ---------------------------------------------------------- */

static pthread_once_t tick_once = PTHREAD_ONCE_INIT;
static int tick_install_err;

/* The tick's handler: does nothing. KVM_RUN returning -EINTR is the point. */
static void tick_handler(int sig)
{
	(void)sig;
}

/* Installs tick_handler for KVM_TICK_SIGNAL, once per process. */
static void tick_install(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = tick_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(KVM_TICK_SIGNAL, &sa, NULL) < 0)
		tick_install_err = -errno;
}

/* Consumes any pending tick of this thread (the signal is blocked here). */
static void tick_eat(void)
{
	sigset_t set;
	struct timespec zero = { 0, 0 };
	sigemptyset(&set);
	sigaddset(&set, KVM_TICK_SIGNAL);
	for (int i = 0; i < 16; i++) {
		int r = sigtimedwait(&set, NULL, &zero);
		if (r < 0 && errno != EINTR)
			break;
	}
}

/* Tells KVM which signals may interrupt KVM_RUN: the thread's own mask less
 * the tick. Skips the ioctl when it is the mask given last time. */
static int tick_set_run_mask(struct hv_kvm *k, const sigset_t *thread_mask)
{
	sigset_t run_mask = *thread_mask;
	union {
		struct kvm_signal_mask h;
		uint8_t raw[sizeof(struct kvm_signal_mask) + 8];
	} u;

	sigdelset(&run_mask, KVM_TICK_SIGNAL);
	/* The kernel's sigset is 64 bits, signal n at bit n - 1: glibc's first
	 * 8 bytes on x86-64. */
	if (k->have_sigmask && memcmp(k->sigmask, &run_mask, 8) == 0)
		return 0;
	memset(&u, 0, sizeof(u));
	u.h.len = 8;
	memcpy(u.h.sigset, &run_mask, 8);
	int err = xioctl(k->vcpu_fd, KVM_SET_SIGNAL_MASK, &u.h);
	if (err < 0)
		return err;
	memcpy(k->sigmask, &run_mask, 8);
	k->have_sigmask = true;
	return 0;
}

/* Makes sure the tick timer exists and signals the calling thread (a machine
 * may be driven by another thread from one run to the next). */
static int tick_timer_for_this_thread(struct hv_kvm *k)
{
	pid_t tid = gettid();
	if (k->have_timer && k->timer_tid == tid)
		return 0;
	if (k->have_timer) {
		timer_delete(k->timer);
		k->have_timer = false;
	}
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = KVM_TICK_SIGNAL;
	sev._sigev_un._tid = tid; /* sigev_notify_thread_id, which glibc does not name */
	if (timer_create(CLOCK_MONOTONIC, &sev, &k->timer) < 0)
		return -errno;
	k->have_timer = true;
	k->timer_tid = tid;
	return 0;
}

/* Starts the tick for one run: blocks the signal in this thread (saving the
 * old mask), lets it through inside KVM_RUN, and arms the timer to fire at
 * the deadline or in KVM_TICK_NS, whichever is first, then every
 * KVM_TICK_NS. Returns 0 or -errno with the thread's mask as it was. */
static int tick_start(struct hv_kvm *k, uint64_t deadline_ns)
{
	sigset_t block;
	int err;

	sigemptyset(&block);
	sigaddset(&block, KVM_TICK_SIGNAL);
	err = pthread_sigmask(SIG_BLOCK, &block, &k->saved_mask);
	if (err)
		return -err;
	err = tick_set_run_mask(k, &k->saved_mask);
	if (err)
		goto err_restore_mask;
	err = tick_timer_for_this_thread(k);
	if (err)
		goto err_restore_mask;

	uint64_t now = hv_now_ns();
	uint64_t first = deadline_ns > now ? deadline_ns - now : 0;
	if (first > KVM_TICK_NS)
		first = KVM_TICK_NS;
	if (first < KVM_TICK_MIN_NS)
		first = KVM_TICK_MIN_NS;
	struct itimerspec its = {
		.it_value = { .tv_sec = 0, .tv_nsec = (long)first },
		.it_interval = { .tv_sec = 0, .tv_nsec = (long)KVM_TICK_NS },
	};
	if (timer_settime(k->timer, 0, &its, NULL) < 0) {
		err = -errno;
		goto err_restore_mask;
	}
	return 0;

err_restore_mask:
	pthread_sigmask(SIG_SETMASK, &k->saved_mask, NULL);
	return err;
}

/* Ends the tick: disarms the timer, eats a tick still pending, and gives
 * the thread its mask back. */
static void tick_stop(struct hv_kvm *k)
{
	struct itimerspec off;
	memset(&off, 0, sizeof(off));
	timer_settime(k->timer, 0, &off, NULL);
	tick_eat();
	pthread_sigmask(SIG_SETMASK, &k->saved_mask, NULL);
}

/* ---- exits ------------------------------------------------------------- */

/* Completes the port I/O KVM still holds (see the top of this file): one
 * KVM_RUN with immediate_exit, which returns -EINTR without running guest
 * code. Returns 0 or -errno. */
static int complete_io(struct hv_kvm *k)
{
	if (!k->io_pending)
		return 0;
	k->run->immediate_exit = 1;
	int r = ioctl(k->vcpu_fd, KVM_RUN, 0);
	int e = errno;
	k->run->immediate_exit = 0;
	k->io_pending = false;
	if (r < 0 && e != EINTR && e != EAGAIN)
		return -e;
	return 0;
}

/* A #GP with error code 0 at CPL 0 in this flat world is most often a memory
 * access through a non-canonical address. Nothing says which register held
 * it, so: the first general register (at the time of the fault, rsp aside)
 * that is not canonical. Returns true and sets *addr when one is. */
static bool gp_noncanonical(const struct hv_machine *m, const struct kvm_regs *r, uint64_t *addr)
{
	uint64_t sp = r->rsp;
	if (sp < AREA_RO_END || sp > AREA_IST_TOP - EXC_STACK_DEPTH)
		return false;
	const uint8_t *st = m->ram + sp;
	uint64_t g[15] = {
		get64(st + SAVED_RAX), r->rcx, get64(st + SAVED_RDX), r->rbx, r->rbp,
		get64(st + SAVED_RSI), get64(st + SAVED_RDI), get64(st + SAVED_R8), r->r9,
		get64(st + SAVED_R10), r->r11, r->r12, r->r13, r->r14, r->r15,
	};
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		if (!canonical(g[i])) {
			*addr = g[i];
			return true;
		}
	}
	return false;
}

/* The exception stub reported vector rdi at rip rsi, error code r10, CR2 r8:
 * stops the guest with the kind and words the tcg backend uses. */
static void exception_stop(struct hv_machine *m, const struct kvm_regs *r)
{
	uint32_t vec = (uint32_t)r->rdi;
	unsigned long long rip = r->rsi, code = r->r10, cr2 = r->r8;
	unsigned long long ram_end = m->mem_size;
	uint64_t addr;

	switch (vec) {
	case VEC_UD:
		hv_machine_stop(m, HV_STOP_ILLEGAL_INSN, vec, rip, "illegal instruction at rip 0x%llx",
				rip);
		return;
	case VEC_PF:
		if ((code & PF_PRESENT) && (code & PF_WRITE) && cr2 >= PV_HOST_AREA_GPA &&
		    cr2 < AREA_RO_END) {
			hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, cr2,
					"memory fault: write to the host area at 0x%llx at rip 0x%llx "
					"(0x%x..0x%x is reserved for the host)",
					cr2, rip, PV_HOST_AREA_GPA, PV_HOST_AREA_END);
			return;
		}
		hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, cr2,
				"memory fault: %s unmapped address 0x%llx at rip 0x%llx (RAM ends at 0x%llx)",
				(code & PF_FETCH) || cr2 == rip ? "instruction fetch from"
				: (code & PF_WRITE)		? "write to"
								: "read from",
				cr2, rip, ram_end);
		return;
	case VEC_GP:
		if (code == 0 && gp_noncanonical(m, r, &addr)) {
			hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, addr,
					"memory fault: access to unmapped address 0x%llx at rip 0x%llx "
					"(RAM ends at 0x%llx; the address is not canonical)",
					(unsigned long long)addr, rip, ram_end);
			return;
		}
		break;
	default:
		break;
	}
	hv_machine_stop(m, HV_STOP_CPU_EXCEPTION, vec, rip, "%s (vector %u) at rip 0x%llx",
			hv_vector_name(vec), vec, rip);
}

/* KVM_EXIT_IO: a hypercall, the exception stub's report, or a bad port. */
static int exit_io(struct hv_machine *m, struct hv_kvm *k)
{
	const struct kvm_run *run = k->run;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	struct kvm_regs r;
	int err;

	k->io_pending = true;
	if (out && run->io.port == PV_HC_PORT && run->io.size == 4 && run->io.count == 1) {
		err = xioctl(k->vcpu_fd, KVM_GET_REGS, &r);
		if (err < 0)
			return err;
		uint64_t args[4] = { r.rdi, r.rsi, r.r10, r.r8 };
		r.rax = hv_hypercall(m, r.rax, args);
		err = xioctl(k->vcpu_fd, KVM_SET_REGS, &r);
		return err < 0 ? err : 0;
	}
	if (out && run->io.port == EXC_PORT) {
		err = xioctl(k->vcpu_fd, KVM_GET_REGS, &r);
		if (err < 0)
			return err;
		if (r.rip >= AREA_STUBS && r.rip < AREA_STUBS + PV_PAGE_SIZE) {
			exception_stop(m, &r);
			return 0;
		}
	}
	if (out)
		hv_machine_stop(m, HV_STOP_BAD_HYPERCALL, run->io.port, 0,
				"bad hypercall: out to port 0x%x of size %d (hypercalls use port 0x%x, 4 bytes)",
				run->io.port, run->io.size, PV_HC_PORT);
	else
		hv_machine_stop(m, HV_STOP_BAD_HYPERCALL, run->io.port, 0,
				"bad hypercall: in from port 0x%x of size %d (ABI v1 has no input ports)",
				run->io.port, run->io.size);
	return 0;
}

/* Handles one exit of KVM_RUN other than -EINTR. Returns 0 (the guest may
 * have been stopped) or -errno for a host failure. */
static int handle_exit(struct hv_machine *m, struct hv_kvm *k)
{
	const struct kvm_run *run = k->run;
	unsigned long long ram_end = m->mem_size;
	struct kvm_regs r;
	int err;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		return exit_io(m, k);
	case KVM_EXIT_INTR:
		return 0;
	default:
		break;
	}
	/* Every other exit ends the guest; its RIP goes into the reason. */
	err = xioctl(k->vcpu_fd, KVM_GET_REGS, &r);
	if (err < 0)
		return err;
	unsigned long long rip = r.rip;

	switch (run->exit_reason) {
	case KVM_EXIT_MMIO: {
		/* A gpa no memory slot covers: between the end of RAM and 4 GiB. */
		unsigned long long addr = run->mmio.phys_addr;
		hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, addr,
				"memory fault: %s unmapped address 0x%llx at rip 0x%llx (RAM ends at 0x%llx)",
				run->mmio.is_write ? "write to" : "read from", addr, rip, ram_end);
		return 0;
	}
	case KVM_EXIT_HLT:
		/* KVM has moved RIP past the one-byte hlt. */
		hv_machine_stop(m, HV_STOP_HALT, 0, rip - 1,
				"halted: hlt at rip 0x%llx with nothing to wake the guest", rip - 1);
		return 0;
	case KVM_EXIT_SHUTDOWN:
		hv_machine_stop(m, HV_STOP_CPU_EXCEPTION, -1, rip,
				"triple fault at rip 0x%llx: an exception could not be delivered "
				"(did the guest overwrite the host area 0x%x..0x%x?)",
				rip, PV_HOST_AREA_GPA, PV_HOST_AREA_END);
		return 0;
	case KVM_EXIT_FAIL_ENTRY:
		hv_machine_stop(m, HV_STOP_INTERNAL, -EIO, rip,
				"kvm: vm entry failed, hardware reason 0x%llx, at rip 0x%llx",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason, rip);
		return 0;
	case KVM_EXIT_INTERNAL_ERROR:
		/* An instruction KVM had to emulate because it touched a gpa with no
		 * memory behind it, and could not: the guest's doing. */
		if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
			if (r.rip >= m->mem_size)
				hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, rip,
						"memory fault: instruction fetch from unmapped address 0x%llx "
						"at rip 0x%llx (RAM ends at 0x%llx)",
						rip, rip, ram_end);
			else
				hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, 0,
						"memory fault: access to unmapped address by the instruction "
						"at rip 0x%llx (RAM ends at 0x%llx; kvm could not emulate it)",
						rip, ram_end);
			return 0;
		}
		hv_machine_stop(m, HV_STOP_INTERNAL, -EIO, rip,
				"kvm: internal error, suberror %u, at rip 0x%llx",
				run->internal.suberror, rip);
		return 0;
	default:
		hv_machine_stop(m, HV_STOP_INTERNAL, -EIO, rip,
				"kvm: unexpected exit reason %u at rip 0x%llx", run->exit_reason, rip);
		return 0;
	}
}

/* ---- the ops ------------------------------------------------------------ */

/* Opens /dev/kvm and builds the VM: RAM as memory slot 0 with dirty logging,
 * one vCPU with the host's CPUID and the host's TSC (Unicorn's rdtsc reads
 * the raw host TSC, so a guest sees the same clock on both backends), the
 * kvm_run area, and the host area's image. Returns 0 or -errno (-ENODEV
 * without a usable /dev/kvm, -EOPNOTSUPP when KVM lacks a capability). */
static int kvm_create(struct hv_machine *m)
{
	struct hv_kvm *k;
	int kvm_fd, err, r;

	pthread_once(&tick_once, tick_install);
	if (tick_install_err)
		return tick_install_err;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->vm_fd = -1;
	k->vcpu_fd = -1;

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		err = errno == ENOENT || errno == ENXIO || errno == ENODEV ? -ENODEV : -errno;
		goto err_free;
	}
	if (ioctl(kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		err = -ENODEV;
		goto err_close_kvm;
	}
	if (!has_cap(kvm_fd, KVM_CAP_USER_MEMORY) || !has_cap(kvm_fd, KVM_CAP_EXT_CPUID) ||
	    !has_cap(kvm_fd, KVM_CAP_IMMEDIATE_EXIT)) {
		err = -EOPNOTSUPP;
		goto err_close_kvm;
	}
	k->have_xsave = has_cap(kvm_fd, KVM_CAP_XSAVE);

	do
		k->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	while (k->vm_fd < 0 && errno == EINTR);
	if (k->vm_fd < 0) {
		err = -errno;
		goto err_close_kvm;
	}
	/* A no-op on hosts with "unrestricted guest" (and on AMD); elsewhere KVM
	 * needs three pages outside RAM for its own use. */
	if (m->mem_size <= KVM_TSS_ADDR && has_cap(kvm_fd, KVM_CAP_SET_TSS_ADDR)) {
		err = xioctl(k->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)KVM_TSS_ADDR);
		if (err < 0)
			goto err_close_vm;
	}
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.flags = KVM_MEM_LOG_DIRTY_PAGES,
		.guest_phys_addr = 0,
		.memory_size = m->mem_size,
		.userspace_addr = (uintptr_t)m->ram,
	};
	err = xioctl(k->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
	if (err < 0)
		goto err_close_vm;

	k->vcpu_fd = ioctl(k->vm_fd, KVM_CREATE_VCPU, 0);
	if (k->vcpu_fd < 0) {
		err = -errno;
		goto err_close_vm;
	}
	r = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run)) {
		err = r < 0 ? -errno : -EIO;
		goto err_close_vcpu;
	}
	k->run_size = (size_t)r;
	k->run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, k->vcpu_fd, 0);
	if (k->run == MAP_FAILED) {
		err = -errno;
		goto err_close_vcpu;
	}

	err = cpuid_setup(kvm_fd, k);
	if (err)
		goto err_unmap_run;
	uint32_t tsc_idx = MSR_IA32_TSC;
	uint64_t tsc = __builtin_ia32_rdtsc();
	err = msrs_access(k, true, &tsc_idx, &tsc, 1);
	if (err)
		goto err_unmap_run;

	k->xsave = calloc(1, sizeof(*k->xsave));
	k->area = malloc(AREA_SIZE);
	k->dirty_log = calloc(m->dirty_words, sizeof(uint64_t));
	if (!k->xsave || !k->area || !k->dirty_log) {
		err = -ENOMEM;
		goto err_free_buffers;
	}
	err = fpu_probe(k);
	if (err)
		goto err_free_buffers;
	err = -pthread_mutex_init(&k->dirty_lock, NULL);
	if (err)
		goto err_free_buffers;
	area_build(k->area);

	close(kvm_fd);
	m->vcpu = k;
	return 0;

err_free_buffers:
	free(k->dirty_log);
	free(k->area);
	free(k->xsave);
err_unmap_run:
	munmap(k->run, k->run_size);
err_close_vcpu:
	close(k->vcpu_fd);
err_close_vm:
	close(k->vm_fd);
err_close_kvm:
	close(kvm_fd);
err_free:
	free(k);
	return err;
}

/* Undoes kvm_create: timer, kvm_run mapping, vCPU and VM (which frees the
 * memory slot; guest RAM itself is the machine's). */
static void kvm_destroy(struct hv_machine *m)
{
	struct hv_kvm *k = m->vcpu;
	if (!k)
		return;
	if (k->have_timer)
		timer_delete(k->timer);
	munmap(k->run, k->run_size);
	close(k->vcpu_fd);
	close(k->vm_fd);
	pthread_mutex_destroy(&k->dirty_lock);
	free(k->dirty_log);
	free(k->area);
	free(k->xsave);
	free(k);
	m->vcpu = NULL;
}

/* Runs the guest until a request (hypercall outcome, stop, kick), the
 * deadline or the runaway budget. The request is looked at after every exit;
 * hv_check_point (which reads the clock) at entry and whenever the tick has
 * made KVM_RUN return, at least every KVM_TICK_NS, so a hypercall costs no
 * clock read. Returns 0 or -errno for a host failure. */
static int kvm_run(struct hv_machine *m, uint64_t deadline_ns)
{
	struct hv_kvm *k = m->vcpu;
	int err = tick_start(k, deadline_ns);
	if (err)
		return err;

	bool done = hv_check_point(m, deadline_ns);
	while (!done) {
		if (ioctl(k->vcpu_fd, KVM_RUN, 0) < 0) {
			if (errno != EINTR && errno != EAGAIN) {
				err = -errno;
				break;
			}
			/* Any I/O left over was completed before KVM looked for signals. */
			k->io_pending = false;
			tick_eat();
			done = hv_check_point(m, deadline_ns);
			continue;
		}
		k->io_pending = false;
		err = handle_exit(m, k);
		if (err)
			break;
		done = atomic_load_explicit(&m->request, memory_order_relaxed) != 0;
	}
	int completed = complete_io(k);
	if (!err)
		err = completed;
	tick_stop(k);
	return err;
}

/* Reads the backend-neutral state: KVM_GET_REGS, the FS/GS bases from
 * KVM_GET_SREGS, KERNEL_GS_BASE, and x87/SSE. Returns 0 or -errno. */
static int kvm_get_regs(struct hv_machine *m, struct hv_cpu_state *s)
{
	struct hv_kvm *k = m->vcpu;
	struct kvm_regs r;
	struct kvm_sregs sr;
	uint32_t idx = MSR_KERNEL_GS_BASE;
	int err;

	err = complete_io(k);
	if (err)
		return err;
	memset(s, 0, sizeof(*s));
	err = xioctl(k->vcpu_fd, KVM_GET_REGS, &r);
	if (err < 0)
		return err;
	err = xioctl(k->vcpu_fd, KVM_GET_SREGS, &sr);
	if (err < 0)
		return err;
	s->gpr[HV_RAX] = r.rax;
	s->gpr[HV_RCX] = r.rcx;
	s->gpr[HV_RDX] = r.rdx;
	s->gpr[HV_RBX] = r.rbx;
	s->gpr[HV_RSP] = r.rsp;
	s->gpr[HV_RBP] = r.rbp;
	s->gpr[HV_RSI] = r.rsi;
	s->gpr[HV_RDI] = r.rdi;
	s->gpr[HV_R8] = r.r8;
	s->gpr[HV_R9] = r.r9;
	s->gpr[HV_R10] = r.r10;
	s->gpr[HV_R11] = r.r11;
	s->gpr[HV_R12] = r.r12;
	s->gpr[HV_R13] = r.r13;
	s->gpr[HV_R14] = r.r14;
	s->gpr[HV_R15] = r.r15;
	s->rip = r.rip;
	s->rflags = r.rflags;
	s->fs_base = sr.fs.base;
	s->gs_base = sr.gs.base;
	err = msrs_access(k, false, &idx, &s->kernel_gs_base, 1);
	if (err)
		return err;
	return fpu_get(k, s);
}

/* Loads a backend-neutral state (at boot, and after a restore from either
 * backend): (re)writes the host area, the flat world's segments and control
 * registers, then the registers, KERNEL_GS_BASE and x87/SSE. Returns 0,
 * -EINVAL for a non-canonical RIP or segment base (the VM entry would fail),
 * or -errno. */
static int kvm_set_regs(struct hv_machine *m, const struct hv_cpu_state *s)
{
	struct hv_kvm *k = m->vcpu;
	struct kvm_sregs sr;
	uint32_t idx = MSR_KERNEL_GS_BASE;
	uint64_t kgs = s->kernel_gs_base;
	int err;

	if (!canonical(s->rip) || !canonical(s->fs_base) || !canonical(s->gs_base) ||
	    !canonical(s->kernel_gs_base))
		return -EINVAL;
	err = complete_io(k);
	if (err)
		return err;
	area_install(m, k);

	err = xioctl(k->vcpu_fd, KVM_GET_SREGS, &sr);
	if (err < 0)
		return err;
	flat_sregs(&sr, s);
	err = xioctl(k->vcpu_fd, KVM_SET_SREGS, &sr);
	if (err < 0)
		return err;

	struct kvm_regs r = {
		.rax = s->gpr[HV_RAX], .rbx = s->gpr[HV_RBX], .rcx = s->gpr[HV_RCX],
		.rdx = s->gpr[HV_RDX], .rsi = s->gpr[HV_RSI], .rdi = s->gpr[HV_RDI],
		.rsp = s->gpr[HV_RSP], .rbp = s->gpr[HV_RBP], .r8 = s->gpr[HV_R8],
		.r9 = s->gpr[HV_R9], .r10 = s->gpr[HV_R10], .r11 = s->gpr[HV_R11],
		.r12 = s->gpr[HV_R12], .r13 = s->gpr[HV_R13], .r14 = s->gpr[HV_R14],
		.r15 = s->gpr[HV_R15], .rip = s->rip,
		.rflags = (s->rflags & RFLAGS_KEEP) | RFLAGS_FIXED,
	};
	err = xioctl(k->vcpu_fd, KVM_SET_REGS, &r);
	if (err < 0)
		return err;
	err = msrs_access(k, true, &idx, &kgs, 1);
	if (err)
		return err;
	return fpu_set(k, s);
}

/* Merges KVM's dirty log of slot 0 (which it clears) into m->dirty. Safe
 * from another thread while the guest runs. Returns 0 or -errno. Cost: one
 * ioctl plus O(pages / 64). */
static int kvm_sync_dirty(struct hv_machine *m)
{
	struct hv_kvm *k = m->vcpu;
	struct kvm_dirty_log log;
	int err;

	memset(&log, 0, sizeof(log));
	log.slot = 0;
	pthread_mutex_lock(&k->dirty_lock);
	log.dirty_bitmap = k->dirty_log;
	err = xioctl(k->vm_fd, KVM_GET_DIRTY_LOG, &log);
	if (err >= 0) {
		for (size_t i = 0; i < m->dirty_words; i++)
			if (k->dirty_log[i])
				atomic_fetch_or_explicit(&m->dirty[i], k->dirty_log[i],
							 memory_order_relaxed);
		err = 0;
	}
	pthread_mutex_unlock(&k->dirty_lock);
	return err;
}

/* Host writes into guest RAM need nothing here: KVM reads guest memory
 * through the same mapping, and there is no translation cache to drop. */
static void kvm_ram_written(struct hv_machine *m, uint64_t gpa, uint64_t len)
{
	(void)m;
	(void)gpa;
	(void)len;
}

/* ---- is this KVM usable? ---------------------------------------------- */

/* What an ABI v1 guest needs of the CPU, in a few instructions: x87 and SSE
 * (some hosts' /dev/kvm, e.g. a paravirtual PVM one, cannot run them in a
 * guest like ours), a hypercall `out`, and an exception delivered through
 * the host area's IDT to its stub (ud2, so #UD). Checked against GNU as. */
static const uint8_t probe_code[] = {
	0xdb, 0xe3,                   /* fninit */
	0xd9, 0xe8,                   /* fld1 */
	0xdd, 0xd8,                   /* fstp %st(0) */
	0x0f, 0x57, 0xc0,             /* xorps %xmm0,%xmm0 */
	0x31, 0xc0,                   /* xor %eax,%eax: PV_HC_ABI_VERSION */
	0xba, PV_HC_PORT & 0xff, PV_HC_PORT >> 8, 0x00, 0x00, /* mov $PV_HC_PORT,%edx */
	0xef,                         /* out %eax,(%dx) */
	0xeb, 0x00,                   /* jmp 1f; 1: */
	0x0f, 0x0b,                   /* ud2 */
};
#define PROBE_UD2 (sizeof(probe_code) - 2)

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool probe_ok;

/* Boots probe_code in a 2 MiB machine of its own, through this backend's own
 * create/set_regs/run, and records whether it ended as it must: one
 * hypercall, then an illegal-instruction stop at the ud2. */
static void kvm_probe(void)
{
	struct hv_machine *m = calloc(1, sizeof(*m));
	struct hv_cpu_state s;

	if (!m)
		return;
	m->mem_size = PV_MEM_MIN;
	m->npages = m->mem_size / PV_PAGE_SIZE;
	m->dirty_words = (m->npages + 63) / 64;
	m->budget_ns = UINT64_MAX; /* the deadline below bounds the run */
	m->ram = mmap(NULL, m->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->ram == MAP_FAILED)
		goto out_free;
	m->dirty = calloc(m->dirty_words, sizeof(*m->dirty));
	if (!m->dirty)
		goto out_unmap_ram;
	if (kvm_create(m))
		goto out_free_dirty;
	memcpy(m->ram + PV_IMAGE_MIN_GPA, probe_code, sizeof(probe_code));
	hv_cpu_state_boot(&s, PV_IMAGE_MIN_GPA, m->mem_size);
	if (kvm_set_regs(m, &s) == 0) {
		for (int i = 0; i < 4 && m->stop.kind == HV_STOP_NONE; i++) {
			atomic_store(&m->request, 0);
			if (kvm_run(m, hv_now_ns() + 100000000ull))
				break;
		}
	}
	probe_ok = m->stop.kind == HV_STOP_ILLEGAL_INSN &&
		   m->stop.addr == PV_IMAGE_MIN_GPA + PROBE_UD2 && m->hypercalls == 1;
	/* The one place libpvhv prints: asked for, to tell why kvm was refused. */
	if (getenv("PVHA_KVM_DEBUG"))
		fprintf(stderr, "kvm probe: %s: %s (%s, addr 0x%llx, %llu hypercalls)\n",
			probe_ok ? "usable" : "refused", m->stop.reason, hv_stop_kind_name(m->stop.kind),
			(unsigned long long)m->stop.addr, (unsigned long long)m->hypercalls);
	kvm_destroy(m);
out_free_dirty:
	free((void *)m->dirty);
out_unmap_ram:
	munmap(m->ram, m->mem_size);
out_free:
	free(m);
}

/* True when /dev/kvm opens, speaks API 12, and runs the probe guest as an
 * ABI v1 guest must run. The probe (one small VM, a few ms) runs once per
 * process; the answer is kept. */
bool hv_kvm_available(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return false;
	int version = ioctl(fd, KVM_GET_API_VERSION, 0);
	close(fd);
	if (version != KVM_API_VERSION)
		return false;
	pthread_once(&probe_once, kvm_probe);
	return probe_ok;
}

const struct hv_vcpu_ops hv_vcpu_kvm_ops = {
	.name = "kvm",
	.create = kvm_create,
	.destroy = kvm_destroy,
	.run = kvm_run,
	.get_regs = kvm_get_regs,
	.set_regs = kvm_set_regs,
	.sync_dirty = kvm_sync_dirty,
	.ram_written = kvm_ram_written,
};
