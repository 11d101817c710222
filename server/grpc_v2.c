/*
 * grpc_v2 - the Open Inference Protocol's gRPC service,
 * inference.GRPCInferenceService (server/proto/grpc_predict_v2.proto):
 * ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata,
 * ModelInfer.
 *
 * ModelInfer reads typed `contents` or `raw_input_contents` (little-
 * endian, row-major), describes the tensors to infer.c exactly as the REST
 * front end does and answers in kind: `raw_output_contents` to a raw
 * request, typed `contents` otherwise. Statuses: INVALID_ARGUMENT (bad
 * input, message naming the tensor and element), NOT_FOUND (model or
 * version), UNAVAILABLE (not loaded, or loading lazily: retry),
 * RESOURCE_EXHAUSTED (over the size caps: the transport refuses the
 * message before it reaches us), INTERNAL.
 */
#include <endian.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc_predict_v2.pb-c.h"
#include "server/grpc_server.h"
#include "server/grpc_v2.h"
#include "server/infer.h"
#include "server/metrics_grpc.h"

/* REST status of proto_acquire -> gRPC code */
static int code_of(int http)
{
	return http == 404 ? GC_NOT_FOUND
	       : http == 503 ? GC_UNAVAILABLE
	       : http == 400 ? GC_INVALID_ARGUMENT
			     : GC_INTERNAL;
}

static void fail(struct grpc_reply *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct grpc_reply *r, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	r->code = code;
}

/* Pack @msg into @r->out. */
static void pack(const ProtobufCMessage *msg, struct grpc_reply *r)
{
	size_t n = protobuf_c_message_get_packed_size(msg);

	r->out = malloc(n ? n : 1);
	if (!r->out) {
		fail(r, GC_INTERNAL, "out of memory");
		return;
	}
	r->out_len = protobuf_c_message_pack(msg, r->out);
	r->code = GC_OK;
}

/* Unpack a request of type @d, or set INVALID_ARGUMENT. */
static void *unpack(const ProtobufCMessageDescriptor *d, const uint8_t *in,
		    size_t len, struct grpc_reply *r)
{
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, in);

	if (!m)
		fail(r, GC_INVALID_ARGUMENT,
		     "the request is not a valid %s message", d->name);
	return m;
}

static void server_live(struct server_ctx *c, const uint8_t *in, size_t len,
			struct grpc_reply *r)
{
	Inference__ServerLiveResponse resp = INFERENCE__SERVER_LIVE_RESPONSE__INIT;

	(void)c;
	(void)in;
	(void)len;
	resp.live = 1;
	pack(&resp.base, r);
}

static void server_ready(struct server_ctx *c, const uint8_t *in, size_t len,
			 struct grpc_reply *r)
{
	Inference__ServerReadyResponse resp =
	    INFERENCE__SERVER_READY_RESPONSE__INIT;

	(void)in;
	(void)len;
	resp.ready = proto_all_ready(c);
	pack(&resp.base, r);
}

static void model_ready_m(struct server_ctx *c, const uint8_t *in, size_t len,
			  struct grpc_reply *r)
{
	Inference__ModelReadyResponse resp =
	    INFERENCE__MODEL_READY_RESPONSE__INIT;
	Inference__ModelReadyRequest *req;
	struct model_version *v = NULL;
	struct model *m;
	int status;

	req = unpack(&inference__model_ready_request__descriptor, in, len, r);
	if (!req)
		return;
	m = registry_find(c->reg, req->name);
	if (!m) {
		fail(r, GC_NOT_FOUND, "unknown model '%.100s'", req->name);
		goto out;
	}
	/* as REST: a lazy model not loaded yet counts as ready */
	resp.ready = proto_model_ready(c, m);
	if (resp.ready && req->version[0]) {
		status = proto_acquire(c, req->name, req->version, &m, &v,
				       r->msg, sizeof(r->msg));
		if (status == 404) {
			r->code = GC_NOT_FOUND;
			goto out;
		}
		resp.ready = status == 200;
		model_version_unref(v);
	}
	pack(&resp.base, r);
out:
	inference__model_ready_request__free_unpacked(req, NULL);
}

static void server_metadata(struct server_ctx *c, const uint8_t *in,
			    size_t len, struct grpc_reply *r)
{
	Inference__ServerMetadataResponse resp =
	    INFERENCE__SERVER_METADATA_RESPONSE__INIT;

	(void)c;
	(void)in;
	(void)len;
	resp.name = "assetfs-server";
	resp.version = ASSETFS_VERSION;
	pack(&resp.base, r);
}

