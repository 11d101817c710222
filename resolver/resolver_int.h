/*
 * resolver_int - helpers shared by the resolver's files, not part of its
 * contract: error message formatting that quotes hostile input safely
 * (truncated, non-printable bytes escaped) and the relative path check with
 * a caller-chosen label ("sub path", "contents entry", ...).
 *
 * Pure functions, thread-safe.
 */
#ifndef ASSETFS_RESOLVER_RESOLVER_INT_H
#define ASSETFS_RESOLVER_RESOLVER_INT_H

#include <stddef.h>

#include "common/log.h"

/* Longest piece of hostile input echoed in an error message. */
#define RESOLVER_QUOTE_MAX 80

/*
 * Write @n bytes of @s into @out (NUL-terminated, at most @outlen bytes)
 * for an error message: bytes outside printable ASCII become \xNN, and
 * more than RESOLVER_QUOTE_MAX bytes are cut with "...".
 */
void resolver_quote(const char *s, size_t n, char *out, size_t outlen);

/* Messages into @err: log_errbuf() (common/log.h). */
#define resolver_err log_errbuf

/*
 * Check @n bytes at @p as a relative path (see spec.h); messages start
 * with "invalid @what '<path>': ". Returns 0 or -EINVAL.
 */
int resolver_check_relpath(const char *p, size_t n, const char *what, char *err,
			   size_t errlen);

struct cJSON;

/*
 * Parse exactly @len bytes at @json (not necessarily NUL-terminated) as one
 * JSON document: only whitespace may follow it. @what names the document
 * in messages ("versions document", ".meta document"). Returns 0 with
 * *@root set (free with cJSON_Delete), or -EINVAL with a message naming
 * the byte offset of the error.
 */
int resolver_json_parse(const char *json, size_t len, const char *what,
			struct cJSON **root, char *err, size_t errlen);

#endif
