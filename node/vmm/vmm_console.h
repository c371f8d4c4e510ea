/*
 * The guest's console as pvha-vmm keeps it: a file (or stdout) written at
 * no more than a set rate, rotated at a set size, so that a guest that
 * floods its console can neither fill the host's disk (or /run, a tmpfs)
 * nor slow its VMM down: what goes over the rate is dropped and counted,
 * and a line in the log says how much was dropped.
 *
 * Rotation: when the file would grow past max_bytes its content replaces
 * PATH.1's and PATH starts again empty, so at most about twice max_bytes
 * is on disk per guest. Both files are opened at start and rotation copies
 * (then truncates) rather than renames: the sandboxed VMM (sandbox.h) may
 * not create or rename files in a directory that is not its own. The
 * supervisor decides where PATH is (docs/security.md: on disk, not under
 * /run).
 *
 * Threading: the VMM's loop only (the hv_console_fn callback).
 */
#ifndef PVHA_VMM_CONSOLE_H
#define PVHA_VMM_CONSOLE_H

#include <stddef.h>
#include <stdint.h>

#define VMM_CONSOLE_RATE_DEFAULT (1024u * 1024u)       /* bytes/s */
#define VMM_CONSOLE_MAX_DEFAULT (16u * 1024u * 1024u)  /* bytes per file */
#define VMM_CONSOLE_BURST_MIN (64u * 1024u)

/* A token bucket: rate bytes/s, holding at most one second's worth (at
 * least VMM_CONSOLE_BURST_MIN). Pure; exposed for the unit test. */
struct vmm_console_bucket {
	uint64_t rate;    /* bytes/s; 0 = no limit */
	uint64_t tokens;  /* bytes that may go out now */
	uint64_t last_ns; /* when tokens was last filled; 0 = never */
};

/* How many of len bytes may go out at now_ns (CLOCK_MONOTONIC); takes
 * them from the bucket. O(1). */
size_t vmm_console_admit(struct vmm_console_bucket *b, uint64_t now_ns, size_t len);

/* One console; embedded in its owner (the fields are vmm_console.c's). */
struct vmm_console {
	int fd;          /* PATH, read-write append */
	int old_fd;      /* PATH.1; -1 = no rotation */
	char path[4096]; /* "" = stdout */
	char old[4100];  /* path.1 */
	uint64_t max_bytes, size;
	struct vmm_console_bucket bucket;
	uint64_t dropped, dropped_unsaid; /* unsaid: not yet reported in the log */
};

struct vmm_console_opts {
	const char *path;   /* NULL: stdout (no rotation) */
	uint64_t max_bytes; /* rotate past this; 0 = never */
	uint64_t rate;      /* bytes/s; 0 = no limit */
};

/* Opens (appends to) the console file into c. Returns 0 or -errno with why. */
int vmm_console_open(struct vmm_console *c, const struct vmm_console_opts *o, char *why, size_t wl);

/* Writes what the rate allows of buf, rotating first when the file is full;
 * errors are dropped (a console nobody can write must not stop the guest).
 * Matches hv_console_fn with ctx = the console. */
void vmm_console_write(void *ctx, const char *buf, size_t len);

/* Bytes dropped over the rate so far. */
uint64_t vmm_console_dropped(const struct vmm_console *c);

/* Closes the file (not stdout). */
void vmm_console_close(struct vmm_console *c);

#endif /* PVHA_VMM_CONSOLE_H */
