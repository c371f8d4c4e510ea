/*
 * pvhad's HTTP server (docs/metrics.md): Prometheus metrics at /metrics, the
 * dashboard's state at /api/state and the dashboard itself at /, all
 * read-only, on the address of pvhad.conf's http_listen.
 *
 * Threading: the server answers on its own thread (libmicrohttpd's). It
 * never touches the agent: the loop publishes a copy of what it shows
 * (http_publish, under a mutex held for a memcpy), and each request renders
 * from its own copy of that. http_start and http_stop run on the loop.
 */
#ifndef PVHAD_HTTP_H
#define PVHAD_HTTP_H

#include <netinet/in.h>
#include <stddef.h>

#include "metrics.h"

struct http_server;

/* Listens on addr and starts the server's thread; the VMMs' control sockets
 * are guest_dir/UUID.sock (asked for STATUS, with a short timeout, on the
 * server's thread). Returns 0, or -errno with the reason in why (the port
 * is taken: -EADDRINUSE). */
int http_start(const struct sockaddr_in *addr, const char *guest_dir, struct http_server **out, char *why,
	       size_t whylen);

/* Publishes what the next requests show: the agent's snapshot and the
 * tracker's histograms and events. O(size of a snapshot) under the lock. */
void http_publish(struct http_server *h, const struct pvclus_snapshot *snap, const struct metrics_tracker *t);

/* Stops the thread (waiting for requests being answered) and frees. NULL: no-op. */
void http_stop(struct http_server *h);

#endif
