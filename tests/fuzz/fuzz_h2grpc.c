/*
 * fuzz_h2grpc - libFuzzer target for the gRPC front end's transport: the
 * bytes are what a client sends after the HTTP/2 preface, fed to a server
 * session (grpc_call.c) of a front with three methods: one echoes the
 * request, one fails with a message full of bytes grpc-message must
 * percent-encode, one asks to be deferred (as a lazy load does). The same
 * bytes also go through the pieces on their own: the 5-byte message
 * prefix (gh_unframe), inflating a compressed message (gh_inflate),
 * grpc-timeout, and the grpc-message encoding.
 *
 * Invariants: the session never lets a client's bytes past the caps (a
 * message handed to a method is within --grpc-max-message, the output
 * queued for the client stays near GH_OUT_MAX), gh_unframe's message lies
 * inside its input, nothing inflates past the cap, an encoded
 * grpc-message is printable ASCII.
 */
#include <stdlib.h>
#include <string.h>

#include "server/grpc_server_int.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define FH_MAX 4096 /* --grpc-max-message of the fuzzed front */

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fh_echo(struct server_ctx *c, const uint8_t *in, size_t len,
		    struct grpc_reply *r)
{
	(void)c;
	FUZZ_CHECK(len <= FH_MAX);
	r->out = malloc(len ? len : 1);
	if (!r->out) {
		r->code = GC_INTERNAL;
		return;
	}
	if (len)
		memcpy(r->out, in, len);
	r->out_len = len;
}

static void fh_fail(struct server_ctx *c, const uint8_t *in, size_t len,
		    struct grpc_reply *r)
{
	(void)c;
	r->code = GC_INVALID_ARGUMENT;
	snprintf(r->msg, sizeof(r->msg), "bad %% input: %.*s\n\t\xc3\xa9",
		 (int)(len < 40 ? len : 40), (const char *)in);
}

static void fh_defer(struct server_ctx *c, const uint8_t *in, size_t len,
		     struct grpc_reply *r)
{
	(void)in;
	(void)len;
	if (c->load_deferred)
		*c->load_deferred = true;
	r->code = GC_UNAVAILABLE;
}

static const struct grpc_method fh_methods[] = {
    {"/t.S/Echo", fh_echo, 0},
    {"/t.S/Fail", fh_fail, 1},
    {"/t.S/Defer", fh_defer, 2},
};

static void fh_pieces(const uint8_t *data, size_t size)
{
	char s[64], enc[3 * sizeof(s) + 4];
	const uint8_t *msg = NULL;
	uint8_t *out = NULL;
	char err[ERR_MAX];
	size_t len = 0, i;
	int64_t ns;
	int code;

	code = gh_unframe(data, size, size / 2, size & 1, &msg, &len, err,
			  sizeof(err));
	if (code == GC_OK) {
		FUZZ_CHECK(msg == data + 5);
		FUZZ_CHECK(len <= size / 2 && len + 5 == size);
	} else {
		FUZZ_CHECK(fuzz_err_ok(err, sizeof(err)));
	}
	/* what a client compressed (or says it did) */
	code = gh_inflate(size & 1 ? GH_ENC_GZIP : GH_ENC_DEFLATE, data, size,
			  FH_MAX, &out, &len, err, sizeof(err));
	FUZZ_CHECK(code != GC_OK || len <= FH_MAX);
	FUZZ_CHECK(code == GC_OK || (!out && fuzz_err_ok(err, sizeof(err))));
	free(out);
	if (gh_parse_timeout((const char *)data, size < 12 ? size : 12,
			     &ns) == 0)
		FUZZ_CHECK(ns >= 0);
	len = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, len);
	s[len] = '\0';
	gh_pct_encode(s, enc, sizeof(enc));
	for (i = 0; enc[i]; i++)
		FUZZ_CHECK(enc[i] >= 0x20 && enc[i] <= 0x7e);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	static const char preface[] = NGHTTP2_CLIENT_MAGIC;
	const struct grpc_method *methods[4];
	struct grpc_front g;
	struct gh_loop l;
	struct gh_conn c;
	struct gh_job *j;
	size_t i, step;

	fh_pieces(data, size);
	memset(&g, 0, sizeof(g));
	memset(&l, 0, sizeof(l));
	memset(&c, 0, sizeof(c));
	for (i = 0; i < 3; i++)
		methods[i] = &fh_methods[i];
	methods[3] = NULL;
	g.methods = methods;
	g.ctx = &g.own_ctx;
	g.max_message = FH_MAX;
	g.max_streams = 8;
	pthread_mutex_init(&g.jlock, NULL);
	pthread_cond_init(&g.jcond, NULL);
	l.g = &g;
	l.ctx.load_deferred = &l.deferred;
	c.loop = &l;
	c.fd = -1;
	c.hello_done = true;
	if (gh_h2_init(&g) < 0 || gh_session_new(&g, &c) < 0)
		goto out;
	if (gh_session_recv(&c, (const uint8_t *)preface,
			    sizeof(preface) - 1) < 0)
		goto out;
	/* in pieces as a socket delivers them: the first byte picks the size */
	step = size ? 1 + data[0] % 64 : 1;
	for (i = size ? 1 : 0; i < size; i += step) {
		if (gh_session_recv(&c, data + i,
				    size - i < step ? size - i : step) < 0)
			break;
		if (gh_session_send(&c) < 0)
			break;
		FUZZ_CHECK(c.out_len - c.out_off <= GH_OUT_MAX + 65536);
		c.out_off = c.out_len = 0; /* the client took it */
	}
	/* replies of deferred calls come back, the connection still open */
	while ((j = g.jobs)) {
		g.jobs = j->next;
		fh_echo(NULL, j->body + 5, j->len, &j->r);
		gh_job_done(&c, j);
	}
	gh_session_send(&c);
	gh_session_expire(&c, INT64_MAX);
out:
	if (c.h2)
		gh_session_free(&c);
	free(c.out);
	gh_h2_fini(&g);
	pthread_mutex_destroy(&g.jlock);
	pthread_cond_destroy(&g.jcond);
	return 0;
}