static void model_metadata(struct server_ctx *c, const uint8_t *in,
			   size_t len, struct grpc_reply *r)
{
	Inference__ModelMetadataResponse resp =
	    INFERENCE__MODEL_METADATA_RESPONSE__INIT;
	Inference__ModelMetadataResponse__TensorMetadata t[3], *ins[1],
	    *outs[2];
	Inference__ModelMetadataRequest *req;
	struct infer_outputs all = {0};
	struct infer_output o[2];
	struct model_version *v = NULL;
	struct model *m = NULL;
	int64_t in_shape[2], out_shape[2][2];
	char *versions[1];
	size_t n, i, j;
	int status;

	req = unpack(&inference__model_metadata_request__descriptor, in, len, r);
	if (!req)
		return;
	status = proto_acquire(c, req->name,
			       req->version[0] ? req->version : NULL, &m, &v,
			       r->msg, sizeof(r->msg));
	if (status != 200) {
		r->code = code_of(status);
		goto out;
	}
	resp.name = (char *)model_name(m);
	versions[0] = v->version;
	resp.versions = versions;
	resp.n_versions = 1;
	resp.platform = (char *)model_runtime(m);
	inference__model_metadata_response__tensor_metadata__init(&t[0]);
	t[0].name = "input-0";
	t[0].datatype = proto_fp32(v) ? "FP32" : "FP64";
	in_shape[0] = -1;
	in_shape[1] = v->info.n_features;
	t[0].shape = in_shape;
	t[0].n_shape = 2;
	ins[0] = &t[0];
	resp.inputs = ins;
	resp.n_inputs = 1;
	all.proba = v->info.is_classifier;
	all.predict = true;
	n = infer_describe(v, &all, 1, o);
	for (i = 0; i < n; i++) {
		inference__model_metadata_response__tensor_metadata__init(
		    &t[i + 1]);
		t[i + 1].name = (char *)o[i].name;
		t[i + 1].datatype = (char *)dtype_name(o[i].dt);
		out_shape[i][0] = -1;
		for (j = 1; j < o[i].ndims; j++)
			out_shape[i][j] = (int64_t)o[i].shape[j];
		t[i + 1].shape = out_shape[i];
		t[i + 1].n_shape = o[i].ndims;
		outs[i] = &t[i + 1];
	}
	resp.outputs = outs;
	resp.n_outputs = n;
	pack(&resp.base, r);
out:
	model_version_unref(v);
	inference__model_metadata_request__free_unpacked(req, NULL);
}

static size_t elem_size(enum dtype dt)
{
	switch (dt) {
	case DT_BOOL:
	case DT_INT8:
	case DT_UINT8:
		return 1;
	case DT_INT16:
	case DT_UINT16:
	case DT_FP16:
		return 2;
	case DT_INT32:
	case DT_UINT32:
	case DT_FP32:
		return 4;
	default:
		return 8;
	}
}

static int bad_elem(const struct infer_input *in, size_t i, double d,
		    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: element %zu (%.17g) is not a valid %s",
		 in->what, i, d, dtype_name(in->dt));
	return -EINVAL;
}

/* raw_input_contents: little-endian, exactly typed */
static int fill_raw(const struct infer_input *in, double *dst, size_t n,
		    char *err, size_t errlen)
{
	const uint8_t *p = in->src;
	size_t i;

	for (i = 0; i < n; i++) {
		const uint8_t *e = p + i * elem_size(in->dt);
		uint16_t u16;
		uint32_t u32;
		uint64_t u64;
		float f;
		double d;

		switch (in->dt) {
		case DT_BOOL:
			if (e[0] > 1)
				return bad_elem(in, i, e[0], err, errlen);
			dst[i] = e[0];
			break;
		case DT_INT8:
			dst[i] = (int8_t)e[0];
			break;
		case DT_UINT8:
			dst[i] = e[0];
			break;
		case DT_INT16:
		case DT_UINT16:
			memcpy(&u16, e, 2);
			u16 = le16toh(u16);
			dst[i] = in->dt == DT_INT16 ? (double)(int16_t)u16 : u16;
			break;
		case DT_INT32:
		case DT_UINT32:
		case DT_FP32:
			memcpy(&u32, e, 4);
			u32 = le32toh(u32);
			if (in->dt == DT_FP32) {
				memcpy(&f, &u32, 4);
				dst[i] = f;
			} else {
				dst[i] = in->dt == DT_INT32
					     ? (double)(int32_t)u32
					     : u32;
			}
			break;
		default: /* INT64, UINT64, FP64 */
			memcpy(&u64, e, 8);
			u64 = le64toh(u64);
			if (in->dt == DT_FP64) {
				memcpy(&d, &u64, 8);
				dst[i] = d;
			} else {
				dst[i] = in->dt == DT_INT64
					     ? (double)(int64_t)u64
					     : (double)u64;
			}
			break;
		}
	}
	return 0;
}

