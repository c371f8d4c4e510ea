/*
 * The scenario format (docs/simulator.md has the reference):
 *
 *   set KEY VALUE             timing and cluster settings
 *   node NAME [mem=SIZE] [cpus=N] [off]
 *   guest NAME [mem=SIZE] [disk=SIZE] [prio=N] [running|stopped]
 *              [anti=G] [aff=G] [soft-anti=G] [soft-aff=G] [dep=GUEST]
 *   at T COMMAND ARGS...      a fault or an operator command at T ms
 *   assert T CHECK ARGS...    a check of the state at T ms
 *   end T                     run until T ms
 *   expect-fail WHY           reproduces a known bug: the run must fail
 *   expect                    the rest of the file is the expected log
 *
 * A node argument may be @GUEST: the node whose VMM runs that guest now.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "scenario.h"
#include "sim.h"

#define MAX_ARGS 12
#define ARG_LEN 64

struct item {
	uint64_t t;
	int line;
	bool check;
	char verb[32];
	char arg[MAX_ARGS][ARG_LEN];
	int nargs;
};

struct scn {
	char *text;
	char path[256];
	struct sim_params p;
	uint64_t seed;
	double rebalance;
	struct {
		char name[16];
		uint64_t mem;
		uint32_t cpus;
		bool off;
	} nodes[SIM_MAX_NODES];
	int nnodes;
	struct {
		struct pvstore_guest spec;
		char deps[PVSTORE_GUEST_DEPS_MAX][ARG_LEN];
		unsigned ndeps;
	} guests[SIM_MAX_GUESTS];
	int nguests;
	struct item *items; /* commands and assertions */
	size_t nitems, capitems;
	uint64_t end;
	bool expect_fail;
	size_t head_len;   /* up to and with the `expect` line */
	size_t body_len;   /* up to the `expect` line */
	const char *expected;
	uint64_t liveness_ms;  /* 0: no liveness check */
	/* while running */
	struct sim *w;
	struct scn_result *res;
	uint64_t last_fault;
};

/* ---- parsing ------------------------------------------------------------------- */

