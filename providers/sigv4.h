/*
 * sigv4 - AWS Signature Version 4 for request headers (the Authorization
 * header form), with HMAC-SHA-256 from OpenSSL.
 *
 * The caller decides which headers are signed (host and every x-amz-*
 * header at least) and passes the request path already percent-encoded as
 * it will be sent (S3 encodes each key segment once; other services may
 * differ) and the query as "name=value&..." with names and values already
 * encoded; the canonical form sorts them. The payload hash is the hex
 * SHA-256 of the body or the literal "UNSIGNED-PAYLOAD".
 *
 * Pure functions, thread-safe. Errors: 0 or a negative errno. The secret
 * key is used only to derive the signing key; it is never copied into any
 * output.
 */
#ifndef ASSETFS_PROVIDERS_SIGV4_H
#define ASSETFS_PROVIDERS_SIGV4_H

#include <stddef.h>

#include "common/buf.h"

#define SIGV4_MAX_HEADERS 24

struct sigv4_hdr {
	const char *name;  /* any case; lower-cased for signing */
	const char *value; /* trimmed, inner runs of spaces collapsed */
};

struct sigv4_req {
	const char *method;       /* "GET" */
	const char *path;         /* "/bucket/key%20x", encoded, non-empty */
	const char *query;        /* "list-type=2&prefix=a%2F", or NULL */
	const struct sigv4_hdr *headers; /* the signed headers */
	size_t n_headers;         /* at most SIGV4_MAX_HEADERS */
	const char *payload_hash; /* hex or "UNSIGNED-PAYLOAD" */
	const char *amz_date;     /* "20150830T123600Z" */
	const char *region;       /* "us-east-1" */
	const char *service;      /* "s3" */
};

/*
 * The canonical request of @r, appended to @out (no trailing newline).
 * Returns 0, -EINVAL (too many headers, bad date), or a buf error.
 */
int sigv4_canonical_request(const struct sigv4_req *r, struct buf *out);

/*
 * The string to sign for @r (built from its canonical request), appended
 * to @out. Same returns.
 */
int sigv4_string_to_sign(const struct sigv4_req *r, struct buf *out);

/*
 * The hex signature (64 digits and a NUL) of @r under @secret_key.
 * Returns 0 or an error.
 */
int sigv4_signature(const struct sigv4_req *r, const char *secret_key,
		    char out[65]);

/*
 * The Authorization header value ("AWS4-HMAC-SHA256 Credential=...,
 * SignedHeaders=..., Signature=...") appended to @out. @access_key and
 * @secret_key are borrowed. Returns 0 or an error.
 */
int sigv4_authorization(const struct sigv4_req *r, const char *access_key,
			const char *secret_key, struct buf *out);

#endif
