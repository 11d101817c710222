/*
 * proto_v2 - the Open Inference Protocol V2 (KServe / Triton / MLServer)
 * REST endpoints:
 *
 *   GET  /v2/health/live | /v2/health/ready     200 true, 400 false
 *   GET  /v2                                    server metadata
 *   GET  /v2/models/N[/versions/V]              model metadata
 *   GET  /v2/models/N[/versions/V]/ready        200 true, 400 false
 *   POST /v2/models/N[/versions/V]/infer        inference
 *
 * Errors are {"error": "..."}. Inputs: one tensor [rows, cols] (or [cols]
 * for one row), or several tensors [rows] / [rows, k] taken as columns in
 * order. Outputs: "predict_proba" (classifiers, FP32 [rows, classes]) and
 * "predict" (the class index for classifiers, INT64; the value otherwise).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/infer.h"
#include "server/proto.h"

static void v2_error(struct http_response *resp, int status, const char *msg)
{
	resp->status = status;
	buf_reset(&resp->body);
	buf_puts(&resp->body, "{\"error\": ");
	jw_str(&resp->body, msg);
	buf_puts(&resp->body, "}");
}

static bool model_has_proba(const struct model_version *v)
{
	return v->info.is_classifier;
}

/* A tensor description {"name", "datatype", "shape"} added to @arr. */
static void add_tensor(cJSON *arr, const char *name, const char *dt,
		       long long rows, long long cols, bool two_d)
{
	cJSON *t = cJSON_CreateObject(), *shape = cJSON_CreateArray();

	cJSON_AddItemToArray(arr, t);
	cJSON_AddStringToObject(t, "name", name);
	cJSON_AddStringToObject(t, "datatype", dt);
	cJSON_AddItemToObject(t, "shape", shape);
	cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)rows));
	if (two_d)
		cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)cols));
}

static void v2_metadata(struct model *m, struct model_version *v,
			struct http_response *resp)
{
	const char *dt = proto_fp32(v) ? "FP32" : "FP64";
	cJSON *j = cJSON_CreateObject(), *a, *p;

	cJSON_AddStringToObject(j, "name", model_name(m));
	a = cJSON_AddArrayToObject(j, "versions");
	cJSON_AddItemToArray(a, cJSON_CreateString(v->version));
	cJSON_AddStringToObject(j, "platform", model_runtime(m));
	a = cJSON_AddArrayToObject(j, "inputs");
	add_tensor(a, "input-0", dt, -1, v->info.n_features, true);
	a = cJSON_AddArrayToObject(j, "outputs");
	if (model_has_proba(v)) {
		add_tensor(a, "predict_proba", dt, -1, v->info.n_outputs, true);
		add_tensor(a, "predict", "INT64", -1, 0, false);
	} else {
		add_tensor(a, "predict", dt, -1, v->info.n_outputs,
			   v->info.n_outputs != 1);
	}
	p = cJSON_AddObjectToObject(j, "parameters");
	cJSON_AddStringToObject(p, "spec", model_spec(m));
	cJSON_AddStringToObject(p, "objective", v->info.objective);
	cJSON_AddStringToObject(p, "path", v->path);
	if (proto_put_json(&resp->body, j) < 0)
		v2_error(resp, 500, "out of memory");
}

static int fill_json(const struct infer_input *in, double *dst, size_t n,
		     char *err, size_t errlen)
{
	long got = tensor_flatten(in->src, in->dt, in->what, dst, n, err,
				  errlen);

	return got < 0 ? (int)got : 0;
}

