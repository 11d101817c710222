/*
 * grpc_seldon - Seldon's gRPC Predict (see grpc_seldon.c), and the
 * parsing it does on a client's bytes, exported for the fuzz target.
 *
 * Pure functions, thread-safe. Errors: 0 or a negative errno with a
 * message in @err.
 */
#ifndef ASSETFS_SERVER_GRPC_SELDON_H
#define ASSETFS_SERVER_GRPC_SELDON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "server/tensor.h"

/*
 * Is the protobuf message @p (@len bytes) of type @d well-formed on the
 * wire (varints, lengths within bounds, no groups) and its message
 * fields nested at most @max_depth deep? Reads nothing outside @p, and
 * recurses at most @max_depth + 1 calls deep.
 */
bool pb_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p,
		 size_t len, int max_depth);

/*
 * A serialized SeldonMessage -> @x, as the REST parser reads the same
 * request (*@enc: 0 ndarray, 1 tensor, 2 jsonData). *@puid gets a copy of
 * meta.puid (or NULL; the caller frees it). Nesting past @max_depth JSON
 * levels is refused before unpacking. Returns 0, -EINVAL or -ENOMEM.
 */
int grpc_seldon_parse(const uint8_t *in, size_t len, int max_depth,
		      struct matrix *x, int *enc, char **puid, char *err,
		      size_t errlen);

#endif
