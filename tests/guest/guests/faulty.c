/*
 * faulty: a guest that misbehaves on purpose, so that tests can check that
 * each kind of bad guest ends as a stopped guest with the right reason and
 * nothing else is harmed.
 *
 * Command line: mode=M [code=N]. It prints "faulty: mode M", then:
 *   wild-write      8-byte store to WILD_ADDR (0x7ff000000000), outside RAM
 *   wild-read       8-byte load from WILD_ADDR
 *   wild-jump       calls a function pointer at WILD_ADDR
 *   ud2             executes ud2 (undefined instruction)
 *   div0            integer division by zero (divide error, vector 0)
 *   bad-hypercall   hypercall number 999
 *   bad-pointer     console write of 100 bytes at gpa mem_size - 10
 *   runaway         loops forever without a hypercall
 *   hlt             executes hlt
 *   stack-overflow  recurses without end; see stack_overflow() for where
 *   flood           writes 4 KiB lines to the console as fast as it can, for
 *                   ever (each write is a hypercall: it is not a runaway)
 *   exit            exits with code=N (default 0): a well-behaved control
 * A host that lets the guest go on after the misbehaviour gets the line
 * "faulty: survived M ..." and exit code 1. An unknown or missing mode prints
 * "faulty: unknown mode" and exits 1.
 */
#include "pv.h"

#define WILD_ADDR 0x7ff000000000ull

/* Each frame pushes a return address and writes one word of a 4 KiB local,
 * so the stack runs off the bottom of RAM in a few hundred calls. Called only
 * from stack_overflow()'s asm, hence `used`; noipa keeps its name and its
 * frame as written (clang has no noipa: noinline does it there). The test on
 * frame[0] never ends the recursion, but the compiler cannot know that (and
 * does not warn about infinite recursion). */
#ifdef __clang__
#define FAULTY_AS_WRITTEN __attribute__((used, noinline))
#else
#define FAULTY_AS_WRITTEN __attribute__((used, noipa))
#endif
FAULTY_AS_WRITTEN uint64_t faulty_recurse(uint64_t depth);
FAULTY_AS_WRITTEN uint64_t faulty_recurse(uint64_t depth)
{
	volatile uint64_t frame[512];
	frame[0] = depth;
	if (frame[0] == UINT64_MAX)
		return 0;
	return faulty_recurse(depth + 1) + frame[0];
}

/*
 * Moves the stack to just below the image (PV_IMAGE_MIN_GPA) and recurses
 * until a push falls below guest-physical 0. On its way the stack writes over
 * the free space below the image, the host area and the boot-info page, but
 * never over the guest's own code: recursing down from the boot stack would
 * rewrite the code being run on its way through the image, and the stop
 * reason would then depend on how the image happened to be laid out.
 */
static _Noreturn void stack_overflow(void)
{
	__asm__ volatile("movq %0, %%rsp\n\t"
			 "xorl %%edi, %%edi\n\t"
			 "call faulty_recurse\n\t"
			 "ud2"
			 :
			 : "i"((uint64_t)PV_IMAGE_MIN_GPA)
			 : "memory");
	__builtin_unreachable();
}

static _Noreturn void survived(const char *mode, int64_t rc)
{
	pv_printf("faulty: survived %s rc=%ld\n", mode, rc);
	pv_exit(1);
}

int main(const struct pv_boot_info *bi)
{
	char mode[32];
	int64_t rc = 0;

	if (pv_cmdline_get(bi, "mode", mode, sizeof(mode)) < 0) {
		pv_printf("faulty: unknown mode\n");
		return 1;
	}
	pv_printf("faulty: mode %s\n", mode);
	pv_console_flush();

	if (strcmp(mode, "wild-write") == 0) {
		*(volatile uint64_t *)WILD_ADDR = 0x0123456789abcdefull;
	} else if (strcmp(mode, "wild-read") == 0) {
		rc = (int64_t)*(volatile uint64_t *)WILD_ADDR;
	} else if (strcmp(mode, "wild-jump") == 0) {
		void (*volatile fn)(void) = (void (*)(void))WILD_ADDR;
		fn();
	} else if (strcmp(mode, "ud2") == 0) {
		__asm__ volatile("ud2");
	} else if (strcmp(mode, "div0") == 0) {
		volatile int64_t num = 42, den = 0;
		rc = num / den;
	} else if (strcmp(mode, "bad-hypercall") == 0) {
		rc = pv_hypercall0(999);
	} else if (strcmp(mode, "bad-pointer") == 0) {
		rc = pv_hypercall2(PV_HC_CONSOLE_WRITE, bi->mem_size - 10, 100);
	} else if (strcmp(mode, "runaway") == 0) {
		for (;;)
			__asm__ volatile("" ::: "memory");
	} else if (strcmp(mode, "flood") == 0) {
		static char line[4096];
		memset(line, 'F', sizeof(line) - 1);
		line[sizeof(line) - 1] = '\n';
		for (;;)
			pv_console_write(line, sizeof(line));
	} else if (strcmp(mode, "hlt") == 0) {
		__asm__ volatile("hlt");
	} else if (strcmp(mode, "stack-overflow") == 0) {
		stack_overflow();
	} else if (strcmp(mode, "exit") == 0) {
		uint64_t code = 0;
		if (pv_cmdline_u64(bi, "code", &code) < 0 || code > 255) {
			pv_printf("faulty: bad code\n");
			return 1;
		}
		return (int)code;
	} else {
		pv_printf("faulty: unknown mode\n");
		return 1;
	}
	survived(mode, rc);
}
