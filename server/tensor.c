/*
 * tensor - JSON arrays to dense matrices, checked element by element, and
 * the few JSON writers the protocols share (numbers are written by hand:
 * a batch of 1,000 rows is a lot of cJSON nodes for no benefit).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/tensor.h"

static const char *const dtype_names[] = {
    [DT_BOOL] = "BOOL",	    [DT_INT8] = "INT8",	    [DT_INT16] = "INT16",
    [DT_INT32] = "INT32",   [DT_INT64] = "INT64",   [DT_UINT8] = "UINT8",
    [DT_UINT16] = "UINT16", [DT_UINT32] = "UINT32", [DT_UINT64] = "UINT64",
    [DT_FP16] = "FP16",	    [DT_FP32] = "FP32",	    [DT_FP64] = "FP64",
    [DT_BYTES] = "BYTES",
};

int dtype_parse(const char *s, enum dtype *out)
{
	size_t i;

	for (i = 0; i < sizeof(dtype_names) / sizeof(dtype_names[0]); i++) {
		if (strcmp(s, dtype_names[i]) == 0) {
			*out = (enum dtype)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *dtype_name(enum dtype d)
{
	return dtype_names[d];
}

void matrix_free(struct matrix *m)
{
	if (!m)
		return;
	free(m->x);
	m->x = NULL;
	m->rows = m->cols = 0;
}

bool json_depth_ok(const char *s, size_t len, int max_depth)
{
	bool in_str = false, esc = false;
	int depth = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '[' || c == '{') {
			if (++depth > max_depth)
				return false;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return true;
}

int json_parse_exact(const char *s, size_t len, int max_depth, cJSON **out,
		     char *err, size_t errlen)
{
	const char *end = NULL;
	size_t off;
	cJSON *j;

	*out = NULL;
	if (!json_depth_ok(s, len, max_depth)) {
		snprintf(err, errlen, "JSON nested deeper than %d levels",
			 max_depth);
		return -EINVAL;
	}
	j = cJSON_ParseWithLengthOpts(s, len, &end, 0);
	if (!j) {
		snprintf(err, errlen, "malformed JSON at byte %zu",
			 end && end >= s ? (size_t)(end - s) : (size_t)0);
		return -EINVAL;
	}
	/* cJSON stops after the first value: what follows must be blank */
	for (off = (size_t)(end - s); off < len; off++) {
		char c = s[off];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			snprintf(err, errlen,
				 "bytes after the JSON value at byte %zu "
				 "(a body holds exactly one JSON value)",
				 off);
			cJSON_Delete(j);
			return -EINVAL;
		}
	}
	*out = j;
	return 0;
}

int dtype_int_range(enum dtype dt, double *lo, double *hi)
{
	static const struct {
		double lo, hi;
	} range[] = {
	    [DT_INT8] = {-128, 127},
	    [DT_INT16] = {-32768, 32767},
	    [DT_INT32] = {-2147483648.0, 2147483647.0},
	    [DT_INT64] = {-9223372036854775808.0, 9223372036854775807.0},
	    [DT_UINT8] = {0, 255},
	    [DT_UINT16] = {0, 65535},
	    [DT_UINT32] = {0, 4294967295.0},
	    [DT_UINT64] = {0, 18446744073709551615.0},
	};

	if (dt < DT_INT8 || dt > DT_UINT64)
		return -EINVAL;
	*lo = range[dt].lo;
	*hi = range[dt].hi;
	return 0;
}

/* Check one scalar against @dt; on success store it in *@v. */
static int check_elem(const cJSON *e, enum dtype dt, const char *what,
		      size_t idx, double *v, char *err, size_t errlen)
{
	double d, lo = 0, hi = 0;

	if (dt == DT_BOOL) {
		if (!cJSON_IsBool(e))
			goto bad;
		*v = cJSON_IsTrue(e) ? 1.0 : 0.0;
		return 0;
	}
	if (!cJSON_IsNumber(e)) {
		/*
		 * null is refused, not taken as a missing value: a client
		 * that meant NaN and one that lost a field look the same.
		 */
		if (cJSON_IsNull(e)) {
			snprintf(err, errlen,
				 "%s: element %zu is null (numeric tensors "
				 "take numbers only)",
				 what, idx);
			return -EINVAL;
		}
		goto bad;
	}
	d = e->valuedouble;
	switch (dt) {
	case DT_FP16:
	case DT_FP32:
	case DT_FP64:
		*v = d;
		return 0;
	default:
		break;
	}
	if (dtype_int_range(dt, &lo, &hi) < 0)
		goto bad;
	if (d != floor(d) || d < lo || d > hi) {
		snprintf(err, errlen,
			 "%s: element %zu (%.17g) is not a valid %s", what, idx,
			 d, dtype_name(dt));
		return -EINVAL;
	}
	*v = d;
	return 0;
bad:
	snprintf(err, errlen, "%s: element %zu is not a %s value", what, idx,
		 dt == DT_BOOL ? "boolean" : "numeric");
	return -EINVAL;
}

