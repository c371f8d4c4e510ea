/*
 * diskbench: the guest's view of its disk. Two measurements, timed with the
 * guest's monotonic clock:
 *   - 4 KiB write latency: `lat_ops=N` (default 200) times, write 4 KiB then
 *     flush (durable), at successive offsets; prints the median and p99 as
 *     `figure guest_write_4k_flush_p50_us X us` / `..._p99_us`;
 *   - throughput: `tput_mib=M` (default 64) MiB written as 4 MiB requests (each
 *     one hypercall each, PV_DISK_IO_MAX), one flush at the end;
 *     prints `figure guest_write_4m_mib_s X MiB/s`.
 * The disk must hold lat_ops * 4 KiB and tput_mib MiB (they share the start).
 */
#include "pv.h"

#define MAX_OPS 2000

static uint8_t buf[PV_DISK_IO_MAX] __attribute__((aligned(4096)));
static uint64_t lat[MAX_OPS];

static void sort(uint64_t *v, uint64_t n)
{
	for (uint64_t i = 1; i < n; i++)
		for (uint64_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint64_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
}

static void us(const char *name, uint64_t ns)
{
	pv_printf("figure %s %lu.%03lu us\n", name, ns / 1000, ns % 1000);
}

int main(const struct pv_boot_info *bi)
{
	uint64_t ops = 200, mib = 64, region = 0;
	pv_cmdline_u64(bi, "lat_ops", &ops);
	pv_cmdline_u64(bi, "tput_mib", &mib);
	pv_cmdline_u64(bi, "tput_region_mib", &region);
	if (region == 0 || region > mib)
		region = mib;
	if (ops > MAX_OPS || ops == 0 || ops * 4096 > bi->disk_size || (region << 20) > bi->disk_size) {
		pv_printf("diskbench: the disk (%lu bytes) is too small or lat_ops is over %d\n",
			  bi->disk_size, MAX_OPS);
		return 2;
	}
	for (uint64_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);

	for (uint64_t i = 0; i < ops; i++) {
		uint64_t t0 = pv_clock_mono();
		if (pv_disk_write(i * 4096, buf, 4096) != 4096 || pv_disk_flush() != 0) {
			pv_printf("diskbench: write failed at op %lu\n", i);
			return 1;
		}
		lat[i] = pv_clock_mono() - t0;
	}
	sort(lat, ops);
	us("guest_write_4k_flush_p50_us", lat[ops / 2]);
	us("guest_write_4k_flush_p99_us", lat[ops * 99 / 100]);

	uint64_t t0 = 0;
	for (int pass = 0; pass < 2; pass++) {
		t0 = pv_clock_mono();
		for (uint64_t off = 0; off < (mib << 20); off += PV_DISK_IO_MAX) {
			if (pv_disk_write(off % (region << 20), buf, PV_DISK_IO_MAX) != PV_DISK_IO_MAX) {
				pv_printf("diskbench: write failed at %lu\n", off);
				return 1;
			}
		}
		if (pv_disk_flush() != 0) {
			pv_printf("diskbench: flush failed\n");
			return 1;
		}
	}
	uint64_t ns = pv_clock_mono() - t0;
	uint64_t rate = ns ? (mib * 1000000000ull * 1000) / ns : 0; /* MiB/s x1000 */
	pv_printf("figure guest_write_4m_mib_s %lu.%03lu MiB/s\n", rate / 1000, rate % 1000);
	return 0;
}
