/*
 * kvstore's parser and engine fed random and mutated input through kv_conn
 * (the code the guest runs per client), with fixed seeds and a fixed number
 * of cases (and a time cap), under the ASan/UBSan build as well. Invariants:
 * every input byte is either consumed by a command, dropped after a protocol
 * error, or still waiting for the rest of a command; the replies are
 * well-formed RESP2, one per command run (plus one for a protocol error, and
 * nothing after it); feeding the same bytes in random pieces gives the same
 * replies as feeding them at once; the heap returns to where it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kv_conn.h"
#include "kv_test_disk.h"

#define HEAP_SIZE (64u << 20)
#define CASES 4000
#define TIME_CAP_S 60.0
#define MS 1000000ull

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic for a seed */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static const char *const corpus[] = {
	"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
	"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
	"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nPX\r\n$3\r\n100\r\n",
	"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n",
	"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n",
	"*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$20\r\n-9223372036854775808\r\n",
	"*2\r\n$4\r\nDECR\r\n$1\r\nn\r\n",
	"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
	"*4\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nz\r\n",
	"*3\r\n$6\r\nAPPEND\r\n$1\r\na\r\n$3\r\nxyz\r\n",
	"*2\r\n$6\r\nSTRLEN\r\n$1\r\na\r\n",
	"*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n",
	"*3\r\n$6\r\nEXISTS\r\n$1\r\na\r\n$1\r\nk\r\n",
	"*1\r\n$6\r\nDBSIZE\r\n",
	"*1\r\n$4\r\nPING\r\n",
	"*2\r\n$4\r\nECHO\r\n$4\r\nabcd\r\n",
	"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n",
	"*2\r\n$7\r\nCOMMAND\r\n$5\r\nCOUNT\r\n",
	"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$4\r\nsave\r\n",
	"*1\r\n$8\r\nFLUSHALL\r\n",
	"PING\r\n",
	"set inline value\r\n",
	"get inline\n",
	"*0\r\n",
	"*-1\r\n",
	"\r\n",
};

/* Appends as much of s as fits to buf[*n..cap). */
static void put_str(uint8_t *buf, size_t *n, size_t cap, const char *s)
{
	size_t l = strlen(s);
	if (l > cap - *n)
		l = cap - *n;
	memcpy(buf + *n, s, l);
	*n += l;
}

/* Appends a random piece of input to buf (cap bytes), returns its length. */
static size_t make_input(uint8_t *buf, size_t cap)
{
	size_t n = 0;
	unsigned pieces = 1 + (unsigned)rnd_below(12);
	for (unsigned p = 0; p < pieces && n < cap; p++) {
		unsigned kind = (unsigned)rnd_below(10);
		if (kind < 6) { /* a corpus command */
			put_str(buf, &n, cap, corpus[rnd_below(sizeof(corpus) / sizeof(corpus[0]))]);
		} else if (kind < 8) { /* random bytes, often protocol characters */
			size_t l = rnd_below(64);
			static const char alphabet[] = "*$\r\n-+:0123456789 aAsSeEtT";
			for (size_t i = 0; i < l && n < cap; i++)
				buf[n++] = rnd() % 3 ? (uint8_t)alphabet[rnd_below(sizeof(alphabet) - 1)]
						     : (uint8_t)rnd();
		} else if (kind < 9) { /* a header with a huge or odd number */
			static const char *const heads[] = {
				"*1048576\r\n", "$1048577\r\n", "*2\r\n$9223372036854775807\r\n",
				"*1\r\n$-7\r\n", "*99999999999999999999999\r\n", "$", "*1\r\n$4\r\nPI",
				"*1025\r\n", "*1024\r\n",
			};
			put_str(buf, &n, cap, heads[rnd_below(sizeof(heads) / sizeof(heads[0]))]);
		} else { /* a long run of one byte (inline and count limits) */
			size_t l = rnd_below(2) ? rnd_below(70000) : rnd_below(40);
			uint8_t b = rnd() % 2 ? 'a' : (uint8_t)rnd();
			for (size_t i = 0; i < l && n < cap; i++)
				buf[n++] = b;
		}
	}
	/* Mutations: flip, insert, delete, truncate. */
	unsigned muts = (unsigned)rnd_below(4);
	for (unsigned m = 0; m < muts && n; m++) {
		size_t at = rnd_below(n);
		switch (rnd_below(4)) {
		case 0:
			buf[at] ^= (uint8_t)(1u << rnd_below(8));
			break;
		case 1:
			if (n < cap) {
				memmove(buf + at + 1, buf + at, n - at);
				buf[at] = (uint8_t)rnd();
				n++;
			}
			break;
		case 2:
			memmove(buf + at, buf + at + 1, n - at - 1);
			n--;
			break;
		default:
			n = at;
			break;
		}
	}
	return n;
}

