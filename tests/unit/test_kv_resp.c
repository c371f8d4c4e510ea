/* kvstore's RESP2 parser (hv-core/guest/kvstore/kv_resp.c): whole commands,
 * pipelining, every split point, inline commands, and every bad input refused
 * with its exact protocol error before the bytes it announces arrive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kv_resp.h"

static struct kv_req req;

static enum kv_parse_result parse(const char *s, size_t n, const char **err)
{
	*err = NULL;
	return kv_resp_parse((const uint8_t *)s, n, &req, err);
}

static enum kv_parse_result parse_str(const char *s, const char **err)
{
	return parse(s, strlen(s), err);
}

static void assert_arg(unsigned i, const char *want)
{
	assert_true(i < req.argc);
	assert_int_equal(req.len[i], strlen(want));
	assert_memory_equal(req.argv[i], want, strlen(want));
}

static void a_multibulk_command_parses(void **state)
{
	(void)state;
	const char *err;
	const char *s = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n";
	assert_int_equal(parse_str(s, &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 3);
	assert_arg(0, "SET");
	assert_arg(1, "k");
	assert_arg(2, "hello");
	assert_int_equal(req.consumed, strlen(s));
}

static void bulk_strings_are_binary_safe(void **state)
{
	(void)state;
	const char *err;
	const char s[] = "*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\0x\r\n";
	assert_int_equal(parse(s, sizeof(s) - 1, &err), KV_PARSE_OK);
	assert_int_equal(req.len[1], 4);
	assert_memory_equal(req.argv[1], "\r\n\0x", 4);
	assert_int_equal(parse_str("*1\r\n$0\r\n\r\n", &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 1);
	assert_int_equal(req.len[0], 0);
}

static void pipelined_commands_parse_one_after_another(void **state)
{
	(void)state;
	const char *err;
	const char *s = "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n";
	size_t off = 0, n = strlen(s);
	assert_int_equal(parse(s, n, &err), KV_PARSE_OK);
	assert_arg(0, "PING");
	off += req.consumed;
	assert_int_equal(parse(s + off, n - off, &err), KV_PARSE_OK);
	assert_arg(0, "GET");
	assert_arg(1, "a");
	off += req.consumed;
	assert_int_equal(parse(s + off, n - off, &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 1);
	assert_arg(0, "PING");
	off += req.consumed;
	assert_int_equal(off, n);
	assert_int_equal(parse(s + off, 0, &err), KV_PARSE_MORE);
}

static void every_prefix_of_a_command_asks_for_more(void **state)
{
	(void)state;
	const char *err;
	const char *cmds[] = { "*3\r\n$3\r\nSET\r\n$10\r\n0123456789\r\n$2\r\nab\r\n",
			       "SET key value\r\n", "PING\n" };
	for (size_t c = 0; c < 3; c++) {
		size_t n = strlen(cmds[c]);
		for (size_t k = 0; k < n; k++) {
			char *copy = malloc(k + 1); /* exact size: ASan sees any overread */
			memcpy(copy, cmds[c], k);
			assert_int_equal(parse(copy, k, &err), KV_PARSE_MORE);
			free(copy);
		}
		assert_int_equal(parse(cmds[c], n, &err), KV_PARSE_OK);
		assert_int_equal(req.consumed, n);
	}
}

