/*
 * grpc_server - gRPC core's asynchronous server API driven by a thread
 * pool over one completion queue (see grpc_server.h).
 *
 * Each method keeps a few calls "armed" (grpc_server_request_registered_
 * call with the request message read up front); when one arrives, the
 * thread that takes it arms a fresh one, runs the method and starts one
 * batch that sends the answer and the status and waits for the client to
 * close. That batch's completion frees the call. Nothing here blocks on a
 * client. Unknown methods are answered UNIMPLEMENTED through the generic
 * request path.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#include "common/buf.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "server/grpc_server.h"
#include "server/metrics_grpc.h"

#define GF_ARMED_BUSY 32 /* calls armed per busy method, per front */
#define GF_ARMED_IDLE 2
#define GF_PEM_MAX (1u << 20)

enum gf_kind { GF_NEW, GF_DONE, GF_SHUTDOWN };

struct gf_method {
	const struct grpc_method *m; /* NULL: the generic (unknown) path */
	void *handle;		     /* registered method */
};

struct gf_call {
	enum gf_kind kind;
	struct gf_method *gm;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array md;
	grpc_call_details details; /* generic path only */
	grpc_byte_buffer *payload;
	grpc_byte_buffer *resp;
	grpc_slice status_details;
	int cancelled;
	int code;
	int64_t start_ns;
};

struct grpc_front {
	grpc_server *server;
	grpc_completion_queue *cq;
	struct server_ctx *ctx;
	struct server_ctx own_ctx; /* the caller's, but never waiting */
	struct gf_method *methods;
	size_t n_methods;
	struct gf_method generic;
	pthread_t *threads;
	unsigned n_threads;
	atomic_bool stopping;
	atomic_uint_fast64_t done;
	struct gf_call shutdown_tag;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool shut; /* protected by lock: the server's shutdown completed */
};

static void call_free(struct gf_call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->md);
	if (c->gm && !c->gm->m)
		grpc_call_details_destroy(&c->details);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->resp)
		grpc_byte_buffer_destroy(c->resp);
	grpc_slice_unref(c->status_details);
	free(c);
}

/* Ask for the next call of @gm. Returns 0 or -ENOMEM / -EIO. */
static int arm(struct grpc_front *g, struct gf_method *gm)
{
	struct gf_call *c;
	grpc_call_error e;

	if (atomic_load(&g->stopping))
		return 0;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->kind = GF_NEW;
	c->gm = gm;
	c->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&c->md);
	if (gm->m) {
		e = grpc_server_request_registered_call(
		    g->server, gm->handle, &c->call, &c->deadline, &c->md,
		    &c->payload, g->cq, g->cq, c);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(g->server, &c->call, &c->details,
					     &c->md, g->cq, g->cq, c);
	}
	if (e != GRPC_CALL_OK) {
		call_free(c);
		return -EIO;
	}
	return 0;
}

/* The request message as one contiguous slice (empty when none came). */
static grpc_slice payload_slice(grpc_byte_buffer *p)
{
	grpc_byte_buffer_reader rd;
	grpc_slice s;

	if (!p || !grpc_byte_buffer_reader_init(&rd, p))
		return grpc_empty_slice();
	s = grpc_byte_buffer_reader_readall(&rd);
	grpc_byte_buffer_reader_destroy(&rd);
	return s;
}

