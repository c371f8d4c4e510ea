/*
 * cephx users with the least each needs (pvstore.h, docs/storage.md): one
 * per guest for its VMM, one per node for its pvhad. Made with the monitor's
 * "auth get-or-create", which returns the existing user's key when the caps
 * asked for are the ones it has, and refuses (EINVAL) when they differ.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define GUEST_ENTITY_PREFIX "client.pvha-guest-"
#define NODE_ENTITY_PREFIX "client.pvha-node-"

int pvstore_guest_entity(char *buf, size_t len, const uint8_t uuid[16])
{
	char u[PVSTORE_UUID_STR];
	pvstore_uuid_format(uuid, u);
	return snprintf(buf, len, GUEST_ENTITY_PREFIX "%s", u) >= (int)len ? -ENAMETOOLONG : 0;
}

int pvstore_node_entity(char *buf, size_t len, const char *node)
{
	if (!pvs_name_ok(node))
		return -EINVAL;
	return snprintf(buf, len, NODE_ENTITY_PREFIX "%s", node) >= (int)len ? -ENAMETOOLONG : 0;
}

/* A guest user's mgr and mds caps: present (a node may make a guest user
 * only with exactly these, see pvstore_node_caps) and worth nothing: a
 * command no mgr has, a file system that does not exist. */
#define GUEST_CAPS_MGR "allow command pvha-none"
#define GUEST_CAPS_MDS "allow r fsname=pvha-none"

/* " pool=P" or " pool=P namespace=N". */
static void where(char *buf, size_t len, const char *pool, const char *ns)
{
	if (ns && ns[0])
		snprintf(buf, len, " pool=%s namespace=%s", pool, ns);
	else
		snprintf(buf, len, " pool=%s", pool);
}

int pvstore_guest_caps(const char *pool, const char *ns, const uint8_t uuid[16], char *osd,
		       size_t osdlen, char *mon, size_t monlen)
{
	char u[PVSTORE_UUID_STR], w[2 * PVSTORE_NAME_MAX + 32];
	pvstore_uuid_format(uuid, u);
	where(w, sizeof(w), pool, ns);
	/* The disk prefix ends in '.', so that it names exactly this guest's
	 * header and data objects; guest.<uuid> is a whole name (uuids have one
	 * length). The lock is cls_lock: class-read and class-write. */
	int n = snprintf(osd, osdlen,
			 "allow rw%s object_prefix " PVSTORE_OID_DISK_PREFIX "%s., "
			 "allow r class-read class-write%s object_prefix " PVSTORE_OID_GUEST_PREFIX "%s",
			 w, u, w, u);
	if (n >= (int)osdlen || snprintf(mon, monlen, "allow r") >= (int)monlen)
		return -ENAMETOOLONG;
	return 0;
}

/* s with every '.' as "\\." (a regular expression for it; names have no other
 * special character). */
static void re_quote(char *buf, size_t len, const char *s)
{
	size_t k = 0;
	for (; *s && k + 3 < len; s++) {
		if (*s == '.')
			buf[k++] = '\\';
		buf[k++] = *s;
	}
	buf[k] = '\0';
}

int pvstore_node_caps(const char *pool, const char *ns, char *osd, size_t osdlen, char *mon,
		      size_t monlen)
{
	char w[2 * PVSTORE_NAME_MAX + 32], qpool[2 * PVSTORE_NAME_MAX + 2], qns[2 * PVSTORE_NAME_MAX + 2],
		qw[4 * PVSTORE_NAME_MAX + 32];
	where(w, sizeof(w), pool, ns);
	re_quote(qpool, sizeof(qpool), pool);
	re_quote(qns, sizeof(qns), ns ? ns : "");
	where(qw, sizeof(qw), qpool, qns);
	/* Users it may make: pvha-guest-* ones with exactly a guest's caps
	 * (pvstore_guest_caps, for some uuid: the node reaches every guest's
	 * objects anyway), so no node can make itself an admin. The monitor
	 * checks the caps as arguments caps_mon, caps_osd, ... */
	if (snprintf(osd, osdlen, "allow rwx%s", w) >= (int)osdlen ||
	    snprintf(mon, monlen,
		     "allow r, allow command \"osd blocklist\", allow command \"osd blocklist ls\", "
		     "allow command \"auth get-or-create\" with entity prefix " GUEST_ENTITY_PREFIX
		     " caps_mon=\"allow r\" caps_osd regex \"^allow rw%s object_prefix disk\\.[0-9a-f-]{36}\\., "
		     "allow r class-read class-write%s object_prefix guest\\.[0-9a-f-]{36}$\" "
		     "caps_mgr=\"" GUEST_CAPS_MGR "\" caps_mds=\"" GUEST_CAPS_MDS "\", "
		     "allow command \"auth rm\" with entity prefix " GUEST_ENTITY_PREFIX,
		     qw, qw) >= (int)monlen)
		return -ENAMETOOLONG;
	return 0;
}

