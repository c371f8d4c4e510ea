/*
 * pvha-vmm: one process per guest. It owns one hv_machine, its disk and its
 * console, serves a control socket (proto/vmm.proto) for its supervisor, and
 * ends with an exit status and a one-line reason on stderr:
 *
 *   0  the guest exited with code 0        4  fenced: the storage refused this host
 *   1  the guest exited with another code  5  stopped from outside (STOP, SIGTERM)
 *   2  bad usage or configuration          6  state saved (--save): restorable
 *   3  the guest misbehaved and was stopped 7  host failure
 *   8  the owner lock (--lock) is held by someone else: nothing ran
 *   9  --incoming: the migration failed or was refused: nothing ran here
 *  10  migrated: the guest was handed over (owner lock released) and this
 *      process never ran it again
 *  11  the storage did not answer in time (opening the disk, taking the
 *      owner lock): nothing ran; not the guest's fault, pvhad tries again
 *
 * One loop polls the control sockets and signals, then runs the guest for a
 * slice of at most SLICE_NS; a sleeping guest costs no CPU. The loop is the
 * only thread that runs the guest; live migration (vmm_migrate.h) adds one
 * thread of its own that talks to the other VMM and reports to the loop
 * through an eventfd.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "keyring.h"
#include "log.h"
#include "parse.h"
#include "proto/vmm.pb-c.h"
#include "pvhv/hv.h"
#include "pvproto/frame.h"
#include "pvproto/link.h"
#include "privsep.h"
#include "privsep_ops.h"
#include "sandbox.h"
#include "vmm_console.h"
#include "vmm_disk.h"
#include "vmm_migrate.h"

#define SLICE_NS (10ull * 1000 * 1000)
#define MAX_CLIENTS 8
#define IMAGE_MAX (256u * 1024u * 1024u)
#define REQUEST_MAX 8192u
#define MIGRATED_LINGER_NS (30ull * 1000 * 1000 * 1000) /* a migrated source waits for STOP */
#define INCOMING_TIMEOUT_S 60u
#define INCOMING_DEADLINE_S 600u /* accept -> guest running, at most */

enum vmm_exit {
	VMM_EXIT_OK = 0, VMM_EXIT_GUEST_ERROR = 1, VMM_EXIT_USAGE = 2, VMM_EXIT_FAULT = 3,
	VMM_EXIT_FENCED = 4, VMM_EXIT_STOPPED = 5, VMM_EXIT_SAVED = 6, VMM_EXIT_HOST = 7,
	VMM_EXIT_LOCKED = 8, VMM_EXIT_INCOMING_FAILED = 9, VMM_EXIT_MIGRATED = 10,
	VMM_EXIT_STORAGE = 11, /* the storage did not answer before the guest ran */
};

enum vmm_state {
	ST_RUNNING = 0, /* (or sleeping) */
	ST_INCOMING,  /* --incoming: no guest here yet */
	ST_PAUSED,
	ST_MIGRATING, /* paused and lent to the migration thread */
	ST_MIGRATED,  /* handed over: never runs here again; waits for STOP */
	ST_DONE,
};

struct vmm {
	struct hv_machine *m;
	struct hv_disk *disk;
	struct hv_disk *owner;      /* holds the owner lock: disk, or --owner's handle */
	struct vmm_console console;
	struct hv_net *net;         /* --address: the guest's sockets; NULL = none */
	const char *address;
	struct privsep_scope scope; /* its IP, all the privileged helpers may touch */
	int listen_fd;
	int sig_fd;
	int clients[MAX_CLIENTS];
	enum vmm_state state;
	bool sleeping;
	const char *save_path;
	const char *control_path;
	const char *disk_spec;
	char storage_addr[128]; /* rados disks: our client address, else "" */
	uint8_t guest_id[16];   /* backing store for status replies */
	int exit_code;
	char final[512]; /* the one-line reason printed at exit */

	/* live migration */
	const char *lock_cookie;    /* --lock, NULL when none */
	int notify_fd;              /* eventfd: the migration thread has news */
	int incoming_fd;            /* --incoming listening socket, -1 once accepted */
	uint16_t incoming_port;
	uint64_t deadline_ns;       /* incoming: accept by; migrated: exit at; 0 none */
	uint64_t incoming_timeout_s; /* --incoming-timeout */
	uint64_t incoming_deadline_s; /* --incoming-deadline */
	uint8_t mig_key[PVPROTO_KEY_MAX]; /* --migrate-key-file; mig_key_len 0 = none */
	size_t mig_key_len;
	struct hv_config cfg;       /* incoming: what the arriving machine gets */
	bool have_id;
	struct mig_source *mig_src; /* outgoing migration in progress */
	struct mig_target *mig_tgt; /* incoming migration in progress */
	struct mig_progress mig;    /* the last migration's figures, once its thread is gone */
	bool handed_over;           /* the guest left: v->m is never run or read again */
	struct hv_machine_stats snap; /* status while the machine is lent or gone */

