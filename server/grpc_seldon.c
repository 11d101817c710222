/*
 * grpc_seldon - Seldon Core's gRPC prediction service
 * (server/proto/prediction.proto): seldon.protos.Model/Predict and
 * seldon.protos.Seldon/Predict, on the gRPC port beside the V2 service.
 *
 * A SeldonMessage's data (DefaultData tensor or ndarray, or jsonData) is
 * turned into the JSON the REST endpoint takes and read by the same
 * parser (seldon_parse), so both answer the same numbers; the answer
 * uses the request's encoding with names t:0..t:k-1 and
 * meta.requestPath {model: version}, as the REST answer does. Like
 * /api/v1.0/predictions, it serves the first model given.
 *
 * google.protobuf.Value nests without limit and protobuf-c unpacks
 * recursively, so a message's nesting is measured on the wire first
 * (pb_depth_ok) and refused past the JSON depth cap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/grpc_seldon.h"
#include "server/grpc_server.h"
#include "server/metrics_grpc.h"
#include "server/prediction.pb-c.h"
#include "server/proto.h"

/* Read a varint at *@p (< @end). Returns 0, or -EINVAL when cut short. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	unsigned shift = 0;

	*v = 0;
	while (*p < end && shift < 64) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
		shift += 7;
	}
	return -EINVAL;
}

bool pb_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p,
		 size_t len, int max_depth)
{
	const uint8_t *end = p + len;
	uint64_t key, n;

	if (max_depth < 0)
		return false;
	while (p < end) {
		const ProtobufCFieldDescriptor *f;

		if (varint(&p, end, &key) < 0)
			return false;
		switch (key & 7) {
		case 0:
			if (varint(&p, end, &n) < 0)
				return false;
			break;
		case 1:
			if ((size_t)(end - p) < 8)
				return false;
			p += 8;
			break;
		case 5:
			if ((size_t)(end - p) < 4)
				return false;
			p += 4;
			break;
		case 2:
			if (varint(&p, end, &n) < 0 || n > (uint64_t)(end - p))
				return false;
			f = key >> 3 <= 0xffffffffu
				? protobuf_c_message_descriptor_get_field(
				      d, (unsigned)(key >> 3))
				: NULL;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    !pb_depth_ok(f->descriptor, p, (size_t)n,
					 max_depth - 1))
				return false;
			p += n;
			break;
		default: /* groups: not in these protocols */
			return false;
		}
	}
	return true;
}

static cJSON *from_value(const Google__Protobuf__Value *v);

static cJSON *from_list(const Google__Protobuf__ListValue *l)
{
	cJSON *a = cJSON_CreateArray(), *e;
	size_t i;

	for (i = 0; a && l && i < l->n_values; i++) {
		e = from_value(l->values[i]);
		if (!e || !cJSON_AddItemToArray(a, e)) {
			cJSON_Delete(e);
			cJSON_Delete(a);
			return NULL;
		}
	}
	return a;
}

static cJSON *from_value(const Google__Protobuf__Value *v)
{
	cJSON *o, *e;
	size_t i;

	if (!v)
		return cJSON_CreateNull();
	switch (v->kind_case) {
	case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
		return cJSON_CreateNumber(v->number_value);
	case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
		return cJSON_CreateString(v->string_value);
	case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
		return cJSON_CreateBool(v->bool_value);
	case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
		return from_list(v->list_value);
	case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
		o = cJSON_CreateObject();
		for (i = 0; o && v->struct_value && i < v->struct_value->n_fields;
		     i++) {
			e = from_value(v->struct_value->fields[i]->value);
			if (!e) {
				cJSON_Delete(o);
				return NULL;
			}
			cJSON_AddItemToObject(o, v->struct_value->fields[i]->key,
					      e);
		}
		return o;
	default:
		return cJSON_CreateNull();
	}
}

