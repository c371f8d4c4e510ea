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
 *
 * Single-threaded: one loop polls the control sockets and signals, then runs
 * the guest for a slice of at most SLICE_NS; a sleeping guest costs no CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "log.h"
#include "parse.h"
#include "proto/vmm.pb-c.h"
#include "pvhv/hv.h"
#include "pvproto/frame.h"
#include "vmm_disk.h"

#define SLICE_NS (10ull * 1000 * 1000)
#define MAX_CLIENTS 8
#define IMAGE_MAX (256u * 1024u * 1024u)
#define REQUEST_MAX 8192u

enum vmm_exit {
	VMM_EXIT_OK = 0, VMM_EXIT_GUEST_ERROR = 1, VMM_EXIT_USAGE = 2, VMM_EXIT_FAULT = 3,
	VMM_EXIT_FENCED = 4, VMM_EXIT_STOPPED = 5, VMM_EXIT_SAVED = 6, VMM_EXIT_HOST = 7,
	VMM_EXIT_LOCKED = 8,
};

enum vmm_state { ST_RUNNING, ST_PAUSED, ST_DONE };

struct vmm {
	struct hv_machine *m;
	struct hv_disk *disk;
	int console_fd;
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
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvha-vmm --image GUEST.elf --mem SIZE [options]\n"
		"       pvha-vmm --restore STATE [options]\n"
		"Runs one pvha guest on the paravirtual hypervisor core.\n\n"
		"  --image FILE        ELF64 guest image to boot\n"
		"  --mem SIZE          guest RAM, e.g. 64M (2M..4G, whole MiB)\n"
		"  --restore FILE      resume a saved state instead of booting (RAM size and\n"
		"                      guest id come from the state)\n"
		"  --disk SPEC         file:PATH[,size=SIZE]   raw image (created sparse with size=)\n"
		"                      rados:POOL/GUEST[,size=SIZE]  the guest's disk on Ceph\n"
		"                      RADOS; GUEST is its uuid or registry name (created with size=)\n"
		"  --ceph-conf FILE    ceph.conf for rados disks (default /etc/ceph/ceph.conf)\n"
		"  --ceph-client NAME  Ceph client name (default client.admin)\n"
		"  --ceph-timeout S    RADOS connect and I/O timeout in seconds (default 10)\n"
		"  --lock COOKIE       take the guest's owner lock (rados disks; COOKIE = the\n"
		"                      node's incarnation) before the first instruction, and\n"
		"                      release it at a clean end; held elsewhere: exit 8\n"
		"  --backend B         tcg, kvm or auto (default auto: kvm when /dev/kvm opens)\n"
		"  --cmdline STR       command line the guest reads from its boot info\n"
		"  --id UUID           guest id (default: a random one)\n"
		"  --console FILE      append console output to FILE (default: stdout)\n"
		"  --control PATH      serve the control socket (pause, resume, save, stop,\n"
		"                      status) at PATH, owner-only\n"
		"  --save FILE         on SIGTERM/SIGINT, or after --save-after, pause the\n"
		"                      guest and write its state to FILE, then exit 6\n"
		"  --save-after N      save right after the guest's N-th hypercall (needs --save)\n"
		"  --budget MS         guest run time allowed without a hypercall (default 5000)\n"
		"  --verbose           log control requests\n"
		"  -h, --help          this text\n\n"
		"Exit status: 0 guest exited 0; 1 guest exited non-zero; 2 bad usage;\n"
		"3 guest misbehaved; 4 fenced; 5 stopped from outside; 6 state saved;\n"
		"7 host failure; 8 owner lock held elsewhere. The last line on stderr says why.\n");
}

