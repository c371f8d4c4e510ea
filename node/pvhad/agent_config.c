/* See agent_config.h. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "parse.h"
#include "pvfence/agent.h"

#include "agent_config.h"

struct key {
	const char *name;
	size_t off, cap;
	int required;
};

#define K(n, req) { #n, offsetof(struct agent_config, n), sizeof(((struct agent_config *)0)->n), req }
static const struct key keys[] = {
	K(node_name, 1), K(address, 1), K(ceph_conf, 1), K(ceph_user, 0), K(ceph_keyring, 0),
	K(pool, 0), K(state_dir, 0), K(log_file, 0), K(vmm, 0), K(run_dir, 0),
	K(fence_agent, 0), K(fence_args, 0), K(fence_timeout, 0),
	K(guest_mem, 0), K(guest_cpus, 0), K(rebalance, 0), K(guest_interface, 0), K(http_listen, 0),
	K(heartbeat_max_resets, 0), K(heartbeat_window, 0),
};
/* Keys the lab writes that this agent does not use (yet). */
static const char *const ignored[] = { "node_id", "corosync_conf", "control_socket" };

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int agent_config_listen(const char *s, bool *on, struct sockaddr_in *addr)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strrchr(s, ':');
	*on = false;
	memset(addr, 0, sizeof(*addr));
	if (!strcmp(s, "off"))
		return 0;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end || errno || port < 1 || port > 65535)
		return -EINVAL;
	addr->sin_family = AF_INET;
	addr->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &addr->sin_addr) != 1)
		return -EINVAL;
	*on = true;
	return 0;
}

/* An optional whole number from lo to hi (unset: 0). Returns 0 or -EINVAL
 * with why naming the key. */
static int uint_key(const char *path, const char *key, const char *text, unsigned long lo, unsigned long hi,
		    uint32_t *out, char *why, size_t whylen)
{
	char *end;
	*out = 0;
	if (!text[0])
		return 0;
	unsigned long v = strtoul(text, &end, 10);
	if (*end || !isdigit((unsigned char)text[0]) || v < lo || v > hi) {
		snprintf(why, whylen, "%s: %s: want a whole number from %lu to %lu, got '%s'", path, key, lo, hi, text);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

int agent_config_load(const char *path, struct agent_config *cfg, char *why, size_t whylen)
{
	FILE *f = fopen(path, "r");
	char line[1200];
	int lineno = 0;
	unsigned seen = 0;

	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->ceph_user, sizeof(cfg->ceph_user), "admin");
	snprintf(cfg->pool, sizeof(cfg->pool), "pvha");
	snprintf(cfg->run_dir, sizeof(cfg->run_dir), "/run/pvha");
	snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s", AGENT_HTTP_LISTEN_DEFAULT);
	if (!f) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(why, whylen, "%s:%d: line too long", path, lineno);
			fclose(f);
			return -EINVAL;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(why, whylen, "%s:%d: want key = value", path, lineno);
			fclose(f);
			return -EINVAL;
		}
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		size_t i;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcmp(k, keys[i].name) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			bool skip = false;
			for (size_t j = 0; j < sizeof(ignored) / sizeof(ignored[0]); j++)
				skip |= strcmp(k, ignored[j]) == 0;
			if (skip)
				continue;
			snprintf(why, whylen, "%s:%d: unknown key '%s'", path, lineno, k);
			fclose(f);
			return -EINVAL;
		}
		if (strlen(v) == 0 || strlen(v) >= keys[i].cap) {
			snprintf(why, whylen, "%s:%d: %s: value empty or longer than %zu", path, lineno, k,
				 keys[i].cap - 1);
			fclose(f);
			return -EINVAL;
		}
		memcpy((char *)cfg + keys[i].off, v, strlen(v) + 1);
		seen |= 1u << i;
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].required && !(seen & (1u << i))) {
			snprintf(why, whylen, "%s: missing key '%s'", path, keys[i].name);
			return -EINVAL;
		}
	}
	cfg->fence_timeout_s = 30;
	if (cfg->fence_timeout[0]) {
		char *end;
		long t = strtol(cfg->fence_timeout, &end, 10);
		if (*end || t < 1 || t > 3600) {
			snprintf(why, whylen, "%s: fence_timeout: want seconds from 1 to 3600, got '%s'", path,
				 cfg->fence_timeout);
			return -EINVAL;
		}
		cfg->fence_timeout_s = (int)t;
	}
	if (cfg->guest_mem[0] && (pv_parse_size(cfg->guest_mem, &cfg->guest_mem_bytes) != 0 ||
				  cfg->guest_mem_bytes < (1u << 20))) {
		snprintf(why, whylen, "%s: guest_mem: want a size of at least 1M, as 512M or 4G, got '%s'", path,
			 cfg->guest_mem);
		return -EINVAL;
	}
	if (cfg->guest_cpus[0]) {
		char *end;
		long c = strtol(cfg->guest_cpus, &end, 10);
		if (*end || c < 1 || c > 4096) {
			snprintf(why, whylen, "%s: guest_cpus: want 1..4096, got '%s'", path, cfg->guest_cpus);
			return -EINVAL;
		}
		cfg->guest_cpus_n = (uint32_t)c;
	}
	if (cfg->rebalance[0] && strcmp(cfg->rebalance, "off") != 0) {
		char *end;
		double t = strtod(cfg->rebalance, &end);
		if (*end || !(t >= 0.01 && t <= 0.99)) {
			snprintf(why, whylen, "%s: rebalance: want off or a threshold from 0.01 to 0.99, got '%s'", path,
				 cfg->rebalance);
			return -EINVAL;
		}
		cfg->rebalance_threshold = t;
	}
	if (agent_config_listen(cfg->http_listen, &cfg->http_on, &cfg->http_addr) != 0) {
		snprintf(why, whylen, "%s: http_listen: want off or an IPv4 address and port, as 127.0.0.1:9639, got '%s'",
			 path, cfg->http_listen);
		return -EINVAL;
	}
	if (uint_key(path, "heartbeat_max_resets", cfg->heartbeat_max_resets, 1, 100, &cfg->heartbeat_max_resets_n,
		     why, whylen) ||
	    uint_key(path, "heartbeat_window", cfg->heartbeat_window, 1, 604800, &cfg->heartbeat_window_s, why,
		     whylen))
		return -EINVAL;
	if ((cfg->fence_args[0] || cfg->fence_timeout[0]) && !cfg->fence_agent[0]) {
		snprintf(why, whylen, "%s: fence_args and fence_timeout need fence_agent", path);
		return -EINVAL;
	}
	if (cfg->fence_agent[0]) {
		if (cfg->fence_agent[0] != '/' || access(cfg->fence_agent, X_OK) != 0) {
			snprintf(why, whylen, "%s: fence_agent %s: not an absolute path to an executable", path,
				 cfg->fence_agent);
			return -EINVAL;
		}
		char e[200];
		if (pvfence_args_check(cfg->fence_args, e, sizeof(e)) != 0) {
			snprintf(why, whylen, "%s: %s", path, e);
			return -EINVAL;
		}
	}
	return 0;
}
