/*
 * digest - SHA-256 (identity and trust, via OpenSSL) and xxh3 (quick local
 * checks, via xxHash).
 *
 * A struct digest is the SHA-256 of a block or file; its lowercase hex form
 * names block files and appears in manifests. The streaming hasher serves
 * single streams (a whole file); blocks are hashed several at a time by
 * sha256_mb / sha256_batch.
 *
 * Threads: a hasher has one owner; everything else is pure.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_COMMON_DIGEST_H
#define ASSETFS_COMMON_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIGEST_LEN 32
#define DIGEST_HEX_LEN 64

struct digest {
	uint8_t b[DIGEST_LEN];
};

/* The value (0-15) of the hex digit @c (either case), or -1. */
int digest_hexval(char c);

/* Parse exactly 64 hex digits (either case). Returns 0 or -EINVAL. */
int digest_from_hex(const char *hex, struct digest *out);

/* Lower-case hex of @n bytes into @out (2 * @n + 1 bytes, NUL included). */
void digest_hex_encode(const uint8_t *in, size_t n, char *out);

/* Write 64 lowercase hex digits and a NUL into @out. */
void digest_to_hex(const struct digest *d, char out[DIGEST_HEX_LEN + 1]);

bool digest_equal(const struct digest *a, const struct digest *b);

/* SHA-256 of a buffer in one call. Returns 0 or -ENOMEM. */
int digest_buf(const void *data, size_t len, struct digest *out);

/* Streaming SHA-256. */
struct hasher;

/* Returns a new hasher, or NULL on out of memory. */
struct hasher *hasher_new(void);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Finish; the hasher may then be reused from scratch. Returns 0 or -EIO. */
int hasher_final(struct hasher *h, struct digest *out);
void hasher_free(struct hasher *h); /* NULL-safe */

/* xxh3-64 of a buffer: for local integrity checks and hash tables only. */
uint64_t digest_xxh3(const void *data, size_t len);

#endif
