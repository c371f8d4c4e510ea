/*
 * Replays a fuzz corpus without libFuzzer: calls the harness's
 * LLVMFuzzerTestOneInput once per file of each directory (or file) named on
 * the command line, in name order, so that a regression is a test failure
 * (a crash, or a sanitizer report in the sanitizer build). Prints how many
 * inputs ran; exits 1 when a path cannot be read or holds no input.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define INPUT_MAX (16u << 20)

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = malloc(INPUT_MAX);
	size_t n = buf ? fread(buf, 1, INPUT_MAX, f) : 0;
	fclose(f);
	if (!buf)
		return -1;
	/* an exact-size copy, so that ASan sees a read past the input */
	uint8_t *in = malloc(n ? n : 1);
	if (!in) {
		free(buf);
		return -1;
	}
	memcpy(in, buf, n);
	free(buf);
	LLVMFuzzerTestOneInput(in, n);
	free(in);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	unsigned runs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]))
				return 1;
			runs++;
			continue;
		}
		struct dirent **list;
		int n = scandir(argv[i], &list, NULL, by_name);
		if (n < 0) {
			perror(argv[i]);
			return 1;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[i], list[j]->d_name);
			if (list[j]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
				if (run_file(path))
					return 1;
				runs++;
			}
			free(list[j]);
		}
		free(list);
	}
	printf("replayed %u input(s)\n", runs);
	return runs ? 0 : 1;
}
