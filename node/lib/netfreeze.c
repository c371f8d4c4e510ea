/* See netfreeze.h. Each run is `nft -f -` with its script on stdin (a socket
 * pair, so that a dying nft cannot SIGPIPE this threaded process): started
 * first, it has paid its start-up by the time the script comes, which it
 * reads to the end before it runs it as one transaction. */
#include <arpa/inet.h>
#include <errno.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netfreeze.h"

#define MAX_CONNS 256u
#define ELEM_MAX 80u /* "255.255.255.255 . 65535 . 255.255.255.255 . 65535 timeout 30s, " */

extern char **environ;

struct netfreeze {
	pid_t pid;
	int in; /* nft's stdin */
};

static const char DECLARE[] =
	"table ip pvha_freeze {\n"
	"  set conns { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; }\n"
	"  chain input { type filter hook input priority -300; policy accept; }\n"
	"}\n";

int netfreeze_start(struct netfreeze **out, char *why, size_t wl)
{
	int p[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) {
		snprintf(why, wl, "nft: socketpair: %s", strerror(errno));
		return -EIO;
	}
	struct netfreeze *f = calloc(1, sizeof(*f));
	if (!f) {
		close(p[0]);
		close(p[1]);
		return -ENOMEM;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	const char *nft = access("/usr/sbin/nft", X_OK) == 0 ? "/usr/sbin/nft" : "nft";
	char *argv[] = { (char *)nft, (char *)"-f", (char *)"-", NULL };
	int err = posix_spawnp(&f->pid, nft, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[0]);
	if (err) {
		close(p[1]);
		free(f);
		snprintf(why, wl, "nft: cannot run it: %s (Debian package nftables)", strerror(err));
		return -EIO;
	}
	f->in = p[1];
	*out = f;
	return 0;
}

/* Gives f its script (NULL: none); nft runs it once it has read it all. */
static void give(struct netfreeze *f, const char *script)
{
	size_t len = script ? strlen(script) : 0, off = 0;
	while (off < len) {
		ssize_t r = send(f->in, script + off, len - off, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(f->in);
	f->in = -1;
}

int netfreeze_wait(struct netfreeze *f, char *why, size_t wl)
{
	if (f->in >= 0)
		give(f, NULL);
	int st = 0, err = 0;
	while (waitpid(f->pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, wl, "nft: waitpid: %s", strerror(errno));
			err = -EIO;
			break;
		}
	if (!err && (!WIFEXITED(st) || WEXITSTATUS(st) != 0)) {
		snprintf(why, wl, "nft refused the freeze rules (status %d; it needs CAP_NET_ADMIN)", st);
		err = -EIO;
	}
	free(f);
	return err;
}

/* Gives f its script and waits for it; frees f. */
static int finish(struct netfreeze *f, const char *script, char *why, size_t wl)
{
	give(f, script);
	return netfreeze_wait(f, why, wl);
}

void netfreeze_abandon(struct netfreeze *f)
{
	char why[8];
	if (f)
		netfreeze_wait(f, why, sizeof(why));
}

/* Runs script in a run of its own. */
static int run(const char *script, char *why, size_t wl)
{
	struct netfreeze *f;
	int err = netfreeze_start(&f, why, wl);
	return err ? err : finish(f, script, why, wl);
}

int netfreeze_setup(char *why, size_t wl)
{
	char s[sizeof(DECLARE) + 512];
	/* a connection's packets pass to a rebuilt socket (tcprepair makes it
	 * IP_TRANSPARENT, the guest's own sockets are not), and only there */
	snprintf(s, sizeof(s), "%s%s", DECLARE,
		 "flush chain ip pvha_freeze input\n"
		 "add rule ip pvha_freeze input ip saddr . tcp sport . ip daddr . tcp dport @conns "
		 "socket transparent 1 accept\n"
		 "add rule ip pvha_freeze input ip saddr . tcp sport . ip daddr . tcp dport @conns drop\n");
	return run(s, why, wl);
}

/* Appends "verb element ip pvha_freeze conns { a . p . a . p[ timeout], ... }". */
static void elements(char *out, size_t cap, const char *verb, const struct tcprepair_tuple *t,
		     unsigned n, bool timeout)
{
	size_t o = strlen(out);
	o += (size_t)snprintf(out + o, cap - o, "%s element ip pvha_freeze conns { ", verb);
	for (unsigned i = 0; i < n && o < cap; i++) {
		char pa[INET_ADDRSTRLEN], la[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = t[i].peer_ip }, b = { .s_addr = t[i].local_ip };
		inet_ntop(AF_INET, &a, pa, sizeof(pa));
		inet_ntop(AF_INET, &b, la, sizeof(la));
		char tmo[32] = "";
		if (timeout)
			snprintf(tmo, sizeof(tmo), " timeout %us", NETFREEZE_TIMEOUT_S);
		o += (size_t)snprintf(out + o, cap - o, "%s%s . %u . %s . %u%s", i ? ", " : "", pa,
				      t[i].peer_port, la, t[i].local_port, tmo);
	}
	if (o < cap)
		snprintf(out + o, cap - o, " }\n");
}

/* Runs, by f or by a run of its own, a script of the declarations (when
 * declare) and the elements added and/or deleted; with wait false, f (not
 * NULL) is left running, for netfreeze_wait. */
static int change(struct netfreeze *f, bool declare, bool add, bool del, bool wait,
		  const struct tcprepair_tuple *t, unsigned n, char *why, size_t wl)
{
	if (!wait && !f)
		return -EINVAL;
	if (n == 0 && del) {
		netfreeze_abandon(f);
		return 0; /* nothing to release */
	}
	if (n == 0 || n > MAX_CONNS) {
		netfreeze_abandon(f);
		return -EINVAL;
	}
	size_t cap = sizeof(DECLARE) + 256 + 2 * (size_t)n * ELEM_MAX;
	char *s = malloc(cap);
	if (!s) {
		netfreeze_abandon(f);
		return -ENOMEM;
	}
	snprintf(s, cap, "%s", declare ? DECLARE : "");
	if (add)
		elements(s, cap, "add", t, n, true);
	if (del)
		elements(s, cap, "delete", t, n, false);
	int err = 0;
	if (!wait)
		give(f, s);
	else
		err = f ? finish(f, s, why, wl) : run(s, why, wl);
	free(s);
	return err;
}

int netfreeze_hold(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n, char *why,
		   size_t wl)
{
	return change(f, false, true, false, true, t, n, why, wl);
}

int netfreeze_hold_begin(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n,
			 char *why, size_t wl)
{
	return change(f, false, true, false, false, t, n, why, wl);
}

int netfreeze_release(struct netfreeze *f, const struct tcprepair_tuple *t, unsigned n, char *why,
		      size_t wl)
{
	/* added first: deleting an entry that is not there would fail the whole
	 * transaction, adding one that is changes nothing */
	return change(f, true, true, true, true, t, n, why, wl);
}
