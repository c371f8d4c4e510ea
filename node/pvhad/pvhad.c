/*
 * pvhad: the node agent's program. The orchestration is the agent object of
 * libpvagent (cluster/agent/, pvcluster/agent.h); this file gives it the
 * real world: one qb_loop (timers, deferred jobs, signals), the Corosync
 * glue (cluster/corosync.c), the storage connection and the event-log worker
 * (event_queue.c), this node's pvha-vmm processes (spawn, control socket,
 * SIGCHLD, adoption after an agent restart), the power fence program, and
 * the control API (libqb IPC service "pvhad", root only) that `pvha` uses.
 * Nothing here decides anything about guests (docs/agent.md).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <qb/qbipcs.h>
#include <qb/qbloop.h>
#include <qb/qbutil.h>

#include "agent_config.h"
#include "ceph_user.h"
#include "event_queue.h"
#include "file_put.h"
#include "http.h"
#include "jobs.h"
#include "keyring.h"
#include "netaddr.h"
#include "vmm_pidfile.h"
#include "log.h"
#include "metrics.h"
#include "proto/api.pb-c.h"
#include "pvcluster/agent.h"
#include "pvcluster/corosync.h"
#include "pvfence/agent.h"
#include "pvstore/pvstore.h"
#include "vmmctl.h"

#define CPG_GROUP "pvha"
#define STORAGE_WORKERS 4
#define STATE_DIR_DEFAULT "/var/lib/pvha"

extern char **environ;

/* A control-API request the agent answers later (its token). */
struct api_wait {
	qb_ipcs_connection_t *c; /* referenced until the answer is sent */
	uint64_t id;
};

/* One armed timer of the agent: libqb's timer callbacks carry one pointer. */
struct timer_rec {
	struct pvhad *d;
	void (*fn)(void *);
	void *arg;
	qb_loop_timer_handle h;
	uint64_t id;
	bool job; /* a deferred job, not a timer */
	struct timer_rec *next;
};

struct pvhad {
	qb_loop_t *loop;
	struct agent_config cfg;
	char incarnation[64];
	struct pvstore *st;
	struct event_queue *evq;
	struct job_pool *jobs;
	struct pvclus_cs *cs;
	qb_loop_timer_handle reconnect_timer;
	qb_ipcs_service_t *ipcs;
	struct pvclus_agent *agent;
	struct timer_rec *timers;
	uint64_t next_timer_id;
	/* metrics and dashboard (http.c): NULL when http_listen is off */
	struct http_server *http;
	struct metrics_tracker *tracker;
	struct pvclus_snapshot *snap;
	qb_loop_timer_handle publish_timer;
};

/* The process's root context: libqb's IPC poll handlers carry no pointer. */
static struct pvhad pvhad;

/* ---- the agent's ops: loop ------------------------------------------------- */

static void timer_unlink(struct pvhad *d, struct timer_rec *t)
{
	for (struct timer_rec **p = &d->timers; *p; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			return;
		}
	}
}

static void timer_fire(void *data)
{
	struct timer_rec *t = data;
	void (*fn)(void *) = t->fn;
	void *arg = t->arg;
	timer_unlink(t->d, t);
	free(t);
	fn(arg);
}

static int op_timer_add(void *ctx, uint64_t ms, void (*fn)(void *), void *arg, uint64_t *id)
{
	struct pvhad *d = ctx;
	struct timer_rec *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = (struct timer_rec){ .d = d, .fn = fn, .arg = arg, .id = ++d->next_timer_id };
	int err = qb_loop_timer_add(d->loop, QB_LOOP_MED, ms * QB_TIME_NS_IN_MSEC, t, timer_fire, &t->h);
	if (err) {
		free(t);
		return err;
	}
	t->next = d->timers;
	d->timers = t;
	*id = t->id;
	return 0;
}

static void op_timer_del(void *ctx, uint64_t id)
{
	struct pvhad *d = ctx;
	for (struct timer_rec *t = d->timers; t; t = t->next) {
		if (t->id == id && !t->job) {
			qb_loop_timer_del(d->loop, t->h);
			timer_unlink(d, t);
			free(t);
			return;
		}
	}
}

static int op_defer(void *ctx, void (*fn)(void *), void *arg)
{
	struct pvhad *d = ctx;
	struct timer_rec *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = (struct timer_rec){ .d = d, .fn = fn, .arg = arg, .job = true };
	int err = qb_loop_job_add(d->loop, QB_LOOP_MED, t, timer_fire);
	if (err) {
		free(t);
		return err;
	}
	t->next = d->timers;
	d->timers = t;
	return 0;
}

