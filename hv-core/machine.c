/* struct hv_machine: RAM, backend choice, the run loop, clocks, stop reasons,
 * dirty bitmap. Device logic is in hypercall.c, the CPU in vcpu_*.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

uint64_t hv_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t hv_guest_mono(const struct hv_machine *m)
{
	if (m->clock_paused)
		return m->paused_guest_ns;
	return (uint64_t)((int64_t)hv_now_ns() + m->clock_offset);
}

int hv_backend_parse(const char *s, enum hv_backend_kind *out)
{
	if (!s)
		return -EINVAL;
	if (strcmp(s, "auto") == 0)
		*out = HV_BACKEND_AUTO;
	else if (strcmp(s, "tcg") == 0)
		*out = HV_BACKEND_TCG;
	else if (strcmp(s, "kvm") == 0)
		*out = HV_BACKEND_KVM;
	else
		return -EINVAL;
	return 0;
}

#ifndef PVHV_HAVE_KVM
bool hv_kvm_available(void)
{
	return false;
}
#endif

const char *hv_stop_kind_name(enum hv_stop_kind kind)
{
	switch (kind) {
	case HV_STOP_NONE: return "none";
	case HV_STOP_EXIT: return "exit";
	case HV_STOP_BAD_HYPERCALL: return "bad-hypercall";
	case HV_STOP_MEMORY_FAULT: return "memory-fault";
	case HV_STOP_ILLEGAL_INSN: return "illegal-instruction";
	case HV_STOP_CPU_EXCEPTION: return "cpu-exception";
	case HV_STOP_HALT: return "halt";
	case HV_STOP_RUNAWAY: return "runaway";
	case HV_STOP_FENCED: return "fenced";
	case HV_STOP_KILLED: return "killed";
	case HV_STOP_INTERNAL: return "internal";
	}
	return "unknown";
}

const char *hv_vector_name(uint32_t v)
{
	static const char *const names[] = {
		"divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
		"invalid opcode", "device not available", "double fault", "coprocessor",
		"invalid TSS", "segment not present", "stack fault", "general protection",
		"page fault", "reserved", "x87 floating-point error", "alignment check",
		"machine check", "SIMD floating-point error",
	};
	return v < sizeof(names) / sizeof(names[0]) ? names[v] : "interrupt";
}

static int pick_backend(enum hv_backend_kind kind, const struct hv_vcpu_ops **ops)
{
	switch (kind) {
	case HV_BACKEND_TCG:
		*ops = &hv_vcpu_tcg_ops;
		return 0;
	case HV_BACKEND_KVM:
#ifdef PVHV_HAVE_KVM
		if (!hv_kvm_available())
			return -ENODEV;
		*ops = &hv_vcpu_kvm_ops;
		return 0;
#else
		return -ENODEV;
#endif
	case HV_BACKEND_AUTO:
#ifdef PVHV_HAVE_KVM
		if (hv_kvm_available()) {
			*ops = &hv_vcpu_kvm_ops;
			return 0;
		}
#endif
		*ops = &hv_vcpu_tcg_ops;
		return 0;
	}
	return -EINVAL;
}

int hv_machine_create(const struct hv_config *cfg, struct hv_machine **out)
{
	int err;
	*out = NULL;
	if (!PV_MEM_SIZE_OK(cfg->mem_size))
		return -EINVAL;
	if (cfg->cmdline && strlen(cfg->cmdline) >= PV_CMDLINE_MAX)
		return -E2BIG;

	struct hv_machine *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = pick_backend(cfg->backend, &m->ops);
	if (err)
		goto err_free;
	m->mem_size = cfg->mem_size;
	m->npages = cfg->mem_size / PV_PAGE_SIZE;
	m->ram = mmap(NULL, m->mem_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m->ram == MAP_FAILED) {
		err = -errno;
		goto err_free;
	}
	m->dirty_words = (m->npages + 63) / 64;
	m->dirty = calloc(m->dirty_words, sizeof(*m->dirty));
	if (!m->dirty) {
		err = -ENOMEM;
		goto err_unmap_ram;
	}
	m->disk = cfg->disk;
	m->net = cfg->net;
	m->abi_version = PV_ABI_VERSION; /* until an image or a state says */
	memcpy(m->guest_id, cfg->guest_id, sizeof(m->guest_id));
	if (cfg->cmdline)
		memcpy(m->cmdline, cfg->cmdline, strlen(cfg->cmdline) + 1);
	m->console = cfg->console;
	m->console_ctx = cfg->console_ctx;
	m->budget_ns = cfg->budget_ns ? cfg->budget_ns : HV_DEFAULT_BUDGET_NS;
	m->clock_paused = true;
	err = m->ops->create(m);
	if (err)
		goto err_free_dirty;
	*out = m;
	return 0;