/* The REST request body equivalent to @msg's data. */
static cJSON *as_json(const Seldon__Protos__SeldonMessage *msg, char *err,
		      size_t errlen)
{
	const Seldon__Protos__DefaultData *d;
	cJSON *j = cJSON_CreateObject(), *data, *t, *x = NULL;
	size_t i;

	if (!j)
		return NULL;
	switch (msg->data_oneof_case) {
	case SELDON__PROTOS__SELDON_MESSAGE__DATA_ONEOF_DATA:
		d = msg->data;
		data = cJSON_AddObjectToObject(j, "data");
		if (d->data_oneof_case ==
		    SELDON__PROTOS__DEFAULT_DATA__DATA_ONEOF_NDARRAY) {
			x = from_list(d->ndarray);
			if (x)
				cJSON_AddItemToObject(data, "ndarray", x);
		} else if (d->data_oneof_case ==
			   SELDON__PROTOS__DEFAULT_DATA__DATA_ONEOF_TENSOR) {
			t = cJSON_AddObjectToObject(data, "tensor");
			x = cJSON_AddArrayToObject(t, "shape");
			for (i = 0; x && i < d->tensor->n_shape; i++)
				cJSON_AddItemToArray(
				    x, cJSON_CreateNumber(d->tensor->shape[i]));
			x = cJSON_AddArrayToObject(t, "values");
			for (i = 0; x && i < d->tensor->n_values; i++)
				cJSON_AddItemToArray(
				    x, cJSON_CreateNumber(d->tensor->values[i]));
		} else if (d->data_oneof_case ==
			   SELDON__PROTOS__DEFAULT_DATA__DATA_ONEOF_TFTENSOR) {
			snprintf(err, errlen,
				 "data.tftensor is not supported: send "
				 "data.tensor or data.ndarray");
			goto bad;
		} else {
			snprintf(err, errlen,
				 "'data' needs 'ndarray' or 'tensor'");
			goto bad;
		}
		break;
	case SELDON__PROTOS__SELDON_MESSAGE__DATA_ONEOF_JSON_DATA:
		x = from_value(msg->jsondata);
		if (x)
			cJSON_AddItemToObject(j, "jsonData", x);
		break;
	default:
		snprintf(err, errlen,
			 "the request needs 'data' (ndarray or tensor) or "
			 "'jsonData' (binData, strData and customData are not "
			 "read by this server)");
		goto bad;
	}
	if (!x) {
		snprintf(err, errlen, "out of memory");
		goto bad;
	}
	return j;
bad:
	cJSON_Delete(j);
	return NULL;
}

int grpc_seldon_parse(const uint8_t *in, size_t len, int max_depth,
		      struct matrix *x, int *enc, char **puid, char *err,
		      size_t errlen)
{
	Seldon__Protos__SeldonMessage *msg = NULL;
	cJSON *j = NULL;
	int ret = -EINVAL;

	memset(x, 0, sizeof(*x));
	*puid = NULL;
	if (!pb_depth_ok(&seldon__protos__seldon_message__descriptor, in, len,
			 max_depth * 2)) {
		/* a JSON level is two message levels (Value, ListValue) */
		snprintf(err, errlen,
			 "the message is malformed or nested deeper than %d "
			 "levels",
			 max_depth);
		return -EINVAL;
	}
	msg = seldon__protos__seldon_message__unpack(NULL, len, in);
	if (!msg) {
		snprintf(err, errlen,
			 "the request is not a valid SeldonMessage");
		return -EINVAL;
	}
	j = as_json(msg, err, errlen);
	if (!j)
		goto out;
	ret = seldon_parse(j, x, enc, err, errlen);
	if (ret == 0 && msg->meta && msg->meta->puid[0]) {
		*puid = strdup(msg->meta->puid);
		if (!*puid) {
			matrix_free(x);
			ret = -ENOMEM;
		}
	}
out:
	cJSON_Delete(j);
	seldon__protos__seldon_message__free_unpacked(msg, NULL);
	return ret;
}

/* ListValue of numbers; @vals and @vp have room for @n. */
static void list_of(Google__Protobuf__ListValue *l, Google__Protobuf__Value *vals,
		    Google__Protobuf__Value **vp, const double *y, size_t n,
		    bool fp32)
{
	size_t i;

	google__protobuf__list_value__init(l);
	for (i = 0; i < n; i++) {
		google__protobuf__value__init(&vals[i]);
		vals[i].kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
		vals[i].number_value = fp32 ? (double)(float)y[i] : y[i];
		vp[i] = &vals[i];
	}
	l->values = vp;
	l->n_values = n;
}

