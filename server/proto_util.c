/*
 * proto_util - the helpers every protocol shares (see proto_util.h).
 * Numbers are written by hand (a batch of 1,000 rows would be a lot of
 * cJSON nodes for no benefit, and FP32 gets its own short form);
 * documents with structure are built with cJSON.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/proto_util.h"
#include "server/tensor.h"

cJSON *proto_parse_body(const struct server_ctx *c, const char *body,
			size_t len, char *err, size_t errlen, int *status)
{
	cJSON *j = NULL;

	*status = 400;
	if (len == 0) {
		snprintf(err, errlen,
			 "the request has no body (a JSON object "
			 "is expected)");
		return NULL;
	}
	if (json_parse_exact(body, len, c->max_depth, &j, err, errlen) < 0)
		return NULL;
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

	*v = NULL;
	*m = registry_find(c->reg, name);
	if (!*m) {
		snprintf(err, errlen, "unknown model '%.100s'", name);
		return 404;
	}
	if (c->load_deferred && model_would_load(c->reg, *m)) {
		*c->load_deferred = true;
		snprintf(err, errlen, "model '%.100s' is loading; retry", name);
		return 503;
	}
	if (c->no_wait)
		ret = model_try_acquire(c->reg, *m, version, v, err, errlen);
	else
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

int proto_predict_status(int ret)
{
	return ret == -EINVAL ? 400 : ret == -EAGAIN ? 503 : 500;
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

bool proto_all_ready(const struct server_ctx *c)
{
	size_t i, n = registry_count(c->reg);

	for (i = 0; i < n; i++)
		if (!proto_model_ready(c, registry_at(c->reg, i)))
			return false;
	return true;
}

int proto_put_json(struct buf *b, cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	int ret = -ENOMEM;

	buf_reset(b);
	if (s)
		ret = buf_puts(b, s);
	free(s);
	cJSON_Delete(j);
	return ret;
}
