/* pvhad's metrics (node/pvhad/metrics.c): the Prometheus and JSON renderers
 * on a made-up snapshot, label and JSON escaping, the duration tracker fed
 * with the agent's own event texts, and /proc parsing. With PROMTOOL set
 * (ctest does when promtool is installed), the rendered text is also
 * checked by `promtool check metrics`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "pvcluster/ha.h"

static const uint8_t U1[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };
static const uint8_t U2[16] = { 2 };

/* Three nodes, n2 leads; g1 runs on n2 (its VMM here), g2 is stopped. */
static struct pvclus_snapshot *snap_make(void)
{
	struct pvclus_snapshot *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->local = 2;
	s->leader = 2;
	s->quorate = true;
	s->leads = true;
	s->have_state = true;
	s->storage_ok = true;
	const char *names[] = { "n1", "n2", "n3" };
	for (int i = 0; i < 3; i++) {
		struct pvclus_snapshot_node *n = &s->nodes[s->n_nodes++];
		n->id = (uint32_t)i + 1;
		snprintf(n->name, sizeof(n->name), "%s", names[i]);
		snprintf(n->addr, sizeof(n->addr), "10.0.0.%d", i + 1);
		n->member = n->in_ring = n->online = n->storage_ok = i != 2;
		n->fenced = i == 2;
		n->mode = i == 0 ? "draining" : "active";
	}
	s->nodes[1].guests = 1;
	struct pvclus_snapshot_guest *g = &s->guests[s->n_guests++];
	memcpy(g->uuid, U1, 16);
	snprintf(g->name, sizeof(g->name), "g1");
	g->state = PVCLUS_HA_RUNNING;
	g->want_running = true;
	g->owner = 2;
	g->restarts = 2;
	g->mem_size = 64 << 20;
	g->pid = 1234;
	g->heartbeat_timeout_s = 10;
	g->heartbeat_resets = 1;
	g = &s->guests[s->n_guests++];
	memcpy(g->uuid, U2, 16);
	snprintf(g->name, sizeof(g->name), "g2");
	g->state = PVCLUS_HA_STOPPED;
	return s;
}

static char *render(const struct metrics_view *v, bool json)
{
	struct mbuf b = { 0 };
	if (json)
		metrics_render_json(v, &b);
	else
		metrics_render_prom(v, &b);
	assert_int_equal(b.err, 0);
	assert_non_null(b.p);
	return b.p;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing: %s\n--- in ---\n%s", line, text);
}

/* promtool check metrics, when PROMTOOL names it: exit 0 and no output (lint clean). */
static void promtool_clean(const char *text)
{
	const char *promtool = getenv("PROMTOOL");
	if (!promtool || !*promtool)
		return;
	char path[] = "/tmp/pvha-metrics-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char cmd[512], out[4096] = "";
	snprintf(cmd, sizeof(cmd), "%s check metrics < %s 2>&1", promtool, path);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = '\0';
	int rc = pclose(p);
	unlink(path);
	if (rc != 0 || n != 0)
		fail_msg("promtool check metrics (rc %d):\n%s", rc, out);
}

/* t has the line METRIC{guest="g1",uuid="..."REST (g1 of snap_make). */
static void assert_g1(const char *t, const char *metric, const char *rest)
{
	char line[256];
	snprintf(line, sizeof(line), "%s{guest=\"g1\",uuid=\"11223344-5566-7788-99aa-bbccddeeff01\"%s\n", metric, rest);
	assert_has(t, line);
}

