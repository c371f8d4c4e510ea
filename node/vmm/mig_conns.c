/* See mig_conns.h; why the packets are held and who lets them go is in
 * docs/migration.md "Connections". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mig_conns.h"
#include "netfreeze.h"
#include "proto/migrate.pb-c.h"
#include "tcprepair.h"

#define CONN_FRAME_MAX (TCPREPAIR_BLOB_MAX + 64u)

struct conn {
	unsigned handle;
	int fd;          /* source: the frozen socket (net's) */
	uint8_t *blob;   /* target: the checked tcp state */
	size_t len;
	struct tcprepair_tuple t;
};

struct mig_conns {
	unsigned n;      /* source: frozen and sent; target: received */
	struct conn c[PV_NET_HANDLES_MAX];
	struct netfreeze *run; /* an nft run started ahead, or NULL */
	bool ready;      /* source: the drop rule is in place */
	char why[200];   /* source: why it is not */
};

struct mig_conns *mig_conns_create(void)
{
	return calloc(1, sizeof(struct mig_conns));
}

void mig_conns_destroy(struct mig_conns *c)
{
	if (!c)
		return;
	for (unsigned i = 0; i < c->n; i++)
		free(c->c[i].blob);
	netfreeze_abandon(c->run);
	free(c);
}

/* The four addresses of a connected socket, or false (not connected yet). */
static bool tuple_of(int fd, struct tcprepair_tuple *t)
{
	struct sockaddr_in la, pa;
	socklen_t ll = sizeof(la), pl = sizeof(pa);
	if (getsockname(fd, (struct sockaddr *)&la, &ll) < 0 ||
	    getpeername(fd, (struct sockaddr *)&pa, &pl) < 0 || la.sin_family != AF_INET ||
	    pa.sin_family != AF_INET)
		return false;
	*t = (struct tcprepair_tuple){ .local_ip = la.sin_addr.s_addr, .peer_ip = pa.sin_addr.s_addr,
				       .local_port = ntohs(la.sin_port),
				       .peer_port = ntohs(pa.sin_port) };
	return true;
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
	c->ready = netfreeze_setup(c->why, sizeof(c->why)) == 0 &&
		   netfreeze_start(&c->run, c->why, sizeof(c->why)) == 0;
}

int mig_conns_send(struct mig_conns *c, struct hv_net *net, struct pvproto_link *l, uint32_t ver,
		   char *note, size_t nl)
{
	unsigned handles[PV_NET_HANDLES_MAX], n, held = 0, left = 0;
	int fds[PV_NET_HANDLES_MAX];
	struct tcprepair_tuple t[PV_NET_HANDLES_MAX], back[PV_NET_HANDLES_MAX];
	unsigned th[PV_NET_HANDLES_MAX];
	int tfd[PV_NET_HANDLES_MAX];
	char why[200] = "";

	note[0] = 0;
	n = hv_net_connections(net, handles, fds);
	for (unsigned i = 0; i < n; i++)
		if (tuple_of(fds[i], &t[held])) {
			th[held] = handles[i];
			tfd[held++] = fds[i];
		} else {
			left++; /* still connecting: reset at the target */
		}
	if (!held || !c->ready) {
		if (held)
			snprintf(note, nl, "%u connection(s) reset, not carried: %s", n, c->why);
		netfreeze_abandon(c->run);
		c->run = NULL;
		return send_end(l, ver);
	}
	struct netfreeze *run = c->run;
	c->run = NULL;
	if (netfreeze_hold(run, t, held, why, sizeof(why)) != 0) {
		/* Unheld, a frozen socket would swallow what the peer sends:
		 * carry none rather than lose bytes. */
		snprintf(note, nl, "%u connection(s) reset, not carried: %s", n, why);
		return send_end(l, ver);
	}
	unsigned nback = 0;
	for (unsigned i = 0; i < held; i++) {
		struct conn *k = &c->c[c->n];
		uint8_t *blob = NULL;
		size_t len = 0;
		int err = tcprepair_dump(tfd[i], &blob, &len, &k->t);
		if (err) {
			/* half-closed, or not allowed: it runs on here until the
			 * hand-over closes it, and is reset at the target */
			tcprepair_thaw(tfd[i]);
			back[nback++] = t[i];
			left++;
			snprintf(why, sizeof(why), "%s", strerror(-err));
			continue;
		}
		k->handle = th[i];
		k->fd = tfd[i];
		c->n++;
		Pvha__MigrateConn m = PVHA__MIGRATE_CONN__INIT;
		m.version = ver;
		m.handle = th[i];
		m.tcp = (ProtobufCBinaryData){ .len = len, .data = blob };
		err = pvproto_link_write(l, &m.base);
		free(blob);
		if (err) {
			netfreeze_release(NULL, back, nback, why, sizeof(why));
			return err;
		}
	}
	if (nback)
		netfreeze_release(NULL, back, nback, why, sizeof(why));
	if (left)
		snprintf(note, nl, "%u of %u connection(s) reset, not carried (%s)", left, n,
			 why[0] ? why : "not established");
	return send_end(l, ver);
}

void mig_conns_unfreeze(struct mig_conns *c)
{
	struct tcprepair_tuple t[PV_NET_HANDLES_MAX];
	char why[200];
	for (unsigned i = 0; i < c->n; i++) {
		tcprepair_thaw(c->c[i].fd);
		t[i] = c->c[i].t;
	}
	netfreeze_release(NULL, t, c->n, why, sizeof(why));
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
			if (err > 0 && c->n) /* start the nft run now: it releases them after the restore */
			netfreeze_start(&c->run, why, wl);
		if (err)
			return err > 0 ? 0 : err;
	}
	return bad(why, wl, "more than %u connections", PV_NET_HANDLES_MAX);
}

unsigned mig_conns_restore(struct mig_conns *c, struct hv_net *net, char *note, size_t nl)
{
	struct tcprepair_tuple t[PV_NET_HANDLES_MAX];
	unsigned ok = 0, failed = 0;
	char why[200] = "";
	note[0] = 0;
	for (unsigned i = 0; i < c->n; i++) {
		struct conn *k = &c->c[i];
		int fd = -1;
		t[i] = k->t;
		if (tcprepair_restore(k->blob, k->len, &fd, why, sizeof(why)) == 0 &&
		    hv_net_adopt(net, k->handle, fd) == 0) {
			ok++;
			continue;
		}
		if (fd >= 0)
			close(fd);
		failed++;
	}
	/* on this host the source held them (or an old stay here did) */
	char rwhy[200] = "";
	struct netfreeze *run = c->run;
	c->run = NULL;
	if (c->n && netfreeze_release(run, t, c->n, rwhy, sizeof(rwhy)) != 0 && !failed)
		snprintf(note, nl, "connections restored, but their packets may stay held for up to %u s: %s",
			 NETFREEZE_TIMEOUT_S, rwhy);
	if (failed)
		snprintf(note, nl, "%u of %u connection(s) reset: %s", failed, c->n, why);
	return ok;
}
