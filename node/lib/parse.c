/* See parse.h. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "parse.h"

int pv_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	if (!s || !*s)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int pv_parse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n;
	unsigned shift = 0;
	uint64_t v;

	if (!s)
		return -EINVAL;
	n = strlen(s);
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	default: break;
	}
	if (shift)
		num[--n] = '\0';
	int err = pv_parse_u64(num, &v);
	if (err)
		return err;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

static int copy_field(char *dst, size_t cap, const char *src, size_t len)
{
	if (len == 0 || len >= cap)
		return -EINVAL;
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

int pv_parse_disk_spec(const char *s, struct pv_disk_spec *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	const char *body;
	if (strncmp(s, "file:", 5) == 0) {
		out->kind = PV_DISK_FILE;
		body = s + 5;
	} else if (strncmp(s, "rados:", 6) == 0) {
		out->kind = PV_DISK_RADOS;
		body = s + 6;
	} else {
		return -EINVAL;
	}
	/* Options follow the last ",size=" so that paths may hold commas. */
	const char *opt = strstr(body, ",size=");
	size_t blen = opt ? (size_t)(opt - body) : strlen(body);
	if (opt) {
		int err = pv_parse_size(opt + 6, &out->size);
		if (err)
			return err;
		if (out->size == 0)
			return -EINVAL;
	}
	if (out->kind == PV_DISK_FILE)
		return copy_field(out->path, sizeof(out->path), body, blen);
	const char *slash = memchr(body, '/', blen);
	if (!slash)
		return -EINVAL;
	size_t plen = (size_t)(slash - body);
	if (copy_field(out->pool, sizeof(out->pool), body, plen) ||
	    copy_field(out->name, sizeof(out->name), slash + 1, blen - plen - 1))
		return -EINVAL;
	if (memchr(out->name, '/', strlen(out->name)))
		return -EINVAL;
	return 0;
}
