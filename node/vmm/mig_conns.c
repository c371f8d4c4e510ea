/* See mig_conns.h; why the packets are held and who lets them go is in
 * docs/migration.md "Connections". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mig_conns.h"
#include "privsep_ops.h"
#include "proto/migrate.pb-c.h"
#include "tcprepair.h"

#define CONN_FRAME_MAX (TCPREPAIR_BLOB_MAX + 64u)

struct conn {
	unsigned handle;
	int fd;          /* source: the frozen socket (net's); target: built, not yet net's */
	uint8_t *blob;   /* target: the checked tcp state */
	size_t len;
	struct tcprepair_tuple t;
};

struct mig_conns {
	unsigned n;      /* source: frozen and sent; target: received */
	struct conn c[PV_NET_HANDLES_MAX];
	struct privsep *ps;  /* TCP_REPAIR: the privileged helper (privsep_ops.h) */
	struct privsep *nft; /* the nft runner */
	pthread_t holder;    /* source: the thread that asks for the hold */
	bool holding;        /* source: it runs, or has not been joined */
	int hold_err;        /* its result */
	bool ready;      /* source: the drop rule is in place */
	char why[200];   /* source: why it is not; target: why one was reset */
	bool built;      /* target: built (mig_conns_build), frozen */
	unsigned failed; /* target: how many could not be built or let go */
};

struct mig_conns *mig_conns_create(struct privsep *ps, struct privsep *nft)
{
	struct mig_conns *c = calloc(1, sizeof(struct mig_conns));
	if (c) {
		c->ps = ps;
		c->nft = nft;
	}
	return c;
}

/* The hold, on a thread of its own: the nft runner's request returns once
 * nft has run (about 10 ms), while the records go and the target answers. */
static void *hold_thread(void *arg)
{
	struct mig_conns *c = arg;
	struct tcprepair_tuple t[PV_NET_HANDLES_MAX];
	for (unsigned i = 0; i < c->n; i++)
		t[i] = c->c[i].t;
	c->hold_err = privsep_netfreeze_hold(c->nft, t, c->n, c->why, sizeof(c->why));
	return NULL;
}

/* Waits for the hold thread, if any; its result. */
static int hold_join(struct mig_conns *c)
{
	if (!c->holding)
		return -ENOENT;
	pthread_join(c->holder, NULL);
	c->holding = false;
	return c->hold_err;
}

void mig_conns_destroy(struct mig_conns *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n; i++) {
		free(c->c[i].blob);
		if (c->built && c->c[i].fd >= 0)
			close(c->c[i].fd); /* frozen: closes silently */
	}
	hold_join(c);
	free(c);
}

static int send_end(struct pvproto_link *l, uint32_t ver)
{
	Pvha__MigrateConn m = PVHA__MIGRATE_CONN__INIT;
	m.version = ver;
	m.end = true;
	return pvproto_link_write(l, &m.base);
}

void mig_conns_prepare(struct mig_conns *c, struct hv_net *net)
{
	/* whether it has connections only the paused guest tells: a guest
	 * with an address may have them */
	if (c->ready || !net)
		return;
	c->ready = privsep_netfreeze_setup(c->nft, c->why, sizeof(c->why)) == 0;
}

