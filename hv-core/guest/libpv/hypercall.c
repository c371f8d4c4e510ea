/* libpv: one function per ABI v1 hypercall (the v2 socket calls are in net.c). */
#include "pv.h"

/* Set by start.S before main runs; read through pv_boot_info(). */
extern const struct pv_boot_info *pv_boot_info_ptr;
const struct pv_boot_info *pv_boot_info_ptr;

const struct pv_boot_info *pv_boot_info(void)
{
	return pv_boot_info_ptr;
}

int64_t pv_abi_version(void)
{
	return pv_hypercall0(PV_HC_ABI_VERSION);
}

uint64_t pv_clock_mono(void)
{
	return (uint64_t)pv_hypercall0(PV_HC_CLOCK_MONO);
}

uint64_t pv_clock_wall(void)
{
	return (uint64_t)pv_hypercall0(PV_HC_CLOCK_WALL);
}

int64_t pv_sleep_until(uint64_t mono_ns)
{
	return pv_hypercall1(PV_HC_SLEEP_UNTIL, mono_ns);
}

int64_t pv_sleep_ms(uint64_t ms)
{
	return pv_sleep_until(pv_clock_mono() + ms * 1000000u);
}

int64_t pv_yield(void)
{
	return pv_hypercall0(PV_HC_YIELD);
}

int64_t pv_disk_read(uint64_t off, void *buf, uint64_t len)
{
	return pv_hypercall3(PV_HC_DISK_READ, off, (uint64_t)(uintptr_t)buf, len);
}

int64_t pv_disk_write(uint64_t off, const void *buf, uint64_t len)
{
	return pv_hypercall3(PV_HC_DISK_WRITE, off, (uint64_t)(uintptr_t)buf, len);
}

int64_t pv_disk_flush(void)
{
	return pv_hypercall0(PV_HC_DISK_FLUSH);
}

int64_t pv_heartbeat(uint64_t seq)
{
	return pv_hypercall1(PV_HC_HEARTBEAT, seq);
}

_Noreturn void pv_exit(int code)
{
	pv_console_flush();
	pv_hypercall1(PV_HC_EXIT, (uint64_t)(code & 0xff));
	/* A v1 host never returns from exit; if one does, stop here. */
	for (;;)
		__asm__ volatile("hlt");
}

const char *pv_strerror(int64_t err)
{
	switch (err) {
	case 0: return "ok";
	case -PV_ENOENT: return "ENOENT";
	case -PV_EIO: return "EIO";
	case -PV_ENODEV: return "ENODEV";
	case -PV_EINVAL: return "EINVAL";
	case -PV_ENOSPC: return "ENOSPC";
	case -PV_EROFS: return "EROFS";
	case -PV_EINTR: return "EINTR";
	case -PV_EBADF: return "EBADF";
	case -PV_EAGAIN: return "EAGAIN";
	case -PV_ENOMEM: return "ENOMEM";
	case -PV_EACCES: return "EACCES";
	case -PV_EMFILE: return "EMFILE";
	case -PV_EPIPE: return "EPIPE";
	case -PV_EOPNOTSUPP: return "EOPNOTSUPP";
	case -PV_EADDRINUSE: return "EADDRINUSE";
	case -PV_EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case -PV_ENETDOWN: return "ENETDOWN";
	case -PV_ENETUNREACH: return "ENETUNREACH";
	case -PV_ECONNABORTED: return "ECONNABORTED";
	case -PV_ECONNRESET: return "ECONNRESET";
	case -PV_ENOBUFS: return "ENOBUFS";
	case -PV_ENOTCONN: return "ENOTCONN";
	case -PV_ETIMEDOUT: return "ETIMEDOUT";
	case -PV_ECONNREFUSED: return "ECONNREFUSED";
	case -PV_EHOSTUNREACH: return "EHOSTUNREACH";
	case -PV_EINPROGRESS: return "EINPROGRESS";
	default: return err < 0 ? "error" : "ok";
	}
}
