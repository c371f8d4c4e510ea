/*
 * The ABI devices: every hypercall, whichever backend trapped it, lands in
 * hv_hypercall(). Policy (ABI.md): an argument that only a broken guest can
 * pass — unknown call, pointer or length outside guest RAM, disk range past the
 * disk's end, a length over the call's maximum, an exit code over 255 — stops
 * the guest with HV_STOP_BAD_HYPERCALL and a reason naming the call and the
 * argument. Conditions a correct guest can meet (no disk, an I/O error) come
 * back as -PV_E* in rax. A disk backend's -ESHUTDOWN (fenced) stops the guest.
 * The ABI v2 socket calls are in net.c; a guest whose image asked for ABI v1
 * gets them treated as unknown numbers, exactly as a v1 host would.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char *const hc_names[PV_HC_COUNT] = {
	[PV_HC_ABI_VERSION] = "abi_version", [PV_HC_CONSOLE_WRITE] = "console_write",
	[PV_HC_CLOCK_MONO] = "clock_mono",   [PV_HC_CLOCK_WALL] = "clock_wall",
	[PV_HC_SLEEP_UNTIL] = "sleep_until", [PV_HC_YIELD] = "yield",
	[PV_HC_DISK_READ] = "disk_read",     [PV_HC_DISK_WRITE] = "disk_write",
	[PV_HC_DISK_FLUSH] = "disk_flush",   [PV_HC_HEARTBEAT] = "heartbeat",
	[PV_HC_EXIT] = "exit",
	[PV_HC_NET_LISTEN] = "net_listen", [PV_HC_NET_ACCEPT] = "net_accept",
	[PV_HC_NET_CONNECT] = "net_connect", [PV_HC_NET_SEND] = "net_send",
	[PV_HC_NET_RECV] = "net_recv",     [PV_HC_NET_SHUTDOWN] = "net_shutdown",
	[PV_HC_NET_CLOSE] = "net_close",   [PV_HC_NET_POLL] = "net_poll",
	[PV_HC_NET_ADDR] = "net_addr",
};

uint64_t hv_bad_hypercall(struct hv_machine *m, uint64_t nr, const char *what, uint64_t a,
			  uint64_t b)
{
	hv_machine_stop(m, HV_STOP_BAD_HYPERCALL, (int64_t)nr, a,
			"bad hypercall %s: %s (0x%llx, 0x%llx)", hc_names[nr], what,
			(unsigned long long)a, (unsigned long long)b);
	return (uint64_t)-PV_EINVAL;
}

#define bad hv_bad_hypercall

/* Maps a disk backend error to the guest's view: -ENOSPC (the storage is
 * full) or -EIO; fencing also stops the guest, so the call never returns. */
static uint64_t disk_error(struct hv_machine *m, const char *op, int err)
{
	if (err == -ESHUTDOWN)
		hv_machine_stop(m, HV_STOP_FENCED, err, 0,
				"fenced: disk %s refused, this host is blocklisted by the storage", op);
	return (uint64_t)(err == -ENOSPC ? -PV_ENOSPC : -PV_EIO);
}

/* The host waited on a disk (or any blocking backend) for the guest: that
 * time is not guest run time, so the runaway budget starts again after it
 * (an OSD outage must not make a guest that waits on its flush a runaway). */
static void host_waited(struct hv_machine *m)
{
	m->run_mark_ns = hv_now_ns();
}

static uint64_t disk_io(struct hv_machine *m, uint64_t nr, const uint64_t a[4])
{
	uint64_t off = a[0], buf = a[1], len = a[2];
	struct hv_disk *d = m->disk;

	if (!d)
		return (uint64_t)-PV_ENODEV;
	if (len > PV_DISK_IO_MAX)
		return bad(m, nr, "length over PV_DISK_IO_MAX", buf, len);
	if (!hv_range_ok(m, buf, len))
		return bad(m, nr, "buffer outside guest RAM", buf, len);
	if (off > d->size || len > d->size - off)
		return bad(m, nr, "disk range past the end of the disk", off, len);
	if (len == 0)
		return 0;
	int err;
	uint64_t t0 = hv_now_ns();
	if (nr == PV_HC_DISK_READ) {
		err = d->ops->read(d, m->ram + buf, off, len);
		if (!err)
			hv_ram_written(m, buf, len);
	} else {
		err = d->ops->write(d, m->ram + buf, off, len);
	}
	host_waited(m);
	if (nr == PV_HC_DISK_READ) {
		m->disk_stats.reads++;
		m->disk_stats.read_bytes += err ? 0 : len;
		m->disk_stats.read_ns += m->run_mark_ns - t0;
	} else {
		m->disk_stats.writes++;
		m->disk_stats.write_bytes += err ? 0 : len;
		m->disk_stats.write_ns += m->run_mark_ns - t0;
	}
	if (err)
		return disk_error(m, nr == PV_HC_DISK_READ ? "read" : "write", err);
	return len;
}

