/* See http.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <microhttpd.h>

#include "http.h"
#include "pvstore/pvstore.h"
#include "vmmctl.h"
#include "web_assets.h"

/* What the loop published last. */
struct published {
	bool valid;
	struct pvclus_snapshot snap;
	struct metrics_histogram h[METRICS_DURATIONS];
	uint64_t events_total;
	struct metrics_event events[METRICS_EVENTS];
	size_t n_events;
};

#define VMM_STATUS_MS 300

struct http_server {
	char guest_dir[512]; /* the VMMs' control sockets: UUID.sock */
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;
	struct published pub; /* under lock */
};

void http_publish(struct http_server *h, const struct pvclus_snapshot *snap, const struct metrics_tracker *t)
{
	pthread_mutex_lock(&h->lock);
	h->pub.valid = true;
	h->pub.snap.local = snap->local;
	h->pub.snap.leader = snap->leader;
	h->pub.snap.quorate = snap->quorate;
	h->pub.snap.leads = snap->leads;
	h->pub.snap.have_state = snap->have_state;
	h->pub.snap.storage_ok = snap->storage_ok;
	h->pub.snap.n_nodes = snap->n_nodes;
	memcpy(h->pub.snap.nodes, snap->nodes, snap->n_nodes * sizeof(snap->nodes[0]));
	h->pub.snap.n_guests = snap->n_guests;
	memcpy(h->pub.snap.guests, snap->guests, snap->n_guests * sizeof(snap->guests[0]));
	memcpy(h->pub.h, t->h, sizeof(h->pub.h));
	h->pub.events_total = t->events_total;
	h->pub.n_events = metrics_tracker_events(t, h->pub.events);
	pthread_mutex_unlock(&h->lock);
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned code, const char *type, void *body, size_t len,
			       enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned code, const char *text)
{
	return respond(c, code, "text/plain; charset=utf-8", (void *)text, strlen(text), MHD_RESPMEM_PERSISTENT);
}

/* A VMM of this node: /proc, and its STATUS for the heartbeat (a VMM that
 * does not answer within VMM_STATUS_MS, or is gone, is left out). */
static void vmm_figures(struct http_server *h, const struct pvclus_snapshot_guest *g, struct metrics_vmm *out)
{
	char u[PVSTORE_UUID_STR], path[700];
	Pvha__VmmReply *rep = NULL;
	int fd;
	if (metrics_vmm_proc(g->pid, out) != 0)
		return;
	pvstore_uuid_format(g->uuid, u);
	snprintf(path, sizeof(path), "%s/%s.sock", h->guest_dir, u);
	if (vmmctl_connect(path, VMM_STATUS_MS, &fd) != 0)
		return;
	if (vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &rep) != 0)
		rep = NULL; /* no answer in time: left out of this scrape */
	if (rep && !rep->error && rep->status && rep->status->heartbeat_seq) {
		out->has_heartbeat = true;
		out->heartbeat_seq = rep->status->heartbeat_seq;
		out->heartbeat_age_s = (double)rep->status->heartbeat_age_ms / 1000.0;
	}
	if (rep && !rep->error && rep->status && rep->status->disk && rep->status->disk[0]) {
		const Pvha__VmmStatus *s = rep->status;
		out->has_disk = true;
		out->disk_reads = s->disk_reads;
		out->disk_writes = s->disk_writes;
		out->disk_flushes = s->disk_flushes;
		out->disk_read_bytes = s->disk_read_bytes;
		out->disk_write_bytes = s->disk_write_bytes;
		out->disk_read_s = (double)s->disk_read_ns / 1e9;
		out->disk_write_s = (double)s->disk_write_ns / 1e9;
		out->disk_flush_s = (double)s->disk_flush_ns / 1e9;
	}
	if (rep)
		pvha__vmm_reply__free_unpacked(rep, NULL);
	close(fd);
}

/* /metrics and /api/state: renders this request's copy of the published
 * state, reading the VMMs' /proc files on this thread. */
static enum MHD_Result respond_rendered(struct http_server *h, struct MHD_Connection *c, bool json)
{
	struct published *p = malloc(sizeof(*p));
	struct metrics_vmm *vmm = NULL;
	struct mbuf b = { 0 };
	if (!p)
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	pthread_mutex_lock(&h->lock);
	memcpy(p, &h->pub, sizeof(*p));
	pthread_mutex_unlock(&h->lock);
	if (!p->valid) {
		free(p);
		return respond_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "the agent has not started yet\n");
	}
	vmm = calloc(p->snap.n_guests ? p->snap.n_guests : 1, sizeof(*vmm));
	if (!vmm) {
		free(p);
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	for (size_t i = 0; i < p->snap.n_guests; i++)
		if (p->snap.guests[i].pid > 0)
			vmm_figures(h, &p->snap.guests[i], &vmm[i]);
	struct metrics_view v = {
		.snap = &p->snap,
		.vmm = vmm,
		.h = p->h,
		.events_total = p->events_total,
		.events = p->events,
		.n_events = p->n_events,
		.now = time(NULL),
	};
	if (json)
		metrics_render_json(&v, &b);
	else
		metrics_render_prom(&v, &b);
	free(vmm);
	free(p);
	if (b.err) {
		mbuf_free(&b);
		return respond_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	}
	return respond(c, MHD_HTTP_OK, json ? "application/json" : "text/plain; version=0.0.4; charset=utf-8", b.p,
		       b.len, MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct http_server *h = cls;
	(void)version;
	(void)upload_data;
	(void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "read-only: GET and HEAD only\n");
	if (*upload_data_size)
		return respond_text(c, MHD_HTTP_BAD_REQUEST, "a GET has no body\n");
	if (!strcmp(url, "/metrics"))
		return respond_rendered(h, c, false);
	if (!strcmp(url, "/api/state"))
		return respond_rendered(h, c, true);
	if (!strcmp(url, "/"))
		url = "/index.html";
	for (const struct web_asset *a = web_assets; a->path; a++)
		if (!strcmp(url, a->path))
			return respond(c, MHD_HTTP_OK, a->content_type, (void *)a->data, a->len,
				       MHD_RESPMEM_PERSISTENT);
	return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

int http_start(const struct sockaddr_in *addr, const char *guest_dir, struct http_server **out, char *why,
	       size_t whylen)
{
	struct http_server *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	snprintf(h->guest_dir, sizeof(h->guest_dir), "%s", guest_dir);
	pthread_mutex_init(&h->lock, NULL);
	/* The server's thread takes no signal: the loop's handlers stay on the loop. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	errno = 0;
	h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, ntohs(addr->sin_port), NULL, NULL,
				  on_request, h, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)addr,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT,
				  (unsigned)10, MHD_OPTION_END);
	int err = errno ? -errno : -EIO;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!h->mhd) {
		char a[INET_ADDRSTRLEN] = "?";
		inet_ntop(AF_INET, &addr->sin_addr, a, sizeof(a));
		snprintf(why, whylen, "cannot listen on %s:%u: %s", a, ntohs(addr->sin_port), strerror(-err));
		pthread_mutex_destroy(&h->lock);
		free(h);
		return err;
	}
	*out = h;
	return 0;
}

void http_stop(struct http_server *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	pthread_mutex_destroy(&h->lock);
	free(h);
}
