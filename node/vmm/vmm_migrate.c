/* See vmm_migrate.h; the protocol and the choices are in docs/migration.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "proto/migrate.pb-c.h"
#include "mig_conns.h"
#include "pvproto/frame.h"
#include "pvproto/link.h"
#include "vmm_disk.h"
#include "vmm_migrate.h"

#define MIG_VERSION 3u
#define MSG_MAX 4096u
#define CONNECT_TIMEOUT_MS 10000
#define IO_TIMEOUT_S 10          /* nothing moves on the link for this long: it is dead */
#define STR_(x) #x
#define STR(x) STR_(x)
#define LOCK_GRACE_MS 5000       /* target: how long it tries for a released lock */
#define LOCK_STEP_MS 50
#define ADDRESS_WAIT_MS 200      /* target: the connections wait this for the address */
#define LINGER_MS 2000           /* a failing side waits this long for the other to read why */
#define DEFAULT_DOWNTIME_MS 10u
#define DEFAULT_MAX_ROUNDS 30u
#define STALL_ROUNDS 3u          /* rounds without fewer dirty pages: stop-copy anyway */
#define WINDOW_PAGES_MIN 4096u   /* pre-copy sends in windows of at least 16 MiB */
/* Socket buffers: what is in them when the guest pauses is sent during the
 * downtime, so they are kept small (the kernel doubles these). */
#define LINK_BUF_BYTES (128 * 1024)
#define DRAIN_MAX_MS 1000        /* source: wait at most this for its queue to empty */

typedef Pvha__MigrateMsg__Kind msg_kind;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void notify(int fd)
{
	uint64_t one = 1;
	/* An eventfd write fails only when its counter is full: news is pending. */
	if (write(fd, &one, sizeof(one)) < 0) {
		/* nothing to do */
	}
}

const char *mig_phase_name(enum mig_phase p)
{
	switch (p) {
	case MIG_NONE: return "";
	case MIG_PRECOPY: return "precopy";
	case MIG_STOPCOPY: return "stopcopy";
	case MIG_HANDOVER: return "handover";
	case MIG_DONE: return "done";
	case MIG_FAILED: return "failed";
	case MIG_RESTORING: return "restoring";
	}
	return "";
}

static const char *kind_name(msg_kind k)
{
	switch (k) {
	case PVHA__MIGRATE_MSG__KIND__ACCEPT: return "ACCEPT";
	case PVHA__MIGRATE_MSG__KIND__REFUSE: return "REFUSE";
	case PVHA__MIGRATE_MSG__KIND__READY: return "READY";
	case PVHA__MIGRATE_MSG__KIND__FAIL: return "FAIL";
	case PVHA__MIGRATE_MSG__KIND__RELEASED: return "RELEASED";
	case PVHA__MIGRATE_MSG__KIND__ABORT: return "ABORT";
	case PVHA__MIGRATE_MSG__KIND__RUNNING: return "RUNNING";
	default: return "?";
	}
}

/* Adds a note (none when empty) to a progress' reason, under its lock. */
static void note_reason(pthread_mutex_t *lock, struct mig_progress *p, const char *note)
{
	if (!note[0])
		return;
	pthread_mutex_lock(lock);
	size_t n = strlen(p->reason);
	snprintf(p->reason + n, sizeof(p->reason) - n, "%s%s", n ? "; " : "", note);
	pthread_mutex_unlock(lock);
}

/* What a failed exchange on the link means, in words. */
static const char *link_error(int err)
{
	switch (err) {
	case -ENODATA: return "the other side closed the connection";
	case -EAGAIN: return "no progress on the link for " STR(IO_TIMEOUT_S) " s";
	case -ECONNRESET: return "the connection was reset";
	case -EPIPE: return "the other side closed the connection";
	case -EBADMSG: return "a truncated or undecodable message";
	case -EMSGSIZE: return "a message larger than allowed";
	case -EPROTO: return "a message of an unknown protocol version";
	case -EKEYREJECTED: return "a message that failed authentication (sent with another "
				   "migration key, or altered on the way)";
	default: return strerror(-err);
	}
}

static int msg_send(struct pvproto_link *l, msg_kind kind, const char *reason)
{
	Pvha__MigrateMsg m = PVHA__MIGRATE_MSG__INIT;
	m.version = MIG_VERSION;
	m.kind = kind;
	m.reason = (char *)(reason ? reason : "");
	return pvproto_link_write(l, &m.base);
}

/* Copies a peer's text into out, one printable line. */
static void printable(char *out, size_t len, const char *in)
{
	snprintf(out, len, "%s", in ? in : "");
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c == 0x7f)
			*c = '?';
}

/* Reads one MigrateMsg and checks it. Returns 0 with *kind and the peer's
 * reason (made printable, one line), or -errno: -ENODATA closed, -EPROTO
 * another version, -EBADMSG undecodable or no known kind. */
static int msg_read(struct pvproto_link *l, msg_kind *kind, char *reason, size_t rlen)
{
	ProtobufCMessage *pm;
	int err = pvproto_link_read(l, &pvha__migrate_msg__descriptor, MSG_MAX, &pm);
	if (err)
		return err;
	Pvha__MigrateMsg *m = (Pvha__MigrateMsg *)pm;
	if (m->version != MIG_VERSION) {
		err = -EPROTO;
	} else if (m->kind <= PVHA__MIGRATE_MSG__KIND__NONE ||
		   m->kind > PVHA__MIGRATE_MSG__KIND__RUNNING) {
		err = -EBADMSG;
	} else {
		*kind = m->kind;
		printable(reason, rlen, m->reason);
	}
	pvha__migrate_msg__free_unpacked(m, NULL);
	return err;
}

/* The handshake's half that this side sends: version, a fresh nonce, whether
 * it holds the secret, and (target) why it refuses. */
static int auth_send(struct pvproto_link *l, const uint8_t nonce[PVPROTO_NONCE_BYTES], bool keyed,
		     const char *refuse)
{
	Pvha__MigrateAuth a = PVHA__MIGRATE_AUTH__INIT;
	a.version = MIG_VERSION;
	a.nonce.data = (uint8_t *)nonce;
	a.nonce.len = PVPROTO_NONCE_BYTES;
	a.keyed = keyed;
	a.refuse = (char *)(refuse ? refuse : "");
	return pvproto_link_write(l, &a.base);
}

/* Reads the other side's MigrateAuth (plain, at most MSG_MAX bytes). Returns
 * 0 with its nonce, keyed and refuse (printable), -EPROTO for another
 * version (why says which), -EBADMSG for a nonce that is not 32 bytes, or the
 * link's -errno. */
