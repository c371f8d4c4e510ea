/* Fuzz harness: the saved-state reader (hv_machine_restore_fd), which reads
 * --restore files and, through the same code, a migration's state stream.
 * The machine is 2 MiB (a header that says otherwise is refused first, as a
 * migration target does), so an input cannot make the harness allocate
 * gigabytes; tcg backend, no disk. */
#include <unistd.h>

#include "fuzz.h"
#include "pvhv/hv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hv_config cfg = { .mem_size = 2u << 20, .backend = HV_BACKEND_TCG };
	struct hv_machine *m = NULL;
	char why[256];
	int fd = fuzz_memfd(data, size);
	if (hv_machine_restore_fd(&cfg, fd, &m, why, sizeof(why)) == 0)
		hv_machine_destroy(m);
	close(fd);
	return 0;
}
