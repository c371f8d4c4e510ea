/*
 * The tcg backend: the software CPU on Unicorn 2.0.1 (Debian's libunicorn).
 *
 * Unicorn's quirks decide the shape of this file (FACTS.md has the measurements):
 *  - Guest RAM is our own mmap, mapped into Unicorn read-write and then
 *    write-protected with uc_mem_protect for good. Every guest store then
 *    reaches hook_write_prot, which marks the page dirty and performs the store
 *    on host memory itself (Unicorn discards it). This is the dirty tracking, and
 *    it is also ~4x faster than Unicorn 2.0.1's own store path here (35 ns vs
 *    147 ns), which runs a code-invalidation check on every store.
 *  - Because Unicorn no longer sees our stores, a store into a page that holds
 *    translated code must drop that code from its cache: hook_block records
 *    which pages ever held a block, and stores there call uc_ctl_remove_cache.
 *  - uc_emu_stop is only ever called from the block hook (at a block boundary);
 *    elsewhere it can re-run part of a block. A hypercall sets m->request and
 *    the guest's `jmp 1f` after its `out` ends the block, so the next block hook
 *    stops cleanly with RIP at the next instruction.
 *  - The run deadline and the runaway budget are checked every 1024 blocks
 *    (hv_check_point); never Unicorn's timeout argument.
 *  - Unicorn's software TLB starts at 256 entries (1 MiB of guest memory) and
 *    only grows when it is flushed while well used; nothing in a guest's life
 *    flushes it, and 2.0.1 has no call that does. A guest whose working set
 *    is larger (kvstore with 100,000 keys) then refills an entry on ~3 of its
 *    memory accesses per request, each a walk through Unicorn's memory map.
 *    grow_tlb maps and unmaps a page outside guest RAM at most every 50 ms
 *    between runs, which flushes the TLB and lets it double as far as the
 *    working set needs (under redis-benchmark GET: 3.7 -> 0.8 refills per
 *    request, the rest being the refills after each flush).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <unicorn/unicorn.h>

#include "internal.h"

#define MSR_KERNEL_GS_BASE 0xc0000102u
#define CHECK_EVERY_BLOCKS 1024u
#define TLB_FLUSH_EVERY_NS (50u * 1000u * 1000u)
#define TLB_FLUSH_PAGE (1ull << 46) /* far above any guest RAM */
_Static_assert(TLB_FLUSH_PAGE >= PV_MEM_MAX, "the TLB flush page must lie outside guest RAM");

struct tcg {
	uc_engine *uc;
	uint64_t *code;         /* one bit per page that held a translated block */
	uint64_t code_page;     /* a page whose bit is set, UINT64_MAX none */
	uint64_t deadline;
	unsigned blocks;
	bool stopped_by_us;     /* uc_emu_stop came from hook_block */
	bool got_intr;
	uint32_t intno;
	uc_mem_type fault_type; /* set by hook_unmapped */
	uint64_t fault_addr;
	bool fault;
	uint64_t tlb_flushed_ns; /* the last time grow_tlb flushed */
};

static bool page_has_code(const struct tcg *t, uint64_t page)
{
	return t->code[page / 64] & (1ull << (page % 64));
}

static void drop_code(struct hv_machine *m, uint64_t gpa, uint64_t len)
{
	struct tcg *t = m->vcpu;
	if (len == 0 || gpa >= m->mem_size)
		return;
	uint64_t first = gpa / PV_PAGE_SIZE, last = (gpa + len - 1) / PV_PAGE_SIZE;
	for (uint64_t p = first; p <= last && p < m->npages; p++) {
		if (page_has_code(t, p)) {
			uc_ctl_remove_cache(t->uc, gpa, gpa + len);
			return;
		}
	}
}

/* Records that pages p to q (q = p or p + 1) hold translated code. */
static void note_code(struct hv_machine *m, struct tcg *t, uint64_t p, uint64_t q)
{
	if (p >= m->npages)
		return;
	t->code[p / 64] |= 1ull << (p % 64);
	if (q != p && q < m->npages)
		t->code[q / 64] |= 1ull << (q % 64);
	/* bits are never cleared: a block wholly in page p needs no look again */
	t->code_page = q == p ? p : UINT64_MAX;
}

