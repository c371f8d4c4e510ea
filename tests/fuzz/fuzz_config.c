/*
 * Fuzz harness: pvhad's configuration parser (node/pvhad/agent_config.c,
 * compiled into this harness unchanged). The input is the file's text,
 * handed over as /proc/self/fd/N of a memfd. Whatever it accepts must be
 * NUL-terminated in every field (checked: a parser that fills a field to
 * the brim without its NUL would be a finding).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_config.h"
#include "fuzz.h"

#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config cfg;
	char path[64], why[512];
	int fd = fuzz_memfd(data, size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	memset(&cfg, 0xa5, sizeof(cfg));
	if (agent_config_load(path, &cfg, why, sizeof(why)) == 0) {
		if (!TERMINATED(cfg.node_name) || !TERMINATED(cfg.address) || !TERMINATED(cfg.ceph_conf) ||
		    !TERMINATED(cfg.ceph_user) || !TERMINATED(cfg.pool) || !TERMINATED(cfg.run_dir) ||
		    !TERMINATED(cfg.fence_args) || !TERMINATED(cfg.vmm) || !cfg.node_name[0])
			abort();
	} else if (!memchr(why, '\0', sizeof(why))) {
		abort();
	}
	close(fd);
	return 0;
}
