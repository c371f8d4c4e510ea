/* libpv: a small event loop over pv_net_poll (see pv.h). */
#include "pv.h"

void pv_loop_init(struct pv_loop *l)
{
	l->n = 0;
	l->timer_at = UINT64_MAX;
	l->timer_fn = NULL;
	l->timer_ctx = NULL;
	l->stop = false;
	l->err = 0;
}

static int find(const struct pv_loop *l, int h)
{
	for (unsigned i = 0; i < l->n; i++)
		if (l->fds[i].handle == h)
			return (int)i;
	return -1;
}

int pv_loop_add(struct pv_loop *l, int h, unsigned events, pv_loop_fn fn, void *ctx)
{
	if (h < 0 || !fn || find(l, h) >= 0)
		return -PV_EINVAL;
	if (l->n >= PV_NET_POLL_MAX)
		return -PV_EMFILE;
	l->fds[l->n] = (struct pv_pollfd){ .handle = h, .events = (uint16_t)events };
	l->ent[l->n] = (struct pv_loop_entry){ .fn = fn, .ctx = ctx };
	l->n++;
	return 0;
}

int pv_loop_set_events(struct pv_loop *l, int h, unsigned events)
{
	int i = find(l, h);
	if (i < 0)
		return -PV_ENOENT;
	l->fds[i].events = (uint16_t)events;
	return 0;
}

int pv_loop_del(struct pv_loop *l, int h)
{
	int i = find(l, h);
	if (i < 0)
		return -PV_ENOENT;
	l->n--;
	l->fds[i] = l->fds[l->n];
	l->ent[i] = l->ent[l->n];
	return 0;
}

void pv_loop_timer(struct pv_loop *l, uint64_t at_ns, pv_timer_fn fn, void *ctx)
{
	l->timer_at = fn ? at_ns : UINT64_MAX;
	l->timer_fn = fn;
	l->timer_ctx = ctx;
}

void pv_loop_stop(struct pv_loop *l)
{
	l->stop = true;
}

int pv_loop_once(struct pv_loop *l, uint64_t deadline_ns)
{
	uint64_t until = deadline_ns < l->timer_at ? deadline_ns : l->timer_at;
	int r = pv_net_poll(l->fds, l->n, until);
	if (r < 0)
		return r;
	/* The callbacks may change the set: note who is ready first. */
	struct pv_pollfd ready[PV_NET_POLL_MAX];
	unsigned nready = 0;
	for (unsigned i = 0; i < l->n; i++)
		if (l->fds[i].revents)
			ready[nready++] = l->fds[i];
	int handled = 0;
	for (unsigned k = 0; k < nready && !l->stop; k++) {
		int i = find(l, ready[k].handle);
		if (i < 0)
			continue; /* removed by an earlier callback of this turn */
		struct pv_loop_entry e = l->ent[i];
		e.fn(l, ready[k].handle, ready[k].revents, e.ctx);
		handled++;
	}
	if (l->timer_fn && l->timer_at != UINT64_MAX && pv_clock_mono() >= l->timer_at) {
		pv_timer_fn fn = l->timer_fn;
		l->timer_fn = NULL;
		l->timer_at = UINT64_MAX;
		fn(l, l->timer_ctx);
	}
	return handled;
}

int pv_loop_run(struct pv_loop *l)
{
	l->stop = false;
	l->err = 0;
	while (!l->stop) {
		int r = pv_loop_once(l, UINT64_MAX);
		if (r < 0) {
			l->err = r;
			return r;
		}
	}
	return 0;
}