static void hook_block(uc_engine *uc, uint64_t addr, uint32_t size, void *ud)
{
	struct hv_machine *m = ud;
	struct tcg *t = m->vcpu;

	/* Runs before every block: most lie wholly in the page of the one before. */
	uint64_t p = addr / PV_PAGE_SIZE, q = (addr + (size ? size - 1 : 0)) / PV_PAGE_SIZE;
	if (p != t->code_page || q != p)
		note_code(m, t, p, q);
	if (atomic_load_explicit(&m->request, memory_order_relaxed) ||
	    (++t->blocks % CHECK_EVERY_BLOCKS == 0 && hv_check_point(m, t->deadline))) {
		t->stopped_by_us = true;
		uc_emu_stop(uc);
	}
}

/* Marks page p dirty for a guest store. While the guest runs, only this
 * (the vCPU's) thread sets dirty bits and the collector only takes them
 * (hv_machine_dirty_collect: an acquiring exchange to 0), so a plain load and
 * a releasing store do, with no locked instruction (which cost ~10 % of a
 * busy guest's CPU). The store is released after the RAM write: a collector
 * that takes the bit then reads the new bytes; one that took the word before
 * finds the bit set again. Writing back bits it took meanwhile only sends
 * those pages once more. */
static inline void mark_stored(struct hv_machine *m, uint64_t p)
{
	_Atomic uint64_t *w = &m->dirty[p / 64];
	uint64_t bit = 1ull << (p % 64);
	atomic_store_explicit(w, atomic_load_explicit(w, memory_order_relaxed) | bit,
			      memory_order_release);
}

static bool hook_write_prot(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
			    int64_t value, void *ud)
{
	struct hv_machine *m = ud;
	struct tcg *t = m->vcpu;
	(void)type;
	if (size <= 0 || size > 8 || !hv_range_ok(m, addr, (uint64_t)size))
		return false;
	memcpy(m->ram + addr, &value, (size_t)size);
	/* size <= 8: one page, or two */
	uint64_t p = addr / PV_PAGE_SIZE, q = (addr + (uint64_t)size - 1) / PV_PAGE_SIZE;
	mark_stored(m, p);
	if (q != p)
		mark_stored(m, q);
	if (page_has_code(t, p) || page_has_code(t, q))
		uc_ctl_remove_cache(uc, addr, addr + (uint64_t)size);
	return true;
}

static bool hook_unmapped(uc_engine *uc, uc_mem_type type, uint64_t addr, int size,
			  int64_t value, void *ud)
{
	struct hv_machine *m = ud;
	struct tcg *t = m->vcpu;
	(void)uc;
	(void)size;
	(void)value;
	if (!t->fault) {
		t->fault = true;
		t->fault_type = type;
		t->fault_addr = addr;
	}
	return false;
}

static void hook_intr(uc_engine *uc, uint32_t intno, void *ud)
{
	struct hv_machine *m = ud;
	struct tcg *t = m->vcpu;
	if (!t->got_intr) {
		t->got_intr = true;
		t->intno = intno;
	}
	/* The guest is dead: a re-run of part of this block does not matter. */
	uc_emu_stop(uc);
}

static void hook_out(uc_engine *uc, uint32_t port, int size, uint32_t value, void *ud)
{
	static const int regs[5] = { UC_X86_REG_RAX, UC_X86_REG_RDI, UC_X86_REG_RSI,
				     UC_X86_REG_R10, UC_X86_REG_R8 };
	struct hv_machine *m = ud;
	uint64_t v[5];
	void *vp[5] = { &v[0], &v[1], &v[2], &v[3], &v[4] };
	(void)value;

	if (port != PV_HC_PORT || size != 4) {
		hv_machine_stop(m, HV_STOP_BAD_HYPERCALL, port, 0,
				"bad hypercall: out to port 0x%x of size %d (hypercalls use port 0x%x, 4 bytes)",
				port, size, PV_HC_PORT);
		return;
	}
	uc_reg_read_batch(uc, (int *)regs, vp, 5);
	uint64_t ret = hv_hypercall(m, v[0], &v[1]);
	uc_reg_write(uc, UC_X86_REG_RAX, &ret);
}

