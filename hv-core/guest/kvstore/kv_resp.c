/* kv_resp: RESP2 parsing and reply encoding; see kv_resp.h. */
#include "kv_resp.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the CRLF compares read bytes as little-endian words");

int kv_parse_i64(const uint8_t *p, size_t n, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0;
	size_t i = 0;

	if (n == 0 || n > 20)
		return -KV_EINVAL;
	if (p[0] == '-') {
		neg = true;
		i = 1;
		if (n == 1)
			return -KV_EINVAL;
	}
	if (p[i] == '0' && n - i > 1)
		return -KV_EINVAL; /* leading zero, or "-0..." */
	if (neg && p[i] == '0')
		return -KV_EINVAL; /* "-0" */
	for (; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -KV_EINVAL;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -KV_EINVAL;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (uint64_t)INT64_MAX + 1)
			return -KV_EINVAL;
		*out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		if (v > (uint64_t)INT64_MAX)
			return -KV_EINVAL;
		*out = (int64_t)v;
	}
	return 0;
}

size_t kv_fmt_i64(char *out, int64_t v)
{
	char tmp[24];
	size_t n = 0, o = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[o++] = '-';
	while (n)
		out[o++] = tmp[--n];
	return o;
}

/* The offset of the first "\r" in buf[from..min(len, from + max)), or -1. */
static long find_cr(const uint8_t *buf, size_t from, size_t len, size_t max)
{
	size_t end = len - from > max ? from + max : len;
	for (size_t i = from; i < end; i++) {
		if (buf[i] == '\r')
			return (long)i;
	}
	return -1;
}

static bool is_space(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static enum kv_parse_result parse_inline(const uint8_t *buf, size_t len, struct kv_req *req,
					 const char **err)
{
	size_t scan = len < KV_MAX_INLINE ? len : KV_MAX_INLINE;
	size_t nl = 0;

	while (nl < scan && buf[nl] != '\n')
		nl++;
	if (nl == scan) {
		if (len >= KV_MAX_INLINE) {
			*err = "Protocol error: too big inline request";
			return KV_PARSE_ERROR;
		}
		return KV_PARSE_MORE;
	}
	req->argc = 0;
	size_t i = 0;
	while (i < nl) {
		while (i < nl && is_space(buf[i]))
			i++;
		if (i == nl)
			break;
		size_t start = i;
		while (i < nl && !is_space(buf[i]))
			i++;
		if (req->argc == KV_MAX_ARGS) {
			*err = "Protocol error: too many arguments in inline request";
			return KV_PARSE_ERROR;
		}
		req->argv[req->argc] = buf + start;
		req->len[req->argc] = i - start;
		req->argc++;
	}
	req->consumed = nl + 1;
	return KV_PARSE_OK;
}

/* Parses "<c>N\r\n" at buf[pos] the careful way: *n and *next (just after
 * the line), or the exact error. */
static enum kv_parse_result parse_count_slow(const uint8_t *buf, size_t len, size_t pos,
					     int64_t *n, size_t *next, bool multibulk,
					     const char **err)
{
	long cr = find_cr(buf, pos, len, KV_MAX_COUNT_LINE);

	if (cr < 0) {
		if (len - pos >= KV_MAX_COUNT_LINE) {
			*err = multibulk ? "Protocol error: too big mbulk count string"
					 : "Protocol error: too big bulk count string";
			return KV_PARSE_ERROR;
		}
		return KV_PARSE_MORE;
	}
	if ((size_t)cr + 1 >= len)
		return KV_PARSE_MORE;
	if (buf[cr + 1] != '\n' ||
	    kv_parse_i64(buf + pos + 1, (size_t)cr - pos - 1, n) < 0) {
		*err = multibulk ? "Protocol error: invalid multibulk length"
				 : "Protocol error: invalid bulk length";
		return KV_PARSE_ERROR;
	}
	*next = (size_t)cr + 2;
	return KV_PARSE_OK;
}

/* The same, in one pass over the digits for the common case (1 to 9 digits,
 * no sign, no leading zero, then CRLF); anything else, or a line not whole
 * yet, takes the careful way. */
static enum kv_parse_result parse_count(const uint8_t *buf, size_t len, size_t pos,
					int64_t *n, size_t *next, bool multibulk, const char **err)
{
	size_t i = pos + 1;
	int64_t v = 0;

	if (i < len && buf[i] >= '1' && buf[i] <= '9') {
		size_t end = len - i > 9 ? i + 9 : len;
		for (; i < end && buf[i] >= '0' && buf[i] <= '9'; i++)
			v = v * 10 + (buf[i] - '0');
		if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n') {
			*n = v;
			*next = i + 2;
			return KV_PARSE_OK;
		}
	}
	return parse_count_slow(buf, len, pos, n, next, multibulk, err);
}