/* Validate inputs[] and gather them into @x. Returns 0, 400 or 500. */
int v2_parse_inputs(const cJSON *inputs, int64_t n_features, struct matrix *x,
		    char *err, size_t errlen)
{
	struct infer_input *in = NULL;
	const cJSON *t;
	size_t n, i = 0;
	int ret = -EINVAL;

	memset(x, 0, sizeof(*x));
	if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) == 0) {
		snprintf(err, errlen,
			 "'inputs' must be a non-empty array of tensors");
		return 400;
	}
	n = (size_t)cJSON_GetArraySize(inputs);
	if (n > INFER_MAX_INPUTS) {
		snprintf(err, errlen, "'inputs': more than %d tensors",
			 INFER_MAX_INPUTS);
		return 400;
	}
	in = calloc(n, sizeof(*in));
	if (!in)
		return 500;
	cJSON_ArrayForEach(t, inputs)
	{
		const cJSON *name, *dt, *shape, *data, *d;
		int64_t dims[TENSOR_MAX_DIMS];
		size_t ndims = 0;
		enum dtype type;

		name = cJSON_GetObjectItemCaseSensitive(t, "name");
		dt = cJSON_GetObjectItemCaseSensitive(t, "datatype");
		shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
		data = cJSON_GetObjectItemCaseSensitive(t, "data");
		if (!cJSON_IsObject(t) || !cJSON_IsString(name)) {
			snprintf(err, errlen,
				 "inputs[%zu]: 'name' (a string) is required",
				 i);
			goto out;
		}
		infer_input_init(&in[i], i, name->valuestring);
		if (!cJSON_IsString(dt) ||
		    dtype_parse(dt->valuestring, &type) < 0) {
			snprintf(err, errlen,
				 "%s: 'datatype' must be one of BOOL, "
				 "INT8-64, UINT8-64, FP32, FP64",
				 in[i].what);
			goto out;
		}
		if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) < 1 ||
		    cJSON_GetArraySize(shape) > TENSOR_MAX_DIMS) {
			snprintf(err, errlen,
				 "%s: 'shape' must be an array of 1 to %d "
				 "sizes",
				 in[i].what, TENSOR_MAX_DIMS);
			goto out;
		}
		cJSON_ArrayForEach(d, shape)
		{
			if (!cJSON_IsNumber(d) || d->valuedouble < 0 ||
			    d->valuedouble > TENSOR_MAX_ELEMS ||
			    d->valuedouble != (double)(size_t)d->valuedouble) {
				snprintf(err, errlen,
					 "%s: 'shape' holds an invalid size",
					 in[i].what);
				goto out;
			}
			dims[ndims++] = (int64_t)d->valuedouble;
		}
		ret = infer_input_shape(&in[i], type, dims, ndims, err,
					errlen);
		if (ret < 0)
			goto out;
		ret = -EINVAL;
		if (!data) {
			snprintf(err, errlen, "%s: 'data' is required",
				 in[i].what);
			goto out;
		}
		in[i].have = tensor_count(data);
		in[i].fill = fill_json;
		in[i].src = data;
		i++;
	}
	ret = infer_gather(in, n, n_features, x, err, errlen);
out:
	free(in);
	if (ret == 0)
		return 0;
	matrix_free(x);
	return ret == -ENOMEM ? 500 : 400;
}

static void v2_output(struct buf *b, const struct infer_output *o,
		      const double *y, size_t k)
{
	size_t i, rows = o->shape[0];

	buf_puts(b, "{\"name\": ");
	jw_str(b, o->name);
	buf_printf(b, ", \"datatype\": \"%s\", \"shape\": [%zu",
		   dtype_name(o->dt), rows);
	if (o->ndims == 2)
		buf_printf(b, ", %zu", o->shape[1]);
	buf_puts(b, "], \"data\": [");
	if (o->argmax) {
		for (i = 0; i < rows; i++)
			buf_printf(b, i ? ", %zu" : "%zu",
				   infer_argmax(y, i, k));
	} else {
		for (i = 0; i < rows * k; i++) {
			if (i)
				buf_append(b, ", ", 2);
			(o->dt == DT_FP32 ? jw_f32 : jw_f64)(b, y[i]);
		}
	}
	buf_puts(b, "]}");
}

static void v2_infer(struct server_ctx *c, const struct http_request *req,
		     struct http_response *resp, struct model *m,
		     struct model_version *v)
{
	char err[ERR_MAX];
	struct matrix x = {0};
	struct infer_outputs want;
	struct infer_output outs[2];
	const cJSON *id, *params, *req_outs, *o;
	double *y = NULL;
	cJSON *j;
	int status, ret;
	size_t n, i;
	struct buf *b = &resp->body;

	j = proto_parse_body(c, req->body, req->body_len, err, sizeof(err),
			     &status);
	if (!j) {
		v2_error(resp, status, err);
		return;
	}
	id = cJSON_GetObjectItemCaseSensitive(j, "id");
	params = cJSON_GetObjectItemCaseSensitive(j, "parameters");
	req_outs = cJSON_GetObjectItemCaseSensitive(j, "outputs");
	if (id && !cJSON_IsString(id)) {
		v2_error(resp, 400, "'id' must be a string");
		goto out;
	}
	if (params && !cJSON_IsObject(params)) {
		v2_error(resp, 400, "'parameters' must be an object");
		goto out;
	}
	memset(&want, 0, sizeof(want));
	if (req_outs && !cJSON_IsArray(req_outs)) {
		v2_error(resp, 400, "'outputs' must be an array");
		goto out;
	}
	cJSON_ArrayForEach(o, req_outs)
	{
		const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");

		if (!cJSON_IsString(nm)) {
			v2_error(resp, 400,
				 "outputs[]: 'name' (a string) is required");
			goto out;
		}
		if (infer_want_output(v, model_name(m), nm->valuestring, &want,
				      err, sizeof(err)) < 0) {
			v2_error(resp, 400, err);
			goto out;
		}
	}
	if (!want.proba && !want.predict)
		infer_default_outputs(v, &want);
	status = v2_parse_inputs(cJSON_GetObjectItemCaseSensitive(j, "inputs"),
				 v->info.n_features, &x, err, sizeof(err));
	if (status) {
		v2_error(resp, status, status == 500 ? "out of memory" : err);
		goto out;
	}
	ret = model_predict(c->reg, m, v, &x, &y, err, sizeof(err));
	if (ret < 0) {
		v2_error(resp, proto_predict_status(ret), err);
		goto out;
	}
	buf_puts(b, "{\"model_name\": ");
	jw_str(b, model_name(m));
	buf_puts(b, ", \"model_version\": ");
	jw_str(b, v->version);
	if (id) {
		buf_puts(b, ", \"id\": ");
		jw_str(b, id->valuestring);
	}
	buf_puts(b, ", \"parameters\": {\"content_type\": \"np\"}, "
		    "\"outputs\": [");
	n = infer_describe(v, &want, x.rows, outs);
	for (i = 0; i < n; i++) {
		if (i)
			buf_puts(b, ", ");
		v2_output(b, &outs[i], y, v->info.n_outputs);
	}
	if (buf_puts(b, "]}") < 0)
		v2_error(resp, 500, "out of memory");
out:
	free(y);
	matrix_free(&x);
	cJSON_Delete(j);
}

