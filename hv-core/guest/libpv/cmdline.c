/* libpv command line: key=value words in boot_info->cmdline. */
#include "pv.h"

/* Finds the first word "key" or "key=..." in the command line. Returns a
 * pointer just past the key (at '=', a space or the NUL), or NULL. */
static const char *cmdline_find(const struct pv_boot_info *bi, const char *key)
{
	size_t klen = strlen(key);
	const char *p = bi->cmdline;
	const char *end = bi->cmdline + PV_CMDLINE_MAX; /* the host NUL-terminates; be safe */

	if (!klen)
		return NULL;
	while (p < end && *p) {
		while (p < end && *p == ' ')
			p++;
		const char *w = p;
		while (p < end && *p && *p != ' ')
			p++;
		size_t wlen = (size_t)(p - w);
		if (wlen >= klen && strncmp(w, key, klen) == 0 && (wlen == klen || w[klen] == '='))
			return w + klen;
	}
	return NULL;
}

int pv_cmdline_get(const struct pv_boot_info *bi, const char *key, char *buf, size_t size)
{
	const char *v = cmdline_find(bi, key);
	const char *end = bi->cmdline + PV_CMDLINE_MAX;
	size_t n = 0;

	if (!v)
		return -PV_ENOENT;
	if (v < end && *v == '=')
		v++;
	while (v + n < end && v[n] && v[n] != ' ')
		n++;
	if (n + 1 > size)
		return -PV_EINVAL;
	memcpy(buf, v, n);
	buf[n] = '\0';
	return (int)n;
}

bool pv_cmdline_has(const struct pv_boot_info *bi, const char *key)
{
	return cmdline_find(bi, key) != NULL;
}

int pv_cmdline_u64(const struct pv_boot_info *bi, const char *key, uint64_t *out)
{
	char buf[32];
	int rc = pv_cmdline_get(bi, key, buf, sizeof(buf));

	if (rc == -PV_ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	rc = pv_parse_u64(buf, out);
	return rc < 0 ? rc : 1;
}
