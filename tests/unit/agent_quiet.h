/*
 * A quiet agent for unit tests that drive a real libpvagent object through
 * its public inputs (test_agent_rules, test_agent_snapshot): ops that do
 * nothing (nothing is sent, no timer or deferred call ever runs, no event is
 * written, every storage job fails with -ENOTCONN) and a clock stopped at
 * 1000 ms. Each test brings its own log op. Static functions: include it in
 * one test file, after internal.h.
 */
#ifndef PVHA_TEST_AGENT_QUIET_H
#define PVHA_TEST_AGENT_QUIET_H

static int quiet_send(void *c, const void *buf, size_t len)
{
	(void)c, (void)buf, (void)len;
	return 0;
}

static uint64_t quiet_now(void *c)
{
	(void)c;
	return 1000;
}

static int quiet_timer_add(void *c, uint64_t ms, void (*fn)(void *), void *arg, uint64_t *id)
{
	(void)c, (void)ms, (void)fn, (void)arg;
	*id = 1;
	return 0;
}

static void quiet_timer_del(void *c, uint64_t id)
{
	(void)c, (void)id;
}

static int quiet_defer(void *c, void (*fn)(void *), void *arg)
{
	(void)c, (void)fn, (void)arg;
	return 0;
}

static void quiet_event(void *c, const uint8_t *g, const char *what, const char *why)
{
	(void)c, (void)g, (void)what, (void)why;
}

static int quiet_submit(void *c, struct pvclus_job *j)
{
	(void)c, (void)j;
	return -ENOTCONN;
}

/* The ops table, with log_op for the log. */
#define AGENT_QUIET_OPS(log_op)                                                                        \
	{                                                                                              \
		.send = quiet_send, .now_ms = quiet_now, .timer_add = quiet_timer_add,                 \
		.timer_del = quiet_timer_del, .defer = quiet_defer, .log = (log_op), .event = quiet_event, \
		.storage_submit = quiet_submit,                                                        \
	}

#endif