static uint32_t hook_in(uc_engine *uc, uint32_t port, int size, void *ud)
{
	struct hv_machine *m = ud;
	(void)uc;
	hv_machine_stop(m, HV_STOP_BAD_HYPERCALL, port, 0,
			"bad hypercall: in from port 0x%x of size %d (ABI v1 has no input ports)",
			port, size);
	return 0;
}

static int uc_to_errno(uc_err e)
{
	return e == UC_ERR_NOMEM ? -ENOMEM : -EIO;
}

static int tcg_create(struct hv_machine *m)
{
	struct tcg *t = calloc(1, sizeof(*t));
	uc_hook h;
	uc_err e;
	int err = -EIO;

	if (!t)
		return -ENOMEM;
	t->code = calloc(m->dirty_words, sizeof(uint64_t));
	if (!t->code) {
		err = -ENOMEM;
		goto err_free;
	}
	e = uc_open(UC_ARCH_X86, UC_MODE_64, &t->uc);
	if (e != UC_ERR_OK) {
		err = uc_to_errno(e);
		goto err_free_code;
	}
	t->code_page = UINT64_MAX;
	m->vcpu = t;
	if (uc_mem_map_ptr(t->uc, 0, m->mem_size, UC_PROT_ALL, m->ram) != UC_ERR_OK ||
	    uc_mem_protect(t->uc, 0, m->mem_size, UC_PROT_READ | UC_PROT_EXEC) != UC_ERR_OK)
		goto err_close;
	if (uc_hook_add(t->uc, &h, UC_HOOK_BLOCK, (void *)hook_block, m, 1, 0) ||
	    uc_hook_add(t->uc, &h, UC_HOOK_MEM_WRITE_PROT, (void *)hook_write_prot, m, 1, 0) ||
	    uc_hook_add(t->uc, &h, UC_HOOK_MEM_UNMAPPED, (void *)hook_unmapped, m, 1, 0) ||
	    uc_hook_add(t->uc, &h, UC_HOOK_INTR, (void *)hook_intr, m, 1, 0) ||
	    uc_hook_add(t->uc, &h, UC_HOOK_INSN, (void *)hook_out, m, 1, 0, UC_X86_INS_OUT) ||
	    uc_hook_add(t->uc, &h, UC_HOOK_INSN, (void *)hook_in, m, 1, 0, UC_X86_INS_IN))
		goto err_close;
	return 0;

err_close:
	uc_close(t->uc);
	m->vcpu = NULL;
err_free_code:
	free(t->code);
err_free:
	free(t);
	return err;
}

static void tcg_destroy(struct hv_machine *m)
{
	struct tcg *t = m->vcpu;
	if (!t)
		return;
	uc_close(t->uc);
	free(t->code);
	free(t);
	m->vcpu = NULL;
}

static const char *access_name(uc_mem_type type)
{
	switch (type) {
	case UC_MEM_READ_UNMAPPED: return "read from";
	case UC_MEM_WRITE_UNMAPPED: return "write to";
	case UC_MEM_FETCH_UNMAPPED: return "instruction fetch from";
	default: return "access to";
	}
}

/* See the header: a TLB flush, so that Unicorn may resize its TLB. */
static void grow_tlb(struct tcg *t)
{
	uint64_t now = hv_now_ns();
	if (now - t->tlb_flushed_ns < TLB_FLUSH_EVERY_NS)
		return;
	t->tlb_flushed_ns = now;
	if (uc_mem_map(t->uc, TLB_FLUSH_PAGE, PV_PAGE_SIZE, UC_PROT_READ) == UC_ERR_OK)
		uc_mem_unmap(t->uc, TLB_FLUSH_PAGE, PV_PAGE_SIZE);
}

