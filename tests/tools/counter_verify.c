/* counter_verify: see counter_verify.h. */
#include "counter_verify.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_RECORDS 1024u

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Appends v to a growable array. Returns 0 or -ENOMEM. */
static int push_u64(uint64_t **arr, size_t *n, size_t *cap, uint64_t v)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		uint64_t *p = realloc(*arr, ncap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*arr = p;
		*cap = ncap;
	}
	(*arr)[(*n)++] = v;
	return 0;
}

static uint64_t count_distinct(uint64_t *v, size_t n)
{
	uint64_t d = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	for (size_t i = 0; i < n; i++) {
		if (i == 0 || v[i] != v[i - 1])
			d++;
	}
	return d;
}

int counter_verify(counter_read_fn read, void *ctx, uint64_t disk_size,
		   struct counter_verify_result *res)
{
	struct counter_header h;
	struct counter_record *chunk = NULL, last;
	uint64_t *nonces = NULL;
	size_t nnonces = 0, cap = 0;
	uint64_t capacity = counter_capacity(disk_size), slot = 0;
	int err = 0;

	memset(res, 0, sizeof(*res));
	memset(&last, 0, sizeof(last));
	if (disk_size < COUNTER_HEADER_SIZE)
		return 0; /* too small to hold a log: an empty one */
	err = read(ctx, 0, &h, sizeof(h));
	if (err < 0)
		return err;
	if (counter_header_check(&h) == COUNTER_OK) {
		res->formatted = true;
	} else if (!counter_is_zero(&h, sizeof(h))) {
		res->problem = COUNTER_BAD_HEADER;
		return 0;
	}

	chunk = malloc(CHUNK_RECORDS * sizeof(*chunk));
	if (!chunk)
		return -ENOMEM;
	while (slot < capacity) {
		uint64_t n = capacity - slot;
		if (n > CHUNK_RECORDS)
			n = CHUNK_RECORDS;
		err = read(ctx, counter_record_offset(slot + 1), chunk, n * sizeof(*chunk));
		if (err < 0)
			goto err_free;
		for (uint64_t i = 0; i < n; i++, slot++) {
			const struct counter_record *r = &chunk[i];
			if (counter_is_zero(r, sizeof(*r)))
				goto done;
			/* Records without a header: the header was lost. */
			enum counter_problem p = res->formatted ? counter_record_check(r, slot, slot ? &last : NULL)
								: COUNTER_BAD_HEADER;
			if (p != COUNTER_OK) {
				res->problem = p;
				res->problem_seq = p == COUNTER_BAD_HEADER ? 0 : slot + 1;
				goto done;
			}
			if (slot == 0 || r->boot != last.boot) {
				res->boots++;
				err = push_u64(&nonces, &nnonces, &cap, r->nonce);
				if (err < 0)
					goto err_free;
			}
			last = *r;
			res->records = slot + 1;
		}
	}
done:
	res->last_seq = res->records;
	res->last_boot = last.boot;
	res->writers = count_distinct(nonces, nnonces);
	err = 0;
err_free:
	free(nonces);
	free(chunk);
	return err;
}
