/*
 * grpc_call - gRPC calls on an HTTP/2 server session (libnghttp2), as
 * "gRPC over HTTP/2" (grpc/doc/PROTOCOL-HTTP2.md) has them.
 *
 * A request is HEADERS (POST, :path naming the method, content-type
 * application/grpc[+proto|;...], optional grpc-timeout and grpc-encoding)
 * and DATA carrying one length-prefixed message; when the client ends its
 * side, the method runs right here, on the thread that read the last
 * byte, and the answer is queued: HEADERS, DATA (the 5-byte prefix and the
 * message), and trailers grpc-status 0; an error is a trailers-only
 * answer (grpc-status, grpc-message percent-encoded). A request that is
 * not gRPC at all gets HTTP 415 (content-type) or 405 (method). Messages
 * compressed with gzip or deflate are inflated (capped like the rest);
 * answers are never compressed (identity needs no grpc-encoding).
 *
 * Everything the client sends is hostile: the body of a call is capped
 * (--grpc-max-message plus the prefix; past it the rest is dropped and the
 * call answered RESOURCE_EXHAUSTED), nothing else of a header is kept
 * but a truncated copy of an unknown path, and nghttp2 enforces HTTP/2
 * itself (SETTINGS_MAX_CONCURRENT_STREAMS, flow control, floods).
 * Its windows are given back by hand (nghttp2_session_consume): a
 * request's bytes once its call runs, so a connection whose calls wait
 * (it holds over held_max of answers its client does not take) is stopped
 * by its own window (GH_CONN_WINDOW) from sending more.
 *
 * Threads: a session is only touched by its connection's loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "common/timeutil.h"
#include "server/grpc_server_int.h"
#include "server/metrics_grpc.h"

#define GC_CANCELLED 1
#define GC_DEADLINE_EXCEEDED 4

#define NV(n, v)                                                               \
	{                                                                      \
		(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),      \
		    NGHTTP2_NV_FLAG_NO_COPY_NAME                               \
	}

static bool is(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

int gh_parse_timeout(const char *v, size_t n, int64_t *ns)
{
	int64_t x = 0, unit;
	size_t i;

	/* 1 to 8 digits and a unit */
	if (n < 2 || n > 9)
		return -EINVAL;
	for (i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -EINVAL;
		x = x * 10 + (v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H': unit = 3600LL * 1000000000; break;
	case 'M': unit = 60LL * 1000000000; break;
	case 'S': unit = 1000000000; break;
	case 'm': unit = 1000000; break;
	case 'u': unit = 1000; break;
	case 'n': unit = 1; break;
	default: return -EINVAL;
	}
	/* 99999999 H does not fit: past ~146 years is "no deadline" */
	*ns = x > INT64_MAX / 2 / unit ? INT64_MAX / 2 : x * unit;
	return 0;
}

int gh_unframe(const uint8_t *p, size_t n, size_t max, bool may_compress,
	       const uint8_t **msg, size_t *len, char *err, size_t errlen)
{
	size_t l;

	if (n == 0) {
		snprintf(err, errlen, "the call carried no request message");
		return GC_INVALID_ARGUMENT;
	}
	if (n < 5) {
		snprintf(err, errlen, "a gRPC message prefix cut short");
		return GC_INTERNAL;
	}
	l = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
	if (p[0] == 1 && !may_compress) {
		snprintf(err, errlen,
			 "a compressed message without a grpc-encoding");
		return GC_INTERNAL;
	}
	if (p[0] > 1) {
		snprintf(err, errlen, "a gRPC message flag of %u", p[0]);
		return GC_INTERNAL;
	}
	if (l > max) {
		snprintf(err, errlen,
			 "the request message (%zu bytes) is larger than the "
			 "limit of %zu bytes",
			 l, max);
		return GC_RESOURCE_EXHAUSTED;
	}
	if (l > n - 5) {
		snprintf(err, errlen, "a gRPC message cut short");
		return GC_INTERNAL;
	}
	if (l < n - 5) {
		snprintf(err, errlen,
			 "more than one request message for a unary method");
		return GC_INTERNAL;
	}
	*msg = p + 5;
	*len = l;
	return GC_OK;
}

