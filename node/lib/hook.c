/* See hook.h. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "hook.h"

extern char **environ;

#define NAME_MAX_LEN 63

bool pv_name_ok(const char *s)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
	if (!s)
		return false;
	size_t n = strlen(s);
	return n > 0 && n <= NAME_MAX_LEN && s[0] != '.' && s[0] != '-' && strspn(s, ok) == n;
}

int pv_hook_run(const char *cmd, const char *node, int *status)
{
	if (!cmd || !cmd[0] || !pv_name_ok(node))
		return -EINVAL;
	/* The environment as ours, minus any PVHA_NODE, plus the node's. */
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 2, sizeof(char *));
	char var[NAME_MAX_LEN + sizeof("PVHA_NODE=")];
	if (!env)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PVHA_NODE=", 10) != 0)
			env[k++] = environ[i];
	snprintf(var, sizeof(var), "PVHA_NODE=%s", node);
	env[k++] = var;
	env[k] = NULL;
	char *argv[] = { "sh", "-c", (char *)cmd, NULL };
	pid_t pid;
	int err = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, env);
	free(env);
	if (err)
		return -err;
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}
