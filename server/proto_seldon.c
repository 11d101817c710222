/*
 * proto_seldon - the Seldon Core microservice protocol (v1):
 *
 *   POST /api/v1.0/predictions, /predict    {"data": {"names": [...],
 *        "ndarray": [[...]]}} | {"data": {"tensor": {"shape": [r, c],
 *        "values": [...]}}} | {"jsonData": [[...]] or {"ndarray": ...}}
 *   GET  /health/ping                       "pong"
 *   GET  /health/status                     {"status": "ok"} when ready
 *
 * The answer uses the encoding of the request (ndarray, tensor or
 * jsonData) with "names" t:0..t:k-1 as Seldon's SKLearn server does.
 * These paths serve the first model given; /seldon/NAME/api/v1.0/... and
 * /seldon/NAME/predict pick another. Errors: {"status": {"status":
 * "FAILURE", "code": HTTP, "info": "...", "reason": "..."}}.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/proto.h"

enum seldon_enc { ENC_NDARRAY, ENC_TENSOR, ENC_JSONDATA };

static void seldon_error(struct http_response *resp, int status,
			 const char *reason, const char *msg)
{
	resp->status = status;
	buf_reset(&resp->body);
	buf_printf(&resp->body,
		   "{\"status\": {\"status\": \"FAILURE\", "
		   "\"code\": %d, \"reason\": \"%s\", \"info\": ",
		   status, reason);
	jw_str(&resp->body, msg);
	buf_puts(&resp->body, "}}");
}

/* tensor {"shape": [r, c] or [c], "values": [...]} -> matrix */
static int from_tensor(const cJSON *t, struct matrix *x, char *err,
		       size_t errlen)
{
	const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
	const cJSON *values = cJSON_GetObjectItemCaseSensitive(t, "values");
	size_t dims[2] = {1, 0}, nd, count;
	long got;

	memset(x, 0, sizeof(*x));
	if (!cJSON_IsArray(shape) || !cJSON_IsArray(values) ||
	    cJSON_GetArraySize(shape) < 1 || cJSON_GetArraySize(shape) > 2) {
		snprintf(err, errlen,
			 "data.tensor needs 'shape' ([rows, cols] "
			 "or [cols]) and 'values'");
		return -EINVAL;
	}
	nd = (size_t)cJSON_GetArraySize(shape);
	for (size_t i = 0; i < nd; i++) {
		const cJSON *d = cJSON_GetArrayItem(shape, (int)i);

		if (!cJSON_IsNumber(d) || d->valuedouble < 1 ||
		    d->valuedouble > TENSOR_MAX_ELEMS ||
		    d->valuedouble != (double)(size_t)d->valuedouble) {
			snprintf(err, errlen,
				 "data.tensor.shape holds an "
				 "invalid size");
			return -EINVAL;
		}
		dims[nd == 1 ? 1 : i] = (size_t)d->valuedouble;
	}
	count = dims[0] * dims[1];
	if (count > TENSOR_MAX_ELEMS ||
	    (size_t)cJSON_GetArraySize(values) != count) {
		snprintf(err, errlen,
			 "data.tensor: shape holds %zu values but "
			 "'values' has %d",
			 count, cJSON_GetArraySize(values));
		return -EINVAL;
	}
	x->x = malloc(count * sizeof(double));
	if (!x->x)
		return -ENOMEM;
	got = tensor_flatten(values, DT_FP64, "data.tensor.values", x->x, count,
			     err, errlen);
	if (got < 0) {
		matrix_free(x);
		return (int)got;
	}
	x->rows = dims[0];
	x->cols = dims[1];
	return 0;
}

static void write_names(struct buf *b, size_t k)
{
	size_t i;

	buf_puts(b, "\"names\": [");
	for (i = 0; i < k; i++)
		buf_printf(b, i ? ", \"t:%zu\"" : "\"t:%zu\"", i);
	buf_puts(b, "]");
}

int seldon_parse(const cJSON *j, struct matrix *x, int *enc, char *err,
		 size_t errlen)
{
	const cJSON *data, *jd, *nd, *t;
	int ret;

	memset(x, 0, sizeof(*x));
	*enc = ENC_NDARRAY;
	data = cJSON_GetObjectItemCaseSensitive(j, "data");
	jd = cJSON_GetObjectItemCaseSensitive(j, "jsonData");
	if (data) {
		if (!cJSON_IsObject(data)) {
			snprintf(err, errlen, "'data' must be an object");
			return -EINVAL;
		}
		nd = cJSON_GetObjectItemCaseSensitive(data, "ndarray");
		t = cJSON_GetObjectItemCaseSensitive(data, "tensor");
		if (nd) {
			*enc = ENC_NDARRAY;
			ret = matrix_from_rows(nd, "data.ndarray", x, err,
					       errlen);
		} else if (t) {
			*enc = ENC_TENSOR;
			ret = from_tensor(t, x, err, errlen);
		} else {
			snprintf(err, errlen,
				 "'data' needs 'ndarray' or "
				 "'tensor'");
			ret = -EINVAL;
		}
	} else if (jd) {
		*enc = ENC_JSONDATA;
		if (cJSON_IsObject(jd)) {
			nd = cJSON_GetObjectItemCaseSensitive(jd, "ndarray");
			if (!nd)
				nd = cJSON_GetObjectItemCaseSensitive(
				    jd, "instances");
			if (!nd)
				nd = cJSON_GetObjectItemCaseSensitive(jd,
								      "data");
			jd = nd;
		}
		ret = matrix_from_rows(jd, "jsonData", x, err, errlen);
	} else {
		snprintf(err, errlen,
			 "the request needs 'data' (ndarray "
			 "or tensor) or 'jsonData'");
		ret = -EINVAL;
	}
	return ret;
}

