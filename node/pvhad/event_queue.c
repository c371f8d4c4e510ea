/* The agent's event-log appends on a worker thread (event_queue.h). */
#include "event_queue.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pvstore/pvstore.h"

#define QUEUE_MAX 1024
#define STOP_DRAIN_S 3

struct entry {
	bool has_guest;
	uint8_t guest[16];
	char what[32];
	char why[256];
};

struct event_queue {
	struct pvstore *st;
	char node[64];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct entry ring[QUEUE_MAX];
	size_t head, len;
	bool stopping;
	int pipe[2];
	int last_err;
	bool dropping;
};

static void *worker(void *arg)
{
	struct event_queue *q = arg;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		while (!q->len && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (!q->len)
			break;
		struct entry e = q->ring[q->head];
		pthread_mutex_unlock(&q->mu);
		int err = pvstore_event_append(q->st, e.has_guest ? e.guest : NULL, q->node, e.what, e.why, NULL);
		if (err) {
			pvlog_warn("cannot append to the event log: %s", pvstore_errmsg());
			if (err == -ESHUTDOWN || err == -ETIMEDOUT) {
				pthread_mutex_lock(&q->mu);
				q->last_err = err;
				pthread_mutex_unlock(&q->mu);
				char c = 1;
				if (write(q->pipe[1], &c, 1) < 0) { /* full: the loop knows already */
				}
			}
		}
		pthread_mutex_lock(&q->mu);
		q->head = (q->head + 1) % QUEUE_MAX;
		q->len--;
		pthread_cond_broadcast(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int event_queue_start(struct pvstore *st, const char *node, struct event_queue **out)
{
	struct event_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->st = st;
	snprintf(q->node, sizeof(q->node), "%s", node);
	if (pipe2(q->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		int err = -errno;
		free(q);
		return err;
	}
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	int err = pthread_create(&q->thread, NULL, worker, q);
	if (err) {
		close(q->pipe[0]);
		close(q->pipe[1]);
		free(q);
		return -err;
	}
	*out = q;
	return 0;
}

void event_queue_push(struct event_queue *q, const uint8_t *guest, const char *what, const char *why)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	if (q->len == QUEUE_MAX) {
		if (!q->dropping)
			pvlog_warn("event log: %d appends waiting for the storage; dropping new ones", QUEUE_MAX);
		q->dropping = true;
		pthread_mutex_unlock(&q->mu);
		return;
	}
	q->dropping = false;
	struct entry *e = &q->ring[(q->head + q->len) % QUEUE_MAX];
	e->has_guest = guest != NULL;
	if (guest)
		memcpy(e->guest, guest, 16);
	snprintf(e->what, sizeof(e->what), "%s", what);
	snprintf(e->why, sizeof(e->why), "%s", why);
	q->len++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

int event_queue_fd(const struct event_queue *q)
{
	return q->pipe[0];
}

int event_queue_failed(struct event_queue *q)
{
	char buf[64];
	while (read(q->pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&q->mu);
	int err = q->last_err;
	q->last_err = 0;
	pthread_mutex_unlock(&q->mu);
	return err;
}

void event_queue_stop(struct event_queue *q)
{
	if (!q)
		return;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_DRAIN_S;
	pthread_mutex_lock(&q->mu);
	while (q->len && pthread_cond_timedwait(&q->cv, &q->mu, &until) == 0)
		;
	bool drained = q->len == 0;
	q->stopping = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (drained) {
		pthread_join(q->thread, NULL);
	} else {
		/* the worker is stuck in RADOS: leave it to the process's exit */
		pvlog_warn("event log: %zu appends not written at exit", q->len);
		pthread_detach(q->thread);
		return;
	}
	close(q->pipe[0]);
	close(q->pipe[1]);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q);
}
