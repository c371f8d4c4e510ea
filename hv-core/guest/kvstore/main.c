/*
 * kvstore: the Redis-compatible service guest (design in kvstore.h, user
 * documentation in docs/kvstore.md). It serves RESP2 clients on the guest's
 * address with every write logged to its disk before the reply leaves.
 *
 * Command line:
 *   port=N          TCP port (default 6379)
 *   maxclients=N    clients served at once (default and most: the handle
 *                   limit less the listener, PV_NET_HANDLES_MAX - 2)
 *   maxmemory=N     bytes the keyspace may use (default 3/4 of the heap,
 *                   the RAM between the image and the stack)
 * Without a disk it still serves, but nothing is durable (INFO says
 * aof_enabled:0, and the console says so).
 *
 * Output lines:
 *   kvstore: formatted the log disk
 *   kvstore: replayed N records, generation G, log T bytes[, cut a torn tail]
 *   kvstore: no disk: nothing is durable
 *   kvstore: listening on IP:PORT (maxclients C, maxmemory M)
 *   kvstore: log disk CORRUPT: superblock                       (exit 2)
 *   kvstore: disk I/O error: E, stopping                         (exit 5)
 *   kvstore: net: <call> failed: E                               (exit 6)
 *   kvstore: bad cmdline <key>                                   (exit 1)
 *   kvstore: out of memory at start                              (exit 7)
 *
 * One poll round: accept what waits, read each ready client once, run every
 * whole command it sent (while its queued replies stay under OUT_HIGH),
 * commit the round's log records (one write, one flush), then send. A client
 * whose replies pile up is not read until they drain (backpressure); one that
 * sends a protocol error gets the error and is closed; one whose replies
 * cannot be queued (KV_MAX_OUTPUT or memory) is closed.
 */
#include "kv_conn.h"
#include "pv.h"

#define STACK_RESERVE (256u * 1024u)
#define READ_CHUNK (16384u - KV_HEAP_HDR)
#define OUT_HIGH (256u * 1024u)       /* stop running a client's commands above this */
#define IN_LIMIT (KV_MAX_REQUEST + 2u * READ_CHUNK)
#define ROUND_NS (100u * 1000u * 1000u) /* expiry sweep and heartbeat period */
#define SWEEP_BUCKETS 256u
#define MAX_CLIENTS (PV_NET_HANDLES_MAX - 2u)

enum {
	EXIT_CMDLINE = 1,
	EXIT_CORRUPT = 2,
	EXIT_IO = 5,
	EXIT_NET = 6,
	EXIT_NOMEM = 7,
};

struct conn {
	int h;            /* -1: slot free */
	struct kv_conn kc;
	bool peer_closed; /* the client shut its side: finish, then close */
};

struct server {
	struct kv_heap heap;
	struct kv_engine eng;
	struct kv_log log;
	struct kv_req req;
	int listener;
	unsigned maxclients, nclients;
	struct conn conns[MAX_CLIENTS];
	short conn_of[PV_NET_HANDLES_MAX]; /* handle -> conns index, -1 none */
	struct pv_pollfd fds[PV_NET_POLL_MAX];
	short fd_conn[PV_NET_POLL_MAX];    /* fds index -> conns index, -1 the listener */
	uint64_t heartbeat;
};

/* ---- the disk, for kv_log ------------------------------------------------ */

static int disk_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	(void)ctx;
	return pv_disk_read_all(off, buf, len);
}

static int disk_write(void *ctx, uint64_t off, const void *buf, size_t len)
{
	(void)ctx;
	return pv_disk_write_all(off, buf, len);
}

static int disk_flush(void *ctx)
{
	(void)ctx;
	return (int)pv_disk_flush();
}

static const struct kv_disk_ops pv_disk_ops = {
	.read = disk_read, .write = disk_write, .flush = disk_flush,
};

static uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static _Noreturn void io_stop(int rc)
{
	/* appendfsync always cannot go on after a failed write or flush: stop
	 * before any reply claims a write the disk may not hold. */
	pv_printf("kvstore: disk I/O error: %s, stopping\n", pv_strerror(rc));
	pv_exit(EXIT_IO);
}

static void yield_cb(void *ctx)
{
	(void)ctx;
	pv_yield();
}

static void tick_clock(struct server *s)
{
	s->eng.now_mono = pv_clock_mono();
	s->eng.now_wall = pv_clock_wall();
}

/* ---- clients -------------------------------------------------------------- */

static void conn_close(struct server *s, struct conn *c)
{
	pv_net_close(c->h);
	s->conn_of[c->h] = -1;
	c->h = -1;
	kv_conn_release(&c->kc);
	s->nclients--;
	s->eng.stats.clients = s->nclients;
}