static void inline_commands_split_on_spaces(void **state)
{
	(void)state;
	const char *err;
	assert_int_equal(parse_str("  set  k\tv \r\n", &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 3);
	assert_arg(0, "set");
	assert_arg(1, "k");
	assert_arg(2, "v");
	assert_int_equal(req.consumed, 13);
	assert_int_equal(parse_str("ping\n", &err), KV_PARSE_OK);
	assert_arg(0, "ping");
	/* An empty line is consumed and runs nothing. */
	assert_int_equal(parse_str("\r\n", &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 0);
	assert_int_equal(req.consumed, 2);
}

static void empty_and_null_multibulk_run_nothing(void **state)
{
	(void)state;
	const char *err;
	assert_int_equal(parse_str("*0\r\n", &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 0);
	assert_int_equal(req.consumed, 4);
	assert_int_equal(parse_str("*-1\r\n", &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 0);
	assert_int_equal(req.consumed, 5);
}

static void expect_error(const char *in, size_t n, const char *want)
{
	const char *err;
	char *copy = malloc(n ? n : 1);
	memcpy(copy, in, n);
	enum kv_parse_result r = parse(copy, n, &err);
	if (r != KV_PARSE_ERROR || !err || strcmp(err, want) != 0)
		fail_msg("input \"%.*s\": got %d \"%s\", want \"%s\"", (int)(n > 60 ? 60 : n), in,
			 r, err ? err : "(none)", want);
	free(copy);
}

static void expect_error_str(const char *in, const char *want)
{
	expect_error(in, strlen(in), want);
}

static void bad_multibulk_counts_are_refused(void **state)
{
	(void)state;
	const char *bad = "Protocol error: invalid multibulk length";
	expect_error_str("*x\r\n", bad);
	expect_error_str("*\r\n", bad);
	expect_error_str("*1x\r\n", bad);
	expect_error_str("* 1\r\n", bad);
	expect_error_str("*+1\r\n", bad);
	expect_error_str("*01\r\n", bad);
	expect_error_str("*1\rX", bad);
	expect_error_str("*1025\r\n", bad);
	expect_error_str("*99999999999999999999\r\n", bad);
	expect_error_str("*9223372036854775807\r\n", bad);
	/* No CR within the count line's bound: refused before more arrives. */
	expect_error_str("*1111111111111111111111111111111111111", "Protocol error: too big mbulk count string");
}

static void bad_bulk_headers_are_refused(void **state)
{
	(void)state;
	const char *bad = "Protocol error: invalid bulk length";
	expect_error_str("*1\r\n$x\r\n", bad);
	expect_error_str("*1\r\n$-1\r\n", bad);
	expect_error_str("*1\r\n$-5\r\n", bad);
	expect_error_str("*1\r\n$\r\n", bad);
	expect_error_str("*1\r\n$1048577\r\n", bad);
	expect_error_str("*1\r\n$9223372036854775807\r\n", bad);
	expect_error_str("*1\r\n$3333333333333333333333333333333333333333",
			 "Protocol error: too big bulk count string");
	expect_error_str("*2\r\n:1\r\n", "Protocol error: expected '$', got ':'");
	expect_error_str("*2\r\n$1\r\na\r\n*1\r\n", "Protocol error: expected '$', got '*'");
	expect_error("*1\r\n\0", 5, "Protocol error: expected '$', got '\\x00'");
	expect_error_str("*1\r\n$3\r\nabcXY", "Protocol error: expected CRLF after bulk");
	expect_error_str("*1\r\n$3\r\nabcd\r\n", "Protocol error: expected CRLF after bulk");
}

/* kv_resp_parse reads count lines of one or two digits with one 4-byte load
 * and leaves the rest to the careful path: both sides of every edge parse
 * alike, and a line too short for the load asks for more. */
static void short_and_long_count_lines_parse_alike(void **state)
{
	(void)state;
	const char *err;
	char s[256], arg[128];
	/* lengths 0, 1, 9, 10, 99 (one load) and 100, 101 (careful path) */
	static const size_t lens[] = { 0, 1, 9, 10, 99, 100, 101 };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		memset(arg, 'a' + (int)i, lens[i]);
		int n = snprintf(s, sizeof(s), "*2\r\n$3\r\nGET\r\n$%zu\r\n%.*s\r\n", lens[i],
				 (int)lens[i], arg);
		assert_int_equal(parse(s, (size_t)n, &err), KV_PARSE_OK);
		assert_int_equal(req.argc, 2);
		assert_int_equal(req.len[1], lens[i]);
		assert_memory_equal(req.argv[1], arg, lens[i]);
		assert_int_equal(req.consumed, (size_t)n);
		/* every shorter prefix asks for more */
		for (int k = 1; k < n; k++)
			assert_int_equal(parse(s, (size_t)k, &err), KV_PARSE_MORE);
	}
	/* 10 and more arguments: a two-digit multibulk count */
	size_t n = (size_t)sprintf(s, "*12\r\n");
	for (int i = 0; i < 12; i++)
		n += (size_t)sprintf(s + n, "$1\r\n%c\r\n", 'a' + i);
	assert_int_equal(parse(s, n, &err), KV_PARSE_OK);
	assert_int_equal(req.argc, 12);
	assert_arg(11, "l");
	/* a leading zero is not a length, on either path */
	expect_error_str("*1\r\n$01\r\nx\r\n", "Protocol error: invalid bulk length");
	expect_error_str("*1\r\n$007\r\nabcdefg\r\n", "Protocol error: invalid bulk length");
	expect_error_str("*02\r\n", "Protocol error: invalid multibulk length");
}

static void a_huge_request_is_refused_before_its_bytes_arrive(void **state)
{
	(void)state;
	/* Four 1 MiB arguments: over KV_MAX_REQUEST (4 MiB) with their framing; the
	 * parser sees only the headers and the first arguments' lengths. */
	char *buf = malloc(KV_MAX_REQUEST + 64);
	size_t n = (size_t)sprintf(buf, "*4\r\n");
	for (int i = 0; i < 3; i++) {
		n += (size_t)sprintf(buf + n, "$%u\r\n", KV_MAX_BULK);
		memset(buf + n, 'x', KV_MAX_BULK);
		n += KV_MAX_BULK;
		memcpy(buf + n, "\r\n", 2);
		n += 2;
		const char *err;
		assert_int_equal(parse(buf, n, &err), KV_PARSE_MORE);
	}
	n += (size_t)sprintf(buf + n, "$%u\r\n", KV_MAX_BULK);
	expect_error(buf, n, "Protocol error: request too big");
	free(buf);
	/* The largest single bulk is fine. */
	buf = malloc(KV_MAX_BULK + 64);
	n = (size_t)sprintf(buf, "*1\r\n$%u\r\n", KV_MAX_BULK);
	memset(buf + n, 'y', KV_MAX_BULK);
	n += KV_MAX_BULK;
	memcpy(buf + n, "\r\n", 2);
	n += 2;
	const char *err;
	assert_int_equal(parse(buf, n, &err), KV_PARSE_OK);
	assert_int_equal(req.len[0], KV_MAX_BULK);
	free(buf);
}

static void too_long_inline_lines_are_refused(void **state)
{
	(void)state;
	char *buf = malloc(KV_MAX_INLINE + 1);
	memset(buf, 'a', KV_MAX_INLINE + 1);
	const char *err;
	assert_int_equal(parse(buf, KV_MAX_INLINE - 1, &err), KV_PARSE_MORE);
	expect_error(buf, KV_MAX_INLINE, "Protocol error: too big inline request");
	free(buf);
	/* More words than KV_MAX_ARGS. */
	size_t n = 2 * (KV_MAX_ARGS + 1);
	buf = malloc(n + 1);
	for (size_t i = 0; i < n; i += 2) {
		buf[i] = 'w';
		buf[i + 1] = ' ';
	}
	buf[n] = '\n';
	expect_error(buf, n + 1, "Protocol error: too many arguments in inline request");
	free(buf);
}

static void the_largest_argument_count_parses(void **state)
{
	(void)state;
	size_t cap = 16 + KV_MAX_ARGS * 16, n;
	char *buf = malloc(cap);
	n = (size_t)sprintf(buf, "*%u\r\n", KV_MAX_ARGS);
	for (unsigned i = 0; i < KV_MAX_ARGS; i++)
		n += (size_t)sprintf(buf + n, "$1\r\n%c\r\n", 'a' + i % 26);
	const char *err;
	assert_int_equal(parse(buf, n, &err), KV_PARSE_OK);
	assert_int_equal(req.argc, KV_MAX_ARGS);
	assert_int_equal(req.consumed, n);
	free(buf);
}

static void numbers_parse_as_redis_does(void **state)
{
	(void)state;
	int64_t v;
	struct { const char *s; int rc; int64_t v; } cases[] = {
		{ "0", 0, 0 }, { "-1", 0, -1 }, { "9223372036854775807", 0, INT64_MAX },
		{ "-9223372036854775808", 0, INT64_MIN }, { "9223372036854775808", -KV_EINVAL, 0 },
		{ "-9223372036854775809", -KV_EINVAL, 0 }, { "", -KV_EINVAL, 0 }, { "-", -KV_EINVAL, 0 },
		{ "01", -KV_EINVAL, 0 }, { "-0", -KV_EINVAL, 0 }, { "+1", -KV_EINVAL, 0 },
		{ " 1", -KV_EINVAL, 0 }, { "1 ", -KV_EINVAL, 0 }, { "1.5", -KV_EINVAL, 0 },
		{ "99999999999999999999", -KV_EINVAL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = 12345;
		int rc = kv_parse_i64((const uint8_t *)cases[i].s, strlen(cases[i].s), &v);
		if (rc != cases[i].rc || (rc == 0 && v != cases[i].v))
			fail_msg("\"%s\": rc %d v %lld", cases[i].s, rc, (long long)v);
	}
	char out[24];
	assert_int_equal(kv_fmt_i64(out, INT64_MIN), 20);
	assert_memory_equal(out, "-9223372036854775808", 20);
	assert_int_equal(kv_fmt_i64(out, 0), 1);
	assert_memory_equal(out, "0", 1);
}

static void replies_encode_as_resp2(void **state)
{
	(void)state;
	static uint8_t mem[1 << 16];
	struct kv_heap heap;
	struct kv_buf b;
	assert_int_equal(kv_heap_init(&heap, mem, sizeof(mem)), 0);
	kv_buf_init(&b, &heap, 4096);
	kv_reply_status(&b, "OK");
	kv_reply_error(&b, "ERR x");
	kv_reply_int(&b, -42);
	kv_reply_bulk(&b, "ab", 2);
	kv_reply_bulk(&b, "", 0);
	kv_reply_bulk(&b, "123456789", 9);  /* the last one-digit header */
	kv_reply_bulk(&b, "0123456789", 10); /* the first two-digit one */
	kv_reply_null(&b);
	kv_reply_array(&b, 3);
	const char *want = "+OK\r\n-ERR x\r\n:-42\r\n$2\r\nab\r\n$0\r\n\r\n$9\r\n123456789\r\n"
			   "$10\r\n0123456789\r\n$-1\r\n*3\r\n";
	assert_false(b.failed);
	assert_int_equal(kv_buf_size(&b), strlen(want));
	assert_memory_equal(kv_buf_head(&b), want, strlen(want));
	/* Over the buffer's limit: nothing appended, failure flagged. */
	size_t before = kv_buf_size(&b);
	char big[5000];
	memset(big, 'z', sizeof(big));
	kv_reply_bulk(&b, big, sizeof(big));
	assert_true(b.failed);
	assert_int_equal(kv_buf_size(&b), before);
	kv_buf_release(&b);
	assert_int_equal(heap.used, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_multibulk_command_parses),
		cmocka_unit_test(bulk_strings_are_binary_safe),
		cmocka_unit_test(pipelined_commands_parse_one_after_another),
		cmocka_unit_test(every_prefix_of_a_command_asks_for_more),
		cmocka_unit_test(inline_commands_split_on_spaces),
		cmocka_unit_test(empty_and_null_multibulk_run_nothing),
		cmocka_unit_test(bad_multibulk_counts_are_refused),
		cmocka_unit_test(bad_bulk_headers_are_refused),
		cmocka_unit_test(short_and_long_count_lines_parse_alike),
		cmocka_unit_test(a_huge_request_is_refused_before_its_bytes_arrive),
		cmocka_unit_test(too_long_inline_lines_are_refused),
		cmocka_unit_test(the_largest_argument_count_parses),
		cmocka_unit_test(numbers_parse_as_redis_does),
		cmocka_unit_test(replies_encode_as_resp2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