static void the_text_has_nodes_guests_and_histograms(void **state)
{
	(void)state;
	struct pvclus_snapshot *s = snap_make();
	struct metrics_vmm proc[2] = { { .valid = true, .cpu_seconds = 1.5, .rss_bytes = 4096, .vm_bytes = 8192,
					 .has_heartbeat = true, .heartbeat_seq = 9, .heartbeat_age_s = 2.5,
					 .has_disk = true, .disk_reads = 3, .disk_writes = 40, .disk_flushes = 5,
					 .disk_read_bytes = 12288, .disk_write_bytes = 163840, .disk_read_s = 0.001,
					 .disk_write_s = 0.25, .disk_flush_s = 1.5 } };
	struct metrics_histogram h[METRICS_DURATIONS] = { 0 };
	metrics_histogram_observe(&h[METRICS_FAILOVER], 3.2);
	metrics_histogram_observe(&h[METRICS_FAILOVER], 0.2);
	struct metrics_view v = { .snap = s, .vmm = proc, .h = h, .events_total = 7 };
	char *t = render(&v, false);
	assert_has(t, "pvha_agent_up{node=\"n2\"} 1\n");
	assert_has(t, "pvha_agent_quorate 1\n");
	assert_has(t, "pvha_agent_leader 1\n");
	assert_has(t, "pvha_agent_events_total 7\n");
	assert_has(t, "pvha_node_member{node=\"n3\"} 0\n");
	assert_has(t, "pvha_node_online{node=\"n1\"} 1\n");
	assert_has(t, "pvha_node_fenced{node=\"n3\"} 1\n");
	assert_has(t, "pvha_node_storage_reachable{node=\"n3\"} 0\n");
	assert_has(t, "pvha_node_leader{node=\"n2\"} 1\n");
	assert_has(t, "pvha_node_leader{node=\"n1\"} 0\n");
	assert_has(t, "pvha_node_mode{node=\"n1\",mode=\"draining\"} 1\n");
	assert_has(t, "pvha_node_mode{node=\"n1\",mode=\"active\"} 0\n");
	assert_has(t, "pvha_node_guests{node=\"n2\"} 1\n");
	assert_g1(t, "pvha_guest_state", ",state=\"running\"} 1");
	assert_g1(t, "pvha_guest_state", ",state=\"stopped\"} 0");
	assert_g1(t, "pvha_guest_owner", ",node=\"n2\"} 1");
	assert_g1(t, "pvha_guest_restarts", "} 2");
	assert_g1(t, "pvha_guest_vmm_cpu_seconds_total", "} 1.50");
	assert_g1(t, "pvha_guest_vmm_resident_memory_bytes", "} 4096");
	assert_g1(t, "pvha_guest_heartbeat_age_seconds", "} 2.500");
	assert_g1(t, "pvha_guest_disk_writes_total", "} 40");
	assert_g1(t, "pvha_guest_disk_written_bytes_total", "} 163840");
	assert_g1(t, "pvha_guest_disk_flush_seconds_total", "} 1.500000");
	assert_g1(t, "pvha_guest_disk_read_seconds_total", "} 0.001000");
	assert_null(strstr(t, "pvha_guest_disk_reads_total{guest=\"g2\""));
	/* a stopped guest has no owner and no VMM figures */
	assert_null(strstr(t, "pvha_guest_heartbeat_age_seconds{guest=\"g2\""));
	assert_g1(t, "pvha_guest_heartbeat_timeout_seconds", "} 10");
	assert_g1(t, "pvha_guest_heartbeat_resets", "} 1");
	assert_null(strstr(t, "pvha_guest_heartbeat_resets{guest=\"g2\"")); /* not monitored */
	assert_null(strstr(t, "pvha_guest_owner{guest=\"g2\""));
	assert_null(strstr(t, "pvha_guest_vmm_cpu_seconds_total{guest=\"g2\""));
	/* cumulative buckets */
	assert_has(t, "pvha_failover_duration_seconds_bucket{le=\"0.5\"} 1\n");
	assert_has(t, "pvha_failover_duration_seconds_bucket{le=\"2\"} 1\n");
	assert_has(t, "pvha_failover_duration_seconds_bucket{le=\"5\"} 2\n");
	assert_has(t, "pvha_failover_duration_seconds_bucket{le=\"+Inf\"} 2\n");
	assert_has(t, "pvha_failover_duration_seconds_count 2\n");
	assert_has(t, "pvha_failover_duration_seconds_sum 3.400\n");
	assert_has(t, "pvha_fence_duration_seconds_count 0\n");
	assert_has(t, "# TYPE pvha_migration_duration_seconds histogram\n");
	promtool_clean(t);
	free(t);
	free(s);
}

static void label_values_are_escaped(void **state)
{
	(void)state;
	struct mbuf b = { 0 };
	mbuf_prom_label(&b, "a\"b\\c\nd");
	assert_int_equal(b.err, 0);
	assert_string_equal(b.p, "a\\\"b\\\\c\\nd");
	mbuf_free(&b);

	/* a node name with all three in a whole rendering: still valid text */
	struct pvclus_snapshot *s = snap_make();
	snprintf(s->nodes[0].name, sizeof(s->nodes[0].name), "we\"ird\\no\nde");
	s->guests[0].owner = 1;
	struct metrics_histogram h[METRICS_DURATIONS] = { 0 };
	struct metrics_view v = { .snap = s, .h = h };
	char *t = render(&v, false);
	assert_has(t, "pvha_node_member{node=\"we\\\"ird\\\\no\\nde\"} 1\n");
	assert_has(t, ",node=\"we\\\"ird\\\\no\\nde\"} 1\n"); /* pvha_guest_owner */
	promtool_clean(t);
	free(t);
	free(s);
}