err_free_dirty:
	free((void *)m->dirty);
err_unmap_ram:
	munmap(m->ram, m->mem_size);
err_free:
	free(m);
	return err;
}

void hv_machine_destroy(struct hv_machine *m)
{
	if (!m)
		return;
	m->ops->destroy(m);
	free((void *)m->dirty);
	munmap(m->ram, m->mem_size);
	free(m);
}

void hv_cpu_state_boot(struct hv_cpu_state *s, uint64_t entry, uint64_t stack_top)
{
	memset(s, 0, sizeof(*s));
	s->rip = entry;
	s->gpr[HV_RSP] = stack_top;
	s->gpr[HV_RDI] = PV_BOOT_INFO_GPA;
	s->rflags = 0x2;
	s->mxcsr = 0x1f80;
	s->fcw = 0x037f;
}

int hv_machine_load_elf(struct hv_machine *m, const void *image, size_t size)
{
	struct hv_elf_image elf;
	char why[160];
	int err;

	if (m->loaded)
		return -EBUSY;
	err = hv_elf_parse(image, size, m->mem_size, &elf, why, sizeof(why));
	if (err) {
		snprintf(m->stop.reason, sizeof(m->stop.reason), "image: %s", why);
		return err;
	}
	for (unsigned i = 0; i < elf.nsegments; i++) {
		const struct hv_elf_segment *s = &elf.seg[i];
		memcpy(m->ram + s->gpa, (const uint8_t *)image + s->file_off, s->file_size);
		memset(m->ram + s->gpa + s->file_size, 0, s->mem_size - s->file_size);
		hv_mark_dirty(m, s->gpa, s->mem_size);
	}

	struct pv_boot_info *bi = (struct pv_boot_info *)(m->ram + PV_BOOT_INFO_GPA);
	memset(bi, 0, sizeof(*bi));
	bi->magic = PV_BOOT_MAGIC;
	bi->abi_version = elf.abi_version;
	bi->flags = elf.abi_version >= 2 && m->net ? PV_BOOT_F_NET : 0;
	bi->mem_size = m->mem_size;
	bi->disk_size = m->disk ? m->disk->size : 0;
	memcpy(bi->guest_id, m->guest_id, sizeof(bi->guest_id));
	bi->image_end = elf.end;
	bi->stack_top = m->mem_size;
	memcpy(bi->cmdline, m->cmdline, sizeof(bi->cmdline));
	hv_mark_dirty(m, PV_BOOT_INFO_GPA, sizeof(*bi));

	struct hv_cpu_state cpu;
	hv_cpu_state_boot(&cpu, elf.entry, bi->stack_top);
	err = m->ops->set_regs(m, &cpu);
	if (err)
		return err;
	m->abi_version = elf.abi_version;
	m->paused_guest_ns = 0;
	m->clock_paused = true;
	m->loaded = true;
	return 0;
}

void hv_machine_pause_clock(struct hv_machine *m)
{
	if (!m->clock_paused) {
		m->paused_guest_ns = hv_guest_mono(m);
		m->clock_paused = true;
	}
}

static void resume_clock(struct hv_machine *m)
{
	if (m->clock_paused) {
		m->clock_offset = (int64_t)m->paused_guest_ns - (int64_t)hv_now_ns();
		m->clock_paused = false;
	}
}

uint64_t hv_machine_wake_at(const struct hv_machine *m)
{
	uint64_t now = hv_now_ns();
	if (!m->sleeping)
		return now;
	/* host time = now + (sleep_until - guest now), saturating: a deadline
	 * of UINT64_MAX (or any beyond the host clock's range) is "never", and
	 * must not wrap into the past (a busy loop) */
	uint64_t guest_now = hv_guest_mono(m);
	if (m->sleep_until <= guest_now)
		return now;
	uint64_t left = m->sleep_until - guest_now;
	return left > UINT64_MAX - now ? UINT64_MAX : now + left;
}

size_t hv_machine_wait_fds(const struct hv_machine *m, struct pollfd *out, size_t max)
{
	if (!m->sleeping || !m->net_waiting)
		return 0;
	size_t n = m->nwait < max ? m->nwait : max;
	memcpy(out, m->wait_fds, n * sizeof(*out));
	return n;
}

/* Ends a sleep or a net_poll wait: the guest runs (and asks again). */
static void wake(struct hv_machine *m)
{
	m->sleeping = false;
	m->net_waiting = false;
	m->nwait = 0;
}

void hv_machine_kick(struct hv_machine *m)
{
	atomic_fetch_or(&m->request, HV_REQ_KICK);
}

void hv_machine_break_after(struct hv_machine *m, uint64_t n)
{
	m->break_after = n;
}

