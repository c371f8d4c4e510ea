/*
 * `pvha guest set`: a running guest's priority, placement rules,
 * dependencies and address changed in its registry record (a storage job,
 * read-modify-write against concurrent writers), then every agent told to
 * read the spec again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PRIORITY_MAX 1000

/* "priority 5; rules anti:web, aff:db:soft; depends on db" for the event log. */
static void describe(struct pvclus_agent *a, const struct pvstore_guest *s, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "priority %d; rules", (int)s->priority);
	for (unsigned i = 0; i < s->n_rules && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s %s%s%s", i ? "," : "",
				      s->rules[i].anti ? "anti-affinity " : "affinity ", s->rules[i].group,
				      s->rules[i].soft ? ":soft" : "");
	if (!s->n_rules && o < len)
		o += (size_t)snprintf(buf + o, len - o, " none");
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o, "; depends on");
	for (unsigned i = 0; i < s->n_depends && o < len; i++) {
		const struct guest *d = guests_find(a, s->depends_on[i]);
		char u[PVSTORE_UUID_STR];
		pvstore_uuid_format(s->depends_on[i], u);
		o += (size_t)snprintf(buf + o, len - o, "%s %s", i ? "," : "", d ? d->spec.name : u);
	}
	if (!s->n_depends && o < len)
		o += (size_t)snprintf(buf + o, len - o, " nothing");
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o, "; address %s", s->address[0] ? s->address : "none");
	if (s->heartbeat_timeout_s && o < len)
		heartbeat_describe(a, s, buf + o, len - o);
}

struct set_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	void *token;
	bool set_priority, set_rules, set_deps, set_address, set_heartbeat;
	struct pvstore_guest want; /* the checked change: its priority, rules, dependencies */
	struct pvstore_guest cur;  /* the record as written */
};

static int set_run(struct pvstore *st, struct pvclus_job *j)
{
	struct set_job *sj = (struct set_job *)j;
	int err = st ? -ECANCELED : -ENOTCONN;
	for (int tries = 0; tries < 5 && err == -ECANCELED; tries++) {
		err = pvstore_guest_read(st, sj->want.uuid, &sj->cur);
		if (err)
			break;
		if (sj->set_priority)
			sj->cur.priority = sj->want.priority;
		if (sj->set_rules) {
			memcpy(sj->cur.rules, sj->want.rules, sizeof(sj->cur.rules));
			sj->cur.n_rules = sj->want.n_rules;
		}
		if (sj->set_deps) {
			memcpy(sj->cur.depends_on, sj->want.depends_on, sizeof(sj->cur.depends_on));
			sj->cur.n_depends = sj->want.n_depends;
		}
		if (sj->set_address)
			memcpy(sj->cur.address, sj->want.address, sizeof(sj->cur.address));
		if (sj->set_heartbeat)
			heartbeat_copy_settings(&sj->cur, &sj->want);
		err = pvstore_guest_check(&sj->cur);
		if (!err)
			err = pvstore_guest_update(st, &sj->cur);
	}
	if (err == -ECANCELED) {
		j->err = err;
		snprintf(j->errmsg, sizeof(j->errmsg), "guest %s kept changing under us: try again", sj->want.name);
	} else if (err) {
		agent_job_fail(j, err);
	}
	return err;
}

static void set_done(struct pvclus_job *j)
{
	struct set_job *sj = (struct set_job *)j;
	struct pvclus_agent *a = sj->a;
	struct guest *g = guests_find(a, sj->want.uuid);
	if (!j->err && g) {
		g->spec = sj->cur;
		g->spec_loaded = true;
		char why[600];
		describe(a, &sj->cur, why, sizeof(why));
		alog_info(a, "guest %s: changed: %s", sj->cur.name, why);
		guest_event(a, sj->cur.uuid, "changed", why);
		guests_announce(a, &sj->cur); /* every agent re-reads the spec */
	}
	guests_reply(a, sj->token, g, j->err ? j->err : g ? 0 : -ENOENT,
		     j->err ? j->errmsg : g ? "" : "the guest was deleted meanwhile");
	free(sj);
}

int guests_set(struct pvclus_agent *a, struct guest *g, const Pvha__GuestSetIn *in, void *token,
			  char *msg, size_t msglen)
{
	if (!in || (!in->set_priority && !in->set_rules && !in->set_depends_on && !in->set_address &&
		    !heartbeat_set_from_api(NULL, in))) {
		snprintf(msg, msglen, "nothing to change");
		return -EINVAL;
	}
	if (in->set_priority && (in->priority < -PRIORITY_MAX || in->priority > PRIORITY_MAX)) {
		snprintf(msg, msglen, "priority %d: want -%d..%d", (int)in->priority, PRIORITY_MAX, PRIORITY_MAX);
		return -EINVAL;
	}
	if (!a->st) {
		snprintf(msg, msglen, "the storage is out of reach");
		return -ENOTCONN;
	}
	if (!g->spec_loaded) {
		snprintf(msg, msglen, "guest %s: its spec is not read yet: try again", g->spec.name);
		return -EAGAIN;
	}
	struct set_job *sj = calloc(1, sizeof(*sj));
	if (!sj) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	/* checked against the table here; written onto the record as it is then */
	sj->want = g->spec;
	if (in->set_priority)
		sj->want.priority = in->priority;
	if (in->set_address) {
		if (!in->address || strlen(in->address) > PVSTORE_ADDR_MAX) {
			snprintf(msg, msglen, "address '%.40s' is too long", in->address ? in->address : "");
			free(sj);
			return -EINVAL;
		}
		snprintf(sj->want.address, sizeof(sj->want.address), "%s", in->address);
		int aerr = guests_address_free(a, &sj->want, msg, msglen);
		if (aerr) {
			free(sj);
			return aerr;
		}
	}
	bool set_heartbeat = heartbeat_set_from_api(&sj->want, in);
	int err = agent_sched_spec_from_api(a, &sj->want, in->set_rules, in->rules, in->n_rules,
					    in->set_depends_on, in->depends_on, in->n_depends_on, msg, msglen);
	if (err) {
		free(sj);
		return err;
	}
	sj->j = (struct pvclus_job){ .run = set_run, .done = set_done, .what = "guest set" };
	sj->a = a;
	sj->token = token;
	sj->set_priority = in->set_priority;
	sj->set_rules = in->set_rules;
	sj->set_deps = in->set_depends_on;
	sj->set_address = in->set_address;
	sj->set_heartbeat = set_heartbeat;
	agent_submit(a, &sj->j);
	return -EINPROGRESS;
}
