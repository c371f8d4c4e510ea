/*
 * pvha's maintenance commands: guest migrate, node drain / resume, cluster
 * rebalance and cluster roll. Each asks this node's pvhad (proto/api.proto)
 * and then follows what happens by polling it, printing progress, until the
 * work is done, has failed, or its --wait deadline passes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hook.h"
#include "mig_verdict.h"
#include "parse.h"
#include "pvha_cli.h"

#define POLL_NS 100000000L
#define MIGRATE_WAIT_S 600
#define DRAIN_WAIT_S 1800
#define ROLL_BACK_WAIT_S 1800
#define FIGURES_GRACE_S 3.0
#define MODE_GRACE_S 5.0     /* a drain's mode reaches this node's pvhad in message order */ /* the source's last figures follow the migrate-done event */

static void tick(void)
{
	const struct timespec t = { 0, POLL_NS };
	nanosleep(&t, NULL);
}

static double mib(uint64_t b)
{
	return (double)b / 1048576.0;
}

/* ---- guest migrate ---------------------------------------------------------- */

static void print_migration_json(const char *guest, const char *from, const char *to, bool ok,
				 const Pvha__MigrationInfo *m, const char *error)
{
	printf("{\"guest\":");
	json_str(guest);
	json_field("from", from);
	json_field("to", to);
	printf(",\"ok\":%s", ok ? "true" : "false");
	if (m)
		printf(",\"rounds\":%u,\"bytes_sent\":%llu,\"downtime_us\":%llu,\"total_ms\":%llu", m->round,
		       (unsigned long long)m->bytes_sent, (unsigned long long)m->downtime_us,
		       (unsigned long long)m->total_ms);
	json_field("error", error ? error : "");
	printf("}\n");
}

/*
 * Follows guest's migration from `from` to `to` until it runs on to (0), it
 * runs on from again or failed (1), or wait_s passes (1). Prints a progress
 * line whenever the round or phase changes (json: one object at the end).
 */
static int follow_migration(const char *verb, const char *guest, const char *from, const char *to,
			    uint32_t migrations_before, uint64_t wait_s, bool json, bool quiet)
{
	double t0 = mono_s(), arrived = 0;
	char last[128] = "";
	struct mig_follow f = { .from = from, .to = to, .migrations_before = migrations_before };
	for (;;) {
		Pvha__ApiReply *rep;
		if (api_op(PVHA__API_REQUEST__OP__GUEST_SHOW, guest, &rep))
			return 1;
		const Pvha__GuestInfo *g = reply_guest(rep);
		if (!g) {
			pvha__api_reply__free_unpacked(rep, NULL);
			return 1;
		}
		const Pvha__MigrationInfo *m = g->migration;
		struct mig_look look = {
			.state = g->state, .owner = g->owner, .last_step = g->last_step,
			.migrations = g->migrations, .has_migration = m != NULL,
			.source = m ? m->source : "", .target = m ? m->target : "",
			.phase = m ? m->phase : "", .error = m ? m->error : "",
		};
		bool ours = mig_look_ours(&f, &look);
		if (ours && !quiet && !json) {
			char now[128];
			snprintf(now, sizeof(now), "%s %u", m->phase, m->round);
			if (strcmp(now, last)) {
				snprintf(last, sizeof(last), "%s", now);
				printf("%s: %-8s round %-3u %8.1f MiB sent  %7.1f MiB/s  %llu pages left\n", guest,
				       m->phase, m->round, mib(m->bytes_sent), mib(m->rate_bps),
				       (unsigned long long)m->pages_left);
				fflush(stdout);
			}
		}
		int rc = -1;
		const char *why;
		enum mig_verdict v = mig_verdict(&f, &look, &why);
		switch (v) {
		case MIG_ARRIVED:
			if (!arrived)
				arrived = mono_s();
			/* wait a little for the source's final figures */
			if ((ours && !strcmp(m->phase, "done")) || mono_s() - arrived > FIGURES_GRACE_S) {
				bool figures = ours && !strcmp(m->phase, "done");
				if (json)
					print_migration_json(guest, from, to, true, figures ? m : NULL, NULL);
				else if (figures)
					printf("%s: migrated %s -> %s in %llu ms; downtime %.2f ms (%u rounds, %.1f MiB)%s%s\n",
					       guest, from, to, (unsigned long long)m->total_ms,
					       (double)m->downtime_us / 1000.0, m->round, mib(m->bytes_sent),
					       m->error[0] ? "; " : "", m->error);
				else
					printf("%s: runs on %s\n", guest, to);
				rc = 0;
			}
			break;
		case MIG_FAILED:
			if (json)
				print_migration_json(guest, from, to, false, ours ? m : NULL, why);
			else
				fprintf(stderr, "pvha %s: %s: migration to %s failed: %s; it runs on %s\n", verb, guest, to,
					why, or_dash(g->owner));
			rc = 1;
			break;
		case MIG_RECOVERED_ELSEWHERE:
			if (json)
				print_migration_json(guest, from, to, false, NULL, "recovered elsewhere");
			else
				fprintf(stderr, "pvha %s: %s: migration to %s did not complete (a node failed): "
					"it was recovered and runs on %s\n", verb, guest, to, g->owner);
			rc = 1;
			break;
		case MIG_ENDED:
			fprintf(stderr, "pvha %s: %s: %s%s%s\n", verb, guest, g->state, g->reason[0] ? ": " : "",
				g->reason);
			rc = 1;
			break;
		case MIG_WAIT:
			break;
		}
		if (v == MIG_WAIT && mono_s() - t0 >= (double)wait_s) {
			fprintf(stderr, "pvha %s: %s: timed out after %llu s: %s on %s\n", verb, guest,
				(unsigned long long)wait_s, g->state, or_dash(g->owner));
			rc = 1;
		}
		pvha__api_reply__free_unpacked(rep, NULL);
		if (rc >= 0)
			return rc;
		tick();
	}
}