void hv_machine_stop(struct hv_machine *m, enum hv_stop_kind kind, int64_t code, uint64_t addr,
		     const char *fmt, ...)
{
	if (m->stop.kind == HV_STOP_NONE) {
		va_list ap;
		m->stop.kind = kind;
		m->stop.code = code;
		m->stop.addr = addr;
		va_start(ap, fmt);
		vsnprintf(m->stop.reason, sizeof(m->stop.reason), fmt, ap);
		va_end(ap);
	}
	atomic_fetch_or(&m->request, HV_REQ_STOP);
}

const struct hv_stop_info *hv_machine_stop_info(const struct hv_machine *m)
{
	return &m->stop;
}

/* Adds the guest run time since run_mark_ns to the runaway account, which a
 * hypercall since the last look resets. */
static void account_run_time(struct hv_machine *m, uint64_t now)
{
	if (m->hypercalls != m->hc_seen) {
		m->hc_seen = m->hypercalls;
		m->run_since_hc_ns = 0;
	}
	m->run_since_hc_ns += now - m->run_mark_ns;
	m->run_mark_ns = now;
}

bool hv_check_point(struct hv_machine *m, uint64_t deadline_ns)
{
	if (atomic_load_explicit(&m->request, memory_order_relaxed))
		return true;
	uint64_t now = hv_now_ns();
	account_run_time(m, now);
	if (m->run_since_hc_ns > m->budget_ns) {
		hv_machine_stop(m, HV_STOP_RUNAWAY, 0, 0,
				"runaway: no hypercall for %llu ms of guest time (budget %llu ms)",
				(unsigned long long)(m->run_since_hc_ns / 1000000),
				(unsigned long long)(m->budget_ns / 1000000));
		return true;
	}
	return now >= deadline_ns;
}

int hv_machine_run(struct hv_machine *m, uint64_t slice_ns, enum hv_run_result *res)
{
	*res = HV_RUN_STOPPED;
	if (m->stop.kind != HV_STOP_NONE)
		return 0;
	if (!m->loaded)
		return -ENOEXEC;
	resume_clock(m);
	if (m->sleeping) {
		if (hv_guest_mono(m) < m->sleep_until && !(m->net_waiting && hv_net_wait_ready(m))) {
			*res = HV_RUN_SLEEPING;
			return 0;
		}
		wake(m);
	}
	atomic_store(&m->request, 0);
	uint64_t now = hv_now_ns();
	m->run_mark_ns = now; /* time between runs is not the guest's */
	int err = m->ops->run(m, now + slice_ns);
	account_run_time(m, hv_now_ns());
	if (err) {
		hv_machine_stop(m, HV_STOP_INTERNAL, err, 0, "backend %s failed: %s", m->ops->name,
				strerror(-err));
		return err;
	}
	unsigned req = atomic_load(&m->request);
	if (m->stop.kind != HV_STOP_NONE)
		*res = HV_RUN_STOPPED;
	else if (req & HV_REQ_BREAK)
		*res = HV_RUN_BREAK;
	else if (m->sleeping && hv_guest_mono(m) < m->sleep_until)
		*res = HV_RUN_SLEEPING;
	else if (req & HV_REQ_YIELD)
		*res = HV_RUN_YIELDED;
	else
		*res = HV_RUN_PREEMPTED;
	return 0;
}

void hv_machine_get_stats(const struct hv_machine *m, struct hv_machine_stats *out)
{
	out->hypercalls = m->hypercalls;
	out->guest_mono_ns = hv_guest_mono(m);
	out->heartbeat_seq = m->heartbeat_seq;
	out->heartbeat_mono_ns = m->heartbeat_mono_ns;
	out->mem_size = m->mem_size;
	out->backend = m->ops->name;
	memcpy(out->guest_id, m->guest_id, sizeof(out->guest_id));
	out->disk = m->disk_stats;
}

uint8_t *hv_machine_ram(struct hv_machine *m)
{
	return m->ram;
}

uint64_t hv_machine_mem_size(const struct hv_machine *m)
{
	return m->mem_size;
}

int hv_machine_write_ram(struct hv_machine *m, uint64_t gpa, const void *src, size_t len)
{
	if (!hv_range_ok(m, gpa, len))
		return -EFAULT;
	memcpy(m->ram + gpa, src, len);
	hv_ram_written(m, gpa, len);
	return 0;
}

size_t hv_machine_dirty_words(const struct hv_machine *m)
{
	return m->dirty_words;
}

uint64_t hv_machine_dirty_collect(struct hv_machine *m, uint64_t *out)
{
	uint64_t count = 0;
	if (m->ops->sync_dirty)
		m->ops->sync_dirty(m);
	for (size_t i = 0; i < m->dirty_words; i++) {
		out[i] = atomic_exchange_explicit(&m->dirty[i], 0, memory_order_acquire);
		count += (uint64_t)__builtin_popcountll(out[i]);
	}
	return count;
}
