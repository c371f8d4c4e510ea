/*
 * pvha cluster init and pvha node join: bootstrap a node on hosts that run
 * Corosync and reach a Ceph cluster (docs/install.md).
 *
 * Both run once per node, as root, with a Ceph user allowed to make pools and
 * users (the admin's keyring), in phases that each say what to fix when they
 * fail: ask the local corosync who this node is and whether it is quorate;
 * check the existing config file against what would be written (before
 * anything changes); make or adopt the pool and the registry (init) or check
 * them (join) through libpvstore; make this node's cephx user with the
 * node's caps (pvstore_key_node); write its keyring, a minimal ceph.conf
 * naming that keyring, and pvhad.conf. Running either again changes nothing:
 * an existing pool, tag, registry, user or file with the same content is
 * kept; one with other content is an error, never overwritten.
 *
 * The files go beside the config (default /etc/pvha): DIR/ceph.conf (fsid,
 * mon_host, keyring), DIR/ceph.client.pvha-node-NAME.keyring (0600). pvhad
 * connects as client.pvha-node-NAME with them and passes the same conf and
 * user to its VMMs, so no node keeps the admin key for pvha.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pvcluster/corosync.h"
#include "pvstore/pvstore.h"

#include "conf_edit.h"
#include "file_put.h"
#include "keyring.h"
#include "pvha_cli.h"

#define CONFIG_DEFAULT "/etc/pvha/pvhad.conf"

struct init_opts {
	bool create; /* cluster init (true) or node join */
	const char *ceph_conf, *pool, *keyring, *client, *config, *address;
	unsigned timeout_s;
	FILE *out; /* the progress lines */
};

/* What this node gets: the values of the keys init writes. */
struct node_plan {
	char node[64], address[64];
	char dir[1024];
	char ceph_conf[1100], keyring[1200], user[PVSTORE_ENTITY_MAX];
	char pool[PVSTORE_NAME_MAX + 1];
};

/* The keys init writes, in the order it writes them. */
static void plan_keys(const struct node_plan *p, const char *keys[6][2])
{
	static const char *const names[6] = { "node_name", "address", "ceph_conf", "ceph_user",
					      "ceph_keyring", "pool" };
	const char *vals[6] = { p->node, p->address, p->ceph_conf, p->user + strlen("client."),
				p->keyring, p->pool };
	for (int i = 0; i < 6; i++)
		keys[i][0] = names[i], keys[i][1] = vals[i];
}

/* Every key init writes goes into conf; one that is set to another value
 * already is refused, naming it. 0, or 1 after a message. */
static int conf_plan(struct conf_edit *conf, const char *path, const struct node_plan *p)
{
	const char *keys[6][2];
	char have[CONF_EDIT_LINE_MAX];
	plan_keys(p, keys);
	for (int i = 0; i < 6; i++) {
		int err = conf_edit_set(conf, keys[i][0], keys[i][1]);
		if (err == -EEXIST && conf_edit_get(conf, keys[i][0], have, sizeof(have))) {
			fprintf(stderr,
				"pvha: %s exists and differs: %s is '%s' there, this node needs '%s'.\n"
				"  Fix that line (or move the file away) and run this again.\n",
				path, keys[i][0], have, keys[i][1]);
			return 1;
		}
		if (err) {
			fprintf(stderr, "pvha: %s: cannot set %s = %s: %s\n", path, keys[i][0], keys[i][1],
				err == -EINVAL ? "the value cannot be written in this format" : strerror(-err));
			return 1;
		}
	}
	return 0;
}

/* Whether path holds exactly data (*same), or is absent (*absent). 0, or
 * -errno when it cannot be read. */
static int file_compare(const char *path, const char *data, bool *same, bool *absent)
{
	size_t len = strlen(data), got = 0;
	*same = *absent = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*absent = errno == ENOENT;
		return *absent ? 0 : -errno;
	}
	char *old = malloc(len + 1); /* one byte more tells a longer file */
	if (!old) {
		close(fd);
		return -ENOMEM;
	}
	for (ssize_t n; got < len + 1 && (n = read(fd, old + got, len + 1 - got)) != 0; got += (size_t)n)
		if (n < 0) {
			int err = -errno;
			free(old);
			close(fd);
			return err;
		}
	*same = got == len && !memcmp(old, data, len);
	free(old);
	close(fd);
	return 0;
}

