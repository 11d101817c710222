/*
 * test_tensor - assetfs-server's request data checks: datatypes and their
 * ranges, nested and flat data, row matrices, depth on raw text, and the
 * JSON writers.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "server/tensor.h"
#include "tests/unit/test.h"

static long flat(const char *json, enum dtype dt, double *out, size_t cap,
		 char *err)
{
	cJSON *j = cJSON_Parse(json);
	long n;

	if (!j)
		return -999;
	n = tensor_flatten(j, dt, "inputs[0] (x)", out, cap, err, ERR_MAX);
	cJSON_Delete(j);
	return n;
}

test(dtype_names_round_trip)
{
	static const char *const names[] = {
	    "BOOL",   "INT8",	"INT16", "INT32", "INT64", "UINT8", "UINT16",
	    "UINT32", "UINT64", "FP16",	 "FP32",  "FP64",  "BYTES"};
	enum dtype d;
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECK_INT(dtype_parse(names[i], &d), 0);
		CHECK_STR(dtype_name(d), names[i]);
	}
	CHECK_INT(dtype_parse("fp32", &d), -EINVAL);
	CHECK_INT(dtype_parse("FP128", &d), -EINVAL);
	CHECK_INT(dtype_parse("", &d), -EINVAL);
}

/* One range table serves REST (tensor.c) and gRPC typed contents. */
test(dtype_int_range_table)
{
	static const struct {
		enum dtype dt;
		int ret;
		double lo, hi;
	} t[] = {
	    {DT_BOOL, -EINVAL, 0, 0},
	    {DT_INT8, 0, -128, 127},
	    {DT_INT16, 0, -32768, 32767},
	    {DT_INT32, 0, -2147483648.0, 2147483647.0},
	    {DT_INT64, 0, -9223372036854775808.0, 9223372036854775807.0},
	    {DT_UINT8, 0, 0, 255},
	    {DT_UINT16, 0, 0, 65535},
	    {DT_UINT32, 0, 0, 4294967295.0},
	    {DT_UINT64, 0, 0, 18446744073709551615.0},
	    {DT_FP16, -EINVAL, 0, 0},
	    {DT_FP32, -EINVAL, 0, 0},
	    {DT_FP64, -EINVAL, 0, 0},
	    {DT_BYTES, -EINVAL, 0, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		double lo = 7, hi = 7;

		CHECK_INT(dtype_int_range(t[i].dt, &lo, &hi), t[i].ret);
		CHECK(lo == (t[i].ret ? 7 : t[i].lo));
		CHECK(hi == (t[i].ret ? 7 : t[i].hi));
	}
}

test(flatten_nested_and_flat)
{
	char err[ERR_MAX];
	double x[8];

	CHECK_INT(flat("[[1, 2], [3, 4]]", DT_FP32, x, 8, err), 4);
	CHECK(x[0] == 1 && x[3] == 4);
	CHECK_INT(flat("[1, [2, [3, [4]]]]", DT_FP64, x, 8, err), 4);
	CHECK(x[2] == 3);
	CHECK_INT(flat("5.5", DT_FP64, x, 8, err), 1);
	CHECK(x[0] == 5.5);
	CHECK_INT(flat("[[1, 2], [3, 4]]", DT_FP32, x, 3, err), -E2BIG);
	CHECK_INT(flat("[1, null]", DT_FP32, x, 8, err), -EINVAL);
	CHECK_STR_CONTAINS(err, "element 1 is null");
	CHECK_INT(flat("[true, false]", DT_BOOL, x, 8, err), 2);
	CHECK(x[0] == 1 && x[1] == 0);
}

struct range_case {
	const char *json;
	enum dtype dt;
	long want;
	const char *msg;
};

test(flatten_checks_types_and_ranges)
{
	static const struct range_case cases[] = {
	    {"[127, -128]", DT_INT8, 2, NULL},
	    {"[128]", DT_INT8, -EINVAL, "element 0 (128) is not a valid INT8"},
	    {"[0, -129]", DT_INT8, -EINVAL, "element 1"},
	    {"[65535]", DT_UINT16, 1, NULL},
	    {"[65536]", DT_UINT16, -EINVAL, "UINT16"},
	    {"[-1]", DT_UINT64, -EINVAL, "UINT64"},
	    {"[2147483647, -2147483648]", DT_INT32, 2, NULL},
	    {"[2147483648]", DT_INT32, -EINVAL, "INT32"},
	    {"[1.5]", DT_INT64, -EINVAL, "INT64"},
	    {"[255, 0]", DT_UINT8, 2, NULL},
	    {"[1, \"x\"]", DT_FP32, -EINVAL, "element 1 is not a numeric"},
	    {"[1]", DT_BOOL, -EINVAL, "not a boolean"},
	    {"[true]", DT_FP32, -EINVAL, "element 0"},
	    {"[{}]", DT_FP64, -EINVAL, "element 0"},
	    {"[null]", DT_INT32, -EINVAL, "element 0"},
	};
	char err[ERR_MAX];
	double x[8];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CHECK_INT(flat(cases[i].json, cases[i].dt, x, 8, err),
			  cases[i].want);
		if (cases[i].msg) {
			CHECK_STR_CONTAINS(err, cases[i].msg);
			CHECK_STR_CONTAINS(err, "inputs[0] (x)");
		}
	}
}

