/*
 * libpv console: a line buffer in front of PV_HC_CONSOLE_WRITE. Each complete
 * line costs one hypercall; a line longer than the buffer goes out in pieces.
 */
#include "pv.h"

#define CONSOLE_BUF 1024

static char console_buf[CONSOLE_BUF];
static size_t console_len;

/* Writes buf straight to the host, in pieces of at most PV_CONSOLE_MAX. */
static int64_t console_write_raw(const char *buf, uint64_t len)
{
	uint64_t done = 0;

	while (done < len) {
		uint64_t n = len - done;
		if (n > PV_CONSOLE_MAX)
			n = PV_CONSOLE_MAX;
		int64_t rc = pv_hypercall2(PV_HC_CONSOLE_WRITE, (uint64_t)(uintptr_t)(buf + done), n);
		if (rc < 0)
			return rc;
		done += n;
	}
	return (int64_t)len;
}

void pv_console_flush(void)
{
	if (console_len) {
		console_write_raw(console_buf, console_len);
		console_len = 0;
	}
}

int64_t pv_console_write(const void *buf, uint64_t len)
{
	pv_console_flush();
	return console_write_raw(buf, len);
}

/* pv_out_fn for the console: buffers s, writing out at each newline. */
static void console_out(void *ctx, const char *s, size_t len)
{
	(void)ctx;
	for (size_t i = 0; i < len; i++) {
		console_buf[console_len++] = s[i];
		if (s[i] == '\n' || console_len == CONSOLE_BUF)
			pv_console_flush();
	}
}

int pv_putc(char c)
{
	console_out(NULL, &c, 1);
	return (unsigned char)c;
}

int pv_puts(const char *s)
{
	size_t n = strlen(s);
	console_out(NULL, s, n);
	console_out(NULL, "\n", 1);
	return (int)n + 1;
}

int pv_vprintf(const char *fmt, va_list ap)
{
	return pv_vformat(console_out, NULL, fmt, ap);
}

int pv_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = pv_vprintf(fmt, ap);
	va_end(ap);
	return n;
}

struct snprintf_ctx {
	char *buf;
	size_t size; /* room including the NUL */
	size_t len;  /* bytes stored so far, excluding the NUL */
};

static void snprintf_out(void *ctx, const char *s, size_t len)
{
	struct snprintf_ctx *c = ctx;
	for (size_t i = 0; i < len && c->len + 1 < c->size; i++)
		c->buf[c->len++] = s[i];
}

int pv_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct snprintf_ctx c = { .buf = buf, .size = size, .len = 0 };
	int n = pv_vformat(snprintf_out, &c, fmt, ap);
	if (size)
		buf[c.len] = '\0';
	return n;
}

int pv_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = pv_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void pv_uuid_format(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[id[i] >> 4];
		*p++ = hex[id[i] & 15];
	}
	*p = '\0';
}
