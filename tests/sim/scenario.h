/*
 * Scenario files (docs/simulator.md): an initial state, commands at virtual
 * times, assertions, and the expected log. Parsed from text, run on a fresh
 * world, printed as a log that --check compares and --update rewrites.
 */
#ifndef PVHA_SIM_SCENARIO_H
#define PVHA_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct scn;

struct scn_result {
	unsigned asserts, failed;       /* assertions run, failed */
	unsigned violations;            /* invariants broken */
	bool expect_fail;               /* the file says it reproduces a known bug */
	uint64_t outages[512];          /* gaps in guests' writes (ms), see sim.h */
	unsigned noutages;
};

/* Parses text (path for messages). Returns 0 and *out, or -EINVAL with the
 * line and reason in err. */
int scn_parse(const char *text, const char *path, struct scn **out, char *err, size_t errlen);
void scn_free(struct scn *s);

/* Runs it, printing the log to out (verbose: the agents' lines too, which
 * --check ignores). Returns 0 when it ran (see res), -errno when it could
 * not (a bad name in a command; message printed). */
int scn_run(struct scn *s, FILE *out, bool verbose, struct scn_result *res);

/* The text after the `expect` line (NULL: none), and how much of the file
 * comes before it (for --update). */
const char *scn_expected(const struct scn *s);
size_t scn_head_len(const struct scn *s);
/* How much of the file comes before the `expect` line (all of it: none). */
size_t scn_body_len(const struct scn *s);

#endif
