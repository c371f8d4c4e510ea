/*
 * pvha-counter-check: verifies the counter guest's log on a disk image file.
 *
 *   pvha-counter-check [--json] [--expect-flushed CONSOLE_LOG] DISK_FILE
 *
 * Prints "records N boots B writers W last_seq S" for a sound log, or the
 * first problem ("CORRUPT <what> at seq N"). With --expect-flushed, every
 * "counter: flushed seq N" line of the console log must name a record that is
 * on the disk ("missing flushed seq N" otherwise). --json prints one JSON
 * object instead. Exit 0 when sound, 1 on corruption or a missing flushed
 * record, 2 on usage or I/O errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "counter_verify.h"

#define FLUSHED_TAG "counter: flushed seq "

static int file_read(void *ctx, uint64_t off, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the file shrank under us */
		done += (size_t)n;
	}
	return 0;
}

/* Scans a console log for "counter: flushed seq N" and returns the highest N
 * in *max_seq and the count in *lines. Returns 0 or -errno. O(log size). */
static int scan_flushed(const char *path, uint64_t *max_seq, uint64_t *lines)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	*max_seq = 0;
	*lines = 0;
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) >= 0) {
		const char *p = strstr(line, FLUSHED_TAG);
		if (!p)
			continue;
		p += strlen(FLUSHED_TAG);
		char *end;
		errno = 0;
		unsigned long long v = strtoull(p, &end, 10);
		if (end == p || errno)
			continue; /* not a number: not a line the guest wrote */
		(*lines)++;
		if (v > *max_seq)
			*max_seq = v;
	}
	int err = ferror(f) ? -EIO : 0;
	free(line);
	fclose(f);
	return err;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: pvha-counter-check [--json] [--expect-flushed CONSOLE_LOG] DISK_FILE\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "expect-flushed", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *console = NULL;
	bool json = false;
	int c, err;

	while ((c = getopt_long(argc, argv, "jf:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'f': console = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	const char *disk = argv[optind];

	int fd = open(disk, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "pvha-counter-check: %s: %s\n", disk, strerror(errno));
		return 2;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		fprintf(stderr, "pvha-counter-check: %s: %s\n", disk, strerror(errno));
		close(fd);
		return 2;
	}
	struct counter_verify_result res;
	err = counter_verify(file_read, &fd, (uint64_t)st.st_size, &res);
	close(fd);
	if (err < 0) {
		fprintf(stderr, "pvha-counter-check: %s: %s\n", disk, strerror(-err));
		return 2;
	}

	uint64_t flushed_max = 0, flushed_lines = 0, missing = 0;
	if (console) {
		err = scan_flushed(console, &flushed_max, &flushed_lines);
		if (err < 0) {
			fprintf(stderr, "pvha-counter-check: %s: %s\n", console, strerror(-err));
			return 2;
		}
		/* Records are contiguous from seq 1, so seq N is on the disk
		 * exactly when N <= records. */
		if (flushed_max > res.records)
			missing = res.records + 1;
	}

	bool ok = res.problem == COUNTER_OK && missing == 0;
	if (json) {
		printf("{\"ok\":%s,\"formatted\":%s,\"records\":%" PRIu64 ",\"boots\":%" PRIu64
		       ",\"writers\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"last_boot\":%" PRIu64,
		       ok ? "true" : "false", res.formatted ? "true" : "false", res.records,
		       res.boots, res.writers, res.last_seq, res.last_boot);
		if (res.problem != COUNTER_OK)
			printf(",\"problem\":\"%s\",\"problem_seq\":%" PRIu64,
			       counter_problem_name(res.problem), res.problem_seq);
		if (console)
			printf(",\"flushed_lines\":%" PRIu64 ",\"flushed_max\":%" PRIu64
			       ",\"missing_flushed\":%" PRIu64,
			       flushed_lines, flushed_max, missing);
		printf("}\n");
	} else if (res.problem != COUNTER_OK) {
		printf("CORRUPT %s at seq %" PRIu64 " (after %" PRIu64 " good records)\n",
		       counter_problem_name(res.problem), res.problem_seq, res.records);
	} else if (missing) {
		printf("missing flushed seq %" PRIu64 " (console flushed up to %" PRIu64
		       ", disk has %" PRIu64 " records)\n",
		       missing, flushed_max, res.records);
	} else {
		printf("records %" PRIu64 " boots %" PRIu64 " writers %" PRIu64 " last_seq %" PRIu64
		       "\n",
		       res.records, res.boots, res.writers, res.last_seq);
	}
	return ok ? 0 : 1;
}
