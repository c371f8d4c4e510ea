/* External fence agents: see pvfence/agent.h. */
#include "pvfence/agent.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Walks the tokens of args; for each calls fn(key, keylen, value, valuelen).
 * Returns 0 or -EINVAL with why. */
typedef int (*token_fn)(void *ctx, const char *tok, size_t len, char *why, size_t whylen);

static int each_token(const char *args, token_fn fn, void *ctx, char *why, size_t whylen)
{
	const char *s = args;
	int n = 0;
	if (has_control(args)) {
		snprintf(why, whylen, "fence_args: control characters are not allowed");
		return -EINVAL;
	}
	while (*s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		const char *e = s;
		while (*e && *e != ' ')
			e++;
		size_t len = (size_t)(e - s);
		const char *eq = memchr(s, '=', len);
		if (!eq || eq == s) {
			snprintf(why, whylen, "fence_args: '%.*s' is not key=value", (int)len, s);
			return -EINVAL;
		}
		for (const char *k = s; k < eq; k++) {
			if (!key_char(*k)) {
				snprintf(why, whylen, "fence_args: key '%.*s': only a-z, 0-9, _ and -",
					 (int)(eq - s), s);
				return -EINVAL;
			}
		}
		if (eq - s == 6 && !memcmp(s, "action", 6)) {
			snprintf(why, whylen, "fence_args: 'action' is chosen by pvhad, not configured");
			return -EINVAL;
		}
		for (const char *v = eq + 1; v < e; v++) {
			if (*v == '%') {
				if (v + 1 >= e || (v[1] != 'n' && v[1] != 'a' && v[1] != '%')) {
					snprintf(why, whylen, "fence_args: '%.*s': %% must be followed by n, a or %%",
						 (int)len, s);
					return -EINVAL;
				}
				v++;
			}
		}
		if (++n > PVFENCE_ARGS_MAX) {
			snprintf(why, whylen, "fence_args: more than %d arguments", PVFENCE_ARGS_MAX);
			return -EINVAL;
		}
		if (fn) {
			int err = fn(ctx, s, len, why, whylen);
			if (err)
				return err;
		}
		s = e;
	}
	return 0;
}

int pvfence_args_check(const char *args, char *why, size_t whylen)
{
	return each_token(args, NULL, NULL, why, whylen);
}

struct builder {
	char *out;
	size_t cap, len;
	const char *node, *addr;
	bool overflow;
};

static void put(struct builder *b, const char *s, size_t n)
{
	if (b->len + n >= b->cap) {
		b->overflow = true;
		return;
	}
	memcpy(b->out + b->len, s, n);
	b->len += n;
	b->out[b->len] = '\0';
}

static int put_token(void *ctx, const char *tok, size_t len, char *why, size_t whylen)
{
	struct builder *b = ctx;
	(void)why;
	(void)whylen;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] == '%' && i + 1 < len) {
			char c = tok[++i];
			if (c == 'n')
				put(b, b->node, strlen(b->node));
			else if (c == 'a')
				put(b, b->addr, strlen(b->addr));
			else
				put(b, "%", 1);
		} else {
			put(b, &tok[i], 1);
		}
	}
	put(b, "\n", 1);
	return 0;
}

int pvfence_agent_input(const char *action, const char *args, const char *node, const char *addr,
			char *out, size_t outlen, char *why, size_t whylen)
{
	if (!action[0] || has_control(action) || strchr(action, '=') || has_control(node) ||
	    has_control(addr) || strchr(node, ' ') || strchr(addr, ' ')) {
		snprintf(why, whylen, "fence agent input: action, node name and address must be one word");
		return -EINVAL;
	}
	if (outlen == 0) {
		snprintf(why, whylen, "fence agent input: no room");
		return -ENAMETOOLONG;
	}
	struct builder b = { .out = out, .cap = outlen, .node = node, .addr = addr };
	out[0] = '\0';
	put(&b, "action=", 7);
	put(&b, action, strlen(action));
	put(&b, "\n", 1);
	int err = each_token(args ? args : "", put_token, &b, why, whylen);
	if (err)
		return err;
	if (b.overflow) {
		snprintf(why, whylen, "fence agent input: longer than %zu bytes", outlen - 1);
		return -ENAMETOOLONG;
	}
	return (int)b.len;
}

int pvfence_agent_spawn(const char *program, const char *input, size_t len, int out_fd, pid_t *pid)
{
	int in[2];
	if (len > PVFENCE_INPUT_MAX)
		return -E2BIG;
	/* The input is at most 4 KiB: it fits in the pipe, so writing it whole
	 * before the child runs never blocks. */
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	if (out_fd >= 0) {
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
		posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	} else {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	char *argv[] = { (char *)program, NULL };
	int err = posix_spawn(pid, program, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(in[0]);
	if (err) {
		close(in[1]);
		return -err;
	}
	ssize_t w = write(in[1], input, len);
	int werr = w == (ssize_t)len ? 0 : (w < 0 ? -errno : -EIO);
	close(in[1]);
	if (werr && werr != -EPIPE)
		return werr; /* the child runs on with a short input: it will fail and be reaped */
	return 0;
}

const char *pvfence_status_str(int st, char *buf, size_t len)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "status 0x%x", (unsigned)st);
	return buf;
}