/* "auth get-or-create" entity with the caps; the key out of its JSON. */
static int get_or_create(struct pvstore *st, const char *entity, const char *osd, const char *mon,
			 bool guest, char *key, size_t keylen)
{
	char json[3000];
	char *out = NULL, *status = NULL;
	size_t outlen = 0, statuslen = 0;
	/* caps are ours (names checked; quotes and backslashes escaped for JSON) */
	char mon_esc[1400];
	size_t k = 0;
	for (const char *c = mon; *c && k + 2 < sizeof(mon_esc); c++) {
		if (*c == '"' || *c == '\\')
			mon_esc[k++] = '\\';
		mon_esc[k++] = *c;
	}
	mon_esc[k] = '\0';
	if (snprintf(json, sizeof(json),
		     "{\"prefix\": \"auth get-or-create\", \"entity\": \"%s\", "
		     "\"caps\": [\"mon\", \"%s\", \"osd\", \"%s\"%s], \"format\": \"json\"}",
		     entity, mon_esc, osd,
		     guest ? ", \"mgr\", \"" GUEST_CAPS_MGR "\", \"mds\", \"" GUEST_CAPS_MDS "\"" : "") >=
	    (int)sizeof(json))
		return pvs_failx(-ENAMETOOLONG, "auth get-or-create %s: command too long", entity);
	const char *cmd[1] = { json };
	int r = pvs_rc(rados_mon_command(st->cluster, cmd, 1, "", 0, &out, &outlen, &status, &statuslen));
	if (r < 0) {
		char why[200];
		snprintf(why, sizeof(why), "%.*s", (int)(statuslen < 190 ? statuslen : 190),
			 status ? status : "");
		rados_buffer_free(out);
		rados_buffer_free(status);
		/* the mon says EINVAL when the user exists with other caps */
		if (r == -EINVAL && strstr(why, "already exists"))
			return pvs_failx(-EEXIST, "cephx user %s exists with other caps: %s", entity, why);
		return pvs_fail(r, "auth get-or-create %s (%s)", entity, why);
	}
	const char *p = out ? memmem(out, outlen, "\"key\":\"", 7) : NULL;
	const char *e = p ? memchr(p + 7, '"', outlen - (size_t)(p + 7 - out)) : NULL;
	if (!p || !e || (size_t)(e - p - 7) + 1 > keylen) {
		rados_buffer_free(out);
		rados_buffer_free(status);
		return pvs_failx(-EBADMSG, "auth get-or-create %s: no key in the answer", entity);
	}
	memcpy(key, p + 7, (size_t)(e - p - 7));
	key[e - p - 7] = '\0';
	memset(out, 0, outlen);
	rados_buffer_free(out);
	rados_buffer_free(status);
	return 0;
}

int pvstore_key_guest(struct pvstore *st, const uint8_t uuid[16], char *key, size_t keylen)
{
	char entity[PVSTORE_ENTITY_MAX], osd[512], mon[64];
	if (pvstore_guest_entity(entity, sizeof(entity), uuid) ||
	    pvstore_guest_caps(st->pool, st->ns, uuid, osd, sizeof(osd), mon, sizeof(mon)))
		return pvs_failx(-ENAMETOOLONG, "pvstore_key_guest: names too long");
	return get_or_create(st, entity, osd, mon, true, key, keylen);
}

int pvstore_key_node(struct pvstore *st, const char *node, char *key, size_t keylen)
{
	char entity[PVSTORE_ENTITY_MAX], osd[256], mon[1200];
	int r = pvstore_node_entity(entity, sizeof(entity), node);
	if (r)
		return pvs_failx(r, "pvstore_key_node: bad node name '%s'", node ? node : "");
	if (pvstore_node_caps(st->pool, st->ns, osd, sizeof(osd), mon, sizeof(mon)))
		return pvs_failx(-ENAMETOOLONG, "pvstore_key_node: names too long");
	return get_or_create(st, entity, osd, mon, false, key, keylen);
}

int pvstore_key_remove(struct pvstore *st, const char *entity)
{
	char json[300];
	if (!entity || (strncmp(entity, GUEST_ENTITY_PREFIX, strlen(GUEST_ENTITY_PREFIX)) &&
			strncmp(entity, NODE_ENTITY_PREFIX, strlen(NODE_ENTITY_PREFIX))) ||
	    strchr(entity, '"') || strlen(entity) >= PVSTORE_ENTITY_MAX)
		return pvs_failx(-EINVAL, "pvstore_key_remove: not a pvha user: '%s'", entity ? entity : "");
	snprintf(json, sizeof(json), "{\"prefix\": \"auth rm\", \"entity\": \"%s\"}", entity);
	const char *cmd[1] = { json };
	char *out = NULL, *status = NULL;
	size_t outlen = 0, statuslen = 0;
	int r = pvs_rc(rados_mon_command(st->cluster, cmd, 1, "", 0, &out, &outlen, &status, &statuslen));
	rados_buffer_free(out);
	rados_buffer_free(status);
	return r < 0 && r != -ENOENT ? pvs_fail(r, "auth rm %s", entity) : 0;
}