uint64_t hv_hypercall(struct hv_machine *m, uint64_t nr, const uint64_t a[4])
{
	/* The runaway budget notices this call at its next check point, through
	 * the count: no clock read on this path (it is the hot one). */
	m->hypercalls++;
	if (m->break_after && m->hypercalls == m->break_after)
		atomic_fetch_or(&m->request, HV_REQ_BREAK);

	switch (nr) {
	case PV_HC_ABI_VERSION:
		return m->abi_version;
	case PV_HC_CONSOLE_WRITE:
		if (a[1] > PV_CONSOLE_MAX)
			return bad(m, nr, "length over PV_CONSOLE_MAX", a[0], a[1]);
		if (!hv_range_ok(m, a[0], a[1]))
			return bad(m, nr, "buffer outside guest RAM", a[0], a[1]);
		if (m->console && a[1])
			m->console(m->console_ctx, (const char *)m->ram + a[0], a[1]);
		return a[1];
	case PV_HC_CLOCK_MONO:
		return hv_guest_mono(m);
	case PV_HC_CLOCK_WALL: {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	case PV_HC_SLEEP_UNTIL:
		/* any u64 is a deadline: UINT64_MAX sleeps for good (until the
		 * host ends or saves the guest) */
		if (a[0] > hv_guest_mono(m)) {
			m->sleep_until = a[0];
			m->sleeping = true;
			atomic_fetch_or(&m->request, HV_REQ_SLEEP);
		}
		return 0;
	case PV_HC_YIELD:
		atomic_fetch_or(&m->request, HV_REQ_YIELD);
		return 0;
	case PV_HC_DISK_READ:
	case PV_HC_DISK_WRITE:
		return disk_io(m, nr, a);
	case PV_HC_DISK_FLUSH: {
		if (!m->disk)
			return (uint64_t)-PV_ENODEV;
		uint64_t t0 = hv_now_ns();
		int err = m->disk->ops->flush(m->disk);
		host_waited(m);
		m->disk_stats.flushes++;
		m->disk_stats.flush_ns += m->run_mark_ns - t0;
		return err ? disk_error(m, "flush", err) : 0;
	}
	case PV_HC_HEARTBEAT:
		m->heartbeat_seq = a[0];
		m->heartbeat_mono_ns = hv_guest_mono(m);
		return 0;
	case PV_HC_EXIT:
		if (a[0] > 255)
			return bad(m, nr, "exit code over 255", a[0], 0);
		hv_machine_stop(m, HV_STOP_EXIT, (int64_t)a[0], 0, "guest exited with code %llu",
				(unsigned long long)a[0]);
		return 0;
	case PV_HC_NET_LISTEN:
	case PV_HC_NET_ACCEPT:
	case PV_HC_NET_CONNECT:
	case PV_HC_NET_SEND:
	case PV_HC_NET_RECV:
	case PV_HC_NET_SHUTDOWN:
	case PV_HC_NET_CLOSE:
	case PV_HC_NET_POLL:
	case PV_HC_NET_ADDR:
		if (m->abi_version >= 2)
			return hv_net_hypercall(m, nr, a);
		/* not a call of ABI v1 */
		__attribute__((fallthrough));
	default:
		hv_machine_stop(m, HV_STOP_BAD_HYPERCALL, (int64_t)nr, 0,
				"bad hypercall: unknown number %llu", (unsigned long long)nr);
		return (uint64_t)-PV_EINVAL;
	}
}