	/* the sandbox (sandbox.h) and its privileged helper (privsep.h) */
	bool sandbox;
	struct sandbox_user user;
	struct privsep privsep;
	struct privsep privsep_nft; /* the nft runner (privsep_ops.h) */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Memory: what one more VMM costs is its private memory beyond guest RAM
 * (BENCHMARKS.md, goal 5 MiB). Two things inflated it that the VMM itself
 * never needs: with THP in "madvise" mode Unicorn asks for a huge page for
 * its translation cache, so a few hundred KiB of code cost 2 MiB; and
 * librados's libceph-common builds its option table on the stack in a static
 * initialiser, leaving about 1 MiB of stack pages dirty before main runs. The
 * VMM turns THP off for itself (guest RAM is not madvised for huge pages
 * either, so nothing else changes) and gives back the stack pages below what
 * it uses once it is set up.
 */
static void no_huge_pages(void)
{
	prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
}

/* Releases the main thread's stack pages from the bottom of its mapping up to
 * 64 KiB below the current frame (the loop's deepest frames, hv-core's
 * net_poll included, use far less): pages written once by start-up code and
 * never again; they come back as zero pages if ever touched. Then the heap's
 * free tail (the image buffer, start-up garbage). */
static void trim_stack(void)
{
	char line[512];
	uintptr_t lo = 0, hi = 0;
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "[stack]")) {
			if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
				lo = hi = 0;
			break;
		}
	}
	fclose(f);
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (!lo || here < lo || here > hi)
		return;
	uintptr_t keep = (here - 64 * 1024) & ~(uintptr_t)4095;
	if (keep > lo)
		madvise((void *)lo, keep - lo, MADV_DONTNEED);
	malloc_trim(0);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvha-vmm --image GUEST.elf --mem SIZE [options]\n"
		"       pvha-vmm --restore STATE [options]\n"
		"       pvha-vmm --incoming HOST:PORT [options]\n"
		"Runs one pvha guest on the paravirtual hypervisor core.\n\n"
		"  --image FILE        ELF64 guest image to boot\n"
		"  --mem SIZE          guest RAM, e.g. 64M (2M..4G, whole MiB); with\n"
		"                      --incoming, what the source must offer (checked\n"
		"                      against its hello before anything is built)\n"
		"  --restore FILE      resume a saved state instead of booting (RAM size and\n"
		"                      guest id come from the state)\n"
		"  --incoming HOST:PORT receive a live migration instead of booting: listen on\n"
		"                      HOST:PORT (PORT 0: any free one, printed and in STATUS\n"
		"                      incoming_port), accept one source, build the guest from\n"
		"                      its stream (RAM size and id come from it; --id and\n"
		"                      --mem, if given, must match), and run it only once the source let\n"
		"                      the owner lock go (--lock is taken then, not at start)\n"
		"  --incoming-timeout S  give up (exit 9) when no source connected within S\n"
		"                      seconds (default 60; 0 = wait for ever)\n"
		"  --incoming-deadline S  give up (exit 9) when the guest does not run here\n"
		"                      within S seconds of the source connecting (default 600;\n"
		"                      0 = no limit)\n"
		"  --migrate-key-file F  --incoming: the per-migration secret (16..256 bytes,\n"
		"                      the whole file; a regular file must be owner-only, or\n"
		"                      use /dev/fd/N): only a source that proves it holds it\n"
		"                      (MIGRATE with the same key) is accepted, and every\n"
		"                      frame is encrypted and authenticated. Required with\n"
		"                      --incoming: an unauthenticated migration is refused\n"

		"  --disk SPEC         file:PATH[,size=SIZE]   raw image (created sparse with size=)\n"
		"                      rados:POOL/GUEST[,size=SIZE]  the guest's disk on Ceph\n"
		"                      RADOS; GUEST is its uuid or registry name (created with size=)\n"
		"  --ceph-conf FILE    ceph.conf for rados disks (default /etc/ceph/ceph.conf)\n"
		"  --ceph-client NAME  Ceph client name (default client.admin)\n"
		"  --ceph-keyring F    read --ceph-client's key from keyring F at start (owner-\n"
		"                      only, or /dev/fd/N from the supervisor); then no other\n"
		"                      keyring is read\n"
		"  --ceph-timeout S    RADOS connect and I/O timeout in seconds (default 10)\n"
		"  --lock COOKIE       take the guest's owner lock (rados disks; COOKIE = the\n"
		"                      node's incarnation) before the first instruction, and\n"
		"                      release it at a clean end; held elsewhere: exit 8\n"
		"  --owner rados:POOL/GUEST  the guest whose owner lock --lock takes when it\n"
		"                      has no disk (GUEST: uuid or registry name)\n"
		"  --backend B         tcg, kvm or auto (default auto: kvm when /dev/kvm opens)\n"
		"  --cmdline STR       command line the guest reads from its boot info\n"
		"  --address IP        the guest's IPv4 address (IP or IP/PREFIX; loopback\n"
		"                      is fine): its sockets (ABI v2) listen and connect\n"
		"                      from it, and it must be configured on this host.\n"
		"                      Without it the guest has no network (-ENODEV). Give\n"
		"                      it again with --restore and --incoming when the\n"
		"                      guest has sockets: listeners listen again there;\n"
		"                      a live migration also moves its established TCP\n"
		"                      connections (TCP_REPAIR and nft: root)\n"
		"  --id UUID           guest id (default: a random one)\n"
		"  --console FILE      append console output to FILE (default: stdout)\n"
		"  --console-max-bytes SIZE  rotate FILE to FILE.1 when it would pass SIZE\n"
		"                      (default 16M; 0 = never): at most about 2 x SIZE on disk\n"
		"  --console-rate SIZE console bytes per second kept (default 1M; 0 = no\n"
		"                      limit); the rest is dropped, and a line says how much\n"
		"  --control PATH      serve the control socket (pause, resume, save, stop,\n"
		"                      status, migrate: see proto/vmm.proto) at PATH, owner-only\n"
		"  --save FILE         on SIGTERM/SIGINT, or after --save-after, pause the\n"
		"                      guest and write its state to FILE, then exit 6\n"
		"  --save-after N      save right after the guest's N-th hypercall (needs --save)\n"
		"  --budget MS         guest run time allowed without a hypercall (default 5000)\n"
		"  --sandbox on|off    on (default): once set up, and before the guest's first\n"
		"                      instruction, run as user pvha-vmm when started as root\n"
		"                      (else as the caller), with no capabilities, no_new_privs\n"
		"                      and a seccomp allow-list; a privileged helper\n"
		"                      (TCP_REPAIR) and an nft runner keep CAP_NET_ADMIN\n"
		"                      only. off: for debugging (strace, gdb)\n"
		"  --verbose           log control requests\n"
		"  -h, --help          this text\n\n"
		"Exit status: 0 guest exited 0; 1 guest exited non-zero; 2 bad usage;\n"
		"3 guest misbehaved; 4 fenced; 5 stopped from outside; 6 state saved;\n"
		"7 host failure; 8 owner lock held elsewhere; 9 incoming migration failed,\n"
		"nothing ran here; 10 migrated away (this process never ran the guest after\n"
		"handing it over); 11 the storage did not answer in time, nothing ran.\n"
		"The last line on stderr says why.\n");
}

/* Reads the migration secret: the whole file, PVPROTO_KEY_MIN..MAX bytes. A
 * regular file others may read is refused (the key would not be secret). */
static int read_key_file(const char *path, uint8_t *key, size_t *len, char *why, size_t wl)
{
	uint8_t buf[PVPROTO_KEY_MAX];
	size_t n;
	int err = pv_secret_read(path, buf, sizeof(buf), &n, why, wl);
	if (err == -EFBIG || (!err && n < PVPROTO_KEY_MIN)) {
		memset(buf, 0, sizeof(buf));
		snprintf(why, wl, "holds %s%zu bytes; a key is %u to %u bytes", err ? "more than " : "",
			 err ? sizeof(buf) : n, PVPROTO_KEY_MIN, PVPROTO_KEY_MAX);
		return -EINVAL;
	}
	if (err)
		return err;
	memcpy(key, buf, n);
	memset(buf, 0, sizeof(buf));
	*len = n;
	return 0;
}

/* Closes the disk and --owner's lock-only handle (the lock is not released:
 * a process that ends holding it leaves it to the agent's clearing). */
static void close_disks(struct vmm *v)
{
	if (v->owner != v->disk)
		hv_disk_close(v->owner);
	hv_disk_close(v->disk);
	v->owner = v->disk = NULL;
}

static int read_file(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > IMAGE_MAX) {
		int err = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		close(fd);
		return err;
	}
	uint8_t *buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	ssize_t n = pvproto_read_all(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return n < 0 ? (int)n : -EIO;
	}
	*out = buf;
	*len = (size_t)st.st_size;
	return 0;
}

/* Writes the paused machine's state to path atomically (tmp file + rename). */
static int save_state(struct vmm *v, const char *path)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int err = hv_machine_save_fd(v->m, fd);
	if (!err && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* True when the directory that would hold path exists and we may write there. */
static bool dir_writable(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	if (!slash)
		return access(".", W_OK | X_OK) == 0;
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(dir))
		return false;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return access(dir, W_OK | X_OK) == 0;
}

static int exit_code_for(const struct hv_stop_info *s)
{
	switch (s->kind) {
	case HV_STOP_EXIT: return s->code == 0 ? VMM_EXIT_OK : VMM_EXIT_GUEST_ERROR;
	case HV_STOP_FENCED: return VMM_EXIT_FENCED;
	case HV_STOP_KILLED: return VMM_EXIT_STOPPED;
	case HV_STOP_INTERNAL: return VMM_EXIT_HOST;
	default: return VMM_EXIT_FAULT;
	}
}

static void finish_stopped(struct vmm *v)
{
	const struct hv_stop_info *s = hv_machine_stop_info(v->m);
	v->exit_code = exit_code_for(s);
	snprintf(v->final, sizeof(v->final), "%s: %s", hv_stop_kind_name(s->kind), s->reason);
	v->state = ST_DONE;
}

