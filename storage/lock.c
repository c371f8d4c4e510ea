/*
 * Owner locks (an exclusive cls_lock named PVSTORE_LOCK_OWNER on guest.<uuid>)
 * and blocklist fencing. See pvstore.h; docs/storage.md explains the order
 * fence -> wait for the latest OSD map -> break -> new owner's I/O.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_EXPIRE_S (30u * 24 * 3600)

static bool cookie_ok(const char *cookie)
{
	return pvs_name_ok(cookie);
}

int pvs_lock_holder_of(struct pvstore *st, const char *oid, const char *lock, struct pvstore_lock_holder *out)
{
	char tag[64], clients[256], cookies[256], addrs[256];
	size_t tag_len = sizeof(tag), clients_len = sizeof(clients), cookies_len = sizeof(cookies),
	       addrs_len = sizeof(addrs);
	int exclusive = 0;
	ssize_t n;

	n = rados_list_lockers(st->io, oid, lock, &exclusive, tag, &tag_len, clients, &clients_len, cookies,
			       &cookies_len, addrs, &addrs_len);
	int r = pvs_rc((int)n);
	if (r == -ENOENT)
		return pvs_failx(r, "%s does not exist", oid);
	if (r < 0)
		return pvs_fail(r, "listing the lockers of %s", oid);
	if (r == 0)
		return pvs_failx(-ENOENT, "nobody holds the lock %s of %s", lock, oid);
	/* An exclusive lock has one locker; the buffers hold NUL-separated
	 * lists, so the first string of each is that locker. */
	if (!pvs_copy(out->client, sizeof(out->client), clients) ||
	    !pvs_copy(out->cookie, sizeof(out->cookie), cookies) ||
	    !pvs_copy(out->addr, sizeof(out->addr), addrs))
		return pvs_failx(-EBADMSG, "%s: the lock holder's name, cookie or address is too long", oid);
	return 0;
}

int pvstore_lock_holder(struct pvstore *st, const uint8_t uuid[16], struct pvstore_lock_holder *out)
{
	char oid[PVSTORE_OID_MAX];
	pvstore_oid_guest(oid, sizeof(oid), uuid);
	return pvs_lock_holder_of(st, oid, PVSTORE_LOCK_OWNER, out);
}

int pvstore_lock_acquire(struct pvstore *st, const uint8_t uuid[16], const char *cookie)
{
	char oid[PVSTORE_OID_MAX];
	uint64_t size;
	time_t mtime;
	int r;

	if (!cookie_ok(cookie))
		return pvs_failx(-EINVAL, "lock cookie '%s' is not 1..63 bytes of [A-Za-z0-9._-]",
				 cookie ? cookie : "(null)");
	pvstore_oid_guest(oid, sizeof(oid), uuid);
	/* cls_lock creates a missing object: check first, so that a lock is
	 * never taken on a guest that does not exist. (A delete racing with this
	 * is refused by pvstore_guest_delete once the lock is held.) */
	r = pvs_rc(rados_stat(st->io, oid, &size, &mtime));
	if (r == -ENOENT)
		return pvs_failx(r, "no guest %s", oid);
	if (r < 0)
		return pvs_fail(r, "stat %s", oid);

	r = pvs_rc(rados_lock_exclusive(st->io, oid, PVSTORE_LOCK_OWNER, cookie, "pvha owner", NULL, 0));
	if (r == 0 || r == -EEXIST) /* -EEXIST: this client holds it with this cookie already */
		return 0;
	if (r == -EBUSY) {
		struct pvstore_lock_holder h;
		if (pvstore_lock_holder(st, uuid, &h) == 0)
			return pvs_failx(-EBUSY, "%s is locked by %s (cookie %s at %s)", oid, h.client,
					 h.cookie, h.addr);
		return pvs_failx(-EBUSY, "%s is locked by another client", oid);
	}
	return pvs_fail(r, "locking %s", oid);
}

int pvstore_lock_release(struct pvstore *st, const uint8_t uuid[16], const char *cookie)
{
	char oid[PVSTORE_OID_MAX];
	int r;

	if (!cookie_ok(cookie))
		return pvs_failx(-EINVAL, "lock cookie '%s' is not valid", cookie ? cookie : "(null)");
	pvstore_oid_guest(oid, sizeof(oid), uuid);
	r = pvs_rc(rados_unlock(st->io, oid, PVSTORE_LOCK_OWNER, cookie));
	if (r == -ENOENT)
		return pvs_failx(r, "this client does not hold the owner lock of %s with cookie %s", oid,
				 cookie);
	if (r < 0)
		return pvs_fail(r, "unlocking %s", oid);
	return 0;
}

int pvstore_lock_break(struct pvstore *st, const uint8_t uuid[16], const struct pvstore_lock_holder *h)
{
	char oid[PVSTORE_OID_MAX];
	int r;

	pvstore_oid_guest(oid, sizeof(oid), uuid);
	r = pvs_rc(rados_break_lock(st->io, oid, PVSTORE_LOCK_OWNER, h->client, h->cookie));
	if (r == -ENOENT)
		return pvs_failx(r, "%s is not locked by %s with cookie %s", oid, h->client, h->cookie);
	if (r < 0)
		return pvs_fail(r, "breaking the lock of %s held by %s", oid, h->client);
	return 0;
}

