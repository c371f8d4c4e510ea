/*
 * Time a guest spends waiting on its disk is the host's, not the guest's:
 * a flush that blocks longer than the runaway budget (an OSD outage, a slow
 * disk) must not stop the guest as a runaway. The counter guest writes and
 * flushes three records on a disk whose every flush takes 3 budgets; it must
 * end by itself (exit 0), not as a runaway. The machine's disk counters
 * (hv_machine_get_stats, pvhad's disk metrics) count every call and at least
 * the time the flushes slept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pvhv/hv.h"

#define BUDGET_NS (100ull * 1000 * 1000)
#define FLUSH_NS (3 * BUDGET_NS)

/* A file disk whose flush first waits FLUSH_NS. */
struct slow {
	struct hv_disk d;
	struct hv_disk *inner;
	unsigned flushes;
};

static int slow_read(struct hv_disk *d, void *buf, uint64_t off, size_t len)
{
	struct slow *s = d->priv;
	return s->inner->ops->read(s->inner, buf, off, len);
}

static int slow_write(struct hv_disk *d, const void *buf, uint64_t off, size_t len)
{
	struct slow *s = d->priv;
	return s->inner->ops->write(s->inner, buf, off, len);
}

static int slow_flush(struct hv_disk *d)
{
	struct slow *s = d->priv;
	struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)FLUSH_NS };
	nanosleep(&ts, NULL);
	s->flushes++;
	return s->inner->ops->flush(s->inner);
}

static void slow_close(struct hv_disk *d)
{
	struct slow *s = d->priv;
	hv_disk_close(s->inner);
}

static const struct hv_disk_ops slow_ops = {
	.name = "slow", .read = slow_read, .write = slow_write, .flush = slow_flush, .close = slow_close,
};

static void console_cb(void *ctx, const char *buf, size_t len)
{
	(void)ctx;
	fwrite(buf, 1, len, stderr);
}

static void flush_longer_than_the_budget_is_not_a_runaway(void **state)
{
	(void)state;
	struct slow s = { 0 };
	unlink(th_tmp("slow.img"));
	assert_int_equal(hv_disk_file_open(th_tmp("slow.img"), 4u << 20, &s.inner), 0);
	s.d = (struct hv_disk){ .ops = &slow_ops, .size = s.inner->size, .priv = &s };

	struct hv_config cfg = { .mem_size = 16u << 20, .backend = HV_BACKEND_TCG, .disk = &s.d,
				 .cmdline = "interval=0 count=3", .budget_ns = BUDGET_NS,
				 .console = console_cb };
	struct hv_machine *m;
	assert_int_equal(hv_machine_create(&cfg, &m), 0);
	char *img = th_slurp(th_build("guests/counter.elf"));
	assert_non_null(img);
	FILE *f = fopen(th_build("guests/counter.elf"), "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	fclose(f);
	assert_int_equal(hv_machine_load_elf(m, img, (size_t)len), 0);
	free(img);

	enum hv_run_result res = HV_RUN_YIELDED;
	for (int i = 0; i < 100000 && res != HV_RUN_STOPPED; i++)
		assert_int_equal(hv_machine_run(m, 10000000, &res), 0);
	const struct hv_stop_info *st = hv_machine_stop_info(m);
	assert_int_equal(res, HV_RUN_STOPPED);
	if (st->kind != HV_STOP_EXIT)
		fail_msg("the guest stopped as %d: %s", st->kind, st->reason);
	assert_int_equal(st->code, 0);
	assert_true(s.flushes >= 3);
	struct hv_machine_stats stats;
	hv_machine_get_stats(m, &stats);
	assert_int_equal(stats.disk.flushes, s.flushes);
	assert_true(stats.disk.flush_ns >= s.flushes * FLUSH_NS);
	assert_true(stats.disk.writes >= 3);
	assert_true(stats.disk.write_bytes >= 3 * 16); /* a record is at least a header */
	assert_true(stats.disk.reads >= 1);           /* the log is read at boot */
	hv_machine_destroy(m);
	slow_close(&s.d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(flush_longer_than_the_budget_is_not_a_runaway),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