static void json_strings_are_escaped(void **state)
{
	(void)state;
	struct mbuf b = { 0 };
	mbuf_json_str(&b, "q\"b\\s\x01\n\xc3\xa9");
	assert_int_equal(b.err, 0);
	assert_string_equal(b.p, "\"q\\\"b\\\\s\\u0001\\u000a\xc3\xa9\"");
	mbuf_free(&b);
}

static void json_has_nodes_guests_and_named_events(void **state)
{
	(void)state;
	struct pvclus_snapshot *s = snap_make();
	struct metrics_tracker *tr = calloc(1, sizeof(*tr));
	assert_non_null(tr);
	metrics_tracker_event(tr, 1000, 1700000000, U1, "running", "started -> running on n2");
	metrics_tracker_event(tr, 1100, 1700000001, NULL, "node-left", "node n3 left the \"membership\"");
	struct metrics_event ev[METRICS_EVENTS];
	size_t n = metrics_tracker_events(tr, ev);
	assert_int_equal(n, 2);
	struct metrics_histogram h[METRICS_DURATIONS] = { 0 };
	struct metrics_view v = { .snap = s, .h = h, .events = ev, .n_events = n, .now = 1700000002 };
	char *t = render(&v, true);
	assert_has(t, "{\"node\":\"n2\",\"leader\":\"n2\",\"quorate\":true,");
	assert_has(t, "{\"name\":\"n3\",\"id\":3,\"address\":\"10.0.0.3\",\"member\":false,\"online\":false,"
		      "\"fenced\":true,");
	assert_has(t, "{\"name\":\"g1\",\"uuid\":\"11223344-5566-7788-99aa-bbccddeeff01\",\"state\":\"running\","
		      "\"want_running\":true,\"owner\":\"n2\",\"target\":\"\",");
	assert_has(t, "{\"at\":1700000000,\"guest\":\"g1\",\"what\":\"running\",\"why\":\"started -> running on n2\"}");
	assert_has(t, "{\"at\":1700000001,\"guest\":\"\",\"what\":\"node-left\",\"why\":\"node n3 left the \\\"membership\\\"\"}");
	free(t);
	free(tr);
	free(s);
}

static char *why_step(char *buf, size_t len, enum pvclus_ha_reason r, const char *state, const char *node)
{
	snprintf(buf, len, "%s -> %s%s%s", pvclus_ha_reason_str(r), state, node ? " on " : "", node ? node : "");
	return buf;
}

static void a_failover_is_timed_from_fence_wait_to_running(void **state)
{
	(void)state;
	struct metrics_tracker *t = calloc(1, sizeof(*t));
	char w[256];
	assert_non_null(t);
	metrics_tracker_event(t, 1000, 0, U1, "running", why_step(w, sizeof(w), PVCLUS_HA_R_STARTED, "running", "n1"));
	metrics_tracker_event(t, 5000, 0, NULL, "node-left", "node n1 left the membership (2 members)");
	metrics_tracker_event(t, 5010, 0, U1, "fence-wait",
			      why_step(w, sizeof(w), PVCLUS_HA_R_NODE_LEFT, "fence-wait", NULL));
	metrics_tracker_event(t, 6000, 0, NULL, "fenced", "node n1: blocklisted 10.0.0.1 at the storage");
	metrics_tracker_event(t, 6010, 0, U1, "recovering",
			      why_step(w, sizeof(w), PVCLUS_HA_R_FENCE_CONFIRMED, "recovering", NULL));
	metrics_tracker_event(t, 6020, 0, U1, "recovering",
			      why_step(w, sizeof(w), PVCLUS_HA_R_PLACED, "recovering", "n2"));
	/* nothing observed before it runs again */
	assert_int_equal(t->h[METRICS_FAILOVER].count, 0);
	assert_int_equal(t->h[METRICS_RECOVERY].count, 0);
	assert_int_equal(t->h[METRICS_FENCE].count, 1);
	assert_true(t->h[METRICS_FENCE].sum > 0.999 && t->h[METRICS_FENCE].sum < 1.001);
	metrics_tracker_event(t, 8010, 0, U1, "running", why_step(w, sizeof(w), PVCLUS_HA_R_STARTED, "running", "n2"));
	assert_int_equal(t->h[METRICS_FAILOVER].count, 1);
	assert_true(t->h[METRICS_FAILOVER].sum > 2.999 && t->h[METRICS_FAILOVER].sum < 3.001);
	assert_int_equal(t->h[METRICS_RECOVERY].count, 1);
	assert_true(t->h[METRICS_RECOVERY].sum > 1.999 && t->h[METRICS_RECOVERY].sum < 2.001);
	/* a stable run later observes nothing more */
	metrics_tracker_event(t, 90000, 0, U1, "running",
			      why_step(w, sizeof(w), PVCLUS_HA_R_RUN_STABLE, "running", "n2"));
	assert_int_equal(t->h[METRICS_FAILOVER].count, 1);
	assert_int_equal(t->h[METRICS_MIGRATION].count, 0);
	assert_int_equal(t->events_total, 8);
	free(t);
}

