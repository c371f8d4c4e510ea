/*
 * Each guest's own cephx user (docs/storage.md, docs/security.md): its VMM
 * connects as client.pvha-guest-<uuid>, whose caps reach only that guest's
 * disk objects and owner lock, never as the node's user.
 *
 * The key is made (or, when the user exists, read back: the monitor's "auth
 * get-or-create" gives the same key on any node) by a storage job before the
 * first VMM this node starts for the guest: inside the start job for a
 * start or a recovery, by a job of its own before a migration target is
 * spawned. The agent keeps it in the guest's entry (it is the same for the
 * guest's life) and hands it to the VMM through pvclus_vmm_start.ceph_key;
 * the embedder passes it on without argv (pvhad: a keyring on an inherited
 * pipe). Deleting the guest deletes the user.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* agent_job_fail, the message saying what failed first. */
static int job_fail(struct pvclus_job *j, int err, const char *what)
{
	char m[sizeof(j->errmsg)];
	agent_job_fail(j, err);
	snprintf(m, sizeof(m), "%s: %.200s", what, j->errmsg);
	snprintf(j->errmsg, sizeof(j->errmsg), "%s", m);
	return err;
}

int agent_key_run(struct pvstore *st, const uint8_t uuid[16], char key[PVSTORE_KEY_MAX], struct pvclus_job *j)
{
	int err = st ? pvstore_key_guest(st, uuid, key, PVSTORE_KEY_MAX) : -ENOTCONN;
	return err ? job_fail(j, err, "the guest's cephx user") : 0;
}

void agent_key_keep(struct guest *g, const char key[PVSTORE_KEY_MAX])
{
	if (key[0])
		snprintf(g->ceph_key, sizeof(g->ceph_key), "%s", key);
}

int agent_key_remove_run(struct pvstore *st, const uint8_t uuid[16], struct pvclus_job *j)
{
	char entity[PVSTORE_ENTITY_MAX];
	int err = pvstore_guest_entity(entity, sizeof(entity), uuid);
	if (!err)
		err = pvstore_key_remove(st, entity);
	return err ? job_fail(j, err, "removing its cephx user") : 0;
}

/* A key job for a migration target (agent_key_then). */
struct key_job {
	struct pvclus_job j;
	struct pvclus_agent *a;
	uint8_t uuid[16];
	char key[PVSTORE_KEY_MAX];
	void (*then)(struct pvclus_agent *a, struct guest *g, int err);
};

static int key_run(struct pvstore *st, struct pvclus_job *j)
{
	struct key_job *k = (struct key_job *)j;
	return agent_key_run(st, k->uuid, k->key, j);
}

static void key_done(struct pvclus_job *j)
{
	struct key_job *k = (struct key_job *)j;
	struct guest *g = guests_find(k->a, k->uuid);
	if (g) {
		g->key_job = false;
		if (j->err)
			alog_warn(k->a, "guest %s: %s", g->spec.name, j->errmsg);
		else
			agent_key_keep(g, k->key);
		k->then(k->a, g, j->err);
	}
	memset(k->key, 0, sizeof(k->key));
	free(k);
}

bool agent_key_then(struct pvclus_agent *a, struct guest *g,
		    void (*then)(struct pvclus_agent *a, struct guest *g, int err))
{
	if (g->ceph_key[0])
		return true;
	if (g->key_job)
		return false; /* the job out calls then */
	struct key_job *k = calloc(1, sizeof(*k));
	if (!k) {
		then(a, g, -ENOMEM);
		return false;
	}
	k->j = (struct pvclus_job){ .run = key_run, .done = key_done, .what = "guest key" };
	k->a = a;
	k->then = then;
	memcpy(k->uuid, g->spec.uuid, 16);
	g->key_job = true;
	agent_submit(a, &k->j);
	return false;
}
