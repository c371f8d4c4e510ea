/*
 * A fake libpvstore (pvstore.h) over an in-memory store, linked into
 * pvha-sim instead of storage/'s library. The pure parts of the real library
 * (storage/spec.c: spec checks and records; storage/sha256.c) are linked as
 * they are; this file gives them the helpers they need (pvs_fail...).
 *
 * Every op is evaluated at the current virtual time on behalf of one client
 * connection (struct pvstore: a node's agent or one VMM):
 *   - the storage down, or this host cut off from it: -ETIMEDOUT after the
 *     configured op timeout;
 *   - the client's address covered by a blocklist entry: -ESHUTDOWN (a bare
 *     IP covers every client of that host); an entry reaches the OSDs
 *     osd_map_lag_ms after it was added, unless the one who added it waited
 *     for the latest map (pvstore_fence): then at once;
 *   - the cost of the op (slow storage, a timeout, a delayed monitor) is
 *     charged to the caller: a storage job completes that much later, a
 *     direct call from an agent keeps that agent busy (it takes no input)
 *     that long.
 * docs/simulator.md lists each assumption and what backs it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvstore/names.h"
#include "sim.h"

/* pvstore_errmsg() takes no handle: its message is per thread in the real
 * library, and so here (the simulator has one thread). */
static _Thread_local char errbuf[512];

const char *pvstore_errmsg(void)
{
	return errbuf;
}

/* ---- helpers the linked pure parts of libpvstore need (storage/internal.h) ---- */

int pvs_fail(int err, const char *fmt, ...);
int pvs_failx(int err, const char *fmt, ...);
bool pvs_name_ok(const char *s);
bool pvs_uuid_is_nil(const uint8_t u[16]);
void pvs_clear_error(void);

static int vfail(int err, bool with_reason, const char *fmt, va_list ap)
{
	char m[400];
	vsnprintf(m, sizeof(m), fmt, ap);
	if (with_reason)
		snprintf(errbuf, sizeof(errbuf), "%s: %s", m, strerror(-err));
	else
		snprintf(errbuf, sizeof(errbuf), "%s", m);
	return err;
}

int pvs_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(err, true, fmt, ap);
	va_end(ap);
	return err;
}

int pvs_failx(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(err, false, fmt, ap);
	va_end(ap);
	return err;
}

void pvs_clear_error(void)
{
	errbuf[0] = '\0';
}

bool pvs_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > PVSTORE_NAME_MAX || s[0] == '.' || s[0] == '-')
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

bool pvs_uuid_is_nil(const uint8_t u[16])
{
	static const uint8_t nil[16];
	return !memcmp(u, nil, 16);
}

/* ---- uuids, names ---------------------------------------------------------- */

int pvstore_uuid_parse(const char *s, uint8_t out[16])
{
	unsigned b[16];
	if (!s || strlen(s) != 36 ||
	    sscanf(s, "%2x%2x%2x%2x-%2x%2x-%2x%2x-%2x%2x-%2x%2x%2x%2x%2x%2x", &b[0], &b[1], &b[2], &b[3], &b[4],
		   &b[5], &b[6], &b[7], &b[8], &b[9], &b[10], &b[11], &b[12], &b[13], &b[14], &b[15]) != 16 ||
	    s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' ||
	    strspn(s, "0123456789abcdefABCDEF-") != 36)
		return pvs_failx(-EINVAL, "pvstore_uuid_parse: '%s' is not a uuid", s ? s : "(null)");
	for (int i = 0; i < 16; i++)
		out[i] = (uint8_t)b[i];
	return 0;
}

void pvstore_uuid_format(const uint8_t u[16], char out[PVSTORE_UUID_STR])
{
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		p += sprintf(p, "%02x", u[i]);
	}
}

const char *pvstore_node_mode_str(enum pvstore_node_mode m)
{
	switch (m) {
	case PVSTORE_NODE_ACTIVE: return "active";
	case PVSTORE_NODE_DRAINING: return "draining";
	case PVSTORE_NODE_MAINTENANCE: return "maintenance";
	}
	return "?";
}

/* "v1:IP:0/N" and "IP:0/N" name the same client. */
static const char *bare(const char *a)
{
	return !strncmp(a, "v1:", 3) || !strncmp(a, "v2:", 3) ? a + 3 : a;
}

bool pvstore_addr_covers(const char *fence_addr, const char *holder_addr)
{
	const char *f = bare(fence_addr), *h = bare(holder_addr);
	size_t fl = strlen(f);
	if (!strcmp(f, h))
		return true;
	if (fl > 4 && !strcmp(f + fl - 4, ":0/0"))
		fl -= 4;
	else if (strchr(f, ':'))
		return false; /* one client: only itself */
	return !strncmp(f, h, fl) && h[fl] == ':';
}

/* ---- connections and the checks every op makes -------------------------------- */

struct pvstore *fs_connect(struct sim *w, int node, bool is_agent)
{
	struct pvstore *st = calloc(1, sizeof(*st));
	if (!st)
		abort();
	uint64_t id = ++w->store.next_client;
	st->w = w;
	st->node = node;
	st->is_agent = is_agent;
	snprintf(st->addr, sizeof(st->addr), "%s:0/%llu", w->nodes[node].ip, (unsigned long long)(1000 + id));
	snprintf(st->entity, sizeof(st->entity), "client.%llu", (unsigned long long)(4100 + id));
	return st;
}

