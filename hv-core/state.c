/*
 * Saved state: the stream of pvha.StateRecord frames described in
 * proto/vmstate.proto, written by save and by live migration and read by
 * restore. The reader trusts nothing: record order, sizes, ranges and the
 * version are checked before anything touches the new machine, and a bad
 * stream yields no machine at all.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "proto/vmstate.pb-c.h"
#include "pvproto/frame.h"
#include "pvproto/link.h"

#define STATE_VERSION 1u
#define RUN_MAX_PAGES 256u
#define RECORD_MAX (RUN_MAX_PAGES * PV_PAGE_SIZE + 4096u)

static int send_record(struct pvproto_link *l, Pvha__StateRecord *rec)
{
	return pvproto_link_write(l, &rec->base);
}

int hv_state_send_header(struct hv_machine *m, struct pvproto_link *l)
{
	Pvha__StateHeader h = PVHA__STATE_HEADER__INIT;
	Pvha__StateRecord rec = PVHA__STATE_RECORD__INIT;
	m->pages_sent_total = 0;
	h.version = STATE_VERSION;
	h.mem_size = m->mem_size;
	h.page_size = PV_PAGE_SIZE;
	h.guest_id.data = m->guest_id;
	h.guest_id.len = sizeof(m->guest_id);
	h.backend = (char *)m->ops->name;
	rec.body_case = PVHA__STATE_RECORD__BODY_HEADER;
	rec.header = &h;
	return send_record(l, &rec);
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < PV_PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

static bool want_page(struct hv_machine *m, const uint64_t *bitmap, uint64_t p)
{
	if (bitmap)
		return bitmap[p / 64] & (1ull << (p % 64));
	return !page_is_zero(m->ram + p * PV_PAGE_SIZE);
}

static int send_run(struct pvproto_link *l, struct hv_machine *m, uint64_t first, uint64_t n)
{
	Pvha__PageRun run = PVHA__PAGE_RUN__INIT;
	Pvha__StateRecord rec = PVHA__STATE_RECORD__INIT;
	run.gpa = first * PV_PAGE_SIZE;
	run.data.data = m->ram + run.gpa;
	run.data.len = n * PV_PAGE_SIZE;
	rec.body_case = PVHA__STATE_RECORD__BODY_PAGES;
	rec.pages = &run;
	return send_record(l, &rec);
}

int hv_state_send_pages(struct hv_machine *m, struct pvproto_link *l, const uint64_t *bitmap,
			uint64_t *pages_sent, uint64_t *bytes_sent)
{
	uint64_t p = 0, pages = 0;
	int err = 0;

	while (p < m->npages) {
		if (!want_page(m, bitmap, p)) {
			p++;
			continue;
		}
		uint64_t first = p;
		while (p < m->npages && p - first < RUN_MAX_PAGES && want_page(m, bitmap, p))
			p++;
		err = send_run(l, m, first, p - first);
		if (err)
			break;
		pages += p - first;
	}
	m->pages_sent_total += pages;
	if (pages_sent)
		*pages_sent = pages;
	if (bytes_sent)
		*bytes_sent = pages * PV_PAGE_SIZE;
	return err;
}

int hv_state_send_final(struct hv_machine *m, struct pvproto_link *l)
{
	struct hv_cpu_state s;
	Pvha__StateRecord rec = PVHA__STATE_RECORD__INIT;
	Pvha__CpuState cpu = PVHA__CPU_STATE__INIT;
	Pvha__DeviceState dev = PVHA__DEVICE_STATE__INIT;
	Pvha__StateEnd end = PVHA__STATE_END__INIT;
	int err = m->ops->get_regs(m, &s);
	if (err)
		return err;

	cpu.n_gpr = 16;
	cpu.gpr = s.gpr;
	cpu.rip = s.rip;
	cpu.rflags = s.rflags;
	cpu.fs_base = s.fs_base;
	cpu.gs_base = s.gs_base;
	cpu.kernel_gs_base = s.kernel_gs_base;
	cpu.xmm.data = &s.xmm[0][0];
	cpu.xmm.len = sizeof(s.xmm);
	cpu.mxcsr = s.mxcsr;
	cpu.fcw = s.fcw;
	cpu.fsw = s.fsw;
	cpu.ftw = s.ftw;
	cpu.st.data = &s.st[0][0];
	cpu.st.len = sizeof(s.st);
	rec.body_case = PVHA__STATE_RECORD__BODY_CPU;
	rec.cpu = &cpu;
	err = send_record(l, &rec);
	if (err)
		return err;

	dev.guest_mono_ns = hv_guest_mono(m);
	dev.sleeping = m->sleeping;
	dev.sleep_until_ns = m->sleep_until;
	dev.hypercalls = m->hypercalls;
	dev.heartbeat_seq = m->heartbeat_seq;
	dev.heartbeat_mono_ns = m->heartbeat_mono_ns;
	dev.disk_size = m->disk ? m->disk->size : 0;
	dev.abi_version = m->abi_version;
	/* A guest waiting in net_poll is saved awake: it was told -EINTR, so it
	 * asks again once restored, against the handles restored then. */
	if (m->net_waiting)
		dev.sleeping = false;
	static const Pvha__NetSocket init = PVHA__NET_SOCKET__INIT;
	struct hv_net_saved saved[PV_NET_HANDLES_MAX];
	Pvha__NetSocket socks[PV_NET_HANDLES_MAX], *sockp[PV_NET_HANDLES_MAX];
	unsigned ns = hv_net_save(m->net, saved);
	for (unsigned i = 0; i < ns; i++) {
		socks[i] = init;
		socks[i].handle = saved[i].handle;
		socks[i].kind = saved[i].kind;
		socks[i].port = saved[i].port;
		socks[i].backlog = saved[i].backlog;
		socks[i].err = saved[i].err;
		sockp[i] = &socks[i];
	}
	dev.n_net = ns;
	dev.net = sockp;
	rec.body_case = PVHA__STATE_RECORD__BODY_DEVICES;
	rec.devices = &dev;
	err = send_record(l, &rec);
	if (err)
		return err;

	end.pages = m->pages_sent_total;
	rec.body_case = PVHA__STATE_RECORD__BODY_END;
	rec.end = &end;
	return send_record(l, &rec);
}