int mig_conns_send(struct mig_conns *c, struct hv_net *net, struct pvproto_link *l, uint32_t ver,
		   char *note, size_t nl)
{
	unsigned handles[PV_NET_HANDLES_MAX], n, left = 0;
	int fds[PV_NET_HANDLES_MAX];
	char why[200] = "";
	uint8_t *blob[PV_NET_HANDLES_MAX];
	size_t len[PV_NET_HANDLES_MAX];

	note[0] = 0;
	n = hv_net_connections(net, handles, fds);
	if (n && !c->ready) {
		/* Without the drop the host would reset what a peer sends between
		 * the close here and the restore there: carry none. */
		snprintf(note, nl, "%u connection(s) reset, not carried: %s", n, c->why);
		return send_end(l, ver);
	}
	/* Freeze and read them all first (a frozen socket drops what comes in),
	 * then hold their packets for the time after the close. */
	for (unsigned i = 0; i < n; i++) {
		struct conn *k = &c->c[c->n];
		int err = privsep_tcprepair_dump(c->ps, fds[i], &blob[c->n], &len[c->n], &k->t);
		if (err) {
			/* still connecting, half-closed, or not allowed: it runs on
			 * here until the hand-over closes it, reset at the target */
			privsep_tcprepair_thaw(c->ps, fds[i]);
			left++;
			snprintf(why, sizeof(why), "%s", strerror(-err));
			continue;
		}
		k->handle = handles[i];
		k->fd = fds[i];
		c->n++;
	}
	int err = 0;
	if (c->n) {
		/* nft applies it while the records go and the target answers;
		 * mig_conns_handover waits for it before the close */
		c->holding = pthread_create(&c->holder, NULL, hold_thread, c) == 0;
		if (!c->holding)
			snprintf(c->why, sizeof(c->why), "no thread to ask for it");
	}
	for (unsigned i = 0; i < c->n; i++) {
		Pvha__MigrateConn m = PVHA__MIGRATE_CONN__INIT;
		m.version = ver;
		m.handle = c->c[i].handle;
		m.tcp = (ProtobufCBinaryData){ .len = len[i], .data = blob[i] };
		if (!err)
			err = pvproto_link_write(l, &m.base);
		free(blob[i]);
	}
	if (err)
		return err;
	if (left)
		snprintf(note, nl, "%u of %u connection(s) reset, not carried (%s)", left, n, why);
	return send_end(l, ver);
}

void mig_conns_handover(struct mig_conns *c, char *note, size_t nl)
{
	note[0] = 0;
	if (!c->n)
		return;
	if (hold_join(c) != 0)
		snprintf(note, nl, "the connections' packets were not held (%s): a client that sent "
			 "during the hand-over may have seen a reset", c->why);
}

void mig_conns_unfreeze(struct mig_conns *c)
{
	struct tcprepair_tuple t[PV_NET_HANDLES_MAX];
	char why[200];
	hold_join(c); /* its entries are in, or never will be */
	for (unsigned i = 0; i < c->n; i++) {
		privsep_tcprepair_thaw(c->ps, c->c[i].fd);
		t[i] = c->c[i].t;
	}
	privsep_netfreeze_release(c->nft, t, c->n, why, sizeof(why));
	c->n = 0;
}

static int bad(char *why, size_t wl, const char *fmt, unsigned a)
{
	char m[160];
	snprintf(m, sizeof(m), fmt, a);
	snprintf(why, wl, "connection record: %s", m);
	return -EBADMSG;
}

/* Checks one received record and keeps it. */
static int take(struct mig_conns *c, struct hv_net *net, const Pvha__MigrateConn *m, bool *seen,
		char *why, size_t wl)
{
	if (m->handle >= PV_NET_HANDLES_MAX)
		return bad(why, wl, "handle %u out of range", m->handle);
	if (seen[m->handle])
		return bad(why, wl, "handle %u sent twice", m->handle);
	struct conn *k = &c->c[c->n];
	char sub[160];
	if (tcprepair_check(m->tcp.data, m->tcp.len, &k->t, sub, sizeof(sub)) != 0) {
		snprintf(why, wl, "connection record of handle %u: %s", m->handle, sub);
		return -EBADMSG;
	}
	if (!net)
		return bad(why, wl, "the source carries connection %u, but this target has no --address",
			   m->handle);
	if (k->t.local_ip != htonl(hv_net_address(net)))
		return bad(why, wl, "handle %u is a connection of another address than the guest's",
			   m->handle);
	if (!hv_net_adoptable(net, m->handle))
		return bad(why, wl, "handle %u was not a connection in the state", m->handle);
	k->blob = malloc(m->tcp.len ? m->tcp.len : 1);
	if (!k->blob)
		return -ENOMEM;
	memcpy(k->blob, m->tcp.data, m->tcp.len);
	k->len = m->tcp.len;
	k->handle = m->handle;
	k->fd = -1;
	seen[m->handle] = true;
	c->n++;
	return 0;
}