static void accept_all(struct server *s)
{
	static const char full[] = "-ERR max number of clients reached\r\n";

	for (;;) {
		int h = pv_net_accept(s->listener);
		if (h == -PV_EAGAIN || h == -PV_EMFILE)
			return;
		if (h < 0) {
			pv_printf("kvstore: net: accept failed: %s\n", pv_strerror(h));
			return;
		}
		s->eng.stats.connections++;
		if (s->nclients == s->maxclients) {
			pv_net_send(h, full, sizeof(full) - 1);
			pv_net_close(h);
			s->eng.stats.rejected++;
			continue;
		}
		unsigned i = 0;
		while (s->conns[i].h >= 0)
			i++;
		struct conn *c = &s->conns[i];
		c->h = h;
		c->peer_closed = false;
		kv_conn_init(&c->kc, &s->heap, IN_LIMIT);
		s->conn_of[h] = (short)i;
		s->nclients++;
		s->eng.stats.clients = s->nclients;
	}
}

/* Reads what c has sent (one recv). Returns false when c must be closed. */
static bool read_client(struct conn *c)
{
	struct kv_buf *in = &c->kc.in;
	if (kv_buf_reserve(in, READ_CHUNK) < 0)
		return false; /* the parser refuses requests long before this */
	long n = pv_net_recv(c->h, kv_buf_tail(in), READ_CHUNK);
	if (n == -PV_EAGAIN)
		return true;
	if (n < 0)
		return false;
	if (n == 0)
		c->peer_closed = true;
	kv_buf_commit(in, (size_t)n);
	return true;
}

/* Sends what is queued for c. Returns false when c must be closed. */
static bool write_client(struct conn *c)
{
	struct kv_buf *out = &c->kc.out;
	while (kv_buf_size(out)) {
		size_t len = kv_buf_size(out);
		long n = pv_net_send(c->h, kv_buf_head(out), len > PV_NET_IO_MAX ? PV_NET_IO_MAX : len);
		if (n == -PV_EAGAIN)
			return true;
		if (n < 0)
			return false;
		kv_buf_consume(out, (size_t)n);
	}
	/* Give a burst's big buffer back once it drained. */
	if (out->cap > OUT_HIGH)
		kv_buf_release(out);
	return true;
}

static unsigned build_pollset(struct server *s, bool *busy)
{
	unsigned n = 0;

	*busy = false;
	s->fds[n] = (struct pv_pollfd){ .handle = s->listener, .events = PV_POLLIN };
	s->fd_conn[n++] = -1;
	for (unsigned i = 0; i < s->maxclients; i++) {
		struct conn *c = &s->conns[i];
		if (c->h < 0)
			continue;
		uint16_t ev = 0;
		if (!c->kc.closing && !c->peer_closed && kv_buf_size(&c->kc.out) < OUT_HIGH)
			ev |= PV_POLLIN;
		if (kv_buf_size(&c->kc.out))
			ev |= PV_POLLOUT;
		s->fds[n] = (struct pv_pollfd){ .handle = c->h, .events = ev };
		s->fd_conn[n++] = (short)i;
		/* Input left over from backpressure: do not sleep on it. */
		if (kv_conn_runnable(&c->kc, OUT_HIGH) && !c->peer_closed)
			*busy = true;
	}
	return n;
}

static void serve(struct server *s)
{
	uint64_t next_tick = 0;

	for (;;) {
		bool busy;
		unsigned n = build_pollset(s, &busy);
		uint64_t deadline = busy ? 0 : next_tick;
		int ready = pv_net_poll(s->fds, n, deadline);
		if (ready < 0) {
			pv_printf("kvstore: net: poll failed: %s\n", pv_strerror(ready));
			pv_exit(EXIT_NET);
		}
		tick_clock(s);
		s->eng.stats.rounds++;
		if (s->fds[0].revents & PV_POLLIN)
			accept_all(s);
		/* Read and run. */
		for (unsigned f = 1; f < n; f++) {
			struct conn *c = &s->conns[s->fd_conn[f]];
			bool ok = true;
			if (s->fds[f].revents & (PV_POLLIN | PV_POLLHUP | PV_POLLERR))
				ok = read_client(c);
			if (ok)
				ok = kv_conn_run(&c->kc, &s->eng, &s->req, OUT_HIGH);
			if (!ok)
				conn_close(s, c);
		}
		/* Durable before any reply leaves. */
		int rc = kv_engine_commit(&s->eng);
		if (rc < 0)
			io_stop(rc);
		for (unsigned f = 1; f < n; f++) {
			struct conn *c = &s->conns[s->fd_conn[f]];
			if (c->h < 0 || c->h != s->fds[f].handle)
				continue;
			bool ok = write_client(c);
			bool done = kv_buf_size(&c->kc.out) == 0 &&
				    (c->kc.closing ||
				     (c->peer_closed && !kv_conn_runnable(&c->kc, OUT_HIGH)));
			if (!ok || done)
				conn_close(s, c);
		}
		if (s->eng.now_mono >= next_tick) {
			kv_db_sweep(&s->eng.db, s->eng.now_mono, SWEEP_BUCKETS);
			pv_heartbeat(++s->heartbeat);
			next_tick = s->eng.now_mono + ROUND_NS;
		}
	}
}

