/*
 * The guest table filled from the registry: every guest of the registry is
 * tabled, and its spec read, as storage jobs; a guest the registry no longer
 * has is forgotten once nothing runs it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct load_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	uint8_t uuid[16];
	struct pvstore_guest spec;
};

static int load_run(struct pvstore *st, struct pvclus_job *j)
{
	struct load_job *l = (struct load_job *)j;
	int err = st ? pvstore_guest_read(st, l->uuid, &l->spec) : -ENOTCONN;
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void load_done(struct pvclus_job *j)
{
	struct load_job *l = (struct load_job *)j;
	struct pvclus_agent *a = l->a;
	struct guest *g = guests_find(a, l->uuid);
	bool again = g && g->load_again;
	if (g)
		g->loading = g->load_again = false;
	if (!g) {
		/* deleted meanwhile: nothing to fill */
	} else if (!j->err) {
		g->spec = l->spec;
		g->spec_loaded = true;
		heartbeat_watch(a, g);
		if (agent_leads(a))
			agent_sched_kick(a); /* it may wait for a node, which needs its spec */
	} else if (j->err == -ENOENT) {
		if (!g->spec_loaded && g->ha.state == PVCLUS_HA_STOPPED && !g->ha.want_running) {
			alog_info(a, "guest %s: not in the registry: forgotten", g->spec.name);
			agent_migrate_forget(a, g);
			g->used = false;
		}
	} else {
		alog_warn(a, "guest %s: cannot read its spec yet: %s", g->spec.name, j->errmsg);
	}
	free(l);
	if (again && g->used)
		guests_load(a, g->spec.uuid, NULL); /* it changed while this read ran */
}

/* Tables a guest by its uuid (and name, when known) and reads its spec from
 * the registry (a storage job: the spec is there once it is done). When the
 * registry is out of reach (this node is fenced, say), the guest stays
 * tabled by its uuid, and its spec is read later (guests_refresh). */
struct guest *guests_load(struct pvclus_agent *a, const uint8_t uuid[16], const char *name)
{
	struct guest *g = guests_find(a, uuid);
	if (!g) {
		struct pvstore_guest spec;
		memset(&spec, 0, sizeof(spec));
		memcpy(spec.uuid, uuid, 16);
		if (name && name[0] && strlen(name) <= PVSTORE_NAME_MAX)
			snprintf(spec.name, sizeof(spec.name), "%s", name);
		else
			pvstore_uuid_format(uuid, spec.name);
		g = guests_add(a, &spec);
		if (!g) {
			alog_err(a, -ENOSPC, "guest %s: the table is full", spec.name);
			return NULL;
		}
		g->spec_loaded = false;
	}
	if (g->loading) {
		g->load_again = true;
		return g;
	}
	struct load_job *l = calloc(1, sizeof(*l));
	if (!l)
		return g;
	l->j = (struct pvclus_job){ .run = load_run, .done = load_done, .what = "guest spec" };
	l->a = a;
	memcpy(l->uuid, uuid, 16);
	g->loading = true;
	agent_submit(a, &l->j);
	return g;
}

struct list_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	struct pvstore_guest_entry *list;
	size_t n;
};

static int list_run(struct pvstore *st, struct pvclus_job *j)
{
	struct list_job *l = (struct list_job *)j;
	int err = st ? pvstore_guest_list(st, &l->list, &l->n) : -ENOTCONN;
	if (err)
		agent_job_fail(j, err);
	return err;
}

static void list_done(struct pvclus_job *j)
{
	struct list_job *l = (struct list_job *)j;
	if (j->err)
		alog_warn(l->a, "guests: the registry could not be read: %s", j->errmsg);
	for (size_t i = 0; !j->err && i < l->n; i++)
		if (!guests_find(l->a, l->list[i].uuid))
			guests_load(l->a, l->list[i].uuid, l->list[i].name);
	free(l->list);
	free(l);
}

/* Tables every guest of the registry that is not yet (a storage job). */
static void load_registry(struct pvclus_agent *a)
{
	struct list_job *l = calloc(1, sizeof(*l));
	if (!l)
		return;
	l->j = (struct pvclus_job){ .run = list_run, .done = list_done, .what = "guest list" };
	l->a = a;
	agent_submit(a, &l->j);
}

void guests_refresh(struct pvclus_agent *a)
{
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && !a->g[i].spec_loaded)
			guests_load(a, a->g[i].spec.uuid, NULL);
	load_registry(a);
}

int guests_init(struct pvclus_agent *a)
{
	if (!a->st)
		return -ENOTCONN;
	load_registry(a);
	return 0;
}
