/*
 * The counter guest's on-disk log, shared by the guest (hv-core/guest/counter.c)
 * and the host checkers (tests/tools/counter_verify.c). Freestanding: only
 * <stdbool.h>, <stddef.h> and <stdint.h>, everything static inline, so both
 * sides apply exactly the same rules.
 *
 * Layout (little-endian; this header assumes a little-endian machine):
 *   offset 0    struct counter_header, 512 bytes (the rest of it zero)
 *   offset 512  struct counter_record slots of 64 bytes; slot i holds seq i+1.
 * The log ends at the first all-zero slot. A disk whose header and first slot
 * are all zero is a fresh, empty log.
 *
 * A record carries no time stamp: with a fixed nonce, the log is a pure
 * function of the sequence of boots and records, so a guest restored from a
 * saved state writes the same bytes as one that never stopped.
 *
 * Rules for a log, checked record by record from slot 0 (counter_record_check):
 *   magic     the record magic is right
 *   checksum  FNV-1a 64 over bytes 0..55 matches
 *   seq       seq == slot + 1
 *   payload   the payload words are those derived from seq
 *   boot      the first record has boot 1; every later one the previous
 *             record's boot or one more (a boot numbers itself from the last
 *             record it read, so a lower number, or a gap, cannot come from
 *             the guest)
 *   two-writers  the same boot number with a different writer nonce: two
 *             guests appended after reading the same log
 */
#ifndef COUNTER_LOG_H
#define COUNTER_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COUNTER_LOG_MAGIC 0x474f4c544e435650ull /* "PVCNTLOG" */
#define COUNTER_REC_MAGIC 0x434552544e435650ull /* "PVCNTREC" */
#define COUNTER_LOG_VERSION 1u
#define COUNTER_HEADER_SIZE 512u
#define COUNTER_RECORD_SIZE 64u

struct counter_header {
	uint64_t magic;          /* COUNTER_LOG_MAGIC */
	uint32_t version;        /* COUNTER_LOG_VERSION */
	uint32_t record_size;    /* COUNTER_RECORD_SIZE */
	uint64_t records_offset; /* COUNTER_HEADER_SIZE */
	uint64_t checksum;       /* FNV-1a 64 over the 24 bytes above */
	uint8_t zero[COUNTER_HEADER_SIZE - 32];
};

struct counter_record {
	uint64_t magic;      /* COUNTER_REC_MAGIC */
	uint64_t seq;        /* slot index + 1 */
	uint64_t boot;       /* 1 for the first boot, then last record's boot + 1 */
	uint64_t nonce;      /* the writer's nonce, chosen once per boot */
	uint64_t payload[3]; /* counter_payload(seq, i) */
	uint64_t checksum;   /* FNV-1a 64 over the 56 bytes above */
};

_Static_assert(sizeof(struct counter_header) == COUNTER_HEADER_SIZE, "header size");
_Static_assert(sizeof(struct counter_record) == COUNTER_RECORD_SIZE, "record size");

enum counter_problem {
	COUNTER_OK = 0,
	COUNTER_BAD_HEADER,
	COUNTER_BAD_MAGIC,
	COUNTER_BAD_CHECKSUM,
	COUNTER_BAD_SEQ,
	COUNTER_BAD_PAYLOAD,
	COUNTER_BAD_BOOT,
	COUNTER_TWO_WRITERS,
};

/* The <what> of "CORRUPT <what> at seq N". */
static inline const char *counter_problem_name(enum counter_problem p)
{
	switch (p) {
	case COUNTER_OK: return "none";
	case COUNTER_BAD_HEADER: return "header";
	case COUNTER_BAD_MAGIC: return "magic";
	case COUNTER_BAD_CHECKSUM: return "checksum";
	case COUNTER_BAD_SEQ: return "seq";
	case COUNTER_BAD_PAYLOAD: return "payload";
	case COUNTER_BAD_BOOT: return "boot";
	case COUNTER_TWO_WRITERS: return "two-writers";
	}
	return "unknown";
}

static inline uint64_t counter_fnv1a(const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* splitmix64's finaliser: the payload and the guest's nonce mixing. */
static inline uint64_t counter_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline uint64_t counter_payload(uint64_t seq, unsigned i)
{
	return counter_mix64(seq * 4 + i);
}

/* Byte offset of the record with this seq (seq >= 1). */
static inline uint64_t counter_record_offset(uint64_t seq)
{
	return COUNTER_HEADER_SIZE + (seq - 1) * COUNTER_RECORD_SIZE;
}

/* How many records fit on a disk of disk_size bytes. */
static inline uint64_t counter_capacity(uint64_t disk_size)
{
	if (disk_size < COUNTER_HEADER_SIZE)
		return 0;
	return (disk_size - COUNTER_HEADER_SIZE) / COUNTER_RECORD_SIZE;
}

static inline bool counter_is_zero(const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	for (size_t i = 0; i < n; i++) {
		if (b[i])
			return false;
	}
	return true;
}

static inline void counter_header_fill(struct counter_header *h)
{
	uint8_t *b = (uint8_t *)h;
	for (size_t i = 0; i < sizeof(*h); i++)
		b[i] = 0;
	h->magic = COUNTER_LOG_MAGIC;
	h->version = COUNTER_LOG_VERSION;
	h->record_size = COUNTER_RECORD_SIZE;
	h->records_offset = COUNTER_HEADER_SIZE;
	h->checksum = counter_fnv1a(h, 24);
}

/* COUNTER_OK for a valid header of this version, else COUNTER_BAD_HEADER. */
static inline enum counter_problem counter_header_check(const struct counter_header *h)
{
	if (h->magic != COUNTER_LOG_MAGIC || h->version != COUNTER_LOG_VERSION ||
	    h->record_size != COUNTER_RECORD_SIZE || h->records_offset != COUNTER_HEADER_SIZE ||
	    h->checksum != counter_fnv1a(h, 24))
		return COUNTER_BAD_HEADER;
	return COUNTER_OK;
}

static inline void counter_record_fill(struct counter_record *r, uint64_t seq, uint64_t boot,
				       uint64_t nonce)
{
	r->magic = COUNTER_REC_MAGIC;
	r->seq = seq;
	r->boot = boot;
	r->nonce = nonce;
	for (unsigned i = 0; i < 3; i++)
		r->payload[i] = counter_payload(seq, i);
	r->checksum = counter_fnv1a(r, 56);
}

/* Checks the record in slot (0-based) against the rules above; prev is the
 * record of slot - 1, or NULL for slot 0. The caller has already stopped at
 * an all-zero slot. */
static inline enum counter_problem counter_record_check(const struct counter_record *r,
							 uint64_t slot,
							 const struct counter_record *prev)
{
	if (r->magic != COUNTER_REC_MAGIC)
		return COUNTER_BAD_MAGIC;
	if (r->checksum != counter_fnv1a(r, 56))
		return COUNTER_BAD_CHECKSUM;
	if (r->seq != slot + 1)
		return COUNTER_BAD_SEQ;
	for (unsigned i = 0; i < 3; i++) {
		if (r->payload[i] != counter_payload(r->seq, i))
			return COUNTER_BAD_PAYLOAD;
	}
	if (prev ? (r->boot < prev->boot || r->boot > prev->boot + 1) : r->boot != 1)
		return COUNTER_BAD_BOOT;
	if (prev && r->boot == prev->boot && r->nonce != prev->nonce)
		return COUNTER_TWO_WRITERS;
	return COUNTER_OK;
}

#endif /* COUNTER_LOG_H */