static void predict(struct server_ctx *c, const uint8_t *in, size_t len,
		    struct grpc_reply *r)
{
	Seldon__Protos__SeldonMessage resp = SELDON__PROTOS__SELDON_MESSAGE__INIT;
	Seldon__Protos__Meta meta = SELDON__PROTOS__META__INIT;
	Seldon__Protos__Meta__RequestPathEntry rp, *rps[1];
	Seldon__Protos__DefaultData dd = SELDON__PROTOS__DEFAULT_DATA__INIT;
	Seldon__Protos__Tensor ten = SELDON__PROTOS__TENSOR__INIT;
	Google__Protobuf__ListValue top, *rows = NULL;
	Google__Protobuf__Value *vals = NULL, **vp = NULL, *rowv = NULL,
				**rowvp = NULL, jv, namesv, predv, *jvp[2];
	Google__Protobuf__Struct st;
	Google__Protobuf__Struct__FieldsEntry fe[2], *fep[2];
	Google__Protobuf__ListValue namesl;
	Google__Protobuf__Value *namev = NULL, **namevp = NULL;
	struct model_version *v = NULL;
	struct model *m = NULL;
	struct matrix x = {0};
	char **names = NULL, *puid = NULL;
	int32_t shape[2];
	double *y = NULL, *yf = NULL;
	size_t k, i, total;
	int enc = 0, ret, status;
	bool fp32;