/* Pauses, saves to --save, and ends the process with status 6. */
static void finish_saved(struct vmm *v, const char *why)
{
	hv_machine_pause_clock(v->m);
	int err = save_state(v, v->save_path);
	if (err) {
		v->exit_code = VMM_EXIT_HOST;
		snprintf(v->final, sizeof(v->final), "internal: %s, and saving to %s failed: %s", why,
			 v->save_path, strerror(-err));
	} else {
		v->exit_code = VMM_EXIT_SAVED;
		snprintf(v->final, sizeof(v->final), "saved: %s; state written to %s", why, v->save_path);
	}
	v->state = ST_DONE;
}

/* The machine may be read here only while it is the loop's own. */
static bool machine_here(const struct vmm *v)
{
	return v->m && !v->handed_over && v->state != ST_MIGRATING && v->state != ST_INCOMING;
}

/* Keeps the figures STATUS shows while the machine is lent or gone. */
static void snapshot(struct vmm *v)
{
	hv_machine_get_stats(v->m, &v->snap);
}

static void migration_progress(struct vmm *v, struct mig_progress *p)
{
	if (v->mig_src)
		mig_source_progress(v->mig_src, p);
	else if (v->mig_tgt)
		mig_target_progress(v->mig_tgt, p);
	else
		*p = v->mig;
}

static void fill_status(struct vmm *v, Pvha__VmmStatus *st)
{
	static char stop_kind[32], reason[256];
	static struct mig_progress mp;
	struct hv_machine_stats s;
	const struct hv_stop_info *si = NULL;

	/* The progress first: the thread may finish while we look, and a
	 * released lock means "migrated" whatever the loop has applied yet. */
	migration_progress(v, &mp);
	if (machine_here(v)) {
		hv_machine_get_stats(v->m, &s);
		si = hv_machine_stop_info(v->m);
	} else {
		s = v->snap;
		if (!s.backend)
			s.backend = "";
	}
	if (si && si->kind != HV_STOP_NONE)
		st->state = "stopped";
	else if (v->handed_over || mp.released)
		st->state = "migrated";
	else if (!v->m)
		st->state = v->state == ST_INCOMING ? "incoming" : "stopped";
	else if (v->state == ST_PAUSED || v->state == ST_MIGRATING)
		st->state = "paused";
	else
		st->state = v->sleeping ? "sleeping" : "running";
	snprintf(stop_kind, sizeof(stop_kind), "%s", si && si->kind ? hv_stop_kind_name(si->kind) : "");
	snprintf(reason, sizeof(reason), "%s", si ? si->reason : "");
	st->stop_kind = stop_kind;
	st->reason = reason;
	st->exit_code = si && si->kind == HV_STOP_EXIT ? si->code : 0;
	st->hypercalls = s.hypercalls;
	st->guest_mono_ns = s.guest_mono_ns;
	st->heartbeat_seq = s.heartbeat_seq;
	st->heartbeat_age_ms = s.heartbeat_seq ? (s.guest_mono_ns - s.heartbeat_mono_ns) / 1000000 : 0;
	st->mem_size = s.mem_size;
	st->backend = (char *)s.backend;
	st->pid = (uint32_t)getpid();
	memcpy(v->guest_id, s.guest_id, sizeof(v->guest_id));
	st->guest_id.data = v->guest_id;
	st->guest_id.len = sizeof(v->guest_id);
	st->storage_addr = v->storage_addr;
	st->disk = (char *)(v->disk_spec ? v->disk_spec : "");
	st->disk_reads = s.disk.reads;
	st->disk_writes = s.disk.writes;
	st->disk_flushes = s.disk.flushes;
	st->disk_read_bytes = s.disk.read_bytes;
	st->disk_write_bytes = s.disk.write_bytes;
	st->disk_read_ns = s.disk.read_ns;
	st->disk_write_ns = s.disk.write_ns;
	st->disk_flush_ns = s.disk.flush_ns;

	st->incoming_port = v->incoming_port;
	st->migration_phase = (char *)mig_phase_name(mp.phase);
	st->migration_round = mp.round;
	st->migration_bytes_sent = mp.bytes_sent;
	st->migration_pages_left = mp.pages_left;
	st->migration_rate = mp.rate;
	st->migration_downtime_us = mp.downtime_us;
	st->migration_total_ms = mp.total_ms;
	st->migration_reason = mp.reason;
	st->migration_released = mp.released;
	st->migration_forced = mp.forced;
	st->migration_peer = mp.peer;
	st->net_address = (char *)(v->address ? v->address : "");
	unsigned handles, listeners;
	hv_net_counts(v->net, &handles, &listeners);
	st->net_handles = handles;
	st->net_listeners = listeners;
}

/* A source migration's thread has ended (or was made to): apply its result.
 * A source that let the owner lock go is migrated and never runs the guest
 * again; one that did not gets its machine back, running again if the
 * migration had paused it. */
static void source_ended(struct vmm *v)
{
	mig_source_destroy(v->mig_src, &v->mig); /* joins */
	v->mig_src = NULL;
	if (v->mig.released) {
		/* the guest's sockets live on at the target (the migration thread
		 * closed them at the hand-over): none may stay open here */
		hv_net_reset(v->net, -ECONNRESET);
		v->state = ST_MIGRATED;
		v->handed_over = true;
		v->deadline_ns = mono_ns() + MIGRATED_LINGER_NS;
		if (v->mig.phase == MIG_DONE)
			snprintf(v->final, sizeof(v->final),
				 "migrated: the guest runs at %.200s (downtime %.3f ms, %u rounds, %llu MiB, %llu ms)",
				 v->mig.peer, (double)v->mig.downtime_us / 1000.0, v->mig.round,
				 (unsigned long long)(v->mig.bytes_sent >> 20),
				 (unsigned long long)v->mig.total_ms);
		else
			snprintf(v->final, sizeof(v->final), "migrated: owner lock released to %.200s, but %.250s",
				 v->mig.peer, v->mig.reason);
		return;
	}
	if (v->state == ST_MIGRATING)
		v->state = ST_RUNNING;
	pvlog_warn("migration to %s failed: %s; the guest runs on here", v->mig.peer, v->mig.reason);
}

/* The incoming migration failed: nothing ran here. */
static void target_failed(struct vmm *v)
{
	mig_target_destroy(v->mig_tgt, &v->mig);
	v->mig_tgt = NULL;
	v->exit_code = VMM_EXIT_INCOMING_FAILED;
	snprintf(v->final, sizeof(v->final), "migration failed: %s; nothing ran here", v->mig.reason);
	v->state = ST_DONE;
}

/* Ends a migration thread that is still there, because the VMM must move on
 * (STOP, a signal, the guest stopped, exit); why goes into its reason. */
static void end_migration(struct vmm *v, const char *why)
{
	if (v->mig_src) {
		mig_source_cancel(v->mig_src, why);
		source_ended(v);
	}
	if (v->mig_tgt) {
		mig_target_cancel(v->mig_tgt, why);
		mig_target_destroy(v->mig_tgt, &v->mig); /* a machine not yet taken goes too */
		v->mig_tgt = NULL;
	}
}

/* A migrated source ends (STOP, a signal, or its linger time is over). */
static void finish_migrated(struct vmm *v)
{
	v->exit_code = VMM_EXIT_MIGRATED;
	v->state = ST_DONE; /* v->final was written when the hand-over ended */
}

/* The VMM is told to end before an incoming guest ran. */
static void finish_incoming_stopped(struct vmm *v, const char *by)
{
	v->exit_code = VMM_EXIT_STOPPED;
	snprintf(v->final, sizeof(v->final), "killed: %s before the incoming guest arrived; nothing ran here",
		 by);
	v->state = ST_DONE;
}