static int tcg_run(struct hv_machine *m, uint64_t deadline_ns)
{
	struct tcg *t = m->vcpu;
	uint64_t rip;

	grow_tlb(t);

	t->deadline = deadline_ns;
	t->stopped_by_us = false;
	t->fault = false;
	t->got_intr = false;
	uc_reg_read(t->uc, UC_X86_REG_RIP, &rip);
	uc_err e = uc_emu_start(t->uc, rip, UINT64_MAX, 0, 0);
	uc_reg_read(t->uc, UC_X86_REG_RIP, &rip);

	if (m->stop.kind != HV_STOP_NONE)
		return 0; /* a hypercall stopped it; that reason stands */
	if (t->got_intr) {
		uint32_t v = t->intno;
		if (v == 6)
			hv_machine_stop(m, HV_STOP_ILLEGAL_INSN, v, rip,
					"illegal instruction at rip 0x%llx", (unsigned long long)rip);
		else
			hv_machine_stop(m, HV_STOP_CPU_EXCEPTION, v, rip, "%s (vector %u) at rip 0x%llx",
					hv_vector_name(v), v, (unsigned long long)rip);
		return 0;
	}
	switch (e) {
	case UC_ERR_OK:
		if (t->stopped_by_us)
			return 0;
		if (rip > 0 && rip <= m->mem_size && m->ram[rip - 1] == 0xf4) {
			hv_machine_stop(m, HV_STOP_HALT, 0, rip - 1,
					"halted: hlt at rip 0x%llx with nothing to wake the guest",
					(unsigned long long)(rip - 1));
			return 0;
		}
		hv_machine_stop(m, HV_STOP_INTERNAL, 0, rip, "emulation ended at rip 0x%llx",
				(unsigned long long)rip);
		return 0;
	case UC_ERR_READ_UNMAPPED:
	case UC_ERR_WRITE_UNMAPPED:
	case UC_ERR_FETCH_UNMAPPED:
	case UC_ERR_FETCH_PROT:
	case UC_ERR_READ_PROT:
	case UC_ERR_WRITE_PROT: {
		uint64_t addr = t->fault ? t->fault_addr : rip;
		uc_mem_type type = t->fault ? t->fault_type
				   : e == UC_ERR_FETCH_UNMAPPED ? UC_MEM_FETCH_UNMAPPED
				   : e == UC_ERR_WRITE_UNMAPPED ? UC_MEM_WRITE_UNMAPPED
								: UC_MEM_READ_UNMAPPED;
		hv_machine_stop(m, HV_STOP_MEMORY_FAULT, 0, addr,
				"memory fault: %s unmapped address 0x%llx at rip 0x%llx (RAM ends at 0x%llx)",
				access_name(type), (unsigned long long)addr, (unsigned long long)rip,
				(unsigned long long)m->mem_size);
		return 0;
	}
	case UC_ERR_INSN_INVALID:
		hv_machine_stop(m, HV_STOP_ILLEGAL_INSN, 6, rip, "illegal instruction at rip 0x%llx",
				(unsigned long long)rip);
		return 0;
	case UC_ERR_EXCEPTION:
		hv_machine_stop(m, HV_STOP_CPU_EXCEPTION, -1, rip, "cpu exception at rip 0x%llx",
				(unsigned long long)rip);
		return 0;
	default:
		hv_machine_stop(m, HV_STOP_INTERNAL, e, rip, "unicorn: %s at rip 0x%llx",
				uc_strerror(e), (unsigned long long)rip);
		return 0;
	}
}

/* Registers in the order of struct hv_cpu_state's scalar fields. */
static const int gpr_ids[16] = {
	UC_X86_REG_RAX, UC_X86_REG_RCX, UC_X86_REG_RDX, UC_X86_REG_RBX,
	UC_X86_REG_RSP, UC_X86_REG_RBP, UC_X86_REG_RSI, UC_X86_REG_RDI,
	UC_X86_REG_R8,  UC_X86_REG_R9,  UC_X86_REG_R10, UC_X86_REG_R11,
	UC_X86_REG_R12, UC_X86_REG_R13, UC_X86_REG_R14, UC_X86_REG_R15,
};