int gh_inflate(int enc, const uint8_t *p, size_t n, size_t max,
	       uint8_t **out, size_t *len, char *err, size_t errlen)
{
	z_stream z;
	uint8_t *b = NULL, *nb;
	size_t cap = 0;
	int r, code = GC_INTERNAL;

	*out = NULL;
	*len = 0;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, enc == GH_ENC_GZIP ? 16 + MAX_WBITS : MAX_WBITS) !=
	    Z_OK) {
		snprintf(err, errlen, "out of memory");
		return GC_RESOURCE_EXHAUSTED;
	}
	z.next_in = (Bytef *)p;
	z.avail_in = n > 0xffffffffu ? 0xffffffffu : (uInt)n;
	do {
		if (z.total_out == cap) {
			if (cap >= max + 1) { /* one byte past: too big */
				snprintf(err, errlen,
					 "the request message is larger than "
					 "the limit of %zu bytes once inflated",
					 max);
				code = GC_RESOURCE_EXHAUSTED;
				goto fail;
			}
			cap = cap ? cap * 2 : 4096;
			cap = cap > max + 1 ? max + 1 : cap;
			nb = realloc(b, cap ? cap : 1);
			if (!nb) {
				snprintf(err, errlen, "out of memory");
				code = GC_RESOURCE_EXHAUSTED;
				goto fail;
			}
			b = nb;
		}
		z.next_out = b + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		r = inflate(&z, Z_NO_FLUSH);
	} while (r == Z_OK && (z.avail_in || !z.avail_out));
	if (r != Z_STREAM_END || z.avail_in) {
		snprintf(err, errlen, "a compressed message that does not "
				      "inflate");
		goto fail;
	}
	inflateEnd(&z);
	*out = b;
	*len = z.total_out;
	return GC_OK;
fail:
	inflateEnd(&z);
	free(b);
	return code;
}