void fs_disconnect(struct pvstore *st)
{
	free(st);
}

bool fs_covered(struct sim *w, const char *client_addr, bool write)
{
	for (size_t i = 0; i < sizeof(w->store.bl) / sizeof(w->store.bl[0]); i++) {
		const struct fs_blocklist *b = &w->store.bl[i];
		if (!b->used || w->now >= b->expires_ms)
			continue;
		/* an OSD that has not seen the new map yet still takes a write */
		if (write && w->now < b->effective_ms)
			continue;
		if (pvstore_addr_covers(b->addr, client_addr))
			return true;
	}
	return false;
}

/* Charges ms to whoever made the call (see the header comment). */
static void cost(struct pvstore *st, uint64_t ms)
{
	struct sim *w = st->w;
	if (w->in_job) {
		w->job_cost += ms;
	} else if (st->is_agent && w->nodes[st->node].conn == st) {
		struct sim_node *n = &w->nodes[st->node];
		uint64_t from = n->busy_until > w->now ? n->busy_until : w->now;
		n->busy_until = from + ms;
	}
}

int fs_check(struct pvstore *st, bool write)
{
	struct sim *w = st->w;
	if (w->store.down || w->nodes[st->node].storage_cut) {
		cost(st, w->p.osd_timeout_ms);
		return -ETIMEDOUT;
	}
	cost(st, w->store.slow_ms);
	if (fs_covered(w, st->addr, write))
		return -ESHUTDOWN;
	return 0;
}

/* The check of one op, with the message the real library gives. */
static int op(struct pvstore *st, bool write, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int op(struct pvstore *st, bool write, const char *fmt, ...)
{
	int err = fs_check(st, write);
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vfail(err, true, fmt, ap);
		va_end(ap);
	}
	return err;
}

struct fs_guest *fs_guest(struct sim *w, const uint8_t uuid[16])
{
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		if (w->store.guests[i].used && !memcmp(w->store.guests[i].spec.uuid, uuid, 16))
			return &w->store.guests[i];
	return NULL;
}

const char *fs_guest_name(struct sim *w, const uint8_t uuid[16])
{
	struct fs_guest *g = fs_guest(w, uuid);
	return g ? g->spec.name : "?";
}

static void uuid_str(const uint8_t u[16], char out[PVSTORE_UUID_STR])
{
	pvstore_uuid_format(u, out);
}

/* ---- the registry ------------------------------------------------------------ */

int pvstore_guest_create(struct pvstore *st, struct pvstore_guest *g)
{
	struct sim *w = st->w;
	int err = pvstore_guest_check(g);
	if (err)
		return err;
	if ((err = op(st, true, "creating guest %s", g->name)))
		return err;
	if (pvs_uuid_is_nil(g->uuid))
		for (int i = 0; i < 16; i++)
			g->uuid[i] = (uint8_t)sim_rand(w);
	int free_slot = -1;
	for (int i = 0; i < SIM_MAX_GUESTS; i++) {
		struct fs_guest *o = &w->store.guests[i];
		if (!o->used) {
			if (free_slot < 0)
				free_slot = i;
			continue;
		}
		if (!strcmp(o->spec.name, g->name))
			return pvs_failx(-EEXIST, "guest name %s is taken", g->name);
		if (!memcmp(o->spec.uuid, g->uuid, 16))
			return pvs_failx(-EEXIST, "guest uuid of %s is taken", g->name);
	}
	if (free_slot < 0)
		return pvs_failx(-ENOSPC, "the simulator holds at most %d guests", SIM_MAX_GUESTS);
	struct fs_guest *o = &w->store.guests[free_slot];
	free(o->events.ev); /* a deleted guest's log */
	memset(o, 0, sizeof(*o));
	o->used = true;
	g->generation = 1;
	o->spec = *g;
	return 0;
}

int pvstore_guest_read(struct pvstore *st, const uint8_t uuid[16], struct pvstore_guest *out)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, false, "reading guest.%s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g)
		return pvs_failx(-ENOENT, "guest.%s does not exist", u);
	*out = g->spec;
	return 0;
}

int pvstore_guest_lookup(struct pvstore *st, const char *name, uint8_t uuid[16])
{
	int err = op(st, false, "looking up guest %s", name);
	if (err)
		return err;
	for (int i = 0; i < SIM_MAX_GUESTS; i++) {
		struct fs_guest *g = &st->w->store.guests[i];
		if (g->used && !strcmp(g->spec.name, name)) {
			memcpy(uuid, g->spec.uuid, 16);
			return 0;
		}
	}
	return pvs_failx(-ENOENT, "no guest named %s", name);
}