static int auth_read(struct pvproto_link *l, uint8_t nonce[PVPROTO_NONCE_BYTES], bool *keyed,
		     char *refuse, size_t rlen, char *why, size_t wl)
{
	ProtobufCMessage *pm;
	int err = pvproto_link_read(l, &pvha__migrate_auth__descriptor, MSG_MAX, &pm);
	if (err) {
		snprintf(why, wl, "%s", link_error(err));
		return err;
	}
	Pvha__MigrateAuth *a = (Pvha__MigrateAuth *)pm;
	if (a->version != MIG_VERSION) {
		snprintf(why, wl, "migration protocol version %u is not supported (this build speaks %u)",
			 a->version, MIG_VERSION);
		err = -EPROTO;
	} else if (a->nonce.len != PVPROTO_NONCE_BYTES) {
		snprintf(why, wl, "a handshake nonce of %zu bytes, not %u", a->nonce.len,
			 PVPROTO_NONCE_BYTES);
		err = -EBADMSG;
	} else {
		memcpy(nonce, a->nonce.data, PVPROTO_NONCE_BYTES);
		*keyed = a->keyed;
		printable(refuse, rlen, a->refuse);
	}
	pvha__migrate_auth__free_unpacked(a, NULL);
	return err;
}

/* True when fd has something to read (or was closed) right now. */
static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0;
}

/* The failing side's farewell: no more from us, then read and drop what the
 * other side still sends, for at most LINGER_MS, so that it reads our reason
 * before it sees the connection end (a close with unread data is a reset,
 * which can drop our last message). */
static void linger_close(int fd)
{
	char buf[65536];
	uint64_t end = now_ns() + LINGER_MS * 1000000ull;
	shutdown(fd, SHUT_WR);
	for (;;) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, (int)((end - t) / 1000000ull) + 1) <= 0)
			break;
		if (read(fd, buf, sizeof(buf)) <= 0)
			break;
	}
}

static void set_link_options(int fd)
{
	int one = 1, buf = LINK_BUF_BYTES;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void format_addr(const struct sockaddr *sa, socklen_t len, char *out, size_t outlen)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];
	if (getnameinfo(sa, len, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "?");
		return;
	}
	snprintf(out, outlen, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

static void uuid_text(const uint8_t id[16], char out[37])
{
	uuid_unparse_lower(id, out);
}

/* ---- source --------------------------------------------------------------- */

struct mig_source {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;

	/* set at start, read-only after */
	char host[256];
	uint16_t port;
	uint32_t downtime_ms, max_rounds;
	bool stop_on_stall; /* no round cap was asked for: give up early on no progress */
	struct hv_machine *m;
	uint8_t guest_id[16];
	uint64_t mem_size;
	char backend[16];
	struct hv_disk *disk;
	struct hv_disk *owner; /* holds the owner lock (disk, or a lock-only handle) */
	struct hv_net *net; /* may be NULL; lent with the machine */
	char disk_spec[512];
	char cookie[64]; /* "" = no owner lock */
	uint8_t key[PVPROTO_KEY_MAX]; /* the migration secret; key_len 0 = none */
	size_t key_len;
	int notify_fd;
	size_t words, window_words;

	/* guarded by lock */
	int fd; /* the link, -1 when none */
	bool cancel;
	char cancel_why[128];
	bool want_pause, paused, finished;
	uint64_t pause_ns;
	uint64_t start_ns;
	struct mig_progress prog;

	/* the thread's own */
	struct pvproto_link *link; /* over fd, sealed after the handshake when keyed */
	uint64_t *dirty, *window, *extra;
	uint64_t send_ns; /* time spent sending pages */
	struct mig_conns *conns; /* the connections frozen and sent */
};

static void src_set_phase(struct mig_source *s, enum mig_phase p)
{
	pthread_mutex_lock(&s->lock);
	s->prog.phase = p;
	pthread_mutex_unlock(&s->lock);
	notify(s->notify_fd);
}

static bool src_cancelled(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	bool c = s->cancel;
	pthread_mutex_unlock(&s->lock);
	return c;
}

static int src_fail(struct mig_source *s, int err, char *why, size_t wl, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int src_fail(struct mig_source *s, int err, char *why, size_t wl, const char *fmt, ...)
{
	va_list ap;
	(void)s;
	va_start(ap, fmt);
	vsnprintf(why, wl, fmt, ap);
	va_end(ap);
	return err ? err : -EIO;
}

/* A send or receive on the link failed: say why, preferring the target's own
 * reason when it sent one (a FAIL or REFUSE waiting to be read). */
static int src_link_fail(struct mig_source *s, int fd, int err, const char *doing, char *why,
			 size_t wl)
{
	msg_kind k;
	char r[200];
	if (readable(fd) && msg_read(s->link, &k, r, sizeof(r)) == 0 &&
	    (k == PVHA__MIGRATE_MSG__KIND__FAIL || k == PVHA__MIGRATE_MSG__KIND__REFUSE))
		return src_fail(s, -ECONNABORTED, why, wl, "the target failed: %s", r);
	return src_fail(s, err, why, wl, "%s: %s", doing, link_error(err));
}

static int src_connect(struct mig_source *s, int *out, char *why, size_t wl)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char port[8];
	int err = -ECONNREFUSED;

	snprintf(port, sizeof(port), "%u", s->port);
	int gai = getaddrinfo(s->host, port, &hints, &res);
	if (gai)
		return src_fail(s, -EHOSTUNREACH, why, wl, "cannot resolve %s: %s", s->host,
				gai_strerror(gai));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = -errno;
			close(fd);
			continue;
		}
		/* Wait for the connection in short steps, so that a cancel is heard. */
		uint64_t end = now_ns() + CONNECT_TIMEOUT_MS * 1000000ull;
		err = -ETIMEDOUT;
		while (now_ns() < end && !src_cancelled(s)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int n = poll(&p, 1, 100);
			if (n < 0 && errno != EINTR) {
				err = -errno;
				break;
			}
			if (n > 0) {
				int soerr = 0;
				socklen_t l = sizeof(soerr);
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
				err = -soerr;
				break;
			}
		}
		if (err == 0) {
			/* blocking from here on, with the link's timeouts */
			int fl = fcntl(fd, F_GETFL);
			if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
				err = -errno;
		}
		if (err == 0) {
			set_link_options(fd);
			freeaddrinfo(res);
			*out = fd;
			return 0;
		}
		close(fd);
		if (src_cancelled(s))
			break;
	}
	freeaddrinfo(res);
	return src_fail(s, err, why, wl, "connecting to %s:%u: %s", s->host, s->port,
			err == -ETIMEDOUT ? "no answer within 10 s" : strerror(-err));
}