/* ---- start ---------------------------------------------------------------- */

static uint64_t cmdline_u64(const struct pv_boot_info *bi, const char *key, uint64_t def)
{
	uint64_t v = def;
	if (pv_cmdline_u64(bi, key, &v) < 0) {
		pv_printf("kvstore: bad cmdline %s\n", key);
		pv_exit(EXIT_CMDLINE);
	}
	return v;
}

static void open_log(struct server *s, const struct pv_boot_info *bi)
{
	struct kv_disk disk = { .ops = &pv_disk_ops, .ctx = NULL, .size = bi->disk_size };
	struct kv_log_report rep;
	uint64_t seed = pv_clock_wall() ^ (pv_clock_mono() << 21) ^ rdtsc();

	if (bi->disk_size == 0) {
		pv_printf("kvstore: no disk: nothing is durable\n");
		return;
	}
	int rc = kv_log_open(&s->log, &disk, &s->heap, mix64(seed), mix64(seed + 1),
			     kv_engine_apply, &s->eng, &rep);
	if (rc == -KV_EBADMSG) {
		pv_printf("kvstore: log disk CORRUPT: superblock\n");
		pv_exit(EXIT_CORRUPT);
	}
	if (rc == -KV_ENOMEM) {
		pv_printf("kvstore: out of memory replaying the log (raise --mem or maxmemory)\n");
		pv_exit(EXIT_NOMEM);
	}
	if (rc == -KV_ENOSPC) {
		pv_printf("kvstore: the disk is too small for the log\n");
		pv_exit(EXIT_IO);
	}
	if (rc < 0)
		io_stop(rc);
	if (rep.formatted)
		pv_printf("kvstore: formatted the log disk\n");
	pv_printf("kvstore: replayed %lu records, generation %lu, log %lu bytes%s\n", rep.records,
		  rep.gen, rep.tail, rep.cut ? ", cut a torn tail" : "");
	s->eng.log = &s->log;
}

int main(const struct pv_boot_info *bi)
{
	struct kv_heap heap;
	uint64_t start = bi->image_end, end = bi->stack_top - STACK_RESERVE;

	if (end <= start || kv_heap_init(&heap, (void *)(uintptr_t)start, end - start) < 0) {
		pv_printf("kvstore: out of memory at start\n");
		return EXIT_NOMEM;
	}
	struct server *s = kv_heap_alloc(&heap, sizeof(*s));
	if (!s) {
		pv_printf("kvstore: out of memory at start\n");
		return EXIT_NOMEM;
	}
	memset(s, 0, sizeof(*s));
	s->heap = heap;
	/* The server block moved the heap's state: allocate from s->heap only. */
	uint64_t port = cmdline_u64(bi, "port", 6379);
	uint64_t maxclients = cmdline_u64(bi, "maxclients", MAX_CLIENTS);
	uint64_t maxmemory = cmdline_u64(bi, "maxmemory", s->heap.size / 4 * 3);
	if (port == 0 || port > 65535) {
		pv_printf("kvstore: bad cmdline port\n");
		return EXIT_CMDLINE;
	}
	if (maxclients == 0 || maxclients > MAX_CLIENTS) {
		pv_printf("kvstore: bad cmdline maxclients\n");
		return EXIT_CMDLINE;
	}
	s->maxclients = (unsigned)maxclients;
	tick_clock(s);
	if (kv_engine_init(&s->eng, &s->heap, NULL, mix64(rdtsc() ^ pv_clock_wall()),
			   (size_t)maxmemory) < 0) {
		pv_printf("kvstore: out of memory at start\n");
		return EXIT_NOMEM;
	}
	s->eng.start_mono = s->eng.now_mono;
	s->eng.db.yield = yield_cb;
	s->eng.stats.max_clients = maxclients;
	for (unsigned i = 0; i < MAX_CLIENTS; i++)
		s->conns[i].h = -1;
	for (unsigned i = 0; i < PV_NET_HANDLES_MAX; i++)
		s->conn_of[i] = -1;
	open_log(s, bi);

	s->listener = pv_net_listen((uint16_t)port, PV_NET_BACKLOG_MAX);
	if (s->listener < 0) {
		pv_printf("kvstore: net: listen failed: %s\n", pv_strerror(s->listener));
		return EXIT_NET;
	}
	char ip[16];
	int64_t addr = pv_net_address();
	pv_ipv4_format(addr < 0 ? 0 : (uint32_t)addr, ip);
	pv_printf("kvstore: listening on %s:%lu (maxclients %lu, maxmemory %lu)\n", ip, port,
		  maxclients, maxmemory);
	serve(s);
	return 0;
}
