/*
 * pvhad --make-ceph-user: the install step that gives a node its own cephx
 * user, client.pvha-node-<node_name> (pvstore_node_caps: the pool, fencing,
 * and making its guests' users; docs/storage.md), so that the agent never
 * holds the admin key. Run once per node by whoever holds an admin keyring;
 * the agent then connects with the keyring it wrote. Main thread, blocking.
 */
#ifndef PVHAD_CEPH_USER_H
#define PVHAD_CEPH_USER_H

#include <stddef.h>

#include "agent_config.h"

/* Connects to cfg's Ceph (ceph_conf, pool) as client.admin with
 * admin_keyring, makes (or finds) the node's user and writes its keyring to
 * out (created owner-only, replacing an older one). Its entity out in
 * entity. Returns 0, or -errno with a one-line reason in why. */
int pvhad_make_ceph_user(const struct agent_config *cfg, const char *admin_keyring, const char *out,
			 char *entity, size_t entlen, char *why, size_t wl);

#endif /* PVHAD_CEPH_USER_H */