static uint64_t op_now_ms(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void op_log(void *ctx, enum pvclus_log_level level, const char *func, const char *line)
{
	(void)ctx;
	pvlog_write((enum pvlog_level)level, func, 0, "%s", line);
}

static int op_send(void *ctx, const void *buf, size_t len)
{
	struct pvhad *d = ctx;
	return d->cs ? pvclus_cs_send(d->cs, buf, len) : -ENOTCONN;
}

static int op_storage_submit(void *ctx, struct pvclus_job *j)
{
	struct pvhad *d = ctx;
	return d->jobs ? job_pool_submit(d->jobs, j) : -ENOTCONN;
}

static int32_t on_jobs_done(int32_t fd, int32_t revents, void *data)
{
	struct pvhad *d = data;
	(void)fd;
	(void)revents;
	job_pool_complete(d->jobs);
	return 0;
}

static void send_reply(qb_ipcs_connection_t *c, uint64_t id, Pvha__ApiReply *rep, const char *msg);

static void op_api_reply(void *ctx, void *token, Pvha__ApiReply *rep, const char *msg)
{
	struct api_wait *w = token;
	(void)ctx;
	send_reply(w->c, w->id, rep, msg);
	qb_ipcs_connection_unref(w->c);
	free(w);
}

static void op_event(void *ctx, const uint8_t *guest, const char *what, const char *why)
{
	struct pvhad *d = ctx;
	if (d->evq)
		event_queue_push(d->evq, guest, what, why);
	if (d->tracker)
		metrics_tracker_event(d->tracker, op_now_ms(d), time(NULL), guest, what, why);
}

/* ---- the agent's ops: this node's VMMs -------------------------------------- */

static void guest_dir(struct pvhad *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s/guests", d->cfg.run_dir);
}

static void sock_path(struct pvhad *d, const uint8_t uuid[16], char *buf, size_t len)
{
	char u[PVSTORE_UUID_STR], dir[600];
	pvstore_uuid_format(uuid, u);
	guest_dir(d, dir, sizeof(dir));
	snprintf(buf, len, "%s/%s.sock", dir, u);
}

static void image_path(struct pvhad *d, const char *sha256, char *path, size_t len)
{
	char dir[600];
	guest_dir(d, dir, sizeof(dir));
	snprintf(path, len, "%s/%s.elf", dir, sha256);
}

static bool op_image_cached(void *ctx, const char *sha256)
{
	char path[700];
	image_path(ctx, sha256, path, sizeof(path));
	return access(path, R_OK) == 0;
}

/* Puts the image the agent read from RADOS (data: NULL when it found it
 * cached) into the local cache; its path out. */
static int cache_image(struct pvhad *d, const char *sha256, const void *data, size_t n, char *path, size_t len)
{
	image_path(d, sha256, path, len);
	if (!data || access(path, R_OK) == 0)
		return access(path, R_OK) == 0 ? 0 : -ENOENT;
	return pv_file_put(path, data, n, 0644, false); /* a cache: read again after a crash */
}

/* A pipe holding entity's keyring (pvha-vmm --ceph-keyring /dev/fd/4): the
 * key never touches argv or a file. Its read end out (close-on-exec until
 * dup2'd). Returns 0 or -errno. */
static int vmm_keyring_pipe(const char *entity, const char *key, int *rd)
{
	char ring[256];
	int p[2];
	int n = pv_keyring_format(ring, sizeof(ring), entity, key);
	if (n < 0)
		return n;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	ssize_t w = write(p[1], ring, (size_t)n);
	memset(ring, 0, sizeof(ring));
	close(p[1]);
	if (w != n) {
		close(p[0]);
		return -EIO;
	}
	/* above 4: the child's dup2 to 3 (the migration key) must not hit it */
	*rd = fcntl(p[0], F_DUPFD_CLOEXEC, 5);
	int err = *rd < 0 ? -errno : 0;
	close(p[0]);
	return err;
}

static int op_vmm_spawn(void *ctx, const struct pvclus_vmm_start *s, pid_t *pid)
{
	struct pvhad *d = ctx;
	char image[700], sock[700], u[PVSTORE_UUID_STR], mem[32], disk[128], log[700], dir[600];
	char ceph_client[PVSTORE_ENTITY_MAX];
	bool incoming = s->incoming && s->incoming[0];
	int err;

	guest_dir(d, dir, sizeof(dir));
	if (mkdir(d->cfg.run_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (!incoming && (err = cache_image(d, s->image_sha256, s->image, s->image_len, image, sizeof(image)))) {
		pvlog_err(err, "image %s", s->image_sha256);
		return err;
	}
	pvstore_uuid_format(s->uuid, u);
	/* the guest's own cephx user (its key on fd 4, below), else the node's */
	if (s->ceph_key)
		pvstore_guest_entity(ceph_client, sizeof(ceph_client), s->uuid);
	else
		snprintf(ceph_client, sizeof(ceph_client), "client.%s", d->cfg.ceph_user);
	sock_path(d, s->uuid, sock, sizeof(sock));
	/* The console on disk (state_dir), not in /run's tmpfs: the VMM bounds
	 * it (rate, size, one rotation), docs/security.md. */
	char cdir[600];
	snprintf(cdir, sizeof(cdir), "%s/console", d->cfg.state_dir[0] ? d->cfg.state_dir : STATE_DIR_DEFAULT);
	if (mkdir(d->cfg.state_dir[0] ? d->cfg.state_dir : STATE_DIR_DEFAULT, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (mkdir(cdir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(log, sizeof(log), "%s/%s.console", cdir, u);
	snprintf(mem, sizeof(mem), "%llu", (unsigned long long)s->mem_size);
	snprintf(disk, sizeof(disk), "rados:%s/%s", d->cfg.pool, u);
	const char *vmm = d->cfg.vmm[0] ? d->cfg.vmm : "pvha-vmm";
	char *argv[32];
	int n = 0;
	argv[n++] = (char *)vmm;
	int keyfd[2] = { -1, -1 };
	if (incoming) {
		/* a migration target: RAM, registers and devices come from the
		 * source, checked against the spec's memory size; the link's secret
		 * through a pipe on its fd 3 (never in argv) */
		argv[n++] = "--incoming", argv[n++] = (char *)s->incoming;
		argv[n++] = "--mem", argv[n++] = mem;
		if (s->migrate_key_len) {
			if (pipe2(keyfd, O_CLOEXEC) < 0)
				return -errno;
			if (write(keyfd[1], s->migrate_key, s->migrate_key_len) != (ssize_t)s->migrate_key_len) {
				close(keyfd[0]);
				close(keyfd[1]);
				return -EIO;
			}
			close(keyfd[1]);
			argv[n++] = "--migrate-key-file", argv[n++] = "/dev/fd/3";
		}
	} else {
		argv[n++] = "--image", argv[n++] = image;
		argv[n++] = "--mem", argv[n++] = mem;
	}
	argv[n++] = "--id", argv[n++] = u;
	argv[n++] = "--control", argv[n++] = sock;
	argv[n++] = "--console", argv[n++] = log;
	argv[n++] = "--ceph-conf", argv[n++] = d->cfg.ceph_conf;
	argv[n++] = "--ceph-client", argv[n++] = ceph_client;
	argv[n++] = "--backend", argv[n++] = "tcg";
	/* every guest holds its owner lock, a diskless one on its record */
	argv[n++] = s->disk_size ? "--disk" : "--owner", argv[n++] = disk;
	argv[n++] = "--lock", argv[n++] = (char *)s->lock_cookie;
	int ringfd = -1;
	if (s->ceph_key) {
		if ((err = vmm_keyring_pipe(ceph_client, s->ceph_key, &ringfd))) {
			if (keyfd[0] >= 0)
				close(keyfd[0]);
			return err;
		}
		argv[n++] = "--ceph-keyring", argv[n++] = "/dev/fd/4";
	}
	if (s->address && s->address[0])
		argv[n++] = "--address", argv[n++] = (char *)s->address;
	if (s->cmdline && s->cmdline[0] && !incoming)
		argv[n++] = "--cmdline", argv[n++] = (char *)s->cmdline;
	argv[n] = NULL;
	/* Its own session: the guest outlives an agent restart. */
	posix_spawnattr_t at;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
	posix_spawn_file_actions_init(&fa);
	if (keyfd[0] >= 0)
		posix_spawn_file_actions_adddup2(&fa, keyfd[0], 3); /* dup2 clears close-on-exec */
	if (ringfd >= 0)
		posix_spawn_file_actions_adddup2(&fa, ringfd, 4);
	unlink(sock);
	err = posix_spawnp(pid, vmm, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (keyfd[0] >= 0)
		close(keyfd[0]);
	if (ringfd >= 0)
		close(ringfd);
	if (err)
		return -err;
	/* for a restarted pvhad that finds it before it listens */
	int perr = vmm_pidfile_write(dir, u, *pid);
	if (perr)
		pvlog_warn("guest %s: recording pvha-vmm %d: %s", u, (int)*pid, strerror(-perr));
	return 0;
}

static int op_guest_address(void *ctx, const char *address, bool up, char *why, size_t whylen)
{
	struct pvhad *d = ctx;
	if (!d->cfg.guest_interface[0]) {
		snprintf(why, whylen, "this node has no guest_interface in its configuration");
		return -ENODEV;
	}
	return netaddr_set(d->cfg.guest_interface, address, up, why, whylen);
}

static int op_random(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	ssize_t n = getrandom(buf, len, 0);
	return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
}

static void op_vmm_kill(void *ctx, pid_t pid, bool force)
{
	(void)ctx;
	kill(pid, force ? SIGKILL : SIGTERM);
}

static bool op_vmm_alive(void *ctx, pid_t pid)
{
	(void)ctx;
	return !(kill(pid, 0) < 0 && errno == ESRCH);
}

/* One request to the guest's VMM; *rep to free by the caller. */
static int vmm_call(struct pvhad *d, const uint8_t uuid[16], Pvha__VmmRequest__Op op, Pvha__VmmReply **rep)
{
	char sock[700];
	int fd;
	sock_path(d, uuid, sock, sizeof(sock));
	*rep = NULL;
	int err = vmmctl_connect(sock, 1000, &fd);
	if (err)
		return err;
	err = vmmctl_call(fd, op, NULL, rep);
	close(fd);
	if (!err && *rep && (*rep)->error)
		err = (*rep)->error;
	return err;
}

static void reply_why(Pvha__VmmReply *rep, char *why, size_t whylen)
{
	if (rep && rep->message && rep->message[0])
		snprintf(why, whylen, "%s", rep->message);
	if (rep)
		pvha__vmm_reply__free_unpacked(rep, NULL);
}

static int op_vmm_status(void *ctx, const uint8_t uuid[16], struct pvclus_vmm_status *st)
{
	Pvha__VmmReply *rep;
	int err = vmm_call(ctx, uuid, PVHA__VMM_REQUEST__OP__STATUS, &rep);
	if (!err && (!rep || !rep->status))
		err = -EBADMSG;
	if (!err) {
		const Pvha__VmmStatus *s = rep->status;
		memset(st, 0, sizeof(*st));
		snprintf(st->state, sizeof(st->state), "%s", s->state);
		st->incoming_port = s->incoming_port;
		snprintf(st->migration_phase, sizeof(st->migration_phase), "%s", s->migration_phase);
		st->migration_released = s->migration_released;
		st->migration_round = s->migration_round;
		st->migration_bytes_sent = s->migration_bytes_sent;
		st->migration_pages_left = s->migration_pages_left;
		st->migration_rate = s->migration_rate;
		st->migration_downtime_us = s->migration_downtime_us;
		st->migration_total_ms = s->migration_total_ms;
		snprintf(st->migration_reason, sizeof(st->migration_reason), "%s", s->migration_reason);
		st->heartbeat_seq = s->heartbeat_seq;
		st->heartbeat_age_ms = s->heartbeat_age_ms;
	}
	if (rep)
		pvha__vmm_reply__free_unpacked(rep, NULL);
	return err;
}

static int op_vmm_migrate(void *ctx, const uint8_t uuid[16], const char *addr, uint32_t port,
			  uint32_t downtime_ms, const uint8_t *key, size_t key_len, char *why, size_t whylen)
{
	struct pvhad *d = ctx;
	char sock[700];
	int fd;
	Pvha__VmmReply *rep = NULL;
	sock_path(d, uuid, sock, sizeof(sock));
	int err = vmmctl_connect(sock, 2000, &fd);
	if (!err) {
		err = key_len ? vmmctl_migrate_keyed(fd, addr, port, downtime_ms, 0, key, key_len, &rep)
			      : vmmctl_migrate(fd, addr, port, downtime_ms, 0, &rep);
		close(fd);
	}
	if (!err && rep && rep->error)
		err = rep->error;
	reply_why(rep, why, whylen);
	return err;
}

static int op_vmm_migrate_cancel(void *ctx, const uint8_t uuid[16], char *why, size_t whylen)
{
	Pvha__VmmReply *rep;
	int err = vmm_call(ctx, uuid, PVHA__VMM_REQUEST__OP__MIGRATE_CANCEL, &rep);
	reply_why(rep, why, whylen);
	return err;
}

static int op_vmm_stop(void *ctx, const uint8_t uuid[16])
{
	Pvha__VmmReply *rep;
	int err = vmm_call(ctx, uuid, PVHA__VMM_REQUEST__OP__STOP, &rep);
	if (rep)
		pvha__vmm_reply__free_unpacked(rep, NULL);
	return err;
}

#define ADOPT_MAX 1024

/* The VMMs recorded here (vmm_pidfile.h) that still run and were not adopted
 * by their socket: ones still booting when this pvhad started. A record of a
 * process that is gone is removed. */
static void adopt_recorded(struct pvhad *d, const char *dir, const pid_t *adopted, size_t nadopted)
{
	DIR *dh = opendir(dir);
	struct dirent *e;
	if (!dh)
		return;
	while ((e = readdir(dh))) {
		size_t l = strlen(e->d_name);
		if (l != PVSTORE_UUID_STR - 1 + 4 || strcmp(e->d_name + l - 4, ".pid") != 0)
			continue;
		char path[900], u[PVSTORE_UUID_STR];
		uint8_t uuid[16];
		pid_t pid;
		unsigned long long start;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(u, sizeof(u), "%.*s", (int)(l - 4), e->d_name);
		if (pvstore_uuid_parse(u, uuid) || vmm_pidfile_read(path, &pid, &start) || !vmm_pidfile_alive(pid, start)) {
			unlink(path);
			continue;
		}
		bool known = false;
		for (size_t i = 0; i < nadopted && !known; i++)
			known = adopted[i] == pid;
		if (known)
			continue;
		pvlog_info("guest %s: pvha-vmm %d runs but does not answer yet (booting): adopting it", u, (int)pid);
		pvclus_agent_adopt(d->agent, uuid, pid);
	}
	closedir(dh);
}

/* After an agent restart on the same boot: the VMMs still running here (their
 * control sockets answer, or their records say so) are this node's again. */
static void adopt_running(struct pvhad *d)
{
	char dir[600];
	guest_dir(d, dir, sizeof(dir));
	pid_t adopted[ADOPT_MAX];
	size_t nadopted = 0;
	DIR *dh = opendir(dir);
	struct dirent *e;
	if (!dh)
		return;
	while ((e = readdir(dh))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".sock") != 0)
			continue;
		char path[900];
		int fd;
		Pvha__VmmReply *rep = NULL;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (vmmctl_connect(path, 2000, &fd) != 0)
			continue;
		char why[200];
		pid_t pid;
		/* the pid is the socket's peer's (the kernel's word), not the
		 * reply's: a process that is not the agent's user, or whose
		 * reply names another pid, is no VMM of this agent's */
		if (vmmctl_call(fd, PVHA__VMM_REQUEST__OP__STATUS, NULL, &rep) == 0 && rep->status &&
		    rep->status->guest_id.len == 16 && strcmp(rep->status->state, "stopped") != 0) {
			if (vmmctl_peer_check(fd, geteuid(), (pid_t)rep->status->pid, &pid, why, sizeof(why)) == 0) {
				pvclus_agent_adopt(d->agent, rep->status->guest_id.data, pid);
				if (nadopted < ADOPT_MAX)
					adopted[nadopted++] = pid;
			} else {
				pvlog_warn("adopting %s: refused: %s", path, why);
			}
		}
		if (rep)
			pvha__vmm_reply__free_unpacked(rep, NULL);
		close(fd);
	}
	closedir(dh);
	adopt_recorded(d, dir, adopted, nadopted);
}

/* SIGCHLD: every VMM and fence program of ours that ended goes to the agent. */
static int32_t on_sigchld(int32_t sig, void *data)
{
	struct pvhad *d = data;
	int status;
	pid_t pid;
	(void)sig;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		pvclus_agent_child_exited(d->agent, pid, status);
	return 0;
}

/* ---- the agent's ops: the power fence ----------------------------------------- */

static int op_fence_spawn(void *ctx, const char *node, const char *addr, pid_t *pid, char *why, size_t whylen)
{
	struct pvhad *d = ctx;
	char input[PVFENCE_INPUT_MAX + 1];
	int len = pvfence_agent_input("off", d->cfg.fence_args, node, addr, input, sizeof(input), why, whylen);
	if (len < 0)
		return len;
	return pvfence_agent_spawn(d->cfg.fence_agent, input, (size_t)len, STDERR_FILENO, pid);
}

static void op_fence_kill(void *ctx, pid_t pid)
{
	(void)ctx;
	kill(-pid, SIGKILL); /* its whole process group */
}

static const char *op_fence_name(void *ctx)
{
	struct pvhad *d = ctx;
	return d->cfg.fence_agent;
}

static unsigned op_fence_timeout_s(void *ctx)
{
	struct pvhad *d = ctx;
	return (unsigned)d->cfg.fence_timeout_s;
}

static const struct pvclus_agent_ops agent_ops = {
	.send = op_send,
	.now_ms = op_now_ms,
	.timer_add = op_timer_add,
	.timer_del = op_timer_del,
	.defer = op_defer,
	.log = op_log,
	.event = op_event,
	.storage_submit = op_storage_submit,
	.api_reply = op_api_reply,
	.image_cached = op_image_cached,
	.vmm_spawn = op_vmm_spawn,
	.vmm_kill = op_vmm_kill,
	.guest_address = op_guest_address,
	.random = op_random,
	.vmm_alive = op_vmm_alive,
	.vmm_status = op_vmm_status,
	.vmm_migrate = op_vmm_migrate,
	.vmm_migrate_cancel = op_vmm_migrate_cancel,
	.vmm_stop = op_vmm_stop,
	.fence_spawn = op_fence_spawn,
	.fence_kill = op_fence_kill,
	.fence_name = op_fence_name,
	.fence_timeout_s = op_fence_timeout_s,
};

/* The event-log worker saw the storage refuse or time out. */
static int32_t on_event_queue(int32_t fd, int32_t revents, void *data)
{
	struct pvhad *d = data;
	(void)fd;
	(void)revents;
	if (event_queue_failed(d->evq))
		pvclus_agent_storage_failed(d->agent);
	return 0;
}

/* ---- incarnation and storage ------------------------------------------------- */

/* One agent per node: an exclusive lock on run_dir/pvhad.lock, held for the
 * agent's life (close-on-exec: no VMM inherits it). A second pvhad (by hand,
 * beside the service) refuses to start instead of fighting over the guests. */
static int take_node_lock(struct pvhad *d)
{
	char path[600];
	if (mkdir(d->cfg.run_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/pvhad.lock", d->cfg.run_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno == EWOULDBLOCK ? -EALREADY : -errno;
		close(fd);
		return err;
	}
	return 0; /* fd stays open: the lock lives as long as this process */
}

/* The incarnation is per host boot: kept under run_dir (a tmpfs at /run that
 * a reboot empties); an agent restarted on the same boot finds the same one. */
static int load_incarnation(struct pvhad *d)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/incarnation", d->cfg.run_dir);
	FILE *f = fopen(path, "r");
	if (f) {
		bool ok = fgets(d->incarnation, sizeof(d->incarnation), f) != NULL;
		fclose(f);
		d->incarnation[strcspn(d->incarnation, "\n")] = '\0';
		if (ok && d->incarnation[0])
			return 0;
	}
	uint8_t u[16];
	int err = pvstore_uuid_generate(u);
	if (err)
		return err;
	pvstore_uuid_format(u, d->incarnation);
	if (mkdir(d->cfg.run_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%s\n", d->incarnation);
	return fclose(f) == 0 ? 0 : -errno;
}

static int connect_storage(struct pvhad *d)
{
	char client[80];
	snprintf(client, sizeof(client), "client.%s", d->cfg.ceph_user);
	struct pvstore_config sc = {
		.conf_path = d->cfg.ceph_conf,
		.client_name = client,
		.keyring = d->cfg.ceph_keyring[0] ? d->cfg.ceph_keyring : NULL,
		.pool = d->cfg.pool,
	};
	int err = pvstore_connect(&sc, &d->st);
	if (err)
		pvlog_err(err, "storage: %s", pvstore_errmsg());
	return err;
}

/* ---- Corosync -------------------------------------------------------------------- */

static void on_members(void *ctx, const uint32_t *ids, size_t n, const uint32_t *joined, size_t n_joined,
		       uint64_t ring)
{
	struct pvhad *d = ctx;
	(void)joined;
	(void)n_joined;
	pvclus_agent_on_members(d->agent, ids, n, ring);
}

static void on_ring(void *ctx, const uint32_t *ids, size_t n, uint64_t ring_id)
{
	struct pvhad *d = ctx;
	(void)ring_id;
	pvclus_agent_on_ring(d->agent, ids, n);
}

static void on_quorum(void *ctx, bool quorate, size_t members)
{
	struct pvhad *d = ctx;
	pvclus_agent_on_quorum(d->agent, quorate, members);
}

static void on_deliver(void *ctx, uint32_t nodeid, uint32_t pid, const void *data, size_t len)
{
	struct pvhad *d = ctx;
	(void)pid;
	pvclus_agent_on_deliver(d->agent, nodeid, data, len);
}

static void reconnect(void *data);

static void on_lost(void *ctx)
{
	struct pvhad *d = ctx;
	pvlog_warn("corosync: the local corosync went away; retrying every second");
	pvclus_agent_on_lost(d->agent);
	qb_loop_timer_add(d->loop, QB_LOOP_MED, 1000ull * QB_TIME_NS_IN_MSEC, d, reconnect, &d->reconnect_timer);
}

static const struct pvclus_cs_callbacks cs_callbacks = {
	.members = on_members,
	.ring = on_ring,
	.quorum = on_quorum,
	.deliver = on_deliver,
	.lost = on_lost,
};

static int connect_corosync(struct pvhad *d)
{
	struct pvclus_cs_node nodes[PVCLUS_MAX_NODES];
	int err = pvclus_cs_open(d->loop, CPG_GROUP, &cs_callbacks, d, &d->cs);
	if (err)
		return err;
	int n = pvclus_cs_nodelist(d->cs, nodes, PVCLUS_MAX_NODES);
	pvclus_agent_set_nodelist(d->agent, pvclus_cs_local_nodeid(d->cs), nodes, n < 0 ? 0 : (size_t)n);
	return 0;
}

static void reconnect(void *data)
{
	struct pvhad *d = data;
	pvclus_cs_close(d->cs);
	d->cs = NULL;
	int err = connect_corosync(d);
	if (err)
		qb_loop_timer_add(d->loop, QB_LOOP_MED, 1000ull * QB_TIME_NS_IN_MSEC, d, reconnect,
				  &d->reconnect_timer);
	else
		pvlog_info("corosync: connected again as node %u", pvclus_cs_local_nodeid(d->cs));
}

/* ---- control API --------------------------------------------------------- */
static int32_t ipc_accept(qb_ipcs_connection_t *c, uid_t uid, gid_t gid)
{
	(void)c;
	(void)gid;
	return uid == 0 ? 0 : -EACCES;
}

static void ipc_created(qb_ipcs_connection_t *c)
{
	(void)c;
}

static int32_t ipc_closed(qb_ipcs_connection_t *c)
{
	(void)c;
	return 0;
}

static void ipc_destroyed(qb_ipcs_connection_t *c)
{
	(void)c;
}

static void send_reply(qb_ipcs_connection_t *c, uint64_t id, Pvha__ApiReply *rep, const char *msg)
{
	rep->message = (char *)msg;
	size_t len = pvha__api_reply__get_packed_size(rep);
	uint8_t *buf = malloc(sizeof(struct qb_ipc_response_header) + len);
	if (!buf) {
		pvlog_err(-ENOMEM, "an API reply of %zu bytes", len);
		return;
	}
	struct qb_ipc_response_header *h = (struct qb_ipc_response_header *)buf;
	h->id = (int32_t)id;
	h->size = (int32_t)(sizeof(*h) + len);
	h->error = 0;
	pvha__api_reply__pack(rep, buf + sizeof(*h));
	qb_ipcs_response_send(c, buf, sizeof(*h) + len);
	free(buf);
}

static int32_t ipc_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct pvhad *d = &pvhad;
	const struct qb_ipc_request_header *rh = data;
	Pvha__ApiReply rep = PVHA__API_REPLY__INIT;
	char msg[512] = "";
	Pvha__ApiRequest *req = NULL;
	uint64_t id = size >= sizeof(*rh) ? (uint64_t)rh->id : 0;

	if (size < sizeof(*rh) || (size_t)rh->size != size) {
		rep.error = -EBADMSG;
		snprintf(msg, sizeof(msg), "request frame of %zu bytes is malformed", size);
	} else {
		req = pvha__api_request__unpack(NULL, size - sizeof(*rh), (const uint8_t *)data + sizeof(*rh));
		if (!req) {
			rep.error = -EBADMSG;
			snprintf(msg, sizeof(msg), "request does not decode");
		}
	}
	if (req) {
		struct api_wait *w = malloc(sizeof(*w));
		if (!w) {
			rep.error = -ENOMEM;
			snprintf(msg, sizeof(msg), "out of memory");
		} else {
			*w = (struct api_wait){ .c = c, .id = id };
			qb_ipcs_connection_ref(c);
			if (pvclus_agent_api(d->agent, req, w, &rep, msg, sizeof(msg)) == -EINPROGRESS) {
				/* answered by op_api_reply once its storage job is done */
				pvha__api_request__free_unpacked(req, NULL);
				return 0;
			}
			qb_ipcs_connection_unref(c);
			free(w);
		}
	}
	send_reply(c, id, &rep, msg);
	if (req)
		pvha__api_request__free_unpacked(req, NULL);
	return 0;
}

static int32_t job_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(pvhad.loop, p, data, fn);
}

static int32_t dispatch_add(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(pvhad.loop, p, fd, evts, data, fn);
}

static int32_t dispatch_mod(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
			    qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(pvhad.loop, p, fd, evts, data, fn);
}

static int32_t dispatch_del(int32_t fd)
{
	return qb_loop_poll_del(pvhad.loop, fd);
}

static int start_api(struct pvhad *d)
{
	static struct qb_ipcs_service_handlers sh = {
		.connection_accept = ipc_accept,
		.connection_created = ipc_created,
		.msg_process = ipc_msg,
		.connection_closed = ipc_closed,
		.connection_destroyed = ipc_destroyed,
	};
	static struct qb_ipcs_poll_handlers ph = {
		.job_add = job_add,
		.dispatch_add = dispatch_add,
		.dispatch_mod = dispatch_mod,
		.dispatch_del = dispatch_del,
	};
	d->ipcs = qb_ipcs_create("pvhad", 0, QB_IPC_SOCKET, &sh);
	if (!d->ipcs)
		return -errno ? -errno : -ENOMEM;
	qb_ipcs_poll_handlers_set(d->ipcs, &ph);
	return qb_ipcs_run(d->ipcs);
}

/* ---- metrics and dashboard ------------------------------------------------- */

#define PUBLISH_MS 250 /* the dashboard polls every 500 ms: a change shows within 0.75 s */

/* Hands the HTTP server's thread a copy of the agent's state, every PUBLISH_MS. */
static void publish(void *data)
{
	struct pvhad *d = data;
	pvclus_agent_snapshot(d->agent, d->snap);
	http_publish(d->http, d->snap, d->tracker);
	qb_loop_timer_add(d->loop, QB_LOOP_LOW, PUBLISH_MS * QB_TIME_NS_IN_MSEC, d, publish, &d->publish_timer);
}

static void stop_http(struct pvhad *d)
{
	http_stop(d->http);
	free(d->tracker);
	free(d->snap);
	d->http = NULL;
	d->tracker = NULL;
	d->snap = NULL;
}

/* The HTTP server on http_listen (not when off). Returns 0 or -errno (logged).
 * Its failure does not stop the agent: a node without metrics still runs
 * its guests. */
static int start_http(struct pvhad *d)
{
	char why[200];
	if (!d->cfg.http_on)
		return 0;
	d->tracker = calloc(1, sizeof(*d->tracker));
	d->snap = calloc(1, sizeof(*d->snap));
	if (!d->tracker || !d->snap) {
		pvlog_err(-ENOMEM, "metrics");
		stop_http(d);
		return -ENOMEM;
	}
	d->tracker->fence_power = d->cfg.fence_agent[0] != '\0';
	char dir[600];
	guest_dir(d, dir, sizeof(dir));
	int err = http_start(&d->cfg.http_addr, dir, &d->http, why, sizeof(why));
	if (err) {
		pvlog_err(err, "http_listen: %s: no metrics and no dashboard on this node", why);
		stop_http(d);
		return err;
	}
	publish(d);
	pvlog_info("metrics and dashboard on http://%s/", d->cfg.http_listen);
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int32_t on_signal(int32_t sig, void *data)
{
	struct pvhad *d = data;
	pvlog_info("signal %d: leaving the cluster", sig);
	qb_loop_stop(d->loop);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: pvhad --config FILE\n"
		   "The pvha node agent: joins the cluster through the local corosync, keeps\n"
		   "this node's record in RADOS and serves the control API that `pvha` uses.\n"
		   "  --config FILE   the agent's configuration (keys: docs/lab.md, docs/agent.md)\n"
		   "  --check         read the configuration, report, and exit\n"
		   "  --make-ceph-user FILE --admin-keyring K\n"
		   "                  install step: as client.admin (keyring K) make this\n"
		   "                  node's cephx user client.pvha-node-<node_name> (the pool,\n"
		   "                  fencing, its guests' users; no admin rights), write its\n"
		   "                  keyring to FILE (owner-only), print its name, and exit;\n"
		   "                  then set ceph_user and ceph_keyring to them\n"
		   "  --verbose       log more\n"
		   "  -h, --help      this text\n");
}

struct options {
	const char *config;
	bool check;
	const char *make_user;     /* --make-ceph-user FILE */
	const char *admin_keyring; /* --admin-keyring K */
};

/* Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'k' },
		{ "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
		{ "make-ceph-user", required_argument, NULL, 'u' },
		{ "admin-keyring", required_argument, NULL, 'a' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case 'k': o->check = true; break;
		case 'u': o->make_user = optarg; break;
		case 'a': o->admin_keyring = optarg; break;
		case 'v': pvlog_max_level = PVLOG_DEBUG; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o->config || optind < argc) {
		usage(stderr);
		return 2;
	}
	if (!o->make_user != !o->admin_keyring) {
		fprintf(stderr, "pvhad: --make-ceph-user and --admin-keyring go together\n");
		return 2;
	}
	return -1;
}

/* The agent object, with what this node offers guests. */
static int create_agent(struct pvhad *d)
{
	struct pvclus_agent_config ac = { 0 };
	snprintf(ac.node_name, sizeof(ac.node_name), "%s", d->cfg.node_name);
	snprintf(ac.address, sizeof(ac.address), "%s", d->cfg.address);
	snprintf(ac.incarnation, sizeof(ac.incarnation), "%s", d->incarnation);
	snprintf(ac.pool, sizeof(ac.pool), "%s", d->cfg.pool);
	ac.mem_offered = d->cfg.guest_mem_bytes ? d->cfg.guest_mem_bytes
		: (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
	ac.cpus_offered = d->cfg.guest_cpus_n ? d->cfg.guest_cpus_n : (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	ac.fence_power = d->cfg.fence_agent[0] != '\0';
	ac.rebalance_threshold = d->cfg.rebalance_threshold;
	ac.heartbeat_max_resets = d->cfg.heartbeat_max_resets_n;
	ac.heartbeat_window_s = d->cfg.heartbeat_window_s;
	return pvclus_agent_create(&ac, &agent_ops, d, d->st, &d->agent);
}

/* Storage, the event-log worker, the agent, this node's VMMs, Corosync and
 * the control API, in that order. Returns 0 or -errno (logged). */
static int start(struct pvhad *d)
{
	qb_loop_signal_handle sh1, sh2, sh3;
	int err;
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGTERM, d, on_signal, &sh1);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGINT, d, on_signal, &sh2);
	qb_loop_signal_add(d->loop, QB_LOOP_HIGH, SIGCHLD, d, on_sigchld, &sh3);
	signal(SIGPIPE, SIG_IGN);

	/* Storage first: a node that cannot reach RADOS still joins (and says so). */
	connect_storage(d);
	if (d->st) {
		err = event_queue_start(d->st, d->cfg.node_name, &d->evq);
		if (err) {
			pvlog_err(err, "event log worker");
			return err;
		}
		qb_loop_poll_add(d->loop, QB_LOOP_MED, event_queue_fd(d->evq), POLLIN, d, on_event_queue);
	}
	err = job_pool_start(d->st, STORAGE_WORKERS, &d->jobs);
	if (err) {
		pvlog_err(err, "storage workers");
		return err;
	}
	qb_loop_poll_add(d->loop, QB_LOOP_MED, job_pool_fd(d->jobs), POLLIN, d, on_jobs_done);
	err = create_agent(d);
	if (err) {
		pvlog_err(err, "the agent");
		return err;
	}
	err = pvclus_agent_start(d->agent);
	if (err)
		pvlog_warn("guests: no registry (%s): starting with none", strerror(-err));
	adopt_running(d);
	err = connect_corosync(d);
	if (err) {
		pvlog_err(err, "corosync: cannot connect (is corosync running?)");
		return err;
	}
	err = start_api(d);
	if (err) {
		pvlog_err(err, "control API");
		return err;
	}
	start_http(d); /* logged; the agent runs on without it */
	pvlog_info("node %s (id %u), incarnation %s, up", d->cfg.node_name, pvclus_cs_local_nodeid(d->cs),
		   d->incarnation);
	return 0;
}

static void stop(struct pvhad *d)
{
	stop_http(d);
	if (d->ipcs)
		qb_ipcs_destroy(d->ipcs);
	pvclus_cs_close(d->cs);
	event_queue_stop(d->evq);
	job_pool_stop(d->jobs);
	pvclus_agent_destroy(d->agent);
	pvstore_disconnect(d->st);
	while (d->timers) {
		struct timer_rec *t = d->timers;
		d->timers = t->next;
		free(t);
	}
	qb_loop_destroy(d->loop);
}

int main(int argc, char **argv)
{
	struct pvhad *d = &pvhad;
	struct options o = { 0 };
	char why[600];

	pvlog_prog = "pvhad";
	if (getenv("PVHA_DEBUG"))
		pvlog_max_level = PVLOG_DEBUG;
	int rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	int err = agent_config_load(o.config, &d->cfg, why, sizeof(why));
	if (err) {
		fprintf(stderr, "pvhad: %s\n", why);
		return 2;
	}
	if (o.check) {
		printf("pvhad: %s: node %s, address %s, pool %s, http %s\n", o.config, d->cfg.node_name,
		       d->cfg.address, d->cfg.pool, d->cfg.http_listen);
		return 0;
	}
	if (o.make_user) {
		char entity[PVSTORE_ENTITY_MAX];
		err = pvhad_make_ceph_user(&d->cfg, o.admin_keyring, o.make_user, entity, sizeof(entity), why,
					   sizeof(why));
		if (err) {
			fprintf(stderr, "pvhad: --make-ceph-user: %s\n", why);
			return 1;
		}
		printf("%s\n", entity);
		return 0;
	}
	if (d->cfg.log_file[0] && !freopen(d->cfg.log_file, "a", stderr)) {
		fprintf(stdout, "pvhad: log_file %s: %s\n", d->cfg.log_file, strerror(errno));
		return 2;
	}
	setvbuf(stderr, NULL, _IOLBF, 0);
	err = take_node_lock(d);
	if (err) {
		pvlog_err(err, "another pvhad runs on this node (lock %s/pvhad.lock)", d->cfg.run_dir);
		return 1;
	}
	err = load_incarnation(d);
	if (err) {
		pvlog_err(err, "incarnation under %s", d->cfg.run_dir);
		return 1;
	}
	d->loop = qb_loop_create();
	if (!d->loop) {
		pvlog_err(-ENOMEM, "qb_loop_create");
		return 1;
	}
	if (start(d) != 0)
		return 1;
	qb_loop_run(d->loop);
	stop(d);
	pvlog_info("stopped");
	return 0;
}