static void console_out(void *ctx, const char *buf, size_t len)
{
	struct vmm *v = ctx;
	/* A console nobody reads must not stop the guest: errors are dropped. */
	(void)pvproto_write_all(v->console_fd, buf, len);
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

static void fill_status(struct vmm *v, Pvha__VmmStatus *st)
{
	static char stop_kind[32], reason[256];
	struct hv_machine_stats s;
	const struct hv_stop_info *si = hv_machine_stop_info(v->m);

	hv_machine_get_stats(v->m, &s);
	if (si->kind != HV_STOP_NONE)
		st->state = "stopped";
	else if (v->state == ST_PAUSED)
		st->state = "paused";
	else
		st->state = v->sleeping ? "sleeping" : "running";
	snprintf(stop_kind, sizeof(stop_kind), "%s", si->kind ? hv_stop_kind_name(si->kind) : "");
	snprintf(reason, sizeof(reason), "%s", si->reason);
	st->stop_kind = stop_kind;
	st->reason = reason;
	st->exit_code = si->kind == HV_STOP_EXIT ? si->code : 0;
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
		switch (req->op) {
		case PVHA__VMM_REQUEST__OP__STATUS:
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
			hv_machine_stop(v->m, HV_STOP_KILLED, 0, 0, "stopped by its supervisor");
			finish_stopped(v);
			break;
		default:
			err = -EINVAL;
			snprintf(errmsg, sizeof(errmsg), "unknown operation %d", req->op);
			break;
		}
	}
	pvha__vmm_request__free_unpacked(req, NULL);
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
	if (v->save_path) {
		char why[64];
		snprintf(why, sizeof(why), "signal %u", si.ssi_signo);
		finish_saved(v, why);
		return;
	}
	hv_machine_stop(v->m, HV_STOP_KILLED, si.ssi_signo, 0, "stopped by signal %u", si.ssi_signo);
	finish_stopped(v);
}

