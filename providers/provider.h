/*
 * provider - one interface to every kind of store (DESIGN §6): file://,
 * http(s)://, s3://, gs://, az://.
 *
 * A store URL names a prefix: everything after the bucket (or, for file://,
 * the whole path) is the prefix, and every key passed here is relative to
 * it: "fraud/xgb.versions", "fraud/xgb/1.0/model.json" — '/'-separated,
 * never starting with '/'. The backend adds the prefix and the trailing '/'
 * that anchors it.
 *
 * Every backend retries what is worth retrying (5xx, 429, resets, timeouts:
 * exponential backoff with jitter, Retry-After honoured), detects stalled
 * and truncated transfers, verifies TLS, and gives up after opts.timeout_ms
 * in total with a clear error. Secrets never reach a log line or an error
 * message.
 *
 * Threads: a struct prov is safe to use from many threads at once (backends
 * keep a pool of connections); prov_open/prov_close are not concurrent with
 * anything else on the same prov.
 *
 * Errors: >= 0 success or a negative errno:
 *   -ENOENT     no such object (404)
 *   -EACCES     authentication or permission refused (401, 403)
 *   -ESTALE     If-Match failed: the object changed (412)
 *   -ETIMEDOUT  gave up after opts.timeout_ms (stall, no answer, retries)
 *   -EIO        anything else: 5xx after retries, truncated body, bad reply
 *   -EROFS      the backend cannot write (http)
 *   -ENOTSUP    the backend cannot do this (listing on plain http)
 *   -EINVAL     bad URL or arguments
 *   -EFBIG      a capped read exceeded its cap
 * After a failure, prov_last_error() gives a one-line description for the
 * calling thread ("GET s3://bucket/p/x.meta: HTTP 403 AccessDenied").
 */
#ifndef ASSETFS_PROVIDERS_PROVIDER_H
#define ASSETFS_PROVIDERS_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"

#define PROV_WHOLE UINT64_MAX /* length meaning "to the end of the object" */
#define PROV_URL_MAX 4096

struct prov;

struct prov_opts {
	int timeout_ms;	        /* total bound on one operation incl. retries;
				   0 -> 30000 */
	int connect_timeout_ms; /* 0 -> 5000 */
	int max_conns;	        /* connection pool size; 0 -> 16 */
	const char *bearer_token_file; /* http(s): "Authorization: Bearer"
					  from this file; may be NULL */
};

struct prov_object {
	char *key;     /* owned, relative to the prefix */
	uint64_t size;
	char *etag;    /* owned, may be NULL; opaque, pass back to If-Match */
	int64_t mtime; /* seconds since the epoch, 0 if unknown */
};

struct prov_listing {
	struct prov_object *objects; /* sorted by key */
	size_t n_objects;
	char **prefixes; /* "common prefixes": relative, ending in '/', sorted */
	size_t n_prefixes;
};

struct prov_stats {
	uint64_t requests;
	uint64_t retries;
	uint64_t errors;	 /* operations that failed after retries */
	uint64_t bytes_received; /* body bytes of GETs */
	uint64_t bytes_sent;	 /* body bytes of PUTs */
};

/*
 * Receives body bytes in order. Return 0 to go on or a negative errno to
 * abort the transfer (prov_get then returns that errno). Each byte of the
 * requested range is delivered exactly once even across retries: a retry
 * resumes at the first byte not yet delivered, pinned with If-Match.
 */
typedef int (*prov_sink_fn)(void *arg, const void *data, size_t len);

/* Progress of a put: @done of @total bytes sent so far. */
typedef void (*prov_progress_fn)(void *arg, uint64_t done, uint64_t total);

/*
 * Open a store. @opts may be NULL for defaults (borrowed, copied).
 * Returns 0, -EINVAL for a malformed or unknown URL (prov_last_error() says
 * why), -ENOMEM, or a backend error (for example unreadable credentials).
 */
