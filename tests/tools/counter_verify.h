/*
 * counter_verify: checks a counter guest's log (hv-core/guest/include/
 * counter_log.h) by the same rules the guest applies at boot, reading the disk
 * through a callback so that any backend can be checked: a disk image file
 * (pvha-counter-check) or, later, a RADOS-backed image.
 *
 * Host code with no global state: calls on different disks may run in parallel.
 */
#ifndef PVHA_COUNTER_VERIFY_H
#define PVHA_COUNTER_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counter_log.h"

/* Reads exactly len bytes at off of the disk. Returns 0 or -errno. */
typedef int (*counter_read_fn)(void *ctx, uint64_t off, void *buf, size_t len);

struct counter_verify_result {
	bool formatted;          /* the disk has a log header */
	uint64_t records;        /* valid records, == last_seq */
	uint64_t last_seq;
	uint64_t last_boot;
	uint64_t boots;          /* distinct boot numbers among the records */
	uint64_t writers;        /* distinct writer nonces among the records */
	enum counter_problem problem; /* COUNTER_OK, or the first problem found */
	uint64_t problem_seq;    /* the seq (slot + 1) of that problem; 0 = header */
};

/*
 * Verifies the log on a disk of disk_size bytes, stopping at the first empty
 * slot or the first problem. Returns 0 with *res filled (res->problem tells
 * whether the log is sound), or -errno when the disk could not be read
 * (-ENOMEM when out of memory). Cost: O(records) reads of 64 KiB chunks and
 * O(boots log boots) to count writers.
 */
int counter_verify(counter_read_fn read, void *ctx, uint64_t disk_size,
		   struct counter_verify_result *res);

#endif /* PVHA_COUNTER_VERIFY_H */
