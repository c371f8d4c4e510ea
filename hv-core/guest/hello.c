/*
 * hello: the smallest useful guest. Prints a greeting and what the host put
 * in the boot-info page, then exits 0 (1 when the boot info and the host
 * disagree on the ABI version).
 *
 * Output:
 *   hello from pvha guest
 *   hello: abi_version 2 (host says 2)   (1 and 1 when built with ABI 1)
 *   hello: mem_size N
 *   hello: disk_size N
 *   hello: guest_id xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx
 *   hello: cmdline "..."
 */
#include "pv.h"


int main(const struct pv_boot_info *bi)
{
	char id[37];

	pv_printf("hello from pvha guest\n");
	if (bi->magic != PV_BOOT_MAGIC) {
		pv_printf("hello: bad boot magic 0x%lx\n", bi->magic);
		return 1;
	}
	pv_uuid_format(bi->guest_id, id);
	pv_printf("hello: abi_version %u (host says %ld)\n", bi->abi_version, pv_abi_version());
	pv_printf("hello: mem_size %lu\n", bi->mem_size);
	pv_printf("hello: disk_size %lu\n", bi->disk_size);
	pv_printf("hello: guest_id %s\n", id);
	pv_printf("hello: cmdline \"%.*s\"\n", (int)PV_CMDLINE_MAX, bi->cmdline);
	return bi->abi_version >= 1 && bi->abi_version == pv_abi_version() ? 0 : 1;
}