/* ---- fencing -------------------------------------------------------------- */

/* "IP" or "IP:PORT/NONCE", IPv4 or bracketed IPv6. */
static bool fence_addr_ok(const char *addr)
{
	char ip[64];
	const char *rest;
	unsigned char bin[16];

	if (!addr || !addr[0] || strlen(addr) >= 64)
		return false;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (!close || (size_t)(close - addr - 1) >= sizeof(ip))
			return false;
		memcpy(ip, addr + 1, (size_t)(close - addr - 1));
		ip[close - addr - 1] = '\0';
		if (inet_pton(AF_INET6, ip, bin) != 1)
			return false;
		rest = close + 1;
	} else {
		size_t n = strcspn(addr, ":");
		memcpy(ip, addr, n);
		ip[n] = '\0';
		if (inet_pton(AF_INET, ip, bin) != 1)
			return false;
		rest = addr + n;
	}
	if (!*rest)
		return true;
	/* :PORT/NONCE, both decimal */
	if (*rest++ != ':')
		return false;
	size_t digits = strspn(rest, "0123456789");
	if (!digits || digits > 5 || rest[digits] != '/')
		return false;
	rest += digits + 1;
	digits = strspn(rest, "0123456789");
	return digits && digits <= 10 && !rest[digits];
}

/* Strips a messenger type prefix ("v1:", "v2:", "any:") and list brackets. */
static const char *strip_addr(const char *a, char *buf, size_t len)
{
	if (a[0] == '[' && strchr(a, ',')) { /* "[v2:...,v1:...]": the first one */
		snprintf(buf, len, "%s", a + 1);
		buf[strcspn(buf, ",]")] = '\0';
		a = buf;
	}
	if (!strncmp(a, "v1:", 3) || !strncmp(a, "v2:", 3))
		a += 3;
	else if (!strncmp(a, "any:", 4))
		a += 4;
	return a;
}

bool pvstore_addr_covers(const char *fence_addr, const char *holder_addr)
{
	char b1[128], b2[128];
	const char *f = strip_addr(fence_addr, b1, sizeof(b1));
	const char *h = strip_addr(holder_addr, b2, sizeof(b2));
	size_t fl;

	if (!strcmp(f, h))
		return true;
	/* a bare IP (or "IP:0/0", as Ceph lists it) covers every client of it */
	fl = strlen(f);
	if (fl > 4 && !strcmp(f + fl - 4, ":0/0")) {
		fl -= 4;
	} else {
		const char *host_end = f[0] == '[' ? strchr(f, ']') : f;
		if (!host_end || strchr(host_end, ':'))
			return false; /* one client (or garbage): only an exact match */
	}
	return !strncmp(f, h, fl) && h[fl] == ':';
}

static int mon_command(struct pvstore *st, const char *json, char **out, size_t *outlen,
		       char **status, size_t *statuslen)
{
	const char *cmd[1] = {json};
	return pvs_rc(rados_mon_command(st->cluster, cmd, 1, "", 0, out, outlen, status, statuslen));
}

int pvs_explain_write_timeout(struct pvstore *st, int err, const char *what)
{
	char *out = NULL, *status = NULL;
	size_t outlen = 0, statuslen = 0;
	if (err != -ETIMEDOUT)
		return err;
	if (mon_command(st, "{\"prefix\": \"health\", \"format\": \"json\"}", &out, &outlen, &status,
			&statuslen) < 0)
		return err;
	const char *full = NULL;
	if (out && memmem(out, outlen, "\"OSD_FULL\"", 10))
		full = "an OSD is full";
	else if (out && memmem(out, outlen, "\"POOL_FULL\"", 11))
		full = "a pool is full";
	rados_buffer_free(out);
	rados_buffer_free(status);
	if (!full)
		return err;
	return pvs_failx(-ENOSPC, "%s: the cluster refuses writes: %s (ceph health)", what, full);
}

int pvstore_blocklist_add(struct pvstore *st, const char *addr, uint32_t expire_s)
{
	char a[64];
	int r;

	if (!fence_addr_ok(addr))
		return pvs_failx(-EINVAL, "'%s' is not an address to blocklist (IP or IP:PORT/NONCE)",
				 addr ? addr : "(null)");
	if (expire_s < 1 || expire_s > MAX_EXPIRE_S)
		return pvs_failx(-EINVAL, "blocklist expiry %u s is not within 1 s .. 30 days", expire_s);
	snprintf(a, sizeof(a), "%s", addr); /* the API takes a non-const string */
	r = pvs_rc(rados_blocklist_add(st->cluster, a, expire_s));
	if (r < 0)
		return pvs_fail(r, "blocklisting %s", addr);
	return 0;
}

