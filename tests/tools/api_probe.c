/*
 * pvha-api-probe: asks the local pvhad for its cluster status again and
 * again, and says how long the slowest answer took and whether the
 * membership held. The lab's storage-outage test runs it on every node
 * while the OSDs are stopped: the agent must answer at once whatever the
 * storage does, and no node may leave.
 *
 *   pvha-api-probe --seconds S [--every-ms M]
 * prints one line: "answers N slowest_ms X p99_ms Y min_members K rings R"
 * (R is the number of distinct ring ids seen) and exits 0, or 1 when an answer did
 * not come (within 5 s) or did not decode.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <qb/qbipcc.h>

#include "proto/api.pb-c.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return a < b ? -1 : a > b;
}

/* One CLUSTER_STATUS round trip on connection c; *rep to free. */
static int ask(qb_ipcc_connection_t *c, Pvha__ApiReply **rep)
{
	static uint8_t rbuf[1u << 20];
	uint8_t buf[256];
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	req.version = 1;
	req.op = PVHA__API_REQUEST__OP__CLUSTER_STATUS;
	size_t len = pvha__api_request__get_packed_size(&req);
	struct qb_ipc_request_header *h = (struct qb_ipc_request_header *)buf;
	if (sizeof(*h) + len > sizeof(buf))
		return -EMSGSIZE;
	h->id = 1;
	h->size = (int32_t)(sizeof(*h) + len);
	pvha__api_request__pack(&req, buf + sizeof(*h));
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(*h) + len };
	ssize_t n = qb_ipcc_sendv_recv(c, &iov, 1, rbuf, sizeof(rbuf), 5000);
	if (n < (ssize_t)sizeof(struct qb_ipc_response_header))
		return n < 0 ? (int)n : -EBADMSG;
	*rep = pvha__api_reply__unpack(NULL, (size_t)n - sizeof(struct qb_ipc_response_header),
				       rbuf + sizeof(struct qb_ipc_response_header));
	return *rep ? 0 : -EBADMSG;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "every-ms", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	double seconds = 0, every_ms = 100;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			seconds = atof(optarg);
		else if (c == 'e')
			every_ms = atof(optarg);
		else
			return 2;
	}
	if (seconds <= 0 || every_ms <= 0 || optind < argc) {
		fprintf(stderr, "usage: pvha-api-probe --seconds S [--every-ms M]\n");
		return 2;
	}
	qb_ipcc_connection_t *conn = qb_ipcc_connect("pvhad", 1u << 20);
	if (!conn) {
		fprintf(stderr, "pvha-api-probe: cannot reach pvhad: %s\n", strerror(errno));
		return 1;
	}
	static double took[1u << 16];
	uint64_t rings[64];
	size_t nrings = 0, answers = 0, min_members = SIZE_MAX;
	double slowest = 0, end = now_ms() + seconds * 1000.0;
	int rc = 0;
	while (now_ms() < end) {
		Pvha__ApiReply *rep = NULL;
		double t0 = now_ms();
		int err = ask(conn, &rep);
		double dt = now_ms() - t0;
		if (err || !rep->status) {
			fprintf(stderr, "pvha-api-probe: no answer: %s\n", strerror(err ? -err : EBADMSG));
			rc = 1;
			if (rep)
				pvha__api_reply__free_unpacked(rep, NULL);
			break;
		}
		if (answers < sizeof(took) / sizeof(took[0]))
			took[answers] = dt;
		answers++;
		if (dt > slowest)
			slowest = dt;
		size_t members = 0;
		for (size_t i = 0; i < rep->status->n_nodes; i++)
			members += rep->status->nodes[i]->member;
		if (members < min_members)
			min_members = members;
		size_t k;
		for (k = 0; k < nrings && rings[k] != rep->status->ring_id; k++)
			;
		if (k == nrings && nrings < 64)
			rings[nrings++] = rep->status->ring_id;
		pvha__api_reply__free_unpacked(rep, NULL);
		usleep((useconds_t)(every_ms * 1000));
	}
	qb_ipcc_disconnect(conn);
	size_t kept = answers < sizeof(took) / sizeof(took[0]) ? answers : sizeof(took) / sizeof(took[0]);
	qsort(took, kept, sizeof(took[0]), cmp_double);
	double p99 = kept ? took[(kept * 99) / 100 < kept ? (kept * 99) / 100 : kept - 1] : 0;
	printf("answers %zu slowest_ms %.1f p99_ms %.1f min_members %zu rings %zu\n", answers, slowest, p99,
	       min_members == SIZE_MAX ? 0 : min_members, nrings);
	return rc;
}