int hv_machine_save_fd(struct hv_machine *m, int fd)
{
	if (!m->loaded)
		return -ENOEXEC;
	struct pvproto_link *l = pvproto_link_create(fd);
	if (!l)
		return -ENOMEM;
	hv_machine_pause_clock(m);
	int err = hv_state_send_header(m, l);
	if (!err)
		err = hv_state_send_pages(m, l, NULL, NULL, NULL);
	if (!err)
		err = hv_state_send_final(m, l);
	pvproto_link_destroy(l);
	return err;
}

/* ---- restore ---------------------------------------------------------- */

struct reader {
	struct pvproto_link *link;
	char *err;
	size_t errlen;
	uint64_t records; /* read so far */
};

static int fail(struct reader *r, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct reader *r, int code, const char *fmt, ...)
{
	if (r->err && r->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	return code;
}

static int read_record(struct reader *r, Pvha__StateRecord **out)
{
	ProtobufCMessage *msg;
	int err = pvproto_link_read(r->link, &pvha__state_record__descriptor, RECORD_MAX, &msg);
	if (err == -ENODATA)
		return fail(r, -ENODATA, "state stream ends before its end record");
	if (err == -EMSGSIZE)
		return fail(r, -EBADMSG, "state record larger than %u bytes", RECORD_MAX);
	if (err == -EBADMSG)
		return fail(r, -EBADMSG, "state record truncated or not decodable");
	if (err == -EKEYREJECTED)
		return fail(r, err, "state record %llu failed authentication (altered on the way, or "
			    "sent with another key)", (unsigned long long)r->records);
	if (err)
		return fail(r, err, "reading state stream: %s", strerror(-err));
	*out = (Pvha__StateRecord *)msg;
	r->records++;
	return 0;
}

static int apply_cpu(struct reader *r, struct hv_machine *m, const Pvha__CpuState *c)
{
	struct hv_cpu_state s;
	if (c->n_gpr != 16 || c->xmm.len != sizeof(s.xmm) || c->st.len != sizeof(s.st) ||
	    c->fcw > 0xffff || c->fsw > 0xffff || c->ftw > 0xff)
		return fail(r, -EBADMSG, "cpu record malformed (gpr %zu, xmm %zu, st %zu bytes)",
			    c->n_gpr, c->xmm.len, c->st.len);
	if (c->rip >= m->mem_size)
		return fail(r, -EBADMSG, "cpu record: rip 0x%llx outside guest RAM",
			    (unsigned long long)c->rip);
	memset(&s, 0, sizeof(s));
	memcpy(s.gpr, c->gpr, sizeof(s.gpr));
	s.rip = c->rip;
	s.rflags = c->rflags;
	s.fs_base = c->fs_base;
	s.gs_base = c->gs_base;
	s.kernel_gs_base = c->kernel_gs_base;
	memcpy(s.xmm, c->xmm.data, sizeof(s.xmm));
	s.mxcsr = c->mxcsr;
	s.fcw = (uint16_t)c->fcw;
	s.fsw = (uint16_t)c->fsw;
	s.ftw = (uint8_t)c->ftw;
	memcpy(s.st, c->st.data, sizeof(s.st));
	int err = m->ops->set_regs(m, &s);
	return err ? fail(r, err, "setting registers: %s", strerror(-err)) : 0;
}

static int apply_pages(struct reader *r, struct hv_machine *m, const Pvha__PageRun *run,
		       uint64_t *pages)
{
	size_t len = run->data.len;
	if (run->gpa % PV_PAGE_SIZE || len == 0 || len % PV_PAGE_SIZE ||
	    len > RUN_MAX_PAGES * PV_PAGE_SIZE || !hv_range_ok(m, run->gpa, len))
		return fail(r, -EBADMSG, "page run at 0x%llx of %zu bytes is not whole pages inside RAM",
			    (unsigned long long)run->gpa, len);
	memcpy(m->ram + run->gpa, run->data.data, len);
	if (m->ops->ram_written)
		m->ops->ram_written(m, run->gpa, len);
	*pages += len / PV_PAGE_SIZE;
	return 0;
}

static int apply_devices(struct reader *r, struct hv_machine *m, const Pvha__DeviceState *d)
{
	uint64_t have = m->disk ? m->disk->size : 0;
	if (d->disk_size != have) {
		if (d->disk_size == 0)
			return fail(r, -EINVAL, "the saved guest had no disk, but one was given");
		if (have == 0)
			return fail(r, -EINVAL, "the saved guest had a disk of %llu bytes: give one",
				    (unsigned long long)d->disk_size);
		return fail(r, -EINVAL, "disk size %llu differs from the saved guest's %llu",
			    (unsigned long long)have, (unsigned long long)d->disk_size);
	}
	uint32_t abi = d->abi_version ? d->abi_version : 1;
	if (abi < PV_ABI_VERSION_MIN || abi > PV_ABI_VERSION)
		return fail(r, -EPROTO, "the saved guest uses ABI version %u; this host serves %u to %u",
			    abi, PV_ABI_VERSION_MIN, PV_ABI_VERSION);
	if (d->n_net > PV_NET_HANDLES_MAX)
		return fail(r, -EBADMSG, "device record holds %zu sockets, at most %u", d->n_net,
			    PV_NET_HANDLES_MAX);
	if (d->n_net && !m->net)
		return fail(r, -EINVAL, "the saved guest had %zu sockets open: give it a network address",
			    d->n_net);
	if (d->n_net) {
		struct hv_net_saved saved[PV_NET_HANDLES_MAX];
		for (size_t i = 0; i < d->n_net; i++)
			saved[i] = (struct hv_net_saved){ .handle = d->net[i]->handle,
							  .kind = d->net[i]->kind,
							  .port = d->net[i]->port,
							  .backlog = d->net[i]->backlog,
							  .err = d->net[i]->err };
		char why[160];
		int err = hv_net_restore(m->net, saved, (unsigned)d->n_net, why, sizeof(why));
		if (err)
			return fail(r, err, "%s", why);
	}
	m->abi_version = abi;
	m->paused_guest_ns = d->guest_mono_ns;
	m->clock_paused = true;
	m->sleeping = d->sleeping;
	m->sleep_until = d->sleep_until_ns;
	m->hypercalls = d->hypercalls;
	m->heartbeat_seq = d->heartbeat_seq;
	m->heartbeat_mono_ns = d->heartbeat_mono_ns;
	return 0;
}

int hv_machine_restore_fd(const struct hv_config *cfg, int fd, struct hv_machine **out,
			  char *errbuf, size_t errlen)
{
	struct pvproto_link *l = pvproto_link_create(fd);
	*out = NULL;
	if (!l)
		return -ENOMEM;
	int err = hv_machine_restore_link(cfg, l, out, errbuf, errlen);
	pvproto_link_destroy(l);
	return err;
}

int hv_machine_restore_link(const struct hv_config *cfg, struct pvproto_link *l,
			    struct hv_machine **out, char *errbuf, size_t errlen)
{
	struct reader r = { .link = l, .err = errbuf, .errlen = errlen };
	struct hv_machine *m = NULL;
	Pvha__StateRecord *rec = NULL;
	bool have_cpu = false, have_dev = false;
	uint64_t pages = 0;
	int err;

	*out = NULL;
	err = read_record(&r, &rec);
	if (err == -ENODATA)
		return fail(&r, -EBADMSG, "empty: not a saved state");
	if (err == -EBADMSG) {
		char why[160];
		snprintf(why, sizeof(why), "%s", errbuf ? errbuf : "");
		return fail(&r, err, "not a pvha saved state (%s)", why);
	}
	if (err)
		return err;
	if (rec->body_case != PVHA__STATE_RECORD__BODY_HEADER) {
		err = fail(&r, -EBADMSG, "state stream does not begin with a header");
		goto out;
	}
	const Pvha__StateHeader *h = rec->header;
	if (h->version != STATE_VERSION) {
		err = fail(&r, -EPROTO, "state version %u is not supported (this build reads %u)",
			   h->version, STATE_VERSION);
		goto out;
	}
	if (h->page_size != PV_PAGE_SIZE || h->guest_id.len != 16) {
		err = fail(&r, -EBADMSG, "state header malformed (page size %u, guest id %zu bytes)",
			   h->page_size, h->guest_id.len);
		goto out;
	}
	if (cfg->mem_size && h->mem_size != cfg->mem_size) {
		err = fail(&r, -EBADMSG, "the state header says %llu bytes of RAM, %llu were expected",
			   (unsigned long long)h->mem_size, (unsigned long long)cfg->mem_size);
		goto out;
	}
	struct hv_config c = *cfg;
	c.mem_size = h->mem_size;
	memcpy(c.guest_id, h->guest_id.data, 16);
	c.cmdline = NULL;
	err = hv_machine_create(&c, &m);
	if (err) {
		err = fail(&r, err == -EINVAL ? -EBADMSG : err, "cannot create a machine of %llu bytes: %s",
			   (unsigned long long)h->mem_size, strerror(-err));
		goto out;
	}
	for (;;) {
		protobuf_c_message_free_unpacked(&rec->base, NULL);
		rec = NULL;
		err = read_record(&r, &rec);
		if (err) {
			err = err == -ENODATA ? -EBADMSG : err;
			goto out;
		}
		switch (rec->body_case) {
		case PVHA__STATE_RECORD__BODY_PAGES:
			if (have_cpu) {
				err = fail(&r, -EBADMSG, "page run after the cpu record");
				goto out;
			}
			err = apply_pages(&r, m, rec->pages, &pages);
			break;
		case PVHA__STATE_RECORD__BODY_CPU:
			err = have_cpu ? fail(&r, -EBADMSG, "two cpu records") : apply_cpu(&r, m, rec->cpu);
			have_cpu = true;
			break;
		case PVHA__STATE_RECORD__BODY_DEVICES:
			err = !have_cpu || have_dev ? fail(&r, -EBADMSG, "device record out of order")
						    : apply_devices(&r, m, rec->devices);
			have_dev = true;
			break;
		case PVHA__STATE_RECORD__BODY_END:
			if (!have_cpu || !have_dev)
				err = fail(&r, -EBADMSG, "state stream ends without cpu or device record");
			else if (rec->end->pages != pages)
				err = fail(&r, -EBADMSG, "state stream holds %llu pages, its end says %llu",
					   (unsigned long long)pages, (unsigned long long)rec->end->pages);
			else
				goto done;
			break;
		default:
			err = fail(&r, -EBADMSG, "unexpected record %d in state stream", rec->body_case);
			break;
		}
		if (err)
			goto out;
	}
done:
	m->loaded = true;
	memset((void *)m->dirty, 0, m->dirty_words * sizeof(uint64_t));
	*out = m;
	m = NULL;
	err = 0;
out:
	if (rec)
		protobuf_c_message_free_unpacked(&rec->base, NULL);
	hv_machine_destroy(m);
	return err;
}
