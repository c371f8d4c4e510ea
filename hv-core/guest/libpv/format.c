/*
 * libpv formatter: the printf subset documented in pv.h. Output goes through
 * a pv_out_fn so that the console and snprintf share one implementation and
 * nothing is limited by an intermediate buffer.
 */
#include "pv.h"

struct spec {
	bool left;    /* '-' */
	bool zero;    /* '0' */
	bool plus;    /* '+' */
	bool space;   /* ' ' */
	int width;
	int prec;     /* -1 = none */
};

struct sink {
	pv_out_fn out;
	void *ctx;
	int total;
};

static void emit(struct sink *s, const char *p, size_t n)
{
	if (n) {
		s->out(s->ctx, p, n);
		s->total += (int)n;
	}
}

static void emit_pad(struct sink *s, char c, int n)
{
	char pad[16];
	for (int i = 0; i < 16; i++)
		pad[i] = c;
	while (n > 0) {
		int k = n > 16 ? 16 : n;
		emit(s, pad, (size_t)k);
		n -= k;
	}
}

/* Emits prefix (sign, 0x) and body padded to the spec's width. Zero padding
 * goes between the prefix and the body, as C's printf does. */
static void emit_field(struct sink *s, const struct spec *sp, const char *prefix,
		       const char *body, size_t body_len)
{
	size_t plen = strlen(prefix);
	int pad = sp->width - (int)(plen + body_len);

	if (pad < 0)
		pad = 0;
	if (!sp->left && !sp->zero)
		emit_pad(s, ' ', pad);
	emit(s, prefix, plen);
	if (!sp->left && sp->zero)
		emit_pad(s, '0', pad);
	emit(s, body, body_len);
	if (sp->left)
		emit_pad(s, ' ', pad);
}

/* Writes v in base (10 or 16) at the end of buf; returns the first digit. */
static char *utoa(char *end, uint64_t v, unsigned base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;
	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return p;
}

static void fmt_int(struct sink *s, struct spec *sp, uint64_t mag, bool neg, unsigned base,
		    bool upper, const char *prefix)
{
	char buf[32];
	char *end = buf + sizeof(buf);
	char *p = utoa(end, mag, base, upper);
	char pre[4] = { 0 };
	size_t n = 0;

	if (neg)
		pre[n++] = '-';
	else if (sp->plus)
		pre[n++] = '+';
	else if (sp->space)
		pre[n++] = ' ';
	for (const char *q = prefix; *q; q++)
		pre[n++] = *q;
	/* A precision on an integer is a minimum digit count. */
	if (sp->prec >= 0) {
		while (end - p < sp->prec && p > buf)
			*--p = '0';
		sp->zero = false;
	}
	emit_field(s, sp, pre, p, (size_t)(end - p));
}

static void fmt_double(struct sink *s, struct spec *sp, double v)
{
	static const uint64_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000,
					  10000000, 100000000, 1000000000 };
	char buf[340]; /* DBL_MAX has 309 digits, plus the fraction */
	char *end = buf + sizeof(buf);
	char *p = end;
	const char *pre = "";
	int prec = sp->prec < 0 ? 6 : sp->prec;

	if (prec > 9)
		prec = 9;
	if (v != v) { /* NaN */
		sp->zero = false;
		emit_field(s, sp, "", "nan", 3);
		return;
	}
	if (__builtin_signbit(v)) {
		pre = "-";
		v = -v;
	} else if (sp->plus) {
		pre = "+";
	} else if (sp->space) {
		pre = " ";
	}
	if (v > 1.7976931348623157e308) {
		sp->zero = false;
		emit_field(s, sp, pre, "inf", 3);
		return;
	}

	if (v < 18446744073709551616.0) { /* 2^64 */
		/* Exact: v = m * 2^e, and the fraction times 10^prec is computed
		 * in 128-bit integers, so the digits and the rounding (half to
		 * even on exact ties) are those of C's printf. */
		union {
			double d;
			uint64_t u;
		} bits = { .d = v };
		unsigned bexp = (unsigned)(bits.u >> 52) & 0x7ff;
		uint64_t m = bits.u & ((1ull << 52) - 1);
		int e = bexp ? (int)bexp - 1075 : -1074;
		uint64_t ip, fp;

		if (bexp)
			m |= 1ull << 52;
		if (e >= 0) {
			ip = m << e; /* v < 2^64, so this fits */
			fp = 0;
		} else if (-e > 120) {
			ip = 0; /* v < 2^-67: every printed digit is 0 */
			fp = 0;
		} else {
			unsigned sh = (unsigned)-e;
			unsigned __int128 one = 1;
			ip = sh >= 64 ? 0 : m >> sh;
			unsigned __int128 scaled = ((unsigned __int128)m & ((one << sh) - 1)) * pow10[prec];
			unsigned __int128 rem = scaled & ((one << sh) - 1);
			unsigned __int128 half = one << (sh - 1);
			fp = (uint64_t)(scaled >> sh);
			if (rem > half || (rem == half && ((prec ? fp : ip) & 1)))
				fp++;
		}
		if (fp >= pow10[prec]) {
			ip++;
			fp -= pow10[prec];
		}
		if (prec > 0) {
			for (int i = 0; i < prec; i++) {
				*--p = (char)('0' + fp % 10);
				fp /= 10;
			}
			*--p = '.';
		}
		p = utoa(p, ip, 10, false);
	} else {
		/* 2^64 and more: the leading digits, then zeros (printf would
		 * print the exact binary value; nobody reads those digits). */
		int zeros = 0;
		if (prec > 0) {
			for (int i = 0; i < prec; i++)
				*--p = '0';
			*--p = '.';
		}
		while (v >= 1.8e19) {
			v /= 10;
			zeros++;
		}
		while (zeros-- > 0)
			*--p = '0';
		p = utoa(p, (uint64_t)v, 10, false);
	}
	emit_field(s, sp, pre, p, (size_t)(end - p));
}