static long flatten(const cJSON *data, enum dtype dt, const char *what,
		    double *out, size_t cap, size_t n, char *err, size_t errlen)
{
	const cJSON *e;
	long r;

	if (!cJSON_IsArray(data)) {
		if (n >= cap) {
			snprintf(err, errlen,
				 "%s: more elements than its "
				 "shape holds",
				 what);
			return -E2BIG;
		}
		r = check_elem(data, dt, what, n, &out[n], err, errlen);
		return r < 0 ? r : (long)(n + 1);
	}
	cJSON_ArrayForEach(e, data)
	{
		r = flatten(e, dt, what, out, cap, n, err, errlen);
		if (r < 0)
			return r;
		n = (size_t)r;
	}
	return (long)n;
}

long tensor_flatten(const cJSON *data, enum dtype dt, const char *what,
		    double *out, size_t cap, char *err, size_t errlen)
{
	return flatten(data, dt, what, out, cap, 0, err, errlen);
}

size_t tensor_count(const cJSON *data)
{
	const cJSON *e;
	size_t n = 0;

	if (!cJSON_IsArray(data))
		return 1;
	cJSON_ArrayForEach(e, data) n += tensor_count(e);
	return n;
}

int matrix_from_rows(const cJSON *a, const char *what, struct matrix *m,
		     char *err, size_t errlen)
{
	const cJSON *row, *e;
	size_t rows, cols, i = 0, j;
	double *x;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsArray(a)) {
		snprintf(err, errlen, "%s must be an array", what);
		return -EINVAL;
	}
	rows = (size_t)cJSON_GetArraySize(a);
	if (rows == 0) {
		snprintf(err, errlen, "%s is empty", what);
		return -EINVAL;
	}
	if (!cJSON_IsArray(a->child)) {
		/* one flat row */
		cols = rows;
		rows = 1;
	} else {
		cols = (size_t)cJSON_GetArraySize(a->child);
	}
	if (cols == 0 || rows * cols > TENSOR_MAX_ELEMS) {
		snprintf(err, errlen, "%s: %s", what,
			 cols ? "too many elements" : "rows are empty");
		return -EINVAL;
	}
	x = malloc(rows * cols * sizeof(*x));
	if (!x)
		return -ENOMEM;
	if (rows == 1 && !cJSON_IsArray(a->child)) {
		j = 0;
		cJSON_ArrayForEach(e, a)
		{
			if (!cJSON_IsNumber(e) && !cJSON_IsBool(e))
				goto bad_elem;
			x[j++] = cJSON_IsNumber(e) ? e->valuedouble
						   : cJSON_IsTrue(e);
		}
		goto done;
	}
	cJSON_ArrayForEach(row, a)
	{
		if (!cJSON_IsArray(row) ||
		    (size_t)cJSON_GetArraySize(row) != cols) {
			snprintf(
			    err, errlen,
			    "%s: row %zu has %d values, expected %zu", what, i,
			    cJSON_IsArray(row) ? cJSON_GetArraySize(row) : -1,
			    cols);
			free(x);
			return -EINVAL;
		}
		j = 0;
		cJSON_ArrayForEach(e, row)
		{
			if (!cJSON_IsNumber(e) && !cJSON_IsBool(e)) {
				snprintf(err, errlen,
					 "%s: row %zu column %zu "
					 "is not a number",
					 what, i, j);
				free(x);
				return -EINVAL;
			}
			x[i * cols + j] = cJSON_IsNumber(e) ? e->valuedouble
							    : cJSON_IsTrue(e);
			j++;
		}
		i++;
	}
done:
	m->x = x;
	m->rows = rows;
	m->cols = cols;
	return 0;
bad_elem:
	snprintf(err, errlen, "%s: element %zu is not a number", what, j);
	free(x);
	return -EINVAL;
}

int jw_str(struct buf *b, const char *s)
{
	char tmp[8];
	int ret = buf_append(b, "\"", 1);
	const char *p, *run = s;

	for (p = s; ret == 0 && *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		ret = buf_append(b, run, (size_t)(p - run));
		if (ret)
			break;
		if (c == '"' || c == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)c;
			ret = buf_append(b, tmp, 2);
		} else {
			snprintf(tmp, sizeof(tmp), "\\u%04x", c);
			ret = buf_append(b, tmp, 6);
		}
		run = p + 1;
	}
	if (ret == 0)
		ret = buf_append(b, run, strlen(run));
	if (ret == 0)
		ret = buf_append(b, "\"", 1);
	return ret;
}

static int jw_num(struct buf *b, double v, bool fp32)
{
	char tmp[40];
	int n;

	if (!isfinite(v))
		return buf_append(b, "null", 4);
	if (fp32)
		n = snprintf(tmp, sizeof(tmp), "%.9g", v);
	else
		n = snprintf(tmp, sizeof(tmp), "%.17g", v);
	return buf_append(b, tmp, (size_t)n);
}

int jw_f32(struct buf *b, double v)
{
	return jw_num(b, (double)(float)v, true);
}

int jw_f64(struct buf *b, double v)
{
	return jw_num(b, v, false);
}