/* guest migrate G NODE [--downtime MS] [--wait S] [--no-wait]. */
int cmd_guest_migrate(const struct command *c, int argc, char **argv, bool json)
{
	const char *guest = NULL, *node = NULL, *down = NULL, *wait_str = NULL;
	bool no_wait = false;
	struct opt opts[] = { { "--downtime", &down, NULL }, { "--wait", &wait_str, NULL },
			      { "--no-wait", NULL, &no_wait }, { NULL, NULL, NULL } };
	int64_t down_ms = 0, wait_s = MIGRATE_WAIT_S;
	int rc;
	/* two positional words: G NODE */
	if (argc < 2 || argv[0][0] == '-' || argv[1][0] == '-')
		return usage_err(c, "want G NODE");
	guest = argv[0];
	node = argv[1];
	if ((rc = args_parse(c, argc - 2, argv + 2, opts, NULL, NULL)) || (rc = guest_arg(c, "G", guest)) ||
	    (rc = guest_arg(c, "NODE", node)))
		return rc;
	if (down && (rc = num_arg(c, "--downtime", down, 1, 60000, &down_ms)))
		return rc;
	if (wait_str && (rc = num_arg(c, "--wait", wait_str, 1, 86400, &wait_s)))
		return rc;
	if (no_wait && wait_str)
		return usage_err(c, "--wait and --no-wait together");

	Pvha__ApiReply *rep;
	if ((rc = api_op(PVHA__API_REQUEST__OP__GUEST_SHOW, guest, &rep)))
		return rc;
	const Pvha__GuestInfo *g = reply_guest(rep);
	char from[64];
	snprintf(from, sizeof(from), "%s", g ? g->owner : "");
	uint32_t before = g ? g->migrations : 0;
	pvha__api_reply__free_unpacked(rep, NULL);
	if (!g)
		return 1;

	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	req.op = PVHA__API_REQUEST__OP__GUEST_MIGRATE;
	req.guest = (char *)guest;
	req.node = (char *)node;
	req.downtime_ms = (uint32_t)down_ms;
	if ((rc = api_call(&req, &rep)))
		return rc;
	if (!json)
		printf("%s\n", rep->message[0] ? rep->message : "migration requested");
	pvha__api_reply__free_unpacked(rep, NULL);
	if (no_wait)
		return 0;
	return follow_migration("guest migrate", guest, from, node, before, (uint64_t)wait_s, json, false);
}

/* ---- node drain / resume ------------------------------------------------------ */