/* Bits of the pages of RAM that hold anything but zeros. Reads RAM while the
 * guest may be writing it: a page changed after its look is dirty anyway. */
static void nonzero_pages(struct hv_machine *m, uint64_t *bm, size_t words)
{
	const uint8_t *ram = hv_machine_ram(m);
	uint64_t npages = hv_machine_mem_size(m) / PV_PAGE_SIZE;
	memset(bm, 0, words * sizeof(uint64_t));
	for (uint64_t p = 0; p < npages; p++) {
		const uint64_t *w = (const uint64_t *)(ram + p * PV_PAGE_SIZE);
		for (size_t i = 0; i < PV_PAGE_SIZE / 8; i++) {
			if (w[i]) {
				bm[p / 64] |= 1ull << (p % 64);
				break;
			}
		}
	}
}

static uint64_t count_bits(const uint64_t *bm, size_t words)
{
	uint64_t n = 0;
	for (size_t i = 0; i < words; i++)
		n += (uint64_t)__builtin_popcountll(bm[i]);
	return n;
}

/* Records pages sent and the time it took; updates the rate. */
static void src_account(struct mig_source *s, uint64_t pages, uint64_t ns)
{
	s->send_ns += ns;
	pthread_mutex_lock(&s->lock);
	s->prog.bytes_sent += pages * PV_PAGE_SIZE;
	if (s->send_ns)
		s->prog.rate = (uint64_t)((double)s->prog.bytes_sent * 1e9 / (double)s->send_ns);
	pthread_mutex_unlock(&s->lock);
}

/* One pre-copy round: the pages of bm, window by window, the guest running.
 * Between windows: a cancel, or the target's FAIL, ends it. */
