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

#include "common/buf.h"
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

/*
 * One page of a paged listing, as the driver below hands it to a backend.
 * Every buf is the driver's, reset before the callback that fills it.
 */
struct cl_page {
	const char *full;  /* the full prefix listed: "storeprefix/" + prefix */
	const char *what;  /* "LIST scheme://bucket/full", for messages */
	struct buf *token; /* in fetch: this page's token ("" = first page);
			      in parse: set it to the next one, or leave it
			      empty on the last page */
	bool delimited;
	struct buf *query; /* scratch for fetch's query string */
	struct buf *body;  /* fetch puts the reply here (capped) */
	struct cl_builder *b;
};

/*
 * What a backend supplies to cl_list_paged(): its scheme (for messages),
 * the cap on one reply and on the number of pages, and two callbacks.
 * @fetch builds the page request from pg->token and runs it into pg->body;
 * on failure it leaves its message and returns a negative errno. @parse
 * adds the page's objects and prefixes to pg->b and sets pg->token; it
 * reports its own errors, mapped to what the backend promises.
 */
struct cl_pager {
	const char *scheme;
	size_t body_max;
	int max_pages;
	int (*fetch)(struct prov *p, struct cl_page *pg);
	int (*parse)(struct prov *p, struct cl_page *pg);
};

/*
 * How an XML listing reply names its parts (S3 ListObjectsV2, Azure List
 * Blobs): each @object element holds @key, @size, @etag and @mtime
 * (anywhere inside it), each @prefix element a @prefix_key.
 */
struct cl_xml_names {
	const char *object, *key, *size, *etag, *mtime;
	const char *prefix, *prefix_key;
	int64_t (*parse_mtime)(const char *s); /* seconds, or <= 0: unknown */
	bool quote_etags; /* listings drop the quotes headers carry (Azure) */
};

/*
 * Add the objects and prefixes of the XML page in pg->body to pg->b.
 * Returns 0, -EIO for a reply that is not such a listing (an object
 * without key or size, bad XML; the message names pg->what) or one past
 * CL_MAX_ENTRIES, or -ENOMEM. The page's token is the caller's business.
 */
int cl_parse_xml(struct cl_page *pg, const struct cl_xml_names *n);

/*
 * List @prefix (relative to the store prefix) page by page until a page
 * leaves no token, into @out (zeroed first; entries relative to the store
 * prefix, sorted and deduplicated on success). Returns 0, -EIO past
 * @pager->max_pages pages, or the first callback error; on failure @out
 * may hold a partial listing for the caller to free. Borrowed arguments.
 */
int cl_list_paged(struct prov *p, const struct cl_pager *pager,
		  const char *prefix, bool delimited,
		  struct prov_listing *out);

#endif
