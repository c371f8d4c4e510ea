/* libpv: the ABI v2 socket calls. Thin wrappers; the host checks everything. */
#include "pv.h"

int pv_net_listen(uint16_t port, int backlog)
{
	return (int)pv_hypercall2(PV_HC_NET_LISTEN, port, backlog < 0 ? 0 : (uint64_t)backlog);
}

int pv_net_accept(int h)
{
	return (int)pv_hypercall1(PV_HC_NET_ACCEPT, (uint64_t)(int64_t)h);
}

int pv_net_connect(uint32_t ipv4, uint16_t port)
{
	return (int)pv_hypercall2(PV_HC_NET_CONNECT, ipv4, port);
}

long pv_net_send(int h, const void *buf, unsigned long len)
{
	return (long)pv_hypercall3(PV_HC_NET_SEND, (uint64_t)(int64_t)h, (uint64_t)(uintptr_t)buf,
				   len);
}

long pv_net_recv(int h, void *buf, unsigned long len)
{
	return (long)pv_hypercall3(PV_HC_NET_RECV, (uint64_t)(int64_t)h, (uint64_t)(uintptr_t)buf,
				   len);
}

long pv_net_send_all(int h, const void *buf, unsigned long len)
{
	const char *p = buf;
	unsigned long done = 0;
	while (done < len) {
		unsigned long chunk = len - done > PV_NET_IO_MAX ? PV_NET_IO_MAX : len - done;
		long n = pv_net_send(h, p + done, chunk);
		if (n == -PV_EAGAIN) {
			struct pv_pollfd pf = { .handle = h, .events = PV_POLLOUT };
			int r = pv_net_poll(&pf, 1, UINT64_MAX);
			if (r < 0)
				return r;
			continue;
		}
		if (n < 0)
			return n;
		done += (unsigned long)n;
	}
	return (long)len;
}

int pv_net_shutdown(int h, int how)
{
	return (int)pv_hypercall2(PV_HC_NET_SHUTDOWN, (uint64_t)(int64_t)h, (uint64_t)(int64_t)how);
}

int pv_net_close(int h)
{
	return (int)pv_hypercall1(PV_HC_NET_CLOSE, (uint64_t)(int64_t)h);
}

int pv_net_poll(struct pv_pollfd *fds, unsigned n, uint64_t deadline_ns)
{
	/* -EINTR: the host woke the vCPU (something became ready, or it needed
	 * the vCPU for itself); nothing is reported, ask again. */
	for (;;) {
		int64_t r = pv_hypercall3(PV_HC_NET_POLL, (uint64_t)(uintptr_t)fds, n, deadline_ns);
		if (r != -PV_EINTR)
			return (int)r;
	}
}

int64_t pv_net_address(void)
{
	int64_t r = pv_hypercall2(PV_HC_NET_ADDR, (uint64_t)-1, PV_NET_ADDR_LOCAL);
	return r < 0 ? r : r >> 16;
}

int pv_net_local_port(int h)
{
	int64_t r = pv_hypercall2(PV_HC_NET_ADDR, (uint64_t)(int64_t)h, PV_NET_ADDR_LOCAL);
	return r < 0 ? (int)r : (int)(r & 0xffff);
}

int pv_net_peer(int h, uint32_t *ipv4, uint16_t *port)
{
	int64_t r = pv_hypercall2(PV_HC_NET_ADDR, (uint64_t)(int64_t)h, PV_NET_ADDR_PEER);
	if (r < 0)
		return (int)r;
	*ipv4 = (uint32_t)(r >> 16);
	*port = (uint16_t)(r & 0xffff);
	return 0;
}

void pv_ipv4_format(uint32_t ipv4, char out[16])
{
	pv_snprintf(out, 16, "%u.%u.%u.%u", ipv4 >> 24, (ipv4 >> 16) & 0xff, (ipv4 >> 8) & 0xff,
		    ipv4 & 0xff);
}
