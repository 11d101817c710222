/*
 * assets_index - `<prefix>/assets.index`, {"assets": ["fraud/xgb", ...]}:
 * the list of asset names kept by `assetfs push` and `assetfs index`, so a
 * store that cannot list (plain HTTP) can still be browsed from the root.
 *
 * Pure functions, thread-safe. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_RESOLVER_ASSETS_INDEX_H
#define ASSETFS_RESOLVER_ASSETS_INDEX_H

#include <stddef.h>

#include "common/buf.h"

#define ASSETS_INDEX_MAX_BYTES (64u << 20)

struct assets_index {
	char **names; /* owned, valid asset names, sorted, unique */
	size_t n;
	size_t n_invalid; /* entries dropped as invalid names */
};

/*
 * Parse the document. Invalid names are dropped and counted. Returns 0,
 * -EINVAL (message in @err), -EFBIG or -ENOMEM.
 */
int assets_index_parse(const char *json, size_t len, struct assets_index *out,
		       char *err, size_t errlen);

/*
 * Add a copy of @name keeping order; duplicates are a no-op. Returns 0,
 * -EINVAL for an invalid name (@ix unchanged) or -ENOMEM.
 */
int assets_index_add(struct assets_index *ix, const char *name);

int assets_index_format(const struct assets_index *ix, struct buf *out);

void assets_index_clear(struct assets_index *ix); /* NULL-safe */

#endif