static void run_loop(struct vmm *v, uint64_t save_after)
{
	struct pollfd pfd[2 + MAX_CLIENTS];
	if (save_after)
		hv_machine_break_after(v->m, save_after);

	while (v->state != ST_DONE) {
		int n = 0;
		pfd[n++] = (struct pollfd){ .fd = v->sig_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = v->listen_fd, .events = POLLIN };
		for (int i = 0; i < MAX_CLIENTS; i++)
			pfd[n++] = (struct pollfd){ .fd = v->clients[i], .events = POLLIN };

		struct timespec ts = { 0, 0 }, *tp = &ts;
		if (v->state == ST_PAUSED) {
			tp = NULL;
		} else if (v->sleeping) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
			uint64_t wake = hv_machine_wake_at(v->m);
			uint64_t d = wake > now_ns ? wake - now_ns : 0;
			ts.tv_sec = (time_t)(d / 1000000000ull);
			ts.tv_nsec = (long)(d % 1000000000ull);
		}
		if (ppoll(pfd, (nfds_t)n, tp, NULL) < 0 && errno != EINTR) {
			pvlog_err(-errno, "poll");
			v->exit_code = VMM_EXIT_HOST;
			snprintf(v->final, sizeof(v->final), "internal: poll failed");
			return;
		}
		if (pfd[0].revents & POLLIN)
			handle_signal(v);
		if (v->state != ST_DONE && (pfd[1].revents & POLLIN)) {
			int c = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0)
				add_client(v, c);
		}
		for (int i = 0; i < MAX_CLIENTS && v->state != ST_DONE; i++) {
			if (v->clients[i] >= 0 && (pfd[2 + i].revents & (POLLIN | POLLHUP | POLLERR))) {
				if (!serve_client(v, v->clients[i])) {
					close(v->clients[i]);
					v->clients[i] = -1;
				}
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
			finish_stopped(v);
			break;
		case HV_RUN_BREAK:
			if (v->save_path) {
				char why[64];
				snprintf(why, sizeof(why), "after hypercall %llu", (unsigned long long)save_after);
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

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "image", required_argument, NULL, 'i' },   { "mem", required_argument, NULL, 'm' },
		{ "restore", required_argument, NULL, 'r' }, { "disk", required_argument, NULL, 'd' },
		{ "backend", required_argument, NULL, 'b' }, { "cmdline", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'u' },      { "console", required_argument, NULL, 'o' },
		{ "control", required_argument, NULL, 'C' }, { "save", required_argument, NULL, 's' },
		{ "save-after", required_argument, NULL, 'A' }, { "budget", required_argument, NULL, 'B' },
		{ "ceph-conf", required_argument, NULL, 'K' }, { "ceph-client", required_argument, NULL, 'N' },
		{ "ceph-timeout", required_argument, NULL, 'T' }, { "lock", required_argument, NULL, 'L' },
		{ "verbose", no_argument, NULL, 'v' },       { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vmm v = { .console_fd = STDOUT_FILENO, .listen_fd = -1, .sig_fd = -1 };
	struct hv_config cfg = { 0 };
	struct vmm_disk_opts dopts = { 0 };
	const char *image = NULL, *restore = NULL, *disk_spec = NULL, *console = NULL;
	uint64_t save_after = 0, budget_ms = 0;
	bool have_id = false, have_mem = false;
	const char *lock_cookie = NULL;
	int c, err;

	pvlog_prog = "pvha-vmm";
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
			if (pv_parse_size(optarg, &cfg.mem_size) || cfg.mem_size < PV_MEM_MIN ||
			    cfg.mem_size > PV_MEM_MAX || cfg.mem_size % (1u << 20)) {
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
	if (!image == !restore) {
		fprintf(stderr, "pvha-vmm: give exactly one of --image and --restore (see --help)\n");
		return VMM_EXIT_USAGE;
	}
	if (image && !have_mem) {
		fprintf(stderr, "pvha-vmm: --image needs --mem\n");
		return VMM_EXIT_USAGE;
	}
	if (restore && (have_mem || have_id || cfg.cmdline)) {
		fprintf(stderr, "pvha-vmm: --mem, --id and --cmdline come from the saved state with --restore\n");
		return VMM_EXIT_USAGE;
	}
	if (lock_cookie && (!disk_spec || strncmp(disk_spec, "rados:", 6) != 0)) {
		fprintf(stderr, "pvha-vmm: --lock needs a rados disk\n");
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
	if (v.save_path && !dir_writable(v.save_path)) {
		fprintf(stderr, "pvha-vmm: --save %s: its directory is missing or not writable\n",
			v.save_path);
		return VMM_EXIT_USAGE;
	}
	if (!have_id)
		uuid_generate(cfg.guest_id);
	cfg.budget_ns = budget_ms * 1000000ull;
	cfg.console = console_out;
	cfg.console_ctx = &v;
	signal(SIGPIPE, SIG_IGN);

	if (console) {
		v.console_fd = open(console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (v.console_fd < 0) {
			fprintf(stderr, "pvha-vmm: --console %s: %s\n", console, strerror(errno));
			return VMM_EXIT_USAGE;
		}
	}
	if (disk_spec) {
		char why[256];
		err = vmm_disk_open(disk_spec, &dopts, &v.disk, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: --disk %s: %s\n", disk_spec, why);
			return VMM_EXIT_USAGE;
		}
		cfg.disk = v.disk;
		v.disk_spec = disk_spec;
		if (vmm_disk_client_addr(v.disk, v.storage_addr, sizeof(v.storage_addr)))
			v.storage_addr[0] = '\0';
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
	} else {
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
			hv_disk_close(v.disk);
			return VMM_EXIT_USAGE;
		}
	}

	/* Nothing of the guest runs before its owner lock is ours. */
	if (lock_cookie) {
		char why[256];
		err = vmm_disk_lock(v.disk, lock_cookie, why, sizeof(why));
		if (err) {
			fprintf(stderr, "pvha-vmm: owner lock: %s\n", why);
			hv_machine_destroy(v.m);
			hv_disk_close(v.disk);
			return err == -EBUSY ? VMM_EXIT_LOCKED : VMM_EXIT_HOST;
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
			hv_disk_close(v.disk);
			return VMM_EXIT_USAGE;
		}
	}

	run_loop(&v, save_after);

	fprintf(stderr, "pvha-vmm: %s\n", v.final);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (v.clients[i] >= 0)
			close(v.clients[i]);
	if (v.listen_fd >= 0) {
		close(v.listen_fd);
		unlink(v.control_path);
	}
	hv_machine_destroy(v.m);
	/* A guest that ended cleanly gives its lock back; a fenced one cannot. */
	if (v.exit_code != VMM_EXIT_FENCED)
		vmm_disk_unlock(v.disk);
	hv_disk_close(v.disk);
	return v.exit_code;
}
