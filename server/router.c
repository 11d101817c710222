/*
 * router - path -> protocol on the main port, metrics accounting for
 * every request, and the metrics port. It calls down into the protocol
 * handlers and proto_util; nothing calls back into it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "server/metrics.h"
#include "server/metrics_grpc.h"
#include "server/proto.h"
#include "server/router.h"

static bool prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static void not_found(struct http_response *resp)
{
	resp->status = 404;
	buf_puts(&resp->body, "{\"error\": \"no such endpoint\"}");
}

static const char *metrics_path(const struct server_ctx *c)
{
	return c->metrics_path ? c->metrics_path : "/metrics";
}

void router_handle(void *ctx, const struct http_request *req,
		   struct http_response *resp)
{
	struct server_ctx *c = ctx;
	const char *p = req->path;

	if (prefix(p, "/v2/") || strcmp(p, "/v2") == 0) {
		resp->protocol = "v2";
		v2_handle(c, req, resp);
	} else if (prefix(p, "/v1/")) {
		resp->protocol = "tfserving";
		tfs_handle(c, req, resp);
	} else if (prefix(p, "/api/v1.0/") || strcmp(p, "/predict") == 0 ||
		   prefix(p, "/health/") || prefix(p, "/seldon/")) {
		resp->protocol = "seldon";
		seldon_handle(c, req, resp);
	} else if (strcmp(p, metrics_path(c)) == 0 && c->metrics_here) {
		resp->protocol = "metrics";
		router_metrics_handle(ctx, req, resp);
	} else {
		resp->protocol = "other";
		not_found(resp);
	}
	/*
	 * Label only models that exist: a client inventing names must not
	 * be able to fill the series table.
	 */
	if (resp->model[0] && !registry_find(c->reg, resp->model))
		resp->model[0] = '\0';
	metrics_request(c->metrics, resp->model, resp->version, resp->protocol,
			resp->status, time_mono_ns() - req->start_ns);
}

void router_metrics_handle(void *ctx, const struct http_request *req,
			   struct http_response *resp)
{
	struct server_ctx *c = ctx;

	if (strcmp(req->path, metrics_path(c)) != 0) {
		not_found(resp);
		return;
	}
	resp->content_type = "text/plain; version=0.0.4";
	if (metrics_render(c->metrics, &resp->body) < 0 ||
	    (c->gmetrics && metrics_grpc_render(c->gmetrics, &resp->body) < 0)) {
		resp->status = 500;
		buf_reset(&resp->body);
	}
}