/* Run the method of a call that just arrived and start answering it. */
static void serve(struct grpc_front *g, struct gf_call *c)
{
	struct grpc_reply *r;
	grpc_op ops[4];
	grpc_slice in, out;
	size_t n = 0;

	r = calloc(1, sizeof(*r));
	if (!r) {
		r = NULL;
		c->code = GC_INTERNAL;
	} else if (!c->gm->m) {
		r->code = GC_UNIMPLEMENTED;
		snprintf(r->msg, sizeof(r->msg),
			 "assetfs-server has no method %.*s",
			 (int)GRPC_SLICE_LENGTH(c->details.method),
			 (const char *)GRPC_SLICE_START_PTR(c->details.method));
	} else if (!c->payload) {
		/* a unary call whose message never came (reset, or a client
		 * that half-closed without one) */
		r->code = GC_INVALID_ARGUMENT;
		snprintf(r->msg, sizeof(r->msg),
			 "the call carried no request message");
	} else {
		in = payload_slice(c->payload);
		c->gm->m->fn(g->ctx, GRPC_SLICE_START_PTR(in),
			     GRPC_SLICE_LENGTH(in), r);
		grpc_slice_unref(in);
	}
	if (r) {
		c->code = r->code;
		if (r->code != GC_OK)
			c->status_details = grpc_slice_from_copied_string(
			    r->msg[0] ? r->msg : "error");
	}
	memset(ops, 0, sizeof(ops));
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	n++;
	if (c->code == GC_OK) {
		if (r->out_len)
			out = grpc_slice_new(r->out, r->out_len, free);
		else {
			free(r->out);
			out = grpc_empty_slice();
		}
		r->out = NULL;
		c->resp = grpc_raw_byte_buffer_create(&out, 1);
		grpc_slice_unref(out);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->resp;
		n++;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status =
	    (grpc_status_code)c->code;
	ops[n].data.send_status_from_server.status_details =
	    c->code == GC_OK ? NULL : &c->status_details;
	n++;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
	n++;
	if (r) {
		free(r->out);
		free(r);
	}
	c->kind = GF_DONE;
	if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK) {
		log_warn("grpc: cannot answer a call");
		call_free(c);
	}
}

/* One event of the queue: a call arrived, a call is done, or shutdown. */
static void handle_event(struct grpc_front *g, grpc_event ev)
{
	struct gf_call *c = ev.tag;

	if (ev.type != GRPC_OP_COMPLETE)
		return;
	switch (c->kind) {
	case GF_SHUTDOWN:
		pthread_mutex_lock(&g->lock);
		g->shut = true;
		pthread_cond_broadcast(&g->cond);
		pthread_mutex_unlock(&g->lock);
		break;
	case GF_NEW:
		if (!ev.success) { /* shutting down: no call came */
			c->call = NULL;
			call_free(c);
			break;
		}
		arm(g, c->gm);
		c->start_ns = time_mono_ns();
		serve(g, c);
		break;
	case GF_DONE:
		metrics_grpc_call(g->ctx->gmetrics,
				  c->gm->m ? c->gm->m->metric : MG_OTHER,
				  /* a client that went away saw CANCELLED,
				   * whatever was sent */
				  c->cancelled ? 1 : c->code,
				  time_mono_ns() - c->start_ns);
		atomic_fetch_add(&g->done, 1);
		call_free(c);
		break;
	}
}

