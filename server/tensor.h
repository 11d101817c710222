/*
 * tensor - request data to dense matrices, and JSON output helpers.
 *
 * Every protocol ends up handing a model a row-major matrix of doubles;
 * this module turns JSON arrays (flat or nested, as V2, Seldon and TF
 * Serving send them) into one, checking datatypes, ranges and shapes, and
 * says exactly which element was wrong. Depth is checked on the raw text
 * before any parser recurses into it.
 *
 * Pure functions, thread-safe. Errors: 0 or -EINVAL with a message in @err,
 * -E2BIG past a cap, -ENOMEM.
 */
#ifndef ASSETFS_SERVER_TENSOR_H
#define ASSETFS_SERVER_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/buf.h"

#define TENSOR_MAX_ELEMS (64u << 20) /* elements in one request */
#define TENSOR_MAX_DIMS 8
#define ERR_MAX 512

enum dtype {
	DT_BOOL,
	DT_INT8,
	DT_INT16,
	DT_INT32,
	DT_INT64,
	DT_UINT8,
	DT_UINT16,
	DT_UINT32,
	DT_UINT64,
	DT_FP16,
	DT_FP32,
	DT_FP64,
	DT_BYTES,
};

/* "FP32" -> DT_FP32 ... Returns 0 or -EINVAL for an unknown name. */
int dtype_parse(const char *s, enum dtype *out);
const char *dtype_name(enum dtype d);

/*
 * The values integer datatype @dt holds, as doubles (INT64's and UINT64's
 * ends rounded to the nearest double): 0 with *@lo and *@hi set, or
 * -EINVAL (@lo, @hi untouched) for BOOL, the FP types and BYTES.
 */
int dtype_int_range(enum dtype dt, double *lo, double *hi);

struct matrix {
	double *x; /* owned, rows * cols */
	size_t rows, cols;
};

void matrix_free(struct matrix *m); /* NULL-safe; @m may be reused */

/*
 * Is the JSON text @s (@len bytes) nested at most @max_depth arrays and
 * objects deep? Brackets inside strings do not count. Does not validate.
 */
bool json_depth_ok(const char *s, size_t len, int max_depth);

/*
 * Parse @s (@len bytes) as exactly one JSON value, nested at most
 * @max_depth deep, with nothing after it but whitespace. Returns 0 with
 * the tree in *@out (the caller frees it), or -EINVAL with a message in
 * @err naming the byte where it went wrong ("malformed JSON at byte N",
 * "bytes after the JSON value at byte N", "JSON nested deeper than D
 * levels"), or -ENOMEM.
 */
int json_parse_exact(const char *s, size_t len, int max_depth, cJSON **out,
		     char *err, size_t errlen);

/*
 * Flatten @data (a number, bool, or arrays of them nested at any depth)
 * into @out, which holds @cap doubles, checking every element against
 * @dt (integers in range, bools for BOOL, numbers for FP). @what names the
 * tensor in messages. Returns the element count, -EINVAL (message names
 * the element) or -E2BIG if more than @cap elements.
 */
long tensor_flatten(const cJSON *data, enum dtype dt, const char *what,
		    double *out, size_t cap, char *err, size_t errlen);

/* Number of scalar leaves under @data (arrays nested at any depth). */
size_t tensor_count(const cJSON *data);

/*
 * Rows from @a: an array of equal-length arrays of numbers (or a flat
 * array of numbers, which is one row). @what names the field. Fills @m.
 */
int matrix_from_rows(const cJSON *a, const char *what, struct matrix *m,
		     char *err, size_t errlen);

/* Append @s as a JSON string literal (quoted, escaped). */
int jw_str(struct buf *b, const char *s);
/* Append a number as FP32 ("%.9g") or FP64 ("%.17g"); NaN/Inf -> null. */
int jw_f32(struct buf *b, double v);
int jw_f64(struct buf *b, double v);

#endif
