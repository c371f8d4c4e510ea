/*
 * External fence agents: programs that speak the fence-agents stdin protocol
 * (ClusterLabs fence-agents, e.g. Debian's fence_dummy, fence_ipmilan; the
 * lab's fence/fence_pvha_lab). The caller writes `key=value` lines to the
 * program's stdin (action=off, then the configured arguments), closes it and
 * waits: exit status 0 means the action succeeded (for action=status: 0 = on,
 * 2 = off, anything else = failure).
 *
 * pvhad's configuration names the program and its arguments once for all
 * nodes; `%n` in an argument is the fenced node's name, `%a` its address and
 * `%%` a percent sign, so one line serves every node:
 *
 *     fence_agent = /usr/sbin/fence_dummy
 *     fence_args  = type=file status_file=/var/lib/pvha/power-%n
 *
 * This part is pure (parsing, building the input); spawning is in
 * pvfence_agent_spawn. No logging: errors come back as text.
 */
#ifndef PVFENCE_AGENT_H
#define PVFENCE_AGENT_H

#include <stddef.h>
#include <sys/types.h>

#define PVFENCE_INPUT_MAX 4096
#define PVFENCE_ARGS_MAX 32

/* Checks a fence_args value: space-separated key=value tokens, keys of
 * [a-z0-9_-], values without '=' at the start, no control characters, at most
 * PVFENCE_ARGS_MAX tokens, `%` followed by n, a or %. `action` is not allowed
 * (pvhad chooses it). Returns 0, or -EINVAL with the reason in why. */
int pvfence_args_check(const char *args, char *why, size_t whylen);

/* Builds the stdin text for one call: "action=ACTION\n" then one line per
 * token of args with %n/%a substituted. Returns the length, or -EINVAL (bad
 * args, bad node or address: control characters) / -ENAMETOOLONG (over
 * outlen) with the reason in why. */
int pvfence_agent_input(const char *action, const char *args, const char *node, const char *addr,
			char *out, size_t outlen, char *why, size_t whylen);

/* Starts program with input on its stdin (written whole, then closed) and
 * stdout/stderr appended to out_fd (-1: /dev/null). Returns 0 with *pid, or
 * -errno. The caller reaps the child (waitpid) and reads its status with
 * pvfence_status_str. */
int pvfence_agent_spawn(const char *program, const char *input, size_t len, int out_fd, pid_t *pid);

/* "exit 0", "exit 1", "killed by signal 9" (for events). */
const char *pvfence_status_str(int wait_status, char *buf, size_t len);

#endif