int prov_open(const char *url, const struct prov_opts *opts,
	      struct prov **out);

/* Close and free; sets *@p to NULL. NULL-safe. */
void prov_close(struct prov **p);

/*
 * The store URL to use, by precedence: @arg (a --store value or positional
 * argument, may be NULL), then ASSETFS_STORE, then
 * MODELKIT_STORAGE_PROVIDER (local|s3|gcs|az) with MODELKIT_STORAGE_BUCKET
 * and MODELKIT_STORAGE_PREFIX (default "modelkit-assets"). Writes it to
 * @buf. Returns 0, -ENOENT if nothing names a store, -EINVAL (message in
 * prov_last_error()), -ENAMETOOLONG.
 */
int prov_store_url(const char *arg, char *buf, size_t len);

/* The URL as given to prov_open (contains no secret). Borrowed. */
const char *prov_url(const struct prov *p);

/* Whether the backend can list prefixes / write objects. */
bool prov_can_list(const struct prov *p);
bool prov_can_put(const struct prov *p);

/*
 * List keys under @prefix (relative; "" for the whole store). With
 * @delimited, keys below a further '/' are folded into prefixes (one
 * level, like `ls`); without, every key below @prefix is returned. Follows
 * pagination to the end. Returns 0 (an empty listing if nothing matches),
 * -ENOTSUP or an error. Free with prov_listing_free().
 */
int prov_list(struct prov *p, const char *prefix, bool delimited,
	      struct prov_listing *out);
void prov_listing_free(struct prov_listing *l); /* NULL-safe */

/* Size, ETag and mtime of @key. Free with prov_object_free(). */
int prov_head(struct prov *p, const char *key, struct prov_object *out);
void prov_object_free(struct prov_object *o); /* NULL-safe */

/*
 * Stream bytes [@off, @off+@len) of @key to @sink (@len PROV_WHOLE: to the
 * end). If @if_match is non-NULL the object must still have that ETag
 * (-ESTALE otherwise). A range past the end is -EINVAL; a body shorter than
 * asked is retried, then -EIO. Returns the number of bytes delivered or a
 * negative errno.
 */
int64_t prov_get(struct prov *p, const char *key, uint64_t off, uint64_t len,
		 const char *if_match, prov_sink_fn sink, void *arg);

/*
 * Read a whole small object (a .versions, .meta) into @out (appended),
 * refusing objects over @max bytes with -EFBIG. @etag_out, if non-NULL,
 * receives an owned copy of the ETag (or NULL). Returns 0 or an error.
 */
int prov_get_buf(struct prov *p, const char *key, size_t max, struct buf *out,
		 char **etag_out);

/*
 * Write @len bytes from @data to @key, replacing it atomically (readers see
 * the old or the new object, never a mix). Returns 0, -EROFS, or an error.
 */
int prov_put_buf(struct prov *p, const char *key, const void *data,
		 size_t len);

/*
 * Write @size bytes read from @fd (from offset 0, with pread) to @key,
 * atomically; large objects use the backend's multipart upload. @progress
 * may be NULL. Returns 0, -EROFS, or an error.
 */
int prov_put_file(struct prov *p, const char *key, int fd, uint64_t size,
		  prov_progress_fn progress, void *arg);

/*
 * Make the store ready for writing before a push reads it: for file://,
 * create the store directory when it is missing and its parent exists
 * (a new prefix); other backends have nothing to do. Returns 0, -EROFS,
 * -ENOENT when the parent is missing too (prov_last_error() names it),
 * or another errno.
 */
int prov_prepare_put(struct prov *p);

/* Delete @key; a missing key is success. Returns 0, -EROFS or an error. */
int prov_delete(struct prov *p, const char *key);

/* Snapshot of the counters. */
void prov_get_stats(const struct prov *p, struct prov_stats *out);

/* One line about the calling thread's last failure ("" if none). */
const char *prov_last_error(void);

#endif