/* Checks that out[0..n) is a sequence of whole RESP2 replies; returns how
 * many top-level replies it holds, or -1 when malformed. */
static long count_replies(const uint8_t *p, size_t n)
{
	long count = 0;
	size_t pos = 0;
	long pending[64];
	int depth = 0;

	while (pos < n) {
		uint8_t t = p[pos];
		const uint8_t *crlf = NULL;
		for (size_t i = pos + 1; i + 1 < n; i++) {
			if (p[i] == '\r' && p[i + 1] == '\n') {
				crlf = p + i;
				break;
			}
			if (p[i] == '\r' || p[i] == '\n')
				return -1; /* a bare CR or LF inside a line */
		}
		if (!crlf)
			return -1;
		size_t line_end = (size_t)(crlf - p);
		int64_t v = 0;
		bool is_item = true;
		switch (t) {
		case '+':
		case '-':
			break;
		case ':':
			if (kv_parse_i64(p + pos + 1, line_end - pos - 1, &v) < 0)
				return -1;
			break;
		case '$':
			if (kv_parse_i64(p + pos + 1, line_end - pos - 1, &v) < 0 || v < -1)
				return -1;
			if (v >= 0) {
				size_t end = line_end + 2 + (size_t)v;
				if (end + 2 > n || p[end] != '\r' || p[end + 1] != '\n')
					return -1;
				line_end = end;
			}
			break;
		case '*':
			if (kv_parse_i64(p + pos + 1, line_end - pos - 1, &v) < 0 || v < -1)
				return -1;
			if (v > 0) {
				if (depth == 64)
					return -1;
				pending[depth++] = v;
				is_item = false;
			}
			break;
		default:
			return -1;
		}
		pos = line_end + 2;
		if (!is_item)
			continue;
		/* One item done: close the arrays it completes. */
		while (depth && --pending[depth - 1] == 0)
			depth--;
		if (depth == 0)
			count++;
	}
	return depth == 0 ? count : -1;
}

struct run_result {
	uint8_t *out;
	size_t out_len;
	uint64_t commands;
	bool closed;
	size_t left; /* input bytes still waiting */
};

