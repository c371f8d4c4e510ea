/*
 * The kvm backend on real guests, through libpvhv directly: the same guest
 * binary prints the same thing and misbehaves into the same stop kind as on
 * tcg; a guest saved on one backend finishes on the other (and on kvm again)
 * with the same output; a spinning guest comes back at its deadline and on a
 * kick; guest stores reach the dirty bitmap through KVM's dirty log.
 *
 * Every test skips, saying so, where /dev/kvm does not open. With
 * PVHA_TEST_KVM_AS=tcg in the environment the "kvm" side of every test runs
 * on tcg instead: that checks the tests themselves on a machine without
 * /dev/kvm, and proves nothing about kvm.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "pvhv/hv.h"

#define MEM (16ull << 20)
#define SLICE_NS (10ull * 1000 * 1000)
#define RUN_LIMIT_NS (60ull * 1000 * 1000 * 1000)

/* The backend under test: kvm, or tcg standing in for it (see the top). */
static enum hv_backend_kind kvm_kind = HV_BACKEND_KVM;

static void need_kvm(void)
{
	const char *as = getenv("PVHA_TEST_KVM_AS");
	if (as && strcmp(as, "tcg") == 0) {
		kvm_kind = HV_BACKEND_TCG;
		return;
	}
	if (!hv_kvm_available()) {
		print_message("kvm: /dev/kvm not available, skipping\n");
		skip();
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct console {
	char buf[64 * 1024];
	size_t len;
};

static void console_cb(void *ctx, const char *b, size_t n)
{
	struct console *c = ctx;
	if (c->len + n < sizeof(c->buf)) {
		memcpy(c->buf + c->len, b, n);
		c->len += n;
		c->buf[c->len] = '\0';
	}
}

/* The guest image build/guests/<name>.elf (malloc'd). */
static uint8_t *load_image(const char *name, size_t *len)
{
	char rel[64];
	snprintf(rel, sizeof(rel), "guests/%s.elf", name);
	const char *path = th_build(rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("no guest image %s (build the guests target)", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	assert_true(n > 0);
	uint8_t *img = malloc((size_t)n);
	assert_non_null(img);
	assert_int_equal(fread(img, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return img;
}

/* A machine on backend be with image loaded and cmdline given. */
static struct hv_machine *boot(enum hv_backend_kind be, const char *image, const char *cmdline,
			       uint64_t budget_ns, struct console *con)
{
	struct hv_config cfg = { .mem_size = MEM, .backend = be, .cmdline = cmdline,
				 .budget_ns = budget_ns, .console = console_cb, .console_ctx = con };
	struct hv_machine *m;
	int err = hv_machine_create(&cfg, &m);
	if (err)
		fail_msg("hv_machine_create on %s: %s", be == HV_BACKEND_TCG ? "tcg" : "kvm",
			 strerror(-err));
	size_t len;
	uint8_t *img = load_image(image, &len);
	assert_int_equal(hv_machine_load_elf(m, img, len), 0);
	free(img);
	return m;
}

/* Runs until the guest stops or reaches its break point (waiting out its
 * sleeps); fails after RUN_LIMIT_NS. Returns the last result. */
static enum hv_run_result run_until_stop_or_break(struct hv_machine *m)
{
	uint64_t end = now_ns() + RUN_LIMIT_NS;
	for (;;) {
		enum hv_run_result res;
		assert_int_equal(hv_machine_run(m, SLICE_NS, &res), 0);
		if (res == HV_RUN_STOPPED || res == HV_RUN_BREAK)
			return res;
		if (res == HV_RUN_SLEEPING) {
			uint64_t wake = hv_machine_wake_at(m), now = now_ns();
			if (wake > now) {
				uint64_t d = wake - now > 50000000 ? 50000000 : wake - now;
				struct timespec ts = { 0, (long)d };
				nanosleep(&ts, NULL);
			}
		}
		if (now_ns() > end)
			fail_msg("guest still running after %llu s",
				 (unsigned long long)(RUN_LIMIT_NS / 1000000000));
	}
}

/* Runs a guest to its end and returns its stop (and its console in con). */
static struct hv_stop_info run_guest(enum hv_backend_kind be, const char *image,
				     const char *cmdline, uint64_t budget_ns, struct console *con)
{
	struct hv_machine *m = boot(be, image, cmdline, budget_ns, con);
	assert_int_equal(run_until_stop_or_break(m), HV_RUN_STOPPED);
	struct hv_stop_info si = *hv_machine_stop_info(m);
	hv_machine_destroy(m);
	return si;
}

/* Saves m (which it destroys) and restores the state on backend to. */
static struct hv_machine *move(struct hv_machine *m, enum hv_backend_kind to, struct console *con)
{
	int fd = memfd_create("pvha-test-state", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(hv_machine_save_fd(m, fd), 0);
	hv_machine_destroy(m);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	struct hv_config cfg = { .backend = to, .console = console_cb, .console_ctx = con };
	struct hv_machine *n = NULL;
	char why[256] = "";
	int err = hv_machine_restore_fd(&cfg, fd, &n, why, sizeof(why));
	close(fd);
	if (err)
		fail_msg("restore on %s: %s (%s)", to == HV_BACKEND_TCG ? "tcg" : "kvm", why,
			 strerror(-err));
	return n;
}

static void hello_on_kvm_prints_what_it_prints_on_tcg(void **state)
{
	(void)state;
	need_kvm();
	static struct console ref, got;
	ref.len = got.len = 0;
	struct hv_stop_info a = run_guest(HV_BACKEND_TCG, "hello", "role=test x=1", 0, &ref);
	struct hv_stop_info b = run_guest(kvm_kind, "hello", "role=test x=1", 0, &got);
	assert_int_equal(a.kind, HV_STOP_EXIT);
	assert_int_equal(b.kind, HV_STOP_EXIT);
	assert_int_equal(b.code, 0);
	assert_non_null(strstr(got.buf, "hello from pvha guest"));
	assert_non_null(strstr(got.buf, "hello: mem_size 16777216"));
	assert_non_null(strstr(got.buf, "role=test x=1"));
	assert_string_equal(got.buf, ref.buf);
}

struct fault_case {
	const char *mode;
	enum hv_stop_kind kind;
	const char *detail;  /* in the kvm reason */
	bool same_addr;      /* the stop's address must match tcg's */
};

static const struct fault_case faults[] = {
	{ "wild-write", HV_STOP_MEMORY_FAULT, "write to unmapped address 0x7ff000000000", true },
	{ "wild-read", HV_STOP_MEMORY_FAULT, "read from unmapped address 0x7ff000000000", true },
	{ "wild-jump", HV_STOP_MEMORY_FAULT, "unmapped address 0x7ff000000000", true },
	{ "ud2", HV_STOP_ILLEGAL_INSN, "illegal instruction at rip 0x", false },
	{ "div0", HV_STOP_CPU_EXCEPTION, "divide error (vector 0) at rip 0x", false },
	{ "bad-hypercall", HV_STOP_BAD_HYPERCALL, "unknown number 999", true },
	{ "bad-pointer", HV_STOP_BAD_HYPERCALL, "console_write: buffer outside guest RAM", true },
	{ "runaway", HV_STOP_RUNAWAY, "no hypercall for", true },
	{ "hlt", HV_STOP_HALT, "hlt at rip 0x", false },
	/* tcg lets the stack run through the host area to below 0; kvm keeps
	 * the host area read-only and stops the guest there. */
	{ "stack-overflow", HV_STOP_MEMORY_FAULT, "memory fault: write to", false },
};

static void misbehaving_guest_on_kvm_stops_like_on_tcg(void **state)
{
	const struct fault_case *fc = *state;
	need_kvm();
	static struct console ref, got;
	char cmdline[64];
	uint64_t budget = 300ull * 1000 * 1000;
	snprintf(cmdline, sizeof(cmdline), "mode=%s", fc->mode);
	ref.len = got.len = 0;

	uint64_t t0 = now_ns();
	struct hv_stop_info k = run_guest(kvm_kind, "faulty", cmdline, budget, &got);
	uint64_t took = now_ns() - t0;
	struct hv_stop_info t = run_guest(HV_BACKEND_TCG, "faulty", cmdline, budget, &ref);
	print_message("%s: kvm: %s: %s\n", fc->mode, hv_stop_kind_name(k.kind), k.reason);
	print_message("%s: tcg: %s: %s\n", fc->mode, hv_stop_kind_name(t.kind), t.reason);

	char banner[64];
	snprintf(banner, sizeof(banner), "faulty: mode %s", fc->mode);
	assert_non_null(strstr(got.buf, banner));
	assert_null(strstr(got.buf, "survived"));
	assert_int_equal(k.kind, fc->kind);
	assert_int_equal(t.kind, fc->kind);
	if (!strstr(k.reason, fc->detail))
		fail_msg("%s: expected \"%s\" in \"%s\"", fc->mode, fc->detail, k.reason);
	if (fc->same_addr) {
		assert_int_equal(k.addr, t.addr);
		assert_int_equal(k.code, t.code);
	}
	if (fc->kind == HV_STOP_RUNAWAY)
		assert_true(took < 5ull * budget); /* the tick enforces the budget */
}

static int fault_setup(void **state)
{
	static size_t next;
	*state = (void *)&faults[next++ % (sizeof(faults) / sizeof(faults[0]))];
	return 0;
}

/* Runs image on from to hypercall `at`, moves it to `to`, runs it to the
 * end; con gets both parts of the console. Returns the stop. */
static struct hv_stop_info run_moved(const char *image, const char *cmdline,
				     enum hv_backend_kind from, enum hv_backend_kind to,
				     uint64_t at, struct console *con)
{
	struct hv_machine *m = boot(from, image, cmdline, 0, con);
	hv_machine_break_after(m, at);
	if (run_until_stop_or_break(m) != HV_RUN_BREAK)
		fail_msg("%s stopped before hypercall %llu: %s", image, (unsigned long long)at,
			 hv_machine_stop_info(m)->reason);
	m = move(m, to, con);
	assert_int_equal(run_until_stop_or_break(m), HV_RUN_STOPPED);
	struct hv_stop_info si = *hv_machine_stop_info(m);
	hv_machine_destroy(m);
	return si;
}

struct move_case {
	const char *name;
	bool from_kvm, to_kvm;
};

static const struct move_case moves[] = {
	{ "kvm -> tcg", true, false },
	{ "tcg -> kvm", false, true },
	{ "kvm -> kvm", true, true },
};

static enum hv_backend_kind side(bool kvm)
{
	return kvm ? kvm_kind : HV_BACKEND_TCG;
}

static void hello_moved_between_backends_prints_the_same(void **state)
{
	(void)state;
	need_kvm();
	static struct console ref, got;
	ref.len = 0;
	run_guest(HV_BACKEND_TCG, "hello", "moved=1", 0, &ref);
	const uint64_t points[] = { 1, 3, 5 };
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		for (size_t j = 0; j < sizeof(points) / sizeof(points[0]); j++) {
			got.len = 0;
			got.buf[0] = '\0';
			struct hv_stop_info si = run_moved("hello", "moved=1", side(moves[i].from_kvm),
							   side(moves[i].to_kvm), points[j], &got);
			if (si.kind != HV_STOP_EXIT || si.code != 0)
				fail_msg("%s at hypercall %llu: %s", moves[i].name,
					 (unsigned long long)points[j], si.reason);
			if (strcmp(got.buf, ref.buf) != 0)
				fail_msg("%s at hypercall %llu printed\n%s\ninstead of\n%s", moves[i].name,
					 (unsigned long long)points[j], got.buf, ref.buf);
		}
	}
}

/* The "cpubench: checksum ..." line of a console (in a static buffer). */
static const char *checksum_line(const struct console *c)
{
	static char line[256];
	const char *p = strstr(c->buf, "cpubench: checksum");
	if (!p)
		fail_msg("no checksum line in:\n%s", c->buf);
	size_t n = strcspn(p, "\n");
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	return line;
}

static void cpubench_moved_between_backends_keeps_its_checksum(void **state)
{
	(void)state;
	need_kvm();
	static struct console ref, got;
	/* Small chunks: the moves land between yields inside every kernel. */
	const char *cmd = "iters=300000 chunk=50000";
	char want[256];
	ref.len = 0;
	struct hv_stop_info si = run_guest(HV_BACKEND_TCG, "cpubench", cmd, 0, &ref);
	assert_int_equal(si.kind, HV_STOP_EXIT);
	snprintf(want, sizeof(want), "%s", checksum_line(&ref));

	got.len = 0;
	si = run_guest(kvm_kind, "cpubench", cmd, 0, &got);
	assert_int_equal(si.kind, HV_STOP_EXIT);
	assert_string_equal(checksum_line(&got), want);

	const uint64_t points[] = { 3, 10, 20 };
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++) {
		for (size_t j = 0; j < sizeof(points) / sizeof(points[0]); j++) {
			got.len = 0;
			got.buf[0] = '\0';
			si = run_moved("cpubench", cmd, side(moves[i].from_kvm), side(moves[i].to_kvm),
				       points[j], &got);
			if (si.kind != HV_STOP_EXIT || si.code != 0)
				fail_msg("%s at hypercall %llu: %s", moves[i].name,
					 (unsigned long long)points[j], si.reason);
			if (strcmp(checksum_line(&got), want) != 0)
				fail_msg("%s at hypercall %llu: \"%s\", want \"%s\"", moves[i].name,
					 (unsigned long long)points[j], checksum_line(&got), want);
		}
	}
}

static void *kick_later(void *arg)
{
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	hv_machine_kick(arg);
	return NULL;
}

static void spinning_guest_on_kvm_returns_at_deadline_and_on_kick(void **state)
{
	(void)state;
	need_kvm();
	static struct console con;
	con.len = 0;
	struct hv_machine *m = boot(kvm_kind, "faulty", "mode=runaway", 60ull * 1000000000, &con);
	enum hv_run_result res;

	/* Run until the guest spins (it prints its banner first). */
	for (int i = 0; i < 100 && !strstr(con.buf, "faulty: mode runaway"); i++)
		assert_int_equal(hv_machine_run(m, SLICE_NS, &res), 0);
	assert_non_null(strstr(con.buf, "faulty: mode runaway"));

	uint64_t t0 = now_ns();
	assert_int_equal(hv_machine_run(m, 20ull * 1000000, &res), 0);
	uint64_t took = now_ns() - t0;
	assert_int_equal(res, HV_RUN_PREEMPTED);
	print_message("deadline 20 ms: back after %.1f ms\n", (double)took / 1e6);
	assert_true(took >= 20ull * 1000000 && took < 200ull * 1000000);

	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, kick_later, m), 0);
	t0 = now_ns();
	assert_int_equal(hv_machine_run(m, 30ull * 1000000000, &res), 0);
	took = now_ns() - t0;
	pthread_join(th, NULL);
	assert_int_equal(res, HV_RUN_PREEMPTED);
	print_message("kick after 50 ms: back after %.1f ms\n", (double)took / 1e6);
	assert_true(took < 1000ull * 1000000);
	assert_int_equal(hv_machine_stop_info(m)->kind, HV_STOP_NONE);
	hv_machine_destroy(m);
}

static bool bit(const uint64_t *bm, uint64_t gpa)
{
	uint64_t p = gpa / PV_PAGE_SIZE;
	return bm[p / 64] & (1ull << (p % 64));
}

/* Runs until the guest yields; fails if it stops first. */
static void run_to_yield(struct hv_machine *m)
{
	for (int i = 0; i < 10000; i++) {
		enum hv_run_result res;
		assert_int_equal(hv_machine_run(m, SLICE_NS, &res), 0);
		if (res == HV_RUN_YIELDED)
			return;
		if (res == HV_RUN_STOPPED)
			fail_msg("guest stopped before yielding: %s", hv_machine_stop_info(m)->reason);
	}
	fail_msg("guest never yielded");
}

static void guest_stores_on_kvm_reach_the_dirty_bitmap(void **state)
{
	(void)state;
	need_kvm();
	static const struct {
		const char *mode;
		uint64_t pages[5];
	} cases[] = {
		{ "plain", { 0x400000, 0x402000, 0x404000 } },
		{ "rep-stos", { 0x430000, 0x431000, 0x432000, 0x433000 } },
		{ "sse", { 0x450000 } },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		static struct console con;
		char cmdline[32];
		con.len = 0;
		snprintf(cmdline, sizeof(cmdline), "mode=%s", cases[c].mode);
		struct hv_machine *m = boot(kvm_kind, "dirty", cmdline, 0, &con);
		uint64_t *bm = calloc(hv_machine_dirty_words(m), sizeof(uint64_t));
		assert_non_null(bm);

		run_to_yield(m);
		assert_true(hv_machine_dirty_collect(m, bm) > 0); /* the load and the boot */
		run_to_yield(m);
		hv_machine_dirty_collect(m, bm);
		for (size_t i = 0; i < 5 && cases[c].pages[i]; i++)
			if (!bit(bm, cases[c].pages[i]))
				fail_msg("mode %s: page 0x%llx written but not dirty", cases[c].mode,
					 (unsigned long long)cases[c].pages[i]);
		/* Nothing below the stack but those (the CPU writes no page-table bits). */
		for (uint64_t gpa = 0; gpa < MEM - 64 * 1024; gpa += PV_PAGE_SIZE) {
			bool want = false;
			for (size_t i = 0; i < 5 && cases[c].pages[i]; i++)
				want |= cases[c].pages[i] == gpa;
			if (bit(bm, gpa) && !want)
				fail_msg("mode %s: page 0x%llx dirty but not written", cases[c].mode,
					 (unsigned long long)gpa);
		}
		assert_int_equal(run_until_stop_or_break(m), HV_RUN_STOPPED);
		assert_int_equal(hv_machine_stop_info(m)->kind, HV_STOP_EXIT);
		if (!strstr(con.buf, "dirty: ok"))
			fail_msg("mode %s: guest says: %s", cases[c].mode, con.buf);
		free(bm);
		hv_machine_destroy(m);
	}
}

static void kvm_backend_names_itself(void **state)
{
	(void)state;
	need_kvm();
	static struct console con;
	con.len = 0;
	struct hv_machine *m = boot(kvm_kind, "hello", NULL, 0, &con);
	struct hv_machine_stats st;
	hv_machine_get_stats(m, &st);
	assert_string_equal(st.backend, kvm_kind == HV_BACKEND_KVM ? "kvm" : "tcg");
	hv_machine_destroy(m);
}

int main(void)
{
#define FAULT cmocka_unit_test_setup(misbehaving_guest_on_kvm_stops_like_on_tcg, fault_setup)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kvm_backend_names_itself),
		cmocka_unit_test(hello_on_kvm_prints_what_it_prints_on_tcg),
		FAULT, FAULT, FAULT, FAULT, FAULT, FAULT, FAULT, FAULT, FAULT, FAULT,
		cmocka_unit_test(hello_moved_between_backends_prints_the_same),
		cmocka_unit_test(cpubench_moved_between_backends_keeps_its_checksum),
		cmocka_unit_test(spinning_guest_on_kvm_returns_at_deadline_and_on_kick),
		cmocka_unit_test(guest_stores_on_kvm_reach_the_dirty_bitmap),
	};
	_Static_assert(sizeof(faults) / sizeof(faults[0]) == 10, "one FAULT entry per case");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