int pvstore_guest_update(struct pvstore *st, struct pvstore_guest *in)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(in->uuid, u);
	int err = pvstore_guest_check(in);
	if (err)
		return err;
	if ((err = op(st, true, "updating guest.%s", u)))
		return err;
	struct fs_guest *g = fs_guest(st->w, in->uuid);
	if (!g)
		return pvs_failx(-ENOENT, "guest.%s does not exist", u);
	if (strcmp(g->spec.name, in->name))
		return pvs_failx(-EINVAL, "guest.%s: the name cannot change", u);
	if (g->spec.generation != in->generation)
		return pvs_failx(-ECANCELED, "guest.%s changed since it was read (generation %llu, not %llu)", u,
				 (unsigned long long)g->spec.generation, (unsigned long long)in->generation);
	in->generation++;
	g->spec = *in;
	return 0;
}

int pvstore_guest_delete(struct pvstore *st, const uint8_t uuid[16], uint64_t generation)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, true, "deleting guest.%s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g)
		return pvs_failx(-ENOENT, "guest.%s does not exist", u);
	if (generation && g->spec.generation != generation)
		return pvs_failx(-ECANCELED, "guest.%s changed since it was read", u);
	if (g->locked)
		return pvs_failx(-EBUSY, "guest.%s: its owner lock is held by %s", u, g->holder.client);
	/* the events stay, as in RADOS (their own objects); the slot keeps them */
	g->used = false;
	return 0;
}

int pvstore_guest_list(struct pvstore *st, struct pvstore_guest_entry **out, size_t *n)
{
	int err = op(st, false, "listing the guest index");
	*out = NULL;
	*n = 0;
	if (err)
		return err;
	size_t k = 0;
	struct pvstore_guest_entry *l = calloc(SIM_MAX_GUESTS, sizeof(*l));
	if (!l)
		return pvs_failx(-ENOMEM, "listing the guest index");
	for (int i = 0; i < SIM_MAX_GUESTS; i++) {
		struct fs_guest *g = &st->w->store.guests[i];
		if (!g->used)
			continue;
		snprintf(l[k].name, sizeof(l[k].name), "%s", g->spec.name);
		memcpy(l[k].uuid, g->spec.uuid, 16);
		k++;
	}
	/* sorted by name, as the omap index is */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0 && strcmp(l[j - 1].name, l[j].name) > 0; j--) {
			struct pvstore_guest_entry t = l[j];
			l[j] = l[j - 1];
			l[j - 1] = t;
		}
	if (!k) {
		free(l);
		l = NULL;
	}
	*out = l;
	*n = k;
	return 0;
}

/* ---- disks (the agent creates and deletes them; VMMs write through vmm.c) ---- */

int pvstore_disk_create(struct pvstore *st, const uint8_t uuid[16], uint64_t size)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	if (!size || size % 512 || size > PVSTORE_DISK_MAX_SIZE)
		return pvs_failx(-EINVAL, "disk size %llu is not a multiple of 512 up to 16 TiB",
				 (unsigned long long)size);
	int err = op(st, true, "creating the disk of %s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g)
		return pvs_failx(-ENOENT, "no guest %s", u); /* the real one does not care: the sim does */
	if (g->has_disk)
		return pvs_failx(-EEXIST, "the disk of %s exists", u);
	g->has_disk = true;
	g->disk_size = size;
	g->value = 0;
	return 0;
}

int pvstore_disk_delete(struct pvstore *st, const uint8_t uuid[16])
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, true, "deleting the disk of %s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g || !g->has_disk)
		return pvs_failx(-ENOENT, "guest %s has no disk", u);
	g->has_disk = false;
	return 0;
}

/* ---- owner locks (cls_lock, FACTS.md) -------------------------------------- */

int pvstore_lock_holder(struct pvstore *st, const uint8_t uuid[16], struct pvstore_lock_holder *out)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, false, "listing the lockers of guest.%s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g)
		return pvs_failx(-ENOENT, "guest.%s does not exist", u);
	if (!g->locked)
		return pvs_failx(-ENOENT, "nobody holds the owner lock of guest.%s", u);
	*out = g->holder;
	return 0;
}

int pvstore_lock_acquire(struct pvstore *st, const uint8_t uuid[16], const char *cookie)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	if (!pvs_name_ok(cookie))
		return pvs_failx(-EINVAL, "lock cookie '%s' is not 1..63 bytes of [A-Za-z0-9._-]",
				 cookie ? cookie : "(null)");
	int err = op(st, true, "locking guest.%s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g)
		return pvs_failx(-ENOENT, "guest.%s does not exist", u);
	if (g->locked) {
		/* cls_lock: the same client and cookie again is -EEXIST, which the
		 * library takes as success */
		if (!strcmp(g->holder.client, st->entity) && !strcmp(g->holder.cookie, cookie))
			return 0;
		return pvs_failx(-EBUSY, "guest.%s is locked by %s (cookie %s) at %s", u, g->holder.client,
				 g->holder.cookie, g->holder.addr);
	}
	g->locked = true;
	snprintf(g->holder.client, sizeof(g->holder.client), "%s", st->entity);
	snprintf(g->holder.cookie, sizeof(g->holder.cookie), "%s", cookie);
	snprintf(g->holder.addr, sizeof(g->holder.addr), "v1:%s", st->addr);
	return 0;
}

