/*
 * curl_util - small pure helpers shared by the remote backends (s3, gs, az,
 * http): percent-encoding (libcurl), base64, SHA-256 and HMAC-SHA-256
 * (OpenSSL), and HTTP dates. XML is read by curl_xml.h.
 *
 * Everything parsed here came from the network: every scan is bounded by
 * the length passed in and never reads past it; outputs go to capped
 * struct bufs or to fixed buffers whose size is checked.
 *
 * Thread-safe: no shared state. Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_PROVIDERS_CURL_UTIL_H
#define ASSETFS_PROVIDERS_CURL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define CU_SHA256_LEN 32
#define CU_SHA256_HEX_LEN 64

/*
 * Append @s percent-encoded to @out: every byte but the RFC 3986 unreserved
 * set (A-Z a-z 0-9 - . _ ~) becomes %XX (upper-case hex; libcurl's
 * curl_easy_escape); '/' is kept when @keep_slash. This is the encoding
 * SigV4, Azure and GCS all expect. Returns 0, -ENOMEM or a buf error.
 */
int cu_url_encode(struct buf *out, const char *s, bool keep_slash);

/*
 * Decode the %XX escapes of @s into @out (libcurl's curl_easy_unescape: a
 * malformed escape stays as it is). Returns 0, -EINVAL if the result
 * holds a NUL byte, -ENOMEM or a buf error.
 */
int cu_url_decode(struct buf *out, const char *s);

/* SHA-256 of @len bytes as 64 lower-case hex digits and a NUL. 0 or -EIO. */
int cu_sha256_hex(const void *data, size_t len,
		  char out[CU_SHA256_HEX_LEN + 1]);

/* HMAC-SHA-256 of @data under @key into @out (32 bytes). 0 or -EIO. */
int cu_hmac_sha256(const void *key, size_t key_len, const void *data,
		   size_t data_len, uint8_t out[CU_SHA256_LEN]);

/*
 * Base64 (standard alphabet with padding, or base64url without padding
 * when @url) of @n bytes, appended to @out (OpenSSL's EVP_EncodeBlock).
 * Returns 0, -EFBIG past 1.5 GiB, -ENOMEM or a buf error.
 */
int cu_base64(struct buf *out, const void *in, size_t n, bool url);

/*
 * Decode standard base64 @s (whitespace ignored, padding required, with
 * OpenSSL's EVP_DecodeUpdate) into @out (appended). Returns 0, -EINVAL if
 * @s is not base64, -ENOMEM or a buf error.
 */
int cu_base64_decode(struct buf *out, const char *s);

/* "Sun, 22 Nov 2026 01:02:03 GMT" for @t (UTC) into @out (>= 30 bytes). */
void cu_http_date(int64_t t, char *out, size_t len);

/*
 * Parse an HTTP date ("Sun, 06 Nov 1994 08:49:37 GMT", and the obsolete
 * RFC 850 and asctime forms) with libcurl's curl_getdate. Returns seconds
 * since the epoch, or -1 if it does not parse or lies before 1970.
 */
int64_t cu_parse_http_date(const char *s);

/* Strip leading and trailing ASCII whitespace in place; returns @s. */
char *cu_trim(char *s);

#endif
