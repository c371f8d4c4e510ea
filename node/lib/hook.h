/*
 * Running an operator's hook command for one node (`pvha cluster roll
 * --hook`): the command is the operator's own shell text, run with /bin/sh
 * -c; the node's name reaches it only as the environment variable
 * PVHA_NODE, never spliced into the text, and only when it is a valid name
 * (pv_name_ok), so that no name a node or the cluster reports can inject
 * shell. Blocking; for the CLI.
 */
#ifndef PVHA_HOOK_H
#define PVHA_HOOK_H

#include <stdbool.h>

/* A guest or node name: 1 to 63 of A-Z a-z 0-9 . _ -, not starting with .
 * or -. Pure. */
bool pv_name_ok(const char *s);

/* Runs `/bin/sh -c cmd` with PVHA_NODE=node added to this process's
 * environment, stdin/stdout/stderr inherited, and waits for it. Returns 0
 * and *status (the wait status), -EINVAL for a node name that is not
 * pv_name_ok or an empty cmd (nothing is run), or -errno when it could not
 * be started. */
int pv_hook_run(const char *cmd, const char *node, int *status);

#endif /* PVHA_HOOK_H */
