/* See ceph_user.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ceph_user.h"
#include "file_put.h"
#include "keyring.h"
#include "pvstore/pvstore.h"

int pvhad_make_ceph_user(const struct agent_config *cfg, const char *admin_keyring, const char *out,
			 char *entity, size_t entlen, char *why, size_t wl)
{
	struct pvstore_config sc = {
		.conf_path = cfg->ceph_conf,
		.client_name = "client.admin",
		.keyring = admin_keyring,
		.pool = cfg->pool,
	};
	struct pvstore *st = NULL;
	char key[PVSTORE_KEY_MAX], ring[256];
	int err = pvstore_node_entity(entity, entlen, cfg->node_name);
	if (err) {
		snprintf(why, wl, "node name %s: %s", cfg->node_name, strerror(-err));
		return err;
	}
	err = pvstore_connect(&sc, &st);
	if (!err)
		err = pvstore_key_node(st, cfg->node_name, key, sizeof(key));
	if (err) {
		snprintf(why, wl, "%s", pvstore_errmsg());
		pvstore_disconnect(st);
		return err;
	}
	pvstore_disconnect(st);
	int n = pv_keyring_format(ring, sizeof(ring), entity, key);
	memset(key, 0, sizeof(key));
	if (n < 0) {
		snprintf(why, wl, "the keyring for %s: %s", entity, strerror(-n));
		return n;
	}
	/* a reader never sees half a keyring; a crash leaves the old one or this */
	err = pv_file_put(out, ring, (size_t)n, 0600, true);
	memset(ring, 0, sizeof(ring));
	if (err)
		snprintf(why, wl, "writing %s: %s", out, strerror(-err));
	return err;
}