static int src_round(struct mig_source *s, int fd, const uint64_t *bm, char *why, size_t wl)
{
	for (size_t w = 0; w < s->words; w += s->window_words) {
		size_t n = s->words - w < s->window_words ? s->words - w : s->window_words;
		bool any = false;
		for (size_t i = 0; i < n && !any; i++)
			any = bm[w + i] != 0;
		if (!any)
			continue;
		memcpy(s->window + w, bm + w, n * sizeof(uint64_t));
		uint64_t pages = 0, t0 = now_ns();
		int err = hv_state_send_pages(s->m, s->link, s->window, &pages, NULL);
		memset(s->window + w, 0, n * sizeof(uint64_t));
		src_account(s, pages, now_ns() - t0);
		if (err)
			return src_link_fail(s, fd, err, "sending pages", why, wl);
		if (src_cancelled(s))
			return -ECANCELED;
		if (readable(fd))
			return src_link_fail(s, fd, -EBADMSG, "the target spoke out of turn", why, wl);
	}
	pthread_mutex_lock(&s->lock);
	s->prog.round++;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* The handshake: our nonce out, the target's in; with a secret, the link is
 * sealed from here on (the hello is the first tagged frame: it proves to the
 * target that we hold the secret, and the target's tagged answer proves the
 * same to us before any page leaves). */
static int src_auth(struct mig_source *s, char *why, size_t wl)
{
	uint8_t mine[PVPROTO_NONCE_BYTES], theirs[PVPROTO_NONCE_BYTES];
	char refuse[200], sub[200];
	bool keyed = false;
	int err = pvproto_random(mine, sizeof(mine));
	if (err)
		return src_fail(s, err, why, wl, "no random nonce: %s", strerror(-err));
	err = auth_send(s->link, mine, s->key_len > 0, NULL);
	if (err)
		return src_fail(s, err, why, wl, "sending the handshake: %s", link_error(err));
	err = auth_read(s->link, theirs, &keyed, refuse, sizeof(refuse), sub, sizeof(sub));
	if (err)
		return src_fail(s, err, why, wl, "the target's handshake: %s", sub);
	if (refuse[0])
		return src_fail(s, -ECONNREFUSED, why, wl, "the target refused the migration: %s", refuse);
	if (keyed != (s->key_len > 0))
		return src_fail(s, -EACCES, why, wl, "%s",
				keyed ? "the target holds a migration key and the source was given none"
				      : "the source was given a migration key but the target holds none");
	if (!keyed)
		return 0;
	err = pvproto_link_seal(s->link, s->key, s->key_len, PVPROTO_LABEL_MIGRATE, mine, theirs, true);
	return err ? src_fail(s, err, why, wl, "sealing the link: %s", strerror(-err)) : 0;
}

static int src_hello(struct mig_source *s, int fd, char *why, size_t wl)
{
	Pvha__MigrateHello h = PVHA__MIGRATE_HELLO__INIT;
	msg_kind k;
	char r[200];

	h.version = MIG_VERSION;
	h.guest_id.data = s->guest_id;
	h.guest_id.len = sizeof(s->guest_id);
	h.mem_size = s->mem_size;
	h.disk_size = s->disk ? s->disk->size : 0;
	h.disk = s->disk_spec;
	h.backend = s->backend;
	int err = pvproto_link_write(s->link, &h.base);
	if (err)
		return src_link_fail(s, fd, err, "sending the hello", why, wl);
	err = msg_read(s->link, &k, r, sizeof(r));
	if (err)
		return src_link_fail(s, fd, err, "waiting for the target's answer", why, wl);
	if (k == PVHA__MIGRATE_MSG__KIND__REFUSE)
		return src_fail(s, -ECONNREFUSED, why, wl, "the target refused the guest: %s", r);
	if (k != PVHA__MIGRATE_MSG__KIND__ACCEPT)
		return src_fail(s, -EBADMSG, why, wl, "the target answered the hello with %s", kind_name(k));
	return 0;
}

/* Waits (at most DRAIN_MAX_MS) until the target has acknowledged every byte
 * sent so far. */
static void src_drain(struct mig_source *s, int fd)
{
	uint64_t end = now_ns() + DRAIN_MAX_MS * 1000000ull;
	int queued = 0;
	while (ioctl(fd, SIOCOUTQ, &queued) == 0 && queued > 0 && now_ns() < end && !src_cancelled(s)) {
		struct timespec ts = { 0, 100000 };
		nanosleep(&ts, NULL);
	}
}

/* Asks the main loop for the paused machine and waits for it. */
static int src_wait_paused(struct mig_source *s)
{
	pthread_mutex_lock(&s->lock);
	s->want_pause = true;
	pthread_mutex_unlock(&s->lock);
	notify(s->notify_fd);
	pthread_mutex_lock(&s->lock);
	/* A kick that lands between two runs is lost (a run starts by clearing
	 * requests): kick again every millisecond until the main loop answers. */
	while (!s->paused && !s->cancel) {
		hv_machine_kick(s->m);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	int err = s->paused ? 0 : -ECANCELED;
	pthread_mutex_unlock(&s->lock);
	return err;
}

/* From the pause to the hand-over; the machine is ours (paused). */
static int src_stop_copy(struct mig_source *s, int fd, char *why, size_t wl)
{
	msg_kind k;
	char r[200];

	if (s->disk) {
		int err = s->disk->ops->flush(s->disk);
		if (err)
			return src_fail(s, err, why, wl, "flushing the disk before the hand-over: %s",
					strerror(-err));
	}
	/* What the last round left, and what the guest wrote since. */
	hv_machine_dirty_collect(s->m, s->extra);
	for (size_t i = 0; i < s->words; i++)
		s->dirty[i] |= s->extra[i];
	uint64_t pages = 0, t0 = now_ns();
	pthread_mutex_lock(&s->lock);
	s->prog.pages_left = count_bits(s->dirty, s->words);
	pthread_mutex_unlock(&s->lock);
	int err = hv_state_send_pages(s->m, s->link, s->dirty, &pages, NULL);
	if (!err)
		err = hv_state_send_final(s->m, s->link);
	src_account(s, pages, now_ns() - t0);
	if (err)
		return src_link_fail(s, fd, err, "sending the final state", why, wl);
	/* Last, so that what the peers sent while the pages went is in the
	 * dumps; from here their packets are held back (mig_conns.h). */
	char note[200];
	err = mig_conns_send(s->conns, s->net, s->link, MIG_VERSION, note, sizeof(note));
	if (err)
		return src_link_fail(s, fd, err, "sending the connections", why, wl);
	note_reason(&s->lock, &s->prog, note);

	src_set_phase(s, MIG_HANDOVER);
	err = msg_read(s->link, &k, r, sizeof(r));
	if (err)
		return src_link_fail(s, fd, err, "waiting for the target's READY", why, wl);
	if (k == PVHA__MIGRATE_MSG__KIND__FAIL)
		return src_fail(s, -ECONNABORTED, why, wl, "the target failed: %s", r);
	if (k != PVHA__MIGRATE_MSG__KIND__READY)
		return src_fail(s, -EBADMSG, why, wl, "the target sent %s instead of READY", kind_name(k));
	/* The point of no return: from here this process never runs the guest
	 * again, unless it holds the owner lock again for certain. A cancel
	 * counts only before it (mig_source_cancel checks under the same lock). */
	pthread_mutex_lock(&s->lock);
	bool cancelled = s->cancel;
	if (!cancelled)
		s->prog.released = true;
	pthread_mutex_unlock(&s->lock);
	if (cancelled) {
		msg_send(s->link, PVHA__MIGRATE_MSG__KIND__ABORT, "the source was told to stop");
		return -ECANCELED;
	}
	notify(s->notify_fd);
	if (s->cookie[0]) {
		char lwhy[256];
		err = vmm_disk_release(s->owner, lwhy, sizeof(lwhy));
		if (err) {
			/* Released or not? Taking it again tells, and keeps the guest here. */
			char twhy[256];
			if (vmm_disk_lock(s->owner, s->cookie, twhy, sizeof(twhy)) == 0) {
				pthread_mutex_lock(&s->lock);
				s->prog.released = false;
				pthread_mutex_unlock(&s->lock);
				char m[400];
				snprintf(m, sizeof(m), "the source could not release the owner lock: %.250s", lwhy);
				msg_send(s->link, PVHA__MIGRATE_MSG__KIND__ABORT, m);
				return src_fail(s, err, why, wl,
						"releasing the owner lock: %s (the source keeps it and runs on)",
						lwhy);
			}
			/* Unknown: say RELEASED; the target takes the lock if it is free. */
		}
	}
	/* The guest's sockets close before the target builds its own: a frozen
	 * connection closes silently (once its packets are held), and on this
	 * host the target's copy needs its four addresses free. */
	mig_conns_handover(s->conns, note, sizeof(note));
	note_reason(&s->lock, &s->prog, note);
	hv_net_reset(s->net, -ECONNRESET);
	err = msg_send(s->link, PVHA__MIGRATE_MSG__KIND__RELEASED, "");
	if (err)
		return src_fail(s, err, why, wl,
				"lock released, but telling the target failed: %s; it takes the lock "
				"if it can",
				link_error(err));
	err = msg_read(s->link, &k, r, sizeof(r));
	if (err)
		return src_fail(s, err, why, wl,
				"lock released, but the target did not confirm it runs the guest: %s",
				link_error(err));
	if (k != PVHA__MIGRATE_MSG__KIND__RUNNING)
		return src_fail(s, -ECONNABORTED, why, wl,
				"lock released, but the target did not run the guest: %s%s%s",
				kind_name(k), r[0] ? ": " : "", r);
	uint64_t t = now_ns();
	pthread_mutex_lock(&s->lock);
	s->prog.downtime_us = (t - s->pause_ns) / 1000;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int src_run(struct mig_source *s, char *why, size_t wl)
{
	int fd = -1, err;

	err = src_connect(s, &fd, why, wl);
	if (err)
		return err;
	pthread_mutex_lock(&s->lock);
	s->fd = fd;
	bool cancelled = s->cancel;
	pthread_mutex_unlock(&s->lock);
	if (cancelled)
		return -ECANCELED;
	s->link = pvproto_link_create(fd);
	if (!s->link)
		return src_fail(s, -ENOMEM, why, wl, "out of memory");

	err = src_auth(s, why, wl);
	if (err)
		return err;
	err = src_hello(s, fd, why, wl);
	if (err)
		return err;
	err = hv_state_send_header(s->m, s->link);
	if (err)
		return src_link_fail(s, fd, err, "sending the state header", why, wl);

	/* Round 1: every page that is not zero; from the collect on, every write
	 * is seen by a later round. */
	hv_machine_dirty_collect(s->m, s->dirty);
	nonzero_pages(s->m, s->dirty, s->words);
	err = src_round(s, fd, s->dirty, why, wl);
	if (err)
		return err;

	uint64_t best = UINT64_MAX, budget_ns = (uint64_t)s->downtime_ms * 1000000ull;
	unsigned stall = 0;
	for (;;) {
		uint64_t left = hv_machine_dirty_collect(s->m, s->dirty);
		pthread_mutex_lock(&s->lock);
		s->prog.pages_left = left;
		uint64_t rate = s->prog.rate;
		uint32_t round = s->prog.round;
		pthread_mutex_unlock(&s->lock);
		/* Time to send what is left at the rate measured so far. */
		if (left == 0 || (rate && (double)left * PV_PAGE_SIZE * 1e9 / (double)rate <= (double)budget_ns))
			break;
		const char *forced = NULL;
		if (left < best) {
			best = left;
			stall = 0;
		} else if (++stall >= STALL_ROUNDS && s->stop_on_stall) {
			forced = "no progress";
		}
		if (!forced && round >= s->max_rounds)
			forced = "round cap";
		if (forced) {
			pthread_mutex_lock(&s->lock);
			s->prog.forced = true;
			snprintf(s->prog.reason, sizeof(s->prog.reason),
				 "stop-copy forced (%s): %llu pages dirty after %u rounds, over the %u ms budget "
				 "at %llu MB/s",
				 forced, (unsigned long long)left, round, s->downtime_ms,
				 (unsigned long long)(rate / 1000000));
			pthread_mutex_unlock(&s->lock);
			break;
		}
		err = src_round(s, fd, s->dirty, why, wl);
		if (err)
			return err;
	}

	/* What still sits in our send queue would be sent during the pause:
	 * let it go out first, the guest still running. */
	src_drain(s, fd);
	mig_conns_prepare(s->conns, s->net);
	src_set_phase(s, MIG_STOPCOPY);
	err = src_wait_paused(s);
	if (err)
		return err;
	return src_stop_copy(s, fd, why, wl);
}

static void *src_main(void *arg)
{
	struct mig_source *s = arg;
	char why[256] = "";
	int err = src_run(s, why, sizeof(why));

	pthread_mutex_lock(&s->lock);
	bool released = s->prog.released;
	pthread_mutex_unlock(&s->lock);
	if (err && !released)
		mig_conns_unfreeze(s->conns); /* the guest runs on here with them */
	pthread_mutex_lock(&s->lock);
	if (err) {
		s->prog.phase = MIG_FAILED;
		if (s->cancel)
			snprintf(s->prog.reason, sizeof(s->prog.reason), "cancelled: %s", s->cancel_why);
		else
			snprintf(s->prog.reason, sizeof(s->prog.reason), "%s", why[0] ? why : strerror(-err));
	} else {
		s->prog.phase = MIG_DONE;
	}
	s->prog.total_ms = (now_ns() - s->start_ns) / 1000000;
	/* A failing source just closes: mid-stream the target reads a cut
	 * stream; after READY it has read our ABORT, or sees the link end. No
	 * lingering here: the guest may be waiting, paused, for this end. */
	pvproto_link_destroy(s->link);
	s->link = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->finished = true;
	pthread_mutex_unlock(&s->lock);
	notify(s->notify_fd);
	return NULL;
}

int mig_source_start(const struct mig_source_params *p, struct mig_source **out)
{
	if (!p->host || !p->host[0] || strlen(p->host) >= 256 || p->port == 0 || !p->m || !p->stats ||
	    (p->key_len && (p->key_len < PVPROTO_KEY_MIN || p->key_len > PVPROTO_KEY_MAX || !p->key)))
		return -EINVAL;
	struct mig_source *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	snprintf(s->host, sizeof(s->host), "%s", p->host);
	s->port = p->port;
	s->downtime_ms = p->downtime_ms ? p->downtime_ms : DEFAULT_DOWNTIME_MS;
	s->max_rounds = p->max_rounds ? p->max_rounds : DEFAULT_MAX_ROUNDS;
	s->stop_on_stall = p->max_rounds == 0;
	s->m = p->m;
	memcpy(s->guest_id, p->stats->guest_id, sizeof(s->guest_id));
	s->mem_size = p->stats->mem_size;
	snprintf(s->backend, sizeof(s->backend), "%s", p->stats->backend ? p->stats->backend : "");
	s->disk = p->disk;
	s->owner = p->owner ? p->owner : p->disk;
	s->net = p->net;
	snprintf(s->disk_spec, sizeof(s->disk_spec), "%s", p->disk_spec ? p->disk_spec : "");
	snprintf(s->cookie, sizeof(s->cookie), "%s", p->lock_cookie ? p->lock_cookie : "");
	if (p->key_len)
		memcpy(s->key, p->key, p->key_len);
	s->key_len = p->key_len;
	s->notify_fd = p->notify_fd;
	s->fd = -1;
	s->words = hv_machine_dirty_words(p->m);
	size_t npages = s->words * 64, wp = npages / 8;
	if (wp < WINDOW_PAGES_MIN)
		wp = WINDOW_PAGES_MIN;
	s->window_words = (wp + 63) / 64;
	s->dirty = calloc(s->words, sizeof(uint64_t));
	s->window = calloc(s->words, sizeof(uint64_t));
	s->extra = calloc(s->words, sizeof(uint64_t));
	s->conns = mig_conns_create(p->privsep, p->privsep_nft);
	if (!s->dirty || !s->window || !s->extra || !s->conns)
		goto err_free;
	s->start_ns = now_ns();
	s->prog.phase = MIG_PRECOPY;
	snprintf(s->prog.peer, sizeof(s->prog.peer), strchr(s->host, ':') ? "[%s]:%u" : "%s:%u",
		 s->host, s->port);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	int err = pthread_create(&s->thread, NULL, src_main, s);
	if (err) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		free(s->dirty);
		free(s->window);
		free(s->extra);
		mig_conns_destroy(s->conns);
		free(s);
		return -err;
	}
	*out = s;
	return 0;

err_free:
	free(s->dirty);
	free(s->window);
	free(s->extra);
	mig_conns_destroy(s->conns);
	free(s);
	return -ENOMEM;
}

enum mig_source_want mig_source_poll(struct mig_source *s)
{
	enum mig_source_want w = MIG_WANT_NOTHING;
	pthread_mutex_lock(&s->lock);
	if (s->finished)
		w = MIG_WANT_JOIN;
	else if (s->want_pause && !s->paused && !s->cancel)
		w = MIG_WANT_PAUSE;
	pthread_mutex_unlock(&s->lock);
	return w;
}

void mig_source_paused(struct mig_source *s, uint64_t pause_ns)
{
	pthread_mutex_lock(&s->lock);
	s->paused = true;
	s->pause_ns = pause_ns;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void mig_source_progress(struct mig_source *s, struct mig_progress *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->prog;
	if (!s->finished)
		out->total_ms = (now_ns() - s->start_ns) / 1000000;
	pthread_mutex_unlock(&s->lock);
}

bool mig_source_cancel(struct mig_source *s, const char *why)
{
	pthread_mutex_lock(&s->lock);
	bool late = s->prog.released || s->finished;
	if (!s->cancel && !late) {
		s->cancel = true;
		snprintf(s->cancel_why, sizeof(s->cancel_why), "%s", why ? why : "");
		if (s->fd >= 0)
			shutdown(s->fd, SHUT_RDWR); /* wakes a blocked send or receive */
		pthread_cond_broadcast(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	return !late;
}

void mig_source_destroy(struct mig_source *s, struct mig_progress *last)
{
	if (!s)
		return;
	mig_source_cancel(s, "the VMM is ending");
	pthread_join(s->thread, NULL);
	if (last)
		*last = s->prog;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->dirty);
	free(s->window);
	free(s->extra);
	mig_conns_destroy(s->conns);
	memset(s->key, 0, sizeof(s->key));
	free(s);
}

/* ---- target --------------------------------------------------------------- */

int mig_listen(const char *hostport, uint16_t *port, char *why, size_t wl)
{
	char host[256];
	const char *ps;
	if (!hostport || strlen(hostport) >= sizeof(host)) {
		snprintf(why, wl, "want HOST:PORT");
		return -EINVAL;
	}
	if (hostport[0] == '[') {
		const char *close_br = strchr(hostport, ']');
		if (!close_br || close_br[1] != ':') {
			snprintf(why, wl, "want [IPV6]:PORT");
			return -EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close_br - hostport - 1), hostport + 1);
		ps = close_br + 2;
	} else {
		const char *colon = strrchr(hostport, ':');
		if (!colon) {
			snprintf(why, wl, "want HOST:PORT");
			return -EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
		ps = colon + 1;
	}
	char *end;
	errno = 0;
	unsigned long pn = strtoul(ps, &end, 10);
	if (!*ps || *end || errno || pn > 65535 || ps[0] == '-' || ps[0] == '+') {
		snprintf(why, wl, "port '%s' is not 0..65535", ps);
		return -EINVAL;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	int gai = getaddrinfo(host[0] ? host : NULL, ps, &hints, &res);
	if (gai) {
		snprintf(why, wl, "cannot resolve '%s': %s", host, gai_strerror(gai));
		return -EINVAL;
	}
	int err = -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1, buf = LINK_BUF_BYTES;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* before listen: accepted sockets inherit it, and the window fits it */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1) < 0) {
			err = -errno;
			close(fd);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		getsockname(fd, (struct sockaddr *)&ss, &len);
		*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						       : ((struct sockaddr_in *)&ss)->sin_port);
		freeaddrinfo(res);
		return fd;
	}
	freeaddrinfo(res);
	snprintf(why, wl, "cannot listen on %s: %s", hostport, strerror(-err));
	return err;
}

struct mig_target {
	pthread_t thread;
	pthread_mutex_t lock;

	/* set at start, read-only after */
	struct hv_config cfg;
	struct hv_disk *owner; /* takes the owner lock (cfg.disk, or a lock-only handle) */
	char cookie[64];
	bool have_id;
	uint8_t id[16];
	uint8_t key[PVPROTO_KEY_MAX]; /* the migration secret; key_len 0 = none */
	size_t key_len;
	int notify_fd;
	int fd; /* the thread's until it ends; closed by destroy */
	struct pvproto_link *link; /* over fd; the thread's; freed by destroy */
	struct mig_conns *conns; /* the thread's: the connections received */

	/* guarded by lock */
	bool cancel;
	char cancel_why[128];
	bool offered, taken, failed, finished;
	struct hv_machine *m; /* built, not yet taken */
	struct mig_progress prog;
	uint64_t start_ns;
};

static void tgt_set_phase(struct mig_target *t, enum mig_phase p)
{
	pthread_mutex_lock(&t->lock);
	t->prog.phase = p;
	pthread_mutex_unlock(&t->lock);
	notify(t->notify_fd);
}

/* Checks the source's hello against this VMM; why says what does not fit. */
static int tgt_check_hello(struct mig_target *t, const Pvha__MigrateHello *h, char *why, size_t wl)
{
	char a[37], b[37];
	uint8_t disk_id[16];
	uint64_t have = t->cfg.disk ? t->cfg.disk->size : 0;

	if (h->version != MIG_VERSION) {
		snprintf(why, wl, "migration protocol version %u is not supported (this build speaks %u)",
			 h->version, MIG_VERSION);
		return -EPROTO;
	}
	if (h->guest_id.len != 16) {
		snprintf(why, wl, "the hello's guest id is %zu bytes, not 16", h->guest_id.len);
		return -EBADMSG;
	}
	uuid_text(h->guest_id.data, a);
	if (t->have_id && memcmp(h->guest_id.data, t->id, 16) != 0) {
		uuid_text(t->id, b);
		snprintf(why, wl, "the source sends guest %s, but this VMM was started for guest %s", a, b);
		return -EINVAL;
	}
	if (vmm_disk_guest_uuid(t->cfg.disk, disk_id) == 0 && memcmp(h->guest_id.data, disk_id, 16) != 0) {
		uuid_text(disk_id, b);
		snprintf(why, wl, "the source sends guest %s, but --disk here is the disk of guest %s", a, b);
		return -EINVAL;
	}
	if (!PV_MEM_SIZE_OK(h->mem_size)) {
		snprintf(why, wl, "guest RAM of %llu bytes is not a whole number of MiB from 2M to 4G",
			 (unsigned long long)h->mem_size);
		return -EINVAL;
	}
	if (t->cfg.mem_size && h->mem_size != t->cfg.mem_size) {
		snprintf(why, wl, "the source offers %llu MiB of guest RAM, this VMM was told %llu MiB (--mem)",
			 (unsigned long long)(h->mem_size >> 20),
			 (unsigned long long)(t->cfg.mem_size >> 20));
		return -EINVAL;
	}
	if (h->disk_size != have) {
		if (h->disk_size == 0)
			snprintf(why, wl, "the guest has no disk, but --disk was given here");
		else if (have == 0)
			snprintf(why, wl, "the guest has a disk of %llu bytes (%s): give --disk",
				 (unsigned long long)h->disk_size, h->disk ? h->disk : "");
		else
			snprintf(why, wl, "the guest's disk is %llu bytes, --disk here is %llu",
				 (unsigned long long)h->disk_size, (unsigned long long)have);
		return -EINVAL;
	}
	return 0;
}

/* Takes the owner lock, retrying while it is busy for up to LOCK_GRACE_MS:
 * the source may be about to let it go. */
static int tgt_take_lock(struct mig_target *t, char *why, size_t wl)
{
	uint64_t end = now_ns() + LOCK_GRACE_MS * 1000000ull;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		bool c = t->cancel;
		pthread_mutex_unlock(&t->lock);
		if (c)
			return -ECANCELED;
		int err = vmm_disk_lock(t->owner, t->cookie, why, wl);
		if (err != -EBUSY || now_ns() >= end)
			return err;
		struct timespec ts = { 0, LOCK_STEP_MS * 1000000l };
		nanosleep(&ts, NULL);
	}
}

/* The source has let the guest go (its sockets are closed): the guest's
 * connections are built here before it runs; a failure is noted in the
 * reason, the connection staying reset. */
static void tgt_restore_conns(struct mig_target *t)
{
	char note[200];
	if (mig_conns_build(t->conns)) {
		/* Frozen until the agent has put the address here (it acts on
		 * this phase): a probe sent before would draw the peers' answers
		 * to the old host, and their next try waits for a timeout. */
		tgt_set_phase(t, MIG_RESTORING);
		int err = mig_conns_await_address(t->cfg.net, ADDRESS_WAIT_MS);
		if (err) {
			snprintf(note, sizeof(note), "the guest's address %s here after %d ms: connections "
				 "let go anyway", err == -ETIMEDOUT ? "was not" : "could not be checked",
				 ADDRESS_WAIT_MS);
			note_reason(&t->lock, &t->prog, note);
		}
	}
	mig_conns_restore(t->conns, t->cfg.net, note, sizeof(note));
	note_reason(&t->lock, &t->prog, note);
}

/* The handshake, target side: the source's nonce in, ours out (with a
 * refusal when the two sides disagree on holding a secret); keyed, the link
 * is sealed from here on and the source's hello must carry a valid tag. */
static int tgt_auth(struct mig_target *t, char *why, size_t wl)
{
	uint8_t mine[PVPROTO_NONCE_BYTES], theirs[PVPROTO_NONCE_BYTES];
	char ignored[8], sub[200];
	bool keyed = false;
	const char *refuse = NULL;
	int err = auth_read(t->link, theirs, &keyed, ignored, sizeof(ignored), sub, sizeof(sub));
	if (err == -EPROTO) {
		/* say why before closing: the source reads it in our answer */
		snprintf(why, wl, "%s", sub);
		memset(mine, 0, sizeof(mine));
		auth_send(t->link, mine, false, why);
		linger_close(t->fd);
		return err;
	}
	if (err) {
		snprintf(why, wl, "reading the source's handshake: %s", sub);
		return err;
	}
	err = pvproto_random(mine, sizeof(mine));
	if (err) {
		snprintf(why, wl, "no random nonce: %s", strerror(-err));
		return err;
	}
	if (t->key_len && !keyed)
		refuse = "this target takes only an authenticated migration, and the source holds no "
			 "migration key";
	else if (!t->key_len && keyed)
		refuse = "the source holds a migration key, but this target was given none";
	int serr = auth_send(t->link, mine, t->key_len > 0, refuse);
	if (refuse) {
		snprintf(why, wl, "%s", refuse);
		linger_close(t->fd);
		return -EACCES;
	}
	if (serr) {
		snprintf(why, wl, "answering the handshake: %s", link_error(serr));
		return serr;
	}
	if (!t->key_len)
		return 0;
	err = pvproto_link_seal(t->link, t->key, t->key_len, PVPROTO_LABEL_MIGRATE, theirs, mine, false);
	if (err)
		snprintf(why, wl, "sealing the link: %s", strerror(-err));
	return err;
}

static int tgt_run(struct mig_target *t, struct hv_machine **out, char *why, size_t wl)
{
	int fd = t->fd, err;
	ProtobufCMessage *pm;
	msg_kind k;
	/* r and sub are shorter than why (256): each goes into it after a prefix. */
	char r[200], sub[200] = "", a[37], b[37];
	struct hv_machine *m = NULL;

	set_link_options(fd);
	err = tgt_auth(t, why, wl);
	if (err)
		return err;
	err = pvproto_link_read(t->link, &pvha__migrate_hello__descriptor, MSG_MAX, &pm);
	if (err) {
		snprintf(why, wl, "reading the source's hello: %s", link_error(err));
		if (err == -EKEYREJECTED) {
			msg_send(t->link, PVHA__MIGRATE_MSG__KIND__REFUSE, why);
			linger_close(fd);
		}
		return err;
	}
	Pvha__MigrateHello *h = (Pvha__MigrateHello *)pm;
	err = tgt_check_hello(t, h, why, wl);
	uint8_t id[16] = { 0 };
	uint64_t mem = h->mem_size;
	if (!err)
		memcpy(id, h->guest_id.data, 16);
	pvha__migrate_hello__free_unpacked(h, NULL);
	if (err) {
		msg_send(t->link, PVHA__MIGRATE_MSG__KIND__REFUSE, why);
		linger_close(fd);
		return err;
	}
	err = msg_send(t->link, PVHA__MIGRATE_MSG__KIND__ACCEPT, "");
	if (err) {
		snprintf(why, wl, "answering the hello: %s", link_error(err));
		return err;
	}

	/* Built to the hello's size and no other: a header that says more is
	 * refused before anything is allocated. */
	struct hv_config cfg = t->cfg;
	cfg.mem_size = mem;
	err = hv_machine_restore_link(&cfg, t->link, &m, sub, sizeof(sub));
	if (err) {
		snprintf(why, wl, "the state stream: %s",
			 err == -EAGAIN ? "no data from the source for " STR(IO_TIMEOUT_S) " s"
			 : sub[0]	? sub
					: strerror(-err));
		goto err_fail;
	}
	struct hv_machine_stats st;
	hv_machine_get_stats(m, &st);
	if (memcmp(st.guest_id, id, 16) != 0 || st.mem_size != mem) {
		uuid_text(st.guest_id, a);
		uuid_text(id, b);
		snprintf(why, wl, "the state is of guest %s with %llu bytes of RAM, the hello said %s with %llu",
			 a, (unsigned long long)st.mem_size, b, (unsigned long long)mem);
		err = -EBADMSG;
		goto err_fail;
	}
	err = mig_conns_read(t->conns, t->cfg.net, t->link, MIG_VERSION, sub, sizeof(sub));
	if (err) {
		snprintf(why, wl, "the connections: %s", err == -EBADMSG ? sub : link_error(err));
		goto err_fail;
	}

	tgt_set_phase(t, MIG_HANDOVER);
	err = msg_send(t->link, PVHA__MIGRATE_MSG__KIND__READY, "");
	if (!err)
		err = msg_read(t->link, &k, r, sizeof(r));
	if (err) {
		/* The link died after READY: the source may have released the lock
		 * (then it never runs the guest again) or not. The lock decides. */
		if (!t->cookie[0]) {
			snprintf(why, wl, "the link to the source was lost after READY (%s); without an "
				 "owner lock nothing says the source let the guest go",
				 link_error(err));
			goto err_destroy;
		}
		char lwhy[256];
		int lerr = tgt_take_lock(t, lwhy, sizeof(lwhy));
		if (lerr) {
			snprintf(why, wl, "the link to the source was lost after READY (%s), and the "
				 "owner lock stayed with it: %.120s",
				 link_error(err), lwhy);
			err = lerr;
			goto err_destroy;
		}
		pthread_mutex_lock(&t->lock);
		snprintf(t->prog.reason, sizeof(t->prog.reason),
			 "the link to the source was lost after READY (%s); the source had released "
			 "the owner lock",
			 link_error(err));
		pthread_mutex_unlock(&t->lock);
		tgt_restore_conns(t);
		*out = m;
		return 0;
	}
	if (k == PVHA__MIGRATE_MSG__KIND__ABORT) {
		snprintf(why, wl, "the source aborted: %s", r);
		err = -ECONNABORTED;
		goto err_destroy;
	}
	if (k != PVHA__MIGRATE_MSG__KIND__RELEASED) {
		snprintf(why, wl, "the source sent %s instead of RELEASED", kind_name(k));
		err = -EBADMSG;
		goto err_fail;
	}
	if (t->cookie[0]) {
		char lwhy[256];
		err = tgt_take_lock(t, lwhy, sizeof(lwhy));
		if (err) {
			snprintf(why, wl, "taking the owner lock: %.200s",
				 err == -ECANCELED ? "cancelled" : lwhy);
			goto err_fail;
		}
	}
	tgt_restore_conns(t);
	*out = m;
	return 0;

err_fail:
	msg_send(t->link, PVHA__MIGRATE_MSG__KIND__FAIL, why);
	linger_close(fd);
err_destroy:
	hv_machine_destroy(m);
	return err ? err : -EIO;
}

static void *tgt_main(void *arg)
{
	struct mig_target *t = arg;
	struct hv_machine *m = NULL;
	char why[256] = "";
	int err = tgt_run(t, &m, why, sizeof(why));

	pthread_mutex_lock(&t->lock);
	if (!err && t->cancel) {
		/* Told to stop before the guest ran: the lock (if taken) goes back
		 * at the VMM's exit. */
		hv_machine_destroy(m);
		m = NULL;
		err = -ECANCELED;
	}
	if (err) {
		t->failed = true;
		t->prog.phase = MIG_FAILED;
		if (t->cancel)
			snprintf(t->prog.reason, sizeof(t->prog.reason), "cancelled: %s", t->cancel_why);
		else
			snprintf(t->prog.reason, sizeof(t->prog.reason), "%s", why[0] ? why : strerror(-err));
	} else {
		t->m = m;
		t->offered = true;
		t->prog.phase = MIG_DONE;
	}
	t->prog.total_ms = (now_ns() - t->start_ns) / 1000000;
	pthread_mutex_unlock(&t->lock);
	notify(t->notify_fd);

	/* The guest may run now; tell the source (it measures its downtime up to
	 * here). Its failure changes nothing: the lock is ours. */
	if (!err)
		msg_send(t->link, PVHA__MIGRATE_MSG__KIND__RUNNING, "");

	pthread_mutex_lock(&t->lock);
	t->finished = true;
	pthread_mutex_unlock(&t->lock);
	notify(t->notify_fd);
	return NULL;
}

int mig_target_start(const struct mig_target_params *p, struct mig_target **out)
{
	struct mig_target *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->cfg = p->cfg;
	snprintf(t->cookie, sizeof(t->cookie), "%s", p->lock_cookie ? p->lock_cookie : "");
	t->owner = p->owner ? p->owner : p->cfg.disk;
	t->have_id = p->have_id;
	memcpy(t->id, p->id, 16);
	t->notify_fd = p->notify_fd;
	t->fd = p->fd;
	if (p->key_len > PVPROTO_KEY_MAX || (p->key_len && (p->key_len < PVPROTO_KEY_MIN || !p->key))) {
		free(t);
		return -EINVAL;
	}
	if (p->key_len)
		memcpy(t->key, p->key, p->key_len);
	t->key_len = p->key_len;
	t->link = pvproto_link_create(p->fd);
	t->conns = mig_conns_create(p->privsep, p->privsep_nft);
	if (!t->link || !t->conns) {
		pvproto_link_destroy(t->link);
		mig_conns_destroy(t->conns);
		free(t);
		return -ENOMEM;
	}
	t->start_ns = now_ns();
	t->prog.phase = MIG_PRECOPY;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getpeername(p->fd, (struct sockaddr *)&ss, &len) == 0)
		format_addr((struct sockaddr *)&ss, len, t->prog.peer, sizeof(t->prog.peer));
	pthread_mutex_init(&t->lock, NULL);
	int err = pthread_create(&t->thread, NULL, tgt_main, t);
	if (err) {
		pthread_mutex_destroy(&t->lock);
		pvproto_link_destroy(t->link);
		mig_conns_destroy(t->conns);
		memset(t->key, 0, sizeof(t->key));
		free(t);
		return -err;
	}
	*out = t;
	return 0;
}

