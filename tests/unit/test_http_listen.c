/* pvhad.conf's http_listen (node/pvhad/agent_config.c): "off" or an IPv4
 * address and port; the default is loopback; every bad value is -EINVAL and
 * a load names the key. */
#include <arpa/inet.h>
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

#include "agent_config.h"

static void good_values_parse(void **state)
{
	(void)state;
	bool on = true;
	struct sockaddr_in a;
	assert_int_equal(agent_config_listen("off", &on, &a), 0);
	assert_false(on);
	assert_int_equal(agent_config_listen("10.99.0.11:9639", &on, &a), 0);
	assert_true(on);
	assert_int_equal(a.sin_family, AF_INET);
	assert_int_equal(ntohs(a.sin_port), 9639);
	assert_int_equal(ntohl(a.sin_addr.s_addr), 0x0a63000b);
	assert_int_equal(agent_config_listen("0.0.0.0:1", &on, &a), 0);
	assert_int_equal(ntohs(a.sin_port), 1);
	assert_int_equal(agent_config_listen("127.0.0.1:65535", &on, &a), 0);
}

static void bad_values_are_einval(void **state)
{
	(void)state;
	const char *bad[] = { "", "on", "OFF", "127.0.0.1", "127.0.0.1:", ":9639", "127.0.0.1:0", "127.0.0.1:65536",
			      "127.0.0.1:96x", "127.0.0.1:-1", "127.0.0.1: 80", "localhost:9639", "::1:9639",
			      "[::1]:9639", "1.2.3:80", "1.2.3.4.5:80", "127.0.0.1:99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool on = true;
		struct sockaddr_in a;
		if (agent_config_listen(bad[i], &on, &a) != -EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_false(on);
	}
}

static int load(const char *extra, struct agent_config *cfg, char *why, size_t whylen)
{
	char path[] = "/tmp/pvha-conf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "node_name = n1\naddress = 10.0.0.1\nceph_conf = /etc/ceph/ceph.conf\n%s", extra);
	fclose(f);
	int err = agent_config_load(path, cfg, why, whylen);
	unlink(path);
	return err;
}

static void the_default_is_loopback_and_a_bad_value_names_the_key(void **state)
{
	(void)state;
	struct agent_config *cfg = calloc(1, sizeof(*cfg));
	char why[300] = "";
	assert_non_null(cfg);
	assert_int_equal(load("", cfg, why, sizeof(why)), 0);
	assert_true(cfg->http_on);
	assert_string_equal(cfg->http_listen, "127.0.0.1:9639");
	assert_int_equal(ntohl(cfg->http_addr.sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(cfg->http_addr.sin_port), 9639);
	assert_int_equal(load("http_listen = off\n", cfg, why, sizeof(why)), 0);
	assert_false(cfg->http_on);
	assert_int_equal(load("http_listen = 10.0.0.1\n", cfg, why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "http_listen"));
	assert_non_null(strstr(why, "'10.0.0.1'"));
	free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(good_values_parse),
		cmocka_unit_test(bad_values_are_einval),
		cmocka_unit_test(the_default_is_loopback_and_a_bad_value_names_the_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
