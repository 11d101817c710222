/*
 * grpc_v2 - the V2 GRPCInferenceService (see grpc_v2.c); what it does with
 * a client's ModelInferRequest bytes, exported for the fuzz target.
 *
 * Pure function, thread-safe. Errors: 0 or a negative errno with a
 * message in @err.
 */
#ifndef ASSETFS_SERVER_GRPC_V2_H
#define ASSETFS_SERVER_GRPC_V2_H

#include <stddef.h>
#include <stdint.h>

#include "server/tensor.h"

/*
 * Unpack a serialized ModelInferRequest (@len bytes, hostile) and gather
 * its inputs (typed contents or raw_input_contents) into @x as ModelInfer
 * does for a model of @n_features (-1: any). Returns 0, -EINVAL (message
 * names the tensor and element) or -ENOMEM; on error @x is empty.
 */
int grpc_v2_parse_infer(const uint8_t *in, size_t len, int64_t n_features,
			struct matrix *x, char *err, size_t errlen);

#endif
