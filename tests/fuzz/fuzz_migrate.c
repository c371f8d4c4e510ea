/*
 * Fuzz harness: what an incoming pvha-vmm parses from a source, through the
 * real receiver (node/vmm/vmm_migrate.c, compiled in): the handshake, the
 * hello, the state stream and the hand-over messages. The input is the
 * source's whole byte stream, written into one end of a socket pair; the
 * receiver thread runs on the other end as it does behind --incoming, told
 * to expect a 2 MiB guest (--mem 2M) and no owner lock. The first byte, when
 * odd, gives the target a migration key (the input then cannot pass the
 * tagged hello: that path is the refusal).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"
#include "pvproto/frame.h"
#include "vmm_migrate.h"

struct feeder {
	int fd;
	const uint8_t *data;
	size_t size;
};

/* The source's side: everything in, then read (and drop) the target's
 * answers until it closes. */
static void *feed(void *arg)
{
	struct feeder *f = arg;
	char buf[4096];
	(void)pvproto_write_all(f->fd, f->data, f->size);
	shutdown(f->fd, SHUT_WR);
	while (read(f->fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[32] = "fuzzing-key-fuzzing-key-fuzzing";
	int sv[2];
	signal(SIGPIPE, SIG_IGN); /* the target may hang up before it has read all */
	if (size == 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	struct feeder f = { .fd = sv[0], .data = data + 1, .size = size - 1 };
	struct mig_target_params p = {
		.fd = sv[1],
		.cfg = { .mem_size = 2u << 20, .backend = HV_BACKEND_TCG },
		.key = data[0] & 1 ? key : NULL,
		.key_len = data[0] & 1 ? sizeof(key) : 0,
		.notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK),
	};
	pthread_t th;
	struct mig_target *t = NULL;
	if (pthread_create(&th, NULL, feed, &f) != 0)
		goto out_close;
	if (mig_target_start(&p, &t) != 0) {
		close(sv[1]);
		shutdown(sv[0], SHUT_RDWR);
		pthread_join(th, NULL);
		goto out_feeder;
	}
	while (!mig_target_finished(t)) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
	bool failed;
	hv_machine_destroy(mig_target_take(t, &failed));
	struct mig_progress last;
	mig_target_destroy(t, &last); /* closes sv[1] */
	if (getenv("PVHA_FUZZ_VERBOSE")) /* what the target made of the input */
		fprintf(stderr, "%s: %s\n", mig_phase_name(last.phase), last.reason);
	pthread_join(th, NULL);
out_feeder:
	close(sv[0]);
	close(p.notify_fd);
	return 0;
out_close:
	close(sv[0]);
	close(sv[1]);
	close(p.notify_fd);
	return 0;
}
