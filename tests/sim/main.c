/*
 * pvha-sim: runs pvha agents in a simulated cluster (tests/sim/sim.h).
 *
 *   pvha-sim [-v] FILE.scn...            run, print the log
 *   pvha-sim --check FILE.scn...         run, compare the log with the file's
 *                                        expected part and its assertions
 *   pvha-sim --update FILE.scn...        run, rewrite the expected part
 *   pvha-sim --random --seeds A..B       random clusters and faults
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "random.h"
#include "scenario.h"
#include "sim.h"


static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvha-sim [--check | --update] [-v] FILE.scn...\n"
		"       pvha-sim --random --seeds A..B [--stats] [-v]\n"
		"Runs pvha agents (libpvagent) in a simulated cluster: fake Corosync,\n"
		"fake RADOS store, fake VMMs, virtual time. Deterministic: a scenario\n"
		"gives the same log every run.\n\n"
		"  --check      compare the log with the part after `expect` in the file\n"
		"               (a file with `expect-fail` must fail its assertions or\n"
		"               invariants instead: it reproduces a known bug)\n"
		"  --update     rewrite the part after `expect` with this run's log\n"
		"  -v           also print the agents' log lines (not compared)\n"
		"  --random     run random clusters and fault schedules, one per seed,\n"
		"               checked against the invariants and a recovery bound of\n"
		"               %d ms after the last fault; a failing seed prints its\n"
		"               scenario, which replays as a file\n"
		"  --seeds A..B the seeds (inclusive); one number: just that seed\n"
		"  --stats      print the outage (recovery time) distribution\n"
		"  --expect-failures  (with --random) the agent has known bugs: pass when\n"
		"               some seed fails, fail (XPASS) when every seed passes\n"
		"  -h, --help   this text\n\n"
		"Exit status: 0 every run passed; 1 a run failed; 2 bad usage or file.\n"
		"docs/simulator.md describes the model and the scenario format.\n",
		SIM_RANDOM_LIVENESS_MS);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

/* Runs one parsed scenario with its log into *log (malloc'd). */
static int run_to_buffer(struct scn *s, bool verbose, struct scn_result *res, char **log, size_t *len)
{
	FILE *m = open_memstream(log, len);
	if (!m)
		return -errno;
	int err = scn_run(s, m, verbose, res);
	fclose(m);
	return err;
}

static bool passed(const struct scn_result *r)
{
	return r->failed == 0 && r->violations == 0;
}

/* The first line where a and b differ (1-based), 0 when equal. */
static int first_diff(const char *a, const char *b, const char **la, const char **lb)
{
	int line = 1;
	*la = a;
	*lb = b;
	while (*a || *b) {
		if (*a != *b)
			return line;
		if (*a == '\n') {
			line++;
			*la = a + 1;
			*lb = b + 1;
		}
		a++;
		b++;
	}
	return 0;
}