int pvstore_lock_release(struct pvstore *st, const uint8_t uuid[16], const char *cookie)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, true, "unlocking guest.%s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g || !g->locked || strcmp(g->holder.client, st->entity) || strcmp(g->holder.cookie, cookie))
		return pvs_failx(-ENOENT, "guest.%s: this client does not hold the lock with cookie %s", u, cookie);
	g->locked = false;
	return 0;
}

int pvstore_lock_break(struct pvstore *st, const uint8_t uuid[16], const struct pvstore_lock_holder *h)
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, true, "breaking the lock of guest.%s", u);
	if (err)
		return err;
	struct fs_guest *g = fs_guest(st->w, uuid);
	if (!g || !g->locked || strcmp(g->holder.client, h->client) || strcmp(g->holder.cookie, h->cookie))
		return pvs_failx(-ENOENT, "guest.%s is not locked by %s", u, h->client);
	g->locked = false;
	return 0;
}

/* ---- the two-node tie-breaker (cls_lock with a duration; omap) ----------------------- */

int pvstore_tiebreak_take(struct pvstore *st, const char *cookie, uint32_t duration_s,
			  struct pvstore_lock_holder *holder)
{
	struct fake_store *s = &st->w->store;
	if (holder)
		memset(holder, 0, sizeof(*holder));
	if (!pvs_name_ok(cookie))
		return pvs_failx(-EINVAL, "tie-break cookie '%s' is not 1..63 bytes of [A-Za-z0-9._-]",
				 cookie ? cookie : "(null)");
	if (duration_s < 1 || duration_s > 3600)
		return pvs_failx(-EINVAL, "tie-break duration %u s is not within 1 .. 3600 s", duration_s);
	int err = op(st, true, "locking %s", PVSTORE_OID_TIEBREAK);
	if (err)
		return err;
	/* cls_lock: a lock past its expiry is gone at the next op; the same
	 * client and cookie with MAY_RENEW renews it; anyone else is -EBUSY. */
	if (s->tb_locked && st->w->now >= s->tb_expires_ms)
		s->tb_locked = false;
	if (s->tb_locked &&
	    (strcmp(s->tb_holder.client, st->entity) || strcmp(s->tb_holder.cookie, cookie))) {
		if (holder)
			*holder = s->tb_holder;
		return pvs_failx(-EBUSY, "%s is held by %s (cookie %s)", PVSTORE_OID_TIEBREAK, s->tb_holder.client,
				 s->tb_holder.cookie);
	}
	s->tb_locked = true;
	s->tb_expires_ms = st->w->now + (uint64_t)duration_s * 1000;
	snprintf(s->tb_holder.client, sizeof(s->tb_holder.client), "%s", st->entity);
	snprintf(s->tb_holder.cookie, sizeof(s->tb_holder.cookie), "%s", cookie);
	snprintf(s->tb_holder.addr, sizeof(s->tb_holder.addr), "v1:%s", st->addr);
	return 0;
}

int pvstore_tiebreak_break(struct pvstore *st, const struct pvstore_lock_holder *h)
{
	struct fake_store *s = &st->w->store;
	int err = op(st, true, "breaking the lock of %s", PVSTORE_OID_TIEBREAK);
	if (err)
		return err;
	if (s->tb_locked && st->w->now >= s->tb_expires_ms)
		s->tb_locked = false;
	if (!s->tb_locked || strcmp(s->tb_holder.client, h->client) || strcmp(s->tb_holder.cookie, h->cookie))
		return pvs_failx(-ENOENT, "%s is not locked by %s with cookie %s", PVSTORE_OID_TIEBREAK, h->client,
				 h->cookie);
	s->tb_locked = false;
	return 0;
}