/* typed contents: the field of the datatype, values range-checked */
static int fill_typed(const struct infer_input *in, double *dst, size_t n,
		      char *err, size_t errlen)
{
	const Inference__InferTensorContents *t = in->src;
	double lo = 0, hi = 0;
	size_t i;

	switch (in->dt) {
	case DT_BOOL:
		for (i = 0; i < n; i++)
			dst[i] = t->bool_contents[i] ? 1 : 0;
		return 0;
	case DT_INT64:
		for (i = 0; i < n; i++)
			dst[i] = (double)t->int64_contents[i];
		return 0;
	case DT_UINT64:
		for (i = 0; i < n; i++)
			dst[i] = (double)t->uint64_contents[i];
		return 0;
	case DT_FP32:
		for (i = 0; i < n; i++)
			dst[i] = t->fp32_contents[i];
		return 0;
	case DT_FP64:
		for (i = 0; i < n; i++)
			dst[i] = t->fp64_contents[i];
		return 0;
	default:
		break;
	}
	if (dtype_int_range(in->dt, &lo, &hi) < 0) {
		snprintf(err, errlen, "%s: unsupported datatype", in->what);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		double d = in->dt <= DT_INT64 ? (double)t->int_contents[i]
					      : (double)t->uint_contents[i];

		if (d < lo || d > hi)
			return bad_elem(in, i, d, err, errlen);
		dst[i] = d;
	}
	return 0;
}

/* How many elements the typed field of @dt holds, and its name. */
static size_t typed_count(const Inference__InferTensorContents *t,
			  enum dtype dt, const char **field)
{
	switch (dt) {
	case DT_BOOL:
		*field = "contents.bool_contents";
		return t ? t->n_bool_contents : 0;
	case DT_INT8:
	case DT_INT16:
	case DT_INT32:
		*field = "contents.int_contents";
		return t ? t->n_int_contents : 0;
	case DT_INT64:
		*field = "contents.int64_contents";
		return t ? t->n_int64_contents : 0;
	case DT_UINT8:
	case DT_UINT16:
	case DT_UINT32:
		*field = "contents.uint_contents";
		return t ? t->n_uint_contents : 0;
	case DT_UINT64:
		*field = "contents.uint64_contents";
		return t ? t->n_uint64_contents : 0;
	case DT_FP32:
		*field = "contents.fp32_contents";
		return t ? t->n_fp32_contents : 0;
	default:
		*field = "contents.fp64_contents";
		return t ? t->n_fp64_contents : 0;
	}
}

/* Describe the request's tensors and gather them. */
static int gather(const Inference__ModelInferRequest *req, int64_t n_features,
		  struct matrix *x, char *err, size_t errlen)
{
	struct infer_input *in = NULL;
	bool raw = req->n_raw_input_contents > 0;
	size_t i;
	int ret = -EINVAL;

