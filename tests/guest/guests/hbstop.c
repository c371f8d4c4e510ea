/*
 * hbstop: a guest that sends heartbeats for a while and then stops sending
 * them but goes on running — what heartbeat monitoring exists to catch (a
 * guest whose service hung while its VMM is fine). For the lab test of
 * heartbeat monitoring (tests/cluster/test_heartbeat.sh) and the guest test
 * of the VMM's heartbeat status.
 *
 * Command line:
 *   beat_ms=N   send heartbeats for N ms after boot (default 3000; 0: none at all)
 *   period=N    one heartbeat every N ms (default 100)
 *   spin        after that, spin (yielding) instead of sleeping
 *
 * Output lines:
 *   hbstop: heartbeats for N ms, every P ms
 *   hbstop: heartbeats stop now (last #S)
 *   hbstop: bad cmdline <key>             (exit 1)
 */
#include "pv.h"

int main(const struct pv_boot_info *bi)
{
	uint64_t beat_ms = 3000, period = 100;
	if (pv_cmdline_u64(bi, "beat_ms", &beat_ms) < 0) {
		pv_printf("hbstop: bad cmdline beat_ms\n");
		return 1;
	}
	if (pv_cmdline_u64(bi, "period", &period) < 0 || period == 0) {
		pv_printf("hbstop: bad cmdline period\n");
		return 1;
	}
	bool spin = pv_cmdline_has(bi, "spin");
	pv_printf("hbstop: heartbeats for %lu ms, every %lu ms\n", beat_ms, period);

	uint64_t start = pv_clock_mono(), seq = 0;
	while (beat_ms && pv_clock_mono() - start < beat_ms * 1000000ull) {
		pv_heartbeat(++seq);
		pv_sleep_ms(period);
	}
	pv_printf("hbstop: heartbeats stop now (last #%lu)\n", seq);
	for (;;) {
		if (spin)
			pv_yield();
		else
			pv_sleep_ms(1000);
	}
}