void gh_pct_encode(const char *s, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	unsigned char ch;

	for (; *s && o + 4 <= cap; s++) {
		ch = (unsigned char)*s;
		if (ch >= 0x20 && ch <= 0x7e && ch != '%') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
}

static struct grpc_front *front_of(struct gh_conn *c)
{
	return c->loop->g;
}

/* Give the request bytes @s kept back to the client's windows. */
static void release(struct gh_conn *c, struct gh_stream *s)
{
	if (s->rx_kept)
		nghttp2_session_consume(c->h2, s->id, s->rx_kept);
	s->rx_kept = 0;
}

/* Queue an answer without a message: trailers only (or a bare HTTP
 * status for what is not gRPC). */
static void answer_status(struct gh_conn *c, struct gh_stream *s, int code,
			  const char *msg)
{
	char st[12], enc[3 * ERR_MAX + 4];
	nghttp2_nv nv[5] = {NV(":status", "200"),
			    NV("content-type", "application/grpc")};
	size_t n = 2;

	s->answered = true;
	s->code = code;
	release(c, s);
	if (s->http_status) {
		snprintf(st, sizeof(st), "%d", s->http_status);
		nv[0].value = (uint8_t *)st;
		nv[0].valuelen = strlen(st);
		nghttp2_submit_response(c->h2, s->id, nv, 1, NULL);
		return;
	}
	snprintf(st, sizeof(st), "%d", code);
	nv[n++] = (nghttp2_nv)NV("grpc-status", st);
	if (msg && *msg) {
		gh_pct_encode(msg, enc, sizeof(enc));
		nv[n++] = (nghttp2_nv)NV("grpc-message", enc);
	}
	if (code == GC_UNIMPLEMENTED && s->enc == GH_ENC_OTHER)
		nv[n++] = (nghttp2_nv)NV("grpc-accept-encoding", "identity");
	nghttp2_submit_response(c->h2, s->id, nv, n, NULL);
}

/* The answer's DATA: the prefix, then the message; trailers after. */
static ssize_t read_answer(nghttp2_session *h2, int32_t id, uint8_t *buf,
			   size_t len, uint32_t *flags,
			   nghttp2_data_source *src, void *user)
{
	struct gh_stream *s = src->ptr;
	struct gh_conn *c = user;
	size_t total = 5 + s->out_len, k, done = 0;
	nghttp2_nv tr[1] = {NV("grpc-status", "0")};

	while (done < len && s->out_off < total) {
		if (s->out_off < 5) {
			k = 5 - s->out_off;
			k = k < len - done ? k : len - done;
			memcpy(buf + done, s->prefix + s->out_off, k);
		} else {
			k = total - s->out_off;
			k = k < len - done ? k : len - done;
			memcpy(buf + done, s->out + (s->out_off - 5), k);
		}
		done += k;
		s->out_off += k;
	}
	if (s->out_off == total) {
		/* all of it is in nghttp2's frame now */
		c->held -= s->out_len;
		c->moved_ns = time_mono_ns();
		free(s->out);
		s->out = NULL;
		*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
		if (nghttp2_submit_trailer(h2, id, tr, 1) != 0)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	return (ssize_t)done;
}

/* Queue the answer @r (its out is consumed) of the method of @s. */
static void reply(struct gh_conn *c, struct gh_stream *s,
		  struct grpc_reply *r)
{
	struct grpc_front *g = front_of(c);
	nghttp2_nv nv[2] = {NV(":status", "200"),
			    NV("content-type", "application/grpc")};
	nghttp2_data_provider dp;

	if (r->code == GC_OK && r->out_len > g->max_message) {
		free(r->out);
		r->out = NULL;
		snprintf(r->msg, sizeof(r->msg),
			 "the response (%zu bytes) is larger than the limit of "
			 "%zu bytes",
			 r->out_len, g->max_message);
		r->code = GC_RESOURCE_EXHAUSTED;
	}
	if (r->code != GC_OK) {
		free(r->out);
		r->out = NULL;
		answer_status(c, s, r->code, r->msg[0] ? r->msg : "error");
		return;
	}
	s->out = r->out;
	s->out_len = r->out_len;
	r->out = NULL;
	c->held += s->out_len;
	s->prefix[0] = 0;
	s->prefix[1] = (uint8_t)(s->out_len >> 24);
	s->prefix[2] = (uint8_t)(s->out_len >> 16);
	s->prefix[3] = (uint8_t)(s->out_len >> 8);
	s->prefix[4] = (uint8_t)s->out_len;
	s->answered = true;
	s->code = GC_OK;
	dp.source.ptr = s;
	dp.read_callback = read_answer;
	nghttp2_submit_response(c->h2, s->id, nv, 2, &dp);
}

static void defer(struct gh_conn *c, struct gh_stream *s, size_t len);

/* Replace @s's body with the prefix and the inflated message @p. */
static int inflated(struct gh_stream *s, const uint8_t *p, size_t n,
		    size_t max, char *err, size_t errlen)
{
	uint8_t *m, *nb;
	size_t len;
	int code;

	code = gh_inflate(s->enc, p, n, max, &m, &len, err, errlen);
	if (code != GC_OK)
		return code;
	nb = malloc(5 + len);
	if (!nb) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return GC_RESOURCE_EXHAUSTED;
	}
	memset(nb, 0, 5);
	if (len)
		memcpy(nb + 5, m, len);
	free(m);
	free(s->body);
	s->body = nb;
	s->body_len = s->body_cap = 5 + len;
	return GC_OK;
}

/* The client ended its side: run the method and queue the answer. */
static void answer(struct gh_conn *c, struct gh_stream *s)
{
	struct grpc_front *g = front_of(c);
	struct grpc_reply r;
	const uint8_t *msg;
	size_t len;
	int code;

	if (s->answered)
		return;
	if (c->held > g->held_max) { /* run when answers have left */
		if (!s->waiting)
			c->n_waiting++;
		s->waiting = true;
		return;
	}
	if (s->waiting)
		c->n_waiting--;
	s->waiting = false;
	release(c, s);
	memset(&r, 0, sizeof(r));
	if (s->http_status) {
		answer_status(c, s, GC_UNIMPLEMENTED, NULL);
		return;
	}
	if (!s->m) {
		snprintf(r.msg, sizeof(r.msg),
			 "assetfs-server has no method %s", s->path);
		answer_status(c, s, GC_UNIMPLEMENTED, r.msg);
		return;
	}
	if (s->too_big) {
		snprintf(r.msg, sizeof(r.msg),
			 "the request message is larger than the limit of "
			 "%zu bytes",
			 g->max_message);
		answer_status(c, s, GC_RESOURCE_EXHAUSTED, r.msg);
		return;
	}
	if (s->deadline_ns && time_mono_ns() > s->deadline_ns) {
		answer_status(c, s, GC_DEADLINE_EXCEEDED, "deadline exceeded");
		return;
	}
	code = gh_unframe(s->body, s->body_len, g->max_message,
			  s->enc != GH_ENC_IDENTITY, &msg, &len, r.msg,
			  sizeof(r.msg));
	if (code == GC_OK && s->body[0] == 1) {
		if (s->enc == GH_ENC_OTHER) {
			code = GC_UNIMPLEMENTED;
			snprintf(r.msg, sizeof(r.msg),
				 "assetfs-server inflates gzip and deflate "
				 "messages, not this grpc-encoding");
		} else {
			code = inflated(s, msg, len, g->max_message, r.msg,
					sizeof(r.msg));
			msg = s->body + 5;
			len = s->body_len - 5;
		}
	}
	if (code != GC_OK) {
		answer_status(c, s, code, r.msg);
		return;
	}
	c->loop->deferred = false;
	s->m->fn(&c->loop->ctx, msg, len, &r);
	if (c->loop->deferred) {
		free(r.out);
		defer(c, s, len);
		return;
	}
	free(s->body); /* the method has read it */
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	reply(c, s, &r);
}

/* Hand @s (whose message is @len bytes at body + 5) to the loader. */
static void defer(struct gh_conn *c, struct gh_stream *s, size_t len)
{
	struct grpc_front *g = front_of(c);
	struct gh_job *j = calloc(1, sizeof(*j)), **p;

	if (!j) {
		answer_status(c, s, GC_RESOURCE_EXHAUSTED, "out of memory");
		return;
	}
	j->loop = c->loop;
	j->conn = c;
	j->serial = c->serial;
	j->id = s->id;
	j->m = s->m;
	j->body = s->body;
	j->len = len;
	s->body = NULL;
	s->body_len = s->body_cap = 0;
	s->deferred = true;
	pthread_mutex_lock(&g->jlock);
	for (p = &g->jobs; *p; p = &(*p)->next)
		;
	*p = j;
	pthread_cond_signal(&g->jcond);
	pthread_mutex_unlock(&g->jlock);
}

void gh_job_done(struct gh_conn *c, struct gh_job *j)
{
	struct gh_stream *s = nghttp2_session_get_stream_user_data(c->h2,
								   j->id);

	if (s && s->deferred && !s->answered) {
		reply(c, s, &j->r);
		j->r.out = NULL;
	}
	free(j->r.out);
	free(j->body);
	free(j);
}

unsigned gh_session_resume(struct gh_conn *c)
{
	struct gh_stream *s, *last = NULL;
	unsigned ran = 0;

	if (!c->n_waiting)
		return 0;
	for (s = c->streams; s; s = s->next) /* newest first */
		last = s;
	for (s = last; s && c->held <= front_of(c)->held_max; s = s->prev) {
		if (!s->waiting)
			continue;
		answer(c, s);
		ran++;
	}
	return ran;
}

void gh_session_expire(struct gh_conn *c, int64_t now_ns)
{
	struct gh_stream *s;

	for (s = c->streams; s; s = s->next)
		if (!s->answered && s->deadline_ns && now_ns > s->deadline_ns) {
			if (s->waiting)
				c->n_waiting--;
			s->waiting = false;
			answer_status(c, s, GC_DEADLINE_EXCEEDED,
				      "deadline exceeded");
		}
}

static void stream_free(struct gh_conn *c, struct gh_stream *s, bool cancel)
{
	struct grpc_front *g = front_of(c);

	if (s->counted) {
		metrics_grpc_call(g->ctx->gmetrics,
				  s->m ? s->m->metric : MG_OTHER,
				  cancel || !s->answered ? GC_CANCELLED
							 : s->code,
				  time_mono_ns() - s->start_ns);
		atomic_fetch_add(&g->done, 1);
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		c->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	c->n_streams--;
	c->last_call_ns = time_mono_ns();
	if (s->waiting)
		c->n_waiting--;
	if (s->out)
		c->held -= s->out_len;
	release(c, s);
	free(s->body);
	free(s->out);
	free(s);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f,
			    void *user)
{
	struct gh_conn *c = user;
	struct gh_stream *s;

	if (f->hd.type != NGHTTP2_HEADERS ||
	    f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST it */
	s->id = f->hd.stream_id;
	s->start_ns = time_mono_ns();
	s->next = c->streams;
	if (c->streams)
		c->streams->prev = s;
	c->streams = s;
	c->n_streams++;
	c->last_call_ns = s->start_ns;
	nghttp2_session_set_stream_user_data(h2, s->id, s);
	return 0;
}

static const struct grpc_method *find_method(struct grpc_front *g,
					     const uint8_t *p, size_t n)
{
	const struct grpc_method *const *m;

	for (m = g->methods; *m; m++)
		if (is(p, n, (*m)->path))
			return *m;
	return NULL;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f,
		     const uint8_t *name, size_t nlen, const uint8_t *value,
		     size_t vlen, uint8_t flags, void *user)
{
	struct gh_conn *c = user;
	struct gh_stream *s;
	int64_t t;

	(void)flags;
	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	if (!s || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers of a request: nothing we use */
	if (is(name, nlen, ":path")) {
		s->m = find_method(front_of(c), value, vlen);
		if (!s->m) /* kept for the message */
			snprintf(s->path, sizeof(s->path), "%.*s",
				 (int)(vlen < GH_PATH_MAX ? vlen
							  : GH_PATH_MAX - 1),
				 (const char *)value);
	} else if (is(name, nlen, ":method")) {
		s->post = is(value, vlen, "POST");
	} else if (is(name, nlen, "content-type")) {
		s->grpc_ct = vlen >= 16 &&
			     memcmp(value, "application/grpc", 16) == 0 &&
			     (vlen == 16 || value[16] == '+' ||
			      value[16] == ';');
	} else if (is(name, nlen, "grpc-timeout")) {
		if (gh_parse_timeout((const char *)value, vlen, &t) == 0)
			s->deadline_ns = s->start_ns + t;
	} else if (is(name, nlen, "grpc-encoding")) {
		s->enc = is(value, vlen, "identity") ? GH_ENC_IDENTITY
			 : is(value, vlen, "gzip")   ? GH_ENC_GZIP
			 : is(value, vlen, "deflate") ? GH_ENC_DEFLATE
						      : GH_ENC_OTHER;
	}
	return 0;
}

/* All the headers of a request are in: is it gRPC? */
static void headers_done(struct gh_stream *s)
{
	if (!s->grpc_ct)
		s->http_status = 415;
	else if (!s->post)
		s->http_status = 405;
	else
		s->counted = true;
}

static int on_data(nghttp2_session *h2, uint8_t flags, int32_t id,
		   const uint8_t *p, size_t n, void *user)
{
	struct gh_conn *c = user;
	struct gh_stream *s = nghttp2_session_get_stream_user_data(h2, id);
	size_t cap = front_of(c)->max_message + 5, want;
	uint8_t *nb;

	(void)flags;
	if (!s || s->answered || s->too_big || s->http_status) {
		nghttp2_session_consume(h2, id, n); /* dropped */
		return 0;
	}
	if (n > cap - s->body_len) {
		nghttp2_session_consume(h2, id, n);
		release(c, s);
		s->too_big = true;
		free(s->body);
		s->body = NULL;
		s->body_len = s->body_cap = 0;
		return 0;
	}
	if (s->body_len + n > s->body_cap) {
		want = s->body_cap ? s->body_cap * 2 : 256;
		while (want < s->body_len + n)
			want *= 2;
		if (want > cap)
			want = cap;
		nb = realloc(s->body, want);
		if (!nb)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		s->body = nb;
		s->body_cap = want;
	}
	memcpy(s->body + s->body_len, p, n);
	s->body_len += n;
	s->rx_kept += n;
	return 0;
}

static int on_frame(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
	struct gh_conn *c = user;
	struct gh_stream *s;

	c->seen_frame = true;
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
		c->ping_ns = 0;
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	s = nghttp2_session_get_stream_user_data(h2, f->hd.stream_id);
	if (!s)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS &&
	    f->headers.cat == NGHTTP2_HCAT_REQUEST)
		headers_done(s);
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
		answer(c, s);
	return 0;
}

static int on_close(nghttp2_session *h2, int32_t id, uint32_t error,
		    void *user)
{
	struct gh_stream *s = nghttp2_session_get_stream_user_data(h2, id);

	if (s)
		stream_free(user, s, error != NGHTTP2_NO_ERROR);
	return 0;
}

static ssize_t on_send(nghttp2_session *h2, const uint8_t *p, size_t n,
		       int flags, void *user)
{
	struct gh_conn *c = user;
	size_t want;
	uint8_t *nb;

	(void)h2;
	(void)flags;
	if (c->out_len - c->out_off >= GH_OUT_MAX)
		return NGHTTP2_ERR_WOULDBLOCK;
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n > c->out_cap) {
		if (c->out_off) { /* slide what is left to the front */
			memmove(c->out, c->out + c->out_off,
				c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		want = c->out_cap ? c->out_cap : 16384;
		while (want < c->out_len + n)
			want *= 2;
		if (want > c->out_cap) {
			nb = realloc(c->out, want);
			if (!nb)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			c->out = nb;
			c->out_cap = want;
		}
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return (ssize_t)n;
}

int gh_h2_init(struct grpc_front *g)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return -ENOMEM;
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_on_begin_headers_callback(
	    cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
	g->cbs = cb;
	if (nghttp2_option_new(&g->h2opt) != 0) {
		gh_h2_fini(g);
		return -ENOMEM;
	}
	/* keep HPACK's table small; pings and settings acks are capped by
	 * nghttp2 itself (a flood closes the connection) */
	nghttp2_option_set_max_deflate_dynamic_table_size(g->h2opt, 4096);
	/* windows are given back as calls run (release) */
	nghttp2_option_set_no_auto_window_update(g->h2opt, 1);
	return 0;
}

void gh_h2_fini(struct grpc_front *g)
{
	nghttp2_session_callbacks_del(g->cbs);
	g->cbs = NULL;
	nghttp2_option_del(g->h2opt);
	g->h2opt = NULL;
}

int gh_session_new(struct grpc_front *g, struct gh_conn *c)
{
	nghttp2_settings_entry set[] = {
	    {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, g->max_streams},
	    {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, GH_STREAM_WINDOW},
	    {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 16384},
	};

	if (nghttp2_session_server_new2(&c->h2, g->cbs, c, g->h2opt) != 0)
		return -ENOMEM;
	if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, set,
				    sizeof(set) / sizeof(set[0])) != 0 ||
	    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
						  GH_CONN_WINDOW) != 0) {
		nghttp2_session_del(c->h2);
		c->h2 = NULL;
		return -ENOMEM;
	}
	return 0;
}

int gh_session_recv(struct gh_conn *c, const uint8_t *p, size_t n)
{
	ssize_t r = nghttp2_session_mem_recv(c->h2, p, n);

	return r < 0 || (size_t)r != n ? -EPROTO : 0;
}

int gh_session_send(struct gh_conn *c)
{
	return nghttp2_session_send(c->h2) != 0 ? -EPROTO : 0;
}

void gh_session_free(struct gh_conn *c)
{
	while (c->streams)
		stream_free(c, c->streams, true);
	nghttp2_session_del(c->h2);
	c->h2 = NULL;
}