/* Refuses (1, after a message) when path exists with other bytes than data. */
static int file_check(const char *path, const char *data)
{
	bool same, absent;
	int err = file_compare(path, data, &same, &absent);
	if (err) {
		fprintf(stderr, "pvha: reading %s: %s\n", path, strerror(-err));
		return 1;
	}
	if (!same && !absent) {
		fprintf(stderr, "pvha: %s exists and differs from what this node needs "
			"(another cluster's, or edited by hand): move it away and run this again\n", path);
		return 1;
	}
	return 0;
}

/* Writes data to path whole and durably (pv_file_put), with mode; nothing
 * when path holds data already (*same). 0, or 1 after a message. */
static int file_put(const char *path, const char *data, mode_t mode, bool *same)
{
	bool absent;
	if (file_compare(path, data, same, &absent) == 0 && *same)
		return 0;
	int err = pv_file_put(path, data, strlen(data), mode, true);
	if (err) {
		fprintf(stderr, "pvha: writing %s: %s\n", path, strerror(-err));
		return 1;
	}
	return 0;
}

/* Phase 1: who this node is and whether its partition is quorate. */
static int check_corosync(const struct init_opts *o, struct node_plan *p)
{
	struct pvclus_cs_probe pr;
	int err = pvclus_cs_probe(&pr);
	switch (err) {
	case 0:
		break;
	case -ENOTCONN:
		fprintf(stderr, "pvha: corosync is not running on this host (or this user may not talk to it):\n"
			"  configure /etc/corosync/corosync.conf, `systemctl enable --now corosync`, and run\n"
			"  this as root (docs/install.md, step 3)\n");
		return 1;
	case -ENOPROTOOPT:
		fprintf(stderr, "pvha: corosync runs without votequorum: set `quorum { provider: "
			"corosync_votequorum }` in corosync.conf and restart it\n");
		return 1;
	case -ENOENT:
		fprintf(stderr, "pvha: corosync's nodelist has no entry for this node (id %u): add it "
			"(name, nodeid, ring0_addr) on every node\n", pr.nodeid);
		return 1;
	default:
		fprintf(stderr, "pvha: asking corosync: %s\n", strerror(-err));
		return 1;
	}
	if (!pr.quorate) {
		fprintf(stderr, "pvha: corosync on this node (%s) is not quorate: %u of %u expected votes, "
			"%u needed.\n  Start corosync on the other nodes (`corosync-quorumtool -s` shows "
			"who is missing) and run this again.\n", pr.self.name, pr.total_votes,
			pr.expected_votes, pr.quorum);
		return 1;
	}
	snprintf(p->node, sizeof(p->node), "%s", pr.self.name);
	const char *addr = o->address ? o->address : pr.self.addr;
	if (!addr[0] || strspn(addr, "0123456789.") != strlen(addr)) {
		fprintf(stderr, "pvha: corosync's ring0_addr for %s is '%s', not an IPv4 address: give the "
			"address Ceph sees this node's clients come from with --address\n", pr.self.name, addr);
		return 1;
	}
	snprintf(p->address, sizeof(p->address), "%s", addr);
	fprintf(o->out, "corosync: node %s (id %u), address %s, quorate with %u of %u votes\n", p->node,
	       pr.nodeid, p->address, pr.total_votes, pr.expected_votes);
	return 0;
}

/* Phase 3: the pool and the registry, then this node's user. The key into
 * key. 0, or 1 after a message. */
