/*
 * pvhad's configuration file: `key = value` lines, `#` comments. Unknown keys
 * and missing required ones are errors that name the line. The lab writes
 * one per node (docs/lab.md lists the keys).
 */
#ifndef PVHA_AGENT_CONFIG_H
#define PVHA_AGENT_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct agent_config {
	char node_name[64];      /* required */
	char address[64];        /* required: what a fence of this node blocklists */
	char ceph_conf[512];     /* required */
	char ceph_user[64];      /* default "admin" */
	char ceph_keyring[512];  /* optional */
	char pool[64];           /* default "pvha" */
	char state_dir[512];     /* optional */
	char log_file[512];      /* optional: append log lines here instead of stderr */
	char vmm[512];           /* optional: the pvha-vmm program */
	char run_dir[512];       /* default "/run/pvha": the incarnation lives here */
	char fence_agent[512];   /* optional: a fence-agents program, run after the blocklist */
	char fence_args[1024];   /* its key=value arguments, %n = node name, %a = address */
	char fence_timeout[16];  /* seconds (default 30) */
	int fence_timeout_s;     /* parsed */
	char guest_mem[32];      /* optional: memory offered to guests (e.g. 512M); default: the host's */
	char guest_cpus[16];     /* optional: vCPUs offered to guests; default: the host's */
	char rebalance[16];      /* optional: "off" (default) or the imbalance threshold, 0.01..0.99 */
	char guest_interface[16]; /* optional: the interface that carries guests' addresses */
	char heartbeat_max_resets[16]; /* optional: heartbeat restarts in place before a move, 1..100 (default 3) */
	char heartbeat_window[16];     /* optional: ... counted over this many seconds, 1..604800 (default 3600) */
	uint64_t guest_mem_bytes; /* parsed; 0: the host's */
	uint32_t guest_cpus_n;    /* parsed; 0: the host's */
	double rebalance_threshold; /* parsed; 0: off */
	uint32_t heartbeat_max_resets_n; /* parsed; 0: the default */
	uint32_t heartbeat_window_s;     /* parsed; 0: the default */
	char http_listen[64];    /* "ADDR:PORT" (IPv4) of metrics and dashboard, or "off"; default 127.0.0.1:9639 */
	bool http_on;            /* parsed: http_listen is not "off" */
	struct sockaddr_in http_addr; /* parsed */
};

#define AGENT_HTTP_LISTEN_DEFAULT "127.0.0.1:9639"

/* Parses http_listen: "off" (*on false) or "A.B.C.D:PORT" (PORT 1..65535).
 * Returns 0 or -EINVAL. */
int agent_config_listen(const char *s, bool *on, struct sockaddr_in *addr);

/* Reads path into cfg. Returns 0, or -errno with a one-line reason in why. */
int agent_config_load(const char *path, struct agent_config *cfg, char *why, size_t whylen);

#endif
