/*
 * The guest table's lower half: finding a guest, the events this node sends
 * about one, its address on this node, and this node's VMMs being spawned
 * and watched until they answer; the hello that says what runs here. What
 * the HA steps do with them is guests.c's; fencing, placement and
 * migrations use these.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define START_DEADLINE_MS 15000

static void start_check(void *data);

struct guest *guests_find(struct pvclus_agent *a, const uint8_t uuid[16])
{
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && !memcmp(a->g[i].spec.uuid, uuid, 16))
			return &a->g[i];
	return NULL;
}

struct guest *guests_by_name(struct pvclus_agent *a, const char *s)
{
	uint8_t u[16];
	if (pvstore_uuid_parse(s, u) == 0)
		return guests_find(a, u);
	for (int i = 0; i < MAX_GUESTS; i++)
		if (a->g[i].used && !strcmp(a->g[i].spec.name, s))
			return &a->g[i];
	return NULL;
}

int guests_lookup(struct pvclus_agent *a, const char *s, uint8_t uuid[16])
{
	struct guest *g = guests_by_name(a, s);
	if (!g)
		return -ENOENT;
	memcpy(uuid, g->spec.uuid, 16);
	return 0;
}

size_t guests_running_here(struct pvclus_agent *a, ProtobufCBinaryData *out, size_t max)
{
	size_t n = 0;
	for (int i = 0; i < MAX_GUESTS && n < max; i++) {
		struct guest *g = &a->g[i];
		if (g->used && g->pid > 0) {
			out[n].data = g->spec.uuid;
			out[n].len = 16;
			n++;
		}
	}
	return n;
}

void guests_send_event(struct pvclus_agent *a, const uint8_t uuid[16], enum pvclus_ha_event_type type,
		       uint32_t node, bool crashed, int err, uint32_t detail)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__GuestEvent ev = PVHA__GUEST_EVENT__INIT;
	ev.uuid.data = (uint8_t *)uuid;
	ev.uuid.len = 16;
	ev.type = type;
	ev.node = node;
	ev.crashed = crashed;
	ev.err = err;
	ev.detail = detail;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_GUEST_EVENT;
	msg.guest_event = &ev;
	agent_send(a, &msg);
}

int guests_address(struct pvclus_agent *a, struct guest *g, bool up)
{
	char why[200] = "";
	if (!g->spec.address[0])
		return 0;
	int err = a->ops->guest_address(a->ctx, g->spec.address, up, why, sizeof(why));
	if (err) {
		alog_warn(a, "guest %s: %s %s: %s", g->spec.name, up ? "carrying" : "dropping", g->spec.address,
			  why[0] ? why : strerror(-err));
		if (up)
			return err;
	} else {
		alog_info(a, "guest %s: %s %s here", g->spec.name, up ? "carrying" : "dropped", g->spec.address);
	}
	g->addr_up = up;
	return 0;
}

int guests_address_free(struct pvclus_agent *a, const struct pvstore_guest *spec, char *msg, size_t msglen)
{
	uint32_t ip = pvstore_address_ip(spec->address);
	if (!spec->address[0])
		return 0;
	if (!pvstore_address_ok(spec->address)) {
		snprintf(msg, msglen, "address '%s': want an IPv4 address with a prefix, as 10.99.0.100/24",
			 spec->address);
		return -EINVAL;
	}
	for (int i = 0; i < MAX_GUESTS; i++) {
		const struct guest *o = &a->g[i];
		if (o->used && o->spec_loaded && memcmp(o->spec.uuid, spec->uuid, 16) &&
		    pvstore_address_ip(o->spec.address) == ip) {
			snprintf(msg, msglen, "address %s is guest %s's", spec->address, o->spec.name);
			return -EEXIST;
		}
	}
	return 0;
}

/* Has every agent table the guest (and read its spec). */
void guests_announce(struct pvclus_agent *a, const struct pvstore_guest *spec)
{
	Pvha__ClusterMsg m = PVHA__CLUSTER_MSG__INIT;
	Pvha__GuestAdd ga = PVHA__GUEST_ADD__INIT;
	ga.uuid.data = (uint8_t *)spec->uuid;
	ga.uuid.len = 16;
	ga.name = (char *)spec->name;
	m.body_case = PVHA__CLUSTER_MSG__BODY_GUEST_ADD;
	m.guest_add = &ga;
	agent_send(a, &m);
}

