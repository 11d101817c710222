/*
 * proto_tfs - the TensorFlow Serving REST API:
 *
 *   POST /v1/models/N[/versions/V]:predict   {"instances": [[...], ...]}
 *        -> {"predictions": [...]};  {"inputs": [[...]] or {"x": [[...]]}}
 *        -> {"outputs": [...]}
 *   GET  /v1/models/N[/versions/V]           {"model_version_status": [...]}
 *                                            (and KServe V1's "name", "ready")
 *   GET  /v1/models                          {"models": [...]} (KServe V1)
 *
 * An instance may be an object with a single named input. Errors are
 * {"error": "..."}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/proto.h"

static void tfs_error(struct http_response *resp, int status, const char *msg)
{
	resp->status = status;
	buf_reset(&resp->body);
	buf_puts(&resp->body, "{\"error\": ");
	jw_str(&resp->body, msg);
	buf_puts(&resp->body, "}");
}

/* Unwrap instances given as objects with one input: [{"x": [...]}, ...] */
static cJSON *unwrap_instances(const cJSON *inst, char *err, size_t errlen)
{
	const cJSON *e;
	cJSON *rows;

	rows = cJSON_CreateArray();
	if (!rows)
		return NULL;
	cJSON_ArrayForEach(e, inst)
	{
		if (!cJSON_IsObject(e) || cJSON_GetArraySize(e) != 1) {
			snprintf(err, errlen,
				 "instances: each object must "
				 "hold exactly one input");
			cJSON_Delete(rows);
			return NULL;
		}
		cJSON_AddItemReferenceToArray(rows, e->child);
	}
	return rows;
}

int tfs_parse(const cJSON *j, struct matrix *x, bool *columnar, char *err,
	      size_t errlen)
{
	const cJSON *inst, *inputs, *src;
	cJSON *tmp = NULL;
	int ret;

	memset(x, 0, sizeof(*x));
	inst = cJSON_GetObjectItemCaseSensitive(j, "instances");
	inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
	if ((inst != NULL) == (inputs != NULL)) {
		snprintf(err, errlen,
			 "the request needs exactly one of "
			 "'instances' or 'inputs'");
		return -EINVAL;
	}
	*columnar = inputs != NULL;
	src = *columnar ? inputs : inst;
	if (*columnar && cJSON_IsObject(inputs)) {
		if (cJSON_GetArraySize(inputs) != 1) {
			snprintf(err, errlen,
				 "inputs: this model takes one "
				 "named input");
			return -EINVAL;
		}
		src = inputs->child;
	}
	if (!*columnar && cJSON_IsArray(inst) && cJSON_IsObject(inst->child)) {
		tmp = unwrap_instances(inst, err, errlen);
		if (!tmp)
			return -EINVAL;
		src = tmp;
	}
	ret = matrix_from_rows(src, *columnar ? "inputs" : "instances", x, err,
			       errlen);
	cJSON_Delete(tmp);
	return ret;
}

static void tfs_predict(struct server_ctx *c, const struct http_request *req,
			struct http_response *resp, const char *name,
			const char *version)
{
	char err[ERR_MAX];
	struct model_version *v = NULL;
	struct model *m = NULL;
	struct matrix x = {0};
	cJSON *j;
	double *y = NULL;
	bool columnar;
	int status, ret;

	j = proto_parse_body(c, req->body, req->body_len, err, sizeof(err), &status);
	if (!j) {
		tfs_error(resp, status, err);
		return;
	}
	ret = tfs_parse(j, &x, &columnar, err, sizeof(err));
	if (ret < 0) {
		tfs_error(resp, 400, err);
		goto out;
	}
	status = proto_acquire(c, name, version, &m, &v, err, sizeof(err));
	if (status != 200) {
		tfs_error(resp, status, err);
		goto out;
	}
	snprintf(resp->version, sizeof(resp->version), "%.63s", v->version);
	ret = model_predict(c->reg, m, v, &x, &y, err, sizeof(err));
	if (ret < 0) {
		tfs_error(resp, proto_predict_status(ret), err);
		goto out;
	}
	buf_puts(&resp->body,
		 columnar ? "{\"outputs\": " : "{\"predictions\": ");
	proto_write_rows(&resp->body, y, x.rows, v->info.n_outputs,
			 proto_fp32(v), true);
	if (buf_puts(&resp->body, "}") < 0)
		tfs_error(resp, 500, "out of memory");
out:
	free(y);
	model_version_unref(v);
	matrix_free(&x);
	cJSON_Delete(j);
}