	if (req->n_inputs == 0 || req->n_inputs > INFER_MAX_INPUTS) {
		snprintf(err, errlen, "'inputs' must hold 1 to %d tensors",
			 INFER_MAX_INPUTS);
		return -EINVAL;
	}
	if (raw && req->n_raw_input_contents != req->n_inputs) {
		snprintf(err, errlen,
			 "raw_input_contents holds %zu tensors but inputs "
			 "has %zu",
			 req->n_raw_input_contents, req->n_inputs);
		return -EINVAL;
	}
	in = calloc(req->n_inputs, sizeof(*in));
	if (!in)
		return -ENOMEM;
	for (i = 0; i < req->n_inputs; i++) {
		const Inference__ModelInferRequest__InferInputTensor *t =
		    req->inputs[i];
		enum dtype dt;

		infer_input_init(&in[i], i, t->name);
		if (dtype_parse(t->datatype, &dt) < 0) {
			snprintf(err, errlen,
				 "%s: 'datatype' must be one of BOOL, "
				 "INT8-64, UINT8-64, FP32, FP64",
				 in[i].what);
			goto out;
		}
		ret = infer_input_shape(&in[i], dt, t->shape, t->n_shape, err,
					errlen);
		if (ret < 0)
			goto out;
		ret = -EINVAL;
		if (raw) {
			const ProtobufCBinaryData *b =
			    &req->raw_input_contents[i];

			if (t->contents) {
				snprintf(err, errlen,
					 "%s: 'contents' and "
					 "raw_input_contents are both given",
					 in[i].what);
				goto out;
			}
			if (b->len % elem_size(dt)) {
				snprintf(err, errlen,
					 "%s: raw_input_contents[%zu] holds "
					 "%zu bytes, not a whole number of %s "
					 "elements",
					 in[i].what, i, b->len, dtype_name(dt));
				goto out;
			}
			in[i].have = b->len / elem_size(dt);
			in[i].src = b->data;
			in[i].fill = fill_raw;
			in[i].data_name = "raw_input_contents";
		} else {
			in[i].have =
			    typed_count(t->contents, dt, &in[i].data_name);
			in[i].src = t->contents;
			in[i].fill = fill_typed;
		}
	}
	ret = infer_gather(in, req->n_inputs, n_features, x, err, errlen);
out:
	free(in);
	return ret;
}

int grpc_v2_parse_infer(const uint8_t *in, size_t len, int64_t n_features,
			struct matrix *x, char *err, size_t errlen)
{
	Inference__ModelInferRequest *req;
	int ret;

	memset(x, 0, sizeof(*x));
	req = inference__model_infer_request__unpack(NULL, len, in);
	if (!req) {
		snprintf(err, errlen, "not a valid ModelInferRequest");
		return -EINVAL;
	}
	ret = gather(req, n_features, x, err, errlen);
	inference__model_infer_request__free_unpacked(req, NULL);
	return ret;
}

/* The answer's tensors: typed contents, or raw bytes when @raw. */
struct out_buf {
	Inference__ModelInferResponse__InferOutputTensor t[2];
	Inference__ModelInferResponse__InferOutputTensor *tp[2];
	Inference__InferTensorContents contents[2];
	ProtobufCBinaryData raw[2];
	int64_t shape[2][2];
	void *vals[2];
};

static int fill_outputs(struct out_buf *ob, const struct infer_output *o,
			size_t n, const double *y, size_t k, bool raw)
{
	size_t i, j, cnt;

	for (i = 0; i < n; i++) {
		Inference__ModelInferResponse__InferOutputTensor *t = &ob->t[i];
		Inference__InferTensorContents *tc = &ob->contents[i];

		inference__model_infer_response__infer_output_tensor__init(t);
		inference__infer_tensor_contents__init(tc);
		t->name = (char *)o[i].name;
		t->datatype = (char *)dtype_name(o[i].dt);
		for (j = 0; j < o[i].ndims; j++)
			ob->shape[i][j] = (int64_t)o[i].shape[j];
		t->shape = ob->shape[i];
		t->n_shape = o[i].ndims;
		cnt = o[i].argmax ? o[i].shape[0] : o[i].shape[0] * k;
		ob->vals[i] = malloc((cnt ? cnt : 1) * 8);
		if (!ob->vals[i])
			return -ENOMEM;
		for (j = 0; j < cnt; j++) {
			if (o[i].dt == DT_INT64) {
				int64_t v = (int64_t)infer_argmax(y, j, k);

				if (raw)
					v = (int64_t)htole64((uint64_t)v);
				((int64_t *)ob->vals[i])[j] = v;
			} else if (o[i].dt == DT_FP32) {
				float f = (float)y[j];
				uint32_t u;

				if (raw) {
					memcpy(&u, &f, 4);
					u = htole32(u);
					memcpy(&f, &u, 4);
				}
				((float *)ob->vals[i])[j] = f;
			} else {
				double d = y[j];
				uint64_t u;

				if (raw) {
					memcpy(&u, &d, 8);
					u = htole64(u);
					memcpy(&d, &u, 8);
				}
				((double *)ob->vals[i])[j] = d;
			}
		}
		if (raw) {
			ob->raw[i].data = ob->vals[i];
			ob->raw[i].len = cnt * elem_size(o[i].dt);
		} else {
			if (o[i].dt == DT_INT64) {
				tc->int64_contents = ob->vals[i];
				tc->n_int64_contents = cnt;
			} else if (o[i].dt == DT_FP32) {
				tc->fp32_contents = ob->vals[i];
				tc->n_fp32_contents = cnt;
			} else {
				tc->fp64_contents = ob->vals[i];
				tc->n_fp64_contents = cnt;
			}
			t->contents = tc;
		}
		ob->tp[i] = t;
	}
	return 0;
}

