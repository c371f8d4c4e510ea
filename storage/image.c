/* Guest images on RADOS, content-addressed: image.<sha256>. See pvstore.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* RADOS refuses single writes above osd_max_write_size (90 MiB by default);
 * stay well below it. */
#define WRITE_CHUNK (8u << 20)

static bool hash_ok(const char *s)
{
	size_t n = 0;
	if (!s)
		return false;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

int pvstore_image_put(struct pvstore *st, const void *data, size_t len, char sha256_hex[65])
{
	char oid[PVSTORE_OID_MAX];
	uint64_t size;
	time_t mtime;
	int r;

	if (len > PVSTORE_IMAGE_MAX)
		return pvs_failx(-EFBIG, "image of %zu bytes is larger than %u", len, PVSTORE_IMAGE_MAX);
	pvstore_sha256_hex(data, len, sha256_hex);
	pvstore_oid_image(oid, sizeof(oid), sha256_hex);
	r = pvs_rc(rados_stat(st->io, oid, &size, &mtime));
	if (r == 0 && size == len)
		return 0; /* same name, same size: the same content (get verifies it) */
	if (r < 0 && r != -ENOENT)
		return pvs_fail(r, "stat %s", oid);
	/* A large image takes several writes, so a reader may meet a partial
	 * one (or one left by a crash): pvstore_image_get checks the hash of
	 * what it reads, and the next put rewrites an object of the wrong size.
	 * Concurrent puts of one image write the same bytes. */
	size_t first = len < WRITE_CHUNK ? len : WRITE_CHUNK;
	r = pvs_rc(rados_write_full(st->io, oid, data, first));
	for (size_t off = first; r == 0 && off < len; off += WRITE_CHUNK) {
		size_t n = len - off < WRITE_CHUNK ? len - off : WRITE_CHUNK;
		r = pvs_rc(rados_write(st->io, oid, (const char *)data + off, n, off));
	}
	if (r < 0)
		return pvs_fail(r, "writing %s", oid);
	return 0;
}

int pvstore_image_get(struct pvstore *st, const char *sha256_hex, void **data, size_t *len)
{
	char oid[PVSTORE_OID_MAX], got[65];
	uint8_t *buf;
	size_t n;
	int r;

	*data = NULL;
	*len = 0;
	if (!hash_ok(sha256_hex))
		return pvs_failx(-EINVAL, "'%.80s' is not 64 lower-case hex digits", sha256_hex ? sha256_hex : "(null)");
	pvstore_oid_image(oid, sizeof(oid), sha256_hex);
	r = pvs_read_object(st, oid, PVSTORE_IMAGE_MAX, &buf, &n);
	if (r == -EFBIG)
		return pvs_failx(-EBADMSG, "%s is larger than %u bytes", oid, PVSTORE_IMAGE_MAX);
	if (r < 0)
		return r;
	pvstore_sha256_hex(buf, n, got);
	if (strcmp(got, sha256_hex) != 0) {
		free(buf);
		return pvs_failx(-EBADMSG, "%s: content hashes to %s", oid, got);
	}
	*data = buf;
	*len = n;
	return 0;
}
