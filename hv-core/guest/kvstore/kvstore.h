/*
 * kvstore: a Redis-compatible (RESP2) key-value service guest. This header
 * holds the design, the limits every module shares and the few C-library
 * functions the pure modules use, so that they build both freestanding for
 * the guest (libpv provides memcpy and friends) and hosted for unit tests.
 *
 * Modules (each a header beside this one; none calls a hypercall):
 *   kv_heap   a buddy allocator over one region of RAM: every byte kvstore
 *             holds (keys, values, the hash table, client buffers) comes from
 *             it, so memory is bounded by what the guest gives it.
 *   kv_buf    a growable byte buffer on the heap, with a hard size limit.
 *   kv_resp   the RESP2 request parser (multibulk and inline) and the reply
 *             encoders.
 *   kv_db     the keyspace: a chained hash table of string keys with
 *             optional expiry on the guest monotonic clock.
 *   kv_log    the append-only log on the guest disk: checksummed, chained
 *             records; replay at boot; compaction into the other half of the
 *             disk, switched by a double superblock.
 *   kv_engine the commands: argv in, reply bytes out, writes logged before
 *             they are applied.
 *   kv_conn   one client: its input buffer through the parser and the
 *             engine into its reply buffer, with backpressure.
 * main.c (the guest) owns the sockets and the event loop: one poll round
 * reads every ready client, executes what it sent, commits the round's log
 * records with one disk write and one flush, and only then sends the
 * replies. A reply therefore never leaves before its write is durable.
 *
 * Threading: none. One guest, one vCPU, one loop; nothing here is reentrant.
 * Errors: 0 or a negative errno (Linux numbers, as the ABI uses).
 */
#ifndef KVSTORE_H
#define KVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __STDC_HOSTED__
#include <string.h>
#else
/* libpv (hv-core/guest/libpv/string.c) provides these in the guest. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif

/* ---- limits (docs/kvstore.md lists them for users) ------------------------ */
#define KV_MAX_ARGS 1024u               /* arguments in one command */
#define KV_MAX_BULK (1024u * 1024u)     /* bytes in one argument (key or value) */
#define KV_MAX_REQUEST (4u * 1024u * 1024u) /* bytes of one request, framing included */
#define KV_MAX_INLINE (64u * 1024u)     /* bytes of one inline command line */
#define KV_MAX_COUNT_LINE 32u           /* bytes of a "*N" or "$N" line with its CRLF */
#define KV_MAX_OUTPUT (64u * 1024u * 1024u) /* bytes of replies queued for one client */

/* Errno values (Linux numbers; the guest has no <errno.h>). */
#define KV_EIO 5
#define KV_ENOMEM 12
#define KV_EINVAL 22
#define KV_ENOSPC 28
#define KV_ENODATA 61
#define KV_EBADMSG 74
#define KV_EMSGSIZE 90

/* A 64-bit hash over len bytes, continuing from seed, 8 bytes per step (the
 * software CPU pays for stores, not for loads and multiplies). Every step is a
 * bijection of the state, so a change in any one 8-byte word always changes
 * the result. Used for the hash table (random seed) and the log checksums. */
uint64_t kv_hash(uint64_t seed, const void *p, size_t len);

/* ---- small copies and compares -------------------------------------------
 * On the software CPU every executed basic block and every store costs far
 * more than a load: these move and compare 8 bytes a step and finish with one
 * overlapping word instead of a byte loop (libpv's memcmp goes byte by byte). */
typedef uint64_t __attribute__((may_alias, aligned(1))) kv_u64u;
typedef uint32_t __attribute__((may_alias, aligned(1))) kv_u32u;
typedef uint16_t __attribute__((may_alias, aligned(1))) kv_u16u;

/* Copies n bytes; dst and src must not overlap. */
static inline void kv_copy(void *dst, const void *src, size_t n)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (n >= 8) {
		uint64_t last = *(const kv_u64u *)(s + n - 8);
		for (size_t i = 0; i + 8 <= n; i += 8)
			*(kv_u64u *)(d + i) = *(const kv_u64u *)(s + i);
		*(kv_u64u *)(d + n - 8) = last;
	} else if (n >= 4) {
		uint32_t a = *(const kv_u32u *)s, b = *(const kv_u32u *)(s + n - 4);
		*(kv_u32u *)d = a;
		*(kv_u32u *)(d + n - 4) = b;
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* Whether a[0..n) and b[0..n) hold the same bytes. */
static inline bool kv_mem_eq(const void *a, const void *b, size_t n)
{
	const uint8_t *x = a, *y = b;

	if (n >= 8) {
		for (size_t i = 0; i + 8 <= n; i += 8) {
			if (*(const kv_u64u *)(x + i) != *(const kv_u64u *)(y + i))
				return false;
		}
		return *(const kv_u64u *)(x + n - 8) == *(const kv_u64u *)(y + n - 8);
	}
	if (n >= 4)
		return *(const kv_u32u *)x == *(const kv_u32u *)y &&
		       *(const kv_u32u *)(x + n - 4) == *(const kv_u32u *)(y + n - 4);
	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return false;
	}
	return true;
}

#endif /* KVSTORE_H */