/* The node's mode and guest count, from NODE_LIST. Returns 0, or 1 after a message. */
static int node_state(const char *node, char *mode, size_t len, unsigned *guests, bool *online)
{
	Pvha__ApiReply *rep;
	if (api_op(PVHA__API_REQUEST__OP__NODE_LIST, NULL, &rep))
		return 1;
	int rc = 1;
	for (size_t i = 0; rep->status && i < rep->status->n_nodes; i++) {
		const Pvha__NodeInfo *n = rep->status->nodes[i];
		if (strcmp(n->name, node))
			continue;
		snprintf(mode, len, "%s", n->mode);
		*guests = n->guests;
		*online = n->member;
		rc = 0;
	}
	if (rc)
		fprintf(stderr, "pvha: no node '%s'\n", node);
	pvha__api_reply__free_unpacked(rep, NULL);
	return rc;
}

static void print_plan_moves(const Pvha__RebalancePlan *p)
{
	for (size_t i = 0; i < p->n_moves; i++)
		printf("  %-16s %s -> %s\n", p->moves[i]->guest, p->moves[i]->from, p->moves[i]->to);
	for (size_t i = 0; i < p->n_unplaceable; i++)
		printf("  %-16s has no place\n", p->unplaceable[i]);
}

/* Waits until node is in maintenance, printing how many guests are left. */
static int drain_wait(const char *verb, const char *node, uint64_t wait_s, bool json)
{
	double t0 = mono_s();
	unsigned left = ~0u;
	bool seen = false;
	for (;;) {
		char mode[32];
		unsigned guests;
		bool online;
		if (node_state(node, mode, sizeof(mode), &guests, &online))
			return 1;
		/* the mode reaches this node's pvhad in the cluster's message order,
		 * a moment after its answer to the drain */
		if (!seen && !strcmp(mode, "active") && mono_s() - t0 < MODE_GRACE_S) {
			tick();
			continue;
		}
		seen = true;
		if (!strcmp(mode, "maintenance")) {
			if (json)
				printf("{\"node\":\"%s\",\"mode\":\"maintenance\"}\n", node);
			else
				printf("%s: drained, in maintenance\n", node);
			return 0;
		}
		if (strcmp(mode, "draining")) {
			fprintf(stderr, "pvha %s: %s is %s: the drain was ended\n", verb, node, mode);
			return 1;
		}
		if (guests != left && !json) {
			printf("%s: draining, %u guest(s) left\n", node, guests);
			fflush(stdout);
		}
		left = guests;
		if (mono_s() - t0 >= (double)wait_s) {
			fprintf(stderr, "pvha %s: %s: timed out after %llu s with %u guest(s) left\n", verb, node,
				(unsigned long long)wait_s, guests);
			return 1;
		}
		tick();
	}
}

static int drain(const struct command *c, const char *node, bool force, bool no_wait, uint64_t wait_s, bool json)
{
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep = NULL;
	req.op = PVHA__API_REQUEST__OP__NODE_DRAIN;
	req.node = (char *)node;
	req.force = force;
	int rc = api_call(&req, &rep);
	(void)c;
	if (rc)
		return rc; /* api_call printed the refusal (no place for some guest, say) */
	if (!json) {
		if (rep->message[0])
			printf("%s\n", rep->message);
		else if (rep->plan) {
			printf("%s: draining: %zu guest(s) to move\n", node, rep->plan->n_moves + rep->plan->n_unplaceable);
			print_plan_moves(rep->plan);
		}
	}
	pvha__api_reply__free_unpacked(rep, NULL);
	if (no_wait)
		return 0;
	return drain_wait("node drain", node, wait_s, json);
}

/* node drain N [--force] [--wait S] [--no-wait]. */
int cmd_node_drain(const struct command *c, int argc, char **argv, bool json)
{
	const char *node = NULL, *wait_str = NULL;
	bool force = false, no_wait = false;
	struct opt opts[] = { { "--force", NULL, &force }, { "--wait", &wait_str, NULL },
			      { "--no-wait", NULL, &no_wait }, { NULL, NULL, NULL } };
	int64_t wait_s = DRAIN_WAIT_S;
	int rc;
	if ((rc = args_parse(c, argc, argv, opts, "N", &node)) || (rc = guest_arg(c, "N", node)))
		return rc;
	if (wait_str && (rc = num_arg(c, "--wait", wait_str, 1, 86400, &wait_s)))
		return rc;
	if (no_wait && wait_str)
		return usage_err(c, "--wait and --no-wait together");
	return drain(c, node, force, no_wait, (uint64_t)wait_s, json);
}

static int resume(const char *node, bool json)
{
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	req.op = PVHA__API_REQUEST__OP__NODE_RESUME;
	req.node = (char *)node;
	int rc = api_call(&req, &rep);
	if (rc)
		return rc;
	if (!json)
		printf("%s\n", rep->message[0] ? rep->message : "resumed: active");
	pvha__api_reply__free_unpacked(rep, NULL);
	return 0;
}

