/*
 * What the fuzz harnesses share (docs/fuzzing.md). Each harness is one file
 * defining LLVMFuzzerTestOneInput; libFuzzer drives it in the fuzz build
 * (-DPVHA_FUZZ=ON, clang), and replay.c drives it over the committed corpus
 * in every build (ctest fuzz_replay_NAME).
 */
#ifndef PVHA_FUZZ_H
#define PVHA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An anonymous file (memfd) holding data, its offset at 0: for readers that
 * take an fd or a path (/proc/self/fd/N). Aborts when the host cannot make
 * one (not an input's fault). */
int fuzz_memfd(const uint8_t *data, size_t size);

#endif
