/*
 * Secrets a supervisor hands to a VMM: a file or an inherited fd
 * (/dev/fd/N) read once at start, never argv (world-readable in /proc).
 * Two kinds: the migration link's raw secret (pvha-vmm --migrate-key-file)
 * and the Ceph keyring of the guest's own cephx user (--ceph-keyring, the
 * format Ceph's tools read: "[client.NAME]" then "key = BASE64").
 * Pure functions except pv_secret_read; any thread.
 */
#ifndef PVHA_KEYRING_H
#define PVHA_KEYRING_H

#include <stddef.h>

#define PV_CEPH_KEY_MAX 64     /* a cephx secret in base64, with its NUL */
#define PV_KEYRING_MAX 4096    /* a keyring file pvha reads */

/* Reads the whole of path (a regular file must be owner-only: mode 0600 or
 * 0400; a pipe or /dev/fd/N is fine) into buf, at most cap bytes; its size
 * out in *len. Returns 0, -EACCES (others may read it), -EFBIG (more than
 * cap bytes) or -errno, with a one-line reason in why. */
int pv_secret_read(const char *path, void *buf, size_t cap, size_t *len, char *why, size_t wl);

/* Writes a keyring for entity ("client.NAME") with its base64 key into buf.
 * Returns the length, -EINVAL (entity or key malformed) or -ENAMETOOLONG. */
int pv_keyring_format(char *buf, size_t len, const char *entity, const char *key);

/* Finds entity's key in a keyring's text (len bytes, need not end in NUL).
 * Returns 0 and the key (NUL-terminated), -ENOENT (no section for entity,
 * or no key in it), -EINVAL (a key that is not base64, or an unterminated
 * section name) or -ENAMETOOLONG (keylen too small). */
int pv_keyring_parse(const char *text, size_t len, const char *entity, char *key, size_t keylen);

/* pv_secret_read then pv_keyring_parse, why saying what was wrong. */
int pv_keyring_read(const char *path, const char *entity, char *key, size_t keylen, char *why, size_t wl);

#endif /* PVHA_KEYRING_H */
