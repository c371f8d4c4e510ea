/*
 * counter: appends sequence-numbered, checksummed records to its disk, so that
 * tests can prove that no flushed write is ever lost and that no two copies of
 * a guest ever write the same disk. The format and the rules are in
 * include/counter_log.h.
 *
 * Command line:
 *   interval=MS   time between records (default 100; 0 = as fast as possible)
 *   count=K       stop after K new records this boot (default 0 = forever)
 *   nonce=N       this boot's writer nonce (default: mixed from the clocks and
 *                 rdtsc); a fixed nonce makes runs byte-identical
 *   verify-only   verify the log, print the summary and exit 0
 *
 * Output lines:
 *   counter: formatted empty disk                (fresh disk: header written)
 *   counter: CORRUPT <what> at seq N             (exit 2; <what> as in counter_log.h)
 *   counter: verified N records, boot B
 *   counter: writer nonce 0xX
 *   counter: flushed seq N                       (after the flush returned)
 *   counter: done, K records this boot           (exit 0)
 *   counter: no disk                             (exit 3)
 *   counter: disk full at seq N                  (exit 4)
 *   counter: disk <op> failed at seq N: <err>    (exit 5)
 *   counter: bad cmdline <key>                   (exit 1)
 */
#include "counter_log.h"
#include "pv.h"

enum {
	EXIT_CORRUPT = 2,
	EXIT_NO_DISK = 3,
	EXIT_DISK_FULL = 4,
	EXIT_IO = 5,
};

/* Verification reads the log in chunks of this many records. */
#define SCAN_RECORDS 1024u

static struct counter_record scan_buf[SCAN_RECORDS];

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static _Noreturn void io_failed(const char *op, uint64_t seq, int64_t rc)
{
	pv_printf("counter: disk %s failed at seq %lu: %s (%ld)\n", op, seq, pv_strerror(rc), rc);
	pv_exit(EXIT_IO);
}

static _Noreturn void corrupt(enum counter_problem p, uint64_t seq)
{
	pv_printf("counter: CORRUPT %s at seq %lu\n", counter_problem_name(p), seq);
	pv_exit(EXIT_CORRUPT);
}

/* Reads and checks the header; formats a fresh disk. Exits on any problem. */
static void check_header(void)
{
	struct counter_header h;
	int rc = pv_disk_read_all(0, &h, sizeof(h));

	if (rc < 0)
		io_failed("read", 0, rc);
	if (counter_is_zero(&h, sizeof(h))) {
		struct counter_record first;
		rc = pv_disk_read_all(counter_record_offset(1), &first, sizeof(first));
		if (rc < 0)
			io_failed("read", 1, rc);
		if (!counter_is_zero(&first, sizeof(first)))
			corrupt(COUNTER_BAD_HEADER, 0);
		counter_header_fill(&h);
		rc = pv_disk_write_all(0, &h, sizeof(h));
		if (rc < 0)
			io_failed("write", 0, rc);
		rc = (int)pv_disk_flush();
		if (rc < 0)
			io_failed("flush", 0, rc);
		pv_printf("counter: formatted empty disk\n");
		return;
	}
	if (counter_header_check(&h) != COUNTER_OK)
		corrupt(COUNTER_BAD_HEADER, 0);
}

/* Verifies every record up to the first empty slot. Returns the number of
 * records and the last one in *last (zeroed when there is none). Exits on
 * corruption. Cost: one disk read per SCAN_RECORDS records. */
static uint64_t scan_log(uint64_t capacity, struct counter_record *last)
{
	uint64_t slot = 0;

	memset(last, 0, sizeof(*last));
	while (slot < capacity) {
		uint64_t n = capacity - slot;
		if (n > SCAN_RECORDS)
			n = SCAN_RECORDS;
		int rc = pv_disk_read_all(counter_record_offset(slot + 1), scan_buf,
					  n * sizeof(scan_buf[0]));
		if (rc < 0)
			io_failed("read", slot + 1, rc);
		for (uint64_t i = 0; i < n; i++, slot++) {
			const struct counter_record *r = &scan_buf[i];
			if (counter_is_zero(r, sizeof(*r)))
				return slot;
			enum counter_problem p = counter_record_check(r, slot, slot ? last : NULL);
			if (p != COUNTER_OK)
				corrupt(p, slot + 1);
			*last = *r;
		}
		/* Let the host breathe between chunks of a long log. */
		pv_yield();
	}
	return slot;
}

static uint64_t cmdline_u64(const struct pv_boot_info *bi, const char *key, uint64_t def)
{
	uint64_t v = def;
	if (pv_cmdline_u64(bi, key, &v) < 0) {
		pv_printf("counter: bad cmdline %s\n", key);
		pv_exit(1);
	}
	return v;
}

int main(const struct pv_boot_info *bi)
{
	uint64_t interval_ms = cmdline_u64(bi, "interval", 100);
	uint64_t count = cmdline_u64(bi, "count", 0);
	uint64_t nonce = counter_mix64(pv_clock_wall() ^ (pv_clock_mono() << 17) ^ rdtsc());
	struct counter_record last;

	nonce = cmdline_u64(bi, "nonce", nonce);
	if (bi->disk_size == 0) {
		pv_printf("counter: no disk\n");
		return EXIT_NO_DISK;
	}
	uint64_t capacity = counter_capacity(bi->disk_size);
	if (capacity == 0) {
		pv_printf("counter: disk full at seq 1\n");
		return EXIT_DISK_FULL;
	}

	check_header();
	uint64_t records = scan_log(capacity, &last);
	uint64_t boot = last.boot + 1;
	pv_printf("counter: verified %lu records, boot %lu\n", records, boot);
	if (pv_cmdline_has(bi, "verify-only"))
		return 0;
	pv_printf("counter: writer nonce 0x%lx\n", nonce);

	uint64_t interval_ns = interval_ms * 1000000u;
	uint64_t next = pv_clock_mono();
	for (uint64_t written = 0; count == 0 || written < count; written++) {
		uint64_t seq = records + written + 1;
		struct counter_record r;

		if (seq > capacity) {
			pv_printf("counter: disk full at seq %lu\n", seq);
			return EXIT_DISK_FULL;
		}
		counter_record_fill(&r, seq, boot, nonce);
		int64_t rc = pv_disk_write(counter_record_offset(seq), &r, sizeof(r));
		if (rc != (int64_t)sizeof(r))
			io_failed("write", seq, rc < 0 ? rc : -PV_EIO);
		rc = pv_disk_flush();
		if (rc < 0)
			io_failed("flush", seq, rc);
		pv_heartbeat(seq);
		pv_printf("counter: flushed seq %lu\n", seq);

		if (interval_ns) {
			uint64_t now = pv_clock_mono();
			next += interval_ns;
			if (next < now)
				next = now; /* fell behind: do not burst to catch up */
			else
				pv_sleep_until(next);
		}
	}
	pv_printf("counter: done, %lu records this boot\n", count);
	return 0;
}