static void tfs_status(struct server_ctx *c, struct http_response *resp,
		       const char *name, const char *version)
{
	char err[ERR_MAX];
	struct model_version *v = NULL;
	struct model *m = NULL;
	cJSON *j, *st, *e;
	int status;

	status = proto_acquire(c, name, version, &m, &v, err, sizeof(err));
	if (status == 404) {
		tfs_error(resp, 404, err);
		return;
	}
	/* TF Serving's model status, plus KServe V1's name and ready */
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "name", name);
	cJSON_AddBoolToObject(j, "ready", v != NULL);
	st = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(j, "model_version_status"),
			     st);
	cJSON_AddStringToObject(st, "version", v ? v->version : "");
	cJSON_AddStringToObject(st, "state", v ? "AVAILABLE" : "LOADING");
	e = cJSON_AddObjectToObject(st, "status");
	cJSON_AddStringToObject(e, "error_code", v ? "OK" : "UNAVAILABLE");
	cJSON_AddStringToObject(e, "error_message", v ? "" : err);
	if (proto_put_json(&resp->body, j) < 0)
		tfs_error(resp, 500, "out of memory");
	if (v)
		snprintf(resp->version, sizeof(resp->version), "%.63s",
			 v->version);
	model_version_unref(v);
}

void tfs_handle(struct server_ctx *c, const struct http_request *req,
		struct http_response *resp)
{
	char name[128], version[128];
	const char *p = req->path;
	bool predict = false;
	size_t n, len;

	if (strcmp(p, "/v1/models") == 0 || strcmp(p, "/v1/models/") == 0) {
		/* KServe V1: list the models */
		cJSON *j = cJSON_CreateObject();
		cJSON *a = cJSON_AddArrayToObject(j, "models");

		for (n = 0; n < registry_count(c->reg); n++)
			cJSON_AddItemToArray(
			    a, cJSON_CreateString(
				   model_name(registry_at(c->reg, n))));
		if (proto_put_json(&resp->body, j) < 0)
			tfs_error(resp, 500, "out of memory");
		return;
	}
	if (strncmp(p, "/v1/models/", 11) != 0)
		goto nf;
	p += 11;
	len = strlen(p);
	if (len > 8 && strcmp(p + len - 8, ":predict") == 0) {
		predict = true;
		len -= 8;
	}
	n = strcspn(p, "/");
	if (n > len)
		n = len;
	if (n == 0 || n >= sizeof(name))
		goto nf;
	memcpy(name, p, n);
	name[n] = '\0';
	version[0] = '\0';
	if (n < len) {
		if (strncmp(p + n, "/versions/", 10) != 0)
			goto nf;
		p += n + 10;
		len -= n + 10;
		if (len == 0 || len >= sizeof(version) || memchr(p, '/', len))
			goto nf;
		memcpy(version, p, len);
		version[len] = '\0';
	}
	snprintf(resp->model, sizeof(resp->model), "%.63s", name);
	if (predict) {
		if (strcmp(req->method, "POST") != 0) {
			tfs_error(resp, 405, "use POST for :predict");
			return;
		}
		tfs_predict(c, req, resp, name, version[0] ? version : NULL);
		return;
	}
	if (strcmp(req->method, "GET") != 0) {
		tfs_error(resp, 405, "use GET");
		return;
	}
	tfs_status(c, resp, name, version[0] ? version : NULL);
	return;
nf:
	tfs_error(resp, 404, "no such endpoint");
}