static int prepare_ceph(const struct init_opts *o, const struct node_plan *p, struct pvstore_pool_info *info,
			char *key, size_t keylen)
{
	struct pvstore_config cfg = {
		.conf_path = o->ceph_conf,
		.client_name = o->client,
		.keyring = o->keyring,
		.pool = p->pool,
		.mount_timeout_s = o->timeout_s,
		.osd_op_timeout_s = o->timeout_s,
		.mon_op_timeout_s = o->timeout_s,
	};
	struct pvstore *st;
	int err = pvstore_pool_prepare(&cfg, o->create, info);
	if (err == -ETIMEDOUT) {
		fprintf(stderr, "pvha: Ceph is unreachable: no monitor named in %s answered within %u s.\n"
			"  Check mon_host there and that this host reaches it (`ceph -c %s -s`).\n",
			o->ceph_conf, o->timeout_s, o->ceph_conf);
		return 1;
	}
	if (err) {
		fprintf(stderr, "pvha: %s\n", pvstore_errmsg());
		if (err == -EACCES || err == -EPERM)
			fprintf(stderr, "  Run this with a Ceph user allowed to make pools and users: "
				"--keyring with the admin's keyring.\n");
		return 1;
	}
	fprintf(o->out, "pool %s: %s, registry %s\n", p->pool,
	       info->pool_created ? "created" : info->tagged ? "adopted" : "a pvha pool already",
	       info->registry_created ? "created" : "there");
	if ((err = pvstore_connect(&cfg, &st))) {
		fprintf(stderr, "pvha: %s\n", pvstore_errmsg());
		return 1;
	}
	err = pvstore_key_node(st, p->node, key, keylen);
	if (err) {
		fprintf(stderr, "pvha: %s\n", pvstore_errmsg());
		if (err == -EACCES || err == -EPERM)
			fprintf(stderr, "  %s has no right to create Ceph users: run this with the admin's "
				"keyring (--keyring), or create %s with `ceph auth get-or-create` (docs/storage.md)\n",
				o->client ? o->client : PVSTORE_DEFAULT_CLIENT, p->user);
		else if (err == -EEXIST)
			fprintf(stderr, "  remove it (`ceph auth rm %s`) or give it those caps, then run this again\n",
				p->user);
	}
	pvstore_disconnect(st);
	if (!err)
		fprintf(o->out, "cephx user %s: its key in %s\n", p->user, p->keyring);
	return err ? 1 : 0;
}

/* Phase 4: the keyring, the ceph.conf and pvhad.conf. 0, or 1 after a message. */
static int write_files(const struct init_opts *o, const struct node_plan *p, const struct pvstore_pool_info *info,
		       const char *key, const struct conf_edit *conf)
{
	char keyring[512], ceph_conf[4096];
	size_t len = 0;
	bool same;
	int r = 1;

	if (pv_keyring_format(keyring, sizeof(keyring), p->user, key) < 0) {
		fprintf(stderr, "pvha: the monitor's key for %s is not a cephx key\n", p->user);
		return 1;
	}
	snprintf(ceph_conf, sizeof(ceph_conf),
		 "# Written by pvha cluster init / node join: the monitors of Ceph cluster %s\n"
		 "# and this node's key.\n"
		 "[global]\n\tfsid = %s\n\tmon_host = %s\n[client]\n\tkeyring = %s\n",
		 info->fsid, info->fsid, info->mon_host, p->keyring);
	char *all = conf_edit_text(conf, &len);
	if (!all)
		goto out;
	/* both checked before either is written: a refusal leaves nothing half done */
	if (file_check(p->keyring, keyring) || file_check(p->ceph_conf, ceph_conf) ||
	    file_put(p->keyring, keyring, 0600, &same) || file_put(p->ceph_conf, ceph_conf, 0644, &same) ||
	    file_put(o->config, all, 0644, &same))
		goto out;
	fprintf(o->out, "config %s: %s\n", o->config, same ? "unchanged" : "written");
	r = 0;
out:
	free(all);
	memset(keyring, 0, sizeof(keyring));
	return r;
}

/* The plan's file names: beside the config. 0, or 1 after a message. */
static int plan_files(const struct init_opts *o, struct node_plan *p)
{
	const char *slash = strrchr(o->config, '/');
	if (strlen(o->config) >= sizeof(p->dir)) {
		fprintf(stderr, "pvha: --config %s: path too long\n", o->config);
		return 1;
	}
	if (slash == o->config)
		snprintf(p->dir, sizeof(p->dir), "/");
	else if (slash)
		snprintf(p->dir, sizeof(p->dir), "%.*s", (int)(slash - o->config), o->config);
	else
		snprintf(p->dir, sizeof(p->dir), ".");
	struct stat sb;
	if (stat(p->dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "pvha: %s: the config's directory does not exist (install the pvha package, "
			"or mkdir it)\n", p->dir);
		return 1;
	}
	if (pvstore_node_entity(p->user, sizeof(p->user), p->node)) {
		fprintf(stderr, "pvha: corosync's name for this node, '%s', is not a valid pvha node name "
			"(1..63 of A-Z a-z 0-9 . _ -)\n", p->node);
		return 1;
	}
	snprintf(p->ceph_conf, sizeof(p->ceph_conf), "%s/ceph.conf", p->dir);
	snprintf(p->keyring, sizeof(p->keyring), "%s/ceph.%s.keyring", p->dir, p->user);
	return 0;
}