static int run_file(const char *path, bool check, bool update, bool verbose)
{
	char err[512];
	char *text = read_file(path);
	if (!text) {
		fprintf(stderr, "pvha-sim: %s: %s\n", path, strerror(errno));
		return 2;
	}
	struct scn *s;
	if (scn_parse(text, path, &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "pvha-sim: %s\n", err);
		free(text);
		return 2;
	}
	struct scn_result res;
	char *log = NULL;
	size_t len = 0;
	int rc = 0;
	if (run_to_buffer(s, verbose && !check && !update, &res, &log, &len) != 0) {
		fprintf(stderr, "pvha-sim: %s: could not run\n", path);
		rc = 2;
		goto out;
	}
	if (!check && !update)
		fputs(log, stdout);
	if (update) {
		/* an expect-fail scenario's log is not compared: none is kept */
		FILE *f = fopen(path, "wb");
		bool keep = !res.expect_fail;
		size_t head = keep ? scn_head_len(s) : scn_body_len(s);
		if (!f || fwrite(text, 1, head, f) != head ||
		    (keep && !scn_expected(s) && fputs("expect\n", f) < 0) || (keep && fputs(log, f) < 0) ||
		    fclose(f) != 0) {
			fprintf(stderr, "pvha-sim: %s: cannot rewrite: %s\n", path, strerror(errno));
			rc = 2;
			goto out;
		}
	}
	if (res.expect_fail) {
		if (passed(&res)) {
			printf("XPASS %s: marked expect-fail, but every assertion and invariant held: is the bug fixed?\n",
			       path);
			rc = 1;
		} else {
			printf("XFAIL %s (%u failed assertion(s), %u violation(s): the known bug)\n", path, res.failed,
			       res.violations);
		}
		goto out;
	}
	if (!passed(&res)) {
		printf("FAIL %s: %u of %u assertion(s) failed, %u invariant violation(s)\n", path, res.failed,
		       res.asserts, res.violations);
		if (check)
			fputs(log, stdout);
		rc = 1;
		goto out;
	}
	if (check) {
		const char *exp = scn_expected(s), *la, *lb;
		if (!exp) {
			printf("FAIL %s: no `expect` part (run --update)\n", path);
			rc = 1;
			goto out;
		}
		int d = first_diff(log, exp, &la, &lb);
		if (d) {
			printf("FAIL %s: the log differs from the expected one at line %d:\n  got:      %.*s\n  expected: %.*s\n",
			       path, d, (int)strcspn(la, "\n"), la, (int)strcspn(lb, "\n"), lb);
			rc = 1;
			goto out;
		}
		printf("ok %s (%u assertion(s))\n", path, res.asserts);
	}
out:
	free(log);
	scn_free(s);
	free(text);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int run_random(uint64_t a, uint64_t b, bool stats, bool verbose, bool expect_failures)
{
	uint64_t *all = NULL;
	size_t nall = 0, capall = 0;
	unsigned failed = 0;
	for (uint64_t seed = a; seed <= b; seed++) {
		char *text, err[512], *log = NULL;
		size_t len = 0;
		struct scn *s;
		struct scn_result res;
		if (sim_random_scenario(seed, &text) != 0)
			return 2;
		if (scn_parse(text, "random", &s, err, sizeof(err)) != 0) {
			fprintf(stderr, "pvha-sim: seed %llu: %s\n%s", (unsigned long long)seed, err, text);
			free(text);
			return 2;
		}
		if (run_to_buffer(s, verbose, &res, &log, &len) != 0) {
			fprintf(stderr, "pvha-sim: seed %llu: could not run\n", (unsigned long long)seed);
			return 2;
		}
		if (!passed(&res)) {
			failed++;
			printf("FAIL seed %llu: %u invariant violation(s). Replay: save the scenario below as a file and run pvha-sim on it.\n",
			       (unsigned long long)seed, res.violations);
			printf("---- scenario ----\n%s---- log (violations) ----\n", text);
			for (const char *p = log; p && *p;) {
				size_t n = strcspn(p, "\n");
				if (memmem(p, n, " !! ", 4) || verbose)
					printf("%.*s\n", (int)n, p);
				p += n + (p[n] == '\n');
			}
		}
		for (unsigned i = 0; stats && i < res.noutages; i++) {
			sim_grow(&all, nall, &capall, sizeof(*all));
			all[nall++] = res.outages[i];
		}
		free(log);
		scn_free(s);
		free(text);
	}
	printf("%llu seed(s), %u failed\n", (unsigned long long)(b - a + 1), failed);
	if (stats && nall) {
		qsort(all, nall, sizeof(*all), cmp_u64);
		printf("outages (a guest's writes stopped, then resumed): %zu\n", nall);
		printf("figure sim_outage_p50 %llu ms\n", (unsigned long long)all[nall / 2]);
		printf("figure sim_outage_p90 %llu ms\n", (unsigned long long)all[nall * 9 / 10]);
		printf("figure sim_outage_p99 %llu ms\n", (unsigned long long)all[nall * 99 / 100]);
		printf("figure sim_outage_max %llu ms\n", (unsigned long long)all[nall - 1]);
	}
	free(all);
	if (expect_failures) {
		if (!failed) {
			printf("XPASS: every seed passed although --expect-failures says the agent has known bugs: drop it\n");
			return 1;
		}
		printf("XFAIL: %u seed(s) failed, as the known bugs make them (docs/simulator.md)\n", failed);
		return 0;
	}
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "check", no_argument, NULL, 'c' }, { "update", no_argument, NULL, 'u' },
		{ "random", no_argument, NULL, 'r' }, { "seeds", required_argument, NULL, 's' },
		{ "stats", no_argument, NULL, 'S' }, { "verbose", no_argument, NULL, 'v' },
		{ "expect-failures", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	bool check = false, update = false, random = false, stats = false, verbose = false, xfail = false;
	unsigned long long a = 1, b = 100;
	int c;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c': check = true; break;
		case 'u': update = true; break;
		case 'r': random = true; break;
		case 'S': stats = true; break;
		case 'x': xfail = true; break;
		case 'v': verbose = true; break;
		case 's': {
			char *end;
			a = strtoull(optarg, &end, 10);
			if (end == optarg || (*end && strncmp(end, "..", 2))) {
				fprintf(stderr, "pvha-sim: --seeds wants A..B or N, got '%s'\n", optarg);
				return 2;
			}
			b = *end ? strtoull(end + 2, &end, 10) : a;
			if (*end || b < a) {
				fprintf(stderr, "pvha-sim: --seeds wants A..B with A <= B, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (check && update) {
		fprintf(stderr, "pvha-sim: --check and --update exclude each other\n");
		return 2;
	}
	if (random)
		return run_random(a, b, stats, verbose, xfail);
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	int rc = 0;
	for (int i = optind; i < argc; i++) {
		int r = run_file(argv[i], check, update, verbose);
		if (r > rc)
			rc = r;
	}
	return rc;
}