static int tcg_get_regs(struct hv_machine *m, struct hv_cpu_state *s)
{
	struct tcg *t = m->vcpu;
	void *vp[16];
	uc_engine *uc = t->uc;

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 16; i++)
		vp[i] = &s->gpr[i];
	if (uc_reg_read_batch(uc, (int *)gpr_ids, vp, 16))
		return -EIO;
	uint64_t fcw = 0, fsw = 0, ftag = 0, mxcsr = 0;
	uc_x86_msr msr = { .rid = MSR_KERNEL_GS_BASE };
	if (uc_reg_read(uc, UC_X86_REG_RIP, &s->rip) || uc_reg_read(uc, UC_X86_REG_EFLAGS, &s->rflags) ||
	    uc_reg_read(uc, UC_X86_REG_FS_BASE, &s->fs_base) ||
	    uc_reg_read(uc, UC_X86_REG_GS_BASE, &s->gs_base) || uc_reg_read(uc, UC_X86_REG_MSR, &msr) ||
	    uc_reg_read(uc, UC_X86_REG_MXCSR, &mxcsr) || uc_reg_read(uc, UC_X86_REG_FPCW, &fcw) ||
	    uc_reg_read(uc, UC_X86_REG_FPSW, &fsw) || uc_reg_read(uc, UC_X86_REG_FPTAG, &ftag))
		return -EIO;
	s->kernel_gs_base = msr.value;
	s->mxcsr = (uint32_t)mxcsr;
	s->fcw = (uint16_t)fcw;
	s->fsw = (uint16_t)fsw;
	/* Unicorn gives the full tag word, computed from the registers (2 bits a
	 * physical register: 0 valid, 1 zero, 2 special, 3 empty); on write it
	 * keeps only empty (3) or not. */
	for (int i = 0; i < 8; i++)
		if (((ftag >> (2 * i)) & 3) != 3)
			s->ftw |= (uint8_t)(1u << i);
	for (int i = 0; i < 16; i++)
		if (uc_reg_read(uc, UC_X86_REG_XMM0 + i, s->xmm[i]))
			return -EIO;
	/* ST0..7 are relative to TOP, 10 bytes each (mantissa, then exponent). */
	for (int i = 0; i < 8; i++) {
		uint8_t f[16] = { 0 };
		if (uc_reg_read(uc, UC_X86_REG_ST0 + i, f))
			return -EIO;
		memcpy(s->st[i], f, 10);
	}
	return 0;
}

static int tcg_set_regs(struct hv_machine *m, const struct hv_cpu_state *s)
{
	struct tcg *t = m->vcpu;
	void *vp[16];
	uc_engine *uc = t->uc;

	for (int i = 0; i < 16; i++)
		vp[i] = (void *)&s->gpr[i];
	if (uc_reg_write_batch(uc, (int *)gpr_ids, vp, 16))
		return -EIO;
	uint64_t fcw = s->fcw, fsw = s->fsw, mxcsr = s->mxcsr, ftag = 0;
	for (int i = 0; i < 8; i++)
		if (!(s->ftw & (1u << i)))
			ftag |= 3ull << (2 * i);
	uc_x86_msr msr = { .rid = MSR_KERNEL_GS_BASE, .value = s->kernel_gs_base };
	/* FPSW (which holds TOP) before ST0..7: ST(i) is relative to TOP. */
	if (uc_reg_write(uc, UC_X86_REG_RIP, &s->rip) || uc_reg_write(uc, UC_X86_REG_EFLAGS, &s->rflags) ||
	    uc_reg_write(uc, UC_X86_REG_FS_BASE, &s->fs_base) ||
	    uc_reg_write(uc, UC_X86_REG_GS_BASE, &s->gs_base) || uc_reg_write(uc, UC_X86_REG_MSR, &msr) ||
	    uc_reg_write(uc, UC_X86_REG_MXCSR, &mxcsr) || uc_reg_write(uc, UC_X86_REG_FPCW, &fcw) ||
	    uc_reg_write(uc, UC_X86_REG_FPSW, &fsw))
		return -EIO;
	for (int i = 0; i < 16; i++)
		if (uc_reg_write(uc, UC_X86_REG_XMM0 + i, s->xmm[i]))
			return -EIO;
	for (int i = 0; i < 8; i++) {
		uint8_t f[16] = { 0 };
		memcpy(f, s->st[i], 10);
		if (uc_reg_write(uc, UC_X86_REG_ST0 + i, f))
			return -EIO;
	}
	if (uc_reg_write(uc, UC_X86_REG_FPTAG, &ftag))
		return -EIO;
	return 0;
}

static void tcg_ram_written(struct hv_machine *m, uint64_t gpa, uint64_t len)
{
	drop_code(m, gpa, len);
}

const struct hv_vcpu_ops hv_vcpu_tcg_ops = {
	.name = "tcg",
	.create = tcg_create,
	.destroy = tcg_destroy,
	.run = tcg_run,
	.get_regs = tcg_get_regs,
	.set_regs = tcg_set_regs,
	.sync_dirty = NULL, /* hook_write_prot marks m->dirty directly */
	.ram_written = tcg_ram_written,
};