int pv_vformat(pv_out_fn out, void *ctx, const char *fmt, va_list ap)
{
	struct sink s = { .out = out, .ctx = ctx, .total = 0 };
	va_list args;

	va_copy(args, ap);
	while (*fmt) {
		const char *lit = fmt;
		while (*fmt && *fmt != '%')
			fmt++;
		emit(&s, lit, (size_t)(fmt - lit));
		if (!*fmt)
			break;
		fmt++; /* '%' */

		struct spec sp = { .prec = -1 };
		for (;; fmt++) {
			if (*fmt == '-')
				sp.left = true;
			else if (*fmt == '0')
				sp.zero = true;
			else if (*fmt == '+')
				sp.plus = true;
			else if (*fmt == ' ')
				sp.space = true;
			else
				break;
		}
		if (*fmt == '*') {
			sp.width = va_arg(args, int);
			if (sp.width < 0) {
				sp.left = true;
				sp.width = -sp.width;
			}
			fmt++;
		} else {
			while (*fmt >= '0' && *fmt <= '9')
				sp.width = sp.width * 10 + (*fmt++ - '0');
		}
		if (*fmt == '.') {
			fmt++;
			sp.prec = 0;
			if (*fmt == '*') {
				sp.prec = va_arg(args, int);
				fmt++;
			} else {
				while (*fmt >= '0' && *fmt <= '9')
					sp.prec = sp.prec * 10 + (*fmt++ - '0');
			}
		}
		if (sp.left)
			sp.zero = false;

		int lng = 0; /* 0 int, 1 long, 2 long long, 3 size_t */
		if (*fmt == 'l') {
			fmt++;
			lng = 1;
			if (*fmt == 'l') {
				fmt++;
				lng = 2;
			}
		} else if (*fmt == 'z') {
			fmt++;
			lng = 3;
		}

		char c = *fmt;
		if (!c)
			break;
		fmt++;
		switch (c) {
		case 'd':
		case 'i': {
			int64_t v;
			if (lng == 1)
				v = va_arg(args, long);
			else if (lng == 2)
				v = va_arg(args, long long);
			else if (lng == 3)
				v = (int64_t)va_arg(args, size_t);
			else
				v = va_arg(args, int);
			uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
			fmt_int(&s, &sp, mag, v < 0, 10, false, "");
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v;
			if (lng == 1)
				v = va_arg(args, unsigned long);
			else if (lng == 2)
				v = va_arg(args, unsigned long long);
			else if (lng == 3)
				v = va_arg(args, size_t);
			else
				v = va_arg(args, unsigned int);
			fmt_int(&s, &sp, v, false, c == 'u' ? 10 : 16, c == 'X', "");
			break;
		}
		case 'p': {
			uint64_t v = (uint64_t)(uintptr_t)va_arg(args, void *);
			fmt_int(&s, &sp, v, false, 16, false, "0x");
			break;
		}
		case 's': {
			const char *str = va_arg(args, const char *);
			if (!str)
				str = "(null)";
			size_t n = 0;
			while (str[n] && (sp.prec < 0 || n < (size_t)sp.prec))
				n++;
			sp.zero = false;
			emit_field(&s, &sp, "", str, n);
			break;
		}
		case 'c': {
			char ch = (char)va_arg(args, int);
			sp.zero = false;
			emit_field(&s, &sp, "", &ch, 1);
			break;
		}
		case 'f':
		case 'F':
			fmt_double(&s, &sp, va_arg(args, double));
			break;
		case '%':
			emit(&s, "%", 1);
			break;
		default:
			/* Unknown conversion: show it as written. */
			emit(&s, "%", 1);
			emit(&s, &c, 1);
			break;
		}
	}
	va_end(args);
	return s.total;
}
