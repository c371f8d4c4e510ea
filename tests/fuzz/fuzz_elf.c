/* Fuzz harness: the ELF loader's checks (hv_elf_parse), the first thing a
 * guest image meets. Anything accepted must describe segments inside the
 * image and inside RAM: checked here, so a wrong "yes" is a finding too. */
#include <stdlib.h>

#include "fuzz.h"
#include "pvhv/hv.h"

static void check(const uint8_t *data, size_t size, uint64_t mem)
{
	struct hv_elf_image img;
	char why[256];
	if (hv_elf_parse(data, size, mem, &img, why, sizeof(why)) != 0)
		return;
	if (img.nsegments > HV_ELF_MAX_SEGMENTS || img.end > mem)
		abort();
	for (unsigned i = 0; i < img.nsegments; i++) {
		const struct hv_elf_segment *s = &img.seg[i];
		if (s->file_size > s->mem_size || s->file_off > size ||
		    s->file_size > size - s->file_off || s->gpa > mem || s->mem_size > mem - s->gpa)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check(data, size, 2u << 20);
	check(data, size, 64u << 20);
	return 0;
}
