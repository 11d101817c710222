/*
 * infer - V2 inputs to a matrix and outputs by name, shared by the REST
 * and gRPC front ends (see infer.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/infer.h"
#include "server/proto_util.h"

struct infer_input *infer_input_init(struct infer_input *in, size_t i,
				     const char *name)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->what, sizeof(in->what), "inputs[%zu] (%.64s)", i,
		 name ? name : "");
	in->data_name = "'data'";
	return in;
}

int infer_input_shape(struct infer_input *in, enum dtype dt,
		      const int64_t *shape, size_t ndims, char *err,
		      size_t errlen)
{
	size_t i, count = 1;

	if (dt == DT_BYTES || dt == DT_FP16) {
		snprintf(err, errlen,
			 "%s: datatype %s is not supported by this model",
			 in->what, dtype_name(dt));
		return -EINVAL;
	}
	if (ndims < 1 || ndims > TENSOR_MAX_DIMS) {
		snprintf(err, errlen,
			 "%s: 'shape' must be an array of 1 to %d sizes",
			 in->what, TENSOR_MAX_DIMS);
		return -EINVAL;
	}
	for (i = 0; i < ndims; i++) {
		if (shape[i] < 0 || shape[i] > TENSOR_MAX_ELEMS) {
			snprintf(err, errlen,
				 "%s: 'shape' holds an invalid size", in->what);
			return -EINVAL;
		}
		in->dims[i] = (size_t)shape[i];
		count *= (size_t)shape[i];
		if (count > TENSOR_MAX_ELEMS) {
			snprintf(err, errlen, "%s: more than %u elements",
				 in->what, TENSOR_MAX_ELEMS);
			return -EINVAL;
		}
	}
	in->ndims = ndims;
	in->dt = dt;
	return 0;
}

static size_t count_of(const struct infer_input *in)
{
	size_t i, c = 1;

	for (i = 0; i < in->ndims; i++)
		c *= in->dims[i];
	return c;
}

int infer_gather(const struct infer_input *in, size_t n, int64_t n_features,
		 struct matrix *x, char *err, size_t errlen)
{
	size_t i, r, j, col = 0, total_cols = 0, rows = 0, count;
	size_t *cols = NULL;
	double *tmp = NULL;
	int ret = -EINVAL;

	memset(x, 0, sizeof(*x));
	if (n == 0) {
		snprintf(err, errlen,
			 "'inputs' must be a non-empty array of tensors");
		return -EINVAL;
	}
	if (n > INFER_MAX_INPUTS) {
		snprintf(err, errlen, "'inputs': more than %d tensors",
			 INFER_MAX_INPUTS);
		return -EINVAL;
	}
	cols = calloc(n, sizeof(*cols));
	if (!cols)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		size_t rws;

		count = count_of(&in[i]);
		if (in[i].have != count) {
			snprintf(err, errlen,
				 "%s: 'shape' holds %zu elements but %s has "
				 "%zu",
				 in[i].what, count, in[i].data_name,
				 in[i].have);
			goto out;
		}
		if (count == 0) {
			snprintf(err, errlen, "%s: the tensor is empty",
				 in[i].what);
			goto out;
		}
		if (in[i].ndims == 1 && n == 1) {
			/* one row, unless the model takes one feature */
			bool one = n_features == 1;

			rws = one ? in[i].dims[0] : 1;
			cols[i] = one ? 1 : in[i].dims[0];
		} else {
			rws = in[i].dims[0];
			cols[i] = count / in[i].dims[0];
		}
		if (i && rws != rows) {
			snprintf(err, errlen,
				 "%s: %zu rows, but inputs[0] has %zu",
				 in[i].what, rws, rows);
			goto out;
		}
		rows = rws;
		total_cols += cols[i];
	}
	if (rows * total_cols > TENSOR_MAX_ELEMS) {
		snprintf(err, errlen, "'inputs': more than %u elements",
			 TENSOR_MAX_ELEMS);
		goto out;
	}
	x->x = malloc(rows * total_cols * sizeof(double));
	tmp = n > 1 ? malloc(rows * total_cols * sizeof(double)) : NULL;
	if (!x->x || (n > 1 && !tmp)) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		double *dst = n > 1 ? tmp : x->x;

		ret = in[i].fill(&in[i], dst, rows * cols[i], err, errlen);
		if (ret < 0)
			goto out;
		if (n > 1) {
			for (r = 0; r < rows; r++)
				for (j = 0; j < cols[i]; j++)
					x->x[r * total_cols + col + j] =
					    tmp[r * cols[i] + j];
		}
		col += cols[i];
	}
	x->rows = rows;
	x->cols = total_cols;
	ret = 0;
out:
	if (ret)
		matrix_free(x);
	free(tmp);
	free(cols);
	return ret;
}

void infer_default_outputs(const struct model_version *v,
			   struct infer_outputs *o)
{
	o->proba = v->info.is_classifier;
	o->predict = !o->proba;
}

int infer_want_output(const struct model_version *v, const char *model,
		      const char *name, struct infer_outputs *o, char *err,
		      size_t errlen)
{
	if (strcmp(name, "predict") == 0) {
		o->predict = true;
		return 0;
	}
	if (strcmp(name, "predict_proba") == 0 && v->info.is_classifier) {
		o->proba = true;
		return 0;
	}
	snprintf(err, errlen, "outputs: model '%s' has no output '%.64s'",
		 model, name);
	return -EINVAL;
}

size_t infer_describe(const struct model_version *v,
		      const struct infer_outputs *o, size_t rows,
		      struct infer_output *out)
{
	enum dtype dt = proto_fp32(v) ? DT_FP32 : DT_FP64;
	size_t k = v->info.n_outputs, n = 0;

	if (o->proba) {
		out[n] = (struct infer_output){
		    .name = "predict_proba",
		    .dt = dt,
		    .shape = {rows, k},
		    .ndims = k == 1 ? 1 : 2,
		};
		n++;
	}
	if (o->predict) {
		bool argmax = v->info.is_classifier;

		out[n] = (struct infer_output){
		    .name = "predict",
		    .dt = argmax ? DT_INT64 : dt,
		    .shape = {rows, k},
		    .ndims = argmax || k == 1 ? 1 : 2,
		    .argmax = argmax,
		};
		n++;
	}
	return n;
}

size_t infer_argmax(const double *y, size_t row, size_t k)
{
	size_t j, best = 0;

	for (j = 1; j < k; j++)
		if (y[row * k + j] > y[row * k + best])
			best = j;
	return best;
}
