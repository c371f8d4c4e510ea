/*
 * kv_resp: the RESP2 wire format. The parser takes the bytes a client has
 * sent so far and finds the first whole command in them: a multibulk array of
 * bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), as every Redis client
 * sends, or an inline command (a line of words separated by spaces or tabs,
 * ended by "\n" or "\r\n", as typed in telnet; no quoting). Pipelining is the
 * caller calling it again on the rest. It keeps no state between calls: an
 * incomplete command is parsed again from its start when more bytes arrive,
 * O(arguments) each time; argument bytes are never copied (argv points into
 * the caller's buffer).
 *
 * Every bound is checked before the bytes it governs are awaited, so a huge
 * declared length is refused at once, not after the client has sent it:
 *   more than KV_MAX_ARGS arguments       "Protocol error: invalid multibulk length"
 *   a bulk longer than KV_MAX_BULK        "Protocol error: invalid bulk length"
 *   a request over KV_MAX_REQUEST bytes   "Protocol error: request too big"
 *   an inline line over KV_MAX_INLINE     "Protocol error: too big inline request"
 *   a count line over KV_MAX_COUNT_LINE   "Protocol error: too big mbulk count string"
 *                                         / "Protocol error: too big bulk count string"
 *   a count that is not a decimal number  invalid multibulk / bulk length
 *   an element that is not a bulk string  "Protocol error: expected '$', got 'X'"
 *   bulk data not followed by CRLF        "Protocol error: expected CRLF after bulk"
 * After a protocol error the connection's framing is lost: the server sends
 * the error and closes it (as Redis does).
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include "kv_buf.h"

struct kv_req {
	unsigned argc;
	const uint8_t *argv[KV_MAX_ARGS];
	size_t len[KV_MAX_ARGS];
	size_t consumed; /* bytes the command took, framing included */
	char errbuf[48]; /* holds a protocol error message that names a byte */
};

enum kv_parse_result {
	KV_PARSE_ERROR = -1, /* *err names the protocol error */
	KV_PARSE_MORE = 0,   /* no whole command yet: wait for more bytes */
	KV_PARSE_OK = 1,     /* req holds a command (argc may be 0: skip it) */
};

/* Parses the first command in buf[0..len). On KV_PARSE_ERROR, *err is the
 * message without the leading '-' or "ERR " and the CRLF. */
enum kv_parse_result kv_resp_parse(const uint8_t *buf, size_t len, struct kv_req *req,
				   const char **err);

/* ---- replies (append to out; a failed append sets out->failed) ----------- */
void kv_reply_status(struct kv_buf *out, const char *s);    /* +s */
void kv_reply_error(struct kv_buf *out, const char *s);     /* -s (s holds its prefix: "ERR ...") */
void kv_reply_int(struct kv_buf *out, int64_t v);           /* :v */
void kv_reply_bulk(struct kv_buf *out, const void *p, size_t n); /* $n data */
void kv_reply_null(struct kv_buf *out);                     /* $-1 */
void kv_reply_array(struct kv_buf *out, size_t n);          /* *n, then n replies */
void kv_reply_cstr(struct kv_buf *out, const char *s);      /* bulk of a C string */

/* Writes v in decimal into out (at least 21 bytes); returns the length. */
size_t kv_fmt_i64(char *out, int64_t v);

/* Parses a whole decimal integer as Redis does: an optional '-', digits, no
 * leading zeros (except "0" itself), no spaces, within int64. Returns 0 or
 * -KV_EINVAL. */
int kv_parse_i64(const uint8_t *p, size_t n, int64_t *out);

#endif /* KV_RESP_H */