static int spawn(struct pvclus_agent *a, struct guest *g, const char *incoming, const void *image,
		 size_t image_len, const uint8_t *key, size_t key_len)
{
	struct pvclus_vmm_start vs = {
		.name = g->spec.name,
		.image_sha256 = g->spec.image_sha256,
		.image = image,
		.image_len = image_len,
		.mem_size = g->spec.mem_size,
		.disk_size = g->spec.disk_size,
		.cmdline = g->spec.cmdline,
		.lock_cookie = a->cfg.incarnation,
		.incoming = incoming,
		.address = g->spec.address,
		.migrate_key = key,
		.migrate_key_len = key_len,
		.ceph_key = g->ceph_key[0] ? g->ceph_key : NULL,
	};
	memcpy(vs.uuid, g->spec.uuid, 16);
	int err = a->ops->vmm_spawn(a->ctx, &vs, &g->pid);
	if (err) {
		g->pid = 0;
		return err;
	}
	g->start_reported = false;
	g->stopping = false;
	g->spawn_ms = agent_now_ms(a);
	/* The leader lifts a fence only when this node's hello says it runs no
	 * guest: say at once that it runs one now. */
	agent_send_hello(a);
	alog_info(a, "guest %s: pvha-vmm started (pid %d)%s%s", g->spec.name, (int)g->pid,
		  incoming ? " to receive it on " : "", incoming ? incoming : "");
	if (!incoming) /* an incoming one is watched by migrate.c */
		agent_timer(a, 20, start_check, g, &g->timer);
	return 0;
}

int guests_spawn_vmm(struct pvclus_agent *a, struct guest *g, const char *incoming, const void *image,
		     size_t image_len)
{
	return spawn(a, g, incoming, image, image_len, NULL, 0);
}

int guests_spawn_incoming(struct pvclus_agent *a, struct guest *g, const char *incoming, const uint8_t *key,
			  size_t key_len)
{
	return spawn(a, g, incoming, NULL, 0, key, key_len);
}

/* Polls a starting VMM until its control socket answers (it takes the lock
 * before it listens, so an answer means it runs and owns the guest). */
static void start_check(void *data)
{
	struct guest *g = data;
	struct pvclus_agent *a = g->agent;
	struct pvclus_vmm_status st;
	if (!g->used || g->pid <= 0 || g->start_reported)
		return;
	if (a->ops->vmm_status(a->ctx, g->spec.uuid, &st) == 0) {
		g->start_reported = true;
		guests_send_event(a, g->spec.uuid, PVCLUS_HA_EV_STARTED, a->local, false, 0, 0);
		return;
	}
	if (agent_now_ms(a) - g->spawn_ms > START_DEADLINE_MS) {
		alog_warn(a, "guest %s: pvha-vmm did not come up in %d ms; killing it", g->spec.name,
			   START_DEADLINE_MS);
		a->ops->vmm_kill(a->ctx, g->pid, true); /* the exit is reported as a failed start */
		return;
	}
	agent_timer(a, 20, start_check, g, &g->timer);
}

void agent_send_hello(struct pvclus_agent *a)
{
	Pvha__ClusterMsg msg = PVHA__CLUSTER_MSG__INIT;
	Pvha__NodeHello h = PVHA__NODE_HELLO__INIT;
	h.name = a->cfg.node_name;
	h.addr = a->cfg.address;
	h.incarnation = a->cfg.incarnation;
	h.mem_bytes = a->cfg.mem_offered;
	h.cpus = a->cfg.cpus_offered;
	h.has_state = a->have_state;
	h.storage_ok = a->storage_ok;
	ProtobufCBinaryData running[256];
	h.n_running = guests_running_here(a, running, 256);
	h.running = running;
	msg.body_case = PVHA__CLUSTER_MSG__BODY_HELLO;
	msg.hello = &h;
	agent_send(a, &msg);
}

struct guest *guests_add(struct pvclus_agent *a, const struct pvstore_guest *spec)
{
	struct guest *g = guests_find(a, spec->uuid);
	if (g)
		return g;
	for (int i = 0; i < MAX_GUESTS; i++) {
		if (!a->g[i].used) {
			g = &a->g[i];
			memset(g, 0, sizeof(*g));
			g->agent = a;
			g->used = true;
			g->spec_loaded = true;
			g->spec = *spec;
			pvclus_ha_init(&g->ha);
			return g;
		}
	}
	return NULL;
}
