/*
 * libpv: the guest side of the pvha paravirtual ABI v1 (pvhv/abi.h).
 *
 * For freestanding guests linked with hv-core/guest/start.S and guest.ld (see
 * hv-core/guest/README.md). It offers the hypercalls as functions, a line-
 * buffered console with a small printf, the string functions gcc may call,
 * command-line parsing and whole-buffer disk I/O.
 *
 * Threading: a guest has one vCPU and no interrupts; nothing here is reentrant.
 * Errors: calls that can fail return >= 0 or a negative PV_E* value (the
 * hypercall's own result, or -PV_EIO for a short transfer).
 */
#ifndef PV_H
#define PV_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pvhv/abi.h"

/* Not part of the ABI (no hypercall returns it): libpv's own "absent". */
#define PV_ENOENT 2

/* ---- raw hypercalls ------------------------------------------------------
 * `out %eax, %dx` followed by `jmp 1f; 1:` so that every hypercall ends a
 * translation block (the software CPU relies on it). The argument registers
 * are treated as clobbered: the ABI promises only rax. */
static inline int64_t pv_hypercall4(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2,
				    uint64_t a3)
{
	register uint64_t rax __asm__("rax") = nr;
	register uint64_t rdi __asm__("rdi") = a0;
	register uint64_t rsi __asm__("rsi") = a1;
	register uint64_t r10 __asm__("r10") = a2;
	register uint64_t r8 __asm__("r8") = a3;
	__asm__ volatile("outl %%eax, %%dx\n\t"
			 "jmp 1f\n"
			 "1:"
			 : "+r"(rax), "+r"(rdi), "+r"(rsi), "+r"(r10), "+r"(r8)
			 : "d"((uint64_t)PV_HC_PORT)
			 : "memory", "cc");
	return (int64_t)rax;
}

static inline int64_t pv_hypercall0(uint64_t nr)
{
	return pv_hypercall4(nr, 0, 0, 0, 0);
}

static inline int64_t pv_hypercall1(uint64_t nr, uint64_t a0)
{
	return pv_hypercall4(nr, a0, 0, 0, 0);
}

static inline int64_t pv_hypercall2(uint64_t nr, uint64_t a0, uint64_t a1)
{
	return pv_hypercall4(nr, a0, a1, 0, 0);
}

static inline int64_t pv_hypercall3(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return pv_hypercall4(nr, a0, a1, a2, 0);
}

/* The guest's entry point, called by start.S; its return value is the exit
 * code. */
int main(const struct pv_boot_info *bi);

/* ---- hypercall wrappers (libpv/hypercall.c) ------------------------------ */

/* The host's ABI version (PV_ABI_VERSION for a v1 host). */
int64_t pv_abi_version(void);

/* Writes len bytes to the console, after whatever the line buffer holds;
 * splits writes above PV_CONSOLE_MAX. Returns len or a negative PV_E*. */
int64_t pv_console_write(const void *buf, uint64_t len);

/* Guest monotonic ns since boot (stops while the guest is paused). */
uint64_t pv_clock_mono(void);

/* Host wall clock, ns since the Unix epoch. */
uint64_t pv_clock_wall(void);

/* Sleeps until the monotonic clock reaches mono_ns. Returns 0 or -PV_E*. */
int64_t pv_sleep_until(uint64_t mono_ns);

/* Sleeps for ms milliseconds of monotonic time. */
int64_t pv_sleep_ms(uint64_t ms);

/* Gives the host a chance to run (and to save or migrate the guest). */
int64_t pv_yield(void);

/* One disk transfer of at most PV_DISK_IO_MAX bytes. Returns len or -PV_E*. */
int64_t pv_disk_read(uint64_t off, void *buf, uint64_t len);
int64_t pv_disk_write(uint64_t off, const void *buf, uint64_t len);

/* Returns 0 once every earlier write is durable, or -PV_E*. */
int64_t pv_disk_flush(void);

/* Tells the supervisor the guest is alive; seq is any increasing number. */
int64_t pv_heartbeat(uint64_t seq);

/* Flushes the console and ends the guest with code (0..255). */
_Noreturn void pv_exit(int code);

/* The boot-info page the guest was started with (saved by start.S). */
const struct pv_boot_info *pv_boot_info(void);

/* ---- console (libpv/console.c, libpv/format.c) ----------------------------
 * Output is buffered and written at every newline, when the buffer fills, by
 * pv_console_flush() and by pv_exit(). Formats: %d %i %u %x %X %p %s %c %%
 * with the l, ll and z modifiers, a width, the 0 and - flags, and %f / %.Nf
 * for doubles (N <= 9, default 6). */

int pv_putc(char c);
int pv_puts(const char *s); /* s and a newline */
int pv_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int pv_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Like C's: writes at most size bytes including the NUL, returns the length
 * the whole output would have. */
int pv_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int pv_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
void pv_console_flush(void);

/* The formatter behind all of the above: calls out(ctx, chunk, len) for each
 * piece of output. Returns the total length. */
typedef void (*pv_out_fn)(void *ctx, const char *s, size_t len);
int pv_vformat(pv_out_fn out, void *ctx, const char *fmt, va_list ap);

/* Writes the 36-character text form of a binary UUID and a NUL into out. */
void pv_uuid_format(const uint8_t id[16], char out[37]);

/* ---- strings (libpv/string.c) --------------------------------------------- */

void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

/* Parses a whole string as an unsigned decimal or 0x-hex number. Returns 0, or
 * -PV_EINVAL when s is empty, has other characters or overflows. */
int pv_parse_u64(const char *s, uint64_t *out);

/* ---- command line (libpv/cmdline.c) ---------------------------------------
 * boot_info->cmdline is a space-separated list of key=value (or bare key)
 * words; the first word with the key wins. O(length of the command line). */

/* Copies the value of key into buf (NUL-terminated). Returns the value's
 * length, -PV_ENOENT when the key is absent, -PV_EINVAL when it does not fit. */
int pv_cmdline_get(const struct pv_boot_info *bi, const char *key, char *buf, size_t size);

/* True when key appears, with or without a value. */
bool pv_cmdline_has(const struct pv_boot_info *bi, const char *key);

/* Parses the value of key as a number (decimal or 0x hex) into *out. Returns 1
 * when found, 0 when absent (*out untouched), -PV_EINVAL when malformed. */
int pv_cmdline_u64(const struct pv_boot_info *bi, const char *key, uint64_t *out);

/* ---- disk (libpv/disk.c) --------------------------------------------------
 * Whole-buffer transfers of any length, split into PV_DISK_IO_MAX pieces.
 * Return 0, or a negative PV_E* (-PV_EIO when the host moved fewer bytes than
 * asked). Bounds are checked by the host, not here. */
int pv_disk_read_all(uint64_t off, void *buf, uint64_t len);
int pv_disk_write_all(uint64_t off, const void *buf, uint64_t len);

/* Short text for a negative PV_E* value ("EIO", "ENOSPC", ...). */
const char *pv_strerror(int64_t err);

#endif /* PV_H */