static void a_power_fence_ends_at_power_fenced(void **state)
{
	(void)state;
	struct metrics_tracker *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	t->fence_power = true;
	metrics_tracker_event(t, 1000, 0, NULL, "node-left", "node n3 left the membership (2 members)");
	metrics_tracker_event(t, 1500, 0, NULL, "fenced", "node n3: blocklisted 10.0.0.3 at the storage");
	assert_int_equal(t->h[METRICS_FENCE].count, 0);
	metrics_tracker_event(t, 4000, 0, NULL, "power-fenced", "node n3: powered off by fence_dummy in 2400 ms");
	assert_int_equal(t->h[METRICS_FENCE].count, 1);
	assert_true(t->h[METRICS_FENCE].sum > 2.999 && t->h[METRICS_FENCE].sum < 3.001);
	/* a node that left and came back before any fence: nothing timed */
	metrics_tracker_event(t, 5000, 0, NULL, "node-left", "node n1 left the membership (2 members)");
	metrics_tracker_event(t, 5500, 0, NULL, "node-joined", "node n1 joined the membership (3 members)");
	metrics_tracker_event(t, 9000, 0, NULL, "power-fenced", "node n1: powered off by fence_dummy in 10 ms");
	assert_int_equal(t->h[METRICS_FENCE].count, 1);
	/* texts that name no node are ignored */
	metrics_tracker_event(t, 9500, 0, NULL, "node-left", "nodes everywhere");
	metrics_tracker_event(t, 9600, 0, NULL, "power-fenced", "");
	assert_int_equal(t->h[METRICS_FENCE].count, 1);
	free(t);
}

static void a_migration_is_timed_only_when_it_lands(void **state)
{
	(void)state;
	struct metrics_tracker *t = calloc(1, sizeof(*t));
	char w[256];
	assert_non_null(t);
	metrics_tracker_event(t, 1000, 0, U2, "migrating",
			      why_step(w, sizeof(w), PVCLUS_HA_R_MIGRATE_STARTED, "migrating", "n1"));
	metrics_tracker_event(t, 1700, 0, U2, "running",
			      why_step(w, sizeof(w), PVCLUS_HA_R_MIGRATE_FAILED, "running", "n1"));
	assert_int_equal(t->h[METRICS_MIGRATION].count, 0);
	metrics_tracker_event(t, 2000, 0, U2, "migrating",
			      why_step(w, sizeof(w), PVCLUS_HA_R_MIGRATE_STARTED, "migrating", "n1"));
	metrics_tracker_event(t, 2250, 0, U2, "running",
			      why_step(w, sizeof(w), PVCLUS_HA_R_MIGRATED, "running", "n2"));
	assert_int_equal(t->h[METRICS_MIGRATION].count, 1);
	assert_true(t->h[METRICS_MIGRATION].sum > 0.249 && t->h[METRICS_MIGRATION].sum < 0.251);
	assert_int_equal(t->h[METRICS_MIGRATION].bucket[0], 1); /* <= 0.5 s */
	assert_int_equal(t->h[METRICS_FAILOVER].count, 0);
	free(t);
}

