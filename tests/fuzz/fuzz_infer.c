/*
 * fuzz_infer - libFuzzer target for assetfs-server's request parsing: the
 * exact one-value JSON parse (depth cap, nothing after the value), then the V2 "inputs" parser (for a model of one
 * feature and of any width), the Seldon parser and the TF Serving parser,
 * exactly as the HTTP handlers call them on a client's body.
 *
 * Invariants: a request deeper than the cap is never handed to cJSON; a
 * parse either fills a matrix of at least one row and column within the
 * element cap, or leaves it empty with a terminated error message.
 */
#include <errno.h>

#include "server/proto.h"
#include "server/tensor.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

static void fuzz_infer_check(int ret, struct matrix *x, const char *err)
{
	if (ret == 0) {
		FUZZ_CHECK(x->x != NULL);
		FUZZ_CHECK(x->rows >= 1 && x->cols >= 1);
		FUZZ_CHECK(x->rows * x->cols <= TENSOR_MAX_ELEMS);
	} else {
		FUZZ_CHECK(x->x == NULL);
		FUZZ_CHECK(fuzz_err_ok(err, ERR_MAX));
	}
	matrix_free(x);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	struct matrix x;
	bool columnar;
	cJSON *j;
	int enc;

	if (json_parse_exact((const char *)data, size, PROTO_MAX_DEPTH, &j,
			     err, sizeof(err)) < 0) {
		FUZZ_CHECK(j == NULL && fuzz_err_ok(err, ERR_MAX));
		return 0;
	}
	err[0] = '\0';
	fuzz_infer_check(v2_parse_inputs(
				 cJSON_GetObjectItemCaseSensitive(j, "inputs"),
				 -1, &x, err, sizeof(err)),
			 &x, err);
	err[0] = '\0';
	fuzz_infer_check(v2_parse_inputs(
				 cJSON_GetObjectItemCaseSensitive(j, "inputs"),
				 1, &x, err, sizeof(err)),
			 &x, err);
	err[0] = '\0';
	fuzz_infer_check(seldon_parse(j, &x, &enc, err, sizeof(err)), &x, err);
	err[0] = '\0';
	fuzz_infer_check(tfs_parse(j, &x, &columnar, err, sizeof(err)), &x,
			 err);
	cJSON_Delete(j);
	return 0;
}
