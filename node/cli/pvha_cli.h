/*
 * The pvha CLI's shared parts (pvha_main.c), for the command files:
 * pvha_main.c (cluster, node, guest, events, vmm) and pvha_maint.c (migrate,
 * drain, resume, rebalance, roll) and pvha_init.c (cluster init, node join).
 */
#ifndef PVHA_CLI_H
#define PVHA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "proto/api.pb-c.h"

/* One command: "group verb ARGS", or "group ARGS" when verb is NULL. */
struct command {
	const char *group;
	const char *verb;
	int (*run)(const struct command *c, int argc, char **argv, bool json);
	Pvha__ApiRequest__Op op;  /* what it asks pvhad (vmm: unused) */
	const char *args;         /* synopsis after the command words, for --help */
	const char *help;
};

/* One option of a command: a flag (arg NULL, flag set) or one that takes a value. */
struct opt {
	const char *name;   /* "--mem"; NULL ends a table */
	const char **arg;   /* its value goes here (NULL: not given) */
	bool *flag;
};

/* Prints "pvha CMD: message" to stderr and returns 2, the exit code of bad usage. */
int usage_err(const struct command *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sorts argv into opts and at most one positional word (posname: exactly
 * one). Returns 0, or 2 after a message. */
int args_parse(const struct command *c, int argc, char **argv, const struct opt *opts, const char *posname,
	       const char **pos);

/* A whole number in lo..hi for option name. Returns 0 or 2; *out is the
 * number, or 0 when it returns 2. */
int num_arg(const struct command *c, const char *name, const char *s, int64_t lo, int64_t hi, int64_t *out);

/* A guest or node name as the API takes it. Returns 0 or 2 naming what. */
int guest_arg(const struct command *c, const char *what, const char *s);

/* One request to this node's pvhad. Returns 0 with *reply (free it), or 1
 * after printing why it failed or was refused. */
int api_call(Pvha__ApiRequest *req, Pvha__ApiReply **reply);
int api_op(Pvha__ApiRequest__Op op, const char *guest, Pvha__ApiReply **reply);

/* The one guest of a GUEST_SHOW reply, or NULL after saying so. */
const Pvha__GuestInfo *reply_guest(const Pvha__ApiReply *rep);

/* JSON output helpers: a quoted string; ,"key":"value". */
void json_str(const char *s);
void json_field(const char *key, const char *s);

/* "-" for an empty string. */
const char *or_dash(const char *s);

/* CLOCK_MONOTONIC in seconds. */
double mono_s(void);

/* pvha_maint.c */
int cmd_guest_migrate(const struct command *c, int argc, char **argv, bool json);
int cmd_node_drain(const struct command *c, int argc, char **argv, bool json);
int cmd_node_resume(const struct command *c, int argc, char **argv, bool json);
int cmd_cluster_rebalance(const struct command *c, int argc, char **argv, bool json);
int cmd_cluster_roll(const struct command *c, int argc, char **argv, bool json);

/* pvha_init.c */
int cmd_cluster_init(const struct command *c, int argc, char **argv, bool json);
int cmd_node_join(const struct command *c, int argc, char **argv, bool json);

#endif
