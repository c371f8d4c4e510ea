/* pvhad's storage workers: see jobs.h. */
#include "jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_WORKERS 16

struct item {
	struct pvclus_job *job;
	struct item *next;
};

struct job_pool {
	struct pvstore *st;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item *todo, *todo_tail; /* FIFO: started in the order submitted */
	struct item *done;             /* finished, for the loop */
	bool stopping;
	int pipe[2];
	unsigned nthreads;
	pthread_t threads[MAX_WORKERS];
};

static void *worker(void *arg)
{
	struct job_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->todo && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stopping)
			break;
		struct item *it = p->todo;
		p->todo = it->next;
		if (!p->todo)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->mu);

		it->job->err = 0;
		it->job->errmsg[0] = '\0';
		it->job->run(p->st, it->job);

		pthread_mutex_lock(&p->mu);
		bool wake = !p->done;
		it->next = p->done;
		p->done = it;
		if (wake) {
			char c = 1;
			ssize_t n = write(p->pipe[1], &c, 1); /* one byte per empty -> non-empty */
			(void)n;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int job_pool_start(struct pvstore *st, unsigned nthreads, struct job_pool **out)
{
	struct job_pool *p = calloc(1, sizeof(*p));
	int err;
	if (!p)
		return -ENOMEM;
	if (nthreads < 1 || nthreads > MAX_WORKERS)
		nthreads = 4;
	p->st = st;
	if (pipe2(p->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		err = -errno;
		goto err_free;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (unsigned i = 0; i < nthreads; i++) {
		err = -pthread_create(&p->threads[i], NULL, worker, p);
		if (err) {
			job_pool_stop(p);
			return err;
		}
		p->nthreads++;
	}
	*out = p;
	return 0;

err_free:
	free(p);
	return err;
}

int job_pool_submit(struct job_pool *p, struct pvclus_job *j)
{
	struct item *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->job = j;
	pthread_mutex_lock(&p->mu);
	if (p->todo_tail)
		p->todo_tail->next = it;
	else
		p->todo = it;
	p->todo_tail = it;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int job_pool_fd(const struct job_pool *p)
{
	return p->pipe[0];
}

void job_pool_complete(struct job_pool *p)
{
	char buf[64];
	while (read(p->pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&p->mu);
	struct item *list = p->done;
	p->done = NULL;
	pthread_mutex_unlock(&p->mu);
	/* oldest first */
	struct item *rev = NULL;
	while (list) {
		struct item *n = list->next;
		list->next = rev;
		rev = list;
		list = n;
	}
	while (rev) {
		struct item *n = rev->next;
		rev->job->done(rev->job);
		free(rev);
		rev = n;
	}
}

void job_pool_stop(struct job_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (struct item *it = p->todo, *n; it; it = n) {
		n = it->next;
		free(it);
	}
	for (struct item *it = p->done, *n; it; it = n) {
		n = it->next;
		free(it);
	}
	close(p->pipe[0]);
	close(p->pipe[1]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