static void seldon_predict(struct server_ctx *c, const struct http_request *req,
			   struct http_response *resp, const char *name)
{
	char err[ERR_MAX];
	struct model_version *v = NULL;
	struct model *m = NULL;
	struct matrix x = {0};
	const cJSON *meta;
	int enc = ENC_NDARRAY;
	double *y = NULL;
	struct buf *b = &resp->body;
	size_t k, i;
	bool fp32;
	cJSON *j;
	int status, ret;

	j = proto_parse_body(c, req->body, req->body_len, err, sizeof(err), &status);
	if (!j) {
		seldon_error(resp, status, "MICROSERVICE_BAD_DATA", err);
		return;
	}
	meta = cJSON_GetObjectItemCaseSensitive(j, "meta");
	ret = seldon_parse(j, &x, &enc, err, sizeof(err));
	if (ret < 0) {
		seldon_error(resp, 400, "MICROSERVICE_BAD_DATA", err);
		goto out;
	}
	status = proto_acquire(c, name, NULL, &m, &v, err, sizeof(err));
	if (status != 200) {
		seldon_error(resp, status,
			     status == 404 ? "MODEL_NOT_FOUND"
					   : "MICROSERVICE_NOT_READY",
			     err);
		goto out;
	}
	snprintf(resp->version, sizeof(resp->version), "%.63s", v->version);
	ret = model_predict(c->reg, m, v, &x, &y, err, sizeof(err));
	if (ret < 0) {
		seldon_error(resp, proto_predict_status(ret),
			     ret == -EINVAL   ? "MICROSERVICE_BAD_DATA"
			     : ret == -EAGAIN ? "MICROSERVICE_NOT_READY"
					      : "MICROSERVICE_INTERNAL_ERROR",
			     err);
		goto out;
	}
	k = v->info.n_outputs;
	fp32 = proto_fp32(v);
	buf_puts(b, "{\"meta\": {\"requestPath\": {");
	jw_str(b, model_name(m));
	buf_puts(b, ": ");
	jw_str(b, v->version);
	buf_puts(b, "}");
	if (cJSON_IsObject(meta)) {
		const cJSON *puid =
		    cJSON_GetObjectItemCaseSensitive(meta, "puid");

		if (cJSON_IsString(puid)) {
			buf_puts(b, ", \"puid\": ");
			jw_str(b, puid->valuestring);
		}
	}
	buf_puts(b, "}, ");
	switch (enc) {
	case ENC_NDARRAY:
		buf_puts(b, "\"data\": {");
		write_names(b, k);
		buf_puts(b, ", \"ndarray\": ");
		proto_write_rows(b, y, x.rows, k, fp32, true);
		buf_puts(b, "}}");
		break;
	case ENC_TENSOR:
		buf_puts(b, "\"data\": {");
		write_names(b, k);
		if (k == 1)
			buf_printf(b,
				   ", \"tensor\": {\"shape\": [%zu], "
				   "\"values\": [",
				   x.rows);
		else
			buf_printf(b,
				   ", \"tensor\": {\"shape\": [%zu, %zu], "
				   "\"values\": [",
				   x.rows, k);
		for (i = 0; i < x.rows * k; i++) {
			if (i)
				buf_puts(b, ", ");
			(fp32 ? jw_f32 : jw_f64)(b, y[i]);
		}
		buf_puts(b, "]}}}");
		break;
	case ENC_JSONDATA:
		buf_puts(b, "\"jsonData\": {");
		write_names(b, k);
		buf_puts(b, ", \"predictions\": ");
		proto_write_rows(b, y, x.rows, k, fp32, true);
		if (buf_puts(b, "}}") < 0)
			seldon_error(resp, 500, "MICROSERVICE_INTERNAL_ERROR",
				     "out of memory");
		break;
	}
out:
	free(y);
	model_version_unref(v);
	matrix_free(&x);
	cJSON_Delete(j);
}

void seldon_handle(struct server_ctx *c, const struct http_request *req,
		   struct http_response *resp)
{
	char name[128];
	const char *p = req->path;
	struct model *m;
	size_t n;

	name[0] = '\0';
	if (strncmp(p, "/seldon/", 8) == 0) {
		p += 8;
		n = strcspn(p, "/");
		if (n == 0 || n >= sizeof(name))
			goto nf;
		memcpy(name, p, n);
		name[n] = '\0';
		p += n;
	} else if (registry_count(c->reg) > 0) {
		snprintf(name, sizeof(name), "%s",
			 model_name(registry_at(c->reg, 0)));
	}
	if (strcmp(p, "/health/ping") == 0) {
		resp->content_type = "text/plain";
		buf_puts(&resp->body, "pong");
		return;
	}
	if (strcmp(p, "/health/status") == 0) {
		if (!proto_all_ready(c)) {
			seldon_error(resp, 503, "MICROSERVICE_NOT_READY",
				     "a model is not ready");
			return;
		}
		buf_puts(&resp->body, "{\"status\": \"ok\"}");
		return;
	}
	if (strcmp(p, "/api/v1.0/predictions") == 0 ||
	    strcmp(p, "/predict") == 0) {
		snprintf(resp->model, sizeof(resp->model), "%.63s", name);
		if (strcmp(req->method, "POST") != 0) {
			seldon_error(resp, 405, "METHOD_NOT_ALLOWED",
				     "use POST");
			return;
		}
		m = registry_find(c->reg, name);
		if (!m) {
			seldon_error(resp, 404, "MODEL_NOT_FOUND",
				     "unknown model");
			return;
		}
		seldon_predict(c, req, resp, name);
		return;
	}
nf:
	seldon_error(resp, 404, "NOT_FOUND", "no such endpoint");
}