/* node resume N. */
int cmd_node_resume(const struct command *c, int argc, char **argv, bool json)
{
	const char *node = NULL;
	int rc;
	if ((rc = args_parse(c, argc, argv, NULL, "N", &node)) || (rc = guest_arg(c, "N", node)))
		return rc;
	rc = resume(node, json);
	if (!rc && json)
		printf("{\"node\":\"%s\",\"mode\":\"active\"}\n", node);
	return rc;
}

/* ---- cluster rebalance ---------------------------------------------------------- */

/* Waits until every planned guest runs on its target (or gave up). */
static int moves_wait(const Pvha__RebalancePlan *p, uint64_t wait_s)
{
	int failed = 0;
	for (size_t i = 0; i < p->n_moves; i++) {
		const Pvha__PlannedMove *m = p->moves[i];
		/* started by the leader: no count from before it to compare */
		if (follow_migration("cluster rebalance", m->guest, m->from, m->to, UINT32_MAX, wait_s, false, true))
			failed++;
	}
	return failed ? 1 : 0;
}

/* cluster rebalance [--dry-run] [--threshold X] [--no-wait]. */
int cmd_cluster_rebalance(const struct command *c, int argc, char **argv, bool json)
{
	const char *thr = NULL;
	bool dry = false, no_wait = false;
	struct opt opts[] = { { "--dry-run", NULL, &dry }, { "--threshold", &thr, NULL },
			      { "--no-wait", NULL, &no_wait }, { NULL, NULL, NULL } };
	int rc;
	double threshold = 0;
	if ((rc = args_parse(c, argc, argv, opts, NULL, NULL)))
		return rc;
	if (thr) {
		char *end;
		threshold = strtod(thr, &end);
		if (*end || end == thr || !(threshold >= 0.01 && threshold <= 0.99))
			return usage_err(c, "--threshold '%s': want a fraction from 0.01 to 0.99", thr);
	}
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	req.op = PVHA__API_REQUEST__OP__CLUSTER_REBALANCE;
	req.dry_run = dry;
	req.threshold = threshold;
	if ((rc = api_call(&req, &rep)))
		return rc;
	const Pvha__RebalancePlan *p = rep->plan;
	if (!p) {
		fprintf(stderr, "pvha cluster rebalance: pvhad sent no plan\n");
		pvha__api_reply__free_unpacked(rep, NULL);
		return 1;
	}
	if (json) {
		printf("{\"dry_run\":%s,\"threshold\":%.4f,\"before\":{\"mem\":%.4f,\"cpu\":%.4f,\"score\":%.4f},"
		       "\"after\":{\"mem\":%.4f,\"cpu\":%.4f,\"score\":%.4f},\"balanced\":%s,\"moves\":[",
		       dry ? "true" : "false", p->threshold, p->mem_before, p->cpu_before, p->score_before,
		       p->mem_after, p->cpu_after, p->score_after, p->balanced ? "true" : "false");
		for (size_t i = 0; i < p->n_moves; i++) {
			printf("%s{\"guest\":", i ? "," : "");
			json_str(p->moves[i]->guest);
			json_field("from", p->moves[i]->from);
			json_field("to", p->moves[i]->to);
			printf(",\"gain\":%.4f}", p->moves[i]->gain);
		}
		printf("]}\n");
	} else {
		printf("imbalance before: %.3f (memory %.3f, cpu %.3f); threshold %.3f\n", p->score_before,
		       p->mem_before, p->cpu_before, p->threshold);
		if (!p->n_moves) {
			printf("no migration: %s\n", p->score_before <= p->threshold ? "balanced within the threshold"
										    : "no move would lower the imbalance");
		} else {
			printf("imbalance after:  %.3f (memory %.3f, cpu %.3f)%s\n", p->score_after, p->mem_after,
			       p->cpu_after, p->balanced ? "" : " - the goal is out of reach");
			printf("%zu migration(s)%s:\n", p->n_moves, dry ? " (dry run: none started)" : "");
			print_plan_moves(p);
		}
	}
	rc = 0;
	if (!dry && !no_wait && p->n_moves)
		rc = moves_wait(p, MIGRATE_WAIT_S);
	if (!rc && !dry && !no_wait && p->n_moves && !json)
		printf("rebalanced: %zu guest(s) moved\n", p->n_moves);
	pvha__api_reply__free_unpacked(rep, NULL);
	return rc;
}