int mig_conns_read(struct mig_conns *c, struct hv_net *net, struct pvproto_link *l, uint32_t ver,
		   char *why, size_t wl)
{
	bool seen[PV_NET_HANDLES_MAX] = { false };
	/* at most one record per handle, then the end */
	for (unsigned i = 0; i <= PV_NET_HANDLES_MAX; i++) {
		ProtobufCMessage *pm;
		int err = pvproto_link_read(l, &pvha__migrate_conn__descriptor, CONN_FRAME_MAX, &pm);
		if (err)
			return err;
		Pvha__MigrateConn *m = (Pvha__MigrateConn *)pm;
		if (m->version != ver)
			err = bad(why, wl, "of version %u", m->version);
		else if (m->end)
			err = m->handle || m->tcp.len ? bad(why, wl, "an end that carries handle %u", m->handle)
						      : 1;
		else
			err = take(c, net, m, seen, why, wl);
		pvha__migrate_conn__free_unpacked(m, NULL);
		if (err)
			return err > 0 ? 0 : err;
	}
	return bad(why, wl, "more than %u connections", PV_NET_HANDLES_MAX);
}

/* Builds each received connection, frozen; those that fail are counted in
 * c->failed, the last reason in c->why. */
static void build(struct mig_conns *c)
{
	c->built = true;
	for (unsigned i = 0; i < c->n; i++) {
		struct conn *k = &c->c[i];
		char why[200] = "rebuilding it failed";
		if (privsep_tcprepair_restore_held(c->ps, k->blob, k->len, &k->fd, why, sizeof(why)) == 0)
			continue;
		k->fd = -1;
		c->failed++;
		snprintf(c->why, sizeof(c->why), "%s", why);
	}
}

unsigned mig_conns_build(struct mig_conns *c)
{
	if (!c->built)
		build(c);
	return c->n - c->failed;
}

int mig_conns_await_address(struct hv_net *net, unsigned ms)
{
	/* bind() without IP_FREEBIND takes a local address only */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(hv_net_address(net)) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int err = -ETIMEDOUT;
	for (unsigned waited = 0; waited <= ms; waited++) {
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			err = 0;
			break;
		}
		if (errno != EADDRNOTAVAIL) {
			err = -errno;
			break;
		}
		struct timespec ts = { 0, 1000000l };
		nanosleep(&ts, NULL);
	}
	close(fd);
	return err;
}

unsigned mig_conns_restore(struct mig_conns *c, struct hv_net *net, char *note, size_t nl)
{
	unsigned ok = 0;
	note[0] = 0;
	/* No entry to lift here: the drop rule lets a rebuilt (transparent)
	 * socket's packets through (netfreeze.h), on this host and any other. */
	if (!c->built)
		build(c);
	for (unsigned i = 0; i < c->n; i++) {
		struct conn *k = &c->c[i];
		char why[200] = "releasing it failed";
		if (k->fd < 0)
			continue;
		if (privsep_tcprepair_release(c->ps, k->fd, k->blob, k->len, why, sizeof(why)) == 0) {
			int err = hv_net_adopt(net, k->handle, k->fd);
			if (!err) {
				k->fd = -1; /* net's now */
				ok++;
				continue;
			}
			snprintf(why, sizeof(why), "handing it to the guest: %s", strerror(-err));
		}
		close(k->fd);
		k->fd = -1;
		c->failed++;
		snprintf(c->why, sizeof(c->why), "%s", why);
	}
	if (c->failed)
		snprintf(note, nl, "%u of %u connection(s) reset: %s", c->failed, c->n, c->why);
	return ok;
}
