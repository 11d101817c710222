/*
 * infer - the Open Inference Protocol V2's inference, apart from how it
 * travels: REST/JSON (proto_v2.c) and gRPC/protobuf (grpc_v2.c) both
 * describe their input tensors here, get one dense matrix back, pick
 * outputs by name and read the outputs' shapes and values from here, so
 * the two never disagree on what a request means.
 *
 * Inputs: one tensor [rows, cols] (or [cols], one row, unless the model
 * takes one feature), or several tensors [rows] / [rows, k] taken as
 * columns in order. Outputs: "predict_proba" (classifiers: [rows,
 * classes]) and "predict" (classifiers: the class index, INT64; others:
 * the value, [rows] or [rows, k]).
 *
 * Pure functions, thread-safe. Errors: 0 or a negative errno (-EINVAL bad
 * input, message in @err naming the tensor and element; -ENOMEM).
 */
#ifndef ASSETFS_SERVER_INFER_H
#define ASSETFS_SERVER_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/registry.h"
#include "server/tensor.h"

#define INFER_MAX_INPUTS 1024

struct infer_input;

/*
 * Fill @dst with the @n elements of @in as doubles, checking each against
 * @in->dt. Returns 0 or -EINVAL with a message (which names @in->what and
 * the element) in @err.
 */
typedef int (*infer_fill_fn)(const struct infer_input *in, double *dst,
			     size_t n, char *err, size_t errlen);

struct infer_input {
	char what[100];	      /* "inputs[0] (x)": for messages */
	enum dtype dt;
	size_t dims[TENSOR_MAX_DIMS];
	size_t ndims;	      /* 1..TENSOR_MAX_DIMS */
	size_t have;	      /* elements the data holds */
	const char *data_name; /* "'data'", "contents", ...: for messages */
	infer_fill_fn fill;
	const void *src;      /* borrowed, for @fill */
	size_t src_len;
};

/*
 * Name an input for messages: "inputs[@i] (@name)". Returns @in.
 */
struct infer_input *infer_input_init(struct infer_input *in, size_t i,
				     const char *name);

/*
 * Check @dt and @shape (@ndims sizes) of input @in and store them.
 * Returns 0 or -EINVAL (unsupported datatype, bad or too large shape).
 */
int infer_input_shape(struct infer_input *in, enum dtype dt,
		      const int64_t *shape, size_t ndims, char *err,
		      size_t errlen);

/*
 * Gather @n inputs into @x (rows >= 1, cols >= 1): checks element counts
 * against shapes, equal rows, the element cap, then fills. @n_features
 * decides whether a single 1-D tensor is a row (any value but 1) or a
 * column. On error @x is left empty.
 */
int infer_gather(const struct infer_input *in, size_t n, int64_t n_features,
		 struct matrix *x, char *err, size_t errlen);

struct infer_outputs {
	bool proba;   /* "predict_proba" */
	bool predict; /* "predict" */
};

/* The outputs a request gets when it names none. */
void infer_default_outputs(const struct model_version *v,
			   struct infer_outputs *o);

/*
 * Add output @name to @o. Returns 0 or -EINVAL ("model 'M' has no output
 * 'N'").
 */
int infer_want_output(const struct model_version *v, const char *model,
		      const char *name, struct infer_outputs *o, char *err,
		      size_t errlen);

/* One output's description: name, datatype, shape. */
struct infer_output {
	const char *name;
	enum dtype dt;	   /* DT_FP32/DT_FP64, or DT_INT64 for class indexes */
	size_t shape[2];
	size_t ndims;
	bool argmax;	   /* values are class indexes of @y's rows */
};

/*
 * Describe the outputs @o asks for, of @rows predictions from @v, into
 * @out (room for 2). Returns how many.
 */
size_t infer_describe(const struct model_version *v,
		      const struct infer_outputs *o, size_t rows,
		      struct infer_output *out);

/* Index of the largest of @k values at @row (first of equals). */
size_t infer_argmax(const double *y, size_t row, size_t k);

#endif
