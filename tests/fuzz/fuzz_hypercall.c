/*
 * Fuzz harness: the hypercall argument checks (hv_hypercall, hv-core's one
 * entry for every ABI v1 call, whichever backend trapped it). The input is a
 * sequence of calls, 33 bytes each (number mod 32, so unknown numbers come
 * too, then four 64-bit arguments as rdi, rsi, r10, r8), made on a fresh 2
 * MiB machine with a 64 KiB file disk and no network (the ABI v2 socket
 * calls are reached on their no-network path only); bytes left over are first written
 * into guest RAM at 0x10000, so buffers hold something. After each call the
 * harness checks what a call may leave behind: a stopped machine says why,
 * and a sleeping one wakes no earlier than the time it asked for.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "internal.h"
#include "pvhv/abi.h"
#include "pvhv/hv.h"

#define CALL_BYTES 33u
#define DISK_BYTES (64u * 1024u)

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static struct hv_disk *disk(void)
{
	static struct hv_disk *d;
	if (!d) {
		char path[] = "/tmp/pvha-fuzz-disk-XXXXXX";
		int fd = mkstemp(path);
		if (fd < 0 || ftruncate(fd, DISK_BYTES) != 0 || hv_disk_file_open(path, DISK_BYTES, &d) != 0)
			abort();
		unlink(path);
		close(fd);
	}
	return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hv_config cfg = { .mem_size = 2u << 20, .backend = HV_BACKEND_TCG, .disk = disk() };
	struct hv_machine *m;
	if (hv_machine_create(&cfg, &m) != 0)
		abort();
	/* the guest's clock runs, from 0, as hv_machine_run starts it: a
	 * hypercall only ever comes from a running guest */
	m->clock_offset = -(int64_t)hv_now_ns();
	m->clock_paused = false;
	size_t calls = size / CALL_BYTES, extra = size % CALL_BYTES;
	if (extra)
		hv_machine_write_ram(m, 0x10000, data + calls * CALL_BYTES, extra);
	for (size_t i = 0; i < calls && hv_machine_stop_info(m)->kind == HV_STOP_NONE; i++) {
		const uint8_t *c = data + i * CALL_BYTES;
		uint64_t a[4] = { get64(c + 1), get64(c + 9), get64(c + 17), get64(c + 25) };
		uint64_t nr = c[0] % 32;
		uint64_t before = hv_now_ns();
		(void)hv_hypercall(m, nr, a);
		const struct hv_stop_info *si = hv_machine_stop_info(m);
		if (si->kind != HV_STOP_NONE && !si->reason[0])
			abort();
		/* a sleep until a time in the future may not wake the VMM now
		 * (issue 10: sleep_until(UINT64_MAX) woke it at once, a busy spin) */
		if (nr == PV_HC_SLEEP_UNTIL && si->kind == HV_STOP_NONE && m->sleeping &&
		    hv_machine_wake_at(m) < before)
			abort();
	}
	hv_machine_destroy(m);
	return 0;
}