int pvstore_tiebreak_yield(struct pvstore *st, const char *node, const char *holder_cookie)
{
	struct fake_store *s = &st->w->store;
	if (!pvs_name_ok(node) || !pvs_name_ok(holder_cookie))
		return pvs_failx(-EINVAL, "tie-break yield: '%s' / '%s' is not a node name / cookie",
				 node ? node : "(null)", holder_cookie ? holder_cookie : "(null)");
	int err = op(st, true, "writing the tie-break yield of %s", node);
	if (err)
		return err;
	int free_slot = -1;
	for (int i = 0; i < SIM_MAX_NODES; i++) {
		if (!strcmp(s->tb_yield_node[i], node)) {
			snprintf(s->tb_yield_cookie[i], sizeof(s->tb_yield_cookie[i]), "%s", holder_cookie);
			return 0;
		}
		if (!s->tb_yield_node[i][0] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return pvs_failx(-ENOSPC, "too many tie-break yields");
	snprintf(s->tb_yield_node[free_slot], sizeof(s->tb_yield_node[0]), "%s", node);
	snprintf(s->tb_yield_cookie[free_slot], sizeof(s->tb_yield_cookie[0]), "%s", holder_cookie);
	return 0;
}

int pvstore_tiebreak_yielded(struct pvstore *st, const char *node, char *out, size_t len)
{
	struct fake_store *s = &st->w->store;
	if (!pvs_name_ok(node) || !out || !len)
		return pvs_failx(-EINVAL, "tie-break yield: '%s' is not a node name", node ? node : "(null)");
	int err = op(st, false, "reading %s", PVSTORE_OID_TIEBREAK);
	if (err)
		return err;
	for (int i = 0; i < SIM_MAX_NODES; i++) {
		if (!strcmp(s->tb_yield_node[i], node)) {
			if (strlen(s->tb_yield_cookie[i]) >= len)
				return pvs_failx(-EBADMSG, "%s: the yield of %s is too long", PVSTORE_OID_TIEBREAK, node);
			snprintf(out, len, "%s", s->tb_yield_cookie[i]);
			return 0;
		}
	}
	return pvs_failx(-ENOENT, "%s: no yield of %s", PVSTORE_OID_TIEBREAK, node);
}

/* ---- the blocklist: a monitor command ---------------------------------------- */

static bool fence_addr_ok(const char *a)
{
	unsigned x[4], port, nonce;
	char tail;
	if (!a || strlen(a) >= 64)
		return false;
	if (sscanf(a, "%u.%u.%u.%u%c", &x[0], &x[1], &x[2], &x[3], &tail) == 4)
		return true;
	return sscanf(a, "%u.%u.%u.%u:%u/%u%c", &x[0], &x[1], &x[2], &x[3], &port, &nonce, &tail) == 6;
}

void fs_blocklist_commit(struct sim *w, int by, uint32_t by_gen, const char *addr, bool add, uint64_t effective_ms)
{
	struct fake_store *s = &w->store;
	/* a node fenced while it is in one membership with the fencer */
	for (int i = 0; add && i < w->nnodes; i++) {
		const struct sim_node *n = &w->nodes[i];
		if (strcmp(n->ip, addr) || !n->cs_up || n->ring < 0 || n->ring != w->nodes[by].ring)
			continue;
		/* Back in the fencer's ring. Only harmless if the agent that sent
		 * it still holds it out, or, that agent gone (a restart, a power
		 * off), whoever leads its ring now (docs/simulator.md, invariant
		 * 3), and nothing of it can write. */
		bool sender = sim_agent_is(w, by, by_gen);
		bool held = sender ? sim_agent_holds(w, by, n->id) : sim_ring_leader_holds(w, i, n->id);
		bool writes = sim_node_can_write(w, i);
		if (!held || writes)
			sim_violation(w, &w->bad.fenced_member,
				      "fenced a member: %s blocklisted by %s while both are in ring %llu (%s)", n->name,
				      w->nodes[by].name, (unsigned long long)w->rings[n->ring].id,
				      !held ? (sender ? "the fencer had let it back"
						      : "the fencer's agent is gone and the leader had let it back")
					    : "a VMM of it could write");
	}
	size_t nb = sizeof(s->bl) / sizeof(s->bl[0]);
	for (size_t i = 0; i < nb; i++) {
		struct fs_blocklist *b = &s->bl[i];
		if (b->used && !strcmp(b->addr, addr)) {
			if (!add) {
				b->used = false;
			} else {
				b->expires_ms = w->now + 3600 * 1000ull;
				if (effective_ms < b->effective_ms || w->now >= b->expires_ms)
					b->effective_ms = effective_ms;
			}
			return;
		}
	}
	if (!add)
		return;
	for (size_t i = 0; i < nb; i++) {
		struct fs_blocklist *b = &s->bl[i];
		if (!b->used) {
			*b = (struct fs_blocklist){ .used = true, .added_ms = w->now, .effective_ms = effective_ms,
						    .expires_ms = w->now + 3600 * 1000ull };
			snprintf(b->addr, sizeof(b->addr), "%s", addr);
			return;
		}
	}
	abort(); /* 64 entries: more than any scenario makes */
}

/* A monitor command: committed after mon_delay_ms; a caller that waited
 * longer than mon_timeout_ms got -ETIMEDOUT, and the command is committed
 * anyway (campaign failure 8). */
static int mon_command(struct pvstore *st, const char *addr, bool add, bool wait_map)
{
	struct sim *w = st->w;
	if (w->store.down || w->nodes[st->node].storage_cut) {
		cost(st, w->p.mon_timeout_ms);
		return -ETIMEDOUT;
	}
	if (fs_covered(w, st->addr, false)) {
		cost(st, w->store.slow_ms);
		return -ESHUTDOWN;
	}
	/* the monitor commits commands in the order they came: one sent while
	 * an earlier one still waits is committed after it */
	uint64_t at = w->now + w->store.mon_delay_ms + w->store.slow_ms;
	if (at < w->store.mon_backlog_ms)
		at = w->store.mon_backlog_ms;
	if (at - w->now >= w->p.mon_timeout_ms) {
		cost(st, w->p.mon_timeout_ms);
		/* the monitor commits it later; the map reaches the OSDs after the lag */
		w->store.mon_backlog_ms = at;
		sim_blocklist_later(w, st->node, w->nodes[st->node].gen, addr, add, at, false);
		return -ETIMEDOUT;
	}
	if (at > w->now + w->store.mon_delay_ms + w->store.slow_ms) {
		/* behind a backlog that ends within the timeout: committed then */
		cost(st, (unsigned)(at - w->now));
		w->store.mon_backlog_ms = at;
		sim_blocklist_later(w, st->node, w->nodes[st->node].gen, addr, add, at, wait_map);
		return 0;
	}
	unsigned delay = (unsigned)(at - w->now);
	cost(st, delay);
	fs_blocklist_commit(w, st->node, w->nodes[st->node].gen, addr, add, wait_map ? w->now : w->now + w->p.osd_map_lag_ms);
	return 0;
}

/* A blocklist add (wait_map: and the wait for the OSD map that carries it). */
static int blocklist_add(struct pvstore *st, const char *addr, uint32_t expire_s, bool wait_map)
{
	if (!fence_addr_ok(addr))
		return pvs_failx(-EINVAL, "'%s' is not an address to blocklist (IP or IP:PORT/NONCE)",
				 addr ? addr : "(null)");
	if (expire_s < 1 || expire_s > 30u * 24 * 3600)
		return pvs_failx(-EINVAL, "blocklist expiry %u s is not within 1 s .. 30 days", expire_s);
	int err = mon_command(st, addr, true, wait_map);
	if (err)
		return pvs_fail(err, "blocklisting %s", addr);
	return 0;
}

int pvstore_blocklist_add(struct pvstore *st, const char *addr, uint32_t expire_s)
{
	return blocklist_add(st, addr, expire_s, false);
}

int pvstore_blocklist_list(struct pvstore *st, struct pvstore_blocklist_entry **out, size_t *n)
{
	struct fake_store *s = &st->w->store;
	size_t nb = sizeof(s->bl) / sizeof(s->bl[0]), k = 0;
	int err = op(st, false, "osd blocklist ls");
	*out = NULL;
	*n = 0;
	if (err)
		return err;
	struct pvstore_blocklist_entry *l = calloc(nb, sizeof(*l));
	if (!l)
		return pvs_failx(-ENOMEM, "osd blocklist ls");
	for (size_t i = 0; i < nb; i++) {
		if (!s->bl[i].used || st->w->now >= s->bl[i].expires_ms)
			continue;
		if (strchr(s->bl[i].addr, ':'))
			snprintf(l[k].addr, sizeof(l[k].addr), "%s", s->bl[i].addr);
		else
			snprintf(l[k].addr, sizeof(l[k].addr), "%.58s:0/0", s->bl[i].addr);
		snprintf(l[k].until, sizeof(l[k].until), "+%llu ms",
			 (unsigned long long)(s->bl[i].expires_ms - st->w->now));
		k++;
	}
	*out = l;
	*n = k;
	return 0;
}

int pvstore_blocklist_remove(struct pvstore *st, const char *addr)
{
	struct fake_store *s = &st->w->store;
	bool listed = false;
	for (size_t i = 0; i < sizeof(s->bl) / sizeof(s->bl[0]); i++)
		listed |= s->bl[i].used && st->w->now < s->bl[i].expires_ms && !strcmp(s->bl[i].addr, addr);
	int err = mon_command(st, addr, false, false);
	if (err)
		return pvs_fail(err, "osd blocklist rm %s", addr);
	if (!listed)
		return pvs_failx(-ENOENT, "%s is not blocklisted", addr);
	return 0;
}

int pvstore_fence(struct pvstore *st, const char *addr, uint32_t expire_s)
{
	/* blocklist, then wait for the latest OSD map: our next op makes each
	 * OSD catch up, so the entry binds at once for everything after it */
	int err = blocklist_add(st, addr, expire_s, true);
	if (err == -ETIMEDOUT) {
		/* as storage/lock.c since ea34e8c: withdrawn at once, on the same
		 * monitor session, so that a late commit of the add is undone by
		 * the removal committed right after it */
		char msg[sizeof(errbuf)];
		memcpy(msg, errbuf, sizeof(msg));
		pvstore_blocklist_remove(st, addr);
		return pvs_failx(err, "%.380s (the request is withdrawn)", msg);
	}
	return err;
}

int pvstore_fence_and_break(struct pvstore *st, const char *addr, uint32_t expire_s, const uint8_t uuid[16],
			    const char *cookie)
{
	struct pvstore_lock_holder h;
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = pvstore_fence(st, addr, expire_s);
	if (err)
		return err;
	err = pvstore_lock_holder(st, uuid, &h);
	if (err == -ENOENT) {
		pvs_clear_error();
		return 0;
	}
	if (err)
		return err;
	if (!pvstore_addr_covers(addr, h.addr))
		return pvs_failx(-EBUSY, "guest.%s is held by %s at %s, which a fence of %s does not cover", u,
				 h.client, h.addr, addr);
	if (cookie && strcmp(cookie, h.cookie))
		return pvs_failx(-EBUSY, "guest.%s is held with cookie %s, not %s", u, h.cookie, cookie);
	err = pvstore_lock_break(st, uuid, &h);
	if (err == -ENOENT) {
		pvs_clear_error();
		return 0;
	}
	return err;
}

/* ---- node records and modes ----------------------------------------------------- */

static struct fs_node *node_slot(struct sim *w, const char *name, bool create)
{
	struct fs_node *free_slot = NULL;
	for (int i = 0; i < SIM_MAX_NODES; i++) {
		struct fs_node *n = &w->store.nodes[i];
		if (n->used && !strcmp(n->rec.name, name))
			return n;
		if (!n->used && !free_slot)
			free_slot = n;
	}
	if (!create || !free_slot)
		return NULL;
	memset(free_slot, 0, sizeof(*free_slot));
	free_slot->used = true;
	snprintf(free_slot->rec.name, sizeof(free_slot->rec.name), "%s", name);
	return free_slot;
}

int pvstore_node_put(struct pvstore *st, struct pvstore_node *in)
{
	if (!pvs_name_ok(in->name))
		return pvs_failx(-EINVAL, "'%s' is not a node name", in->name);
	int err = op(st, true, "writing node.%s", in->name);
	if (err)
		return err;
	struct fs_node *n = node_slot(st->w, in->name, true);
	if (!n)
		return pvs_failx(-ENOSPC, "too many node records");
	in->updated_ms = st->w->now;
	n->rec = *in;
	n->has_rec = true;
	return 0;
}

int pvstore_node_get(struct pvstore *st, const char *name, struct pvstore_node *out)
{
	int err = op(st, false, "reading node.%s", name);
	if (err)
		return err;
	struct fs_node *n = node_slot(st->w, name, false);
	if (!n || !n->has_rec)
		return pvs_failx(-ENOENT, "node.%s does not exist", name);
	*out = n->rec;
	return 0;
}

int pvstore_node_mode_set(struct pvstore *st, const char *name, enum pvstore_node_mode mode)
{
	if (!pvs_name_ok(name))
		return pvs_failx(-EINVAL, "'%s' is not a node name", name ? name : "(null)");
	if ((unsigned)mode > PVSTORE_NODE_MAINTENANCE)
		return pvs_failx(-EINVAL, "node mode %d is unknown", (int)mode);
	int err = op(st, true, "setting the mode of %s", name);
	if (err)
		return err;
	struct fs_node *n = node_slot(st->w, name, true);
	if (!n)
		return pvs_failx(-ENOSPC, "too many node records");
	n->mode = mode;
	return 0;
}

int pvstore_node_modes(struct pvstore *st, int (*each)(void *ctx, const char *name, enum pvstore_node_mode mode),
		       void *ctx)
{
	int err = op(st, false, "reading the node modes");
	if (err)
		return err;
	/* in name order, as the omap walk gives them */
	const struct fs_node *sorted[SIM_MAX_NODES];
	int k = 0;
	for (int i = 0; i < SIM_MAX_NODES; i++)
		if (st->w->store.nodes[i].used && st->w->store.nodes[i].mode != PVSTORE_NODE_ACTIVE)
			sorted[k++] = &st->w->store.nodes[i];
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && strcmp(sorted[j - 1]->rec.name, sorted[j]->rec.name) > 0; j--) {
			const struct fs_node *t = sorted[j];
			sorted[j] = sorted[j - 1];
			sorted[j - 1] = t;
		}
	for (int i = 0; i < k; i++)
		if ((err = each(ctx, sorted[i]->rec.name, sorted[i]->mode)))
			return err;
	return 0;
}

/* ---- event logs ---------------------------------------------------------------- */

int pvstore_event_append(struct pvstore *st, const uint8_t *guest, const char *node, const char *what,
			 const char *why, uint64_t *seq)
{
	int err = op(st, true, "appending to the event log");
	if (err)
		return err;
	struct fs_log *log = &st->w->store.cluster_events;
	if (guest) {
		struct fs_guest *g = fs_guest(st->w, guest);
		if (!g)
			return pvs_failx(-ENOENT, "no such guest"); /* its log object would be created: close enough */
		log = &g->events;
	}
	sim_grow(&log->ev, log->n, &log->cap, sizeof(*log->ev));
	struct fs_event *e = &log->ev[log->n++];
	memset(e, 0, sizeof(*e));
	e->seq = log->n;
	e->time_ms = st->w->now;
	snprintf(e->node, sizeof(e->node), "%s", node);
	if (guest) {
		e->has_guest = true;
		memcpy(e->guest, guest, 16);
	}
	snprintf(e->what, sizeof(e->what), "%s", what);
	snprintf(e->why, sizeof(e->why), "%s", why);
	if (seq)
		*seq = e->seq;
	sim_log(st->w, "%s %s %s: %s", node, guest ? fs_guest_name(st->w, guest) : "cluster", e->what, e->why);
	return 0;
}

int pvstore_event_list(struct pvstore *st, const uint8_t *guest, uint64_t after, struct pvstore_event *out,
		       size_t max, size_t *n)
{
	int err = op(st, false, "reading the event log");
	*n = 0;
	if (err)
		return err;
	const struct fs_log *log = &st->w->store.cluster_events;
	if (guest) {
		struct fs_guest *g = fs_guest(st->w, guest);
		if (!g)
			return 0;
		log = &g->events;
	}
	for (size_t i = 0; i < log->n && *n < max; i++) {
		const struct fs_event *e = &log->ev[i];
		if (e->seq <= after)
			continue;
		struct pvstore_event *o = &out[(*n)++];
		memset(o, 0, sizeof(*o));
		o->seq = e->seq;
		o->time_ms = e->time_ms;
		snprintf(o->node, sizeof(o->node), "%s", e->node);
		o->has_guest = e->has_guest;
		memcpy(o->guest, e->guest, 16);
		snprintf(o->what, sizeof(o->what), "%s", e->what);
		snprintf(o->why, sizeof(o->why), "%s", e->why);
	}
	return 0;
}

/* ---- images --------------------------------------------------------------------- */

int pvstore_image_put(struct pvstore *st, const void *data, size_t len, char sha256_hex[65])
{
	if (len > PVSTORE_IMAGE_MAX)
		return pvs_failx(-EFBIG, "image of %zu bytes is over 64 MiB", len);
	int err = op(st, true, "storing an image");
	if (err)
		return err;
	pvstore_sha256_hex(data, len, sha256_hex);
	struct fake_store *s = &st->w->store;
	for (size_t i = 0; i < s->nimages; i++)
		if (!strcmp(s->images[i], sha256_hex))
			return 0;
	if (s->nimages == SIM_MAX_GUESTS)
		return pvs_failx(-ENOSPC, "the simulator holds at most %d images", SIM_MAX_GUESTS);
	snprintf(s->images[s->nimages++], 65, "%s", sha256_hex);
	return 0;
}

int pvstore_image_get(struct pvstore *st, const char *sha256_hex, void **data, size_t *len)
{
	int err = op(st, false, "reading image.%s", sha256_hex);
	if (err)
		return err;
	struct fake_store *s = &st->w->store;
	for (size_t i = 0; i < s->nimages; i++) {
		if (!strcmp(s->images[i], sha256_hex)) {
			*data = malloc(1);
			*len = 0;
			return *data ? 0 : -ENOMEM;
		}
	}
	return pvs_failx(-ENOENT, "image.%s does not exist", sha256_hex);
}

/* ---- cephx users: one per guest, made by the agent before its VMM starts ---------- */

#define GUEST_ENTITY "client.pvha-guest-"

int pvstore_guest_entity(char *buf, size_t len, const uint8_t uuid[16])
{
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	return snprintf(buf, len, GUEST_ENTITY "%s", u) >= (int)len ? -ENAMETOOLONG : 0;
}

static struct fs_user *fs_user(struct sim *w, const uint8_t uuid[16])
{
	for (size_t i = 0; i < sizeof(w->store.users) / sizeof(w->store.users[0]); i++)
		if (w->store.users[i].used && !memcmp(w->store.users[i].uuid, uuid, 16))
			return &w->store.users[i];
	return NULL;
}

bool fs_key_ok(struct sim *w, const uint8_t uuid[16], const char *key)
{
	struct fs_user *u = fs_user(w, uuid);
	return u && key && !strcmp(u->key, key);
}

/* The monitor's auth get-or-create: an agent's user may make users (as the
 * lab's node users may make pvha-guest-* ones); a VMM's may not. */
int pvstore_key_guest(struct pvstore *st, const uint8_t uuid[16], char *key, size_t keylen)
{
	struct sim *w = st->w;
	char u[PVSTORE_UUID_STR];
	uuid_str(uuid, u);
	int err = op(st, true, "auth get-or-create " GUEST_ENTITY "%s", u);
	if (err)
		return err;
	if (!st->is_agent)
		return pvs_failx(-EACCES, "auth get-or-create " GUEST_ENTITY "%s: access denied", u);
	struct fs_user *usr = fs_user(w, uuid);
	for (size_t i = 0; !usr && i < sizeof(w->store.users) / sizeof(w->store.users[0]); i++) {
		if (!w->store.users[i].used) {
			usr = &w->store.users[i];
			usr->used = true;
			memcpy(usr->uuid, uuid, 16);
			snprintf(usr->key, sizeof(usr->key), "SIMKEY%llu==", (unsigned long long)++w->store.next_key);
		}
	}
	if (!usr)
		return pvs_failx(-ENOSPC, "the simulator holds at most %zu users",
				 sizeof(w->store.users) / sizeof(w->store.users[0]));
	if (strlen(usr->key) >= keylen)
		return pvs_failx(-ERANGE, "auth get-or-create: key buffer too small");
	snprintf(key, keylen, "%s", usr->key);
	return 0;
}

int pvstore_key_remove(struct pvstore *st, const char *entity)
{
	uint8_t uuid[16];
	if (!st->is_agent) /* a guest's caps allow no auth command (as pvstore_key_guest) */
		return pvs_failx(-EACCES, "auth rm %s: access denied", entity ? entity : "");
	if (!entity || strncmp(entity, GUEST_ENTITY, strlen(GUEST_ENTITY)) ||
	    pvstore_uuid_parse(entity + strlen(GUEST_ENTITY), uuid))
		return pvs_failx(-EINVAL, "pvstore_key_remove: not a pvha user: '%s'", entity ? entity : "");
	int err = op(st, true, "auth rm %s", entity);
	if (err)
		return err;
	struct fs_user *u = fs_user(st->w, uuid);
	if (u)
		memset(u, 0, sizeof(*u));
	return 0;
}

void fs_store_free(struct fake_store *s)
{
	for (int i = 0; i < SIM_MAX_GUESTS; i++)
		free(s->guests[i].events.ev);
	free(s->cluster_events.ev);
}
