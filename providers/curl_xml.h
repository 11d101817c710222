/*
 * curl_xml - the XML replies of S3 and Azure (listings, errors, upload
 * ids) read with libxml2's xmlTextReader, a streaming pull parser: memory
 * stays bounded by the nesting depth and the caller's bufs, not by the
 * size of the document.
 *
 * Replies are hostile. A document type declaration (and so any entity
 * beyond the five predefined ones) is refused, nothing is fetched from the
 * network (XML_PARSE_NONET), libxml2 prints nothing, and every text lands
 * in a capped struct buf. Element names are matched on their local name,
 * so a default namespace (S3's xmlns) does not matter.
 *
 * Thread-safe (the parser library is set up once). Errors: 0 or a
 * negative errno; -EINVAL for a document that is not well-formed XML up
 * to the point where the answer was found.
 */
#ifndef ASSETFS_PROVIDERS_CURL_XML_H
#define ASSETFS_PROVIDERS_CURL_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"

#define CX_MAX_FIELDS 8

/*
 * The text of the first element named @name in the document [@doc,
 * @doc + @len), appended to @out (a NUL-terminated string, "" for an
 * empty element). Returns 0, -ENOENT if there is none, -EINVAL if the
 * document breaks before it, -EFBIG past @out's cap, -ENOMEM.
 */
int cx_find_text(const char *doc, size_t len, const char *name,
		 struct buf *out);

/*
 * A kind of record in a document: each element named @item (at any
 * depth, not nested in another record) is one record, whose fields are
 * the texts of the first elements named @fields[i] at any depth inside
 * it. @fields is NULL-terminated, at most CX_MAX_FIELDS names; NULL
 * makes the item's own text the record's one field.
 */
struct cx_record {
	const char *item;
	const char *const *fields;
	size_t field_max; /* cap on each field's text */
};

/*
 * Called once per record of kind @kind (index in the table) with one
 * NUL-terminated value per field and @have[i] saying whether field i was
 * present. Return 0 to go on or a negative errno to stop with it.
 */
typedef int (*cx_record_fn)(void *arg, size_t kind, const char *const *vals,
			    const bool *have);

/*
 * Stream the document through @fn for every record of the @n kinds in
 * @kinds. Returns 0, -EINVAL for a document that is not well-formed or
 * carries a DTD, -EFBIG for a field past its cap, -ENOMEM, or @fn's error.
 */
int cx_records(const char *doc, size_t len, const struct cx_record *kinds,
	       size_t n, cx_record_fn fn, void *arg);

/* Append @s with & < > " (and CR) escaped for XML text. 0 or an error. */
int cx_escape(struct buf *out, const char *s);

#endif