static void model_infer(struct server_ctx *c, const uint8_t *in, size_t len,
			struct grpc_reply *r)
{
	Inference__ModelInferResponse resp =
	    INFERENCE__MODEL_INFER_RESPONSE__INIT;
	Inference__ModelInferResponse__ParametersEntry pe, *pes[1];
	Inference__InferParameter pv = INFERENCE__INFER_PARAMETER__INIT;
	Inference__ModelInferRequest *req;
	struct infer_outputs want = {0};
	struct infer_output o[2];
	struct out_buf ob;
	struct model_version *v = NULL;
	struct model *m = NULL;
	struct matrix x = {0};
	double *y = NULL;
	size_t i, n;
	bool raw;
	int status, ret;

	memset(&ob, 0, sizeof(ob));
	req = unpack(&inference__model_infer_request__descriptor, in, len, r);
	if (!req)
		return;
	raw = req->n_raw_input_contents > 0;
	if (!req->model_name[0]) {
		fail(r, GC_INVALID_ARGUMENT, "'model_name' is required");
		goto out;
	}
	status = proto_acquire(c, req->model_name,
			       req->model_version[0] ? req->model_version
						     : NULL,
			       &m, &v, r->msg, sizeof(r->msg));
	if (status != 200) {
		r->code = code_of(status);
		goto out;
	}
	for (i = 0; i < req->n_outputs; i++) {
		if (infer_want_output(v, model_name(m), req->outputs[i]->name,
				      &want, r->msg, sizeof(r->msg)) < 0) {
			r->code = GC_INVALID_ARGUMENT;
			goto out;
		}
	}
	if (!want.proba && !want.predict)
		infer_default_outputs(v, &want);
	ret = gather(req, v->info.n_features, &x, r->msg, sizeof(r->msg));
	if (ret < 0) {
		if (ret == -ENOMEM)
			fail(r, GC_RESOURCE_EXHAUSTED, "out of memory");
		else
			r->code = GC_INVALID_ARGUMENT;
		goto out;
	}
	ret = model_predict(c->reg, m, v, &x, &y, r->msg, sizeof(r->msg));
	if (ret < 0) {
		r->code = ret == -EINVAL   ? GC_INVALID_ARGUMENT
			  : ret == -EAGAIN ? GC_UNAVAILABLE
					   : GC_INTERNAL;
		goto out;
	}
	n = infer_describe(v, &want, x.rows, o);
	if (fill_outputs(&ob, o, n, y, v->info.n_outputs, raw) < 0) {
		fail(r, GC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	resp.model_name = (char *)model_name(m);
	resp.model_version = v->version;
	resp.id = req->id;
	inference__model_infer_response__parameters_entry__init(&pe);
	pe.key = "content_type";
	pv.parameter_choice_case =
	    INFERENCE__INFER_PARAMETER__PARAMETER_CHOICE_STRING_PARAM;
	pv.string_param = "np";
	pe.value = &pv;
	pes[0] = &pe;
	resp.parameters = pes;
	resp.n_parameters = 1;
	resp.outputs = ob.tp;
	resp.n_outputs = n;
	if (raw) {
		resp.raw_output_contents = ob.raw;
		resp.n_raw_output_contents = n;
	}
	pack(&resp.base, r);
out:
	for (i = 0; i < 2; i++)
		free(ob.vals[i]);
	free(y);
	matrix_free(&x);
	model_version_unref(v);
	inference__model_infer_request__free_unpacked(req, NULL);
}

#define V2 "/inference.GRPCInferenceService/"
const struct grpc_method grpc_v2_methods[] = {
    {V2 "ServerLive", server_live, MG_SERVER_LIVE},
    {V2 "ServerReady", server_ready, MG_SERVER_READY},
    {V2 "ModelReady", model_ready_m, MG_MODEL_READY},
    {V2 "ServerMetadata", server_metadata, MG_SERVER_METADATA},
    {V2 "ModelMetadata", model_metadata, MG_MODEL_METADATA},
    {V2 "ModelInfer", model_infer, MG_MODEL_INFER},
};
const size_t grpc_v2_n_methods =
    sizeof(grpc_v2_methods) / sizeof(grpc_v2_methods[0]);