static void *pump(void *arg)
{
	struct grpc_front *g = arg;
	grpc_event ev;

	for (;;) {
		ev = grpc_completion_queue_next(
		    g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		handle_event(g, ev);
	}
	return NULL;
}

static int read_pem(const char *path, struct buf *b, char *err, size_t errlen)
{
	int ret;

	buf_init(b, GF_PEM_MAX);
	ret = file_read_capped(path, GF_PEM_MAX, b);
	if (ret == 0)
		ret = buf_append(b, "", 1); /* NUL-terminate */
	if (ret < 0)
		snprintf(err, errlen, "cannot read %s: %s", path,
			 strerror(-ret));
	return ret;
}

static grpc_server_credentials *credentials(const struct grpc_opts *o,
					    char *err, size_t errlen)
{
	grpc_ssl_pem_key_cert_pair pair;
	grpc_server_credentials *cr = NULL;
	struct buf cert, key;

	if (!o->tls_cert && !o->tls_key)
		return grpc_insecure_server_credentials_create();
	buf_init(&cert, GF_PEM_MAX);
	buf_init(&key, GF_PEM_MAX);
	if (!o->tls_cert || !o->tls_key) {
		snprintf(err, errlen,
			 "TLS needs both --grpc-tls-cert and --grpc-tls-key");
		goto out;
	}
	if (read_pem(o->tls_cert, &cert, err, errlen) < 0 ||
	    read_pem(o->tls_key, &key, err, errlen) < 0)
		goto out;
	pair.private_key = key.data;
	pair.cert_chain = cert.data;
	cr = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
	if (!cr)
		snprintf(err, errlen, "the TLS certificate or key is invalid");
out:
	buf_free(&cert);
	buf_free(&key);
	return cr;
}

static grpc_arg int_arg(const char *key, int v)
{
	grpc_arg a;

	memset(&a, 0, sizeof(a));
	a.type = GRPC_ARG_INTEGER;
	a.key = (char *)key;
	a.value.integer = v;
	return a;
}

static int clamp_int(size_t v)
{
	return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

static int register_methods(struct grpc_front *g)
{
	const struct {
		const struct grpc_method *t;
		size_t n;
	} sets[] = {{grpc_v2_methods, grpc_v2_n_methods},
		    {grpc_seldon_methods, grpc_seldon_n_methods}};
	size_t i, j, k = 0;

	g->n_methods = grpc_v2_n_methods + grpc_seldon_n_methods;
	g->methods = calloc(g->n_methods, sizeof(*g->methods));
	if (!g->methods)
		return -ENOMEM;
	for (i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		for (j = 0; j < sets[i].n; j++, k++) {
			g->methods[k].m = &sets[i].t[j];
			g->methods[k].handle = grpc_server_register_method(
			    g->server, sets[i].t[j].path, NULL,
			    GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
			if (!g->methods[k].handle)
				return -EINVAL;
		}
	}
	return 0;
}

int grpc_front_start(const struct grpc_opts *o, struct server_ctx *ctx,
		     struct grpc_front **out, char *err, size_t errlen)
{
	grpc_server_credentials *cr = NULL;
	struct grpc_front *g;
	grpc_channel_args args;
	grpc_arg a[16];
	char addr[64];
	size_t i, n = 0;
	unsigned t, k;
	int ret = -ENOMEM;

	*out = NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	grpc_init();
	/* a lazy load in progress answers UNAVAILABLE rather than parking
	 * a completion-queue thread behind it */
	g->own_ctx = *ctx;
	g->own_ctx.no_wait = true;
	g->ctx = &g->own_ctx;
	g->shutdown_tag.kind = GF_SHUTDOWN;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	a[n++] = int_arg(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
			 clamp_int(o->max_message));
	a[n++] = int_arg(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
			 clamp_int(o->max_message));
	a[n++] = int_arg(GRPC_ARG_MAX_CONCURRENT_STREAMS,
			 clamp_int(o->max_streams));
	a[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, clamp_int(o->keepalive_ms));
	a[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
			 clamp_int(o->keepalive_timeout_ms));
	a[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
	/* clients may ping every 10 s without data; faster is a strike */
	a[n++] = int_arg(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
			 10000);
	a[n++] = int_arg(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
	a[n++] = int_arg(GRPC_ARG_ALLOW_REUSEPORT, 1);
	/* small unary calls: no bandwidth-probing PINGs after each message */
	a[n++] = int_arg(GRPC_ARG_HTTP2_BDP_PROBE, 0);
	/* calls that arrive before a thread re-arms wait here, not fail */
	a[n++] = int_arg("grpc.server.max_pending_requests",
			 clamp_int((size_t)o->max_streams * 8));
	a[n++] = int_arg("grpc.server.max_pending_requests_hard_limit",
			 clamp_int((size_t)o->max_streams * 16));
	args.num_args = n;
	args.args = a;
	g->server = grpc_server_create(&args, NULL);
	g->cq = grpc_completion_queue_create_for_next(NULL);
	if (!g->server || !g->cq)
		goto fail;
	grpc_server_register_completion_queue(g->server, g->cq, NULL);
	ret = register_methods(g);
	if (ret < 0) {
		snprintf(err, errlen, "cannot register the gRPC methods");
		goto fail;
	}
	cr = credentials(o, err, errlen);
	if (!cr) {
		ret = -EINVAL;
		goto fail;
	}
	snprintf(addr, sizeof(addr), "0.0.0.0:%d", o->port);
	if (grpc_server_add_http2_port(g->server, addr, cr) == 0) {
		snprintf(err, errlen, "cannot listen on gRPC port %d",
			 o->port);
		ret = -EADDRINUSE;
		goto fail;
	}
	grpc_server_credentials_release(cr);
	cr = NULL;
	grpc_server_start(g->server);
	for (i = 0; i < g->n_methods; i++)
		for (k = 0; k < (g->methods[i].m->busy ? GF_ARMED_BUSY
							: GF_ARMED_IDLE);
		     k++)
			arm(g, &g->methods[i]);
	for (k = 0; k < GF_ARMED_IDLE; k++)
		arm(g, &g->generic);
	g->n_threads = o->threads ? o->threads : 2;
	g->threads = calloc(g->n_threads, sizeof(*g->threads));
	if (!g->threads) {
		ret = -ENOMEM;
		goto fail_started;
	}
	for (t = 0; t < g->n_threads; t++) {
		ret = -pthread_create(&g->threads[t], NULL, pump, g);
		if (ret < 0) {
			g->n_threads = t;
			goto fail_started;
		}
	}
	*out = g;
	return 0;
fail_started:
	snprintf(err, errlen, "cannot start the gRPC threads");
	grpc_front_stop(g, 0);
	return ret;
fail:
	if (cr)
		grpc_server_credentials_release(cr);
	if (g->server)
		grpc_server_destroy(g->server);
	if (g->cq) {
		grpc_completion_queue_shutdown(g->cq);
		while (grpc_completion_queue_next(
			   g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
			   .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(g->cq);
	}
	free(g->methods);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
	grpc_shutdown();
	return ret;
}

uint64_t grpc_front_done(struct grpc_front *g)
{
	return g ? atomic_load(&g->done) : 0;
}

/* Wait until the server's shutdown completed or @ms passed. */
static bool wait_shut(struct grpc_front *g, unsigned ms)
{
	struct timespec ts;
	bool shut;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&g->lock);
	while (!g->shut)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &ts) != 0)
			break;
	shut = g->shut;
	pthread_mutex_unlock(&g->lock);
	return shut;
}

void grpc_front_stop(struct grpc_front *g, unsigned grace_ms)
{
	grpc_event ev;
	unsigned t;

	if (!g)
		return;
	atomic_store(&g->stopping, true);
	grpc_server_shutdown_and_notify(g->server, g->cq, &g->shutdown_tag);
	if (g->n_threads && !wait_shut(g, grace_ms)) {
		/* calls still open (a client that never reads): cut them */
		grpc_server_cancel_all_calls(g->server);
		wait_shut(g, 10000);
	}
	if (!g->n_threads) {
		/* nobody pumps the queue: do it here until shutdown is in */
		grpc_server_cancel_all_calls(g->server);
		while (!g->shut)
			handle_event(g, grpc_completion_queue_next(
					    g->cq,
					    gpr_inf_future(GPR_CLOCK_MONOTONIC),
					    NULL));
	}
	grpc_server_destroy(g->server);
	grpc_completion_queue_shutdown(g->cq);
	for (t = 0; t < g->n_threads; t++)
		pthread_join(g->threads[t], NULL);
	do {
		ev = grpc_completion_queue_next(
		    g->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
		if (ev.type == GRPC_OP_COMPLETE)
			handle_event(g, ev);
	} while (ev.type != GRPC_QUEUE_SHUTDOWN);
	grpc_completion_queue_destroy(g->cq);
	free(g->threads);
	free(g->methods);
	pthread_mutex_destroy(&g->lock);
	pthread_cond_destroy(&g->cond);
	free(g);
	grpc_shutdown();
}
