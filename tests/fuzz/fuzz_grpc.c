/*
 * fuzz_grpc - libFuzzer target for what assetfs-server's gRPC front end
 * does with a client's message bytes: the first byte picks the path, the
 * rest is the message.
 *
 *   0, 1: a V2 ModelInferRequest, unpacked by protobuf-c and gathered into
 *         a matrix (typed contents or raw_input_contents) for a model of
 *         any width (0) or of one feature (1);
 *   2:    a SeldonMessage: wire depth check, unpack, conversion to the
 *         REST request and the REST parser.
 *
 * Invariants: a parse fills a matrix of at least one row and column
 * within the element cap, or leaves it empty with a terminated message;
 * nothing nested past the cap reaches protobuf-c's recursive unpacker.
 */
#include <errno.h>
#include <stdlib.h>

#include "server/grpc_seldon.h"
#include "server/grpc_v2.h"
#include "server/proto_util.h"
#include "server/tensor.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	char err[ERR_MAX];
	struct matrix x;
	char *puid = NULL;
	int ret, enc = 0;

	if (size < 1)
		return 0;
	err[0] = '\0';
	switch (data[0] % 3) {
	case 0:
	case 1:
		ret = grpc_v2_parse_infer(data + 1, size - 1,
					  data[0] % 3 ? 1 : -1, &x, err,
					  sizeof(err));
		break;
	default:
		ret = grpc_seldon_parse(data + 1, size - 1, PROTO_MAX_DEPTH,
					&x, &enc, &puid, err, sizeof(err));
		FUZZ_CHECK(ret == 0 || puid == NULL);
		FUZZ_CHECK(enc >= 0 && enc <= 2);
		free(puid);
		break;
	}
	if (ret == 0) {
		FUZZ_CHECK(x.x != NULL);
		FUZZ_CHECK(x.rows >= 1 && x.cols >= 1);
		FUZZ_CHECK(x.rows * x.cols <= TENSOR_MAX_ELEMS);
	} else {
		FUZZ_CHECK(x.x == NULL);
		FUZZ_CHECK(fuzz_err_ok(err, ERR_MAX));
	}
	matrix_free(&x);
	return 0;
}