void v2_handle(struct server_ctx *c, const struct http_request *req,
	       struct http_response *resp)
{
	char name[128], version[128], action[16], err[ERR_MAX];
	const char *p = req->path, *rest;
	struct model_version *v = NULL;
	struct model *m = NULL;
	bool get = strcmp(req->method, "GET") == 0;
	size_t n;
	int status;

	if (strcmp(p, "/v2") == 0 || strcmp(p, "/v2/") == 0) {
		buf_puts(&resp->body, "{\"name\": \"assetfs-server\", "
				      "\"version\": \"" ASSETFS_VERSION "\", "
				      "\"extensions\": []}");
		return;
	}
	if (strcmp(p, "/v2/health/live") == 0) {
		buf_puts(&resp->body, "{\"live\": true}");
		return;
	}
	if (strcmp(p, "/v2/health/ready") == 0) {
		bool ready = proto_all_ready(c);

		resp->status = ready ? 200 : 400;
		buf_printf(&resp->body, "{\"ready\": %s}",
			   ready ? "true" : "false");
		return;
	}
	if (strncmp(p, "/v2/models/", 11) != 0)
		goto nf;
	/* NAME[/versions/VERSION][/ready|/infer] */
	rest = p + 11;
	name[0] = version[0] = action[0] = '\0';
	n = strcspn(rest, "/");
	if (n == 0 || n >= sizeof(name))
		goto nf;
	memcpy(name, rest, n);
	name[n] = '\0';
	rest += n;
	if (strncmp(rest, "/versions/", 10) == 0) {
		rest += 10;
		n = strcspn(rest, "/");
		if (n == 0 || n >= sizeof(version))
			goto nf;
		memcpy(version, rest, n);
		version[n] = '\0';
		rest += n;
	}
	if (*rest == '/') {
		rest++;
		if (strlen(rest) >= sizeof(action))
			goto nf;
		strcpy(action, rest);
	} else if (*rest) {
		goto nf;
	}
	snprintf(resp->model, sizeof(resp->model), "%.63s", name);
	if (action[0] && strcmp(action, "ready") != 0 &&
	    strcmp(action, "infer") != 0)
		goto nf;
	if (strcmp(action, "infer") == 0 && strcmp(req->method, "POST")) {
		v2_error(resp, 405, "use POST for infer");
		return;
	}
	if (strcmp(action, "infer") != 0 && !get) {
		v2_error(resp, 405, "use GET");
		return;
	}
	if (strcmp(action, "ready") == 0) {
		bool ready;

		m = registry_find(c->reg, name);
		if (!m) {
			snprintf(err, sizeof(err), "unknown model '%.100s'",
				 name);
			v2_error(resp, 404, err);
			return;
		}
		/* as /v2/health/ready: a lazy model not loaded yet is ready */
		ready = proto_model_ready(c, m);
		if (ready && version[0]) {
			status = proto_acquire(c, name, version, &m, &v, err,
					       sizeof(err));
			if (status == 404) {
				v2_error(resp, 404, err);
				return;
			}
			ready = status == 200;
			model_version_unref(v);
		}
		resp->status = ready ? 200 : 400;
		buf_puts(&resp->body, "{\"name\": ");
		jw_str(&resp->body, name);
		buf_printf(&resp->body, ", \"ready\": %s}",
			   ready ? "true" : "false");
		return;
	}
	status = proto_acquire(c, name, version[0] ? version : NULL, &m, &v,
			       err, sizeof(err));
	if (status != 200) {
		v2_error(resp, status, err);
		return;
	}
	snprintf(resp->version, sizeof(resp->version), "%.63s", v->version);
	if (action[0])
		v2_infer(c, req, resp, m, v);
	else
		v2_metadata(m, v, resp);
	model_version_unref(v);
	return;
nf:
	v2_error(resp, 404, "no such endpoint");
}