static int perr(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int perr(char *err, size_t errlen, const char *path, int line, const char *fmt, ...)
{
	char m[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s:%d: %s", path, line, m);
	return -EINVAL;
}

/* "64M", "1G", "4096": bytes. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int split(char *line, char tok[][ARG_LEN], int max)
{
	int n = 0;
	for (char *s = strtok(line, " \t\r"); s && n < max; s = strtok(NULL, " \t\r")) {
		if (s[0] == '#')
			break;
		snprintf(tok[n++], ARG_LEN, "%s", s);
	}
	return n;
}

static int set_param(struct scn *s, const char *k, const char *v)
{
	uint64_t x = 0;
	bool num = parse_u64(v, &x) == 0;
	struct { const char *name; unsigned *field; } u[] = {
		{ "token", &s->p.token_ms }, { "boot", &s->p.boot_ms }, { "fence-timeout", &s->p.fence_timeout_s },
		{ "fence-delay", &s->p.fence_ms }, { "incoming-timeout", &s->p.incoming_timeout_ms },
		{ "runaway", &s->p.runaway_ms }, { "osd-timeout", &s->p.osd_timeout_ms },
		{ "mon-timeout", &s->p.mon_timeout_ms }, { "osd-map-lag", &s->p.osd_map_lag_ms },
		{ "precopy", &s->p.mig_precopy_ms }, { "agent-restart", &s->p.agent_restart_ms },
		{ "vmm-boot", &s->p.vmm_boot_ms }, { "cs-gap", &s->p.cs_gap_ms },
	};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		if (!strcmp(k, u[i].name)) {
			if (!num)
				return -EINVAL;
			*u[i].field = (unsigned)x;
			return 0;
		}
	}
	if (!strcmp(k, "fence"))
		return !strcmp(v, "power") ? (s->p.fence_power = true, 0)
		       : !strcmp(v, "storage") ? (s->p.fence_power = false, 0) : -EINVAL;
	if (!strcmp(k, "liveness"))
		return num ? (s->liveness_ms = x, 0) : -EINVAL;
	if (!strcmp(k, "cs-order"))
		return !strcmp(v, "members-first") ? (s->p.members_first = true, 0)
		       : !strcmp(v, "ring-first") ? (s->p.members_first = false, 0) : -EINVAL;
	if (!strcmp(k, "two-node"))
		return !strcmp(v, "on") ? (s->p.two_node = true, 0) : !strcmp(v, "off") ? 0 : -EINVAL;
	if (!strcmp(k, "seed"))
		return num ? (s->seed = x, 0) : -EINVAL;
	if (!strcmp(k, "rebalance")) {
		char *end;
		s->rebalance = strtod(v, &end);
		return *end || s->rebalance < 0 || s->rebalance >= 1 ? -EINVAL : 0;
	}
	return -ENOENT;
}

static int parse_guest(struct scn *s, char tok[][ARG_LEN], int n, char *err, size_t errlen, int line)
{
	if (s->nguests == SIM_MAX_GUESTS)
		return perr(err, errlen, s->path, line, "more than %d guests", SIM_MAX_GUESTS);
	if (n < 2)
		return perr(err, errlen, s->path, line, "guest needs a name");
	int gi = s->nguests;
	struct pvstore_guest *g = &s->guests[gi].spec;
	memset(&s->guests[gi], 0, sizeof(s->guests[gi]));
	snprintf(g->name, sizeof(g->name), "%s", tok[1]);
	g->mem_size = 64ull << 20;
	g->disk_size = 64ull << 20;
	g->desired = PVSTORE_DESIRED_RUNNING;
	snprintf(g->cmdline, sizeof(g->cmdline), "counter");
	/* uuids from the guest's position: readable in logs, stable */
	g->uuid[0] = 0x5e;
	g->uuid[15] = (uint8_t)(gi + 1);
	for (int i = 0; i < gi; i++)
		if (!strcmp(s->guests[i].spec.name, g->name))
			return perr(err, errlen, s->path, line, "guest %s twice", g->name);
	for (int i = 2; i < n; i++) {
		char *eq = strchr(tok[i], '=');
		const char *k = tok[i], *v = eq ? eq + 1 : "";
		if (eq)
			*eq = '\0';
		if (!strcmp(k, "running") || !strcmp(k, "stopped")) {
			g->desired = k[0] == 'r' ? PVSTORE_DESIRED_RUNNING : PVSTORE_DESIRED_STOPPED;
		} else if (!strcmp(k, "mem") || !strcmp(k, "disk")) {
			if (parse_size(v, !strcmp(k, "mem") ? &g->mem_size : &g->disk_size))
				return perr(err, errlen, s->path, line, "bad size '%s'", v);
		} else if (!strcmp(k, "prio")) {
			g->priority = atoi(v);
		} else if (!strcmp(k, "hb") || !strcmp(k, "hb-resets") || !strcmp(k, "hb-window")) {
			uint32_t *f = !strcmp(k, "hb") ? &g->heartbeat_timeout_s
				      : !strcmp(k, "hb-resets") ? &g->heartbeat_max_resets : &g->heartbeat_window_s;
			*f = (uint32_t)atoi(v);
		} else if (!strcmp(k, "anti") || !strcmp(k, "aff") || !strcmp(k, "soft-anti") || !strcmp(k, "soft-aff")) {
			if (g->n_rules == PVSTORE_GUEST_RULES_MAX)
				return perr(err, errlen, s->path, line, "more than %d rules", PVSTORE_GUEST_RULES_MAX);
			struct pvstore_rule *r = &g->rules[g->n_rules++];
			snprintf(r->group, sizeof(r->group), "%s", v);
			r->anti = strstr(k, "anti") != NULL;
			r->soft = !strncmp(k, "soft-", 5);
		} else if (!strcmp(k, "dep")) {
			if (s->guests[gi].ndeps == PVSTORE_GUEST_DEPS_MAX)
				return perr(err, errlen, s->path, line, "too many dependencies");
			snprintf(s->guests[gi].deps[s->guests[gi].ndeps++], ARG_LEN, "%s", v);
		} else {
			return perr(err, errlen, s->path, line, "unknown guest attribute '%s'", k);
		}
	}
	s->nguests++;
	return 0;
}

static const char *const commands[] = {
	"power-off", "power-on", "reboot", "partition", "heal", "isolate", "flap", "freeze", "resume",
	"agent-restart", "agent-crash", "agent-start", "vmm-kill", "vmm-crash", "vmm-term", "vmm-kill-incoming",
	"crash-loop", "heartbeat-stop", "heartbeat-hang",
	"storage-down", "storage-up", "storage-slow", "storage-cut", "storage-uncut", "mon-delay",
	"fence-mode", "guest-create", "guest-start", "guest-stop", "guest-delete", "guest-migrate",
	"guest-set", "node-drain", "node-resume", "rebalance", "status", "list", "events", NULL,
};

static const char *const checks[] = {
	"running", "stopped", "state", "fenced", "not-fenced", "leader", "mode", "event", "no-event",
	"agree", "quorate", "owner", "answer", NULL,
};

static bool in(const char *const *list, const char *w)
{
	for (; *list; list++)
		if (!strcmp(*list, w))
			return true;
	return false;
}

static int add_item(struct scn *s, uint64_t t, int line, char tok[][ARG_LEN], int first, int n, bool check)
{
	sim_grow(&s->items, s->nitems, &s->capitems, sizeof(*s->items));
	struct item *it = &s->items[s->nitems++];
	memset(it, 0, sizeof(*it));
	it->t = t;
	it->line = line;
	it->check = check;
	snprintf(it->verb, sizeof(it->verb), "%s", tok[first]);
	for (int i = first + 1; i < n; i++)
		snprintf(it->arg[it->nargs++], ARG_LEN, "%s", tok[i]);
	if (t > s->end)
		s->end = t;
	return 0;
}

int scn_parse(const char *text, const char *path, struct scn **out, char *err, size_t errlen)
{
	struct scn *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	sim_params_default(&s->p);
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->text = strdup(text);
	if (!s->text) {
		free(s);
		return -ENOMEM;
	}
	bool end_set = false;
	int line = 0, r = 0;
	for (char *p = s->text; *p && !r;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char buf[1024];
		line++;
		if (len >= sizeof(buf)) {
			r = perr(err, errlen, path, line, "line too long");
			break;
		}
		memcpy(buf, p, len);
		buf[len] = '\0';
		const char *line_start = p;
		p = nl ? nl + 1 : p + len;
		char tok[MAX_ARGS + 3][ARG_LEN];
		if (!strncmp(buf, "expect-fail", 11)) {
			s->expect_fail = true;
			continue;
		}
		int n = split(buf, tok, MAX_ARGS + 3);
		if (n == 0)
			continue;
		if (!strcmp(tok[0], "expect") && n == 1) {
			s->head_len = (size_t)(p - s->text);
			s->body_len = (size_t)(line_start - s->text);
			s->expected = p;
			break;
		}
		uint64_t t = 0;
		if (!strcmp(tok[0], "set")) {
			if (n != 3 || (r = set_param(s, tok[1], tok[2])))
				r = perr(err, errlen, path, line, "bad setting '%s'", n > 1 ? tok[1] : "");
		} else if (!strcmp(tok[0], "node")) {
			if (n < 2 || s->nnodes == SIM_MAX_NODES || strlen(tok[1]) >= 16) {
				r = perr(err, errlen, path, line, "node NAME (at most %d nodes)", SIM_MAX_NODES);
				continue;
			}
			int i = s->nnodes++;
			snprintf(s->nodes[i].name, sizeof(s->nodes[i].name), "%s", tok[1]);
			s->nodes[i].mem = 4ull << 30;
			s->nodes[i].cpus = 8;
			for (int k = 2; k < n && !r; k++) {
				uint64_t x;
				if (!strncmp(tok[k], "mem=", 4) && !parse_size(tok[k] + 4, &x))
					s->nodes[i].mem = x;
				else if (!strncmp(tok[k], "cpus=", 5) && !parse_u64(tok[k] + 5, &x))
					s->nodes[i].cpus = (uint32_t)x;
				else if (!strcmp(tok[k], "off"))
					s->nodes[i].off = true;
				else
					r = perr(err, errlen, path, line, "bad node attribute '%s'", tok[k]);
			}
		} else if (!strcmp(tok[0], "guest")) {
			r = parse_guest(s, tok, n, err, errlen, line);
		} else if (!strcmp(tok[0], "at") || !strcmp(tok[0], "assert")) {
			bool cmd = tok[0][0] == 'a' && tok[0][1] == 't' && !tok[0][2];
			if (n < 3 || parse_u64(tok[1], &t)) {
				r = perr(err, errlen, path, line, "%s T WHAT ...", tok[0]);
				continue;
			}
			if (!in(cmd ? commands : checks, tok[2])) {
				r = perr(err, errlen, path, line, "unknown %s '%s'", cmd ? "command" : "check", tok[2]);
				continue;
			}
			r = add_item(s, t, line, tok, 2, n, !cmd);
		} else if (!strcmp(tok[0], "end")) {
			if (n != 2 || parse_u64(tok[1], &t))
				r = perr(err, errlen, path, line, "end T");
			else
				s->end = t, end_set = true;
		} else {
			r = perr(err, errlen, path, line, "unknown directive '%s'", tok[0]);
		}
	}
	if (!r && s->nnodes == 0)
		r = perr(err, errlen, path, line, "no node");
	if (!r && !end_set)
		s->end += 10000;
	if (r) {
		scn_free(s);
		return r;
	}
	*out = s;
	return 0;
}

void scn_free(struct scn *s)
{
	if (!s)
		return;
	free(s->items);
	free(s->text);
	free(s);
}

const char *scn_expected(const struct scn *s)
{
	return s->expected;
}

size_t scn_head_len(const struct scn *s)
{
	return s->expected ? s->head_len : strlen(s->text);
}

size_t scn_body_len(const struct scn *s)
{
	return s->expected ? s->body_len : strlen(s->text);
}

/* ---- running: helpers ------------------------------------------------------------ */

/* A node argument: a name, or @GUEST (where its VMM runs now). -1: none. */
static int node_arg(struct sim *w, const char *a)
{
	if (a[0] == '@') {
		int gi = sim_guest_index(w, a + 1);
		struct vmm *v = gi < 0 ? NULL : sim_vmm_running(w, gi);
		return v ? v->node : -1;
	}
	return sim_node_by_name(w, a);
}

/* The node whose agent leads (the lowest such), else the first with an agent. */
static int leader_node(struct sim *w)
{
	int first = -1;
	for (int i = 0; i < w->nnodes; i++) {
		struct agent_ctx *c = w->nodes[i].agent_up ? w->nodes[i].cur : NULL;
		if (!c)
			continue;
		if (first < 0)
			first = i;
		if (sim_agent_leader(w, i) == w->nodes[i].id)
			return i;
	}
	return first;
}

static void say(struct scn *s, const struct item *it, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void say(struct scn *s, const struct item *it, bool ok, const char *fmt, ...)
{
	char m[512], args[512] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	for (int i = 0; i < it->nargs; i++) {
		strncat(args, " ", sizeof(args) - strlen(args) - 1);
		strncat(args, it->arg[i], sizeof(args) - strlen(args) - 1);
	}
	s->res->asserts++;
	if (!ok)
		s->res->failed++;
	sim_log(s->w, "%s %s%s%s%s", ok ? "ok" : "FAIL", it->verb, args, m[0] ? ": " : "", m);
}

/* ---- commands ------------------------------------------------------------------- */

/* What an API request was, for its answer (the token). */
struct pending {
	char node[16];
	char what[256];
	int op;
};

static void api_reply(struct sim *w, const char *node, const char *what, int err, const char *msg)
{
	if (err)
		sim_log(w, "> %s %s: error %s%s%s", node, what, strerror(-err), msg[0] ? ": " : "", msg);
	else
		sim_log(w, "> %s %s: ok%s%s", node, what, msg[0] ? ": " : "", msg);
}

static void api_ev(struct sim *w, struct sim_event *e)
{
	const struct item *it = e->arg;
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__GuestSpecIn spec = PVHA__GUEST_SPEC_IN__INIT;
	Pvha__GuestSetIn set = PVHA__GUEST_SET_IN__INIT;
	Pvha__GuestRule rules[PVSTORE_GUEST_RULES_MAX], *rptr[PVSTORE_GUEST_RULES_MAX];
	char *deps[PVSTORE_GUEST_DEPS_MAX];
	static const char image[] = "\x7f" "ELF sim guest";
	char msg[512] = "", what[256];
	req.version = 1;
	snprintf(what, sizeof(what), "%s", it->verb);
	for (int i = 0; i < it->nargs; i++) {
		strncat(what, " ", sizeof(what) - strlen(what) - 1);
		strncat(what, it->arg[i], sizeof(what) - strlen(what) - 1);
	}
	const char *v = it->verb;
	if (!strcmp(v, "guest-create")) {
		req.op = PVHA__API_REQUEST__OP__GUEST_CREATE;
		spec.name = (char *)it->arg[0];
		spec.mem_size = 64ull << 20;
		spec.disk_size = 64ull << 20;
		spec.cmdline = "counter";
		spec.image.data = (uint8_t *)image;
		spec.image.len = sizeof(image);
		for (int i = 1; i < it->nargs; i++) {
			const char *a = it->arg[i];
			uint64_t x;
			if (!strcmp(a, "start"))
				spec.start = true;
			else if (!strncmp(a, "mem=", 4) && !parse_size(a + 4, &x))
				spec.mem_size = x;
			else if (!strncmp(a, "disk=", 5) && !parse_size(a + 5, &x))
				spec.disk_size = x;
			else if (!strncmp(a, "prio=", 5))
				spec.priority = atoi(a + 5);
			else if (!strncmp(a, "hb=", 3))
				spec.heartbeat_timeout_s = (uint32_t)atoi(a + 3);
			else if (!strncmp(a, "dep=", 4) && spec.n_depends_on < PVSTORE_GUEST_DEPS_MAX)
				deps[spec.n_depends_on++] = (char *)a + 4;
			else if (strchr(a, '=') && spec.n_rules < PVSTORE_GUEST_RULES_MAX) {
				Pvha__GuestRule *r = &rules[spec.n_rules];
				pvha__guest_rule__init(r);
				r->group = strchr(a, '=') + 1;
				r->anti = strstr(a, "anti") == a || strstr(a, "soft-anti") == a;
				r->soft = !strncmp(a, "soft-", 5);
				rptr[spec.n_rules++] = r;
			}
		}
		spec.rules = rptr;
		spec.depends_on = deps;
		req.spec = &spec;
	} else if (!strcmp(v, "guest-start") || !strcmp(v, "guest-stop") || !strcmp(v, "guest-delete")) {
		req.op = !strcmp(v, "guest-start") ? PVHA__API_REQUEST__OP__GUEST_START
			 : !strcmp(v, "guest-stop") ? PVHA__API_REQUEST__OP__GUEST_STOP : PVHA__API_REQUEST__OP__GUEST_DELETE;
		req.guest = (char *)it->arg[0];
		req.force = it->nargs > 1 && !strcmp(it->arg[1], "force");
	} else if (!strcmp(v, "guest-migrate")) {
		req.op = PVHA__API_REQUEST__OP__GUEST_MIGRATE;
		req.guest = (char *)it->arg[0];
		req.node = it->nargs > 1 ? (char *)it->arg[1] : "";
	} else if (!strcmp(v, "guest-set")) {
		req.op = PVHA__API_REQUEST__OP__GUEST_SET;
		req.guest = (char *)it->arg[0];
		for (int i = 1; i < it->nargs; i++)
			if (!strncmp(it->arg[i], "prio=", 5))
				set.set_priority = true, set.priority = atoi(it->arg[i] + 5);
			else if (!strncmp(it->arg[i], "hb=", 3))
				set.set_heartbeat_timeout = true,
				set.heartbeat_timeout_s = (uint32_t)atoi(it->arg[i] + 3);
		req.set = &set;
	} else if (!strcmp(v, "node-drain") || !strcmp(v, "node-resume")) {
		req.op = !strcmp(v, "node-drain") ? PVHA__API_REQUEST__OP__NODE_DRAIN : PVHA__API_REQUEST__OP__NODE_RESUME;
		req.node = (char *)it->arg[0];
		req.force = it->nargs > 1 && !strcmp(it->arg[1], "force");
	} else if (!strcmp(v, "rebalance")) {
		req.op = PVHA__API_REQUEST__OP__CLUSTER_REBALANCE;
	} else if (!strcmp(v, "status")) {
		req.op = PVHA__API_REQUEST__OP__CLUSTER_STATUS;
	} else if (!strcmp(v, "list")) {
		req.op = PVHA__API_REQUEST__OP__GUEST_LIST;
	}
	struct pending *pd = calloc(1, sizeof(*pd));
	if (!pd)
		abort();
	snprintf(pd->node, sizeof(pd->node), "%s", w->nodes[e->node].name);
	snprintf(pd->what, sizeof(pd->what), "%s", what);
	pd->op = req.op;
	Pvha__ApiReply *rep = NULL, failed = PVHA__API_REPLY__INIT;
	int err = sim_api(w, e->node, &req, pd, msg, sizeof(msg), &rep);
	if (err == -EINPROGRESS)
		return; /* sim_api_answer prints it */
	if (err) {
		rep = &failed;
		rep->error = err;
	}
	sim_api_answer(w, pd, rep, msg);
}

void sim_api_answer(struct sim *w, void *token, Pvha__ApiReply *rep, const char *msg_in)
{
	struct pending *pd = token;
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", msg_in ? msg_in : "");
	int err = rep ? rep->error : -EIO;
	if (!err && rep && pd->op == PVHA__API_REQUEST__OP__GUEST_LIST) {
		size_t k = strlen(msg);
		if (k) /* the agent's word first (a node without quorum says so) */
			k += (size_t)snprintf(msg + k, sizeof(msg) - k, "; ");
		for (size_t i = 0; i < rep->n_guests && k < sizeof(msg) - 80; i++)
			k += (size_t)snprintf(msg + k, sizeof(msg) - k, "%s%s %s%s%s", i ? ", " : "", rep->guests[i]->name,
					      rep->guests[i]->state, rep->guests[i]->owner[0] ? " on " : "",
					      rep->guests[i]->owner);
	}
	if (!err && rep && pd->op == PVHA__API_REQUEST__OP__CLUSTER_STATUS && rep->status)
		snprintf(msg, sizeof(msg), "quorate %d leader %s", rep->status->quorate, rep->status->leader_name);
	api_reply(w, pd->node, pd->what, err, msg);
	free(pd);
}

static void flap_ev(struct sim *w, struct sim_event *e);

static void do_command(struct scn *s, const struct item *it)
{
	struct sim *w = s->w;
	const char *v = it->verb;
	char line[512] = "";
	for (int i = 0; i < it->nargs; i++) {
		strncat(line, " ", sizeof(line) - strlen(line) - 1);
		strncat(line, it->arg[i], sizeof(line) - strlen(line) - 1);
	}
	sim_log(w, "# %s%s", v, line);
	int n = it->nargs ? node_arg(w, it->arg[0]) : -1;
	int gi = it->nargs ? sim_guest_index(w, it->arg[0]) : -1;
	struct vmm *vm = gi >= 0 ? sim_vmm_running(w, gi) : NULL;
	bool fault = true;
	if (!strcmp(v, "power-off") || !strcmp(v, "power-on") || !strcmp(v, "reboot")) {
		if (n < 0)
			goto bad_node;
		if (strcmp(v, "power-on"))
			sim_power_off(w, n);
		if (strcmp(v, "power-off"))
			sim_power_on(w, n);
	} else if (!strcmp(v, "partition") || !strcmp(v, "heal") || !strcmp(v, "isolate")) {
		int label[SIM_MAX_NODES] = { 0 }, group = 1;
		if (!strcmp(v, "isolate")) {
			if (n < 0)
				goto bad_node;
			label[n] = 1;
		}
		for (int i = 0; !strcmp(v, "partition") && i < it->nargs; i++) {
			if (!strcmp(it->arg[i], "|")) {
				group++;
				continue;
			}
			int k = node_arg(w, it->arg[i]);
			if (k < 0)
				goto bad_node;
			label[k] = group;
		}
		sim_partition(w, label);
	} else if (!strcmp(v, "flap")) {
		/* flap NODE PERIOD COUNT: cut off and back every PERIOD ms, COUNT times */
		if (n < 0 || it->nargs < 3)
			goto bad_node;
		unsigned period = (unsigned)atoi(it->arg[1]), count = (unsigned)atoi(it->arg[2]);
		for (unsigned k = 0; k < 2 * count; k++) {
			struct sim_event *e = sim_at(w, w->now + k * period, flap_ev);
			e->u = (uint64_t)n;
			e->v = k % 2 == 0;
		}
	} else if (!strcmp(v, "freeze") || !strcmp(v, "resume")) {
		if (n < 0)
			goto bad_node;
		sim_agent_freeze(w, n, !strcmp(v, "freeze"));
	} else if (!strcmp(v, "agent-restart")) {
		if (n < 0)
			goto bad_node;
		sim_agent_restart(w, n);
	} else if (!strcmp(v, "agent-crash")) {
		if (n < 0)
			goto bad_node;
		sim_agent_crash(w, n);
	} else if (!strcmp(v, "agent-start")) {
		if (n < 0)
			goto bad_node;
		sim_agent_start(w, n);
	} else if (!strcmp(v, "vmm-kill") || !strcmp(v, "vmm-crash") || !strcmp(v, "vmm-term")) {
		if (!vm) {
			sim_log(w, "# (no running VMM of %s)", it->nargs ? it->arg[0] : "?");
			return;
		}
		if (!strcmp(v, "vmm-crash"))
			vmm_crash(w, vm);
		else
			vmm_kill_fake(w, vm, !strcmp(v, "vmm-kill"));
	} else if (!strcmp(v, "vmm-kill-incoming")) {
		struct vmm *in = gi >= 0 ? sim_vmm_incoming(w, gi) : NULL;
		if (!in) {
			sim_log(w, "# (no incoming VMM of %s)", it->nargs ? it->arg[0] : "?");
			return;
		}
		vmm_kill_fake(w, in, true);
	} else if (!strcmp(v, "crash-loop")) {
		/* crash-loop GUEST PERIOD COUNT: its VMM crashes every PERIOD ms */
		if (gi < 0 || it->nargs < 3)
			goto bad_node;
		sim_crash_loop(w, gi, (unsigned)atoi(it->arg[1]), (unsigned)atoi(it->arg[2]));
	} else if (!strcmp(v, "heartbeat-stop")) {
		/* heartbeat-stop GUEST: its running VMM goes on running but sends no more heartbeats */
		if (!vm) {
			sim_log(w, "# (no running VMM of %s)", it->nargs ? it->arg[0] : "?");
			return;
		}
		vmm_heartbeat_stop(w, vm);
	} else if (!strcmp(v, "heartbeat-hang")) {
		/* heartbeat-hang GUEST MS|off: every VMM of GUEST started from now on
		 * stops its heartbeats MS ms after its first (0: sends none) */
		if (gi < 0 || it->nargs < 2)
			goto bad_node;
		w->hb_hang[gi] = strcmp(it->arg[1], "off") ? (uint64_t)atoll(it->arg[1]) + 1 : 0;
	} else if (!strcmp(v, "storage-down") || !strcmp(v, "storage-up")) {
		w->store.down = !strcmp(v, "storage-down");
		if (!w->store.down)
			w->store.slow_ms = 0;
	} else if (!strcmp(v, "storage-slow") || !strcmp(v, "mon-delay")) {
		unsigned ms = it->nargs ? (unsigned)atoi(it->arg[0]) : 0;
		if (!strcmp(v, "storage-slow"))
			w->store.slow_ms = ms;
		else
			w->store.mon_delay_ms = ms;
	} else if (!strcmp(v, "storage-cut") || !strcmp(v, "storage-uncut")) {
		if (n < 0)
			goto bad_node;
		sim_storage_cut(w, n, !strcmp(v, "storage-cut"));
	} else if (!strcmp(v, "fence-mode")) {
		w->fence_mode = !strcmp(it->arg[0], "fail") ? 1 : !strcmp(it->arg[0], "hang") ? 2 : 0;
	} else {
		/* an operator request through some node's API: via NODE, else the leader */
		fault = false;
		int via = leader_node(w);
		for (int i = 0; i + 1 < it->nargs; i++)
			if (!strcmp(it->arg[i], "via"))
				via = node_arg(w, it->arg[i + 1]);
		if (via < 0) {
			sim_log(w, "> %s: no agent to ask", v);
			return;
		}
		struct sim_event *e = sim_input(w, via, w->now, api_ev);
		e->arg = (void *)it;
	}
	if (fault)
		s->last_fault = w->now;
	return;
bad_node:
	sim_log(w, "# %s: bad or absent node/guest '%s' (line %d)", v, it->nargs ? it->arg[0] : "", it->line);
}

static void flap_ev(struct sim *w, struct sim_event *e)
{
	int label[SIM_MAX_NODES] = { 0 };
	label[e->u] = e->v ? 1 : 0;
	sim_log(w, "# flap: %s %s", w->nodes[e->u].name, e->v ? "cut off" : "back");
	sim_partition(w, label);
}

/* ---- checks ---------------------------------------------------------------------- */

/* The guest's info as node's agent has it (NULL: no agent, or it did not
 * answer: why in msg). */
static const Pvha__GuestInfo *guest_view_why(struct sim *w, int node, const char *name, char *msg, size_t msglen)
{
	Pvha__ApiRequest req = PVHA__API_REQUEST__INIT;
	Pvha__ApiReply *rep;
	req.version = 1;
	req.op = PVHA__API_REQUEST__OP__GUEST_SHOW;
	req.guest = (char *)name;
	snprintf(msg, msglen, "no agent");
	if (node < 0)
		return NULL;
	int err = sim_api(w, node, &req, NULL, msg, msglen, &rep);
	if (err || rep->n_guests != 1) {
		if (!msg[0])
			snprintf(msg, msglen, "%s", strerror(err ? -err : ENOENT));
		return NULL;
	}
	return rep->guests[0];
}

static const Pvha__GuestInfo *guest_view(struct sim *w, int node, const char *name)
{
	char msg[256];
	return guest_view_why(w, node, name, msg, sizeof(msg));
}

static bool bare_fenced(struct sim *w, int n)
{
	for (size_t i = 0; i < sizeof(w->store.bl) / sizeof(w->store.bl[0]); i++) {
		const struct fs_blocklist *b = &w->store.bl[i];
		if (b->used && w->now < b->expires_ms && !strcmp(b->addr, w->nodes[n].ip))
			return true;
	}
	return false;
}

static bool event_seen(struct sim *w, const char *text)
{
	const struct fs_log *logs[SIM_MAX_GUESTS + 1];
	size_t nl = 0;
	logs[nl++] = &w->store.cluster_events;
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		logs[nl++] = &w->store.guests[i].events;
	for (size_t l = 0; l < nl; l++)
		for (size_t i = 0; i < logs[l]->n; i++) {
			char line[400];
			snprintf(line, sizeof(line), "%s: %s", logs[l]->ev[i].what, logs[l]->ev[i].why);
			if (strstr(line, text))
				return true;
		}
	return false;
}

static void do_check(struct scn *s, const struct item *it)
{
	struct sim *w = s->w;
	const char *v = it->verb;
	const char *a0 = it->nargs > 0 ? it->arg[0] : "";
	const char *a1 = it->nargs > 1 ? it->arg[1] : "";
	const char *a2 = it->nargs > 2 ? it->arg[2] : "";
	int gi = sim_guest_index(w, a0);
	if (!strcmp(v, "running")) {
		struct vmm *vm = gi >= 0 ? sim_vmm_running(w, gi) : NULL;
		bool writing = vm && w->store.guests[gi].last_write_ms + 500 >= w->now;
		if (!vm || !writing) {
			say(s, it, false, "%s", !vm ? "no VMM runs it" : "its VMM does not write");
			return;
		}
		if (!strcmp(a1, "on")) {
			int n = sim_node_by_name(w, a2);
			say(s, it, vm->node == n, "it runs on %s", w->nodes[vm->node].name);
			return;
		}
		say(s, it, true, "on %s", w->nodes[vm->node].name);
	} else if (!strcmp(v, "stopped")) {
		int live = 0;
		for (size_t i = 0; i < w->nvmms; i++)
			live += w->vmms[i].used && w->vmms[i].gi == gi && w->vmms[i].state != VMM_DEAD;
		say(s, it, gi >= 0 && live == 0, "%d VMM(s) alive", live);
	} else if (!strcmp(v, "answer")) {
		/* answer G STATE via N: N's answer about G is STATE, or N says it
		 * cannot answer (it has no view yet); never a wrong one */
		int n = leader_node(w);
		for (int i = 2; i + 1 < it->nargs; i++)
			if (!strcmp(it->arg[i], "via"))
				n = sim_node_by_name(w, it->arg[i + 1]);
		char why[256];
		const Pvha__GuestInfo *g = guest_view_why(w, n, a0, why, sizeof(why));
		if (!g)
			say(s, it, n >= 0 && w->nodes[n].agent_up, "no answer: %s", why);
		else
			say(s, it, !strcmp(g->state, a1), "says %s", g->state);
	} else if (!strcmp(v, "state") || !strcmp(v, "owner")) {
		int n = leader_node(w);
		for (int i = 2; i + 1 < it->nargs; i++)
			if (!strcmp(it->arg[i], "via"))
				n = sim_node_by_name(w, it->arg[i + 1]);
		const Pvha__GuestInfo *g = guest_view(w, n, a0);
		if (!g) {
			say(s, it, false, "no view of %s", a0);
			return;
		}
		if (!strcmp(v, "state"))
			say(s, it, !strcmp(g->state, a1), "%s says %s", w->nodes[n].name, g->state);
		else
			say(s, it, !strcmp(g->owner, a1), "%s says owner '%s'", w->nodes[n].name, g->owner);
	} else if (!strcmp(v, "fenced") || !strcmp(v, "not-fenced")) {
		int n = sim_node_by_name(w, a0);
		bool f = n >= 0 && bare_fenced(w, n);
		say(s, it, !strcmp(v, "fenced") ? f : !f, "%s", f ? "blocklisted" : "not blocklisted");
	} else if (!strcmp(v, "leader")) {
		char views[256] = "";
		bool ok = true;
		for (int i = 0; i < w->nnodes; i++) {
			if (!w->nodes[i].agent_up || !w->nodes[i].quorate)
				continue;
			uint32_t l = sim_agent_leader(w, i);
			const char *ln = l ? w->nodes[l - 1].name : "none";
			ok &= !strcmp(ln, a0);
			snprintf(views + strlen(views), sizeof(views) - strlen(views), "%s%s:%s", views[0] ? " " : "",
				 w->nodes[i].name, ln);
		}
		say(s, it, ok && views[0], "%s", views[0] ? views : "no quorate agent");
	} else if (!strcmp(v, "quorate")) {
		int n = sim_node_by_name(w, a0);
		bool q = n >= 0 && w->nodes[n].agent_up && sim_agent_quorate(w, n);
		say(s, it, !strcmp(a1, "no") ? !q : q, "%s", q ? "quorate" : "not quorate");
	} else if (!strcmp(v, "mode")) {
		int n = sim_node_by_name(w, a0);
		const char *m = "active";
		for (int i = 0; n >= 0 && i < SIM_MAX_NODES; i++)
			if (w->store.nodes[i].used && !strcmp(w->store.nodes[i].rec.name, a0))
				m = pvstore_node_mode_str(w->store.nodes[i].mode);
		say(s, it, !strcmp(m, a1), "%s", m);
	} else if (!strcmp(v, "event") || !strcmp(v, "no-event")) {
		char text[512] = "";
		for (int i = 0; i < it->nargs; i++)
			snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s", i ? " " : "", it->arg[i]);
		bool seen = event_seen(w, text);
		say(s, it, !strcmp(v, "event") ? seen : !seen, "%s", seen ? "logged" : "not logged");
	} else if (!strcmp(v, "agree")) {
		/* every live quorate agent has the same state and owner for the guest */
		char first[96] = "", views[400] = "";
		bool ok = true;
		for (int i = 0; i < w->nnodes; i++) {
			if (!w->nodes[i].agent_up || !w->nodes[i].quorate)
				continue;
			const Pvha__GuestInfo *g = guest_view(w, i, a0);
			char one[96];
			snprintf(one, sizeof(one), "%s@%s", g ? g->state : "unknown", g && g->owner[0] ? g->owner : "-");
			if (!first[0])
				snprintf(first, sizeof(first), "%s", one);
			ok &= !strcmp(first, one);
			snprintf(views + strlen(views), sizeof(views) - strlen(views), "%s%s:%s", views[0] ? " " : "",
				 w->nodes[i].name, one);
		}
		say(s, it, ok && first[0], "%s", views);
	}
}

static void item_ev(struct sim *w, struct sim_event *e)
{
	struct scn *s = e->arg;
	const struct item *it = &s->items[e->u];
	(void)w;
	if (it->check)
		do_check(s, it);
	else
		do_command(s, it);
}

/* Liveness at the end of a random run: every guest the registry wants
 * running runs, and none sits in an intermediate state. */
static void liveness_check(struct scn *s)
{
	struct sim *w = s->w;
	int n = leader_node(w);
	for (int gi = 0; gi < SIM_MAX_GUESTS; gi++) {
		struct fs_guest *g = &w->store.guests[gi];
		if (!g->used)
			continue;
		const Pvha__GuestInfo *info = guest_view(w, n, g->spec.name);
		const char *state = info ? info->state : "unknown";
		bool want = info && info->want_running;
		struct vmm *vm = sim_vmm_running(w, gi);
		bool runs = vm && g->last_write_ms + 500 >= w->now;
		if (want && !runs)
			sim_violation(w, &w->bad.not_running, "not running: guest %s should run (state %s) but does not, %llu ms after the last fault",
				      g->spec.name, state, (unsigned long long)(w->now - s->last_fault));
		else if (strcmp(state, "running") && strcmp(state, "stopped"))
			sim_violation(w, &w->bad.stuck, "stuck: guest %s in %s %llu ms after the last fault",
				      g->spec.name, state, (unsigned long long)(w->now - s->last_fault));
	}
}

int scn_run(struct scn *s, FILE *out, bool verbose, struct scn_result *res)
{
	struct sim *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(res, 0, sizeof(*res));
	res->expect_fail = s->expect_fail;
	sim_init(w, &s->p, s->seed ? s->seed : 1, out);
	w->verbose = verbose;
	w->debug = verbose && getenv("PVHA_SIM_DEBUG");
	w->rebalance_threshold = s->rebalance;
	s->w = w;
	s->res = res;
	s->last_fault = 0;
	int err = 0;
	for (int i = 0; i < s->nnodes && !err; i++)
		err = sim_add_node(w, s->nodes[i].name, s->nodes[i].mem, s->nodes[i].cpus) < 0 ? -EINVAL : 0;
	for (int i = 0; i < s->nguests && !err; i++) {
		struct pvstore_guest g = s->guests[i].spec;
		for (unsigned d = 0; d < s->guests[i].ndeps && !err; d++) {
			int k;
			for (k = 0; k < s->nguests && strcmp(s->guests[k].spec.name, s->guests[i].deps[d]); k++)
				;
			if (k == s->nguests) {
				fprintf(stderr, "%s: guest %s depends on unknown %s\n", s->path, g.name, s->guests[i].deps[d]);
				err = -ENOENT;
				break;
			}
			memcpy(g.depends_on[g.n_depends++], s->guests[k].spec.uuid, 16);
		}
		if (!err && sim_add_guest(w, &g) < 0) {
			fprintf(stderr, "%s: guest %s: %s\n", s->path, g.name, pvstore_errmsg());
			err = -EINVAL;
		}
	}
	if (err) {
		sim_fini(w);
		free(w);
		return err;
	}
	for (int i = 0; i < s->nnodes; i++)
		if (!s->nodes[i].off)
			sim_power_on(w, i);
	for (size_t i = 0; i < s->nitems; i++) {
		struct sim_event *e = sim_at(w, s->items[i].t, item_ev);
		e->arg = s;
		e->u = i;
	}
	uint64_t end = s->end;
	sim_run_until(w, end);
	if (s->liveness_ms) {
		uint64_t quiet = s->last_fault + s->liveness_ms;
		if (quiet > end)
			sim_run_until(w, quiet);
		liveness_check(s);
	}
	res->violations = w->bad.two_writers + w->bad.lost_write + w->bad.fenced_member + w->bad.not_running +
			  w->bad.stuck;
	res->noutages = w->noutages < 512 ? w->noutages : 512;
	memcpy(res->outages, w->outages, res->noutages * sizeof(res->outages[0]));
	sim_log(w, "# end: %u assertion(s), %u failed, %u invariant violation(s)", res->asserts, res->failed,
		res->violations);
	sim_fini(w);
	free(w);
	s->w = NULL;
	return 0;
}