int pvstore_blocklist_list(struct pvstore *st, struct pvstore_blocklist_entry **out, size_t *n)
{
	char *buf = NULL, *status = NULL;
	size_t buflen = 0, statuslen = 0, cnt = 0, cap = 0;
	struct pvstore_blocklist_entry *v = NULL;
	int r;

	*out = NULL;
	*n = 0;
	/* The plain format is one "ADDR UNTIL" line per entry. */
	r = mon_command(st, "{\"prefix\": \"osd blocklist ls\"}", &buf, &buflen, &status, &statuslen);
	if (r < 0) {
		pvs_fail(r, "osd blocklist ls");
		goto out;
	}
	for (size_t pos = 0; pos < buflen;) {
		size_t end = pos;
		while (end < buflen && buf[end] != '\n')
			end++;
		char line[160];
		size_t ll = end - pos < sizeof(line) - 1 ? end - pos : sizeof(line) - 1;
		memcpy(line, buf + pos, ll);
		line[ll] = '\0';
		pos = end + 1;
		if (!line[0])
			continue;
		if (cnt == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct pvstore_blocklist_entry *nv = realloc(v, ncap * sizeof(*v));
			if (!nv) {
				r = pvs_fail(-ENOMEM, "osd blocklist ls");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		char *sp = strchr(line, ' ');
		if (sp)
			*sp = '\0';
		pvs_copy(v[cnt].addr, sizeof(v[cnt].addr), line);
		pvs_copy(v[cnt].until, sizeof(v[cnt].until), sp ? sp + 1 : "");
		cnt++;
	}
	*out = v;
	*n = cnt;
	v = NULL;
	r = 0;
out:
	free(v);
	rados_buffer_free(buf);
	rados_buffer_free(status);
	return r;
}

int pvstore_blocklist_remove(struct pvstore *st, const char *addr)
{
	char json[160], *buf = NULL, *status = NULL;
	size_t buflen = 0, statuslen = 0;
	int r;

	if (!fence_addr_ok(addr))
		return pvs_failx(-EINVAL, "'%s' is not a blocklisted address form", addr ? addr : "(null)");
	snprintf(json, sizeof(json),
		 "{\"prefix\": \"osd blocklist\", \"blocklistop\": \"rm\", \"addr\": \"%s\"}", addr);
	r = mon_command(st, json, &buf, &buflen, &status, &statuslen);
	if (r < 0) {
		pvs_fail(r, "osd blocklist rm %s", addr);
	} else if (status && memmem(status, statuslen, "isn't blocklisted", 17)) {
		/* the mon answers 0 for an address it does not list */
		r = pvs_failx(-ENOENT, "%s is not blocklisted", addr);
	}
	rados_buffer_free(buf);
	rados_buffer_free(status);
	return r;
}

int pvstore_fence(struct pvstore *st, const char *addr, uint32_t expire_s)
{
	int r = pvstore_blocklist_add(st, addr, expire_s);
	if (r == -ETIMEDOUT) {
		/* Not confirmed: the monitor may still commit it later (after the
		 * partition that justified it healed). Withdraw it now: the removal
		 * goes out on the same monitor session, after the add, so whatever
		 * lands, lands in that order and leaves the address unfenced. */
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", pvstore_errmsg());
		pvstore_blocklist_remove(st, addr);
		return pvs_failx(r, "%s (the request is withdrawn)", msg);
	}
	if (r < 0)
		return r;
	/* An OSD that has not seen the new map yet can still apply an in-flight
	 * write of the fenced client; our next op carries the new epoch and makes
	 * each OSD it touches catch up first. */
	r = pvs_rc(rados_wait_for_latest_osdmap(st->cluster));
	if (r < 0)
		return pvs_fail(r, "waiting for the OSD map that fences %s", addr);
	return 0;
}

int pvstore_fence_and_break(struct pvstore *st, const char *addr, uint32_t expire_s,
			    const uint8_t uuid[16], const char *cookie)
{
	struct pvstore_lock_holder h;
	char oid[PVSTORE_OID_MAX];
	int r;

	pvstore_oid_guest(oid, sizeof(oid), uuid);
	if ((r = pvstore_fence(st, addr, expire_s)) < 0)
		return r;
	r = pvstore_lock_holder(st, uuid, &h);
	if (r == -ENOENT) {
		pvs_clear_error();
		return 0; /* nobody holds it (or no such guest): nothing to break */
	}
	if (r < 0)
		return r;
	if (!pvstore_addr_covers(addr, h.addr))
		return pvs_failx(-EBUSY, "%s is held by %s at %s, which a fence of %s does not cover", oid,
				 h.client, h.addr, addr);
	if (cookie && strcmp(cookie, h.cookie) != 0)
		return pvs_failx(-EBUSY, "%s is held with cookie %s, not %s", oid, h.cookie, cookie);
	r = pvstore_lock_break(st, uuid, &h);
	if (r == -ENOENT) {
		pvs_clear_error();
		return 0; /* released meanwhile */
	}
	return r;
}