	(void)jvp;
	if (registry_count(c->reg) == 0) {
		r->code = GC_NOT_FOUND;
		snprintf(r->msg, sizeof(r->msg), "no model is served");
		return;
	}
	ret = grpc_seldon_parse(in, len, c->max_depth, &x, &enc, &puid, r->msg,
				sizeof(r->msg));
	if (ret < 0) {
		r->code = ret == -ENOMEM ? GC_RESOURCE_EXHAUSTED
					 : GC_INVALID_ARGUMENT;
		return;
	}
	status = proto_acquire(c, model_name(registry_at(c->reg, 0)), NULL, &m,
			       &v, r->msg, sizeof(r->msg));
	if (status != 200) {
		r->code = status == 404 ? GC_NOT_FOUND : GC_UNAVAILABLE;
		goto out;
	}
	ret = model_predict(c->reg, m, v, &x, &y, r->msg, sizeof(r->msg));
	if (ret < 0) {
		r->code = ret == -EINVAL   ? GC_INVALID_ARGUMENT
			  : ret == -EAGAIN ? GC_UNAVAILABLE
					   : GC_INTERNAL;
		goto out;
	}
	k = v->info.n_outputs;
	fp32 = proto_fp32(v);
	total = x.rows * k;
	names = calloc(k, sizeof(*names));
	vals = calloc(total + k, sizeof(*vals));
	vp = calloc(total + k, sizeof(*vp));
	rows = calloc(x.rows, sizeof(*rows));
	rowv = calloc(x.rows, sizeof(*rowv));
	rowvp = calloc(x.rows, sizeof(*rowvp));
	yf = malloc(total * sizeof(*yf));
	if (!names || !vals || !vp || !rows || !rowv || !rowvp || !yf)
		goto oom;
	for (i = 0; i < k; i++) {
		names[i] = malloc(24);
		if (!names[i])
			goto oom;
		snprintf(names[i], 24, "t:%zu", i);
	}
	for (i = 0; i < total; i++)
		yf[i] = fp32 ? (double)(float)y[i] : y[i];
	meta.puid = puid ? puid : "";
	seldon__protos__meta__request_path_entry__init(&rp);
	rp.key = (char *)model_name(m);
	rp.value = v->version;
	rps[0] = &rp;
	meta.requestpath = rps;
	meta.n_requestpath = 1;
	resp.meta = &meta;
	/* rows of k numbers (a flat list when k is 1), as REST writes */
	if (k == 1) {
		list_of(&top, vals, vp, yf, total, false);
	} else {
		for (i = 0; i < x.rows; i++) {
			list_of(&rows[i], vals + i * k, vp + i * k, yf + i * k,
				k, false);
			google__protobuf__value__init(&rowv[i]);
			rowv[i].kind_case =
			    GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
			rowv[i].list_value = &rows[i];
			rowvp[i] = &rowv[i];
		}
		google__protobuf__list_value__init(&top);
		top.values = rowvp;
		top.n_values = x.rows;
	}
	if (enc == 2) { /* jsonData: {"names": [...], "predictions": ...} */
		namev = calloc(k, sizeof(*namev));
		namevp = calloc(k, sizeof(*namevp));
		if (!namev || !namevp)
			goto oom;
		google__protobuf__list_value__init(&namesl);
		for (i = 0; i < k; i++) {
			google__protobuf__value__init(&namev[i]);
			namev[i].kind_case =
			    GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
			namev[i].string_value = names[i];
			namevp[i] = &namev[i];
		}
		namesl.values = namevp;
		namesl.n_values = k;
		google__protobuf__value__init(&namesv);
		namesv.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		namesv.list_value = &namesl;
		google__protobuf__value__init(&predv);
		predv.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		predv.list_value = &top;
		google__protobuf__struct__fields_entry__init(&fe[0]);
		google__protobuf__struct__fields_entry__init(&fe[1]);
		fe[0].key = "names";
		fe[0].value = &namesv;
		fe[1].key = "predictions";
		fe[1].value = &predv;
		fep[0] = &fe[0];
		fep[1] = &fe[1];
		google__protobuf__struct__init(&st);
		st.fields = fep;
		st.n_fields = 2;
		google__protobuf__value__init(&jv);
		jv.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		jv.struct_value = &st;
		resp.data_oneof_case =
		    SELDON__PROTOS__SELDON_MESSAGE__DATA_ONEOF_JSON_DATA;
		resp.jsondata = &jv;
	} else {
		dd.names = names;
		dd.n_names = k;
		if (enc == 1) {
			shape[0] = (int32_t)x.rows;
			shape[1] = (int32_t)k;
			ten.shape = shape;
			ten.n_shape = k == 1 ? 1 : 2;
			ten.values = yf;
			ten.n_values = total;
			dd.data_oneof_case =
			    SELDON__PROTOS__DEFAULT_DATA__DATA_ONEOF_TENSOR;
			dd.tensor = &ten;
		} else {
			dd.data_oneof_case =
			    SELDON__PROTOS__DEFAULT_DATA__DATA_ONEOF_NDARRAY;
			dd.ndarray = &top;
		}
		resp.data_oneof_case =
		    SELDON__PROTOS__SELDON_MESSAGE__DATA_ONEOF_DATA;
		resp.data = &dd;
	}
	{
		size_t n = protobuf_c_message_get_packed_size(&resp.base);

		r->out = malloc(n ? n : 1);
		if (!r->out)
			goto oom;
		r->out_len = protobuf_c_message_pack(&resp.base, r->out);
		r->code = GC_OK;
	}
	goto out;
oom:
	r->code = GC_RESOURCE_EXHAUSTED;
	snprintf(r->msg, sizeof(r->msg), "out of memory");
out:
	for (i = 0; names && i < k; i++)
		free(names[i]);
	free(names);
	free(vals);
	free(vp);
	free(rows);
	free(rowv);
	free(rowvp);
	free(namev);
	free(namevp);
	free(yf);
	free(y);
	free(puid);
	matrix_free(&x);
	model_version_unref(v);
}

const struct grpc_method grpc_seldon_methods[] = {
    {"/seldon.protos.Model/Predict", predict, MG_MODEL_PREDICT},
    {"/seldon.protos.Seldon/Predict", predict, MG_SELDON_PREDICT},
};
const size_t grpc_seldon_n_methods =
    sizeof(grpc_seldon_methods) / sizeof(grpc_seldon_methods[0]);
