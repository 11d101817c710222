/*
 * router - path -> protocol, the shared protocol helpers, metrics
 * accounting for every request, and the metrics port.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "server/metrics.h"
#include "server/proto.h"

static bool prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

cJSON *proto_parse_body(const struct server_ctx *c,
			const struct http_request *req, char *err,
			size_t errlen, int *status)
{
	const char *end = NULL;
	cJSON *j;

	*status = 400;
	if (req->body_len == 0) {
		snprintf(err, errlen,
			 "the request has no body (a JSON object "
			 "is expected)");
		return NULL;
	}
	if (!json_depth_ok(req->body, req->body_len, c->max_depth)) {
		snprintf(err, errlen, "JSON nested deeper than %d levels",
			 c->max_depth);
		return NULL;
	}
	j = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, 0);
	if (!j) {
		snprintf(err, errlen, "malformed JSON at byte %zu",
			 end ? (size_t)(end - req->body) : (size_t)0);
		return NULL;
	}
	if (!cJSON_IsObject(j)) {
		snprintf(err, errlen, "the body must be a JSON object");
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

int proto_acquire(const struct server_ctx *c, const char *name,
		  const char *version, struct model **m,
		  struct model_version **v, char *err, size_t errlen)
{
	int ret;

	*m = registry_find(c->reg, name);
	if (!*m) {
		snprintf(err, errlen, "unknown model '%.100s'", name);
		return 404;
	}
	ret = model_acquire(c->reg, *m, version, v, err, errlen);
	if (ret == -ENOENT)
		return 404;
	if (ret < 0)
		return 503;
	return 200;
}

int proto_write_rows(struct buf *b, const double *y, size_t rows, size_t k,
		     bool fp32, bool flat_single)
{
	size_t i, j;
	int ret;

	ret = buf_append(b, "[", 1);
	for (i = 0; i < rows && ret == 0; i++) {
		if (i)
			ret = buf_append(b, ", ", 2);
		if (k == 1 && flat_single) {
			ret = ret ? ret : (fp32 ? jw_f32 : jw_f64)(b, y[i]);
			continue;
		}
		ret = ret ? ret : buf_append(b, "[", 1);
		for (j = 0; j < k && ret == 0; j++) {
			if (j)
				ret = buf_append(b, ", ", 2);
			ret = ret ? ret
				  : (fp32 ? jw_f32 : jw_f64)(b, y[i * k + j]);
		}
		ret = ret ? ret : buf_append(b, "]", 1);
	}
	return ret ? ret : buf_append(b, "]", 1);
}

bool proto_fp32(const struct model_version *v)
{
	return strcmp(v->ops->name, "xgboost") == 0;
}

bool proto_model_ready(const struct server_ctx *c, struct model *m)
{
	if (model_ready(m))
		return true;
	return registry_lazy(c->reg) && !model_failed(m);
}

static void not_found(struct http_response *resp)
{
	resp->status = 404;
	buf_puts(&resp->body, "{\"error\": \"no such endpoint\"}");
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
	} else if (strcmp(p, "/metrics") == 0 && c->metrics_here) {
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

	if (strcmp(req->path, "/metrics") != 0) {
		not_found(resp);
		return;
	}
	resp->content_type = "text/plain; version=0.0.4";
	if (metrics_render(c->metrics, &resp->body) < 0) {
		resp->status = 500;
		buf_reset(&resp->body);
	}
}