static void stopped_guests_free_their_slot(void **state)
{
	(void)state;
	struct metrics_tracker *t = calloc(1, sizeof(*t));
	char w[256];
	uint8_t u[16] = { 0 };
	assert_non_null(t);
	/* more guests than slots over time, each run then stopped */
	for (unsigned i = 0; i < 2 * PVCLUS_SNAPSHOT_GUESTS_MAX; i++) {
		memcpy(u, &i, sizeof(i));
		metrics_tracker_event(t, 1, 0, u, "running", why_step(w, sizeof(w), PVCLUS_HA_R_STARTED, "running", "n1"));
		metrics_tracker_event(t, 2, 0, u, "stopped", why_step(w, sizeof(w), PVCLUS_HA_R_STOPPED, "stopped", NULL));
	}
	/* the last one's failover is still timed */
	metrics_tracker_event(t, 10, 0, u, "running", why_step(w, sizeof(w), PVCLUS_HA_R_STARTED, "running", "n1"));
	metrics_tracker_event(t, 20, 0, u, "fence-wait", why_step(w, sizeof(w), PVCLUS_HA_R_NODE_LEFT, "fence-wait", NULL));
	metrics_tracker_event(t, 1020, 0, u, "running", why_step(w, sizeof(w), PVCLUS_HA_R_STARTED, "running", "n2"));
	assert_int_equal(t->h[METRICS_FAILOVER].count, 1);
	size_t used = 0;
	for (size_t i = 0; i < PVCLUS_SNAPSHOT_GUESTS_MAX; i++)
		used += t->guests[i].used;
	assert_int_equal(used, 1);
	free(t);
}

static void the_event_ring_keeps_the_newest(void **state)
{
	(void)state;
	struct metrics_tracker *t = calloc(1, sizeof(*t));
	assert_non_null(t);
	char why[32];
	for (int i = 0; i < METRICS_EVENTS + 5; i++) {
		snprintf(why, sizeof(why), "e%d", i);
		metrics_tracker_event(t, (uint64_t)i, i, NULL, "rebalance", why);
	}
	struct metrics_event ev[METRICS_EVENTS];
	assert_int_equal(metrics_tracker_events(t, ev), METRICS_EVENTS);
	assert_string_equal(ev[0].why, "e5");
	snprintf(why, sizeof(why), "e%d", METRICS_EVENTS + 4);
	assert_string_equal(ev[METRICS_EVENTS - 1].why, why);
	free(t);
}

static void proc_files_are_parsed(void **state)
{
	(void)state;
	struct metrics_vmm p;
	const char *stat = "4242 (pvha-vmm (g) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
	const char *status = "Name:\tpvha-vmm\nVmPeak:\t  9000 kB\nVmSize:\t  8000 kB\nVmRSS:\t  1234 kB\n";
	assert_int_equal(metrics_vmm_parse(stat, status, 100, &p), 0);
	assert_true(p.valid);
	assert_true(p.cpu_seconds > 2.999 && p.cpu_seconds < 3.001);
	assert_int_equal(p.rss_bytes, 1234 * 1024);
	assert_int_equal(p.vm_bytes, 8000 * 1024);
	assert_int_equal(metrics_vmm_parse("4242 pvha-vmm S 1", status, 100, &p), -EINVAL);
	assert_false(p.valid);
	assert_int_equal(metrics_vmm_parse("4242 (x) S 1 2", status, 100, &p), -EINVAL);
	assert_int_equal(metrics_vmm_parse(stat, status, 0, &p), -EINVAL);
	/* this process: it runs, so it has used some memory */
	assert_int_equal(metrics_vmm_proc(getpid(), &p), 0);
	assert_true(p.rss_bytes > 0);
	assert_int_equal(metrics_vmm_proc(0, &p), -ESRCH);
	assert_int_equal(metrics_vmm_proc(-5, &p), -ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(the_text_has_nodes_guests_and_histograms),
		cmocka_unit_test(label_values_are_escaped),
		cmocka_unit_test(json_strings_are_escaped),
		cmocka_unit_test(json_has_nodes_guests_and_named_events),
		cmocka_unit_test(a_failover_is_timed_from_fence_wait_to_running),
		cmocka_unit_test(a_power_fence_ends_at_power_fenced),
		cmocka_unit_test(a_migration_is_timed_only_when_it_lands),
		cmocka_unit_test(stopped_guests_free_their_slot),
		cmocka_unit_test(the_event_ring_keeps_the_newest),
		cmocka_unit_test(proc_files_are_parsed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
