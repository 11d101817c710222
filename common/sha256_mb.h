/*
 * sha256_mb - SHA-256 of several independent messages at once, in SIMD
 * lanes.
 *
 * Why: every block the cache takes in is hashed. Without the CPU's SHA
 * extensions, OpenSSL hashes one message at about 0.25 GB/s per core, which
 * caps a mount's cold throughput far below what the network gives. SHA-256
 * is serial within one message, but the blocks of a read-ahead window are
 * independent messages: hashed side by side, one per 32-bit lane of an
 * AVX2 or AVX-512 register, they cost about what one costs alone. None of
 * our dependencies offers this (OpenSSL's multi-block code is internal).
 *
 * The implementation is chosen once, from the CPU: OpenSSL when the CPU has
 * the SHA extensions (one message is then faster than lanes) or no AVX2;
 * else 8 lanes (AVX2, or AVX-512VL on 256-bit registers) and, for more than
 * 8 messages, 16 lanes (AVX-512) where that is faster. A lone message
 * (two on AVX2) goes to OpenSSL, faster for it. ASSETFS_SHA256=
 * openssl|avx2|avx512vl|avx512 in the environment forces one (an
 * unsupported choice is ignored, with the fallback logged once).
 *
 * Every implementation returns the same digests as OpenSSL (FIPS 180-4):
 * tests/unit/test_sha256_mb.c checks each one the CPU has against OpenSSL.
 *
 * Threads: all functions are safe to call from any thread, except
 * sha256_mb_use(), which tests and benchmarks call before hashing.
 * Errors: 0 or a negative errno.
 */
#ifndef ASSETFS_COMMON_SHA256_MB_H
#define ASSETFS_COMMON_SHA256_MB_H

#include <stddef.h>

#include "common/digest.h"

/* The most messages one sha256_mb() call takes. */
#define SHA256_MB_MAX 16

/*
 * out[i] = SHA-256 of the @len[i] bytes at @data[i], for i < @n. Lengths
 * may differ and be 0; pointers need no alignment. @n may be 0.
 * Returns 0, -EINVAL when @n > SHA256_MB_MAX, or -ENOMEM when OpenSSL
 * fails (out of memory).
 */
int sha256_mb(size_t n, const void *const data[], const size_t len[],
	      struct digest out[]);

/*
 * How many messages one call hashes in about the time of one: the lane
 * count of the implementation in use (1 for OpenSSL). Callers batching
 * work size their batches with it.
 */
size_t sha256_mb_lanes(void);

/* The implementation in use: "openssl", "avx2", "avx512vl" or "avx512". */
const char *sha256_mb_impl(void);

/*
 * Tests and benchmarks: use implementation @name from now on. Returns 0,
 * -ENOENT for an unknown name, or -ENOTSUP when this CPU lacks it.
 */
int sha256_mb_use(const char *name);

#endif