/* News from a migration thread (called every loop turn; cheap). */
static void migration_step(struct vmm *v)
{
	if (v->mig_src) {
		switch (mig_source_poll(v->mig_src)) {
		case MIG_WANT_PAUSE:
			if (v->state == ST_RUNNING) {
				hv_machine_pause_clock(v->m);
				snapshot(v);
				v->state = ST_MIGRATING;
				mig_source_paused(v->mig_src, mono_ns());
			}
			break;
		case MIG_WANT_JOIN:
			source_ended(v);
			break;
		case MIG_WANT_NOTHING:
			break;
		}
	}
	if (v->mig_tgt) {
		bool failed = false;
		struct hv_machine *m = mig_target_take(v->mig_tgt, &failed);
		if (m) {
			v->m = m;
			v->state = ST_RUNNING;
			v->sleeping = false;
		} else if (failed) {
			target_failed(v);
			return;
		}
		if (mig_target_finished(v->mig_tgt)) {
			mig_target_destroy(v->mig_tgt, &v->mig);
			v->mig_tgt = NULL;
		}
	}
}

/* Starts an outgoing migration for a MIGRATE request. Returns 0 or -errno
 * with the reason in errmsg. */
static int start_migration(struct vmm *v, const Pvha__VmmRequest *req, char *errmsg, size_t len)
{
	if (v->mig_src || v->mig_tgt) {
		snprintf(errmsg, len, "a migration is in progress");
		return -EALREADY;
	}
	if (v->state == ST_INCOMING) {
		snprintf(errmsg, len, "no guest here yet: it is still arriving");
		return -EBUSY;
	}
	if (v->state == ST_MIGRATED) {
		snprintf(errmsg, len, "the guest was migrated away");
		return -EBUSY;
	}
	if (hv_machine_stop_info(v->m)->kind != HV_STOP_NONE) {
		snprintf(errmsg, len, "the guest has stopped");
		return -ESRCH;
	}
	if (v->state != ST_RUNNING) {
		snprintf(errmsg, len, "the guest is paused: resume it before migrating it");
		return -EBUSY;
	}
	if (!req->migrate_host || !req->migrate_host[0] || req->migrate_port == 0 ||
	    req->migrate_port > 65535) {
		snprintf(errmsg, len, "migrate needs the target's host and port (1..65535)");
		return -EINVAL;
	}
	if (req->migrate_downtime_ms > 60000 || req->migrate_max_rounds > 10000) {
		snprintf(errmsg, len, "migrate: downtime budget at most 60000 ms, at most 10000 rounds");
		return -EINVAL;
	}
	if (req->migrate_key.len && (req->migrate_key.len < PVPROTO_KEY_MIN ||
				     req->migrate_key.len > PVPROTO_KEY_MAX)) {
		snprintf(errmsg, len, "migrate: a key is %u to %u bytes, not %zu", PVPROTO_KEY_MIN,
			 PVPROTO_KEY_MAX, req->migrate_key.len);
		return -EINVAL;
	}
	struct hv_machine_stats s;
	hv_machine_get_stats(v->m, &s);
	struct mig_source_params p = {
		.host = req->migrate_host,
		.port = (uint16_t)req->migrate_port,
		.downtime_ms = req->migrate_downtime_ms,
		.max_rounds = req->migrate_max_rounds,
		.m = v->m,
		.stats = &s,
		.disk = v->disk,
		.owner = v->owner,
		.net = v->net,
		.disk_spec = v->disk_spec,
		.lock_cookie = vmm_disk_locked(v->owner) ? v->lock_cookie : NULL,
		.key = req->migrate_key.data,
		.key_len = req->migrate_key.len,
		.notify_fd = v->notify_fd,
		.privsep = &v->privsep,
		.privsep_nft = &v->privsep_nft,
	};
	memset(&v->mig, 0, sizeof(v->mig));
	int err = mig_source_start(&p, &v->mig_src);
	if (err)
		snprintf(errmsg, len, "cannot start the migration: %s", strerror(-err));
	return err;
}

/* Handles one control request; returns false when the client must be dropped. */
static bool serve_client(struct vmm *v, int fd)
{
	ProtobufCMessage *msg;
	Pvha__VmmReply reply = PVHA__VMM_REPLY__INIT;
	Pvha__VmmStatus status = PVHA__VMM_STATUS__INIT;
	char errmsg[512] = "";
	int err = pvproto_frame_read(fd, &pvha__vmm_request__descriptor, REQUEST_MAX, &msg);
	if (err == -ENODATA)
		return false;
	if (err) {
		reply.error = -EBADMSG;
		snprintf(errmsg, sizeof(errmsg), "bad request frame: %s", strerror(-err));
		reply.message = errmsg;
		pvproto_frame_write(fd, &reply.base);
		return false;
	}
	Pvha__VmmRequest *req = (Pvha__VmmRequest *)msg;
	pvlog_debug("request op %d", req->op);
	if (req->version != 1) {
		err = -EPROTO;
		snprintf(errmsg, sizeof(errmsg), "request version %u not supported (1)", req->version);
	} else {
		const char *busy = v->state == ST_INCOMING   ? "no guest here yet: it is still arriving"
				   : v->state == ST_MIGRATED ? "the guest was migrated away"
				   : v->mig_src		     ? "a migration is in progress"
							     : NULL;
		bool plain_op = req->op == PVHA__VMM_REQUEST__OP__PAUSE ||
				req->op == PVHA__VMM_REQUEST__OP__RESUME ||
				req->op == PVHA__VMM_REQUEST__OP__SAVE;
		if (plain_op && busy) {
			err = -EBUSY;
			snprintf(errmsg, sizeof(errmsg), "%s", busy);
		} else switch (req->op) {
		case PVHA__VMM_REQUEST__OP__STATUS:
			break;
		case PVHA__VMM_REQUEST__OP__MIGRATE:
			err = start_migration(v, req, errmsg, sizeof(errmsg));
			break;
		case PVHA__VMM_REQUEST__OP__MIGRATE_CANCEL:
			/* the thread gives up before the lock is let go (the guest
			 * then runs on here), or changes nothing after */
			if (!v->mig_src) {
				err = -ESRCH;
				snprintf(errmsg, sizeof(errmsg), "no migration is in progress");
			} else if (!mig_source_cancel(v->mig_src, "cancelled by the supervisor")) {
				err = -EALREADY;
				snprintf(errmsg, sizeof(errmsg),
					 "too late: the owner lock was already let go; the hand-over goes on");
			}
			break;
		case PVHA__VMM_REQUEST__OP__PAUSE:
			if (hv_machine_stop_info(v->m)->kind != HV_STOP_NONE) {
				err = -ESRCH;
				snprintf(errmsg, sizeof(errmsg), "the guest has stopped");
			} else {
				v->state = ST_PAUSED;
				hv_machine_pause_clock(v->m);
			}
			break;
		case PVHA__VMM_REQUEST__OP__RESUME:
			if (v->state == ST_PAUSED)
				v->state = ST_RUNNING;
			break;
		case PVHA__VMM_REQUEST__OP__SAVE:
			if (v->state != ST_PAUSED) {
				err = -EBUSY;
				snprintf(errmsg, sizeof(errmsg), "pause the guest before saving it");
			} else if (!req->path || !req->path[0]) {
				err = -EINVAL;
				snprintf(errmsg, sizeof(errmsg), "save needs a file path");
			} else {
				err = save_state(v, req->path);
				if (err)
					snprintf(errmsg, sizeof(errmsg), "saving to %s: %s", req->path,
						 strerror(-err));
			}
			break;
		case PVHA__VMM_REQUEST__OP__STOP:
			end_migration(v, "stopped by its supervisor");
			if (v->state == ST_MIGRATED) {
				finish_migrated(v);
			} else if (!v->m) {
				finish_incoming_stopped(v, "stopped by its supervisor");
			} else {
				hv_machine_stop(v->m, HV_STOP_KILLED, 0, 0, "stopped by its supervisor");
				finish_stopped(v);
			}
			break;
		default:
			err = -EINVAL;
			snprintf(errmsg, sizeof(errmsg), "unknown operation %d", req->op);
			break;
		}
	}
	pvha__vmm_request__free_unpacked(req, NULL);
	/* A migration thread that has just finished is applied first, so that a
	 * reply never pairs phase "done" with a state from before it. */
	if (v->state != ST_DONE)
		migration_step(v);
	fill_status(v, &status);
	reply.error = err;
	reply.message = errmsg;
	reply.status = &status;
	return pvproto_frame_write(fd, &reply.base) == 0;
}

