/*
 * ABI v1 argument checks, driven straight through hv_hypercall() on a machine
 * with no guest code: every pointer, length and disk range a guest can pass is
 * checked, a broken guest is stopped with a reason naming the call, and the
 * conditions a correct guest can meet come back as -errno.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"

#define MEM (4ull << 20)

struct fixture {
	struct hv_machine *m;
	struct hv_disk *disk;
	char disk_path[64];
	char console[256];
	size_t console_len;
};

static void console_cb(void *ctx, const char *buf, size_t len)
{
	struct fixture *f = ctx;
	if (f->console_len + len < sizeof(f->console)) {
		memcpy(f->console + f->console_len, buf, len);
		f->console_len += len;
	}
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->disk_path, sizeof(f->disk_path), "/tmp/pvha-abi-%d.img", (int)getpid());
	unlink(f->disk_path);
	assert_int_equal(hv_disk_file_open(f->disk_path, 64 * 1024, &f->disk), 0);
	struct hv_config cfg = { .mem_size = MEM, .backend = HV_BACKEND_TCG, .disk = f->disk,
				 .console = console_cb, .console_ctx = f };
	assert_int_equal(hv_machine_create(&cfg, &f->m), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	hv_machine_destroy(f->m);
	hv_disk_close(f->disk);
	unlink(f->disk_path);
	free(f);
	return 0;
}

static int64_t hc(struct fixture *f, uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint64_t args[4] = { a0, a1, a2, 0 };
	return (int64_t)hv_hypercall(f->m, nr, args);
}

static void assert_stopped(struct fixture *f, enum hv_stop_kind kind, const char *why)
{
	const struct hv_stop_info *s = hv_machine_stop_info(f->m);
	assert_int_equal(s->kind, kind);
	if (!strstr(s->reason, why))
		fail_msg("reason \"%s\" lacks \"%s\"", s->reason, why);
}

static void assert_running(struct fixture *f)
{
	assert_int_equal(hv_machine_stop_info(f->m)->kind, HV_STOP_NONE);
}

static void abi_version_is_the_newest_before_an_image_says(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hc(f, PV_HC_ABI_VERSION, 0, 0, 0), PV_ABI_VERSION);
	assert_running(f);
}

static void console_write_inside_ram_reaches_the_console(void **state)
{
	struct fixture *f = *state;
	memcpy(hv_machine_ram(f->m) + 0x200000, "hi there", 8);
	assert_int_equal(hc(f, PV_HC_CONSOLE_WRITE, 0x200000, 8, 0), 8);
	assert_int_equal(f->console_len, 8);
	assert_memory_equal(f->console, "hi there", 8);
	/* the last byte of RAM is fine */
	assert_int_equal(hc(f, PV_HC_CONSOLE_WRITE, MEM - 1, 1, 0), 1);
	assert_int_equal(hc(f, PV_HC_CONSOLE_WRITE, 0, 0, 0), 0);
	assert_running(f);
}

static void console_write_past_ram_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hc(f, PV_HC_CONSOLE_WRITE, MEM - 4, 8, 0), -EINVAL);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "console_write: buffer outside guest RAM");
	assert_int_equal(f->console_len, 0);
}

static void console_write_with_wrapping_pointer_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_CONSOLE_WRITE, UINT64_MAX - 2, 16, 0);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "buffer outside guest RAM");
}

static void console_write_over_its_maximum_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_CONSOLE_WRITE, 0, PV_CONSOLE_MAX + 1, 0);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "length over PV_CONSOLE_MAX");
}

static void unknown_hypercall_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_COUNT, 0, 0, 0);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "unknown number 20");
}

static void disk_round_trip_and_range_checks(void **state)
{
	struct fixture *f = *state;
	uint8_t *ram = hv_machine_ram(f->m);
	memset(ram + 0x300000, 0xab, 4096);
	assert_int_equal(hc(f, PV_HC_DISK_WRITE, 1000, 0x300000, 4096), 4096);
	assert_int_equal(hc(f, PV_HC_DISK_FLUSH, 0, 0, 0), 0);
	assert_int_equal(hc(f, PV_HC_DISK_READ, 1000, 0x310000, 4096), 4096);
	assert_memory_equal(ram + 0x300000, ram + 0x310000, 4096);
	/* exactly to the end of the disk is fine */
	assert_int_equal(hc(f, PV_HC_DISK_READ, 64 * 1024 - 10, 0x320000, 10), 10);
	assert_running(f);
}

static void disk_read_past_the_end_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_DISK_READ, 64 * 1024 - 10, 0x320000, 11);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "disk_read: disk range past the end");
}

