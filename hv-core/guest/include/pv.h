/*
 * libpv: the guest side of the pvha paravirtual ABI (pvhv/abi.h), version 2:
 * every image linked with start.S says so in its PVHA note.
 *
 * For freestanding guests linked with hv-core/guest/start.S and guest.ld (see
 * hv-core/guest/README.md). It offers the hypercalls as functions, a line-
 * buffered console with a small printf, the string functions gcc may call,
 * command-line parsing, whole-buffer disk I/O, TCP sockets and a small event
 * loop over them.
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

/* The ABI version the host serves this guest (the one its image asked for). */
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

/* ---- sockets (libpv/net.c), ABI v2 -------------------------------------------
 * TCP streams on the guest's address (pvha-vmm --address), owned by the host;
 * the guest holds small integer handles. Every call is non-blocking; wait with
 * pv_net_poll (or the loop below). Results are >= 0 or a negative PV_E*: the
 * ones a correct program meets are listed per call, and any call on a handle
 * that is not open gives -PV_EBADF; a guest without an address gets -PV_ENODEV.
 * A pointer or length outside guest RAM stops the guest (ABI.md). */

/* Listens on the guest's address and port (0: any free one, see
 * pv_net_local_port); backlog is lowered to PV_NET_BACKLOG_MAX. Returns the
 * handle, -PV_EADDRINUSE, -PV_EACCES (port < 1024), -PV_EMFILE (no handle or
 * PV_NET_LISTEN_MAX listeners open). */
int pv_net_listen(uint16_t port, int backlog);

/* Takes one waiting connection: its handle, -PV_EAGAIN when none waits,
 * -PV_EINVAL when h is not a listener, -PV_EMFILE when no handle is free (the
 * connection keeps waiting). */
int pv_net_accept(int h);

/* Starts a connection to ipv4:port (host byte order) from the guest's address.
 * Returns the handle at once, like a non-blocking connect() whose
 * -EINPROGRESS is implied: the connection is made when pv_net_poll reports
 * PV_POLLOUT; when it fails, poll reports PV_POLLERR and the next send or recv
 * returns why (-PV_ECONNREFUSED, -PV_ETIMEDOUT, -PV_ENETUNREACH...). Until
 * then send and recv return -PV_EAGAIN. */
int pv_net_connect(uint32_t ipv4, uint16_t port);

/* Sends up to len bytes (at most PV_NET_IO_MAX per call): the count taken,
 * -PV_EAGAIN when the socket's buffer is full, -PV_EPIPE after a shutdown of
 * writing or once the peer is gone, -PV_ECONNRESET, -PV_ENOTCONN on a
 * listener. */
long pv_net_send(int h, const void *buf, unsigned long len);

/* Receives up to len bytes: the count, 0 when the peer closed its side,
 * -PV_EAGAIN when nothing is there yet, -PV_ECONNRESET, -PV_ENOTCONN on a
 * listener. */
long pv_net_recv(int h, void *buf, unsigned long len);

/* Sends all of buf, waiting in pv_net_poll while the buffer is full. Returns
 * len, or the first error. */
long pv_net_send_all(int h, const void *buf, unsigned long len);

/* PV_SHUT_RD, PV_SHUT_WR or PV_SHUT_RDWR. Returns 0 or -PV_ENOTCONN. */
int pv_net_shutdown(int h, int how);

/* Closes the handle (the number may be handed out again). Returns 0. */
int pv_net_close(int h);

/* Waits until one of the n handles is ready for what its events ask
 * (PV_POLLIN, PV_POLLOUT; PV_POLLERR and PV_POLLHUP are always reported) or
 * the guest monotonic clock reaches deadline_ns (UINT64_MAX: no deadline,
 * 0: do not wait). Sets every revents; a negative handle is skipped. Returns
 * the number of entries with revents != 0, 0 at the deadline, -PV_EBADF when
 * a handle is not open. The vCPU waits in the host meanwhile: an idle guest
 * costs no CPU. n <= PV_NET_POLL_MAX. */
int pv_net_poll(struct pv_pollfd *fds, unsigned n, uint64_t deadline_ns);

/* The guest's own IPv4 address (host byte order), or -PV_ENODEV. */
int64_t pv_net_address(void);

/* The local port of a handle (a listener on port 0 learns its port here). */
int pv_net_local_port(int h);

/* The peer of a connected handle: IPv4 (host order) and port. Returns 0 or
 * -PV_ENOTCONN. */
int pv_net_peer(int h, uint32_t *ipv4, uint16_t *port);

/* Formats a host-order IPv4 address as dotted text into out (16 bytes). */
void pv_ipv4_format(uint32_t ipv4, char out[16]);

/* ---- event loop (libpv/loop.c) ------------------------------------------------
 * One loop per guest at most, in static storage the caller provides: a
 * callback per handle, called with the revents pv_net_poll reported, and one
 * optional timer. Callbacks may add, change and remove handles (their own
 * included) and stop the loop. O(handles) per turn. */

struct pv_loop;
typedef void (*pv_loop_fn)(struct pv_loop *l, int handle, unsigned revents, void *ctx);
typedef void (*pv_timer_fn)(struct pv_loop *l, void *ctx);

struct pv_loop_entry {
	pv_loop_fn fn;
	void *ctx;
};

struct pv_loop {
	struct pv_pollfd fds[PV_NET_POLL_MAX];
	struct pv_loop_entry ent[PV_NET_POLL_MAX];
	unsigned n;             /* entries in use: fds[0..n) */
	uint64_t timer_at;      /* guest monotonic ns, UINT64_MAX = none */
	pv_timer_fn timer_fn;
	void *timer_ctx;
	bool stop;
	int err;                /* what ended pv_loop_run: 0 or a negative PV_E* */
};

void pv_loop_init(struct pv_loop *l);

/* Watches h for events (PV_POLLIN | PV_POLLOUT) with fn(l, h, revents, ctx).
 * Returns 0, -PV_EINVAL (h < 0 or already watched) or -PV_EMFILE (full). */
int pv_loop_add(struct pv_loop *l, int h, unsigned events, pv_loop_fn fn, void *ctx);

/* Changes what h is watched for. Returns 0 or -PV_ENOENT. */
int pv_loop_set_events(struct pv_loop *l, int h, unsigned events);

/* Stops watching h (it does not close it). Returns 0 or -PV_ENOENT. */
int pv_loop_del(struct pv_loop *l, int h);

/* Calls fn(l, ctx) once the guest monotonic clock reaches at_ns (replaces an
 * earlier timer); UINT64_MAX cancels it. */
void pv_loop_timer(struct pv_loop *l, uint64_t at_ns, pv_timer_fn fn, void *ctx);

/* Runs the loop until pv_loop_stop() or an error. Returns 0 or a negative
 * PV_E* (what poll returned). */
int pv_loop_run(struct pv_loop *l);

/* One turn: waits at most until deadline_ns (or the timer), then calls the
 * callbacks of the ready handles. Returns the number handled, or -PV_E*. */
int pv_loop_once(struct pv_loop *l, uint64_t deadline_ns);

void pv_loop_stop(struct pv_loop *l);

#endif /* PV_H */