static void add_client(struct vmm *v, int fd)
{
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (v->clients[i] < 0) {
			v->clients[i] = fd;
			return;
		}
	}
	close(fd); /* too many: the client sees the connection close */
}

static int listen_control(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(077);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || listen(fd, 8) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void handle_signal(struct vmm *v)
{
	struct signalfd_siginfo si;
	if (read(v->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	char by[64];
	snprintf(by, sizeof(by), "stopped by signal %u", si.ssi_signo);
	end_migration(v, by);
	if (v->state == ST_MIGRATED) {
		finish_migrated(v);
		return;
	}
	if (!v->m) {
		finish_incoming_stopped(v, by);
		return;
	}
	if (v->save_path) {
		char why[64];
		snprintf(why, sizeof(why), "signal %u", si.ssi_signo);
		finish_saved(v, why);
		return;
	}
	hv_machine_stop(v->m, HV_STOP_KILLED, si.ssi_signo, 0, "stopped by signal %u", si.ssi_signo);
	finish_stopped(v);
}

/* The ppoll timeout for this turn: none while running, until the wake-up
 * while sleeping, until the deadline (incoming, migrated), else for ever. */
static struct timespec *poll_timeout(struct vmm *v, struct timespec *ts)
{
	uint64_t until;
	if (v->state == ST_RUNNING && !v->sleeping)
		until = 0;
	else if (v->state == ST_RUNNING)
		until = hv_machine_wake_at(v->m);
	else if ((v->state == ST_INCOMING || v->state == ST_MIGRATED) && v->deadline_ns)
		until = v->deadline_ns;
	else
		return NULL;
	if (until == UINT64_MAX)
		return NULL; /* a guest asleep with no deadline: only events wake it */
	uint64_t now = mono_ns();
	uint64_t d = until > now ? until - now : 0;
	ts->tv_sec = (time_t)(d / 1000000000ull);
	ts->tv_nsec = (long)(d % 1000000000ull);
	return ts;
}

/* --incoming: the one source connects; the receiver thread takes it over. */
static void accept_incoming(struct vmm *v)
{
	int c = accept4(v->incoming_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	close(v->incoming_fd); /* one source only */
	v->incoming_fd = -1;
	/* From here a slow or stalled source cannot keep us waiting for ever. */
	v->deadline_ns = v->incoming_deadline_s ? mono_ns() + v->incoming_deadline_s * 1000000000ull : 0;
	struct mig_target_params p = {
		.fd = c,
		.cfg = v->cfg,
		.lock_cookie = v->lock_cookie,
		.owner = v->owner,
		.have_id = v->have_id,
		.key = v->mig_key,
		.key_len = v->mig_key_len,
		.notify_fd = v->notify_fd,
		.privsep = &v->privsep,
		.privsep_nft = &v->privsep_nft,
	};
	memcpy(p.id, v->cfg.guest_id, sizeof(p.id));
	int err = mig_target_start(&p, &v->mig_tgt);
	if (err) {
		close(c);
		v->exit_code = VMM_EXIT_HOST;
		snprintf(v->final, sizeof(v->final), "internal: cannot start the receiver: %s; nothing ran here",
			 strerror(-err));
		v->state = ST_DONE;
	}
}

static void run_loop(struct vmm *v, uint64_t save_after)
{
	enum { P_SIG, P_CONTROL, P_NOTIFY, P_INCOMING, P_CLIENTS };
	/* then the sockets a guest asleep in net_poll waits on */
	struct pollfd pfd[P_CLIENTS + MAX_CLIENTS + PV_NET_POLL_MAX];
	if (save_after)
		hv_machine_break_after(v->m, save_after);

	while (v->state != ST_DONE) {
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = v->sig_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = v->listen_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = v->notify_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = v->incoming_fd, .events = POLLIN };
		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[n++] = (struct pollfd){ .fd = v->clients[i], .events = POLLIN };
		if (v->state == ST_RUNNING && v->sleeping)
			n += (int)hv_machine_wait_fds(v->m, pfd + n, PV_NET_POLL_MAX);

		struct timespec ts;
		if (ppoll(pfd, (nfds_t)n, poll_timeout(v, &ts), NULL) < 0 && errno != EINTR) {
			pvlog_err(-errno, "poll");
			v->exit_code = VMM_EXIT_HOST;
			snprintf(v->final, sizeof(v->final), "internal: poll failed");
			return;
		}
		if (pfd[P_NOTIFY].revents & POLLIN) {
			uint64_t cnt;
			if (read(v->notify_fd, &cnt, sizeof(cnt)) < 0) {
				/* drained already */
			}
		}
		if (pfd[P_SIG].revents & POLLIN)
			handle_signal(v);
		if (v->state == ST_INCOMING && v->incoming_fd >= 0 && (pfd[P_INCOMING].revents & POLLIN))
			accept_incoming(v);
		if (v->state != ST_DONE && (pfd[P_CONTROL].revents & POLLIN)) {
			int c = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				add_client(v, c);
		}
		for (int i = 0; i < MAX_CLIENTS && v->state != ST_DONE; i++) {
			if (v->clients[i] >= 0 &&
			    (pfd[P_CLIENTS + i].revents & (POLLIN | POLLHUP | POLLERR))) {
				if (!serve_client(v, v->clients[i])) {
					close(v->clients[i]);
					v->clients[i] = -1;
				}
			}
		}
		if (v->state == ST_DONE)
			break;
		migration_step(v);
		if (v->deadline_ns && mono_ns() >= v->deadline_ns) {
			if (v->state == ST_MIGRATED) {
				finish_migrated(v);
			} else if (v->state == ST_INCOMING && v->incoming_fd >= 0) {
				v->exit_code = VMM_EXIT_INCOMING_FAILED;
				snprintf(v->final, sizeof(v->final),
					 "migration failed: no source connected within %llu s; nothing ran here",
					 (unsigned long long)v->incoming_timeout_s);
				v->state = ST_DONE;
			} else if (v->state == ST_INCOMING && v->mig_tgt) {
				/* the thread fails at once (its socket is shut) and reports */
				char why[128];
				snprintf(why, sizeof(why), "the source did not complete the migration within "
					 "%llu s of connecting (--incoming-deadline)",
					 (unsigned long long)v->incoming_deadline_s);
				mig_target_cancel(v->mig_tgt, why);
				v->deadline_ns = 0;
			}
		}
		if (v->state != ST_RUNNING)
			continue;

		enum hv_run_result res;
		int err = hv_machine_run(v->m, SLICE_NS, &res);
		if (err)
			pvlog_err(err, "running the guest");
		switch (res) {
		case HV_RUN_STOPPED:
			end_migration(v, "the guest stopped");
			finish_stopped(v);
			break;
		case HV_RUN_BREAK:
			if (v->save_path) {
				char why[64];
				snprintf(why, sizeof(why), "after hypercall %llu", (unsigned long long)save_after);
				end_migration(v, "the guest is being saved");
				finish_saved(v, why);
			}
			break;
		case HV_RUN_SLEEPING:
			v->sleeping = true;
			break;
		case HV_RUN_PREEMPTED:
		case HV_RUN_YIELDED:
			v->sleeping = false;
			break;
		}
	}
}

/* Before anything is opened: who the VMM will be, and its privileged
 * helper (forked now, while there is one thread and no secret in memory).
 * Returns 0, or 1 with the reason on stderr. */
static int start_sandbox(struct vmm *v, int argc, char **argv)
{
	char why[256] = "";
	int err;
	if (!v->sandbox) {
		privsep_inprocess(privsep_vmm_ops, privsep_vmm_nops, &v->scope, &v->privsep);
		privsep_inprocess(privsep_nft_ops, privsep_nft_nops, &v->scope, &v->privsep_nft);
		return 0;
	}
	err = sandbox_user_lookup(NULL, &v->user, why, sizeof(why));
	if (err) {
		fprintf(stderr, "pvha-vmm: sandbox: %s (or --sandbox off)\n", why);
		return 1;
	}
	struct privsep_opts po = {
		.ops = privsep_vmm_ops, .nops = privsep_vmm_nops, .ctx = &v->scope,
		.enter = sandbox_enter_helper, .enter_ctx = &v->user,
		.argv = argv, .argc = argc,
	};
	err = privsep_start(&po, &v->privsep, why, sizeof(why));
	if (err) {
		fprintf(stderr, "pvha-vmm: sandbox: %s\n", why);
		return 1;
	}
	struct privsep_opts pn = {
		.ops = privsep_nft_ops, .nops = privsep_nft_nops, .ctx = &v->scope,
		.enter = sandbox_enter_nft, .enter_ctx = &v->user,
		.argv = argv, .argc = argc, .name = "pvha-vmm-nft",
	};
	err = privsep_start(&pn, &v->privsep_nft, why, sizeof(why));
	if (err) {
		fprintf(stderr, "pvha-vmm: sandbox: the nft runner: %s\n", why);
		return 1;
	}
	return 0;
}

/* Set up, before the guest's first instruction: the VMM gives up its user,
 * capabilities and every syscall it does not need (sandbox.h). A failure
 * ends the VMM before the guest runs (v->state ST_DONE). */
static void enter_sandbox(struct vmm *v)
{
	char why[256] = "";
	if (!v->sandbox)
		return;
	int err = sandbox_enter_vmm(&v->user, why, sizeof(why));
	if (err) {
		v->exit_code = VMM_EXIT_HOST;
		snprintf(v->final, sizeof(v->final), "internal: the sandbox failed: %s; nothing ran", why);
		v->state = ST_DONE;
		return;
	}
	/* --save writes as the sandbox's user */
	if (v->save_path && !dir_writable(v->save_path)) {
		v->exit_code = VMM_EXIT_USAGE;
		snprintf(v->final, sizeof(v->final),
			 "--save %.300s: its directory is not writable by %s (the sandbox's user); nothing ran",
			 v->save_path, v->user.name);
		v->state = ST_DONE;
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image", required_argument, NULL, 'i' },   { "mem", required_argument, NULL, 'm' },
		{ "restore", required_argument, NULL, 'r' }, { "disk", required_argument, NULL, 'd' },
		{ "backend", required_argument, NULL, 'b' }, { "cmdline", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'u' },      { "console", required_argument, NULL, 'o' },
		{ "console-max-bytes", required_argument, NULL, 'x' },
		{ "console-rate", required_argument, NULL, 'R' },
		{ "control", required_argument, NULL, 'C' }, { "save", required_argument, NULL, 's' },
		{ "save-after", required_argument, NULL, 'A' }, { "budget", required_argument, NULL, 'B' },
		{ "ceph-conf", required_argument, NULL, 'K' }, { "ceph-client", required_argument, NULL, 'N' },
		{ "ceph-timeout", required_argument, NULL, 'T' }, { "lock", required_argument, NULL, 'L' },
		{ "incoming", required_argument, NULL, 'I' },
		{ "incoming-timeout", required_argument, NULL, 'W' },
		{ "incoming-deadline", required_argument, NULL, 'D' },
		{ "migrate-key-file", required_argument, NULL, 'k' },
		{ "ceph-keyring", required_argument, NULL, 'Y' },
		{ "owner", required_argument, NULL, 'O' },
		{ "address", required_argument, NULL, 'a' },
		{ "sandbox", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },       { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmm v = { .listen_fd = -1, .sig_fd = -1,
			 .notify_fd = -1, .incoming_fd = -1, .incoming_timeout_s = INCOMING_TIMEOUT_S,
			 .incoming_deadline_s = INCOMING_DEADLINE_S, .sandbox = true,
			 .privsep = { .fd = -1 }, .privsep_nft = { .fd = -1 } };
	struct hv_config cfg = { 0 };
	struct vmm_disk_opts dopts = { 0 };
	const char *image = NULL, *restore = NULL, *disk_spec = NULL, *console = NULL;
	const char *incoming = NULL, *key_file = NULL, *ceph_keyring = NULL, *owner_spec = NULL;
	char ceph_key[PV_CEPH_KEY_MAX];
	struct vmm_console_opts copts = { .max_bytes = VMM_CONSOLE_MAX_DEFAULT,
					  .rate = VMM_CONSOLE_RATE_DEFAULT };
	uint64_t save_after = 0, budget_ms = 0;
	bool have_id = false, have_mem = false;
	const char *lock_cookie = NULL;
	int c, err;

	pvlog_prog = "pvha-vmm";
	no_huge_pages();
	for (int i = 0; i < MAX_CLIENTS; i++)
		v.clients[i] = -1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': image = optarg; break;
		case 'r': restore = optarg; break;
		case 'd': disk_spec = optarg; break;
		case 'c': cfg.cmdline = optarg; break;
		case 'o': console = optarg; break;
		case 'C': v.control_path = optarg; break;
		case 's': v.save_path = optarg; break;
		case 'v': pvlog_max_level = PVLOG_DEBUG; break;
		case 'K': dopts.ceph_conf = optarg; break;
		case 'L': lock_cookie = optarg; break;
		case 'I': incoming = optarg; break;
		case 'a': v.address = optarg; break;
		case 'S':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "pvha-vmm: --sandbox %s: want on or off\n", optarg);
				return VMM_EXIT_USAGE;
			}
			v.sandbox = strcmp(optarg, "on") == 0;
			break;
		case 'W':
			if (pv_parse_u64(optarg, &v.incoming_timeout_s) || v.incoming_timeout_s > 86400) {
				fprintf(stderr, "pvha-vmm: --incoming-timeout %s: want 0..86400 seconds\n", optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		case 'D':
			if (pv_parse_u64(optarg, &v.incoming_deadline_s) || v.incoming_deadline_s > 86400) {
				fprintf(stderr, "pvha-vmm: --incoming-deadline %s: want 0..86400 seconds\n", optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		case 'k': key_file = optarg; break;
		case 'Y': ceph_keyring = optarg; break;
		case 'O': owner_spec = optarg; break;
		case 'x':
			if (pv_parse_size(optarg, &copts.max_bytes) ||
			    (copts.max_bytes && copts.max_bytes < 4096)) {
				fprintf(stderr, "pvha-vmm: --console-max-bytes %s: want 0 or a size of 4K or more\n",
					optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		case 'R':
			if (pv_parse_size(optarg, &copts.rate) || (copts.rate && copts.rate < 1024)) {
				fprintf(stderr, "pvha-vmm: --console-rate %s: want 0 or 1K or more bytes/s\n",
					optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		case 'N': dopts.ceph_client = optarg; break;
		case 'T': {
			uint64_t t;
			if (pv_parse_u64(optarg, &t) || t == 0 || t > 3600) {
				fprintf(stderr, "pvha-vmm: --ceph-timeout %s: want 1..3600 seconds\n", optarg);
				return VMM_EXIT_USAGE;
			}
			dopts.timeout_s = (unsigned)t;
			break;
		}
		case 'h': usage(stdout); return 0;
		case 'm':
			if (pv_parse_size(optarg, &cfg.mem_size) || !PV_MEM_SIZE_OK(cfg.mem_size)) {
				fprintf(stderr, "pvha-vmm: --mem %s: want a whole number of MiB from 2M to 4G\n", optarg);
				return VMM_EXIT_USAGE;
			}
			have_mem = true;
			break;
		case 'b':
			if (hv_backend_parse(optarg, &cfg.backend)) {
				fprintf(stderr, "pvha-vmm: --backend %s: want tcg, kvm or auto\n", optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		case 'u':
			if (uuid_parse(optarg, cfg.guest_id)) {
				fprintf(stderr, "pvha-vmm: --id %s: not a UUID\n", optarg);
				return VMM_EXIT_USAGE;
			}
			have_id = true;
			break;
		case 'A':
			if (pv_parse_u64(optarg, &save_after) || save_after == 0) {
				fprintf(stderr, "pvha-vmm: --save-after %s: want a hypercall count >= 1\n", optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		case 'B':
			if (pv_parse_u64(optarg, &budget_ms) || budget_ms == 0 || budget_ms > 3600000) {
				fprintf(stderr, "pvha-vmm: --budget %s: want 1..3600000 ms\n", optarg);
				return VMM_EXIT_USAGE;
			}
			break;
		default:
			usage(stderr);
			return VMM_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pvha-vmm: unexpected argument '%s'\n", argv[optind]);
		return VMM_EXIT_USAGE;
	}
	if ((image != NULL) + (restore != NULL) + (incoming != NULL) != 1) {
		fprintf(stderr, "pvha-vmm: give exactly one of --image and --restore, or --incoming (see --help)\n");
		return VMM_EXIT_USAGE;
	}
	if (incoming && (cfg.cmdline || save_after)) {
		fprintf(stderr, "pvha-vmm: --cmdline comes from the migration stream with "
				"--incoming, and --save-after counts from a boot\n");
		return VMM_EXIT_USAGE;
	}
	if (incoming && !key_file) {
		fprintf(stderr, "pvha-vmm: --incoming needs --migrate-key-file: an unauthenticated "
				"migration is refused\n");
		return VMM_EXIT_USAGE;
	}
	if (key_file && !incoming) {
		fprintf(stderr, "pvha-vmm: --migrate-key-file is for --incoming (a source gets its key "
				"with the MIGRATE request)\n");
		return VMM_EXIT_USAGE;
	}
	/* the usage rules first: a refused command line starts no helper */
	if (image && !have_mem) {
		fprintf(stderr, "pvha-vmm: --image needs --mem\n");
		return VMM_EXIT_USAGE;
	}
	if (restore && (have_mem || have_id || cfg.cmdline)) {
		fprintf(stderr, "pvha-vmm: --mem, --id and --cmdline come from the saved state with --restore\n");
		return VMM_EXIT_USAGE;
	}
	if (owner_spec && (disk_spec || !lock_cookie)) {
		fprintf(stderr, "pvha-vmm: --owner is for a guest without --disk, with --lock\n");
		return VMM_EXIT_USAGE;
	}
	if (lock_cookie && !owner_spec && (!disk_spec || strncmp(disk_spec, "rados:", 6) != 0)) {
		fprintf(stderr, "pvha-vmm: --lock needs a rados disk, or --owner\n");
		return VMM_EXIT_USAGE;
	}
	if (save_after && !v.save_path) {
		fprintf(stderr, "pvha-vmm: --save-after needs --save FILE\n");
		return VMM_EXIT_USAGE;
	}
	if (cfg.cmdline && strlen(cfg.cmdline) >= PV_CMDLINE_MAX) {
		fprintf(stderr, "pvha-vmm: --cmdline is longer than %u bytes\n", PV_CMDLINE_MAX - 1);
		return VMM_EXIT_USAGE;
	}
	if (ceph_keyring && !dopts.ceph_client) {
		fprintf(stderr, "pvha-vmm: --ceph-keyring needs --ceph-client (whose key it holds)\n");
		return VMM_EXIT_USAGE;
	}
	/* --address: IP or IP/PREFIX (the form the cluster keeps); the prefix
	 * is the host's business, not the VMM's. The privileged helpers are
	 * given the IP at their start (privsep_scope). */
	char addr_ip[64] = "";
	if (v.address) {
		const char *slash = strchr(v.address, '/');
		size_t len = slash ? (size_t)(slash - v.address) : strlen(v.address);
		uint64_t prefix = 0;
		struct in_addr a;
		if (len < sizeof(addr_ip)) {
			memcpy(addr_ip, v.address, len);
			addr_ip[len] = '\0';
		}
		if (len >= sizeof(addr_ip) || (slash && (pv_parse_u64(slash + 1, &prefix) || prefix > 32))) {
			fprintf(stderr, "pvha-vmm: --address %s: want an IPv4 address, optionally /PREFIX (0..32)\n",
				v.address);
			return VMM_EXIT_USAGE;
		}
		if (inet_pton(AF_INET, addr_ip, &a) != 1) {
			fprintf(stderr, "pvha-vmm: --address %s: not an IPv4 address\n", v.address);
			return VMM_EXIT_USAGE;
		}
		v.scope.local_ip = a.s_addr;
	}
	if (start_sandbox(&v, argc, argv))
		return VMM_EXIT_USAGE;
	if (key_file) {
		char why[200];
		err = read_key_file(key_file, v.mig_key, &v.mig_key_len, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: --migrate-key-file %s: %s\n", key_file, why);
			return VMM_EXIT_USAGE;
		}
	}
	if (ceph_keyring) {
		char why[200];
		err = pv_keyring_read(ceph_keyring, dopts.ceph_client, ceph_key, sizeof(ceph_key), why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: --ceph-keyring %s: %s\n", ceph_keyring, why);
			return VMM_EXIT_USAGE;
		}
		dopts.ceph_key = ceph_key;
	}
	sandbox_close_inherited(); /* the key's fd 3 and the keyring's fd 4 too: read */
	if (v.save_path && !dir_writable(v.save_path)) {
		fprintf(stderr, "pvha-vmm: --save %s: its directory is missing or not writable\n",
			v.save_path);
		return VMM_EXIT_USAGE;
	}
	if (!have_id)
		uuid_generate(cfg.guest_id);
	cfg.budget_ns = budget_ms * 1000000ull;
	signal(SIGPIPE, SIG_IGN);

	copts.path = console;
	{
		char why[200];
		err = vmm_console_open(&v.console, &copts, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: --console %s: %s\n", console, why);
			return VMM_EXIT_USAGE;
		}
	}
	cfg.console = vmm_console_write;
	cfg.console_ctx = &v.console;
	if (disk_spec) {
		char why[256];
		err = vmm_disk_open(disk_spec, &dopts, &v.disk, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: --disk %s: %s\n", disk_spec, why);
			return err == -ETIMEDOUT ? VMM_EXIT_STORAGE : VMM_EXIT_USAGE;
		}
		cfg.disk = v.disk;
		v.disk_spec = disk_spec;
		if (vmm_disk_client_addr(v.disk, v.storage_addr, sizeof(v.storage_addr)))
			v.storage_addr[0] = '\0';
	}
	v.owner = v.disk;
	if (owner_spec) {
		char why[256];
		err = vmm_disk_open_owner(owner_spec, &dopts, &v.owner, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: --owner %s: %s\n", owner_spec, why);
			return err == -ETIMEDOUT ? VMM_EXIT_STORAGE : VMM_EXIT_USAGE;
		}
		if (vmm_disk_client_addr(v.owner, v.storage_addr, sizeof(v.storage_addr)))
			v.storage_addr[0] = '\0';
	}
	if (dopts.ceph_key)
		memset(ceph_key, 0, sizeof(ceph_key));
	if (v.address) {
		err = hv_net_host_open(addr_ip, &v.net);
		if (err) {
			fprintf(stderr, "pvha-vmm: --address %s: %s\n", v.address,
				err == -EINVAL ? "not an IPv4 address" : strerror(-err));
			close_disks(&v);
			return VMM_EXIT_USAGE;
		}
		cfg.net = v.net;
	}

	if (image) {
		uint8_t *buf = NULL;
		size_t len = 0;
		err = read_file(image, &buf, &len);
		if (err) {
			fprintf(stderr, "pvha-vmm: --image %s: %s\n", image,
				err == -EFBIG	 ? "larger than 256 MiB"
				: err == -EINVAL ? "not a regular file"
						 : strerror(-err));
			return VMM_EXIT_USAGE;
		}
		err = hv_machine_create(&cfg, &v.m);
		if (err) {
			fprintf(stderr, "pvha-vmm: cannot create the machine: %s\n",
				err == -ENODEV ? "backend kvm needs a /dev/kvm that opens and runs ABI v1 guests (x87/SSE); none here"
					       : strerror(-err));
			free(buf);
			return err == -ENODEV ? VMM_EXIT_USAGE : VMM_EXIT_HOST;
		}
		err = hv_machine_load_elf(v.m, buf, len);
		free(buf);
		if (err) {
			fprintf(stderr, "pvha-vmm: --image %s: %s\n", image,
				hv_machine_stop_info(v.m)->reason[0] ? hv_machine_stop_info(v.m)->reason
								     : strerror(-err));
			hv_machine_destroy(v.m);
			return VMM_EXIT_USAGE;
		}
	} else if (restore) {
		char why[256] = "";
		int fd = open(restore, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "pvha-vmm: --restore %s: %s\n", restore, strerror(errno));
			return VMM_EXIT_USAGE;
		}
		err = hv_machine_restore_fd(&cfg, fd, &v.m, why, sizeof(why));
		close(fd);
		if (err) {
			fprintf(stderr, "pvha-vmm: --restore %s: %s\n", restore, why[0] ? why : strerror(-err));
			close_disks(&v);
			hv_net_destroy(v.net);
			return VMM_EXIT_USAGE;
		}
	} else {
		/* The machine comes from the source; the lock is taken once the
		 * source has let it go (vmm_migrate.c), not here. */
		char why[256];
		if (cfg.backend == HV_BACKEND_KVM && !hv_kvm_available()) {
			fprintf(stderr, "pvha-vmm: --backend kvm needs a /dev/kvm that opens; none here\n");
			close_disks(&v);
			hv_net_destroy(v.net);
			return VMM_EXIT_USAGE;
		}
		int fd = mig_listen(incoming, &v.incoming_port, why, sizeof(why));
		if (fd < 0) {
			fprintf(stderr, "pvha-vmm: --incoming %s: %s\n", incoming, why);
			close_disks(&v);
			hv_net_destroy(v.net);
			return VMM_EXIT_USAGE;
		}
		v.incoming_fd = fd;
		v.cfg = cfg;
		v.have_id = have_id;
		v.state = ST_INCOMING;
		if (v.incoming_timeout_s)
			v.deadline_ns = mono_ns() + v.incoming_timeout_s * 1000000000ull;
		fprintf(stderr, "pvha-vmm: incoming: listening on %s, port %u\n", incoming,
			(unsigned)v.incoming_port);
	}
	v.lock_cookie = lock_cookie;
	v.notify_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v.notify_fd < 0) {
		fprintf(stderr, "pvha-vmm: eventfd: %s\n", strerror(errno));
		hv_machine_destroy(v.m);
		close_disks(&v);
		hv_net_destroy(v.net);
		return VMM_EXIT_HOST;
	}

	/* Nothing of the guest runs before its owner lock is ours. */
	if (lock_cookie && !incoming) {
		char why[256];
		err = vmm_disk_lock(v.owner, lock_cookie, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: owner lock: %s\n", why);
			hv_machine_destroy(v.m);
			close_disks(&v);
			hv_net_destroy(v.net);
			if (err == -EBUSY)
				return VMM_EXIT_LOCKED;
			if (err == -ESHUTDOWN) /* this host is blocklisted */
				return VMM_EXIT_FENCED;
			return err == -ETIMEDOUT ? VMM_EXIT_STORAGE : VMM_EXIT_HOST;
		}
	}

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	v.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (v.control_path) {
		v.listen_fd = listen_control(v.control_path);
		if (v.listen_fd < 0) {
			fprintf(stderr, "pvha-vmm: --control %s: %s\n", v.control_path,
				v.listen_fd == -EEXIST ? "exists and is not a socket; not replacing it"
						       : strerror(-v.listen_fd));
			hv_machine_destroy(v.m);
			close_disks(&v);
			hv_net_destroy(v.net);
			return VMM_EXIT_USAGE;
		}
		/* the sandbox's user removes it at exit where the directory lets
		 * it (a sticky one); its clients still see root, who listened */
		if (v.sandbox && v.user.change &&
		    lchown(v.control_path, v.user.uid, v.user.gid) < 0)
			pvlog_warn("--control %s: chown to %s: %s", v.control_path, v.user.name,
				   strerror(errno));
	}

	trim_stack();
	enter_sandbox(&v);
	if (v.state != ST_DONE)
		run_loop(&v, save_after);
	end_migration(&v, "the VMM is ending");

	fprintf(stderr, "pvha-vmm: %s\n", v.final);
	if (v.incoming_fd >= 0)
		close(v.incoming_fd);
	close(v.notify_fd);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (v.clients[i] >= 0)
			close(v.clients[i]);
	if (v.listen_fd >= 0) {
		close(v.listen_fd);
		unlink(v.control_path);
	}
	hv_machine_destroy(v.m);
	hv_net_destroy(v.net);
	/* A guest that ended cleanly gives its lock back; a fenced one cannot. */
	if (v.exit_code != VMM_EXIT_FENCED)
		vmm_disk_unlock(v.owner);
	close_disks(&v);
	vmm_console_close(&v.console);
	privsep_destroy(&v.privsep);
	privsep_destroy(&v.privsep_nft);
	return v.exit_code;
}
