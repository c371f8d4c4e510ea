/* kv_conn: see kv_conn.h. */
#include "kv_conn.h"

void kv_conn_init(struct kv_conn *c, struct kv_heap *heap, size_t in_limit)
{
	kv_buf_init(&c->in, heap, in_limit);
	kv_buf_init(&c->out, heap, KV_MAX_OUTPUT);
	c->closing = false;
}

void kv_conn_release(struct kv_conn *c)
{
	kv_buf_release(&c->in);
	kv_buf_release(&c->out);
}

bool kv_conn_runnable(const struct kv_conn *c, size_t out_high)
{
	return !c->closing && kv_buf_size(&c->in) && kv_buf_size(&c->out) < out_high;
}

bool kv_conn_run(struct kv_conn *c, struct kv_engine *e, struct kv_req *req, size_t out_high)
{
	while (kv_conn_runnable(c, out_high) && !c->out.failed) {
		const char *err = NULL;
		enum kv_parse_result r = kv_resp_parse(kv_buf_head(&c->in), kv_buf_size(&c->in), req,
						       &err);
		if (r == KV_PARSE_MORE)
			break;
		if (r == KV_PARSE_ERROR) {
			kv_buf_append(&c->out, "-ERR ", 5);
			kv_buf_append(&c->out, err, strlen(err));
			kv_buf_append(&c->out, "\r\n", 2);
			kv_buf_consume(&c->in, kv_buf_size(&c->in));
			c->closing = true;
			break;
		}
		int flags = req->argc ? kv_engine_exec(e, req, &c->out) : 0;
		kv_buf_consume(&c->in, req->consumed);
		if (flags & KV_EXEC_CLOSE)
			c->closing = true;
	}
	return !c->out.failed;
}