static int run_init(struct init_opts *o, bool json)
{
	struct node_plan p;
	struct conf_edit conf;
	struct pvstore_pool_info info;
	char key[PVSTORE_KEY_MAX], from_conf[PATH_MAX], from_pool[PVSTORE_NAME_MAX + 1];
	int rc = 1;

	memset(&p, 0, sizeof(p));
	int err = conf_edit_load(&conf, o->config);
	if (err) {
		fprintf(stderr, "pvha: %s: %s\n", o->config,
			err == -E2BIG ? "too many or too long lines for a pvhad.conf" : strerror(-err));
		return 1;
	}
	if (!conf.exists && conf_edit_parse(&conf, "# pvhad configuration (pvhad.conf(5)), written by "
					    "pvha cluster init / node join\n"))
		return 1;
	if (!o->ceph_conf) {
		/* node join again: the Ceph and the pool the config names */
		if (!conf_edit_get(&conf, "ceph_conf", from_conf, sizeof(from_conf))) {
			fprintf(stderr, "pvha: --ceph-conf FILE is needed (%s names no ceph_conf)\n", o->config);
			goto out;
		}
		o->ceph_conf = from_conf;
		if (!o->pool && conf_edit_get(&conf, "pool", from_pool, sizeof(from_pool)))
			o->pool = from_pool;
	}
	if (access(o->ceph_conf, R_OK) < 0) {
		fprintf(stderr, "pvha: --ceph-conf %s: %s (give the cluster's ceph.conf, the one `ceph -s` "
			"uses)\n", o->ceph_conf, strerror(errno));
		goto out;
	}
	if (o->keyring && access(o->keyring, R_OK) < 0) {
		fprintf(stderr, "pvha: --keyring %s: %s\n", o->keyring, strerror(errno));
		goto out;
	}
	snprintf(p.pool, sizeof(p.pool), "%s", o->pool ? o->pool : PVSTORE_DEFAULT_POOL);
	if (check_corosync(o, &p) || plan_files(o, &p) || conf_plan(&conf, o->config, &p) ||
	    prepare_ceph(o, &p, &info, key, sizeof(key)))
		goto out;
	rc = write_files(o, &p, &info, key, &conf);
	memset(key, 0, sizeof(key));
	if (!rc && json) {
		printf("{\"node\":");
		json_str(p.node);
		json_field("pool", p.pool); /* json_field writes its leading comma */
		printf(",\"pool_created\":%s,\"registry_created\":%s", info.pool_created ? "true" : "false",
		       info.registry_created ? "true" : "false");
		json_field("config", o->config);
		printf("}\n");
	}
	if (!rc)
		fprintf(o->out, "next: `systemctl enable --now pvhad` here%s\n",
		       o->create ? "; `pvha node join --ceph-conf FILE` on every other node" : "");
out:
	conf_edit_free(&conf);
	return rc;
}

/* cluster init / node join OPTIONS. */
static int cmd_bootstrap(const struct command *c, int argc, char **argv, bool json, bool create)
{
	struct init_opts o = { .create = create, .config = NULL };
	const char *timeout = NULL;
	int64_t t = 10;
	const struct opt opts[] = {
		{ "--ceph-conf", &o.ceph_conf, NULL }, { "--pool", &o.pool, NULL },
		{ "--keyring", &o.keyring, NULL },     { "--ceph-client", &o.client, NULL },
		{ "--config", &o.config, NULL },       { "--address", &o.address, NULL },
		{ "--timeout", &timeout, NULL },       { NULL, NULL, NULL },
	};
	int r = args_parse(c, argc, argv, opts, NULL, NULL);
	if (r)
		return r;
	if (create && !o.ceph_conf)
		return usage_err(c, "--ceph-conf FILE is required");
	if (o.pool && strlen(o.pool) > PVSTORE_NAME_MAX)
		return usage_err(c, "--pool: at most %d characters", PVSTORE_NAME_MAX);
	if (timeout && (r = num_arg(c, "--timeout", timeout, 1, 600, &t)))
		return r;
	o.timeout_s = (unsigned)t;
	if (!o.config)
		o.config = CONFIG_DEFAULT;
	o.out = json ? stderr : stdout; /* with --json, stdout holds the JSON alone */
	return run_init(&o, json);
}

int cmd_cluster_init(const struct command *c, int argc, char **argv, bool json)
{
	return cmd_bootstrap(c, argc, argv, json, true);
}

int cmd_node_join(const struct command *c, int argc, char **argv, bool json)
{
	return cmd_bootstrap(c, argc, argv, json, false);
}
