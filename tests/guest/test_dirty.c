/*
 * Dirty-page tracking on real guest stores (tests/guest/guests/dirty.c): plain
 * stores, load-then-store, atomics, rep stos, a store that crosses a page, a
 * 16-byte SSE store; and host writes into guest RAM. Each mode must mark exactly
 * the pages it wrote (plus stack pages at the top of RAM), and the guest must
 * read back what it wrote (the store landed in host memory).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "pvhv/hv.h"

#define MEM (32ull << 20)
#define STACK_ZONE (MEM - (64u << 10)) /* pages at or above this are the stack */

struct console { char buf[4096]; size_t len; };

static void console_cb(void *ctx, const char *b, size_t n)
{
	struct console *c = ctx;
	if (c->len + n < sizeof(c->buf)) {
		memcpy(c->buf + c->len, b, n);
		c->len += n;
		c->buf[c->len] = '\0';
	}
}

static uint8_t *load_image(size_t *len)
{
	FILE *f = fopen(th_build("guests/dirty.elf"), "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *img = malloc(*len);
	assert_int_equal(fread(img, 1, *len, f), *len);
	fclose(f);
	return img;
}

static struct hv_machine *boot(const char *mode, struct console *con)
{
	struct hv_config cfg = { .mem_size = MEM, .backend = HV_BACKEND_TCG,
				 .console = console_cb, .console_ctx = con };
	char cmdline[64];
	snprintf(cmdline, sizeof(cmdline), "mode=%s", mode);
	cfg.cmdline = cmdline;
	struct hv_machine *m;
	assert_int_equal(hv_machine_create(&cfg, &m), 0);
	size_t len;
	uint8_t *img = load_image(&len);
	assert_int_equal(hv_machine_load_elf(m, img, len), 0);
	free(img);
	return m;
}

/* Runs until the guest yields; fails if it stops first. */
static void run_to_yield(struct hv_machine *m)
{
	for (int i = 0; i < 100000; i++) {
		enum hv_run_result res;
		assert_int_equal(hv_machine_run(m, 10000000, &res), 0);
		if (res == HV_RUN_YIELDED)
			return;
		if (res == HV_RUN_STOPPED)
			fail_msg("guest stopped before yielding: %s", hv_machine_stop_info(m)->reason);
	}
	fail_msg("guest never yielded");
}

static bool bit(const uint64_t *bm, uint64_t gpa)
{
	uint64_t p = gpa / PV_PAGE_SIZE;
	return bm[p / 64] & (1ull << (p % 64));
}

struct mode_case {
	const char *mode;
	uint64_t pages[5]; /* expected dirty pages, 0-terminated */
};

static const struct mode_case modes[] = {
	{ "plain", { 0x400000, 0x402000, 0x404000 } },
	{ "load-store", { 0x410000 } },
	{ "atomic", { 0x420000 } },
	{ "rep-stos", { 0x430000, 0x431000, 0x432000, 0x433000 } },
	{ "cross", { 0x440000, 0x441000 } },
	{ "sse", { 0x450000 } },
};

static void stores_mark_exactly_their_pages(void **state)
{
	const struct mode_case *mc = *state;
	struct console con = { .len = 0 };
	struct hv_machine *m = boot(mc->mode, &con);
	size_t words = hv_machine_dirty_words(m);
	uint64_t *bm = calloc(words, sizeof(uint64_t));

	run_to_yield(m);
	/* The image load and the boot wrote RAM: those were dirty. */
	assert_true(hv_machine_dirty_collect(m, bm) > 0);
	assert_true(bit(bm, 0x100000));
	run_to_yield(m);
	uint64_t n = hv_machine_dirty_collect(m, bm);

	size_t expected = 0;
	for (; expected < 5 && mc->pages[expected]; expected++)
		if (!bit(bm, mc->pages[expected]))
			fail_msg("mode %s: page 0x%llx written but not marked dirty", mc->mode,
				 (unsigned long long)mc->pages[expected]);
	/* Nothing else outside the stack. */
	uint64_t others = 0;
	for (uint64_t gpa = 0; gpa < STACK_ZONE; gpa += PV_PAGE_SIZE) {
		bool want = false;
		for (size_t i = 0; i < expected; i++)
			want |= mc->pages[i] == gpa;
		if (bit(bm, gpa) && !want) {
			print_message("mode %s: unexpected dirty page 0x%llx\n", mc->mode,
				      (unsigned long long)gpa);
			others++;
		}
	}
	assert_int_equal(others, 0);
	assert_true(n >= expected);

	/* And the guest reads back what it stored. */
	for (int i = 0; i < 1000; i++) {
		enum hv_run_result res;
		assert_int_equal(hv_machine_run(m, 10000000, &res), 0);
		if (res == HV_RUN_STOPPED)
			break;
	}
	const struct hv_stop_info *si = hv_machine_stop_info(m);
	assert_int_equal(si->kind, HV_STOP_EXIT);
	if (!strstr(con.buf, "dirty: ok"))
		fail_msg("mode %s: guest says: %s", mc->mode, con.buf);
	assert_int_equal(si->code, 0);
	free(bm);
	hv_machine_destroy(m);
}

static void host_writes_mark_pages_dirty(void **state)
{
	(void)state;
	struct console con = { .len = 0 };
	struct hv_machine *m = boot("plain", &con);
	size_t words = hv_machine_dirty_words(m);
	uint64_t *bm = calloc(words, sizeof(uint64_t));
	hv_machine_dirty_collect(m, bm);
	assert_int_equal(hv_machine_dirty_collect(m, bm), 0);
	uint8_t data[PV_PAGE_SIZE + 16];
	memset(data, 0x77, sizeof(data));
	assert_int_equal(hv_machine_write_ram(m, 0x600ff8, data, sizeof(data)), 0);
	assert_int_equal(hv_machine_dirty_collect(m, bm), 3);
	assert_true(bit(bm, 0x600000) && bit(bm, 0x601000) && bit(bm, 0x602000));
	assert_int_equal(hv_machine_write_ram(m, MEM - 8, data, 16), -EFAULT);
	free(bm);
	hv_machine_destroy(m);
}

static int mode_setup(void **state)
{
	static size_t next;
	*state = (void *)&modes[next++];
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define MODE cmocka_unit_test_setup(stores_mark_exactly_their_pages, mode_setup)
		MODE, MODE, MODE, MODE, MODE, MODE,
		cmocka_unit_test(host_writes_mark_pages_dirty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