/* Feeds input to a fresh engine and connection, in pieces when chunked. */
static void feed(struct kv_heap *heap, struct kv_req *req, const uint8_t *input, size_t n,
		 bool chunked, struct run_result *res)
{
	struct kv_engine e;
	struct kv_conn c;
	size_t base = heap->used;

	assert_int_equal(kv_engine_init(&e, heap, NULL, 99, 16u << 20), 0);
	e.now_mono = 1000 * MS;
	e.now_wall = 1700000000000000000ull;
	kv_conn_init(&c, heap, KV_MAX_REQUEST + 65536);
	memset(res, 0, sizeof(*res));
	size_t off = 0;
	while (off < n && !c.closing) {
		size_t piece = chunked ? 1 + rnd_below(rnd() % 2 ? 16 : 4096) : n - off;
		if (piece > n - off)
			piece = n - off;
		assert_int_equal(kv_buf_reserve(&c.in, piece), 0);
		memcpy(kv_buf_tail(&c.in), input + off, piece);
		kv_buf_commit(&c.in, piece);
		off += piece;
		uint64_t before = e.stats.commands;
		assert_true(kv_conn_run(&c, &e, req, SIZE_MAX));
		/* Nothing left that could run (no backpressure here). */
		assert_false(kv_conn_runnable(&c, SIZE_MAX) &&
			     kv_resp_parse(kv_buf_head(&c.in), kv_buf_size(&c.in), req,
					   &(const char *){ NULL }) != KV_PARSE_MORE);
		e.now_mono += 1 * MS; /* time passes between reads: expiries happen */
		(void)before;
	}
	res->out_len = kv_buf_size(&c.out);
	res->out = malloc(res->out_len + 1);
	if (res->out_len)
		memcpy(res->out, kv_buf_head(&c.out), res->out_len);
	res->commands = e.stats.commands;
	res->closed = c.closing;
	res->left = kv_buf_size(&c.in);
	kv_conn_release(&c);
	kv_db_flush(&e.db);
	kv_heap_free(heap, e.db.table);
	assert_int_equal(heap->used, base);
}

static void random_and_mutated_input_never_breaks_the_server(void **state)
{
	(void)state;
	uint8_t *mem = malloc(HEAP_SIZE);
	struct kv_heap heap;
	struct kv_req *req = malloc(sizeof(*req));
	size_t cap = 256 * 1024;
	uint8_t *buf = malloc(cap);
	assert_int_equal(kv_heap_init(&heap, mem, HEAP_SIZE), 0);
	double start = (double)clock() / CLOCKS_PER_SEC;
	unsigned cases = 0, closed = 0, ran = 0, compared = 0;

	for (unsigned i = 0; i < CASES; i++) {
		rng_state = 0x9e3779b97f4a7c15ull * (i + 1);
		size_t n = make_input(buf, cap);
		uint8_t *input = malloc(n ? n : 1); /* exact size: ASan sees any overread */
		memcpy(input, buf, n);
		struct run_result whole, pieces;
		feed(&heap, req, input, n, false, &whole);
		long replies = count_replies(whole.out, whole.out_len);
		if (replies < 0)
			fail_msg("case %u: malformed replies: %.*s", i, (int)whole.out_len, whole.out);
		/* One reply per command, plus the protocol error's (a close for
		 * any other reason is QUIT's, which answered as a command). */
		static const char perr[] = "-ERR Protocol error: ";
		const uint8_t *last = whole.out_len ? whole.out + whole.out_len - 2 : NULL;
		while (last && last > whole.out && !(last[-1] == '\n'))
			last--;
		bool proto_err = whole.closed && last &&
				 (size_t)(whole.out + whole.out_len - last) > sizeof(perr) - 1 &&
				 memcmp(last, perr, sizeof(perr) - 1) == 0;
		assert_int_equal((uint64_t)replies, whole.commands + (proto_err ? 1 : 0));
		if (whole.closed)
			assert_int_equal(whole.left, 0);
		feed(&heap, req, input, n, true, &pieces);
		/* INFO reports memory, which depends on how the bytes came. */
		if (!memmem(whole.out, whole.out_len, "redis_version", 13)) {
			if (pieces.out_len != whole.out_len ||
			    memcmp(pieces.out, whole.out, whole.out_len) != 0)
				fail_msg("case %u: replies differ when the input comes in pieces", i);
			compared++;
		}
		closed += whole.closed;
		ran += whole.commands > 0;
		free(whole.out);
		free(pieces.out);
		free(input);
		cases++;
		if ((double)clock() / CLOCKS_PER_SEC - start > TIME_CAP_S)
			break;
	}
	printf("fuzz: %u cases, %u ran commands, %u ended in a protocol error, %u compared\n",
	       cases, ran, closed, compared);
	/* The generator reaches both outcomes a lot. */
	assert_true(ran > cases / 4);
	assert_true(closed > cases / 20);
	free(buf);
	free(req);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_and_mutated_input_never_breaks_the_server),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