struct hv_machine *mig_target_take(struct mig_target *t, bool *failed)
{
	struct hv_machine *m = NULL;
	pthread_mutex_lock(&t->lock);
	if (t->offered && !t->taken) {
		t->taken = true;
		m = t->m;
		t->m = NULL;
	}
	*failed = t->failed;
	pthread_mutex_unlock(&t->lock);
	return m;
}

bool mig_target_finished(struct mig_target *t)
{
	pthread_mutex_lock(&t->lock);
	bool f = t->finished;
	pthread_mutex_unlock(&t->lock);
	return f;
}

void mig_target_progress(struct mig_target *t, struct mig_progress *out)
{
	pthread_mutex_lock(&t->lock);
	*out = t->prog;
	if (!t->finished && !t->offered && !t->failed)
		out->total_ms = (now_ns() - t->start_ns) / 1000000;
	pthread_mutex_unlock(&t->lock);
}

void mig_target_cancel(struct mig_target *t, const char *why)
{
	pthread_mutex_lock(&t->lock);
	if (!t->cancel && !t->finished) {
		t->cancel = true;
		snprintf(t->cancel_why, sizeof(t->cancel_why), "%s", why ? why : "");
		shutdown(t->fd, SHUT_RDWR);
	}
	pthread_mutex_unlock(&t->lock);
}

void mig_target_destroy(struct mig_target *t, struct mig_progress *last)
{
	if (!t)
		return;
	mig_target_cancel(t, "the VMM is ending");
	pthread_join(t->thread, NULL);
	if (last)
		*last = t->prog;
	hv_machine_destroy(t->m);
	pvproto_link_destroy(t->link);
	mig_conns_destroy(t->conns);
	close(t->fd);
	pthread_mutex_destroy(&t->lock);
	memset(t->key, 0, sizeof(t->key));
	free(t);
}