/* "Protocol error: expected '$', got 'X'" in req->errbuf, X shown printable. */
static const char *expected_dollar(struct kv_req *req, uint8_t c)
{
	static const char hex[] = "0123456789abcdef";
	static const char prefix[] = "Protocol error: expected '$', got '";
	char *m = req->errbuf;
	size_t o = sizeof(prefix) - 1;

	_Static_assert(sizeof(prefix) + 6 <= sizeof(req->errbuf), "errbuf size");
	memcpy(m, prefix, o);
	if (c > 0x20 && c < 0x7f) {
		m[o++] = (char)c;
	} else {
		m[o++] = '\\';
		m[o++] = 'x';
		m[o++] = hex[c >> 4];
		m[o++] = hex[c & 15];
	}
	m[o++] = '\'';
	m[o] = 0;
	return m;
}

/* A count line "<c>N\r\n" at buf[pos] with N of one digit, or two without
 * a leading zero, read with one 4-byte load and no loop: nearly every line
 * of a real request ("*3", "$3", "$16"). On the software CPU every branch
 * and every store costs, so this path keeps both few and its results in
 * registers. False for anything else, or when fewer than 5 bytes are there:
 * then parse_count decides. */
static inline __attribute__((always_inline)) bool count_fast(const uint8_t *buf, size_t len,
							     size_t pos, int64_t *n, size_t *next)
{
	if (len - pos < 5)
		return false;
	uint32_t w = *(const kv_u32u *)(buf + pos + 1);
	uint32_t d0 = (w & 0xff) - '0', d1 = ((w >> 8) & 0xff) - '0';
	if (((w >> 8) & 0xffff) == 0x0a0d && d0 <= 9) {
		*n = d0;
		*next = pos + 4;
		return true;
	}
	if ((w >> 16) == 0x0a0d && d0 - 1 <= 8 && d1 <= 9) {
		*n = d0 * 10 + d1;
		*next = pos + 5;
		return true;
	}
	return false;
}

