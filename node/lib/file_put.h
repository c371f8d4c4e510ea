/*
 * Replacing a small file whole: the data goes to PATH.tmp first and is then
 * renamed over PATH, so that a reader sees the old file or the new one,
 * never half of one. Any thread; errno-style results.
 */
#ifndef PVHA_FILE_PUT_H
#define PVHA_FILE_PUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Writes len bytes of data to path (mode exactly mode, whatever the umask)
 * through path.tmp and a rename. A path.tmp left by an earlier crash is
 * replaced; a symlink there is not followed. durable: the data is on disk
 * before the rename, and the rename before the return (fsync of the file,
 * then of its directory), so that after a crash path holds the old file or
 * the new one: for what is not made again (a keyring, a configuration);
 * files under /run and caches do without. Returns 0, or -errno with nothing
 * left at path.tmp. */
int pv_file_put(const char *path, const void *data, size_t len, mode_t mode, bool durable);

#endif
