/*
 * curl_list - builds a struct prov_listing from the pages a remote backend
 * receives: keys arrive with the store prefix ("modelkit-assets/a/b") and
 * leave relative ("a/b"); entries outside the prefix, directory markers
 * (keys ending in '/') and duplicates (pages that overlap) are dropped,
 * and the result is sorted as provider.h promises.
 *
 * A listing is capped (CL_MAX_ENTRIES) so a hostile or runaway server
 * cannot make us allocate without bound. One owner; not thread-safe.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_PROVIDERS_CURL_LIST_H
#define ASSETFS_PROVIDERS_CURL_LIST_H

#include <stddef.h>
#include <stdint.h>

#include "providers/provider.h"

#define CL_MAX_ENTRIES (4u << 20)

struct cl_builder {
	struct prov_listing *l; /* borrowed: the caller's listing */
	const char *strip;      /* "prefix/" to remove, or "" */
	size_t cap_obj, cap_pre;
};

/* Start filling @l (zeroed here). @strip is borrowed. */
void cl_init(struct cl_builder *b, struct prov_listing *l, const char *strip);

/*
 * Add an object with full key @key (copied; @etag copied, may be NULL).
 * Keys outside the strip prefix or ending in '/' are ignored (returns 0).
 * Returns 0, -EFBIG past CL_MAX_ENTRIES, -ENOMEM.
 */
int cl_add_object(struct cl_builder *b, const char *key, uint64_t size,
		  const char *etag, int64_t mtime);

/* Add a common prefix (full, ending in '/'). Same returns. */
int cl_add_prefix(struct cl_builder *b, const char *prefix);

/* Sort both lists and drop duplicates. */
void cl_finish(struct cl_builder *b);

#endif