enum kv_parse_result kv_resp_parse(const uint8_t *buf, size_t len, struct kv_req *req,
				   const char **err)
{
	int64_t count;
	size_t pos;
	enum kv_parse_result r;

	req->argc = 0;
	req->consumed = 0;
	if (len == 0)
		return KV_PARSE_MORE;
	if (buf[0] != '*')
		return parse_inline(buf, len, req, err);
	if (!count_fast(buf, len, 0, &count, &pos)) {
		int64_t c;
		size_t p;
		r = parse_count(buf, len, 0, &c, &p, true, err);
		if (r != KV_PARSE_OK)
			return r;
		count = c;
		pos = p;
	}
	if (count > (int64_t)KV_MAX_ARGS) {
		*err = "Protocol error: invalid multibulk length";
		return KV_PARSE_ERROR;
	}
	if (count <= 0) {
		req->consumed = pos; /* "*0" and "*-1": nothing to run */
		return KV_PARSE_OK;
	}
	for (int64_t a = 0; a < count; a++) {
		int64_t blen;
		size_t data;

		if (pos >= len)
			return KV_PARSE_MORE;
		if (buf[pos] != '$') {
			*err = expected_dollar(req, buf[pos]);
			return KV_PARSE_ERROR;
		}
		if (!count_fast(buf, len, pos, &blen, &data)) {
			/* its own variables: taking the address of blen and
			 * data would keep them in memory on the fast path */
			int64_t b;
			size_t d;
			r = parse_count(buf, len, pos, &b, &d, false, err);
			if (r != KV_PARSE_OK)
				return r;
			if (b < 0 || b > (int64_t)KV_MAX_BULK) {
				*err = "Protocol error: invalid bulk length";
				return KV_PARSE_ERROR;
			}
			blen = b;
			data = d;
		}
		size_t end = data + (size_t)blen + 2;
		if (end > KV_MAX_REQUEST) {
			*err = "Protocol error: request too big";
			return KV_PARSE_ERROR;
		}
		if (end > len)
			return KV_PARSE_MORE;
		if (*(const kv_u16u *)(buf + end - 2) != 0x0a0d) {
			*err = "Protocol error: expected CRLF after bulk";
			return KV_PARSE_ERROR;
		}
		req->argv[a] = buf + data;
		req->len[a] = (size_t)blen;
		pos = end;
	}
	req->argc = (unsigned)count; /* once: a store per argument saved */
	req->consumed = pos;
	return KV_PARSE_OK;
}

void kv_reply_status(struct kv_buf *out, const char *s)
{
	kv_buf_append(out, "+", 1);
	kv_buf_append(out, s, strlen(s));
	kv_buf_append(out, "\r\n", 2);
}

void kv_reply_error(struct kv_buf *out, const char *s)
{
	kv_buf_append(out, "-", 1);
	kv_buf_append(out, s, strlen(s));
	kv_buf_append(out, "\r\n", 2);
}

/* "<c><v>\r\n", written in place. */
static void reply_count(struct kv_buf *out, char c, int64_t v)
{
	if (kv_buf_reserve(out, 24) < 0) {
		out->failed = true;
		return;
	}
	uint8_t *t = kv_buf_tail(out);
	t[0] = (uint8_t)c;
	size_t n = 1 + kv_fmt_i64((char *)t + 1, v);
	t[n] = '\r';
	t[n + 1] = '\n';
	kv_buf_commit(out, n + 2);
}

void kv_reply_int(struct kv_buf *out, int64_t v)
{
	reply_count(out, ':', v);
}

void kv_reply_bulk(struct kv_buf *out, const void *p, size_t n)
{
	/* One reservation for the whole reply: no partial reply, one pass. */
	if (kv_buf_reserve(out, n + 32) < 0) {
		out->failed = true;
		return;
	}
	uint8_t *t = kv_buf_tail(out);
	size_t h;
	if (n < 10) { /* "$N\r\n": one store (the reservation has room) */
		*(kv_u32u *)t = '$' | (uint32_t)('0' + n) << 8 | 0x0a0d0000u;
		h = 2;
	} else {
		t[0] = '$';
		h = 1 + kv_fmt_i64((char *)t + 1, (int64_t)n);
		*(kv_u16u *)(t + h) = 0x0a0d;
	}
	kv_copy(t + h + 2, p, n);
	*(kv_u16u *)(t + h + 2 + n) = 0x0a0d;
	kv_buf_commit(out, h + 4 + n);
}

void kv_reply_null(struct kv_buf *out)
{
	kv_buf_append(out, "$-1\r\n", 5);
}

void kv_reply_array(struct kv_buf *out, size_t n)
{
	reply_count(out, '*', (int64_t)n);
}

void kv_reply_cstr(struct kv_buf *out, const char *s)
{
	kv_reply_bulk(out, s, strlen(s));
}