static void disk_offset_wrapping_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_DISK_WRITE, UINT64_MAX - 100, 0x320000, 512);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "disk_write: disk range past the end");
}

static void disk_buffer_outside_ram_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_DISK_READ, 0, MEM - 100, 512);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "disk_read: buffer outside guest RAM");
}

static void disk_io_over_its_maximum_stops_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_DISK_READ, 0, 0x100000, PV_DISK_IO_MAX + 512);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "length over PV_DISK_IO_MAX");
}

static void no_disk_is_an_error_not_a_stop(void **state)
{
	(void)state;
	struct hv_machine *m;
	struct hv_config cfg = { .mem_size = MEM, .backend = HV_BACKEND_TCG };
	assert_int_equal(hv_machine_create(&cfg, &m), 0);
	uint64_t args[4] = { 0, 0x100000, 512, 0 };
	assert_int_equal((int64_t)hv_hypercall(m, PV_HC_DISK_READ, args), -PV_ENODEV);
	assert_int_equal((int64_t)hv_hypercall(m, PV_HC_DISK_FLUSH, args), -PV_ENODEV);
	assert_int_equal(hv_machine_stop_info(m)->kind, HV_STOP_NONE);
	hv_machine_destroy(m);
}

static void exit_codes_over_255_stop_the_guest(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_EXIT, 256, 0, 0);
	assert_stopped(f, HV_STOP_BAD_HYPERCALL, "exit code over 255");
}

static void exit_records_the_code(void **state)
{
	struct fixture *f = *state;
	hc(f, PV_HC_EXIT, 7, 0, 0);
	assert_stopped(f, HV_STOP_EXIT, "guest exited with code 7");
	assert_int_equal(hv_machine_stop_info(f->m)->code, 7);
}

static void sleep_until_the_past_returns_at_once(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(hc(f, PV_HC_SLEEP_UNTIL, 0, 0, 0), 0);
	assert_false(f->m->sleeping);
	assert_int_equal(hc(f, PV_HC_SLEEP_UNTIL, UINT64_MAX, 0, 0), 0);
	assert_true(f->m->sleeping);
	assert_running(f);
}

static void heartbeat_is_recorded(void **state)
{
	struct fixture *f = *state;
	struct hv_machine_stats s;
	assert_int_equal(hc(f, PV_HC_HEARTBEAT, 42, 0, 0), 0);
	hv_machine_get_stats(f->m, &s);
	assert_int_equal(s.heartbeat_seq, 42);
	assert_int_equal(s.hypercalls, 1);
}

static void config_is_checked(void **state)
{
	(void)state;
	struct hv_machine *m;
	struct hv_config cfg = { .mem_size = MEM + 4096, .backend = HV_BACKEND_TCG };
	assert_int_equal(hv_machine_create(&cfg, &m), -EINVAL);
	cfg.mem_size = 1 << 20;
	assert_int_equal(hv_machine_create(&cfg, &m), -EINVAL);
	cfg.mem_size = PV_MEM_MAX + (1 << 20);
	assert_int_equal(hv_machine_create(&cfg, &m), -EINVAL);
	char big[PV_CMDLINE_MAX + 1];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cfg.mem_size = MEM;
	cfg.cmdline = big;
	assert_int_equal(hv_machine_create(&cfg, &m), -E2BIG);
	enum hv_backend_kind k;
	assert_int_equal(hv_backend_parse("tcg", &k), 0);
	assert_int_equal(k, HV_BACKEND_TCG);
	assert_int_equal(hv_backend_parse("TCG", &k), -EINVAL);
	assert_int_equal(hv_backend_parse("", &k), -EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(abi_version_is_the_newest_before_an_image_says),
		T(console_write_inside_ram_reaches_the_console),
		T(console_write_past_ram_stops_the_guest),
		T(console_write_with_wrapping_pointer_stops_the_guest),
		T(console_write_over_its_maximum_stops_the_guest),
		T(unknown_hypercall_stops_the_guest),
		T(disk_round_trip_and_range_checks),
		T(disk_read_past_the_end_stops_the_guest),
		T(disk_offset_wrapping_stops_the_guest),
		T(disk_buffer_outside_ram_stops_the_guest),
		T(disk_io_over_its_maximum_stops_the_guest),
		cmocka_unit_test(no_disk_is_an_error_not_a_stop),
		T(exit_codes_over_255_stop_the_guest),
		T(exit_records_the_code),
		T(sleep_until_the_past_returns_at_once),
		T(heartbeat_is_recorded),
		cmocka_unit_test(config_is_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