/* ---- cluster roll ------------------------------------------------------------------ */

/* Waits until node is a member again (after its service). */
static int back_wait(const char *node, uint64_t wait_s)
{
	double t0 = mono_s();
	bool said = false;
	for (;;) {
		char mode[32];
		unsigned guests;
		bool online;
		if (node_state(node, mode, sizeof(mode), &guests, &online))
			return 1;
		if (online)
			return 0;
		if (!said) {
			printf("%s: waiting for it to come back\n", node);
			fflush(stdout);
			said = true;
		}
		if (mono_s() - t0 >= (double)wait_s) {
			fprintf(stderr, "pvha cluster roll: %s did not come back in %llu s; it stays in maintenance\n",
				node, (unsigned long long)wait_s);
			return 1;
		}
		tick();
	}
}

/* cluster roll [--hook CMD | --wait-operator] [--nodes N,N...]. */
int cmd_cluster_roll(const struct command *c, int argc, char **argv, bool json)
{
	const char *hook = NULL, *list = NULL;
	bool operator = false;
	struct opt opts[] = { { "--hook", &hook, NULL }, { "--wait-operator", NULL, &operator},
			      { "--nodes", &list, NULL }, { NULL, NULL, NULL } };
	int rc;
	if ((rc = args_parse(c, argc, argv, opts, NULL, NULL)))
		return rc;
	if (hook && operator)
		return usage_err(c, "--hook and --wait-operator together");
	if (!hook && !operator)
		return usage_err(c, "say what services each node: --hook CMD or --wait-operator");
	if (json)
		return usage_err(c, "no --json: it prints progress for people");

	char names[32][64];
	size_t n = 0;
	if (list) {
		char buf[1024];
		snprintf(buf, sizeof(buf), "%s", list);
		for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (n == 32 || (rc = guest_arg(c, "--nodes", t)))
				return rc ? rc : usage_err(c, "--nodes: at most 32");
			snprintf(names[n++], sizeof(names[0]), "%s", t);
		}
	} else {
		Pvha__ApiReply *rep;
		if (api_op(PVHA__API_REQUEST__OP__NODE_LIST, NULL, &rep))
			return 1;
		for (size_t i = 0; rep->status && i < rep->status->n_nodes && n < 32; i++) {
			const char *name = rep->status->nodes[i]->name;
			/* a name the cluster reports is not trusted more than one typed */
			if (!pv_name_ok(name)) {
				fprintf(stderr, "pvha cluster roll: the cluster lists a node with an invalid name "
						"('%.64s'); nothing was touched\n", name);
				pvha__api_reply__free_unpacked(rep, NULL);
				return 1;
			}
			snprintf(names[n++], sizeof(names[0]), "%s", name);
		}
		pvha__api_reply__free_unpacked(rep, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		printf("== %s (%zu of %zu)\n", names[i], i + 1, n);
		fflush(stdout);
		if ((rc = drain(c, names[i], false, false, DRAIN_WAIT_S, false))) {
			fprintf(stderr, "pvha cluster roll: stopped at %s: its drain failed; nothing else was touched\n",
				names[i]);
			return rc;
		}
		if (hook) {
			printf("%s: running the hook\n", names[i]);
			fflush(stdout);
			int st = 0, err = pv_hook_run(hook, names[i], &st);
			if (err) {
				fprintf(stderr, "pvha cluster roll: cannot run the hook for %s: %s; it stays in maintenance\n",
					names[i], strerror(-err));
				return 1;
			}
			if (st != 0) {
				fprintf(stderr, "pvha cluster roll: the hook failed on %s (status %d); it stays in maintenance\n",
					names[i], st);
				return 1;
			}
		} else {
			printf("%s: in maintenance; service it, then press Enter to resume it\n", names[i]);
			fflush(stdout);
			int ch;
			while ((ch = getchar()) != '\n' && ch != EOF)
				;
			if (ch == EOF) {
				fprintf(stderr, "pvha cluster roll: no operator (end of input); %s stays in maintenance\n",
					names[i]);
				return 1;
			}
		}
		if ((rc = back_wait(names[i], ROLL_BACK_WAIT_S)) || (rc = resume(names[i], false)))
			return rc;
	}
	printf("rolled: %zu node(s) drained, serviced and resumed\n", n);
	return 0;
}
