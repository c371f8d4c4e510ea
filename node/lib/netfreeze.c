/* See netfreeze.h. One nft -f - run per call, its script on its stdin: the
 * table and set are declared each time (declaring what exists changes
 * nothing), so whichever process comes first on a host makes them. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

static const char DECLARE[] =
	"table ip pvha_freeze {\n"
	"  set conns { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; }\n"
	"  chain input { type filter hook input priority -300; policy accept; }\n"
	"}\n";

/* Runs nft -f - on script. Returns 0 or -EIO with why. */
static int run_nft(const char *script, char *why, size_t wl)
{
	/* a socket pair, not a pipe: send() with MSG_NOSIGNAL, so a dying nft
	 * cannot SIGPIPE this (threaded) process */
	int p[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) {
		snprintf(why, wl, "nft: socketpair: %s", strerror(errno));
		return -EIO;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[0], 0);
	const char *nft = access("/usr/sbin/nft", X_OK) == 0 ? "/usr/sbin/nft" : "nft";
	char *argv[] = { (char *)nft, (char *)"-f", (char *)"-", NULL };
	pid_t pid;
	int err = posix_spawnp(&pid, nft, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[0]);
	if (err) {
		close(p[1]);
		snprintf(why, wl, "nft: cannot run it: %s (Debian package nftables)", strerror(err));
		return -EIO;
	}
	size_t len = strlen(script), off = 0;
	while (off < len) {
		ssize_t r = send(p[1], script + off, len - off, MSG_NOSIGNAL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(p[1]);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, wl, "nft: waitpid: %s", strerror(errno));
			return -EIO;
		}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		snprintf(why, wl, "nft refused the freeze rules (status %d; needs CAP_NET_ADMIN)", st);
		return -EIO;
	}
	return 0;
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

static char *script_alloc(unsigned n)
{
	size_t cap = sizeof(DECLARE) + 256 + 2 * (size_t)n * ELEM_MAX;
	char *s = malloc(cap);
	if (s)
		snprintf(s, cap, "%s", DECLARE);
	return s;
}

static size_t script_cap(unsigned n)
{
	return sizeof(DECLARE) + 256 + 2 * (size_t)n * ELEM_MAX;
}

int netfreeze_hold(const struct tcprepair_tuple *t, unsigned n, char *why, size_t wl)
{
	if (n == 0 || n > MAX_CONNS)
		return -EINVAL;
	char *s = script_alloc(n);
	if (!s)
		return -ENOMEM;
	size_t cap = script_cap(n), o = strlen(s);
	/* one rule, whoever made the chain: flushed and added in the same
	 * transaction */
	snprintf(s + o, cap - o,
		 "flush chain ip pvha_freeze input\n"
		 "add rule ip pvha_freeze input ip saddr . tcp sport . ip daddr . tcp dport @conns "
		 "drop\n");
	elements(s, cap, "add", t, n, true);
	int err = run_nft(s, why, wl);
	free(s);
	return err;
}

int netfreeze_release(const struct tcprepair_tuple *t, unsigned n, char *why, size_t wl)
{
	if (n == 0)
		return 0;
	if (n > MAX_CONNS)
		return -EINVAL;
	char *s = script_alloc(n);
	if (!s)
		return -ENOMEM;
	size_t cap = script_cap(n);
	/* add first: deleting an entry that is not there would fail the whole
	 * transaction, adding one that is changes nothing */
	elements(s, cap, "add", t, n, true);
	elements(s, cap, "delete", t, n, false);
	int err = run_nft(s, why, wl);
	free(s);
	return err;
}