test(count_leaves)
{
	cJSON *j = cJSON_Parse("[[1, 2, 3], [4], [], [[5]]]");

	CHECK_INT(tensor_count(j), 5);
	cJSON_Delete(j);
	j = cJSON_Parse("7");
	CHECK_INT(tensor_count(j), 1);
	cJSON_Delete(j);
}

test(rows_matrix)
{
	char err[ERR_MAX];
	struct matrix m;
	cJSON *j;

	j = cJSON_Parse("[[1, 2, 3], [4, 5, 6]]");
	CHECK_INT(matrix_from_rows(j, "instances", &m, err, sizeof(err)), 0);
	CHECK_INT(m.rows, 2);
	CHECK_INT(m.cols, 3);
	CHECK(m.x[5] == 6);
	matrix_free(&m);
	cJSON_Delete(j);

	j = cJSON_Parse("[1, 2, 3, 4]");
	CHECK_INT(matrix_from_rows(j, "instances", &m, err, sizeof(err)), 0);
	CHECK_INT(m.rows, 1);
	CHECK_INT(m.cols, 4);
	matrix_free(&m);
	cJSON_Delete(j);

	j = cJSON_Parse("[[1, 2], [3]]");
	CHECK_INT(matrix_from_rows(j, "instances", &m, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "instances: row 1 has 1 values, expected 2");
	CHECK(m.x == NULL);
	cJSON_Delete(j);

	j = cJSON_Parse("[[1, \"a\"]]");
	CHECK_INT(matrix_from_rows(j, "data.ndarray", &m, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "data.ndarray: row 0 column 1");
	cJSON_Delete(j);

	j = cJSON_Parse("[]");
	CHECK_INT(matrix_from_rows(j, "x", &m, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "empty");
	cJSON_Delete(j);

	j = cJSON_Parse("{\"a\": 1}");
	CHECK_INT(matrix_from_rows(j, "x", &m, err, sizeof(err)), -EINVAL);
	CHECK_STR_CONTAINS(err, "must be an array");
	cJSON_Delete(j);
}

test(depth_on_raw_text)
{
	char *deep;
	size_t i, n = 10000;

	CHECK(json_depth_ok("{\"a\": [[1]]}", 12, 3));
	CHECK(!json_depth_ok("{\"a\": [[1]]}", 12, 2));
	/* brackets inside strings do not count, escapes are honoured */
	CHECK(json_depth_ok("{\"a\": \"[[[[\\\"[[[\"}", 18, 1));
	deep = malloc(2 * n + 1);
	for (i = 0; i < n; i++) {
		deep[i] = '[';
		deep[n + i] = ']';
	}
	deep[2 * n] = '\0';
	CHECK(!json_depth_ok(deep, 2 * n, 32));
	CHECK(json_depth_ok(deep, 2 * n, 10000));
	free(deep);
}

struct exact_case {
	const char *text;
	int want;
	const char *msg;
};

test(parse_exact_one_value)
{
	static const struct exact_case cases[] = {
	    {"{\"a\": 1}", 0, NULL},
	    {"{\"a\": 1} \r\n\t", 0, NULL},
	    {"  [1, 2]", 0, NULL},
	    {"{\"a\": 1} trailing", -EINVAL, "bytes after the JSON value at byte 9"},
	    {"{\"a\": 1}{}", -EINVAL, "at byte 8"},
	    {"1 2", -EINVAL, "at byte 2"},
	    {"{\"a\": }", -EINVAL, "malformed JSON at byte"},
	    {"[[[[1]]]]", -EINVAL, "deeper than 3"},
	    {"", -EINVAL, "malformed JSON"},
	};
	char err[ERR_MAX];
	cJSON *j;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		CHECK_INT(json_parse_exact(cases[i].text, strlen(cases[i].text),
					   3, &j, err, sizeof(err)),
			  cases[i].want);
		CHECK((j != NULL) == (cases[i].want == 0));
		if (cases[i].msg)
			CHECK_STR_CONTAINS(err, cases[i].msg);
		cJSON_Delete(j);
	}
	/* a NUL inside the length is a byte after the value, not an end */
	CHECK_INT(json_parse_exact("[1]\0x", 5, 3, &j, err, sizeof(err)),
		  -EINVAL);
	CHECK_STR_CONTAINS(err, "at byte 3");
}

test(json_writers)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT(jw_str(&b, "a\"b\\c\n\x01z"), 0);
	CHECK_STR(b.data, "\"a\\\"b\\\\c\\u000a\\u0001z\"");
	buf_reset(&b);
	jw_f32(&b, 0.1);
	buf_puts(&b, " ");
	jw_f64(&b, 0.1);
	buf_puts(&b, " ");
	jw_f64(&b, NAN);
	CHECK_STR(b.data, "0.100000001 0.10000000000000001 null");
	buf_free(&b);
}
