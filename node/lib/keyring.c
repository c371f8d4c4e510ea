/* See keyring.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyring.h"

int pv_secret_read(const char *path, void *buf, size_t cap, size_t *len, char *why, size_t wl)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		snprintf(why, wl, "%s", strerror(-err));
		return err;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077)) {
		close(fd);
		snprintf(why, wl, "readable by others than its owner (mode %03o): want 0600 or 0400",
			 (unsigned)(st.st_mode & 0777));
		return -EACCES;
	}
	/* one byte more than cap tells "too long" from "exactly cap" */
	size_t n = 0;
	char extra;
	for (;;) {
		ssize_t r = n < cap ? read(fd, (char *)buf + n, cap - n) : read(fd, &extra, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = -errno;
			close(fd);
			snprintf(why, wl, "%s", strerror(-err));
			return err;
		}
		if (r == 0)
			break;
		if (n == cap) {
			close(fd);
			memset(buf, 0, cap);
			snprintf(why, wl, "longer than %zu bytes", cap);
			return -EFBIG;
		}
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return 0;
}

static bool entity_ok(const char *e)
{
	if (!e || strncmp(e, "client.", 7) != 0 || !e[7] || strlen(e) > 120)
		return false;
	for (const char *c = e + 7; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '.' || *c == '_' || *c == '-'))
			return false;
	return true;
}

static bool base64_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/' || c == '=';
}

static bool key_ok(const char *k, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!base64_char(k[i]))
			return false;
	return true;
}

int pv_keyring_format(char *buf, size_t len, const char *entity, const char *key)
{
	if (!entity_ok(entity) || !key || !key_ok(key, strlen(key)))
		return -EINVAL;
	int n = snprintf(buf, len, "[%s]\n\tkey = %s\n", entity, key);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : n;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

int pv_keyring_parse(const char *text, size_t len, const char *entity, char *key, size_t keylen)
{
	if (!entity_ok(entity))
		return -EINVAL;
	size_t elen = strlen(entity);
	bool in = false;
	size_t i = 0;
	while (i < len) {
		size_t end = i;
		while (end < len && text[end] != '\n')
			end++;
		size_t a = i, b = end;
		i = end + 1;
		while (a < b && blank(text[a]))
			a++;
		while (b > a && blank(text[b - 1]))
			b--;
		if (a == b || text[a] == '#' || text[a] == ';')
			continue;
		if (text[a] == '[') {
			if (text[b - 1] != ']')
				return -EINVAL;
			in = b - a - 2 == elen && memcmp(text + a + 1, entity, elen) == 0;
			continue;
		}
		if (!in || b - a < 3 || memcmp(text + a, "key", 3) != 0)
			continue;
		size_t p = a + 3;
		while (p < b && blank(text[p]))
			p++;
		if (p == b || text[p] != '=')
			continue; /* "keyring = ...", say: not the key */
		p++;
		while (p < b && blank(text[p]))
			p++;
		if (!key_ok(text + p, b - p))
			return -EINVAL;
		if (b - p + 1 > keylen)
			return -ENAMETOOLONG;
		memcpy(key, text + p, b - p);
		key[b - p] = '\0';
		return 0;
	}
	return -ENOENT;
}

int pv_keyring_read(const char *path, const char *entity, char *key, size_t keylen, char *why, size_t wl)
{
	char text[PV_KEYRING_MAX];
	size_t n;
	int err = pv_secret_read(path, text, sizeof(text), &n, why, wl);
	if (err)
		return err;
	err = pv_keyring_parse(text, n, entity, key, keylen);
	memset(text, 0, sizeof(text));
	if (err == -ENOENT)
		snprintf(why, wl, "no key for %s in it", entity);
	else if (err == -EINVAL)
		snprintf(why, wl, "not a keyring (a section name unterminated, or a key that is not base64)");
	else if (err)
		snprintf(why, wl, "the key for %s is longer than %zu bytes", entity, keylen - 1);
	return err;
}
