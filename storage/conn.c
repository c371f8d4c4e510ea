/* The connection, error messages, uuids and object names. See pvstore.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"

static _Thread_local char errmsg[512];

const char *pvstore_errmsg(void)
{
	return errmsg;
}

void pvs_clear_error(void)
{
	errmsg[0] = '\0';
}

static void vset(int err, bool with_strerror, const char *fmt, va_list ap)
{
	int n = vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	if (with_strerror && n >= 0 && (size_t)n < sizeof(errmsg) - 1) {
		size_t used = (size_t)n;
		const char *e = strerror(-err);
		size_t elen = strlen(e);
		/* ": " then the reason, cut to what fits */
		if (used + 2 + elen >= sizeof(errmsg))
			elen = sizeof(errmsg) - used - 3;
		if (used + 2 < sizeof(errmsg)) {
			memcpy(errmsg + used, ": ", 2);
			memcpy(errmsg + used + 2, e, elen);
			errmsg[used + 2 + elen] = '\0';
		}
	}
}

int pvs_fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, true, fmt, ap);
	va_end(ap);
	return err;
}

int pvs_failx(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, false, fmt, ap);
	va_end(ap);
	return err;
}

bool pvs_name_ok(const char *s)
{
	size_t n;
	if (!s || !s[0] || s[0] == '.' || s[0] == '-')
		return false;
	for (n = 0; s[n]; n++) {
		char c = s[n];
		if (n >= PVSTORE_NAME_MAX)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool pvs_copy(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n);
	if (len == n) {
		memcpy(dst, src, n - 1);
		dst[n - 1] = '\0';
		return false;
	}
	memcpy(dst, src, len + 1);
	return true;
}

bool pvs_uuid_is_nil(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

uint64_t pvs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- uuids ---------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pvstore_uuid_parse(const char *s, uint8_t out[16])
{
	int i = 0, pos = 0;
	if (!s || strlen(s) != 36)
		return pvs_failx(-EINVAL, "pvstore_uuid_parse: '%s' is not a uuid", s ? s : "(null)");
	for (pos = 0; pos < 36;) {
		if (pos == 8 || pos == 13 || pos == 18 || pos == 23) {
			if (s[pos] != '-')
				return pvs_failx(-EINVAL, "pvstore_uuid_parse: '%s' is not a uuid", s);
			pos++;
			continue;
		}
		int hi = hexval(s[pos]), lo = hexval(s[pos + 1]);
		if (hi < 0 || lo < 0)
			return pvs_failx(-EINVAL, "pvstore_uuid_parse: '%s' is not a uuid", s);
		out[i++] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	return 0;
}

void pvstore_uuid_format(const uint8_t u[16], char out[PVSTORE_UUID_STR])
{
	snprintf(out, PVSTORE_UUID_STR,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
		 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
		 u[15]);
}

int pvstore_uuid_generate(uint8_t out[16])
{
	size_t got = 0;
	while (got < 16) {
		ssize_t r = getrandom(out + got, 16 - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return pvs_fail(-errno, "pvstore_uuid_generate: getrandom");
		}
		got += (size_t)r;
	}
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x40); /* version 4 */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	return 0;
}

/* ---- object names --------------------------------------------------------- */

static int oid_print(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int oid_print(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return 0;
}

int pvstore_oid_guest(char *buf, size_t len, const uint8_t uuid[16])
{
	char u[PVSTORE_UUID_STR];
	pvstore_uuid_format(uuid, u);
	return oid_print(buf, len, PVSTORE_OID_GUEST_PREFIX "%s", u);
}

int pvstore_oid_disk_header(char *buf, size_t len, const uint8_t uuid[16])
{
	char u[PVSTORE_UUID_STR];
	pvstore_uuid_format(uuid, u);
	return oid_print(buf, len, PVSTORE_OID_DISK_PREFIX "%s" PVSTORE_OID_DISK_HEADER_SUFFIX, u);
}

int pvstore_oid_disk_data(char *buf, size_t len, const uint8_t uuid[16], uint64_t index)
{
	char u[PVSTORE_UUID_STR];
	pvstore_uuid_format(uuid, u);
	return oid_print(buf, len, PVSTORE_OID_DISK_PREFIX "%s.%016llx", u, (unsigned long long)index);
}

int pvstore_oid_node(char *buf, size_t len, const char *node_name)
{
	return oid_print(buf, len, PVSTORE_OID_NODE_PREFIX "%s", node_name);
}

int pvstore_oid_image(char *buf, size_t len, const char *sha256_hex)
{
	return oid_print(buf, len, PVSTORE_OID_IMAGE_PREFIX "%s", sha256_hex);
}

int pvstore_oid_events(char *buf, size_t len, const uint8_t *guest)
{
	char u[PVSTORE_UUID_STR];
	if (!guest)
		return oid_print(buf, len, "%s", PVSTORE_OID_EVENTS_CLUSTER);
	pvstore_uuid_format(guest, u);
	return oid_print(buf, len, PVSTORE_OID_EVENTS_GUEST_PREFIX "%s", u);
}

/* ---- connection ----------------------------------------------------------- */

static int conf_set(rados_t c, const char *opt, const char *val)
{
	int r = pvs_rc(rados_conf_set(c, opt, val));
	if (r < 0)
		return pvs_fail(r, "pvstore_connect: setting %s=%s", opt, val);
	return 0;
}

static int conf_set_uint(rados_t c, const char *opt, unsigned v, unsigned dflt)
{
	char s[16];
	snprintf(s, sizeof(s), "%u", v ? v : dflt);
	return conf_set(c, opt, s);
}

int pvs_config_check(const char *who, const struct pvstore_config *cfg, const char **client,
		     const char **pool)
{
	if (!cfg || !cfg->conf_path || !cfg->conf_path[0])
		return pvs_failx(-EINVAL, "%s: no ceph.conf path given", who);
	*client = cfg->client_name && cfg->client_name[0] ? cfg->client_name : PVSTORE_DEFAULT_CLIENT;
	*pool = cfg->pool && cfg->pool[0] ? cfg->pool : PVSTORE_DEFAULT_POOL;
	if (strlen(*client) > PVSTORE_NAME_MAX || strncmp(*client, "client.", 7) != 0 || !(*client)[7])
		return pvs_failx(-EINVAL, "%s: client name '%s' is not client.<id>", who, *client);
	if (!pvs_name_ok(*pool))
		return pvs_failx(-EINVAL, "%s: bad pool name '%s' (1..63 of A-Z a-z 0-9 . _ -)", who, *pool);
	if (cfg->rados_namespace && cfg->rados_namespace[0] && !pvs_name_ok(cfg->rados_namespace))
		return pvs_failx(-EINVAL, "%s: bad namespace '%s'", who, cfg->rados_namespace);
	return 0;
}

int pvs_cluster_open(const struct pvstore_config *cfg, const char *client, rados_t *out)
{
	rados_t cluster;
	int r = pvs_rc(rados_create2(&cluster, "ceph", client, 0));
	if (r < 0)
		return pvs_fail(r, "pvstore_connect: rados_create2(%s)", client);
	r = pvs_rc(rados_conf_read_file(cluster, cfg->conf_path));
	if (r < 0) {
		pvs_fail(r, "pvstore_connect: reading %s", cfg->conf_path);
		goto err_shutdown;
	}
	/* The library logs nothing: errors come back as -errno and a message. */
	if ((r = conf_set(cluster, "log_to_stderr", "false")) < 0 ||
	    (r = conf_set(cluster, "err_to_stderr", "false")) < 0 ||
	    (r = conf_set_uint(cluster, "client_mount_timeout", cfg->mount_timeout_s,
			       PVSTORE_DEFAULT_TIMEOUT_S)) < 0 ||
	    (r = conf_set_uint(cluster, "rados_osd_op_timeout", cfg->osd_op_timeout_s,
			       PVSTORE_DEFAULT_TIMEOUT_S)) < 0 ||
	    (r = conf_set_uint(cluster, "rados_mon_op_timeout", cfg->mon_op_timeout_s,
			       PVSTORE_DEFAULT_TIMEOUT_S)) < 0)
		goto err_shutdown;
	if (cfg->keyring && cfg->keyring[0] && (r = conf_set(cluster, "keyring", cfg->keyring)) < 0)
		goto err_shutdown;
	/* A secret given outright: no keyring file is read at all (so a VMM
	 * never even opens the conf's admin keyring). */
	if (cfg->key && cfg->key[0] &&
	    ((r = conf_set(cluster, "keyring", "")) < 0 || (r = conf_set(cluster, "key", cfg->key)) < 0))
		goto err_shutdown;

	r = pvs_rc(rados_connect(cluster));
	if (r < 0) {
		if (r == -ETIMEDOUT)
			pvs_fail(r, "pvstore_connect: no monitor of %s answered within %u s",
				 cfg->conf_path,
				 cfg->mount_timeout_s ? cfg->mount_timeout_s : PVSTORE_DEFAULT_TIMEOUT_S);
		else
			pvs_fail(r, "pvstore_connect: connecting as %s with %s", client, cfg->conf_path);
		goto err_shutdown;
	}
	*out = cluster;
	return 0;

err_shutdown:
	rados_shutdown(cluster);
	return r;
}

int pvstore_connect(const struct pvstore_config *cfg, struct pvstore **out)
{
	struct pvstore *st;
	const char *client, *pool;
	int r;

	*out = NULL;
	if ((r = pvs_config_check("pvstore_connect", cfg, &client, &pool)) < 0)
		return r;

	st = calloc(1, sizeof(*st));
	if (!st)
		return pvs_fail(-ENOMEM, "pvstore_connect");
	snprintf(st->pool, sizeof(st->pool), "%s", pool);
	snprintf(st->client_name, sizeof(st->client_name), "%s", client);

	r = pvs_cluster_open(cfg, client, &st->cluster);
	if (r < 0)
		goto err_free;
	r = pvs_rc(rados_ioctx_create(st->cluster, pool, &st->io));
	if (r < 0) {
		if (r == -ENOENT)
			pvs_failx(r, "pvstore_connect: pool '%s' does not exist", pool);
		else
			pvs_fail(r, "pvstore_connect: opening pool '%s'", pool);
		goto err_shutdown;
	}
	if (cfg->rados_namespace && cfg->rados_namespace[0]) {
		rados_ioctx_set_namespace(st->io, cfg->rados_namespace);
		snprintf(st->ns, sizeof(st->ns), "%s", cfg->rados_namespace);
	}
	*out = st;
	return 0;

err_shutdown:
	rados_shutdown(st->cluster);
err_free:
	free(st);
	return r;
}

void pvstore_disconnect(struct pvstore *st)
{
	if (!st)
		return;
	rados_ioctx_destroy(st->io);
	rados_shutdown(st->cluster);
	free(st);
}

int pvstore_client_addr(struct pvstore *st, char *buf, size_t len)
{
	char *addrs = NULL;
	int r = pvs_rc(rados_getaddrs(st->cluster, &addrs));
	if (r < 0)
		return pvs_fail(r, "pvstore_client_addr: rados_getaddrs");
	if (strlen(addrs) >= len) {
		pvs_failx(-ERANGE, "pvstore_client_addr: address '%s' does not fit", addrs);
		free(addrs);
		return -ERANGE;
	}
	snprintf(buf, len, "%s", addrs);
	free(addrs);
	return 0;
}

int pvstore_client_entity(struct pvstore *st, char *buf, size_t len)
{
	uint64_t id = rados_get_instance_id(st->cluster);
	int n = snprintf(buf, len, "client.%llu", (unsigned long long)id);
	if (n < 0 || (size_t)n >= len)
		return pvs_failx(-ERANGE, "pvstore_client_entity: buffer too small");
	return 0;
}

int pvs_read_object(struct pvstore *st, const char *oid, size_t max, uint8_t **buf, size_t *len)
{
	/* One byte more than allowed tells "exactly max" from "larger". */
	uint8_t *b = malloc(max + 1);
	int r;
	if (!b)
		return pvs_fail(-ENOMEM, "reading %s", oid);
	r = pvs_rc(rados_read(st->io, oid, (char *)b, max + 1, 0));
	if (r < 0) {
		free(b);
		if (r == -ENOENT)
			return pvs_failx(r, "%s does not exist", oid);
		return pvs_fail(r, "reading %s", oid);
	}
	if ((size_t)r > max) {
		free(b);
		return pvs_failx(-EFBIG, "%s is larger than %zu bytes", oid, max);
	}
	*buf = b;
	*len = (size_t)r;
	return 0;
}

#define INDEX_PAGE 512

int pvs_index_walk(struct pvstore *st, const char *oid, const char *what,
		   int (*each)(void *ctx, const char *key, size_t kl, const char *val, size_t vl),
		   void *ctx)
{
	char after[PVSTORE_NAME_MAX + 1] = "";
	unsigned char more = 1;

	while (more) {
		rados_read_op_t op = rados_create_read_op();
		rados_omap_iter_t it = NULL;
		int prval = 0;
		char *k, *val;
		size_t kl, vl;

		more = 0;
		rados_read_op_omap_get_vals2(op, after, "", INDEX_PAGE, &it, &more, &prval);
		int r = pvs_rc(rados_read_op_operate(op, st->io, oid, 0));
		rados_release_read_op(op);
		if (r == 0 && prval < 0)
			r = pvs_rc(prval);
		if (r < 0) {
			if (it) /* allocated by the op even when it fails */
				rados_omap_get_end(it);
			return r == -ENOENT ? 0 : pvs_fail(r, "listing the %s", what);
		}
		while (rados_omap_get_next2(it, &k, &val, &kl, &vl) == 0 && k) {
			if (kl > PVSTORE_NAME_MAX) {
				rados_omap_get_end(it);
				return pvs_failx(-EBADMSG, "%s entry '%.64s...' is too long", what, k);
			}
			r = each(ctx, k, kl, val, vl);
			if (r < 0) {
				rados_omap_get_end(it);
				return r;
			}
			memcpy(after, k, kl);
			after[kl] = '\0';
		}
		rados_omap_get_end(it);
	}
	return 0;
}
