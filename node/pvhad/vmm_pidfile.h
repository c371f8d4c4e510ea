/*
 * The VMMs pvhad spawned, recorded where a restarted pvhad finds them:
 * `<run_dir>/guests/<uuid>.pid` holds "PID STARTTIME" (STARTTIME: field 22 of
 * /proc/PID/stat, so a reused pid never matches). pvhad adopts a VMM by its
 * control socket once it answers; a VMM still booting when pvhad restarts
 * (it listens only after it took its owner lock) has no socket yet, and is
 * adopted by this record instead, so that it is neither left running
 * unmanaged nor forgotten (docs/agent.md, adoption).
 */
#ifndef PVHAD_VMM_PIDFILE_H
#define PVHAD_VMM_PIDFILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The start time of process pid (clock ticks since boot), or -errno. */
int vmm_proc_starttime(pid_t pid, unsigned long long *start);

/* Writes dir/<uuid_str>.pid for pid (replacing an older one). 0 or -errno. */
int vmm_pidfile_write(const char *dir, const char *uuid_str, pid_t pid);

/* Reads a record: 0, -ENOENT, or -EINVAL when it is not "PID STARTTIME\n". */
int vmm_pidfile_read(const char *path, pid_t *pid, unsigned long long *start);

/* Whether the process the record names still runs (same pid, same start). */
bool vmm_pidfile_alive(pid_t pid, unsigned long long start);

#endif
