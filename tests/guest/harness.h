/*
 * Test harness for tests that run real programs (pvha-vmm, pvha) on real
 * guests: spawn with captured stdout/stderr, wait with a deadline, read what
 * they printed. Paths come from PVHA_BUILD_DIR (set by ctest).
 */
#ifndef PVHA_TEST_HARNESS_H
#define PVHA_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct proc {
	pid_t pid;
	char out_path[256]; /* captured stdout */
	char err_path[256]; /* captured stderr */
	int status;         /* exit status once waited, -1 = killed by a signal */
};

/* A fresh temporary directory for this test (removed by th_cleanup). */
const char *th_tmpdir(void);
void th_cleanup(void);

/* "$PVHA_BUILD_DIR/<rel>" in a static buffer rotation (256 deep). */
const char *th_build(const char *rel);
/* A path inside th_tmpdir(), same rotation. */
const char *th_tmp(const char *name);

/* Starts argv (argv[0] a path) with stdout/stderr captured; does not wait. */
void th_spawn(struct proc *p, char *const argv[]);

/* Waits for exit, killing the process after timeout_s. Returns the exit status
 * (-1 when it died by a signal). */
int th_wait(struct proc *p, int timeout_s);

/* Spawns and waits: the usual one-shot run. */
int th_run(struct proc *p, int timeout_s, char *const argv[]);

/* Whole contents of a file (NUL-terminated, malloc'd; "" when missing). */
char *th_slurp(const char *path);

/* Waits until the file at path contains needle (polling its growth, every
 * 5 ms) or timeout_s passes. Returns true when found. */
bool th_wait_for_text(const char *path, const char *needle, int timeout_s);

/* Waits until a unix socket at path accepts connections. */
bool th_wait_for_socket(const char *path, int timeout_s);

/* True when the file at path contains needle; when not, prints what it holds
 * (for the failing test's log). */
bool th_file_contains(const char *path, const char *needle);

/* Counts occurrences of needle in haystack. */
int th_count(const char *hay, const char *needle);

/* The highest N of the counter guest's "counter: flushed seq N" lines in the
 * console log at path (0 when there is none). */
int th_last_flushed(const char *path);

/* CLOCK_MONOTONIC in seconds; a pause of ms milliseconds (for pacing a
 * poll loop, never as synchronisation). */
double th_now_s(void);
void th_pause_ms(int ms);

/* Whether `nft list set ip pvha_freeze conns` shows an entry for the peer
 * port (node/lib/netfreeze.h). */
bool th_nft_holds(uint16_t peer_port);

/* Every migration target takes only an authenticated source: the tests'
 * migration key (TH_MIGRATE_KEY_LEN bytes), and an owner-only file in
 * th_tmpdir() that holds it, for pvha-vmm --migrate-key-file. */
#define TH_MIGRATE_KEY_LEN 32
extern const unsigned char th_migrate_key[TH_MIGRATE_KEY_LEN];
const char *th_migrate_key_file(void);

/* A connected TCP pair on loopback: *srv accepted (non-blocking, a 64 KiB
 * send buffer as the VMM's sockets), *cli with a 16 KiB receive buffer (a
 * small window, so that the server's queue fills). Aborts on failure. */
void th_tcp_pair(int *srv, int *cli);

#endif
